"""The charge point: the façade of the engine over a station it does not touch.

Events come in (EV state, card, meter sample, fault, lock feedback, CSMS call,
time); commands go out through the StationInterface (contactor, lock, offered
current, restart) and OCPP messages through the RpcEndpoint. Everything runs on
the caller's thread; tick() says how long the caller may sleep.

Where things are (see docs/architecture.md):
  profiles.py      the feature profiles implemented; each registers its operations
  core/            the Core profile: registration, status, authorization,
                   transactions, meter_values, availability, configuration,
                   data_transfer (one class per OCPP message)
  reservation/     the Reservation profile: ReserveNow, CancelReservation and
                   the Reservations service (expiry, Reserved, who may start)
  smart_charging/  the Smart Charging profile: charging profiles, the composite
                   schedule, the offered current (SmartCharging.offer)
  firmware_management/  UpdateFirmware (FirmwareUpdates, cp.firmware), GetDiagnostics:
                   the firmware transfers through the interfaces it is given
  security/        the OCA security whitepaper (an extension, not a feature profile):
                   certificates, security profiles, ExtendedTriggerMessage, GetLog
  safety.py        when a session may start and energy may flow
  journal.py       transaction messages, durable      auth.py     idTag decisions
  config.py        configuration keys                 metering.py sampled values
  events.py        listeners: "config", "fault", "vendor:<id>"
"""


from ocpp_core import connector as conn
from ocpp_core.auth import AuthCache, Authorizer, LocalList
from ocpp_core.config import Configuration
from ocpp_core.core.authorization import Authorize
from ocpp_core.core.availability import Availability
from ocpp_core.core.meter_values import MeterSampling, MeterValues
from ocpp_core.core.registration import ACCEPTED, Registration
from ocpp_core.core.status import StatusNotifier
from ocpp_core.core.transactions import StartTransaction, StopTransaction, Transactions
from ocpp_core.events import Events
from ocpp_core.firmware_management import FirmwareUpdates
from ocpp_core.firmware_management.diagnostics import resume_uploads
from ocpp_core.journal import METER, START, STOP, Journal
from ocpp_core.log import get_logger
from ocpp_core.profiles import EXTENSIONS, PROFILES
from ocpp_core.reservation import Reservations
from ocpp_core.safety import may_deliver_energy, session_refusal
from ocpp_core.store import PROBLEMS as STORAGE_PROBLEMS
from ocpp_core.smart_charging import SmartCharging

log = get_logger("ocpp.cp")

IMPLEMENTED_PROFILES = tuple(profile.NAME for profile in PROFILES + EXTENSIONS)
FAR = 3600.0


class ChargePoint:
    def __init__(self, rpc, clock, store, station, profile, boot_payload, transfers=None):
        self.rpc = rpc
        self.clock = clock
        self.store = store
        self.station = station
        self.profile = profile
        self.events = Events()
        self.config = Configuration(store, profile, supported_profiles=IMPLEMENTED_PROFILES,
                                    on_change=lambda key, value: self.events.emit("config",
                                                                                  key, value))
        self.journal = Journal(store, clock, self.config.get, messages={
            START: StartTransaction(self), METER: MeterValues(self), STOP: StopTransaction(self)})
        self.auth = Authorizer(self.config.get, AuthCache(store), LocalList(store), clock)
        self.authorize = Authorize(self)     # authorize(id_tag, done(accepted, info))
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
        self._storage_seen = None       # the data dir problem connector 0 reports
        self.transactions = Transactions(self)
        self.sampling = MeterSampling(self)
        self.availability = Availability(self)
        self.reservations = Reservations(self)   # persisted; ticked for expiry
        self.smart_charging = SmartCharging(self)   # persisted; ticked at period boundaries
        self.firmware = FirmwareUpdates(self, transfers)   # persisted; asks the firmware
        self.events.listen("config", self._config_changed)
        self._recover()
        for feature in PROFILES + EXTENSIONS:
            for operation in feature.operations(self):
                rpc.on(operation.action, operation.handle)
        self.refresh()

    # ------------------------------------------------------------------ state
    @property
    def online(self):
        return self.rpc.connected and self.registration.accepted

    def connector(self, connector_id):
        return self.connectors.get(connector_id)

    def session_refusal(self, c=None, id_tag=None, id_tag_info=None):
        """Why no session may start now (on connector c, for id_tag); None when it may."""
        return session_refusal(self, c, id_tag, id_tag_info)

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
            self.availability.save()

    # ------------------------------------------------------------------ outputs
    def refresh(self):
        """Recompute outputs and statuses from the current facts."""
        self.reservations.sync()     # ends those of a Faulted/Unavailable connector (3.11)
        operative = self.station_operative and not self.firmware.holds_connectors()
        for c in self.connectors.values():
            self.apply_outputs(c)
            self.status.update(c.id, conn.derive_status(c, operative),
                               c.error_code(), c.error_info())
        self._storage_seen = self.storage_problem()
        code, info, vendor = conn.reported_station_error(self.station_faults, self._storage_seen)
        self.status.update(0, conn.derive_station_status(self.station_operative, self.station_faults),
                           code, info, vendor)

    def storage_problem(self):
        """(info, vendorErrorCode) while the data dir fails (ocpp_core/store.py), else None."""
        return STORAGE_PROBLEMS.get(getattr(self.store, "problem", None))

    def apply_outputs(self, c):
        """Safety first: the rules of safety.may_deliver_energy, and the
        contactor closes only while the EV asks for energy (state C/D). The
        offer is the composite limit of the charging profiles, never above
        max_current_a (smart_charging: 0 below what the pilot can signal)."""
        offer = self.smart_charging.offer(c) if may_deliver_energy(self, c) else 0.0
        if offer != c.offered_a:
            c.offered_a = offer
            self.station.set_offered_current(c.id, offer)
        close = offer > 0 and c.ev_state in ("C", "D")
        if close != c.contactor_closed:
            c.contactor_closed = close
            self.station.set_contactor(c.id, close)

    # ------------------------------------------------------------------ device events
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
            self.transactions.ev_disconnected(c)
            if "ConnectorLockFailure" in c.faults and not c.locked:
                # The lock did not engage for a session that is now given up
                # (TC_024): the next plug-in tries it again. A lock that did not
                # release (still engaged) stays faulted until it moves.
                self.fault_cleared(c.id, "ConnectorLockFailure")
        elif before == "A":
            self.transactions.ev_connected(c)
        self.refresh()

    def card_presented(self, id_tag):
        """A card (or any idTag) was presented at the reader."""
        self.transactions.card_presented(id_tag)

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
        self.transactions.meter_reading(c)

    def fault(self, connector_id, error_code, info=None):
        """A device reports a fault: connector 0 = the station (reader, modem).
        An unsafe fault opens the contactor first, then ends the transaction."""
        if connector_id == 0:
            if self.station_faults.get(error_code, "-") == info:
                return
            self.station_faults[error_code] = info
            log.warning("station fault %s%s", error_code, ": " + info if info else "")
            self.events.emit("fault", 0, error_code, info, "raised")
            if error_code in conn.UNSAFE_FAULTS:
                self.transactions.stop_all("Other")
            self.refresh()
            return
        c = self.connectors.get(connector_id)
        if c is None or c.faults.get(error_code, "-") == info:
            return
        c.faults[error_code] = info
        log.warning("connector %d fault %s%s", c.id, error_code, ": " + info if info else "")
        self.events.emit("fault", c.id, error_code, info, "raised")
        if error_code in conn.UNSAFE_FAULTS:
            c.authorization = None
            self.apply_outputs(c)     # open the contactor before anything else
            if c.in_transaction:
                reason = "EmergencyStop" if error_code == "PowerSwitchFailure" else "Other"
                self.transactions.stop(c, reason, refresh=False)
        self.refresh()

    def fault_cleared(self, connector_id, error_code):
        faults = self.station_faults if connector_id == 0 else \
            getattr(self.connectors.get(connector_id), "faults", {})
        if faults.pop(error_code, "-") != "-":
            log.info("%s fault %s cleared", "station" if connector_id == 0 else
                     "connector %d" % connector_id, error_code)
            self.events.emit("fault", connector_id, error_code, None, "cleared")
            self.refresh()

    def lock_feedback(self, connector_id, locked):
        c = self.connectors.get(connector_id)
        if c is None:
            return
        c.locked = locked
        if not locked:
            self.availability.lock_opened(c)
        else:
            if "ConnectorLockFailure" in c.faults:
                self.fault_cleared(c.id, "ConnectorLockFailure")
            self.transactions.lock_confirmed(c)
        self.refresh()

    # ------------------------------------------------------------------ commands from outside
    def stop_transaction(self, connector_id, reason, id_tag=None):
        c = self.connectors.get(connector_id)
        if c is not None and c.in_transaction:
            self.transactions.stop(c, reason, id_tag)

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
            self.reservations.expire()   # the clock is known now: no stale Reserved reported
            if interval > 0 and interval != self.config.get("HeartbeatInterval"):
                self.config.set("HeartbeatInterval", interval)
            self.status.report_all()
            self.firmware.boot_accepted(self.registration.boot_payload.get("firmwareVersion"))
        else:   # Pending or Rejected: what waits for a plug-in may not start
            self.transactions.drop_authorizations("registration %s" % status)
        self.refresh()

    def _config_changed(self, key, value):
        if key == "HeartbeatInterval":
            self.registration.set_heartbeat_interval(value)

    # ------------------------------------------------------------------ time
    def tick(self, now=None):
        """Do what is due; returns seconds until something else will be due."""
        if now is None:
            now = self.clock.monotonic()
        waits = [FAR]
        waits.append(self.rpc.poll(now))
        waits.append(self.registration.tick(now))
        waits.append(self.transactions.tick(now))
        waits.append(self.sampling.tick(now))
        waits.append(self.availability.tick(now))
        waits.append(self.reservations.tick(now))
        waits.append(self.smart_charging.tick(now))
        self.journal.pump(self.rpc, now, self.online)
        waits.append(self.journal.next_due())
        if self.storage_problem() != self._storage_seen:
            self.refresh()      # the data dir failed or recovered: connector 0 reports it
        waits.append(self.status.tick(self.online, now))
        waits.append(self.firmware.tick(now))   # after the statuses: Installed follows them
        waits.append(resume_uploads(self))      # uploads a restart interrupted, once Accepted
        waits.append(self.security_events.tick(now))    # 0.0 when it queued an event
        return max(0.0, min(w for w in waits if w is not None))
