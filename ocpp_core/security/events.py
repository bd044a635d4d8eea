"""Security events (OCA "Improved security for OCPP 1.6-J", edition 3, the
security events use case and its appendix "Security Events"): the
SecurityEventService (cp.security_events).

Every part of the engine and the firmware reports an event the same way:

    cp.events.emit("security_event", event_type, tech_info_or_None)

and this service, the one listener, writes it to the security log (an object the
firmware gives, see SecurityLogInterface) and sends SecurityEventNotification
{type, timestamp, techInfo}:

- a critical event (CRITICAL, the appendix's "critical" column) through
  cp.journal.queue_message: durable before emit() returns, delivered in order
  with the transaction messages once the registration is Accepted, after a
  power cut too (whitepaper: critical events "SHALL be queued" like transaction
  messages);
- any other event as a plain CALL once the station is online; while it is not,
  at most BACKLOG of them wait in memory (lost on a restart: the whitepaper
  asks no more of them, and they are in the security log anyway).

Readings chosen where the whitepaper leaves room:
- timestamp: the moment of the event, as the clock knows it then (a station
  whose clock was never set reports its best guess; the CSMS sets it right
  with the first BootNotification, which then raises SettingSystemTime).
- techInfo: at most 255 characters (the schema), user information of any URL
  masked (ocpp_core.redact): never a password.
- A non-critical event of one type is sent at most once per THROTTLE_S seconds;
  the ones in between are counted, logged, and their number given in the
  techInfo of the next one sent ("+N more since the last"): a CSMS flooding us
  with malformed CALLs must not make us flood it back. Critical events are
  never throttled.
- SettingSystemTime: a correction of the clock by the CSMS (BootNotification or
  Heartbeat currentTime) of at least TIME_JUMP_S seconds, seen at the next tick
  (the daily drift of a Pi without NTP is well below that).
- MemoryExhaustion: the data directory became full (Store.problem "full",
  ENOSPC): the station can no longer store what it must.
- An event type outside the appendix's list is still reported (the field is a
  string), as not critical.
"""

from ocpp_core.log import get_logger
from ocpp_core.redact import mask_url_userinfo

log = get_logger("ocpp.security")

ACTION = "SecurityEventNotification"
THROTTLE_S = 60.0
BACKLOG = 20
TIME_JUMP_S = 60.0
TECH_INFO_MAX = 255

# The appendix's event types, in its order; the critical ones below.
TYPES = (
    "FirmwareUpdated", "FailedToAuthenticateAtCentralSystem", "CentralSystemFailedToAuthenticate",
    "SettingSystemTime", "StartupOfTheDevice", "ResetOrReboot", "SecurityLogWasCleared",
    "ReconfigurationOfSecurityParameters", "MemoryExhaustion", "InvalidMessages",
    "AttemptedReplayAttacks", "TamperDetectionActivated", "InvalidFirmwareSignature",
    "InvalidFirmwareSigningCertificate", "InvalidCentralSystemCertificate",
    "InvalidChargePointCertificate", "InvalidTLSVersion", "InvalidTLSCipherSuite",
)
CRITICAL = frozenset(("FirmwareUpdated", "SettingSystemTime", "StartupOfTheDevice",
                      "ResetOrReboot", "SecurityLogWasCleared", "MemoryExhaustion",
                      "TamperDetectionActivated"))


def is_critical(event_type):
    return event_type in CRITICAL


class SecurityLogInterface:
    """Where every security event is written (the firmware's security log)."""

    def append(self, record):
        """record: {"timestamp": RFC 3339, "type", "techInfo" (or None), "critical"}.
        Must not raise for a full or failing medium (it logs instead)."""
        raise NotImplementedError


def _tech_info(text):
    if text is None:
        return None
    text = mask_url_userinfo(str(text))
    return text if len(text) <= TECH_INFO_MAX else text[:TECH_INFO_MAX - 3] + "..."


class SecurityEvents:
    def __init__(self, cp, security_log=None):
        self.cp = cp
        self.security_log = security_log
        self._backlog = []          # non-critical payloads waiting to be online
        self._last_sent = {}        # type -> monotonic time of the last one sent
        self._suppressed = {}       # type -> how many were throttled since
        self._offset = cp.clock.offset      # the clock correction last seen
        self._storage = getattr(cp.store, "problem", None)
        cp.events.listen("security_event", self.report)
        cp.rpc.security_event = self._from_rpc

    def _from_rpc(self, event_type, tech_info):
        self.cp.events.emit("security_event", event_type, tech_info)

    # --- the one way in ---------------------------------------------------------------------
    def report(self, event_type, tech_info=None):
        critical = is_critical(event_type)
        info = _tech_info(tech_info)
        timestamp = self.cp.clock.timestamp()
        if critical:        # journaled first: durable before anything else happens
            self._queue_critical(event_type, timestamp, info)
        if self.security_log is not None:
            try:
                self.security_log.append({"timestamp": timestamp, "type": event_type,
                                          "techInfo": info, "critical": critical})
            except Exception:
                log.exception("security log append failed")
        if critical:
            log.warning("security event %s%s (critical)", event_type,
                        ": " + info if info else "")
            return
        now = self.cp.clock.monotonic()
        last = self._last_sent.get(event_type)
        if last is not None and now - last < THROTTLE_S:
            self._suppressed[event_type] = self._suppressed.get(event_type, 0) + 1
            log.info("security event %s%s (not sent: one was sent %.0f s ago)", event_type,
                     ": " + info if info else "", now - last)
            return
        self._last_sent[event_type] = now
        more = self._suppressed.pop(event_type, 0)
        if more:
            info = _tech_info(("%s (+%d more since the last)" % (info or "", more)).strip())
        log.warning("security event %s%s", event_type, ": " + info if info else "")
        self._send(self._payload(event_type, timestamp, info))

    @staticmethod
    def _payload(event_type, timestamp, info):
        payload = {"type": event_type[:50], "timestamp": timestamp}
        if info:
            payload["techInfo"] = info
        return payload

    def _queue_critical(self, event_type, timestamp, info):
        try:
            self.cp.journal.queue_message(ACTION, self._payload(event_type, timestamp, info))
        except ValueError as e:         # our own bug; the event is in the security log
            log.error("security event %s not queued: %s", event_type, e)

    def _send(self, payload):
        if self.cp.online:
            self._flush()
            self.cp.rpc.call(ACTION, payload)
            return
        self._backlog.append(payload)
        if len(self._backlog) > BACKLOG:
            dropped = self._backlog.pop(0)
            log.warning("security event %s dropped: more than %d wait for the CSMS",
                        dropped["type"], BACKLOG)

    def _flush(self):
        backlog, self._backlog = self._backlog, []
        for payload in backlog:
            self.cp.rpc.call(ACTION, payload)

    # --- time ---------------------------------------------------------------------------------
    def tick(self, now=None):
        """Send the backlog once online; notice a clock set by the CSMS and a data
        dir that became full. Returns 0.0 when it reported something (the engine
        should tick again at once: the journal sends it), else None."""
        if self._backlog and self.cp.online:
            self._flush()
        reported = None
        offset = self.cp.clock.offset
        if abs(offset - self._offset) >= TIME_JUMP_S:
            self.report("SettingSystemTime", "clock set by the Central System, %+.0f s"
                        % (offset - self._offset))
            reported = 0.0
        self._offset = offset
        storage = getattr(self.cp.store, "problem", None)
        if storage == "full" and self._storage != "full":
            self.report("MemoryExhaustion", "data directory full (no space left on device)")
            reported = 0.0
        self._storage = storage
        return reported
