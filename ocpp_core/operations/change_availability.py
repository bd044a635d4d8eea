"""ChangeAvailability (OCPP 1.6 5.2): connector 0 is the whole charge point.

Accepted when it applies at once, Scheduled when a transaction runs on an
affected connector (it applies when that transaction ends), Rejected for a
connector that does not exist or a change that would not take place; the rules
are ChargePoint.change_availability's. Persisted: Unavailable survives reboots.
"""

from ocpp_core.rpc import Reply


def handle(cp, payload):
    status, apply = cp.change_availability(payload["connectorId"], payload["type"])
    return Reply({"status": status}, then=apply)
