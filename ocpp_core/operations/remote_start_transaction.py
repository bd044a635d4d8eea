"""RemoteStartTransaction (OCPP 1.6 5.11).

Rejected for connector 0 or an unknown connector, a connector that is busy,
unavailable or faulted, during a reset, and for a chargingProfile whose purpose
is not TxProfile. Otherwise Accepted; then the idTag is authorized as if it
had been presented locally when AuthorizeRemoteTxRequests is true (Authorize.req,
or the cache/list with LocalPreAuthorize), and the transaction starts when the
EV is connected (else ConnectionTimeOut applies).
"""

from ocpp_core import connector as conn
from ocpp_core.rpc import Reply


def _pick_connector(cp, cid):
    if cid is not None:
        return cp.connectors.get(cid)
    for c in cp.connectors.values():          # an EV already waiting
        if c.plugged and not c.in_transaction and c.authorization is None:
            return c
    for c in cp.connectors.values():
        if not c.in_transaction and c.authorization is None and not c.plugged:
            return c
    return None


def handle(cp, payload):
    cid = payload.get("connectorId")
    profile = payload.get("chargingProfile")
    c = _pick_connector(cp, cid)
    if c is None or cp.reset_pending is not None:
        return {"status": "Rejected"}
    status = conn.derive_status(c, cp.station_operative)
    if c.in_transaction or c.authorization is not None or status in (conn.UNAVAILABLE,
                                                                      conn.FAULTED):
        return {"status": "Rejected"}
    if profile is not None and profile.get("chargingProfilePurpose") != "TxProfile":
        return {"status": "Rejected"}
    id_tag = payload["idTag"]

    def start():
        if profile is not None:
            c.remote_profile = profile     # kept for the Smart Charging work
        if not cp.config.get("AuthorizeRemoteTxRequests"):
            cp._grant(c, id_tag, {"status": "Accepted"})
            return
        # Reserve the connector while the authorization is under way.
        c.authorization = {"id_tag": id_tag, "info": None, "since": cp.clock.monotonic(),
                           "pending": True}
        cp.refresh()

        def decided(accepted, info):
            if c.authorization is None or c.authorization.get("id_tag") != id_tag:
                return
            c.authorization = None
            if accepted:
                cp._grant(c, id_tag, info)
            else:
                cp.refresh()

        cp._authorize(id_tag, decided)

    return Reply({"status": "Accepted"}, then=start)
