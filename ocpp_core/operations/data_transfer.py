"""DataTransfer from the CSMS (OCPP 1.6 5.6): UnknownVendorId unless a vendor
handler is registered in cp.vendor_handlers[vendorId](messageId, data) -> dict."""


def handle(cp, payload):
    handler = cp.vendor_handlers.get(payload["vendorId"])
    if handler is None:
        return {"status": "UnknownVendorId"}
    return handler(payload.get("messageId"), payload.get("data"))
