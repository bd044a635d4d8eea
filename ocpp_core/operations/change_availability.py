"""ChangeAvailability (OCPP 1.6 5.2): connector 0 is the whole charge point.

Accepted when it applies at once, Scheduled when a transaction runs on an
affected connector (it applies when that transaction ends), Rejected for a
connector that does not exist. Persisted: Unavailable survives reboots.
"""

from ocpp_core.rpc import Reply


def handle(cp, payload):
    cid = payload["connectorId"]
    operative = payload["type"] == "Operative"
    if cid != 0 and cid not in cp.connectors:
        return {"status": "Rejected"}
    targets = list(cp.connectors.values()) if cid == 0 else [cp.connectors[cid]]
    scheduled = any(c.in_transaction and c.operative != operative for c in targets)

    def apply():
        if cid == 0:
            cp.station_operative = operative
        for c in targets:
            if c.in_transaction:
                c.scheduled = None if c.operative == operative else payload["type"]
            else:
                c.operative = operative
                c.scheduled = None
        cp._save_connector_state()
        cp.refresh()

    return Reply({"status": "Scheduled" if scheduled else "Accepted"}, then=apply)
