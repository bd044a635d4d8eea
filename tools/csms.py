"""A small OCPP 1.6-J central system for the bench.

    python -m tools.csms --port 9000          (or the pi-ocpp-csms console script)

Charge points connect to ws://HOST:PORT/<anything>/<charge-point-id> with the
"ocpp1.6" subprotocol (any other offer is refused). Every frame is printed on
stdout, one line each:

    10:15:30.123  CP-BENCH-1  -> CALL BootNotification  {"chargePointVendor": ...}
    10:15:30.124  CP-BENCH-1  <- RESULT BootNotification  {"status": "Accepted", ...}

"->" is charge point to CSMS, "<-" is CSMS to charge point. The prompt on stdin
sends CSMS-initiated calls (type `help`).

Built on ocpp_core: one RpcEndpoint(role="cs") per connection, owned by that
connection's thread alone. Other threads (the prompt, tests) hand it commands
through the connection's queue and wait on a condition variable.

For tests and demo scripts, BenchCsms is the programmatic API:

    csms = BenchCsms(port=0); csms.start()
    ...   # connect a charge point to ws://127.0.0.1:%d/ocpp/CP-1 % csms.port
    boot = csms.wait_for("BootNotification", timeout=10)
    csms.call("CP-1", "Reset", {"type": "Soft"})      # -> {"status": "Accepted"}
    csms.stop()
"""

import argparse
import collections
import json
import logging
import signal
import sys
import threading
import time
from urllib.parse import unquote

from ocpp_core import errors, framing
from ocpp_core.catalogue import ACTIONS
from ocpp_core.redact import redact_frame
from ocpp_core.rpc import CENTRAL_SYSTEM, RpcEndpoint
from ocpp_core.timestamps import format_utc

SUBPROTOCOL = "ocpp1.6"
DEFAULT_ID_TAGS = ("04A1B2C3", "DEADBEEF")
BOOT_STATUSES = ("Accepted", "Pending", "Rejected")
RECV_TIMEOUT = 0.05     # how often a connection's thread looks at its command queue
CALL_GRACE = 1.0        # call() waits this much longer than the engine's own timeout
PROMPT_CALL_TIMEOUT = 30.0
OPEN_TIMEOUT = 5.0      # websocket handshake
CLOSE_TIMEOUT = 2.0     # waiting for the peer's close frame
_MAX_TRACKED_IDS = 256  # message ids remembered to name the action of an answer

# CALLs from the charge point that are simply acknowledged.
_EMPTY_ANSWERS = ("StatusNotification", "MeterValues", "DiagnosticsStatusNotification",
                  "FirmwareStatusNotification", "SecurityEventNotification",
                  "SignedFirmwareStatusNotification")


class CallError(errors.OcppError):
    """A CSMS-initiated call failed: the charge point's CALLERROR code, or
    errors.TIMEOUT / errors.DISCONNECTED. Has .code, .description, .details."""


def _compact(value):
    return json.dumps(value, sort_keys=False)


def _local_clock(t=None):
    if t is None:
        t = time.time()
    secs, ms = divmod(int(t * 1000 + 0.5), 1000)   # rounded, as format_utc does
    return "%s.%03d" % (time.strftime("%H:%M:%S", time.localtime(secs)), ms)


def charge_point_id_from_path(path):
    """The last segment of the path, percent-decoded: '/ocpp/CP%201?x=1' -> 'CP 1'.
    None when it is empty ('/ocpp/'), not UTF-8, or not printable."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    segment = path.rsplit("/", 1)[-1]
    try:
        cp_id = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return None
    if not cp_id or len(cp_id) > 100 or not cp_id.isprintable():
        return None
    return cp_id


# --- the prompt's command language (pure, unit-testable) ---------------------------

USAGE = (
    ("remote-start CONNECTOR IDTAG", "RemoteStartTransaction"),
    ("remote-stop TXID", "RemoteStopTransaction"),
    ("get-config [KEY ...]", "GetConfiguration (all keys when none given)"),
    ("change-config KEY VALUE", "ChangeConfiguration (VALUE: rest of the line, or \"quoted\")"),
    ("reset soft|hard", "Reset"),
    ("unlock CONNECTOR", "UnlockConnector"),
    ("availability CONNECTOR Operative|Inoperative", "ChangeAvailability (0 = whole charge point)"),
    ("clear-cache", "ClearCache"),
    ("trigger MESSAGE [CONNECTOR]", "TriggerMessage (BootNotification, Heartbeat, MeterValues, ...)"),
    ("data-transfer VENDOR [MESSAGEID [DATA]]", "DataTransfer"),
    ("call ACTION [{json}]", "any CSMS-initiated action with a raw payload"),
    ("list", "connected charge points"),
    ("help", "this text"),
    ("quit", "stop the central system"),
)
_USAGE_BY_WORD = {u.split()[0]: u for u, _ in USAGE}

_TRIGGERABLE = ACTIONS["TriggerMessage"][2][1]["requestedMessage"][2]
_AVAILABILITY = ACTIONS["ChangeAvailability"][2][1]["type"][2]
_RESET_TYPES = ACTIONS["Reset"][2][1]["type"][2]


def _usage_error(word):
    return ValueError("usage: " + _USAGE_BY_WORD[word])


def _int_arg(text, what, minimum=None):
    digits = text[1:] if text[:1] == "-" else text
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("%s must be an integer, not %r" % (what, text))
    value = int(text)
    if minimum is not None and value < minimum:
        raise ValueError("%s must be %d or more" % (what, minimum))
    return value


def _free_text(text):
    """The rest of a line; "a JSON-quoted string" when it needs spaces at its ends
    or has to be empty."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError("badly quoted text: %s" % text[:60])
        if isinstance(value, str):
            return value
    return text


def _choose(word, allowed, what):
    for a in allowed:
        if a.lower() == word.lower():
            return a
    raise ValueError("%s must be one of %s, not %r" % (what, ", ".join(allowed), word))


def _csms_action(name):
    """An action the central system may send, matched without regard to case."""
    matches = [a for a in ACTIONS if a.lower() == name.lower()]
    if not matches:
        raise ValueError("unknown OCPP 1.6 action %r" % name)
    action = matches[0]
    if ACTIONS[action][1] == "cp":
        raise ValueError("%s is sent by the charge point, not the central system" % action)
    return action


def split_target(text):
    """'@CP-1 reset soft' -> ('CP-1', 'reset soft'); no prefix -> (None, text)."""
    text = text.strip()
    if not text.startswith("@"):
        return None, text
    parts = text[1:].split(None, 1)
    if not parts or text[1:2].isspace():
        raise ValueError("'@' must be followed by a charge point id")
    return parts[0], parts[1] if len(parts) > 1 else ""


def parse_command(text):
    """One prompt command (without its @CPID prefix) -> (action, payload).

    Raises ValueError with a one-line message for anything it cannot read. The
    payload's schema is checked later, by the RpcEndpoint that sends it."""
    parts = text.strip().split(None, 1)
    if not parts:
        raise ValueError("empty command")
    word = parts[0].lower()
    rest = parts[1] if len(parts) > 1 else ""
    args = rest.split()
    if word == "remote-start":
        if len(args) != 2:
            raise _usage_error(word)
        return "RemoteStartTransaction", {"connectorId": _int_arg(args[0], "CONNECTOR", 1),
                                          "idTag": args[1]}
    if word == "remote-stop":
        if len(args) != 1:
            raise _usage_error(word)
        return "RemoteStopTransaction", {"transactionId": _int_arg(args[0], "TXID")}
    if word == "get-config":
        return "GetConfiguration", ({"key": args} if args else {})
    if word == "change-config":
        kv = rest.split(None, 1)
        if len(kv) != 2:
            raise _usage_error(word)
        return "ChangeConfiguration", {"key": kv[0], "value": _free_text(kv[1])}
    if word == "reset":
        if len(args) != 1:
            raise _usage_error(word)
        return "Reset", {"type": _choose(args[0], _RESET_TYPES, "the reset type")}
    if word == "unlock":
        if len(args) != 1:
            raise _usage_error(word)
        return "UnlockConnector", {"connectorId": _int_arg(args[0], "CONNECTOR", 1)}
    if word == "availability":
        if len(args) != 2:
            raise _usage_error(word)
        return "ChangeAvailability", {"connectorId": _int_arg(args[0], "CONNECTOR", 0),
                                      "type": _choose(args[1], _AVAILABILITY, "the availability")}
    if word == "clear-cache":
        if args:
            raise _usage_error(word)
        return "ClearCache", {}
    if word == "trigger":
        if len(args) not in (1, 2):
            raise _usage_error(word)
        payload = {"requestedMessage": _choose(args[0], _TRIGGERABLE, "MESSAGE")}
        if len(args) == 2:
            payload["connectorId"] = _int_arg(args[1], "CONNECTOR", 0)
        return "TriggerMessage", payload
    if word == "data-transfer":
        fields = rest.split(None, 2)
        if not fields:
            raise _usage_error(word)
        payload = {"vendorId": fields[0]}
        if len(fields) > 1:
            payload["messageId"] = fields[1]
        if len(fields) > 2:
            payload["data"] = _free_text(fields[2])
        return "DataTransfer", payload
    if word == "call":
        fields = rest.split(None, 1)
        if not fields:
            raise _usage_error(word)
        action = _csms_action(fields[0])
        if len(fields) == 1:
            return action, {}
        try:
            payload = json.loads(fields[1])
        except ValueError as e:
            raise ValueError("the payload is not JSON: %s" % e)
        return action, payload
    raise ValueError("unknown command %r (type help)" % parts[0])


def validate_request(action, payload):
    """ValueError (one line) unless the RpcEndpoint would send this call. Uses a
    private, never-connected endpoint, so it is safe from any thread."""
    RpcEndpoint(CENTRAL_SYSTEM, send=lambda text: None).call(action, payload)


# --- the server ---------------------------------------------------------------------

class _Command:
    """A CSMS-initiated call travelling from a caller's thread to a connection's."""
    __slots__ = ("action", "payload", "timeout", "done", "result", "error", "abandoned")

    def __init__(self, action, payload, timeout):
        self.action = action
        self.payload = payload
        self.timeout = timeout
        self.done = False
        self.result = None
        self.error = None
        self.abandoned = False


class _Link:
    """One connected charge point. `commands`, `closed` and `stop` are guarded by
    the BenchCsms condition; everything else belongs to the connection's thread."""

    def __init__(self, cp_id, remote):
        self.cp_id = cp_id
        self.remote = remote
        self.since = time.time()
        self.commands = collections.deque()
        self.closed = False          # no more commands are taken
        self.stop = False            # the thread is asked to end the connection
        self.stop_reason = ""
        self.calls_in = {}           # message id -> action, CALLs from the charge point
        self.calls_out = {}          # message id -> action, our CALLs
        self.transactions = {}       # transactionId -> connectorId (for `list`)


def _format_remote(remote):
    if isinstance(remote, tuple) and len(remote) >= 2:
        host = remote[0]
        return ("[%s]:%s" if ":" in str(host) else "%s:%s") % (host, remote[1])
    return str(remote)


class BenchCsms:
    """An OCPP 1.6-J central system for the bench, thread-safe from the outside."""

    def __init__(self, host="127.0.0.1", port=0, id_tags=DEFAULT_ID_TAGS, accept_all=False,
                 heartbeat_interval=300, boot_status="Accepted", boot_interval=10,
                 out=None, quiet=False):
        if boot_status not in BOOT_STATUSES:
            raise ValueError("boot_status must be one of %s" % ", ".join(BOOT_STATUSES))
        if isinstance(id_tags, str):
            id_tags = id_tags.split(",")
        self.host = host
        self.port = port
        self.id_tags = tuple(t.strip() for t in id_tags if t.strip())
        # idTags are CiString20: compared without regard to case.
        self._accepted = frozenset(t.upper() for t in self.id_tags)
        self.accept_all = accept_all
        self.heartbeat_interval = int(heartbeat_interval)
        self.boot_status = boot_status
        self.boot_interval = int(boot_interval)
        self.out = out               # None: sys.stdout at the time of writing
        self.quiet = quiet
        self.received = []           # (cp_id, action, payload) of every CALL handled, in order
        self._consumed = set()       # indexes into received taken by wait_for()
        self._cond = threading.Condition()
        self._print_lock = threading.Lock()
        self._links = {}             # cp_id -> _Link, in connect order
        self._sockets = []           # (thread, websocket) of every accepted TCP connection
        self._next_tx = 1
        self._server = None
        self._accept_thread = None
        self._stopping = False

    # --- output -----------------------------------------------------------------
    def print_line(self, text):
        """Write one line to `out`, whole and flushed, whichever thread asks."""
        out = self.out if self.out is not None else sys.stdout
        with self._print_lock:
            try:
                out.write(text + "\n")
                out.flush()
            except (OSError, ValueError):   # a closed pipe or file: keep serving
                pass

    def _say(self, cp_id, text):
        self.print_line("%s  %s  %s" % (_local_clock(), cp_id, text))

    def _trace(self, link, direction, text):
        """RpcEndpoint trace hook (connection thread; text already redacted)."""
        incoming = direction == "rx"
        frame = framing.decode(text)
        if isinstance(frame, framing.BadFrame):
            kind = "?? %s  %s" % (frame.reason, json.dumps(text[:200]))
        elif frame.kind == framing.CALL:
            ids = link.calls_in if incoming else link.calls_out
            if len(ids) >= _MAX_TRACKED_IDS:
                ids.clear()
            ids[frame.id] = frame.action
            kind = "CALL %s  %s" % (frame.action, _compact(frame.payload))
        else:
            action = (link.calls_out if incoming else link.calls_in).pop(frame.id, "?")
            if frame.kind == framing.CALLRESULT:
                kind = "RESULT %s  %s" % (action, _compact(frame.payload))
            else:
                kind = "ERROR %s (%s)  %s  %s" % (frame.code, action, json.dumps(frame.description),
                                                  _compact(frame.details))
        if not self.quiet:
            self._say(link.cp_id, "%s %s" % ("->" if incoming else "<-", kind))

    # --- life cycle ---------------------------------------------------------------
    def start(self):
        """Listen (port 0: a free port, then in self.port); returns once listening."""
        from websockets.sync.server import ServerConnection, serve

        if self._server is not None:
            raise RuntimeError("already started")

        def make_connection(*args, **kwargs):
            ws = ServerConnection(*args, **kwargs)
            with self._cond:
                self._sockets = [(t, w) for t, w in self._sockets if t.is_alive()]
                self._sockets.append((threading.current_thread(), ws))
            return ws

        self._server = serve(self._serve_connection, self.host, self.port,
                             subprotocols=[SUBPROTOCOL], process_request=self._check_request,
                             create_connection=make_connection, open_timeout=OPEN_TIMEOUT,
                             close_timeout=CLOSE_TIMEOUT)
        self.port = self._server.socket.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._server.serve_forever,
                                               name="csms-accept", daemon=True)
        self._accept_thread.start()
        return self

    @property
    def url(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "ws://%s:%d/ocpp/" % (host, self.port)

    def stop(self):
        """Close every connection and join the threads. Safe to call twice."""
        with self._cond:
            self._stopping = True
            for link in self._links.values():
                link.stop = True
                link.stop_reason = "the central system is stopping"
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._accept_thread.join()
        with self._cond:
            tracked = list(self._sockets)
            self._sockets = []
        me = threading.current_thread()
        for thread, ws in tracked:
            if thread is me:
                continue
            if ws.response is None:       # still in the opening handshake
                ws.close_socket()
            thread.join(OPEN_TIMEOUT + CLOSE_TIMEOUT + 1.0)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- the connection threads -----------------------------------------------------
    def _check_request(self, ws, request):
        """process_request hook: refuse a bad path or subprotocol with one clean line."""
        remote = _format_remote(ws.remote_address)
        offered = []
        for header in request.headers.get_all("Sec-WebSocket-Protocol"):
            offered.extend(p.strip() for p in header.split(",") if p.strip())
        cp_id = charge_point_id_from_path(request.path)
        if self._stopping:
            return ws.respond(503, "the central system is stopping\n")
        if cp_id is None:
            self._say("-", "refused %s from %s: no charge point id in the path"
                      % (json.dumps(request.path[:100]), remote))
            return ws.respond(404, "connect to /ocpp/<charge-point-id>\n")
        if SUBPROTOCOL not in offered:
            self._say(cp_id, "refused from %s: subprotocol %s offered, %s required"
                      % (remote, ",".join(offered) or "none", SUBPROTOCOL))
            return ws.respond(400, "this central system speaks the %s subprotocol only\n"
                              % SUBPROTOCOL)
        return None

    def _serve_connection(self, ws):
        from websockets.exceptions import ConnectionClosed

        if ws.response is None or ws.response.status_code != 101:
            return      # refused in the handshake (reached only when asserts are off)
        cp_id = charge_point_id_from_path(ws.request.path)
        link = _Link(cp_id, _format_remote(ws.remote_address))
        rpc = RpcEndpoint(CENTRAL_SYSTEM, send=ws.send,
                          trace=lambda direction, text: self._trace(link, direction, text))
        self._install_handlers(rpc, link)
        with self._cond:
            if self._stopping:
                return
            old = self._links.pop(cp_id, None)
            if old is not None:
                old.stop = True
                old.stop_reason = "replaced by a new connection"
            self._links[cp_id] = link
            self._cond.notify_all()
        self._say(cp_id, "connected from %s (%s)" % (link.remote, ws.subprotocol))
        rpc.connection_up()
        why = "closed by the charge point"
        try:
            while True:
                with self._cond:
                    if link.stop:
                        why = link.stop_reason
                        break
                    commands = list(link.commands)
                    link.commands.clear()
                for cmd in commands:
                    self._start_command(rpc, cmd)
                wait = rpc.poll()
                timeout = RECV_TIMEOUT if wait is None else max(0.0, min(RECV_TIMEOUT, wait))
                try:
                    message = ws.recv(timeout=timeout)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    if ws.close_code is not None:
                        why = "closed by the charge point (code %s)" % ws.close_code
                    else:
                        why = "connection lost"
                    break
                rpc.receive(message)
        finally:
            with self._cond:
                link.closed = True
                left = list(link.commands)
                link.commands.clear()
            for cmd in left:
                self._finish(cmd, error=CallError(errors.DISCONNECTED,
                                                  "%s disconnected" % cp_id))
            rpc.connection_down()     # fails the call in flight, if any
            self._say(cp_id, "disconnected: %s" % why)
            with self._cond:
                if self._links.get(cp_id) is link:
                    del self._links[cp_id]
                self._cond.notify_all()

    def _start_command(self, rpc, cmd):
        with self._cond:
            if cmd.abandoned:
                return
        try:
            rpc.call(cmd.action, cmd.payload, timeout=cmd.timeout,
                     on_result=lambda payload: self._finish(cmd, result=payload),
                     on_error=lambda code, description, details: self._finish(
                         cmd, error=CallError(code, description, details)))
        except ValueError as e:
            self._finish(cmd, error=e)

    def _finish(self, cmd, result=None, error=None):
        with self._cond:
            if cmd.done:
                return
            cmd.done = True
            cmd.result = result
            cmd.error = error
            self._cond.notify_all()

    # --- what the central system answers ----------------------------------------------
    def _install_handlers(self, rpc, link):
        answers = {
            "BootNotification": self._answer_boot,
            "Heartbeat": lambda link, payload: {"currentTime": format_utc(time.time())},
            "Authorize": lambda link, payload: {"idTagInfo": self._id_tag_info(payload["idTag"])},
            "StartTransaction": self._answer_start,
            "StopTransaction": self._answer_stop,
            "DataTransfer": lambda link, payload: {"status": "UnknownVendorId"},
        }
        for action in _EMPTY_ANSWERS:
            answers[action] = lambda link, payload: {}
        for action, answer in answers.items():
            rpc.on(action, self._handler(link, action, answer))

    def _handler(self, link, action, answer):
        def handle(payload):
            with self._cond:
                self.received.append((link.cp_id, action, payload))
                self._cond.notify_all()
            return answer(link, payload)
        return handle

    def _id_tag_info(self, id_tag):
        ok = self.accept_all or id_tag.upper() in self._accepted
        return {"status": "Accepted" if ok else "Invalid"}

    def _answer_boot(self, link, payload):
        accepted = self.boot_status == "Accepted"
        return {"status": self.boot_status, "currentTime": format_utc(time.time()),
                "interval": self.heartbeat_interval if accepted else self.boot_interval}

    def _answer_start(self, link, payload):
        with self._cond:
            tx_id = self._next_tx
            self._next_tx += 1
        link.transactions[tx_id] = payload["connectorId"]
        return {"transactionId": tx_id, "idTagInfo": self._id_tag_info(payload["idTag"])}

    def _answer_stop(self, link, payload):
        link.transactions.pop(payload["transactionId"], None)
        if "idTag" in payload:
            return {"idTagInfo": self._id_tag_info(payload["idTag"])}
        return {}

    # --- the programmatic API ------------------------------------------------------------
    def charge_points(self):
        """Ids of the connected charge points, in the order they connected."""
        with self._cond:
            return list(self._links)

    def describe_charge_points(self):
        """One line per connected charge point (for the prompt's `list`)."""
        with self._cond:
            links = list(self._links.values())
        lines = []
        for link in links:
            txs = dict(link.transactions)
            tx_text = ", ".join("%d on connector %s" % (t, c) for t, c in sorted(txs.items()))
            lines.append("%s  from %s since %s  transactions: %s"
                         % (link.cp_id, link.remote, _local_clock(link.since)[:8],
                            tx_text or "none"))
        return lines

    def wait_connected(self, cp_id=None, timeout=10):
        """Block until cp_id (or any charge point) is connected; returns its id."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if cp_id is None and self._links:
                    return next(iter(self._links))
                if cp_id is not None and cp_id in self._links:
                    return cp_id
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no charge point %sconnected within %g s"
                                       % ("%s " % cp_id if cp_id else "", timeout))
                self._cond.wait(remaining)

    def wait_disconnected(self, cp_id, timeout=10):
        """Block until no charge point of that id is connected."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while cp_id in self._links:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("%s still connected after %g s" % (cp_id, timeout))
                self._cond.wait(remaining)

    def wait_for(self, action, timeout=10, cp_id=None, predicate=None):
        """Payload of the first CALL of `action` received and not yet taken by an
        earlier wait_for (optionally from cp_id, optionally with predicate(payload)
        true), waiting up to `timeout` seconds for it. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            start = 0
            while True:
                for i in range(start, len(self.received)):
                    if i in self._consumed:
                        continue
                    rec_cp, rec_action, payload = self.received[i]
                    if rec_action == action and (cp_id is None or rec_cp == cp_id) \
                            and (predicate is None or predicate(payload)):
                        self._consumed.add(i)
                        return payload
                start = len(self.received)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no %s%s within %g s"
                                       % (action, " from %s" % cp_id if cp_id else "", timeout))
                self._cond.wait(remaining)

    def call(self, cp_id, action, payload, timeout=10):
        """Send a CALL to a charge point and wait for its answer (any thread).

        Returns the CALLRESULT payload. Raises ValueError for a request that is
        not valid OCPP 1.6 (nothing is sent), CallError with the CALLERROR code,
        or with errors.TIMEOUT / errors.DISCONNECTED. cp_id None: the only
        connected charge point."""
        validate_request(action, payload)
        cmd = _Command(action, payload, timeout)
        deadline = time.monotonic() + timeout + CALL_GRACE
        with self._cond:
            if cp_id is None:
                if len(self._links) != 1:
                    raise CallError(errors.DISCONNECTED, "%d charge points connected: name one"
                                    % len(self._links))
                cp_id = next(iter(self._links))
            link = self._links.get(cp_id)
            if link is None or link.closed or link.stop:
                raise CallError(errors.DISCONNECTED, "%s is not connected" % cp_id)
            link.commands.append(cmd)
            while not cmd.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    cmd.abandoned = True
                    raise CallError(errors.TIMEOUT, "no answer within %g s" % timeout)
                self._cond.wait(remaining)
        if cmd.error is not None:
            raise cmd.error
        return cmd.result


# --- the prompt -----------------------------------------------------------------------

def _help_lines():
    width = max(len(u) for u, _ in USAGE)
    lines = ["commands (prefix with @CPID to pick a charge point when several are connected):"]
    lines.extend("  %-*s  %s" % (width, u, what) for u, what in USAGE)
    return lines


def _pick_target(csms, target):
    if target is not None:
        return target
    connected = csms.charge_points()
    if not connected:
        raise ValueError("no charge point is connected")
    if len(connected) > 1:
        raise ValueError("%d charge points are connected (%s): prefix the command with @CPID"
                         % (len(connected), ", ".join(connected)))
    return connected[0]


def run_command(csms, line, timeout=PROMPT_CALL_TIMEOUT):
    """Carry out one line typed at the prompt. Errors become one printed line.
    Returns False when the user asked to quit."""
    text = line.strip()
    if not text or text.startswith("#"):
        return True
    try:
        target, text = split_target(text)
        word = text.split(None, 1)[0].lower() if text else ""
        if word in ("quit", "exit"):
            return False
        if word in ("help", "?"):
            for ln in _help_lines():
                csms.print_line(ln)
            return True
        if word == "list":
            lines = csms.describe_charge_points()
            for ln in lines or ["no charge point is connected"]:
                csms.print_line(ln)
            return True
        action, payload = parse_command(text)
        validate_request(action, payload)
        cp_id = _pick_target(csms, target)
        result = csms.call(cp_id, action, payload, timeout=timeout)
        if csms.quiet:
            csms.print_line("%s %s: %s" % (cp_id, action, redact_frame(_compact(result))))
    except ValueError as e:
        csms.print_line("error: %s" % e)
    except CallError as e:
        csms.print_line("error: %s: %s" % (e.code, e.description))
    return True


def _prompt_loop(csms):
    """Returns True when the user typed quit, False when stdin was closed."""
    try:
        import readline  # noqa: F401  (line editing and history, where available)
    except ImportError:
        pass
    while True:
        try:
            line = input("csms> ")
        except EOFError:
            csms.print_line("")
            csms.print_line("stdin closed; serving until Ctrl-C")
            return False
        if not run_command(csms, line):
            return True


def _parse_args(argv):
    p = argparse.ArgumentParser(prog="pi-ocpp-csms",
                                description="A small OCPP 1.6-J central system for the bench.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9000,
                   help="port to listen on; 0 picks a free one (default 9000)")
    p.add_argument("--id-tags", default=",".join(DEFAULT_ID_TAGS), metavar="TAG,TAG",
                   help="idTags answered Accepted, others Invalid (default %(default)s)")
    p.add_argument("--accept-all", action="store_true", help="answer Accepted for any idTag")
    p.add_argument("--heartbeat-interval", type=int, default=300, metavar="SECONDS",
                   help="interval in an Accepted BootNotification answer (default 300)")
    p.add_argument("--boot-status", choices=BOOT_STATUSES, default="Accepted",
                   help="BootNotification status (default Accepted)")
    p.add_argument("--boot-interval", type=int, default=10, metavar="SECONDS",
                   help="interval in a Pending/Rejected BootNotification answer (default 10)")
    p.add_argument("--no-prompt", action="store_true", help="no command prompt on stdin")
    p.add_argument("--quiet", action="store_true", help="do not print every frame")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error("--port must be between 0 and 65535")
    if args.heartbeat_interval < 0 or args.boot_interval < 0:
        p.error("intervals must not be negative")
    return args


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    csms = BenchCsms(host=args.host, port=args.port, id_tags=args.id_tags,
                     accept_all=args.accept_all, heartbeat_interval=args.heartbeat_interval,
                     boot_status=args.boot_status, boot_interval=args.boot_interval,
                     quiet=args.quiet)
    try:
        csms.start()
    except OSError as e:
        print("pi-ocpp-csms: cannot listen on %s:%d: %s" % (args.host, args.port, e),
              file=sys.stderr)
        return 1
    tags = "any" if args.accept_all else (", ".join(csms.id_tags) or "none")
    csms.print_line("pi-ocpp-csms listening on %s<charge-point-id>  port %d  (subprotocol %s; "
                    "idTags accepted: %s; boot %s)"
                    % (csms.url, csms.port, SUBPROTOCOL, tags, args.boot_status))
    if not args.quiet:
        csms.print_line("frames: '->' charge point to CSMS, '<-' CSMS to charge point")
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except (ValueError, OSError):   # not the main thread
        pass
    prompting = not args.no_prompt and sys.stdin is not None and sys.stdin.isatty()
    try:
        quit_asked = False
        if prompting:
            csms.print_line("type help for commands")
            quit_asked = _prompt_loop(csms)
        if not quit_asked:
            threading.Event().wait()      # until Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        if prompting:
            csms.print_line("")           # leave the prompt's line
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        csms.print_line("stopping")
        csms.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
