"""What the tools' in-process central systems share (tools.soak.csms,
tools.bench_firmware): a websockets server on loopback, and the answers of a
CSMS that accepts everything."""

import threading
import time

from ocpp_core.timestamps import format_utc

SUBPROTOCOL = "ocpp1.6"

# Station CALLs answered with an empty object.
EMPTY_ANSWERS = ("StatusNotification", "MeterValues", "DiagnosticsStatusNotification",
                 "FirmwareStatusNotification")


class LoopbackServer:
    """A websockets (sync) OCPP 1.6-J server on 127.0.0.1, a free port, accepting
    on a daemon thread; handler(ws) runs on each connection's own thread."""

    def __init__(self, handler, name, process_request=None):
        self.handler = handler
        self.name = name
        self.process_request = process_request
        self.port = None
        self._server = None
        self._thread = None

    def start(self):
        from websockets.sync.server import serve   # lazy: importing this module does not need it
        self._server = serve(self.handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL],
                             compression=None, ping_interval=None, max_size=None,
                             process_request=self.process_request)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name,
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def url(self):
        return "ws://127.0.0.1:%d/ocpp" % self.port

    def stop(self):
        """Stop accepting (open connections are the caller's to close)."""
        self._server.shutdown()
        self._thread.join(5)


def accepting_answer(action, payload, transaction_id, empty=EMPTY_ANSWERS):
    """The answer to a station CALL of a CSMS that accepts everything, None for an
    action it does not know (NotImplemented). transaction_id(): the id for a
    StartTransaction; `empty`: the actions answered with {}."""
    now = format_utc(time.time())
    if action == "BootNotification":
        return {"status": "Accepted", "currentTime": now, "interval": 300}
    if action == "Heartbeat":
        return {"currentTime": now}
    if action == "Authorize":
        return {"idTagInfo": {"status": "Accepted"}}
    if action == "StartTransaction":
        return {"transactionId": transaction_id(), "idTagInfo": {"status": "Accepted"}}
    if action == "StopTransaction":
        return {"idTagInfo": {"status": "Accepted"}} if "idTag" in payload else {}
    if action == "DataTransfer":
        return {"status": "UnknownVendorId"}
    if action in empty:
        return {}
    return None
