"""ClearCache (OCPP 1.6 5.4): empties the authorization cache (not the local list)."""


def handle(cp, payload):
    cp.auth.cache.clear()
    return {"status": "Accepted"}
