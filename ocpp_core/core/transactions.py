"""Transactions (OCPP 1.6 sections 3.6, 4.8, 4.10, 5.11, 5.12): a session from
the authorization to the stop, and the messages that carry it.

- Transactions: the lifecycle service. A card or a remote start authorizes a
  connector (grant), the transaction starts when the EV is connected (and the
  cable locked where there is a lock), and stops by card, remote stop, EV
  disconnect, fault, reset or unlock. Every start asks safety.session_refusal
  with the idTag and its idTagInfo (a reserved connector serves only its
  reservation's idTag or parentIdTag group, 3.11); a start that ends a
  reservation carries its reservationId in StartTransaction.
- StartTransaction / StopTransaction: how the journal builds each message from
  the transaction record when it is sent, and what their answers do.
- RemoteStartTransaction / RemoteStopTransaction: the CSMS's calls.

The journal (ocpp_core/journal.py) keeps the records and the message queue
durable; nothing here writes a file itself.
"""

from ocpp_core.auth import is_valid
from ocpp_core.core.authorization import learn, transaction_stopped_by
from ocpp_core.log import get_logger
from ocpp_core.rpc import Reply
from ocpp_core.safety import LOOKUP_PENDING
from ocpp_core.smart_charging import Invalid
from ocpp_core.station import LOCK_TIMEOUT

log = get_logger("ocpp.cp")



class Transactions:
    def __init__(self, cp):
        self.cp = cp

    # --- authorization of a new session -------------------------------------------------
    def card_presented(self, id_tag):
        """A card (or any idTag) was presented at the reader."""
        cp = self.cp
        id_tag = id_tag[:20]
        log.info("card %s presented", id_tag)
        if cp.reset_pending is not None:
            return
        c = transaction_stopped_by(cp, id_tag)      # the same card: no Authorize needed
        if c is not None:
            self.stop(c, "Local", id_tag)
            return
        refusal = cp.session_refusal()
        if refusal is not None:     # not even an Authorize.req (4.2 while not accepted)
            log.info("card %s ignored: %s", id_tag, refusal)
            cp.events.emit("card_refused", id_tag, refusal)
            return
        busy = any(c.in_transaction for c in cp.connectors.values())
        # The parentIdTag a reservation may need is not known yet: it comes from
        # the local list, the cache or Authorize.conf (3.11); _card_decided asks again.
        if self.connector_for_new_session(id_tag, LOOKUP_PENDING) is None and not busy:
            log.info("card %s ignored: no connector can start a session", id_tag)
            cp.events.emit("card_refused", id_tag, "no connector can start a session")
            return
        cp.authorize(id_tag, lambda accepted, info: self._card_decided(id_tag, accepted, info))

    def _card_decided(self, id_tag, accepted, info):
        c = transaction_stopped_by(self.cp, id_tag, info if accepted else None)
        if c is not None:           # a valid card of the same group
            self.stop(c, "Local", id_tag)
            return
        if not accepted:
            status = (info or {}).get("status")
            log.info("card %s not authorized (%s)", id_tag, status)
            self.cp.events.emit("card_refused", id_tag, "not authorized (%s)" % status)
            return
        target = self.connector_for_new_session(id_tag, info)
        if target is not None:
            self.grant(target, id_tag, info)
        else:
            log.info("card %s: no connector may start a session for it", id_tag)
            self.cp.events.emit("card_refused", id_tag, "no connector may start a session")

    def connector_for_new_session(self, id_tag=None, info=None):
        """The connector a card or a remote start without connectorId serves
        (for id_tag with idTagInfo info): an EV waiting, else a free connector,
        else one whose session finished; a connector reserved for this idTag
        first in each kind."""
        cp = self.cp
        usable = [c for c in cp.connectors.values()
                  if cp.session_refusal(c, id_tag, info) is None]
        if id_tag is not None:
            known = None if info is LOOKUP_PENDING else info
            mine = [c for c in usable if cp.reservations.reserved_for(c, id_tag, known)]
            usable = mine + [c for c in usable if c not in mine]
        for c in usable:
            if c.plugged and not c.finishing and c.authorization is None:
                return c
        for c in usable:
            if not c.plugged and c.authorization is None:
                return c
        for c in usable:
            if c.plugged and c.finishing:
                return c   # a new session after the last one finished (F2 in 4.9)
        return None

    def grant(self, c, id_tag, info):
        """idTag authorized on connector c: the transaction starts once the EV is
        connected (at once when it is), unless a safety rule refuses it."""
        cp = self.cp
        refusal = cp.session_refusal(c, id_tag, info)
        if refusal is not None:
            log.info("authorization of %s on connector %d dropped: %s", id_tag, c.id, refusal)
            c.authorization = None
            cp.refresh()
            return
        c.authorization = {"id_tag": id_tag, "info": info, "since": cp.clock.monotonic()}
        if c.plugged:
            c.finishing = False
            self.start(c)
        cp.refresh()

    def remote_start(self, c, id_tag):
        """A RemoteStartTransaction accepted for connector c (5.11)."""
        cp = self.cp
        if not cp.config.get("AuthorizeRemoteTxRequests"):
            info = self.known_info(id_tag)
            info = {"status": "Accepted"} if info is LOOKUP_PENDING else info
            if cp.session_refusal(c, id_tag, info) is None:
                self.grant(c, id_tag, info)
                return
            # A reservation that only the idTag's parentIdTag can open, and the
            # parent is not known locally: 3.11 says SHALL send Authorize.req.
        # Hold the connector while the authorization is under way.
        c.authorization = {"id_tag": id_tag, "info": None, "since": cp.clock.monotonic(),
                           "pending": True}
        cp.refresh()

        def decided(accepted, info):
            if c.authorization is None or c.authorization.get("id_tag") != id_tag:
                return   # dropped meanwhile (made Inoperative, a fault, timed out)
            c.authorization = None
            if accepted:
                self.grant(c, id_tag, info)
            else:
                cp.refresh()

        cp.authorize(id_tag, decided)

    def known_info(self, id_tag):
        """The idTagInfo the local list or the cache holds for id_tag (3.11: where
        a parentIdTag MAY be looked up), else LOOKUP_PENDING."""
        _, info = self.cp.auth.lookup(id_tag)
        if info is None:
            return LOOKUP_PENDING
        out = {"status": "Accepted"}
        if info.get("parentIdTag"):
            out["parentIdTag"] = info["parentIdTag"]
        return out

    def drop_authorizations(self, why, targets=None):
        """Forget authorizations waiting for a plug-in (or a lock) on targets
        (default: every connector)."""
        cp = self.cp
        for c in (cp.connectors.values() if targets is None else targets):
            if c.authorization is None or c.in_transaction:
                continue
            log.info("connector %d: authorization for %s dropped: %s", c.id,
                     c.authorization["id_tag"], why)
            c.authorization = None
            if c.lock_pending_since is not None:
                c.lock_pending_since = None
                cp.station.set_lock(c.id, False)

    # --- the EV ------------------------------------------------------------------------------
    def ev_connected(self, c):
        c.finishing = False
        if c.in_transaction:
            return   # reconnected to a transaction that survived the disconnect
        if c.authorization is not None:
            self.start(c)

    def ev_disconnected(self, c):
        cp = self.cp
        if c.finishing:
            c.finishing = False
            cp.availability.save()
        if c.in_transaction:
            if cp.config.get("StopTransactionOnEVSideDisconnect"):
                self.stop(c, "EVDisconnected", refresh=False)
                c.finishing = False
            # else: the transaction goes on, suspended, until the EV returns
        if cp.profile.has_lock and c.locked and not c.in_transaction and \
                cp.config.get("UnlockConnectorOnEVSideDisconnect"):
            cp.station.set_lock(c.id, False)

    def meter_reading(self, c):
        """A new register reading on connector c (c.sample)."""
        if c.in_transaction:
            self.cp.journal.record_meter(c.tx_key, int(c.sample.energy_wh))
            self._check_invalid_id_energy(c)

    # --- start and stop ------------------------------------------------------------------------
    def start(self, c):
        cp = self.cp
        auth = c.authorization
        if auth is None or c.in_transaction:
            return
        refusal = cp.session_refusal(c, auth["id_tag"], auth["info"])
        if refusal is not None:
            self.drop_authorizations(refusal, [c])
            return
        if cp.profile.has_lock and not c.locked:
            if c.lock_pending_since is None:
                c.lock_pending_since = cp.clock.monotonic()
                cp.station.set_lock(c.id, True)
            return   # continues in tick() once the lock confirms, or faults
        meter_start = self.energy_wh(c)
        if meter_start is None:
            meter_start = self.last_known_wh(c)
        reservation = cp.reservations.for_start(c, auth["id_tag"], auth["info"])
        c.authorization = None
        c.finishing = False
        c.suspended_evse = False
        c.tx_key = cp.journal.begin(c.id, auth["id_tag"], meter_start,
                                    reservation_id=reservation["id"] if reservation else None,
                                    first_sample=cp.sampling.stop_entry(c, "Transaction.Begin"))
        if reservation is not None:   # 3.11 (1); after the journal: a crash keeps it, not loses it
            cp.reservations.end(reservation["id"], "its transaction started")
        c.tx_auth_info = auth["info"]
        cp.smart_charging.transaction_started(c, auth["id_tag"])   # a RemoteStart's TxProfile
        cp.sampling.transaction_started(c)
        log.info("transaction started on connector %d for %s (meter %d Wh)",
                 c.id, auth["id_tag"], meter_start)
        cp.availability.save()

    def stop(self, c, reason, id_tag=None, refresh=True):
        """End c's transaction: energy off first, then the journal, then the lock."""
        cp = self.cp
        key = c.tx_key
        if key is None:
            return
        c.suspended_evse = True       # withhold energy first
        cp.apply_outputs(c)
        meter_stop = self.energy_wh(c)
        if meter_stop is None:
            meter_stop = self.last_known_wh(c)
        cp.journal.end(key, meter_stop, reason, id_tag,
                       last_sample=cp.sampling.stop_entry(c, "Transaction.End"))
        c.tx_key = None
        cp.smart_charging.transaction_ended(c, key)   # its TxProfiles end with it (3.13.1)
        c.next_sample_due = None
        c.suspended_evse = False
        c.invalid_id = False
        c.finishing = c.plugged
        log.info("transaction on connector %d stopped: %s (meter %d Wh)", c.id, reason, meter_stop)
        if cp.profile.has_lock and c.locked:
            cp.station.set_lock(c.id, False)
        cp.availability.transaction_ended(c)
        if refresh:
            cp.refresh()

    def stop_all(self, reason):
        for c in self.cp.connectors.values():
            if c.in_transaction:
                self.stop(c, reason, refresh=False)

    def energy_wh(self, c):
        if c.sample is not None and c.sample.energy_wh is not None:
            return int(c.sample.energy_wh)
        return None

    def last_known_wh(self, c):
        """The register when the meter cannot be read now: the newest reading
        the journal kept for this connector (0 on a brand-new station)."""
        for record in self.cp.journal.recent(20):
            if record["connector_id"] != c.id:
                continue
            if record["stop"] is not None:
                return record["stop"]["meter_stop"]
            if record["last_meter"] is not None:
                return record["last_meter"]["wh"]
            return record["meter_start"]
        return 0

    def _check_invalid_id_energy(self, c):
        """StopTransactionOnInvalidId false: energy goes on up to MaxEnergyOnInvalidId."""
        cp = self.cp
        if not c.invalid_id or c.suspended_evse:
            return
        record = cp.journal.get(c.tx_key)
        used = (self.energy_wh(c) or 0) - record["meter_start"]
        if used >= cp.config.get("MaxEnergyOnInvalidId"):
            log.info("connector %d: MaxEnergyOnInvalidId reached; energy suspended", c.id)
            c.suspended_evse = True
            cp.refresh()

    def deauthorized(self, record, id_tag_info):
        """The CSMS refused the idTag of a running transaction (StartTransaction.conf)."""
        cp = self.cp
        c = cp.connectors.get(record["connector_id"])
        if c is None or c.tx_key != record["key"]:
            return
        log.warning("CSMS answered StartTransaction for %s with %s", record["id_tag"],
                    id_tag_info.get("status"))
        if cp.config.get("StopTransactionOnInvalidId"):
            self.stop(c, "DeAuthorized")
            return
        c.invalid_id = True
        self._check_invalid_id_energy(c)
        cp.refresh()

    # --- time ----------------------------------------------------------------------------------
    def tick(self, now):
        """ConnectionTimeOut and the cable lock a start waits for; seconds to the next."""
        cp = self.cp
        timeout = cp.config.get("ConnectionTimeOut")
        next_due = None
        for c in cp.connectors.values():
            due = None
            if c.authorization is not None and not c.plugged and timeout > 0:
                due = c.authorization["since"] + timeout
                if now >= due:
                    log.info("connector %d: no cable within ConnectionTimeOut; authorization "
                             "for %s dropped", c.id, c.authorization["id_tag"])
                    c.authorization = None
                    cp.refresh()
                    due = None
            if c.lock_pending_since is not None:
                if c.locked:
                    c.lock_pending_since = None
                    self.start(c)
                    cp.refresh()
                elif now >= c.lock_pending_since + LOCK_TIMEOUT:
                    c.lock_pending_since = None
                    cp.station.set_lock(c.id, False)
                    cp.fault(c.id, "ConnectorLockFailure", "cable lock did not engage")
                else:
                    lock_due = c.lock_pending_since + LOCK_TIMEOUT
                    due = lock_due if due is None else min(due, lock_due)
            if due is not None:
                next_due = due - now if next_due is None else min(next_due, due - now)
        return next_due

    def lock_confirmed(self, c):
        if c.lock_pending_since is not None:
            c.lock_pending_since = None
            self.start(c)     # the start was waiting for the lock


# --- the transaction messages (built by the journal when they are sent) ---------------------
class StartTransaction:
    """StartTransaction.req from the record; its answer brings the transactionId
    (saved by the journal) and the idTagInfo: learnt, and acted on when invalid."""
    action = "StartTransaction"

    def __init__(self, cp=None):
        self.cp = cp

    def build(self, rec, entry, resolve):
        payload = {"connectorId": rec["connector_id"], "idTag": rec["id_tag"],
                   "meterStart": rec["meter_start"], "timestamp": resolve(rec["start"])}
        if rec["reservation_id"] is not None:
            payload["reservationId"] = rec["reservation_id"]
        return payload

    def confirmed(self, rec, conf):
        if self.cp is None:
            return
        info = conf["idTagInfo"]
        learn(self.cp, rec["id_tag"], info)
        if not is_valid(info, self.cp.clock.now()):
            self.cp.transactions.deauthorized(rec, info)


class StopTransaction:
    """StopTransaction.req with the stop, and the transactionData kept for it
    (never an empty array); its idTagInfo is learnt for the stopping card."""
    action = "StopTransaction"

    def __init__(self, cp=None):
        self.cp = cp

    def build(self, rec, entry, resolve):
        stop = rec["stop"]
        payload = {"transactionId": rec["transaction_id"], "meterStop": stop["meter_stop"],
                   "timestamp": resolve(stop["at"])}
        if stop.get("reason"):
            payload["reason"] = stop["reason"]
        if stop.get("id_tag"):
            payload["idTag"] = stop["id_tag"]
        if rec["samples"]:
            payload["transactionData"] = [{"timestamp": resolve(e["at"]),
                                           "sampledValue": e["sampledValue"]}
                                          for e in rec["samples"]]
        return payload

    def confirmed(self, rec, conf):
        info = conf.get("idTagInfo")
        if self.cp is None or not info:
            return
        tag = (rec.get("stop") or {}).get("id_tag") or rec["id_tag"]
        learn(self.cp, tag, info)


# --- the CSMS's calls --------------------------------------------------------------------------
class RemoteStartTransaction:
    """RemoteStartTransaction (5.11).

    Rejected for connector 0 or an unknown connector, a connector that is busy or
    where no session may start (safety.session_refusal: not accepted by the CSMS,
    unavailable, faulted, a reset under way, reserved for another idTag: 3.11,
    decided here from the idTag and the parentIdTag the local list or cache
    knows; when only an unknown parent can decide, Accepted and the Authorize
    that follows decides), and for a chargingProfile whose
    purpose is not TxProfile. While the registration is Pending the dispatcher
    answers Rejected before this handler is reached (4.2). Otherwise Accepted;
    then the idTag is authorized as if it had been presented locally when
    AuthorizeRemoteTxRequests is true, and the transaction starts when the EV is
    connected (else ConnectionTimeOut applies). The chargingProfile must be a
    valid TxProfile (ocpp_core/smart_charging: checked now, Rejected if not);
    it becomes the transaction's TxProfile when the transaction starts."""
    action = "RemoteStartTransaction"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        cp = self.cp
        cid = payload.get("connectorId")
        profile = payload.get("chargingProfile")
        if profile is not None and profile.get("chargingProfilePurpose") != "TxProfile":
            return {"status": "Rejected"}
        id_tag = payload["idTag"]
        info = cp.transactions.known_info(id_tag)   # a reservation may need its parentIdTag
        c = cp.connector(cid) if cid is not None else \
            cp.transactions.connector_for_new_session(id_tag, info)
        if c is None or c.authorization is not None or \
                cp.session_refusal(c, id_tag, info) is not None:
            return {"status": "Rejected"}
        try:    # None forgets the profile of an earlier RemoteStart that never started
            cp.smart_charging.remote_start_profile(c, id_tag, profile)
        except Invalid:    # not a valid TxProfile (5.11)
            return {"status": "Rejected"}
        return Reply({"status": "Accepted"},
                     then=lambda: cp.transactions.remote_start(c, payload["idTag"]))


class RemoteStopTransaction:
    """RemoteStopTransaction (5.12): Accepted for a running transaction (then
    stopped with reason Remote), Rejected for any other transactionId."""
    action = "RemoteStopTransaction"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        cp = self.cp
        for c in cp.connectors.values():
            if c.in_transaction:
                record = cp.journal.get(c.tx_key)
                if record and record.get("transaction_id") == payload["transactionId"]:
                    return Reply({"status": "Accepted"},
                                 then=lambda: cp.transactions.stop(c, "Remote"))
        return {"status": "Rejected"}
