"""UnlockConnector (OCPP 1.6 5.17).

A fixed cable has no lock to release: NotSupported (as the reference station,
OCTT TC_017_2/TC_018_2), and so for a connector that does not exist. With a
socket outlet: a running transaction stops with reason UnlockCommand, the lock
is driven open, and the answer (Unlocked / UnlockFailed) waits for the lock's
feedback without blocking the engine.
"""

from ocpp_core.rpc import Deferred


def handle(cp, payload):
    cid = payload["connectorId"]
    if cp.profile.fixed_cable or cid not in cp.connectors:
        return {"status": "NotSupported"}
    answer = Deferred()
    cp.unlock(cid, answer)
    return answer
