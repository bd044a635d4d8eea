"""JSON lines on a stream socket, as the maintenance socket (firmware.maintenance)
and the bench socket (hal_mocks.bench_server) speak them: one request object per
line in, one response object per line out. A bad request is answered
{"ok": false, "error": "<one line>"} and the connection stays usable.

Here: cutting what arrives into request lines (an over-long one is answered as
soon as it is known and the rest of it skipped), reading one line into a
request, and LineServer: the connection side both servers share (the accept
loop, the cap on clients, a thread per client, an orderly stop). What a server
does with a request, and how it writes its answer, stays with the server.

It sits in drivers/ though it drives no hardware: both servers may import
drivers (hal_mocks may not import firmware), and the engine is no place for
sockets.
"""

import json
import selectors
import socket
import threading
import time

RECV_SIZE = 65536            # bytes asked of one recv()


def one_line(text):
    """str(text) on one line, runs of white space folded; "error" when empty."""
    return " ".join(str(text).split()) or "error"


def too_long(limit):
    """The answer to a request line over `limit` bytes."""
    return {"ok": False, "error": "request longer than %d bytes" % limit}


def request_lines(conn, limit, crlf=False, serving=None):
    """The lines that arrive on the socket `conn` (bytes, without their LF), in
    order, until the peer closes the connection, recv() fails (a timeout too)
    or serving() - asked before each recv() - is false.

    A line over `limit` bytes is given as None, once, as soon as it is known
    (answer it with too_long(limit)), and the rest of it is skipped. crlf: the
    CRs that end a line do not count towards the limit."""
    buf = b""
    discarding = False       # inside an over-long line, already answered
    slack = 1 if crlf else 0    # a CR that may be followed by the LF
    while serving is None or serving():
        try:
            data = conn.recv(RECV_SIZE)
        except OSError:
            return
        if not data:
            return
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            if discarding:
                discarding = False
                continue
            size = len(line.rstrip(b"\r")) if crlf else len(line)
            yield None if size > limit else line
        if discarding:
            buf = b""
        elif len(buf) > limit + slack:
            # No newline in sight: answer now and skip the rest of the line.
            discarding = True
            buf = b""
            yield None


def parse_request(line):
    """One request line (bytes or str) -> (request, None), or (None, the error
    response) when it is not UTF-8, empty, not JSON (nested too deeply included)
    or not a JSON object. Never raises: a bad line costs the client one error
    line, never its connection."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            return None, {"ok": False, "error": "the request is not UTF-8 text"}
    text = line.strip()
    if not text:
        return None, {"ok": False, "error": 'empty request: send one JSON object per line, '
                                            'like {"cmd": "status"}'}
    try:
        request = json.loads(text)
    except ValueError as e:
        return None, {"ok": False, "error": "invalid JSON: %s" % one_line(e)}
    except RecursionError:
        return None, {"ok": False, "error": "invalid JSON: nested too deeply"}
    if not isinstance(request, dict):
        return None, {"ok": False, "error": 'the request must be a JSON object, like '
                                            '{"cmd": "status"}'}
    return request, None


class LineServer:
    """The connection side of a JSON-lines server, for a subclass to fill in.

    start_serving(listener, name) takes a bound, listening stream socket and
    accepts on a thread of that name; each connection gets a thread of its own
    (named client_name % n, n counting from 1) that calls accept_peer(conn) and,
    when that allows it, serve(conn); the connection is closed when serve
    returns. A connection beyond max_clients is answered with one error line,
    too_many(), and closed. stop(timeout) ends it all.

    Hooks: serve(conn) (required), accept_peer(conn), too_many(), encode(response),
    on_stop() and on_stopped(). self._lock guards the client table; a subclass
    may use it for its own shared state too (never while calling into this class).
    """

    def __init__(self, max_clients, client_name):
        self.max_clients = max_clients
        self.client_name = client_name
        self._lock = threading.Lock()
        self._listener = None
        self._wake_r = self._wake_w = None
        self._accept_thread = None
        self._clients = {}             # open socket -> its thread
        self._threads = []             # every client thread not yet joined
        self._stopping = False
        self._served = 0

    # --- hooks ----------------------------------------------------------------------------
    def serve(self, conn):
        """Talk to one client, on its own thread, until done."""
        raise NotImplementedError

    def accept_peer(self, conn):
        """False refuses the connection before serve() (say why on conn first)."""
        return True

    def too_many(self):
        """The error text for a connection beyond max_clients."""
        return "too many connections (at most %d)" % self.max_clients

    def encode(self, response):
        """A response dict -> the bytes of its line."""
        return json.dumps(response).encode("utf-8") + b"\n"

    def on_stop(self):
        """stop() has begun: wake what client threads wait on besides their socket."""

    def on_stopped(self):
        """stop() has joined the threads; the listener is closed next."""

    # --- life cycle -----------------------------------------------------------------------
    def start_serving(self, listener, name):
        """Own `listener` (bound and listening) and accept on a thread called `name`."""
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name=name)
        self._accept_thread.start()

    def stop(self, timeout=5.0):
        """Close the listener and every connection, and join every thread (for
        `timeout` s in all: they are daemon threads). Twice is harmless."""
        with self._lock:
            if self._listener is None or self._stopping:
                return
            self._stopping = True
            clients = list(self._clients)
        self.on_stop()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        self._accept_thread.join(timeout)
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)   # wakes the thread blocked in recv()
            except OSError:
                pass
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.on_stopped()
        for s in (self._listener, self._wake_r, self._wake_w):
            s.close()
        with self._lock:
            self._listener = None

    @property
    def running(self):
        return self._listener is not None and not self._stopping

    def serving(self):
        """False once stop() has begun (for request_lines(serving=...))."""
        return not self._stopping

    def send(self, conn, response):
        """Write one response line; False when the connection is gone."""
        try:
            conn.sendall(self.encode(response))
            return True
        except OSError:
            return False

    # --- connections ----------------------------------------------------------------------
    def _accept_loop(self):
        sel = selectors.DefaultSelector()
        try:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                try:
                    events = sel.select()
                except (OSError, ValueError):
                    return
                if self._stopping or any(key.fileobj is self._wake_r for key, _ in events):
                    return
                try:
                    conn, _ = self._listener.accept()
                except OSError:
                    continue
                with self._lock:
                    if self._stopping:
                        conn.close()
                        return
                    full = len(self._clients) >= self.max_clients
                    if not full:
                        self._served += 1
                        thread = threading.Thread(target=self._client, args=(conn,),
                                                  daemon=True,
                                                  name=self.client_name % self._served)
                        self._clients[conn] = thread
                        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                if full:
                    self.send(conn, {"ok": False, "error": self.too_many()})
                    conn.close()
                    continue
                thread.start()
        finally:
            sel.close()

    def _client(self, conn):
        try:
            if self.accept_peer(conn):
                self.serve(conn)
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._lock:
                self._clients.pop(conn, None)
