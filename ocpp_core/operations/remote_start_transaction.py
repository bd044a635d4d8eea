"""RemoteStartTransaction (OCPP 1.6 5.11).

Rejected for connector 0 or an unknown connector, a connector that is busy or
where no session may start (safety.session_refusal: not accepted by the CSMS,
unavailable, faulted, a reset under way), and for a chargingProfile whose
purpose is not TxProfile. While the registration is Pending the dispatcher
answers Rejected before this handler is reached (4.2). Otherwise Accepted; then
ChargePoint.remote_start authorizes the idTag as if it had been presented
locally when AuthorizeRemoteTxRequests is true, and the transaction starts when
the EV is connected (else ConnectionTimeOut applies).
"""

from ocpp_core.rpc import Reply


def handle(cp, payload):
    cid = payload.get("connectorId")
    profile = payload.get("chargingProfile")
    if profile is not None and profile.get("chargingProfilePurpose") != "TxProfile":
        return {"status": "Rejected"}
    c = cp.connector(cid) if cid is not None else cp.connector_for_new_session()
    if c is None or c.authorization is not None or cp.session_refusal(c) is not None:
        return {"status": "Rejected"}
    return Reply({"status": "Accepted"},
                 then=lambda: cp.remote_start(c, payload["idTag"], profile))
