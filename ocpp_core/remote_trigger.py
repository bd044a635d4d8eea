"""The Remote Trigger profile (OCPP 1.6 section 5.17 TriggerMessage, 4.x for the
messages it asks for): the CSMS asks for a message and gets it at once, after
the TriggerMessage.conf.

Readings chosen where the specification leaves room:
- connectorId is "only relevant" for MeterValues and StatusNotification; for
  the others a connectorId of this station is ignored. A connectorId the
  station does not have is Rejected for every message.
- StatusNotification: connectorId 0 is the station itself; without connectorId
  every connector, 0 included, reports its current status even if unchanged.
- MeterValues: connectors 1..n have meters and 0 has none (no main meter), so
  connectorId 0 is Rejected; without connectorId every connector with a reading
  sends one. The values are MeterValuesSampledData with context "Trigger",
  queued in order with the connector's transaction messages. Rejected when no
  connector has a reading to send (Accepted means "will be sent").
- Before the CSMS has accepted the registration only BootNotification may be
  sent (4.2): any other requested message is Rejected then.
- BootNotification does not reboot or reset the registration (see
  Registration.trigger_boot); Heartbeat restarts the heartbeat interval.
- DiagnosticsStatusNotification and FirmwareStatusNotification report what the
  Firmware Management profile says through events.ask("diagnostics_status") /
  ("firmware_status"); without it (or when nothing happens) Idle.
- NotImplemented is never answered: every requestedMessage of 1.6 is.
"""

from ocpp_core.rpc import Reply

NAME = "RemoteTrigger"

BOOT = "BootNotification"
DIAGNOSTICS = "DiagnosticsStatusNotification"
FIRMWARE = "FirmwareStatusNotification"
HEARTBEAT = "Heartbeat"
METER = "MeterValues"
STATUS = "StatusNotification"


class TriggerMessage:
    action = "TriggerMessage"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        cp = self.cp
        message = payload["requestedMessage"]
        cid = payload.get("connectorId")
        answer = trigger_shared(cp, message, cid)
        if answer is not None:
            return answer
        topic = "diagnostics_status" if message == DIAGNOSTICS else "firmware_status"
        return accept(lambda: cp.rpc.call(message, {
            "status": cp.events.ask(topic) or "Idle"}))


def trigger_shared(cp, message, cid):
    """The answer for the messages TriggerMessage and the security extension's
    ExtendedTriggerMessage have in common (BootNotification, Heartbeat,
    MeterValues, StatusNotification) and the rules of both (a connector the
    station lacks, the registration); None for the other messages."""
    if cid is not None and cid != 0 and cp.connector(cid) is None:
        return {"status": "Rejected"}
    if message != BOOT and not cp.registration.accepted:
        return {"status": "Rejected"}
    if message == METER:
        targets = _meter_targets(cp, cid)
        if not targets:
            return {"status": "Rejected"}
        return accept(lambda: [cp.sampling.trigger(c) for c in targets])
    if message == STATUS:
        ids = [cid] if cid is not None else [0] + sorted(cp.connectors)
        return accept(lambda: [cp.status.report(i) for i in ids])
    if message == BOOT:
        return accept(cp.registration.trigger_boot)
    if message == HEARTBEAT:
        return accept(cp.registration.trigger_heartbeat)
    return None


def _meter_targets(cp, cid):
    if cid == 0:
        return []           # no main meter: only connectors have readings
    candidates = [cp.connector(cid)] if cid is not None else \
        [cp.connectors[i] for i in sorted(cp.connectors)]
    return [c for c in candidates if cp.sampling.can_trigger(c)]


def accept(send):
    """Accepted; the message is queued once the answer has left (5.17: the
    requested message follows the TriggerMessage.conf) and goes out at the
    engine's next tick, which the main loop runs right after this call."""
    return Reply({"status": "Accepted"}, then=send)


def operations(cp):
    return [TriggerMessage(cp)]
