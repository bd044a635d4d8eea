"""The local maintenance socket: how `python -m tools.diag` talks to the running
firmware. A Unix stream socket, never a network port.

Where it lives:

    $RUNTIME_DIRECTORY/maintenance.sock   under systemd (RuntimeDirectory=pi-ocpp
                                          gives /run/pi-ocpp; the first entry
                                          when several are listed)
    <data-dir>/run/maintenance.sock       otherwise

An AF_UNIX path holds at most 107 bytes (108 with the final NUL): a longer one
is refused at start-up with one line naming a shorter alternative.

Who may connect: the socket file is 0600 in a directory of ours that is 0700
(bound while the directory is already 0700, then chmod 0600: there is no moment
at which another user could reach it; the process umask is not touched, as it
is shared with every other thread). Each connection's peer is checked with
SO_PEERCRED: only our own uid and root are served; anyone else gets one error
line, the connection is closed and the firmware log says who tried.

Protocol: JSON lines. One request object per line, one response object per
line. Every response has "ok"; when it is false, a one-line "error". A request
may carry an "id", echoed in the response. A bad request (not UTF-8, not JSON,
not an object, no "cmd", unknown command, over 64 KiB) is answered with
{"ok": false, "error": ...} and the connection stays usable.

    {"cmd": "trace", "last": 20}   turns the connection into a stream: an
        acknowledgement {"ok": true, "trace": "started"}, the `last` newest
        frames seen before (at most BACKLOG), then every OCPP frame as
        {"t": epoch seconds, "dir": "tx"|"rx", "frame": "<text>"} until the
        client disconnects. A subscriber that does not keep up loses lines
        (then {"dropped": n} says how many): the firmware never waits for it;
        one that reads nothing for SEND_TIMEOUT (5 s) is disconnected.

Every other command goes to handler(request) -> response dict, called on the
connection's own thread (see firmware/maintenance_handlers.py). The handler may
be given after start(), with set_handler() (until then requests are told the
firmware is starting), so that the socket can be claimed first thing: a firmware already
running with the same data directory answers on it, and a second one then
refuses to start (MaintenanceError) before it touches the journal.
"""

import collections
import errno
import json
import logging
import os
import select
import socket
import stat
import struct
import threading
import time

from drivers import jsonlines
from drivers.jsonlines import LineServer, one_line
from ocpp_core.redact import redact_frame

log = logging.getLogger("firmware.maintenance")

SOCKET_NAME = "maintenance.sock"
RUN_SUBDIR = "run"
SYSTEMD_RUNTIME_DIR = "/run/pi-ocpp"     # RuntimeDirectory=pi-ocpp
DEFAULT_DATA_DIR = "/var/lib/pi-ocpp"    # the README's [station] data_dir
MAX_PATH_BYTES = 107                     # sun_path is 108 bytes with its NUL
MAX_REQUEST = 64 * 1024                  # bytes of one request line
MAX_CLIENTS = 8
IDLE_TIMEOUT = 300.0                     # s; an idle request connection is closed
SEND_TIMEOUT = 5.0                       # s; a trace client that stops reading is dropped
TRACE_QUEUE = 1000                       # lines waiting per trace subscriber
BACKLOG = 200                            # recent frames kept for {"cmd": "trace", "last": n}


class MaintenanceError(Exception):
    """The socket cannot be set up; str(e) is one line for the technician."""


class MediumError(MaintenanceError):
    """The socket's folder or file cannot be written (a read-only or full data dir)."""


class AlreadyRunning(MaintenanceError):
    """Another firmware answers on the socket: this one must not start."""


def fallback_socket_path(data_dir):
    """Where the socket goes when <data-dir>/run cannot hold it (a read-only or
    full data dir): a private folder in the temp dir, named after the data dir
    and our uid, so that the tools (and a second firmware) find it too."""
    import hashlib
    import tempfile
    digest = hashlib.sha256(os.path.abspath(data_dir).encode("utf-8", "surrogateescape"))
    folder = "pi-ocpp-%d-%s" % (os.geteuid(), digest.hexdigest()[:12])
    return os.path.join(tempfile.gettempdir(), folder, SOCKET_NAME)


def socket_paths(data_dir, environ=None):
    """Every place the socket of a firmware with this data dir may be, in order."""
    primary = socket_path(data_dir, environ)
    fallback = fallback_socket_path(data_dir)
    return [primary] if primary == fallback else [primary, fallback]


def socket_path(data_dir, environ=None):
    """Where the maintenance socket of a firmware with this data dir lives."""
    environ = os.environ if environ is None else environ
    runtime = (environ.get("RUNTIME_DIRECTORY") or "").split(":")[0]
    if runtime:
        return os.path.join(runtime, SOCKET_NAME)
    return os.path.join(data_dir, RUN_SUBDIR, SOCKET_NAME)


def check_path(path):
    """Raise MaintenanceError when `path` is too long for AF_UNIX."""
    size = len(os.fsencode(path))
    if size > MAX_PATH_BYTES:
        raise MaintenanceError(
            "the maintenance socket path %s is %d bytes long, AF_UNIX allows at most %d: "
            "use a shorter data directory (or RuntimeDirectory= under systemd)"
            % (path, size, MAX_PATH_BYTES))


def _own_uid():
    return os.geteuid()


def peer_allowed(peer_uid, own_uid):
    """Our own user and root may use the socket; nobody else."""
    return peer_uid == own_uid or peer_uid == 0


def peer_credentials(conn):
    """(pid, uid, gid) of the process at the other end, or None where the
    platform cannot tell (then the 0700 directory is the only barrier)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    data = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return struct.unpack("3i", data)


def _encode(obj):
    return json.dumps(obj, separators=(",", ":"), default=str).encode("utf-8") + b"\n"


class _Subscriber:
    """One trace client: a bounded queue filled by publish_trace(), emptied by
    the client's thread. Adding never blocks; when full, lines are counted and
    dropped."""

    def __init__(self, limit):
        self.limit = limit
        self.lines = collections.deque()
        self.dropped = 0
        self.ready = threading.Event()
        self.lock = threading.Lock()

    def add(self, line):
        with self.lock:
            if len(self.lines) >= self.limit:
                self.dropped += 1
            else:
                self.lines.append(line)
        self.ready.set()

    def take(self):
        with self.lock:
            lines, self.lines = self.lines, collections.deque()
            dropped, self.dropped = self.dropped, 0
            self.ready.clear()
        return lines, dropped


class MaintenanceServer(LineServer):
    def __init__(self, path, handler, trace_queue=TRACE_QUEUE):
        super().__init__(MAX_CLIENTS, "maintenance-%d")
        self.path = path
        self.handler = handler
        self.trace_queue = trace_queue
        self._inode = None
        self._subscribers = set()
        self._backlog = collections.deque(maxlen=BACKLOG)
        self.replaced_stale = False

    # --- life cycle -------------------------------------------------------------------
    def start(self):
        """Create the socket and serve; raises MaintenanceError (one line)."""
        if self._listener is not None:
            raise RuntimeError("the maintenance server is already started")
        check_path(self.path)
        self._prepare_directory(os.path.dirname(self.path) or ".")
        self._remove_stale()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bound = False
        try:
            listener.bind(self.path)
            bound = True
            os.chmod(self.path, 0o600)
            listener.listen(MAX_CLIENTS)
            self._inode = os.stat(self.path).st_ino
        except OSError as e:
            listener.close()
            if bound:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            raise MediumError("cannot create the maintenance socket %s: %s"
                                   % (self.path, one_line(e.strerror or e)))
        self.start_serving(listener, "maintenance-accept")
        # Nothing at INFO yet: a start-up that fails next must print one line only.
        log.debug("maintenance socket at %s", self.path)
        return self

    def set_handler(self, handler):
        """Start answering requests (the firmware is built); logs where."""
        self.handler = handler
        log.info("maintenance socket at %s%s", self.path,
                 " (replaced a stale one left by an earlier run)" if self.replaced_stale else "")

    def _prepare_directory(self, directory):
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            st = os.lstat(directory)
        except OSError as e:
            raise MediumError("cannot create the maintenance socket directory %s: %s"
                                   % (directory, one_line(e.strerror or e)))
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise MaintenanceError("%s is not a plain directory: the maintenance socket "
                                   "will not be created there" % directory)
        if st.st_uid != os.geteuid():
            raise MaintenanceError("%s belongs to uid %d, not to this firmware (uid %d): the "
                                   "maintenance socket will not be created there"
                                   % (directory, st.st_uid, os.geteuid()))
        if stat.S_IMODE(st.st_mode) != 0o700:
            try:
                os.chmod(directory, 0o700)
            except OSError as e:
                raise MaintenanceError("cannot make %s private (chmod 0700): %s"
                                       % (directory, one_line(e.strerror or e)))

    def _remove_stale(self):
        """A socket file left by a crashed run is replaced; one that answers
        belongs to a firmware that is still running: refuse to start a second."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as e:
            raise MaintenanceError("cannot inspect %s: %s"
                                   % (self.path, one_line(e.strerror or e)))
        if not stat.S_ISSOCK(st.st_mode):
            raise MaintenanceError("%s exists and is not a socket: remove it" % self.path)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(self.path)
        except (ConnectionRefusedError, FileNotFoundError):
            pass    # nobody listens: stale
        except OSError as e:
            if e.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise MaintenanceError("cannot check the old maintenance socket %s: %s"
                                       % (self.path, one_line(e.strerror or e)))
        else:
            raise AlreadyRunning("another firmware is running with this data directory "
                                   "(its maintenance socket %s answers)" % self.path)
        finally:
            probe.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise MediumError("cannot remove the stale maintenance socket %s: %s"
                                   % (self.path, one_line(e.strerror or e)))
        self.replaced_stale = True
        log.debug("replaced a stale maintenance socket left by an earlier run")

    def stop(self, timeout=2.0):
        """Close every connection, join the threads (for `timeout` s in all: they
        are daemon threads, and one may be waiting for a card or for a main loop
        that has ended), remove the socket file."""
        super().stop(timeout)

    def on_stop(self):
        """Trace streams wait on their subscriber, not on the socket: wake them."""
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.ready.set()

    def on_stopped(self):
        try:
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)   # ours: not one a newer instance created
        except OSError:
            pass

    # --- trace --------------------------------------------------------------------------
    def publish_trace(self, direction, text):
        """An OCPP frame went out ("tx") or came in ("rx"). Safe from any thread;
        never blocks on a subscriber."""
        if not isinstance(text, str):
            text = repr(text)
        entry = (time.time(), direction, redact_frame(text))
        self._backlog.append(entry)
        if not self._subscribers:
            return
        line = _encode({"t": round(entry[0], 3), "dir": direction, "frame": entry[2]})
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.add(line)

    # --- connections ----------------------------------------------------------------------
    def too_many(self):
        return "too many maintenance connections (at most %d)" % MAX_CLIENTS

    def encode(self, response):
        return _encode(response)

    def accept_peer(self, conn):
        """SO_PEERCRED: our own uid and root are served, anyone else is told no."""
        try:
            creds = peer_credentials(conn)
        except OSError as e:
            log.warning("maintenance connection refused: its peer cannot be identified (%s)", e)
            return False
        if creds is None:
            return True
        pid, uid, _gid = creds
        own = _own_uid()
        if peer_allowed(uid, own):
            return True
        log.warning("maintenance connection from uid %d (pid %d) refused: only uid %d and "
                    "root may use %s", uid, pid, own, self.path)
        self.send(conn, {"ok": False, "error": "permission denied: uid %d may not use this "
                         "maintenance socket" % uid})
        return False

    def serve(self, conn):
        conn.settimeout(IDLE_TIMEOUT)
        for line in jsonlines.request_lines(conn, MAX_REQUEST, serving=self.serving):
            if line is None:
                response = jsonlines.too_long(MAX_REQUEST)
            else:
                request, response = self._parse(line)
                if request is not None and request.get("cmd") == "trace":
                    self._stream_trace(conn, request)
                    return
                if response is None:
                    response = self._call(request)
            if not self.send(conn, response):
                return

    @staticmethod
    def _parse(line):
        """(request, None) or (None, error response)."""
        request, error = jsonlines.parse_request(line)
        if error is not None:
            return None, error
        if not isinstance(request.get("cmd"), str):
            return None, {"ok": False, "error": 'missing "cmd" (a string), like '
                                                '{"cmd": "status"}'}
        return request, None

    def _call(self, request):
        handler = self.handler
        if handler is None:     # listening already, the firmware not yet built
            return {"ok": False, "error": "the firmware is starting; try again in a moment"}
        try:
            response = handler(request)
            if not isinstance(response, dict):
                raise TypeError("the handler returned %s, not a dict" % type(response).__name__)
        except Exception as e:   # a bug here must not take the connection or firmware down
            log.exception("maintenance request %r failed", request.get("cmd"))
            response = {"ok": False, "error": "internal error: %s: %s"
                        % (type(e).__name__, one_line(e))}
        response = dict(response)
        response.setdefault("ok", True)
        if not response["ok"]:
            response["error"] = one_line(response.get("error") or "failed")
        if "id" in request:
            response["id"] = request["id"]
        return response

    def _stream_trace(self, conn, request):
        last = request.get("last", 0)
        if type(last) is not int or last < 0:
            self.send(conn, {"ok": False, "error": '"last" must be a whole number >= 0'})
            return
        sub = _Subscriber(self.trace_queue)
        with self._lock:
            self._subscribers.add(sub)
            backlog = list(self._backlog)[-last:] if last else []
        try:
            conn.settimeout(SEND_TIMEOUT)
            ack = {"ok": True, "trace": "started"}
            if "id" in request:
                ack["id"] = request["id"]
            if not self.send(conn, ack):
                return
            for t, direction, frame in backlog:
                if not self.send(conn, {"t": round(t, 3), "dir": direction, "frame": frame,
                                         "earlier": True}):
                    return
            while self.serving():
                sub.ready.wait(0.5)
                lines, dropped = sub.take()
                if dropped and not self.send(conn, {"dropped": dropped}):
                    return
                if lines:
                    try:
                        conn.sendall(b"".join(lines))
                    except OSError:
                        return
                if self._peer_gone(conn):
                    return
        finally:
            with self._lock:
                self._subscribers.discard(sub)

    @staticmethod
    def _peer_gone(conn):
        """True once the client has closed its end (what it sends is ignored)."""
        try:
            readable, _, _ = select.select([conn], [], [], 0)
            if not readable:
                return False
            return conn.recv(4096) == b""
        except OSError:
            return True
