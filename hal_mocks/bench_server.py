"""The bench control socket: JSON lines over TCP on 127.0.0.1 (see
/work/shared/bench-contract.md for the public protocol).

One request per line, one response per line; every response has "ok" and,
when ok is false, a one-line "error". A bad request never closes the
connection. The socket listens on the loopback interface only: anyone who can
reach it can plug EVs and weld contactors.

    {"cmd": "plug", "connector": 1}
    {"cmd": "unplug", "connector": 1}
    {"cmd": "ev", "connector": 1, "state": "C"}
    {"cmd": "tap", "uid": "04A1B2C3"}
    {"cmd": "meter", "connector": 1, "power_w": 7400}
    {"cmd": "fault", "device": "meter", "mode": "offline"}
    {"cmd": "status"}
    {"cmd": "tamper", "open": true}       the enclosure opened (false: closed again)

A request may carry an "id"; the response echoes it.

status merges the simulated world's facts with status_provider(), a callable
(called from the server's threads, so it must be thread-safe) returning
{"connectors": {"1": {"ocpp_status", "transaction_id", "error_code", ...}},
 "ocpp": {"connected", "registration", "queued_messages"}, ...}. The world's
physical facts win over the provider's on the same key; other top-level keys
of the provider are passed through.
"""

import json
import socket

from drivers import jsonlines
from drivers.jsonlines import LineServer, one_line
from hal_mocks.sim import DEVICES

LOOPBACK = "127.0.0.1"
MAX_LINE = 64 * 1024           # bytes of one request, without its newline
MAX_CLIENTS = 32
COMMANDS = ("plug", "unplug", "ev", "tap", "meter", "fault", "status", "tamper")

_OCPP_DEFAULTS = {"connected": False, "registration": None, "queued_messages": 0}
_CONNECTOR_DEFAULTS = {"ocpp_status": None, "transaction_id": None, "error_code": None}


class RequestError(Exception):
    """A request the bench cannot carry out; str(e) is the one-line error."""


def _describe(value):
    return json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__


def _arg(request, name, kind, example):
    if name not in request:
        raise RequestError("%s: missing %r, like %s" % (request["cmd"], name, example))
    value = request[name]
    if kind == "int":
        ok = type(value) is int
        words = "an integer"
    elif kind == "number":
        ok = type(value) in (int, float)
        words = "a number"
    else:
        ok = type(value) is str
        words = "a string"
    if not ok:
        raise RequestError("%s: %r must be %s, like %s (got %s)"
                           % (request["cmd"], name, words, example, _describe(value)))
    return value


class BenchServer(LineServer):
    def __init__(self, world, port, status_provider=None, host=LOOPBACK):
        if host != LOOPBACK:
            raise ValueError("the bench listens on %s only, not %r" % (LOOPBACK, host))
        if type(port) is not int or not 0 <= port <= 65535:
            raise ValueError("bench port must be an integer from 0 to 65535, not %r" % (port,))
        super().__init__(MAX_CLIENTS, "bench-client-%d")
        self.world = world
        self.host = host
        self.port = port
        self.status_provider = status_provider

    # --- lifecycle ------------------------------------------------------------------------
    def start(self):
        """Listen; returns once the socket accepts connections (self.port is the real port)."""
        if self._listener is not None:
            raise RuntimeError("the bench server is already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(8)
        except OSError as e:
            listener.close()
            err = OSError("cannot open the bench port %s:%d (%s)"
                          % (self.host, self.port, one_line(e.strerror or e)))
            err.errno = e.errno
            raise err from e
        self.port = listener.getsockname()[1]
        self.start_serving(listener, "bench-server-%d" % self.port)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- connections ----------------------------------------------------------------------
    def too_many(self):
        return "too many bench connections (at most %d)" % MAX_CLIENTS

    def serve(self, conn):
        for line in jsonlines.request_lines(conn, MAX_LINE, crlf=True):
            if line is None:
                response = jsonlines.too_long(MAX_LINE)
            else:
                response = self.handle_line(line)
            if not self.send(conn, response):
                return

    # --- requests -------------------------------------------------------------------------
    def handle_line(self, line):
        """One request line (bytes or str) -> the response dict."""
        request, error = jsonlines.parse_request(line)
        if error is not None:
            return error
        return self.handle(request)

    def handle(self, request):
        """One decoded request -> the response dict (never raises)."""
        if not isinstance(request, dict):
            return {"ok": False, "error": 'the request must be a JSON object, like '
                                          '{"cmd": "status"}'}
        try:
            response = self._dispatch(request)
        except (RequestError, ValueError) as e:
            response = {"ok": False, "error": one_line(e)}
        except Exception as e:   # a bug must not kill the bench connection
            response = {"ok": False, "error": "internal error: %s: %s"
                        % (type(e).__name__, one_line(e))}
        if "id" in request:
            response["id"] = request["id"]
        return response

    def _dispatch(self, request):
        cmd = request.get("cmd")
        if type(cmd) is not str or cmd not in COMMANDS:
            if "cmd" not in request:
                raise RequestError('missing "cmd": one of %s' % "|".join(COMMANDS))
            raise RequestError("unknown cmd %s: one of %s" % (_describe(cmd), "|".join(COMMANDS)))
        w = self.world
        if cmd == "status":
            return self.status()
        if cmd == "tap":
            id_tag, seen = w.tap(_arg(request, "uid", "str", '"04A1B2C3"'))
            response = {"ok": True, "uid": id_tag, "seen": seen}
            if not seen:
                response["note"] = "the RFID reader is offline: the card was not seen"
            return response
        if cmd == "tamper":
            if type(request.get("open")) is not bool:
                raise RequestError('tamper: "open" must be true or false, like true')
            return {"ok": True, "open": w.tamper(request["open"])}
        if cmd == "fault":
            device = _arg(request, "device", "str", '"meter" (%s)' % "|".join(DEVICES))
            mode = _arg(request, "mode", "str", '"offline" (none|offline|welded|stuck)')
            return {"ok": True, "device": device, "mode": w.fault(device, mode)}
        cid = _arg(request, "connector", "int", "1")
        if cmd == "plug":
            state = w.plug(cid)
        elif cmd == "unplug":
            state = w.unplug(cid)
        elif cmd == "ev":
            state = w.ev(cid, _arg(request, "state", "str", '"C" (A|B|C|D|E|F)'))
        else:   # meter
            power = _arg(request, "power_w", "number", "7400")
            return {"ok": True, "connector": cid, "power_w": w.set_power(cid, power)}
        return {"ok": True, "connector": cid, "ev_state": state}

    def status(self):
        facts = self.world.snapshot()
        provided, provider_error = {}, None
        if self.status_provider is not None:
            try:
                provided = self.status_provider() or {}
                if not isinstance(provided, dict):
                    raise TypeError("status_provider returned %s, not a dict"
                                    % type(provided).__name__)
            except Exception as e:
                provided, provider_error = {}, "%s: %s" % (type(e).__name__, one_line(e))
        provided_connectors = provided.get("connectors") or {}
        response = {"ok": True}
        for key, value in provided.items():
            if key not in ("ok", "error", "connectors", "ocpp"):
                response[key] = value
        connectors = {}
        for cid, world_facts in facts.pop("connectors").items():
            entry = dict(_CONNECTOR_DEFAULTS)
            extra = provided_connectors.get(str(cid), provided_connectors.get(cid)) or {}
            entry.update(extra)
            entry.update(world_facts)
            connectors[str(cid)] = entry
        response["connectors"] = connectors
        ocpp = dict(_OCPP_DEFAULTS)
        ocpp.update(provided.get("ocpp") or {})
        response["ocpp"] = ocpp
        response.update(facts)     # faults, indicator, ...
        if provider_error:
            response["provider_error"] = provider_error
        return response
