"""Registration and liveness: BootNotification until Accepted, then Heartbeat.

OCPP 1.6 section 4.2 and 4.6: nothing but BootNotification until the CSMS has
accepted it (the CSMS's calls are still answered while Pending); a Pending or
Rejected answer means "try again after `interval` seconds". Once Accepted, a
Heartbeat goes out every heartbeat interval. The spec allows other traffic to
stand in for it, but we do not use that: with the certified clock-aligned
interval of 20 s the MeterValues would suppress every Heartbeat, the OCA test
tool (TC_001) waits for one, and its currentTime keeps our clock right.

The registration status is the one fact every other part asks (status,
accepted, admits_sessions, and admit() for a CSMS call); the rules of 4.2 that
follow from it are here and nowhere else:
- Rejected: "the Charge Point SHALL NOT respond to any Central System initiated
  message": admit() says SILENT and the dispatcher drops the call unanswered.
- Pending: "RemoteStartTransaction.req and RemoteStopTransaction.req are not
  allowed": admit() answers them Rejected; every other call is handled (TC_002).
- Connected but not accepted (boot in flight, Pending, Rejected) is not
  "offline": no session may start, so the offline authorization rules never
  decide there (admits_sessions).
- The last verdict of the CSMS is kept in the store: a station that was
  Pending or Rejected and restarts without a network does not fall back to
  free offline charging; it is admitted again by the next Accepted.
"""


from ocpp_core import errors
from ocpp_core.log import get_logger
from ocpp_core.rpc import SILENT

log = get_logger("ocpp.registration")

NOT_SENT = "NotSent"
PENDING = "Pending"
ACCEPTED = "Accepted"
REJECTED = "Rejected"

RETRY_WITHOUT_INTERVAL = 60.0   # s; when the CSMS answers Pending/Rejected with interval 0
RETRY_AFTER_FAILURE = 30.0      # s; after a timeout or CALLERROR
STORE_NAME = "registration"     # {"status": the last verdict of the CSMS}

# Section 4.2: not allowed while Pending, answered with their own refusal.
REFUSED_WHILE_PENDING = {
    "RemoteStartTransaction": {"status": "Rejected"},
    "RemoteStopTransaction": {"status": "Rejected"},
}


class Registration:
    def __init__(self, rpc, clock, boot_payload, heartbeat_interval=300, on_verdict=None,
                 store=None):
        self.rpc = rpc
        self.clock = clock
        self.boot_payload = boot_payload
        self.heartbeat_interval = heartbeat_interval
        self.on_verdict = on_verdict    # fn(status, interval) after each BootNotification answer
        self._store = store
        self.status = NOT_SENT
        saved = store.load(STORE_NAME, None) if store is not None else None
        self._saved = saved.get("status") if type(saved) is dict else None
        if self._saved in (PENDING, REJECTED):
            self.status = self._saved   # not admitted until the CSMS says Accepted
        self._boot_in_flight = False
        self._next_boot = 0.0          # monotonic time the next BootNotification may go
        self._heartbeat_in_flight = False
        self._last_beat = None         # monotonic time of the last Heartbeat (or the boot)

    @property
    def accepted(self):
        return self.status == ACCEPTED

    @property
    def admits_sessions(self):
        """May a session start now? Accepted, or offline with no refusal on
        record; never while connected and not (yet) accepted."""
        if self.status in (PENDING, REJECTED):
            return False
        return self.status == ACCEPTED or not self.rpc.connected

    @property
    def withholds_energy(self):
        """The CSMS has refused us (Pending or Rejected): no energy flows."""
        return self.status in (PENDING, REJECTED)

    def admit(self, action):
        """The 4.2 rule for a CSMS-initiated call: None (handle it), SILENT
        (drop it unanswered) or the payload to answer instead of handling it."""
        if self.status == REJECTED:
            return SILENT
        if self.status == PENDING:
            return REFUSED_WHILE_PENDING.get(action)
        if self.status == NOT_SENT and self.rpc.connected:
            # Before the first answer the CSMS should not call at all; if it
            # does, starting or stopping is refused as while Pending (the
            # station is connected, not offline, and not admitted).
            return REFUSED_WHILE_PENDING.get(action)
        return None

    # --- events from the owner ------------------------------------------------
    def connection_up(self):
        self.tick()

    def connection_down(self):
        self._boot_in_flight = False
        self._heartbeat_in_flight = False

    def set_heartbeat_interval(self, seconds):
        """A new interval applies at once: the next beat is due one new
        interval after the last one."""
        self.heartbeat_interval = seconds

    # --- time ------------------------------------------------------------------
    def tick(self, now=None):
        """Send what is due. Returns seconds until the next thing is due, or None."""
        if not self.rpc.connected:
            return None
        if now is None:
            now = self.clock.monotonic()
        if self.status != ACCEPTED:
            if self._boot_in_flight:
                return None
            if now >= self._next_boot:
                self._send_boot()
                return None
            return self._next_boot - now
        if self.heartbeat_interval <= 0 or self._heartbeat_in_flight:
            return None
        if self._last_beat is None:
            self._last_beat = now
        due = self._last_beat + self.heartbeat_interval
        if now >= due:
            self._last_beat = now
            self._heartbeat_in_flight = True
            self.rpc.call("Heartbeat", {}, on_result=self._heartbeat_result,
                          on_error=self._heartbeat_error)
            return self.heartbeat_interval
        return due - now

    # --- BootNotification ----------------------------------------------------------
    def _send_boot(self):
        self._boot_in_flight = True
        self.rpc.call("BootNotification", self.boot_payload,
                      on_result=self._boot_result, on_error=self._boot_error)

    def _boot_result(self, payload):
        self._boot_in_flight = False
        self._adopt_time(payload["currentTime"])
        status = payload["status"]
        interval = payload["interval"]
        if self.status == ACCEPTED and status != ACCEPTED:
            # Only a triggered BootNotification can be answered once accepted: a
            # TriggerMessage does not reset the registration (5.17), so neither
            # does its answer. The CSMS can refuse us at the next (re)boot.
            log.warning("triggered BootNotification answered %s; the registration stays "
                        "Accepted", status)
            return
        self._remember(status)
        if status == ACCEPTED:
            self.status = ACCEPTED
            self._last_beat = self.clock.monotonic()
            if interval > 0:
                self.heartbeat_interval = interval
            log.info("BootNotification accepted; heartbeat every %d s", self.heartbeat_interval)
        else:
            self.status = status
            wait = interval if interval > 0 else RETRY_WITHOUT_INTERVAL
            self._next_boot = self.clock.monotonic() + wait
            log.info("BootNotification %s; next attempt in %d s%s", status, wait,
                     "; CSMS calls are not answered meanwhile" if status == REJECTED else "")
        if self.on_verdict is not None:
            self.on_verdict(status, interval)

    def _remember(self, status):
        """Persist a change of verdict (one write per change, not per boot)."""
        if self._store is None or status == self._saved:
            return
        try:
            self._store.save(STORE_NAME, {"status": status})
            self._saved = status
        except OSError as e:   # the verdict in memory still rules this boot
            log.warning("could not save the registration status: %s", e)

    def _boot_error(self, code, description, details):
        self._boot_in_flight = False
        if code == errors.DISCONNECTED:
            return  # sent again as soon as the link is back
        self._next_boot = self.clock.monotonic() + RETRY_AFTER_FAILURE
        log.warning("BootNotification failed (%s: %s); next attempt in %d s",
                    code, description, RETRY_AFTER_FAILURE)

    def trigger_boot(self):
        """TriggerMessage(BootNotification): one goes out now. Before acceptance
        it is the next registration attempt, brought forward; afterwards an
        Accepted answer only brings the time and the interval (the statuses are
        reported again, as after any accepted boot)."""
        if self._boot_in_flight:
            return
        if self.status != ACCEPTED:
            self._next_boot = 0.0       # tick() sends it
            return
        self._send_boot()

    def trigger_heartbeat(self):
        """TriggerMessage(Heartbeat): one goes out now; the interval counts from it."""
        if self._heartbeat_in_flight or not self.rpc.connected:
            return
        self._last_beat = self.clock.monotonic()
        self._heartbeat_in_flight = True
        self.rpc.call("Heartbeat", {}, on_result=self._heartbeat_result,
                      on_error=self._heartbeat_error)

    # --- Heartbeat -------------------------------------------------------------------
    def _heartbeat_result(self, payload):
        self._heartbeat_in_flight = False
        self._adopt_time(payload["currentTime"])

    def _heartbeat_error(self, code, description, details):
        self._heartbeat_in_flight = False

    def _adopt_time(self, text):
        try:
            correction = self.clock.set_from_csms(text)
        except ValueError:
            log.warning("CSMS sent an unreadable currentTime %.40r", text)
            return
        if abs(correction) >= 1.0:
            log.info("clock corrected by %+.1f s from the CSMS", correction)
