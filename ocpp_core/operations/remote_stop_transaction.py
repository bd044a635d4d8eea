"""RemoteStopTransaction (OCPP 1.6 5.12): Accepted for a running transaction
(then stopped with reason Remote), Rejected for any other transactionId."""

from ocpp_core.rpc import Reply


def handle(cp, payload):
    tx_id = payload["transactionId"]
    for c in cp.connectors.values():
        if c.in_transaction:
            record = cp.journal.get(c.tx_key)
            if record and record.get("transaction_id") == tx_id:
                return Reply({"status": "Accepted"},
                             then=lambda: cp.stop_transaction(c.id, "Remote"))
    return {"status": "Rejected"}
