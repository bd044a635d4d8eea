"""The charge point: OCPP 1.6 Core behaviour over a station it does not touch.

Events come in (EV state, card, meter sample, fault, CSMS call, time); commands
go out through the StationInterface (contactor, lock, offered current, restart)
and OCPP messages through the RpcEndpoint. Everything runs on the caller's
thread; tick() says how long the caller may sleep.

Who does what:
  registration.py  BootNotification / Heartbeat       status.py   StatusNotification
  journal.py       transaction messages, durable      auth.py     idTag decisions
  config.py        configuration keys                 metering.py sampled values
  operations/      one module per CSMS-initiated operation
"""


from ocpp_core import connector as conn
from ocpp_core.auth import AuthCache, Authorizer, LocalList, is_valid
from ocpp_core.config import Configuration
from ocpp_core.journal import Journal
from ocpp_core.metering import next_aligned, sampled_values
from ocpp_core.registration import ACCEPTED, Registration
from ocpp_core.safety import may_deliver_energy, session_refusal
from ocpp_core.status import StatusNotifier
from ocpp_core.log import get_logger

log = get_logger("ocpp.cp")

IMPLEMENTED_PROFILES = ("Core",)
LOCK_TIMEOUT = 5.0          # s; a lock that has not confirmed by then has failed
RESET_GRACE = 5.0           # s; a reset waits this long for the journal to drain
FAR = 3600.0


class ChargePoint:
    def __init__(self, rpc, clock, store, station, profile, boot_payload):
        self.rpc = rpc
        self.clock = clock
        self.store = store
        self.station = station
        self.profile = profile
        self.hooks = {}     # "WebSocketPingInterval", "AuthorizationKey", ... -> fn(value)
        self.fault_listeners = []   # fn(connector_id, error_code, info, "raised"|"cleared")
        self.vendor_handlers = {}   # DataTransfer vendorId -> fn(messageId, data) -> dict
        self.config = Configuration(store, profile, supported_profiles=IMPLEMENTED_PROFILES,
                                    on_change=self._config_changed)
        self.journal = Journal(store, clock, self.config.get)
        self.journal.on_start_confirmed = self._start_confirmed
        self.journal.on_stop_confirmed = self._stop_confirmed
        self.auth = Authorizer(self.config.get, AuthCache(store), LocalList(store), clock)
        self.registration = Registration(rpc, clock, boot_payload,
                                         heartbeat_interval=self.config.get("HeartbeatInterval"),
                                         on_verdict=self._boot_answered, store=store)
        rpc.admission = self.registration.admit     # 4.2: what may be answered, and how
        self.status = StatusNotifier(rpc, clock, self.config.get)
        self.connectors = {}
        for cid in profile.connector_ids():
            self.connectors[cid] = conn.Connector(cid)
        self.station_operative = True
        self.station_scheduled = None   # "Inoperative" once the running transactions end
        self.station_faults = {}
        self.reset_pending = None       # {"kind", "deadline"} once a Reset was accepted
        self._next_aligned = None       # epoch of the next clock-aligned sample
        self.deferred_effects = None    # set while a ChangeConfiguration is answered
        self._saved_connector_state = None
        self._load_connector_state()
        self._recover()
        from ocpp_core import operations
        operations.register(self)
        self.refresh()

    # ------------------------------------------------------------------ state
    @property
    def online(self):
        return self.rpc.connected and self.registration.accepted

    def connector(self, connector_id):
        return self.connectors.get(connector_id)

    def _load_connector_state(self):
        saved = self.store.load("connectors", {}) or {}
        try:
            self.station_operative = bool(saved.get("0", {}).get("operative", True))
            self.station_scheduled = saved.get("0", {}).get("scheduled")
            for cid, c in self.connectors.items():
                entry = saved.get(str(cid), {})
                c.operative = bool(entry.get("operative", True))
                c.scheduled = entry.get("scheduled")
                c.finishing = bool(entry.get("finishing", False))
        except (AttributeError, TypeError):
            log.warning("connector state file unreadable; starting from defaults")

    def _save_connector_state(self):
        data = {"0": {"operative": self.station_operative, "scheduled": self.station_scheduled}}
        for cid, c in self.connectors.items():
            data[str(cid)] = {"operative": c.operative, "scheduled": c.scheduled,
                              "finishing": c.finishing}
        if data != self._saved_connector_state:     # two fsyncs saved per unchanged write
            self.store.save("connectors", data)
            self._saved_connector_state = data

    def _recover(self):
        """After a power cut: end interrupted transactions with PowerLoss (their
        connectors report Finishing while an EV is still connected)."""
        ended = self.journal.recover_after_power_loss()
        for key in ended:
            record = self.journal.get(key)
            c = self.connectors.get(record["connector_id"]) if record else None
            if c is not None:
                c.finishing = True
                log.warning("transaction on connector %d was interrupted by a power loss; "
                            "ended with reason PowerLoss", c.id)
        if ended:
            self._save_connector_state()

    # ------------------------------------------------------------------ outputs
    def refresh(self):
        """Recompute outputs and statuses from the current facts."""
        for c in self.connectors.values():
            self._apply_outputs(c)
            self.status.update(c.id, conn.derive_status(c, self.station_operative),
                               c.error_code(), c.error_info())
        station_code = self._station_error_code()
        self.status.update(0, conn.derive_station_status(self.station_operative, self.station_faults),
                           station_code, self.station_faults.get(station_code) if
                           station_code != conn.NO_ERROR else None)

    def _station_error_code(self):
        for code in conn.UNSAFE_FAULTS + conn.WARNING_FAULTS:
            if code in self.station_faults:
                return code
        return conn.NO_ERROR

    def _apply_outputs(self, c):
        """Safety first: the rules of safety.may_deliver_energy, and the
        contactor closes only while the EV asks for energy (state C/D)."""
        may_offer = may_deliver_energy(self, c)
        offer = self.profile.max_current_a if may_offer else 0.0
        if offer != c.offered_a:
            c.offered_a = offer
            self.station.set_offered_current(c.id, offer)
        close = offer > 0 and c.ev_state in ("C", "D")
        if close != c.contactor_closed:
            c.contactor_closed = close
            self.station.set_contactor(c.id, close)

    def session_refusal(self, c=None):
        """Why no session may start now (on connector c); None when it may."""
        return session_refusal(self, c)

    # ------------------------------------------------------------------ events
    def ev_state_changed(self, connector_id, state):
        c = self.connectors.get(connector_id)
        if c is None or state not in conn.EV_STATES:
            return
        if state == c.ev_state:
            c.ev_known = True
            return
        before, c.ev_state = c.ev_state, state
        first, c.ev_known = not c.ev_known, True
        log.info("connector %d: EV state %s -> %s", c.id, before, state)
        if state in ("E", "F"):
            self.fault(c.id, "EVCommunicationError", "pilot state %s" % state)
            return
        if before in ("E", "F") and "EVCommunicationError" in c.faults:
            self.fault_cleared(c.id, "EVCommunicationError")
        if first:
            pass    # the state at start-up: nothing was plugged or unplugged
        elif state == "A":
            self._ev_disconnected(c)
        elif before == "A":
            self._ev_connected(c)
        self.refresh()

    def _ev_connected(self, c):
        c.finishing = False
        if c.in_transaction:
            return   # reconnected to a transaction that survived the disconnect
        if c.authorization is not None:
            self._start_transaction(c)

    def _ev_disconnected(self, c):
        if c.finishing:
            c.finishing = False
            self._save_connector_state()
        if c.in_transaction:
            if self.config.get("StopTransactionOnEVSideDisconnect"):
                self._stop_transaction(c, "EVDisconnected")
                c.finishing = False
            # else: the transaction goes on, suspended, until the EV returns
        if self.profile.has_lock and c.locked and not c.in_transaction and \
                self.config.get("UnlockConnectorOnEVSideDisconnect"):
            self.station.set_lock(c.id, False)

    def card_presented(self, id_tag):
        """A card (or any idTag) was presented at the reader."""
        id_tag = id_tag[:20]
        log.info("card %s presented", id_tag)
        if self.reset_pending is not None:
            return
        # A running transaction of the same card, or the same group, stops.
        for c in self.connectors.values():
            if c.in_transaction:
                record = self.journal.get(c.tx_key)
                if record and self.auth.same_group(record["id_tag"], self._tx_info(c, record),
                                                   id_tag, None):
                    self._stop_transaction(c, "Local", id_tag)
                    self.refresh()
                    return
        refusal = self.session_refusal()
        if refusal is not None:     # not even an Authorize.req (4.2 while not accepted)
            log.info("card %s ignored: %s", id_tag, refusal)
            return
        busy = any(c.in_transaction for c in self.connectors.values())
        target = self.connector_for_new_session()
        if target is None and not busy:     # nothing to start, nothing it might stop
            log.info("card %s ignored: no connector can start a session", id_tag)
            return
        self.authorize(id_tag, lambda accepted, info: self._card_decided(id_tag, accepted, info))

    def connector_for_new_session(self):
        """The connector a card or a remote start without connectorId serves: an
        EV waiting, else a free connector, else one whose session finished."""
        usable = [c for c in self.connectors.values() if self.session_refusal(c) is None]
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

    def _card_decided(self, id_tag, accepted, info):
        # The card may belong to the group of a running transaction: stop it.
        # Another card of the group stops only while it is valid itself (4.10:
        # the stop is authorized like a start); a Blocked or Expired card of
        # the group does not end somebody else's transaction.
        for c in self.connectors.values():
            if c.in_transaction and accepted:
                record = self.journal.get(c.tx_key)
                if record and self.auth.same_group(record["id_tag"], self._tx_info(c, record),
                                                   id_tag, info):
                    self._stop_transaction(c, "Local", id_tag)
                    self.refresh()
                    return
        if not accepted:
            log.info("card %s not authorized (%s)", id_tag, (info or {}).get("status"))
            return
        target = self.connector_for_new_session()
        if target is None:
            return
        self.grant(target, id_tag, info)

    def grant(self, c, id_tag, info):
        """idTag authorized on connector c: the transaction starts once the EV is
        connected (at once when it is), unless a safety rule refuses it."""
        refusal = self.session_refusal(c)
        if refusal is not None:
            log.info("authorization of %s on connector %d dropped: %s", id_tag, c.id, refusal)
            c.authorization = None
            self.refresh()
            return
        c.authorization = {"id_tag": id_tag, "info": info, "since": self.clock.monotonic()}
        if c.plugged:
            c.finishing = False
            self._start_transaction(c)
        self.refresh()

    def authorize(self, id_tag, done):
        """Decide locally when the rules allow, else ask the CSMS; done(accepted, info)."""
        verdict, info = self.auth.decide(id_tag, self.online)
        if verdict == "accepted":
            done(True, info)
            return
        if verdict == "rejected":
            done(False, info)
            return

        def on_result(payload):
            info = payload["idTagInfo"]
            self.auth.learn(id_tag, info)
            done(is_valid(info, self.clock.now()), info)

        def on_error(code, description, details):
            # No answer: decide as if offline (LocalAuthorizeOffline etc.).
            verdict, info = self.auth.decide(id_tag, False)
            done(verdict == "accepted", info)

        self.rpc.call("Authorize", {"idTag": id_tag}, on_result=on_result, on_error=on_error)

    def remote_start(self, c, id_tag, profile=None):
        """A RemoteStartTransaction accepted for connector c (5.11)."""
        if profile is not None:
            c.remote_profile = profile     # kept for the Smart Charging work
        if not self.config.get("AuthorizeRemoteTxRequests"):
            self.grant(c, id_tag, {"status": "Accepted"})
            return
        # Hold the connector while the authorization is under way.
        c.authorization = {"id_tag": id_tag, "info": None, "since": self.clock.monotonic(),
                           "pending": True}
        self.refresh()

        def decided(accepted, info):
            if c.authorization is None or c.authorization.get("id_tag") != id_tag:
                return   # dropped meanwhile (made Inoperative, a fault, timed out)
            c.authorization = None
            if accepted:
                self.grant(c, id_tag, info)
            else:
                self.refresh()

        self.authorize(id_tag, decided)

    def meter_sample(self, connector_id, sample):
        """A reading from the connector's meter (energy in Wh, see metering.py)."""
        c = self.connectors.get(connector_id)
        if c is None:
            return
        c.sample = sample
        if sample.energy_wh is None:
            return
        if "PowerMeterFailure" in c.faults:
            self.fault_cleared(c.id, "PowerMeterFailure")
        if c.in_transaction:
            self.journal.record_meter(c.tx_key, int(sample.energy_wh))
            self._check_invalid_id_energy(c)

    def energy_wh(self, c):
        if c.sample is not None and c.sample.energy_wh is not None:
            return int(c.sample.energy_wh)
        return None

    def _last_known_wh(self, c):
        """The register when the meter cannot be read now: the newest reading
        the journal kept for this connector (0 on a brand-new station)."""
        for record in self.journal.recent(20):
            if record["connector_id"] != c.id:
                continue
            if record["stop"] is not None:
                return record["stop"]["meter_stop"]
            if record["last_meter"] is not None:
                return record["last_meter"]["wh"]
            return record["meter_start"]
        return 0

    def _tx_info(self, c, record):
        """What we know of the running transaction's idTag (its parentIdTag)."""
        return record.get("id_tag_info") or getattr(c, "tx_auth_info", None)

    def fault(self, connector_id, error_code, info=None):
        """A device reports a fault: connector 0 = the station (reader, modem)."""
        if connector_id == 0:
            if self.station_faults.get(error_code, "-") == info:
                return
            self.station_faults[error_code] = info
            log.warning("station fault %s%s", error_code, ": " + info if info else "")
            self._tell_fault_listeners(0, error_code, info, "raised")
            if error_code in conn.UNSAFE_FAULTS:
                for c in self.connectors.values():
                    if c.in_transaction:
                        self._stop_transaction(c, "Other")
            self.refresh()
            return
        c = self.connectors.get(connector_id)
        if c is None or c.faults.get(error_code, "-") == info:
            return
        c.faults[error_code] = info
        log.warning("connector %d fault %s%s", c.id, error_code, ": " + info if info else "")
        self._tell_fault_listeners(c.id, error_code, info, "raised")
        if error_code in conn.UNSAFE_FAULTS:
            c.authorization = None
            self._apply_outputs(c)     # open the contactor before anything else
            if c.in_transaction:
                reason = "EmergencyStop" if error_code == "PowerSwitchFailure" else "Other"
                self._stop_transaction(c, reason)
        self.refresh()

    def fault_cleared(self, connector_id, error_code):
        faults = self.station_faults if connector_id == 0 else \
            getattr(self.connectors.get(connector_id), "faults", {})
        if faults.pop(error_code, "-") != "-":
            log.info("%s fault %s cleared", "station" if connector_id == 0 else
                     "connector %d" % connector_id, error_code)
            self._tell_fault_listeners(connector_id, error_code, None, "cleared")
            self.refresh()

    def _tell_fault_listeners(self, connector_id, error_code, info, event):
        for listener in self.fault_listeners:
            try:
                listener(connector_id, error_code, info, event)
            except Exception:
                log.exception("fault listener failed")

    def lock_feedback(self, connector_id, locked):
        c = self.connectors.get(connector_id)
        if c is None:
            return
        c.locked = locked
        if not locked and c.unlock_request is not None:
            self._finish_unlock(c, "Unlocked")
        if locked:
            if "ConnectorLockFailure" in c.faults:
                self.fault_cleared(c.id, "ConnectorLockFailure")
            if c.lock_pending_since is not None:
                c.lock_pending_since = None
                self._start_transaction(c)     # the start was waiting for the lock
        self.refresh()

    # ------------------------------------------------------------------ link
    def connection_up(self):
        self.rpc.connection_up()
        self.registration.connection_up()
        self.tick()

    def connection_down(self):
        self.rpc.connection_down()
        self.registration.connection_down()

    def _boot_answered(self, status, interval):
        if status == ACCEPTED:
            if interval > 0 and interval != self.config.get("HeartbeatInterval"):
                self.config.set("HeartbeatInterval", interval)
            self.status.report_all()
        else:   # Pending or Rejected: what waits for a plug-in may not start
            self.drop_authorizations("registration %s" % status)
        self.refresh()

    def drop_authorizations(self, why, targets=None):
        """Forget authorizations waiting for a plug-in (or a lock) on targets
        (default: every connector)."""
        for c in (self.connectors.values() if targets is None else targets):
            if c.authorization is None or c.in_transaction:
                continue
            log.info("connector %d: authorization for %s dropped: %s", c.id,
                     c.authorization["id_tag"], why)
            c.authorization = None
            if c.lock_pending_since is not None:
                c.lock_pending_since = None
                self.station.set_lock(c.id, False)

    # ------------------------------------------------------------------ transactions
    def _start_transaction(self, c):
        auth = c.authorization
        if auth is None or c.in_transaction:
            return
        refusal = self.session_refusal(c)
        if refusal is not None:
            self.drop_authorizations(refusal, [c])
            return
        if self.profile.has_lock and not c.locked:
            if c.lock_pending_since is None:
                c.lock_pending_since = self.clock.monotonic()
                self.station.set_lock(c.id, True)
            return   # continues in tick() once the lock confirms, or faults
        meter_start = self.energy_wh(c)
        if meter_start is None:
            meter_start = self._last_known_wh(c)
        c.authorization = None
        c.finishing = False
        c.suspended_evse = False
        c.tx_key = self.journal.begin(c.id, auth["id_tag"], meter_start,
                                      first_sample=self._stop_entry(c, "Transaction.Begin"))
        c.tx_auth_info = auth["info"]
        now = self.clock.monotonic()
        c.tx_started_mono = now
        interval = self.config.get("MeterValueSampleInterval")
        c.next_sample_due = now + interval if interval > 0 else None
        log.info("transaction started on connector %d for %s (meter %d Wh)",
                 c.id, auth["id_tag"], meter_start)
        self._save_connector_state()

    def _stop_transaction(self, c, reason, id_tag=None):
        key = c.tx_key
        if key is None:
            return
        c.suspended_evse = True       # withhold energy first
        self._apply_outputs(c)
        meter_stop = self.energy_wh(c)
        if meter_stop is None:
            meter_stop = self._last_known_wh(c)
        self.journal.end(key, meter_stop, reason, id_tag,
                         last_sample=self._stop_entry(c, "Transaction.End"))
        c.tx_key = None
        c.tx_started_mono = None
        c.next_sample_due = None
        c.suspended_evse = False
        c.invalid_id = False
        c.remote_profile = None
        c.finishing = c.plugged
        log.info("transaction on connector %d stopped: %s (meter %d Wh)", c.id, reason, meter_stop)
        if self.profile.has_lock and c.locked:
            self.station.set_lock(c.id, False)
        if c.scheduled is not None:
            c.operative = c.scheduled == "Operative"
            c.scheduled = None
            log.info("connector %d: scheduled availability applied (%s)", c.id,
                     "Operative" if c.operative else "Inoperative")
        if self.station_scheduled is not None and \
                not any(other.in_transaction for other in self.connectors.values()):
            self.station_operative = self.station_scheduled == "Operative"
            self.station_scheduled = None
            log.info("station: scheduled availability applied (%s)",
                     "Operative" if self.station_operative else "Inoperative")
        self._save_connector_state()

    def stop_transaction(self, connector_id, reason, id_tag=None):
        c = self.connectors.get(connector_id)
        if c is not None and c.in_transaction:
            self._stop_transaction(c, reason, id_tag)
            self.refresh()

    def _start_confirmed(self, record, id_tag_info):
        self.auth.learn(record["id_tag"], id_tag_info)
        if is_valid(id_tag_info, self.clock.now()):
            return
        c = self.connectors.get(record["connector_id"])
        if c is None or c.tx_key != record["key"]:
            return
        log.warning("CSMS answered StartTransaction for %s with %s", record["id_tag"],
                    id_tag_info.get("status"))
        if self.config.get("StopTransactionOnInvalidId"):
            self._stop_transaction(c, "DeAuthorized")
        else:
            c.invalid_id = True
            self._check_invalid_id_energy(c)
        self.refresh()

    def _check_invalid_id_energy(self, c):
        """StopTransactionOnInvalidId false: energy goes on up to MaxEnergyOnInvalidId."""
        if not c.invalid_id or c.suspended_evse:
            return
        record = self.journal.get(c.tx_key)
        used = (self.energy_wh(c) or 0) - record["meter_start"]
        if used >= self.config.get("MaxEnergyOnInvalidId"):
            log.info("connector %d: MaxEnergyOnInvalidId reached; energy suspended", c.id)
            c.suspended_evse = True
            self.refresh()

    def _stop_confirmed(self, record, payload):
        info = payload.get("idTagInfo")
        tag = record.get("stop", {}).get("id_tag") or record["id_tag"]
        if info:
            self.auth.learn(tag, info)

    # ------------------------------------------------------------------ metering
    def _stop_entry(self, c, context, stamp=None):
        """A transactionData entry of StopTxnSampledData, or None."""
        measurands = self.config.get("StopTxnSampledData")
        if not measurands or c.sample is None:
            return None
        values = self._values(c, measurands, context)
        if not values:
            return None
        return {"at": stamp or self.clock.stamp(), "sampledValue": values}

    def _stop_sample(self, c, context, stamp):
        entry = self._stop_entry(c, context, stamp)
        if entry is not None and c.tx_key is not None:
            self.journal.add_stop_sample(c.tx_key, entry)

    def _values(self, c, measurands, context):
        if c.sample is None:
            return []
        return sampled_values(c.sample, measurands, context, phases=self.profile.phases,
                              offered_current_a=c.offered_a,
                              nominal_voltage_v=self.profile.nominal_voltage_v)

    def _periodic_samples(self, now):
        interval = self.config.get("MeterValueSampleInterval")
        next_due = None
        for c in self.connectors.values():
            if not c.in_transaction or c.next_sample_due is None:
                continue
            if interval <= 0:
                c.next_sample_due = None
                continue
            while now >= c.next_sample_due:
                stamp = self.clock.stamp_at(c.next_sample_due)
                values = self._values(c, self.config.get("MeterValuesSampledData"),
                                      "Sample.Periodic")
                if values:
                    self.journal.queue_meter_values(c.tx_key, c.id,
                                                    [{"at": stamp, "sampledValue": values}])
                self._stop_sample(c, "Sample.Periodic", stamp)
                c.next_sample_due += interval
            wait = c.next_sample_due - now
            next_due = wait if next_due is None else min(next_due, wait)
        return next_due

    def _aligned_samples(self, now_mono):
        interval = self.config.get("ClockAlignedDataInterval")
        if interval <= 0 or not self.clock.valid:
            self._next_aligned = None
            return None
        now = self.clock.now()
        if self._next_aligned is None:
            self._next_aligned = next_aligned(now, interval)
        if now >= self._next_aligned:
            slot = self._next_aligned
            self._next_aligned = next_aligned(now, interval)
            if now - slot < interval:     # a slot missed by far (clock jump) is skipped
                stamp = self.clock.stamp_at(now_mono - (now - slot))
                stamp["w"] = slot
                self._take_aligned(stamp)
        return max(0.0, self._next_aligned - self.clock.now())

    def _take_aligned(self, stamp):
        measurands = self.config.get("MeterValuesAlignedData")
        stop_measurands = self.config.get("StopTxnAlignedData")
        for c in self.connectors.values():
            if measurands:
                values = self._values(c, measurands, "Sample.Clock")
                if values:
                    self.journal.queue_meter_values(c.tx_key, c.id,
                                                    [{"at": stamp, "sampledValue": values}])
            if stop_measurands and c.in_transaction:
                values = self._values(c, stop_measurands, "Sample.Clock")
                if values:
                    self.journal.add_stop_sample(c.tx_key, {"at": stamp, "sampledValue": values})

    # ------------------------------------------------------------------ time
    def tick(self, now=None):
        """Do what is due; returns seconds until something else will be due."""
        if now is None:
            now = self.clock.monotonic()
        waits = [FAR]
        waits.append(self.rpc.poll(now))
        waits.append(self.registration.tick(now))
        waits.append(self._connection_timeouts(now))
        waits.append(self._lock_timeouts(now))
        waits.append(self._periodic_samples(now))
        waits.append(self._aligned_samples(now))
        waits.append(self._reset_progress(now))
        self.journal.pump(self.rpc, now, self.online)
        waits.append(self.journal.next_due())
        waits.append(self.status.tick(self.online, now))
        return max(0.0, min(w for w in waits if w is not None))

    def _connection_timeouts(self, now):
        timeout = self.config.get("ConnectionTimeOut")
        next_due = None
        for c in self.connectors.values():
            if c.authorization is None or c.plugged or timeout <= 0:
                continue
            due = c.authorization["since"] + timeout
            if now >= due:
                log.info("connector %d: no cable within ConnectionTimeOut; authorization "
                         "for %s dropped", c.id, c.authorization["id_tag"])
                c.authorization = None
                self.refresh()
            else:
                next_due = due - now if next_due is None else min(next_due, due - now)
        return next_due

    def unlock(self, connector_id, answer):
        """UnlockConnector: energy off, lock open; answer when the lock reports."""
        c = self.connectors[connector_id]
        if c.in_transaction:
            c.suspended_evse = True
            self._apply_outputs(c)
        c.unlock_request = {"answer": answer, "deadline": self.clock.monotonic() + LOCK_TIMEOUT}
        self.station.set_lock(connector_id, False)

    def _finish_unlock(self, c, result):
        request, c.unlock_request = c.unlock_request, None
        request["answer"].resolve({"status": result})
        if c.in_transaction:        # after the answer, as OCTT TC_018_1 expects
            self._stop_transaction(c, "UnlockCommand")
        self.refresh()

    def _lock_timeouts(self, now):
        next_due = None
        for c in self.connectors.values():
            if c.unlock_request is not None:
                due = c.unlock_request["deadline"]
                if now >= due:
                    self._finish_unlock(c, "UnlockFailed")
                else:
                    next_due = due - now if next_due is None else min(next_due, due - now)
            if c.lock_pending_since is None:
                continue
            if c.locked:
                c.lock_pending_since = None
                self._start_transaction(c)
                self.refresh()
                continue
            due = c.lock_pending_since + LOCK_TIMEOUT
            if now >= due:
                c.lock_pending_since = None
                self.station.set_lock(c.id, False)
                self.fault(c.id, "ConnectorLockFailure", "cable lock did not engage")
            else:
                next_due = due - now if next_due is None else min(next_due, due - now)
        return next_due

    # ------------------------------------------------------------------ availability
    def change_availability(self, connector_id, kind):
        """ChangeAvailability (5.2) -> (status, apply): apply() runs after the
        answer. connector_id 0 is the station and every connector.

        - Accepted: the change applies at once (also when it is already so).
        - Scheduled: a transaction runs on an affected connector; that connector
          (and, for connector 0, the station) changes when it ends. Idle
          connectors of a scheduled station change at once, so that no new
          session starts that would put the change off again.
        - Rejected: an unknown connector, or a connector asked to become
          Operative while the station (connector 0) is, or is about to be,
          Inoperative: 5.2 gives Accepted only for a change that takes place,
          and the connector would stay Unavailable.
        Becoming Inoperative drops authorizations waiting for a plug-in there.
        """
        operative = kind == "Operative"
        if connector_id != 0 and connector_id not in self.connectors:
            return "Rejected", None
        if connector_id != 0 and operative and \
                (not self.station_operative or self.station_scheduled == "Inoperative"):
            return "Rejected", None
        targets = list(self.connectors.values()) if connector_id == 0 \
            else [self.connectors[connector_id]]
        busy = [c for c in targets if c.in_transaction]
        scheduled = any(c.operative != operative for c in busy) or \
            (connector_id == 0 and busy and self.station_operative != operative)

        def apply():
            if connector_id == 0:
                if busy and self.station_operative != operative:
                    self.station_scheduled = kind
                else:
                    self.station_operative = operative
                    self.station_scheduled = None
            for c in targets:
                if c.in_transaction:
                    c.scheduled = None if c.operative == operative else kind
                else:
                    c.operative = operative
                    c.scheduled = None
            if not operative:
                self.drop_authorizations("the connector was made Inoperative",
                                         [c for c in targets if not c.in_transaction])
            self._save_connector_state()
            self.refresh()

        return ("Scheduled" if scheduled else "Accepted"), apply

    # ------------------------------------------------------------------ reset
    def begin_reset(self, kind):
        """Reset accepted: stop every transaction (journaled before anything
        else), then restart once the journal has drained or the grace is over."""
        reason = "HardReset" if kind == "Hard" else "SoftReset"
        for c in self.connectors.values():
            if c.in_transaction:
                self._stop_transaction(c, reason)
        self.reset_pending = {"kind": kind, "deadline": self.clock.monotonic() + RESET_GRACE}
        self.refresh()
        log.info("%s reset: restarting once pending transaction messages are sent", kind)

    def _reset_progress(self, now):
        r = self.reset_pending
        if r is None:
            return None
        drained = self.journal.pending_count() == 0 and not self.rpc.busy
        if drained or now >= r["deadline"] or not self.online:
            self.reset_pending = None
            log.info("restarting (%s reset)", r["kind"])
            self.station.restart(r["kind"])
            return None
        return min(0.05, r["deadline"] - now)

    # ------------------------------------------------------------------ configuration
    def _config_changed(self, key, value):
        if self.deferred_effects is not None:
            self.deferred_effects.append(lambda: self._apply_config(key, value))
        else:
            self._apply_config(key, value)

    def _apply_config(self, key, value):
        if key == "HeartbeatInterval":
            self.registration.set_heartbeat_interval(value)
        elif key == "MeterValueSampleInterval":
            now = self.clock.monotonic()
            for c in self.connectors.values():
                if c.in_transaction:
                    c.next_sample_due = now + value if value > 0 else None
        elif key == "ClockAlignedDataInterval":
            self._next_aligned = None
        hook = self.hooks.get(key)
        if hook is not None:
            hook(value)
