"""DataTransfer from the CSMS (OCPP 1.6 section 5.6).

UnknownVendorId unless a vendor handler listens on "vendor:<vendorId>":
cp.events.listen("vendor:com.example", fn), fn(messageId, data) -> the answer
({"status": ..., "data": ...})."""


class DataTransfer:
    action = "DataTransfer"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        answer = self.cp.events.ask("vendor:" + payload["vendorId"], payload.get("messageId"),
                                    payload.get("data"))
        return answer if answer is not None else {"status": "UnknownVendorId"}
