"""A central system built on the `ocpp` package from PyPI: an independent peer.

It runs its own asyncio loop in a thread and records every CALL the charge point
sends. The `ocpp` package validates every message against the official schemas;
a violation is recorded in `violations` and the `ocpp_csms` fixture fails the
test at teardown, so a schema bug in the firmware can never pass silently.
"""

import asyncio
import base64
import dataclasses
import threading
import time
import urllib.parse

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

from ocpp_core.timestamps import format_utc

CP_ACTIONS = ("Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
              "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
              "StatusNotification", "StopTransaction", "SecurityEventNotification",
              "SignedFirmwareStatusNotification")


class CallFailed(Exception):
    def __init__(self, code, description=""):
        Exception.__init__(self, "%s: %s" % (code, description))
        self.code = code


def _make_handler(action):
    async def handler(self, **kwargs):
        return self.harness._respond(self, action, kwargs)
    # The ocpp package routes by the function's name at decoration time.
    handler.__name__ = "on_" + action
    return on(action)(handler)


class _RecordingChargePoint(ChargePoint):
    harness = None

    async def _handle_call(self, msg):
        self.harness._record(self.id, msg.action, msg.payload)
        try:
            await ChargePoint._handle_call(self, msg)
        except OCPPError as e:
            self.harness.violations.append((self.id, msg.action, msg.payload, repr(e)))
            raise


for _a in CP_ACTIONS:
    setattr(_RecordingChargePoint, "on_" + _a, _make_handler(_a))


class OcppCsms:
    def __init__(self, heartbeat_interval=300, password=None):
        self.heartbeat_interval = heartbeat_interval
        self.password = password           # when set, basic auth is required
        self.boot_answers = []             # queue of (status, interval) for coming boots
        self.id_tags = {}                  # idTag -> status; unknown tags: default_tag_status
        self.default_tag_status = "Accepted"
        self.responders = {}               # action -> fn(payload) -> camelCase answer dict
        self.refuse_connections = False
        self.received = []                 # (cp_id, action, payload, monotonic time)
        self.violations = []
        self.connections = []              # (cp_id, subprotocol, authorization header)
        self.next_transaction_id = 1
        self.port = None
        self._cond = threading.Condition()
        self._consumed = set()           # indexes of received records already waited for
        self._cps = {}
        self._loop = None
        self._thread = None
        self._server = None
        self._ws = {}

    # --- life cycle ----------------------------------------------------------
    def start(self):
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("OCPP CSMS did not start")
        return self

    def _run(self, ready):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def main():
            self._server = await serve(self._on_connect, "127.0.0.1", 0,
                                       subprotocols=["ocpp1.6"],
                                       process_request=self._process_request)
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            await self._server.wait_closed()

        try:
            self._loop.run_until_complete(main())
        finally:
            self._loop.close()

    def stop(self):
        if self._loop is None:
            return
        async def shutdown():
            self._server.close()
            await self._server.wait_closed()
        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        except Exception:
            pass
        self._thread.join(10)

    @property
    def url(self):
        return "ws://127.0.0.1:%d/ocpp" % self.port

    # --- websocket side ------------------------------------------------------------
    def _process_request(self, connection, request):
        if self.refuse_connections:
            return Response(503, "Service Unavailable", Headers(), b"")
        if self.password is not None:
            cp_id = urllib.parse.unquote(request.path.rstrip("/").rsplit("/", 1)[-1])
            expected = "Basic " + base64.b64encode(
                ("%s:%s" % (cp_id, self.password)).encode()).decode()
            if request.headers.get("Authorization") != expected:
                return Response(401, "Unauthorized", Headers(), b"")
        return None

    async def _on_connect(self, ws):
        cp_id = urllib.parse.unquote(ws.request.path.rstrip("/").rsplit("/", 1)[-1])
        with self._cond:
            self.connections.append((cp_id, ws.subprotocol, ws.request.headers.get("Authorization")))
            self._cond.notify_all()
        cp = _RecordingChargePoint(cp_id, ws)
        cp.harness = self
        self._cps[cp_id] = cp
        self._ws[cp_id] = ws
        try:
            await cp.start()
        except Exception:
            pass
        finally:
            if self._cps.get(cp_id) is cp:
                del self._cps[cp_id]
                del self._ws[cp_id]

    def drop_connections(self):
        """Close every charge point connection (the CSMS 'goes away')."""
        async def close_all():
            for ws in list(self._ws.values()):
                await ws.close()
        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)

    # --- answers ---------------------------------------------------------------------
    def _record(self, cp_id, action, payload):
        with self._cond:
            self.received.append((cp_id, action, payload, time.monotonic()))
            self._cond.notify_all()

    def _respond(self, cp, action, kwargs):
        payload = snake_to_camel_case(kwargs)
        if action in self.responders:
            answer = self.responders[action](payload)
        else:
            answer = self._default_answer(action, payload)
        return getattr(call_result, action)(**camel_to_snake_case(answer))

    def _tag_info(self, id_tag):
        return {"status": self.id_tags.get(id_tag, self.default_tag_status)}

    def _default_answer(self, action, payload):
        now = format_utc(time.time())
        if action == "BootNotification":
            status, interval = (self.boot_answers.pop(0) if self.boot_answers
                                else ("Accepted", self.heartbeat_interval))
            return {"status": status, "currentTime": now, "interval": interval}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action == "Authorize":
            return {"idTagInfo": self._tag_info(payload["idTag"])}
        if action == "StartTransaction":
            with self._cond:
                tx = self.next_transaction_id
                self.next_transaction_id += 1
            return {"transactionId": tx, "idTagInfo": self._tag_info(payload["idTag"])}
        if action == "StopTransaction":
            return {"idTagInfo": self._tag_info(payload["idTag"])} if "idTag" in payload else {}
        if action == "DataTransfer":
            return {"status": "UnknownVendorId"}
        return {}

    # --- for the test ---------------------------------------------------------------------
    def wait_connected(self, timeout=10):
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections, timeout):
                raise AssertionError("no charge point connected within %s s" % timeout)
            return self.connections[-1]

    def wait_connections(self, count, timeout=10):
        """Wait until `count` connections have been accepted in all; the last one."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.connections) >= count, timeout):
                raise AssertionError("%d connection(s) within %s s, not %d"
                                     % (len(self.connections), timeout, count))
            return self.connections[-1]

    def wait_for(self, action, timeout=10, predicate=None):
        """The oldest CALL of `action` (matching `predicate`) not waited for yet."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(len(self.received)):
                    cp_id, act, payload, t = self.received[i]
                    if i not in self._consumed and act == action and \
                            (predicate is None or predicate(payload)):
                        self._consumed.add(i)
                        return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [r[1] for i, r in enumerate(self.received) if i not in self._consumed]
                    raise AssertionError("no %s within %s s (not yet waited for: %s)"
                                         % (action, timeout, seen))
                self._cond.wait(left)

    def actions(self):
        with self._cond:
            return [r[1] for r in self.received]

    def call(self, cp_id, action, payload, timeout=10):
        """Send a CSMS-initiated CALL; returns the charge point's answer (camelCase)."""
        cp = self._cps[cp_id]
        request = getattr(call, action)(**camel_to_snake_case(payload))

        async def go():
            return await cp.call(request, suppress=False)
        try:
            result = asyncio.run_coroutine_threadsafe(go(), self._loop).result(timeout)
        except OCPPError as e:
            raise CallFailed(getattr(e, "code", type(e).__name__), str(e))
        answer = {k: v for k, v in dataclasses.asdict(result).items() if v is not None}
        return snake_to_camel_case(answer)
