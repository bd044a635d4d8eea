"""The security extension wired into the in-process Harness, as the firmware
wires it (firmware/main_loop.py) until ocpp_core/profiles.py registers the
Security profile: the services attached, the operations registered, the
harness's CSMS able to receive the extension's CP messages, and the
service's tick run with the engine's (what ChargePoint.tick will do)."""

from ocpp_core import security

CP_MESSAGES = ("SecurityEventNotification", "SignedFirmwareStatusNotification")


def secure(h, security_log=None, signatures=None):
    for action in CP_MESSAGES:
        if not h.csms.supports(action):
            h.csms.on(action, h._csms_handler(action))
    service = security.attach(h.cp, security_log, signatures)
    for op in security.operations(h.cp):
        h.cp.rpc.on(op.action, op.handle)
    engine_tick = h.cp.tick

    def tick(now=None):
        wait = engine_tick(now)
        return wait if service.tick(now) is None else 0.0
    h.cp.tick = tick
    return service


class MemoryLog:
    """A SecurityLogInterface that keeps the records."""

    def __init__(self):
        self.records = []

    def append(self, record):
        self.records.append(dict(record))

    def types(self):
        return [r["type"] for r in self.records]
