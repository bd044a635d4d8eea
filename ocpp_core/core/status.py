"""StatusNotification: what the CSMS is told about each connector, and when.

- Only real changes are sent (status, errorCode, info and vendorErrorCode);
  never a duplicate.
- MinimumStatusDuration: a status is reported once it has held that long; a
  status that reverts in time is never reported (0 = report at once). A change
  to Faulted is reported at once: a fault must not wait.
- Offline: only the latest status per connector is kept and sent when the link
  is back (StatusNotification is not a transaction message; no backlog).
- After BootNotification is accepted, every connector (0 included) is reported.
"""


from ocpp_core import connector as conn
from ocpp_core import errors
from ocpp_core.log import get_logger

log = get_logger("ocpp.status")


class StatusNotifier:
    def __init__(self, rpc, clock, config_get):
        self.rpc = rpc
        self.clock = clock
        self.config_get = config_get
        self.sent = {}       # connector id -> (status, errorCode, info, vendorErrorCode) last reported
        self.current = {}    # connector id -> (status, errorCode, info, vendorErrorCode,
                             #                  stamp, since_mono)
        self._force = set()  # connectors to report even if unchanged (boot, trigger)

    def update(self, connector_id, status, error_code=conn.NO_ERROR, info=None,
               vendor_error_code=None):
        """Record the connector's status now; reporting happens in tick()."""
        key = (status, error_code, info, vendor_error_code)
        cur = self.current.get(connector_id)
        if cur is not None and cur[:4] == key:
            return
        self.current[connector_id] = key + (self.clock.stamp(), self.clock.monotonic())
        if cur is not None:
            log.info("connector %d: %s -> %s%s", connector_id, cur[0], status,
                     "" if error_code == conn.NO_ERROR else " (%s)" % error_code)

    def report_all(self):
        """Report every connector's current status once (boot accepted)."""
        self._force.update(self.current)

    def report(self, connector_id):
        self._force.add(connector_id)

    def status_of(self, connector_id):
        cur = self.current.get(connector_id)
        return cur[0] if cur else None

    def tick(self, can_send, now=None):
        """Send what is due. Returns seconds until the next report is due, or None."""
        if now is None:
            now = self.clock.monotonic()
        try:
            hold = max(0, int(self.config_get("MinimumStatusDuration")))
        except KeyError:
            hold = 0
        next_due = None
        for cid in sorted(self.current):
            status, code, info, vendor, stamp, since = self.current[cid]
            key = (status, code, info, vendor)
            forced = cid in self._force
            if not forced and self.sent.get(cid) == key:
                continue
            due = since if (forced or status == conn.FAULTED) else since + hold
            if now < due:
                wait = due - now
                next_due = wait if next_due is None else min(next_due, wait)
                continue
            if not can_send:
                continue
            payload = {"connectorId": cid, "errorCode": code, "status": status,
                       "timestamp": self.clock.resolve_iso(stamp)}
            if info:
                payload["info"] = info
            if vendor:
                payload["vendorErrorCode"] = vendor
            self.sent[cid] = key
            self._force.discard(cid)
            self.rpc.call("StatusNotification", payload, on_error=self._failed(cid))
        return next_due

    def _failed(self, cid):
        def on_error(code, description, details):
            # Lost on the way: forget it was sent, so the latest status goes out
            # again when the link allows. A CSMS error is not retried (no loop).
            if code in (errors.DISCONNECTED, errors.TIMEOUT):
                self.sent.pop(cid, None)
        return on_error
