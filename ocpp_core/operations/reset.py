"""Reset (OCPP 1.6 5.13): Accepted, then every transaction is stopped with
SoftReset/HardReset and journaled before the station restarts."""

from ocpp_core.rpc import Reply


def handle(cp, payload):
    if cp.reset_pending is not None:
        return {"status": "Accepted"}   # already on its way
    return Reply({"status": "Accepted"}, then=lambda: cp.begin_reset(payload["type"]))
