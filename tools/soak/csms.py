"""The soak's central system: a websockets server on loopback that the chaos
driver controls (answer, CALLERROR, ignore, drop the connection, go away for
seconds) and that logs every frame in order, with its connection.

The log is the evidence the invariant checker judges (tools/soak/checker.py):
a list of dicts in the order things happened, each with "kind":
  rx       a frame from the station      conn, t, msg (parsed list or None), text
  tx       a frame to the station        conn, t, msg, expect (a CALL id to be answered)
  connect / close                         conn, t
and the driver's own events (kill, spawn, exit, traceback, away, session) added
through note(). Times are time.monotonic() seconds.
"""

import http
import json
import socket
import threading
import time

from tools.loopback_csms import EMPTY_ANSWERS, LoopbackServer, accepting_answer

TX_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")
TEXT_KEPT = 300          # characters of a frame kept in the log (frames go up to 1 MiB)

# Station CALLs that are answered with an empty object.
_EMPTY = EMPTY_ANSWERS + ("SecurityEventNotification", "LogStatusNotification",
                          "SignedFirmwareStatusNotification")


def start_key(payload):
    """What makes two StartTransactions the same message (a CSMS deduplicates on it)."""
    return (payload.get("connectorId"), payload.get("idTag"), payload.get("timestamp"),
            payload.get("meterStart"))


class SoakCsms:
    def __init__(self):
        self._lock = threading.RLock()
        self.log = []
        self._conn_seq = 0
        self._conn = None            # (conn number, websocket) of the current connection
        self._away_until = 0.0
        self._hooks = []             # (action, fn) one-shot: fn(conn_no, ws, msg) -> verdict
        self._next_tx = 1
        self._starts = {}            # start_key -> transactionId already given
        self._next_id = 0
        self._server = None
        self.port = None
        self.connected = threading.Condition(self._lock)

    # --- lifecycle --------------------------------------------------------------------------
    def start(self):
        self._server = LoopbackServer(self._serve, "soak-csms", process_request=self._gate)
        self.port = self._server.start().port
        return self

    @property
    def url(self):
        return self._server.url

    def stop(self):
        if self._server is None:
            return
        self._server.stop()
        self.abort()
        self._server = None

    def note(self, kind, **fields):
        """Add one of the driver's events to the ordered log."""
        fields["kind"] = kind
        fields["t"] = time.monotonic()
        with self._lock:
            self.log.append(fields)

    # --- control ----------------------------------------------------------------------------
    def away(self, seconds):
        """Drop the connection and refuse handshakes (HTTP 503) for `seconds`."""
        with self._lock:
            self._away_until = time.monotonic() + seconds
        self.note("away", seconds=seconds)
        self.abort()

    def abort(self):
        """Abort the current connection (TCP closed, no close frame)."""
        with self._lock:
            current = self._conn
        if current is None:
            return False
        try:
            # shutdown wakes the connection's reading thread at once (close alone would
            # leave it blocked in recv until the station's next frame)
            current[1].socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True

    def on_next(self, action, fn):
        """fn(csms, conn_no, ws, msg) for the next CALL of `action` (one of TX_ACTIONS or
        any station CALL); returns "answer" (answer it normally), "error", "ignore" or
        "drop". Runs on the connection's thread before the answer."""
        with self._lock:
            self._hooks.append((action, fn))

    def clear_hooks(self):
        with self._lock:
            self._hooks = []

    def pending_hooks(self):
        with self._lock:
            return len(self._hooks)

    def current(self):
        with self._lock:
            return self._conn

    def wait_connection(self, timeout):
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._conn is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.connected.wait(left)
            return self._conn

    def send(self, text, expect=None, fuzz=False, conn=None):
        """Send one frame on the current connection (or `conn`); False when none."""
        with self._lock:
            current = conn or self._conn
            if current is None:
                return False
            try:
                msg = json.loads(text) if len(text) < 4096 else None
            except (ValueError, RecursionError):     # deep nesting: not ours to parse
                msg = None
            entry = {"kind": "tx", "conn": current[0], "t": time.monotonic(), "msg": msg,
                     "text": text[:TEXT_KEPT], "expect": expect, "fuzz": fuzz}
            self.log.append(entry)
        try:
            current[1].send(text)
            return True
        except Exception:
            entry["failed"] = True      # never left: the checker ignores it
            return False

    def call(self, action, payload):
        """Send a CALL of ours; returns its id (the answer shows up in the log)."""
        with self._lock:
            self._next_id += 1
            msg_id = "sk-%d" % self._next_id
        if not self.send(json.dumps([2, msg_id, action, payload]), expect=msg_id):
            return None
        return msg_id

    def answer_of(self, msg_id, since=0):
        """The station's answer (parsed frame) to our CALL msg_id, or None."""
        with self._lock:
            for e in self.log[since:]:
                if e["kind"] == "rx" and e["msg"] and e["msg"][0] in (3, 4) \
                        and len(e["msg"]) > 1 and e["msg"][1] == msg_id:
                    return e["msg"]
        return None

    def mark(self):
        with self._lock:
            return len(self.log)

    def find(self, predicate, since=0):
        with self._lock:
            for e in self.log[since:]:
                if predicate(e):
                    return e
        return None

    # --- the connection ---------------------------------------------------------------------
    def _gate(self, ws, request):
        with self._lock:
            away = time.monotonic() < self._away_until
        if away:
            return ws.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "CSMS away\n")
        return None

    def _serve(self, ws):
        with self._lock:
            self._conn_seq += 1
            me = (self._conn_seq, ws)
            self._conn = me
            self.log.append({"kind": "connect", "conn": me[0], "t": time.monotonic()})
            self.connected.notify_all()
        try:
            for text in ws:
                self._received(me, text)
        except Exception:
            pass
        finally:
            with self._lock:
                if self._conn is me:
                    self._conn = None
                self.log.append({"kind": "close", "conn": me[0], "t": time.monotonic()})

    def _received(self, me, text):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):
            msg = None
        with self._lock:
            self.log.append({"kind": "rx", "conn": me[0], "t": time.monotonic(), "msg": msg,
                             "text": text[:TEXT_KEPT]})
        if not (isinstance(msg, list) and len(msg) == 4 and msg[0] == 2):
            return
        verdict = "answer"
        with self._lock:
            for i, (action, fn) in enumerate(self._hooks):
                if action == msg[2] or (action == "tx" and msg[2] in TX_ACTIONS):
                    del self._hooks[i]
                    break
            else:
                fn = None
        if fn is not None:
            verdict = fn(self, me[0], me[1], msg) or "answer"
        if verdict == "ignore":
            return
        if verdict == "drop":
            self.note("drop_in_flight", conn=me[0], action=msg[2])
            self.abort()
            return
        if verdict == "error":
            self.send(json.dumps([4, msg[1], "InternalError", "soak: refused once", {}]),
                      conn=me)
            return
        answer = self._answer(msg[2], msg[3])
        if answer is None:
            self.send(json.dumps([4, msg[1], "NotImplemented", "not in this CSMS", {}]), conn=me)
        else:
            self.send(json.dumps([3, msg[1], answer]), conn=me)

    def _answer(self, action, payload):
        if action == "SignCertificate":
            return {"status": "Rejected"}
        return accepting_answer(action, payload, lambda: self._transaction_id(payload), _EMPTY)

    def _transaction_id(self, payload):
        """The same StartTransaction again gets the same transaction."""
        key = start_key(payload)
        with self._lock:
            tx = self._starts.get(key)
            if tx is None:
                tx, self._next_tx = self._next_tx, self._next_tx + 1
                self._starts[key] = tx
        return tx
