"""The Reservation profile (OCPP 1.6 Edition 2, sections 3.11, 5.1, 5.13; the
status Reserved of 4.9): ReserveNow and CancelReservation, and the service
that keeps the reservations.

- Reservations: the service the façade constructs (cp.reservations) and ticks.
  It decides what ReserveNow answers, which reservation (if any) keeps a
  connector from a session (safety.session_refusal asks blocking()), which
  reservation a starting transaction ends (for_start/end, the reservationId of
  StartTransaction), expiry, and the end of a reservation when its connector or
  the station becomes Faulted or Unavailable (sync(), from cp.refresh()).
- ReserveNow / CancelReservation: the CSMS's calls.

Persisted in the store as "reservations": {"items": [{"id", "connector_id",
"id_tag", "parent_id_tag", "expiry", "expiry_date"}]}, written before a
ReserveNow is answered Accepted, so a reservation survives kill -9 and Reset.

Readings of the spec chosen here (each cited where it is applied):
- Matching (3.11): "the incoming idTag or the parent idTag match the idTag or
  parent idTag of the reservation" is read pairwise: the same idTag, or the same
  non-empty parentIdTag. The parent of an incoming idTag is looked up locally
  (list, cache) or learnt from Authorize.conf, as 3.11 says, only when the
  reservation has a parentIdTag.
- Scope (3.11 "on the reserved connector"): a reservation refuses other idTags
  on its own connector only. A card of the reservation's idTag or group may
  charge on another connector; that transaction does not end the reservation
  (its StartTransaction has no reservationId), only one on the reserved
  connector (or, for connector 0, on any connector) does.
- Answers (5.13): Faulted / Unavailable / Occupied are judged in that order;
  a connector that is Preparing (an EV connected or an idTag being authorized)
  or Finishing is Occupied: it is not Available to a new user. The station
  with an unsafe fault is Faulted, Inoperative is Unavailable, for any connector.
  Rejected also while no session may start at all (registration not Accepted,
  a reset under way) and for a connector the station does not have.
- Ending (3.11 (3)): Faulted or Unavailable ends the reservation for good
  (see sync()); a plug-in without the reserved idTag does not (status stays
  Reserved: connector.derive_status).
- Time: expiryDate is wall-clock. While the station's clock is not trusted
  (Clock.valid false: 1970 at boot until BootNotification sets it) no
  reservation expires; it keeps its connector, and expires as soon as the
  clock is known (the BootNotification answer checks before the statuses are
  reported). A ReserveNow whose expiryDate is not in the future (with a trusted
  clock) is answered Rejected and changes nothing: it would end the moment it
  began (3.11 (2)). A date-time without a zone never gets here: the validator
  answers PropertyConstraintViolation (OCPP-J 4.2.3), nothing is applied.
- Connector 0 (3.11, ReserveConnectorZeroSupported): at most one reservation
  for connector 0 at a time (a second one is Occupied: "reserved for the same
  or another idTag"). A session for another idTag may start on connector c only
  while another connector stays Available (idle, unplugged, not reserved);
  the connectors where it may not show Reserved (with one connector: that one).
"""

from ocpp_core.auth import normalize_tag, same_group
from ocpp_core.log import get_logger
from ocpp_core.rpc import Reply
from ocpp_core.safety import station_unsafe
from ocpp_core.timestamps import parse_rfc3339

log = get_logger("ocpp.reservation")

NAME = "Reservation"
STORE_NAME = "reservations"

ACCEPTED = "Accepted"
FAULTED = "Faulted"
OCCUPIED = "Occupied"
REJECTED = "Rejected"
UNAVAILABLE = "Unavailable"


def _record(raw):
    """A stored reservation, checked; None if it is not one."""
    if type(raw) is not dict:
        return None
    rid, cid, tag = raw.get("id"), raw.get("connector_id"), raw.get("id_tag")
    parent, expiry = raw.get("parent_id_tag"), raw.get("expiry")
    if type(rid) is not int or type(cid) is not int or cid < 0 or type(tag) is not str \
            or not (parent is None or type(parent) is str) \
            or type(expiry) not in (int, float):
        return None
    return {"id": rid, "connector_id": cid, "id_tag": tag, "parent_id_tag": parent,
            "expiry": float(expiry), "expiry_date": str(raw.get("expiry_date") or "")}


class Reservations:
    def __init__(self, cp):
        self.cp = cp
        self.items = {}          # reservationId -> record
        # The station's policy: False = "configured not to accept reservations"
        # (3.11: every ReserveNow is then answered Rejected).
        self.accepting = True
        self._saved = None
        self._load()

    # --- persistence ----------------------------------------------------------------------
    def _load(self):
        cp = self.cp
        saved = cp.store.load(STORE_NAME, {}) or {}
        items = saved.get("items") if type(saved) is dict else None
        if type(items) is not list:
            items = []
        for raw in items:
            rec = _record(raw)
            if rec is None or (rec["connector_id"] != 0 and rec["connector_id"] not in
                               cp.connectors):
                log.warning("stored reservation %.80r ignored", raw)
                continue
            self.items[rec["id"]] = rec
        self._saved = self._data()

    def _data(self):
        return {"items": [dict(self.items[k]) for k in sorted(self.items)]}

    def save(self):
        data = self._data()
        if data != self._saved:
            self.cp.store.save(STORE_NAME, data)
            self._saved = data

    def _save_or_log(self):
        try:
            self.save()
        except OSError as e:   # the reservation has ended in memory; retried at the next change
            log.error("reservations could not be saved: %s", e)

    # --- questions ----------------------------------------------------------------------------
    def zero_supported(self):
        try:
            return bool(self.cp.config.get("ReserveConnectorZeroSupported"))
        except KeyError:
            return False

    @staticmethod
    def matches(res, id_tag, info):
        """May idTag (with idTagInfo info) use reservation res? (3.11, pairwise.)"""
        if id_tag is None:
            return False
        parent = res["parent_id_tag"]
        return same_group(res["id_tag"], {"parentIdTag": parent} if parent else None,
                          id_tag, info if type(info) is dict else None)

    @staticmethod
    def needs_group(res, id_tag):
        """True when only the idTag's parentIdTag can decide whether it may use res."""
        return bool(res["parent_id_tag"]) and \
            (id_tag is None or normalize_tag(id_tag) != normalize_tag(res["id_tag"]))

    def _specific(self, c, ignore=None):
        for res in self.items.values():
            if res["connector_id"] == c.id and res["id"] != ignore:
                return res
        return None

    def _zero(self, ignore=None):
        for res in self.items.values():
            if res["connector_id"] == 0 and res["id"] != ignore:
                return res
        return None

    def _idle(self, c, ignore=None):
        """No session on c, none being authorized, not reserved itself, and usable."""
        cp = self.cp
        return (c.operative and cp.station_operative and not c.unsafe_fault()
                and not c.in_transaction and c.authorization is None
                and self._specific(c, ignore) is None)

    def _available(self, c, ignore=None):
        """What a new user would find Available: idle and no EV connected."""
        return self._idle(c, ignore) and not c.plugged and not c.finishing

    def _zero_holds(self, c, ignore=None):
        """True when the connector-0 reservation needs c: no other connector
        would remain Available for it if c were taken."""
        for other in self.cp.connectors.values():
            if other is not c and self._available(other, ignore):
                return False
        return True

    def blocking(self, c, id_tag=None, info=None, lookup_pending=False):
        """The reservation that keeps idTag from a session on connector c, or None.
        lookup_pending: the idTag's parentIdTag is still to be looked up; a
        reservation that only the parent can decide does not block yet."""
        for res in self.items.values():
            if self.matches(res, id_tag, info):
                continue
            if lookup_pending and self.needs_group(res, id_tag):
                continue
            if res["connector_id"] == c.id:
                return res
            if res["connector_id"] == 0 and self._zero_holds(c):
                return res
        return None

    def reserved_for(self, c, id_tag, info):
        """True when c is held by a reservation this idTag may use."""
        res = c.reservation
        return res is not None and self.matches(res, id_tag, info)

    def for_start(self, c, id_tag, info):
        """The reservation a transaction of idTag on c ends (3.11 (1)): the one
        of c, else the connector-0 one; a reservation of this idTag for another
        connector is not ended by a transaction elsewhere."""
        specific = self._specific(c)
        if specific is not None and self.matches(specific, id_tag, info):
            return specific
        zero = self._zero()
        if zero is not None and self.matches(zero, id_tag, info):
            return zero
        return None

    # --- changes ---------------------------------------------------------------------------
    def end(self, reservation_id, why):
        res = self.items.pop(reservation_id, None)
        if res is None:
            return False
        log.info("reservation %d (connector %d, %s) ended: %s", res["id"], res["connector_id"],
                 res["id_tag"], why)
        self._save_or_log()
        return True

    def reserve(self, payload):
        """ReserveNow (5.13) -> status; an Accepted reservation is in memory and
        on disk when this returns. Nothing changes for any other status."""
        rid = payload["reservationId"]
        cid = payload["connectorId"]
        status = self._verdict(cid, rid, payload["expiryDate"])
        if status != ACCEPTED:
            log.info("ReserveNow %d for connector %d (%s): %s", rid, cid, payload["idTag"], status)
            return status
        rec = {"id": rid, "connector_id": cid, "id_tag": payload["idTag"],
               "parent_id_tag": payload.get("parentIdTag"),
               "expiry": parse_rfc3339(payload["expiryDate"]),
               "expiry_date": payload["expiryDate"]}
        before = self.items.get(rid)
        self.items[rid] = rec      # 3.11: the same reservationId replaces the reservation
        try:
            self.save()
        except OSError as e:
            if before is None:
                del self.items[rid]
            else:
                self.items[rid] = before
            log.error("ReserveNow %d: cannot persist the reservation (%s); Rejected", rid, e)
            return REJECTED
        log.info("reservation %d %s: connector %d for %s until %s", rid,
                 "replaced" if before is not None else "made", cid, rec["id_tag"],
                 rec["expiry_date"])
        return ACCEPTED

    def _verdict(self, cid, rid, expiry_date):
        """What ReserveNow answers (5.13), judged as if reservation rid (being
        replaced, 3.11) did not exist."""
        cp = self.cp
        if not self.accepting:
            return REJECTED
        if cid != 0 and cid not in cp.connectors:
            return REJECTED     # no such connector: none of the other statuses applies
        if cid == 0 and not self.zero_supported():
            return REJECTED     # 3.11: ReserveConnectorZeroSupported not set or false
        if not cp.registration.admits_sessions or cp.reset_pending is not None:
            # A reservation promises a session; none may start now (4.2, Reset).
            return REJECTED
        if cp.clock.valid and parse_rfc3339(expiry_date) <= cp.clock.now():
            return REJECTED     # already expired: it would end at once (3.11 (2))
        # The Charge Point as a whole (3.11: "the Charge Point or the connector").
        if station_unsafe(cp):
            return FAULTED
        if not cp.station_operative:
            return UNAVAILABLE
        if cid == 0:
            if self._zero(rid) is not None:
                return OCCUPIED     # "reserved for the same or another idTag"
            connectors = list(cp.connectors.values())
            if any(self._available(c, rid) for c in connectors):
                return ACCEPTED
            if any(c.operative and not c.unsafe_fault() for c in connectors):
                return OCCUPIED
            if any(c.unsafe_fault() for c in connectors):
                return FAULTED
            return UNAVAILABLE
        c = cp.connectors[cid]
        if c.unsafe_fault():
            return FAULTED
        if not c.operative:
            return UNAVAILABLE
        # Occupied (3.11) also for a connector that is Preparing or Finishing: it
        # is in use (an EV connected, or an idTag being authorized), not
        # Available for a new user, so it cannot be promised to one.
        if c.in_transaction or c.plugged or c.finishing or c.authorization is not None:
            return OCCUPIED
        if self._specific(c, rid) is not None:
            return OCCUPIED     # "reserved for the same or another idTag"
        zero = self._zero(rid)
        if zero is not None and self._zero_holds(c, rid):
            return OCCUPIED     # the last connector kept for the connector-0 reservation
        return ACCEPTED

    def cancel(self, reservation_id):
        """CancelReservation (5.1): Accepted for a reservation the station has."""
        if reservation_id not in self.items:
            return REJECTED
        self.end(reservation_id, "cancelled by the CSMS")
        return ACCEPTED

    def sync(self):
        """From cp.refresh(), before the statuses are derived: end reservations
        whose connector or station is Faulted or Unavailable (3.11 (3)), and
        mark each connector with the reservation it is held for (c.reservation,
        shown as Reserved by connector.derive_status).

        Reading of 3.11 (3): the end is final; the reservation does not come
        back when the fault clears or the connector becomes Operative again
        (the CSMS knows from the StatusNotification and may reserve again). A
        fault only ends it when it makes the status Faulted (an unsafe fault);
        a warning (e.g. ReaderFailure) does not. A connector-0 reservation ends
        only when the whole Charge Point is Faulted or Unavailable; a single
        faulted connector just leaves fewer connectors to keep free."""
        cp = self.cp
        station_down = None
        if station_unsafe(cp):
            station_down = "the Charge Point is Faulted"
        elif not cp.station_operative:
            station_down = "the Charge Point is Unavailable"
        for res in list(self.items.values()):
            why = station_down
            c = cp.connectors.get(res["connector_id"])
            if why is None and c is not None:
                if c.unsafe_fault():
                    why = "connector %d is Faulted" % c.id
                elif not c.operative:
                    why = "connector %d is Unavailable" % c.id
            if why is not None:
                self.end(res["id"], why)
        zero = self._zero()
        for c in cp.connectors.values():
            held = self._specific(c)
            if held is None and zero is not None and self._idle(c) and self._zero_holds(c):
                held = zero
            c.reservation = held

    # --- time --------------------------------------------------------------------------------
    def expire(self):
        """End the reservations whose expiryDate has been reached (3.11 (2)),
        once the clock can be trusted. True when one ended."""
        clock = self.cp.clock
        if not clock.valid or not self.items:
            return False
        now = clock.now()
        ended = False
        for res in list(self.items.values()):
            if res["expiry"] <= now:
                ended = self.end(res["id"], "expired (%s)" % res["expiry_date"]) or ended
        return ended

    def tick(self, now=None):
        """Expiry; seconds until the next reservation expires (None: nothing due)."""
        if self.expire():
            self.cp.refresh()     # back to Available: its StatusNotification follows
        clock = self.cp.clock
        if not self.items or not clock.valid:
            return None
        wall = clock.now()
        return max(0.0, min(res["expiry"] for res in self.items.values()) - wall)


# --- the CSMS's calls ----------------------------------------------------------------------------
class ReserveNow:
    """ReserveNow (5.13): Accepted, Faulted, Occupied, Rejected or Unavailable
    (the rules are those of Reservations.reserve). An accepted reservation is
    persisted before the answer; its StatusNotification Reserved follows it."""
    action = "ReserveNow"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        status = self.cp.reservations.reserve(payload)
        if status != ACCEPTED:
            return {"status": status}
        return Reply({"status": status}, then=self.cp.refresh)


class CancelReservation:
    """CancelReservation (5.1): Accepted and the reservation ends (its connector
    becomes Available) when the station has it, else Rejected."""
    action = "CancelReservation"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        status = self.cp.reservations.cancel(payload["reservationId"])
        if status != ACCEPTED:
            return {"status": status}
        return Reply({"status": status}, then=self.cp.refresh)


OPERATIONS = (CancelReservation, ReserveNow)


def operations(cp):
    return [op(cp) for op in OPERATIONS]
