"""The client of the firmware's maintenance socket (firmware/maintenance.py).

Which socket (first match):
    --socket PATH
    --data-dir DIR, or [station] data_dir of --config FILE -> DIR/run/maintenance.sock
    $RUNTIME_DIRECTORY/maintenance.sock (inside the service's environment)
    /run/pi-ocpp/maintenance.sock (systemd, RuntimeDirectory=pi-ocpp), then
    /var/lib/pi-ocpp/run/maintenance.sock: the first that exists

Errors are DiagError with one line and the exit status to use:
    FirmwareNotRunning (2)  no socket there, or nobody listens on it
    NoAccess (2)            the socket is not ours to use (permissions)
    NoAnswer (1)            the firmware took longer than the timeout
    Refused (1)             the firmware answered {"ok": false, "error": ...}

    with connect(args) as c:
        status = c.call("status")                  # a dict; raises Refused if not ok
        for item in c.stream("trace", last=10):    # dicts until the firmware closes
            ...
"""

import configparser
import errno
import json
import os
import socket
import time

from firmware.maintenance import (DEFAULT_DATA_DIR, SOCKET_NAME, SYSTEMD_RUNTIME_DIR,
                                  socket_paths)

DEFAULT_TIMEOUT = 10.0
DEFAULT_SOCKET = os.path.join(SYSTEMD_RUNTIME_DIR, SOCKET_NAME)   # under systemd
MAX_RESPONSE = 16 * 1024 * 1024


class DiagError(Exception):
    """One line for the technician; exit_code for the process."""
    exit_code = 1


class FirmwareNotRunning(DiagError):
    exit_code = 2


class NoAccess(DiagError):
    exit_code = 2


class NoAnswer(DiagError):
    exit_code = 1


class Refused(DiagError):
    exit_code = 1

    def __init__(self, text, response=None):
        DiagError.__init__(self, text)
        self.response = response or {}


def _data_dir_of(config_file):
    ini = configparser.ConfigParser(interpolation=None)
    try:
        with open(config_file, encoding="utf-8") as f:
            ini.read_file(f)
    except (OSError, configparser.Error, UnicodeDecodeError) as e:
        raise DiagError("cannot read the station config %s: %s"
                        % (config_file, " ".join(str(e).split())))
    value = ini.get("station", "data_dir", fallback="").strip()
    return value or None


def candidate_paths(args):
    """The socket paths to try, in order."""
    explicit = getattr(args, "socket", None)
    if explicit:
        return [explicit]
    data_dir = getattr(args, "data_dir", None)
    if not data_dir and getattr(args, "config", None):
        data_dir = _data_dir_of(args.config)
    if data_dir:
        return socket_paths(data_dir, environ={})
    paths = []
    runtime = (os.environ.get("RUNTIME_DIRECTORY") or "").split(":")[0]
    if runtime:
        paths.append(os.path.join(runtime, SOCKET_NAME))
    paths.append(os.path.join(SYSTEMD_RUNTIME_DIR, SOCKET_NAME))
    paths.extend(socket_paths(DEFAULT_DATA_DIR, environ={}))
    return paths


def resolve(args):
    paths = candidate_paths(args)
    found = []
    for path in paths:
        try:
            found.append((os.stat(path).st_mtime, -len(found), path))
        except OSError:
            pass
    if found:     # a stale socket left in a data dir that turned read-only is older
        return max(found)[2]
    return paths[0]


class MaintenanceClient:
    def __init__(self, path, timeout=DEFAULT_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self._sock = None
        self._buf = b""

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as e:
            s.close()
            raise self._connect_error(e)
        self._sock = s
        return self

    def _connect_error(self, e):
        code = getattr(e, "errno", None)
        if code in (errno.ENOENT, errno.ENOTDIR):
            return FirmwareNotRunning("the firmware is not running (no maintenance socket at %s)"
                                      % self.path)
        if code == errno.ECONNREFUSED:
            return FirmwareNotRunning("the firmware is not running (nothing listens on the "
                                      "maintenance socket at %s)" % self.path)
        if code in (errno.EACCES, errno.EPERM):
            return NoAccess("no permission to use the maintenance socket at %s: run as the "
                            "firmware's user or with sudo" % self.path)
        if isinstance(e, socket.timeout):
            return NoAnswer("the firmware did not accept the connection within %g s "
                            "(maintenance socket %s)" % (self.timeout, self.path))
        return DiagError("cannot connect to the maintenance socket at %s: %s"
                         % (self.path, e.strerror or e))

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- lines -----------------------------------------------------------------------------
    def _send(self, obj):
        try:
            self._sock.sendall(json.dumps(obj).encode("utf-8") + b"\n")
        except socket.timeout:
            raise NoAnswer("the firmware did not take the request within %g s" % self.timeout)
        except OSError as e:
            raise DiagError("the maintenance connection broke: %s" % (e.strerror or e))

    def _read_line(self, deadline):
        """The next response line as a dict; None when the firmware closed."""
        while b"\n" not in self._buf:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise socket.timeout()
            self._sock.settimeout(left)
            data = self._sock.recv(65536)
            if not data:
                return None
            self._buf += data
            if len(self._buf) > MAX_RESPONSE:
                raise DiagError("the firmware's answer is too long")
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            obj = json.loads(line.decode("utf-8"))
        except ValueError:
            raise DiagError("the firmware answered something that is not JSON")
        if not isinstance(obj, dict):
            raise DiagError("the firmware answered something that is not a JSON object")
        return obj

    def request(self, cmd, wait=None, **fields):
        """One request; the response dict, whatever its "ok". wait: seconds for
        the answer (default: the client's timeout); every other keyword is a
        field of the request (a device request's own "timeout" among them)."""
        if self._sock is None:
            self.connect()
        timeout = self.timeout if wait is None else wait
        fields["cmd"] = cmd
        self._send(fields)
        try:
            response = self._read_line(time.monotonic() + timeout)
        except socket.timeout:
            raise NoAnswer("the firmware did not answer %r within %g s (maintenance socket %s)"
                           % (cmd, timeout, self.path))
        except OSError as e:
            raise DiagError("the maintenance connection broke: %s" % (e.strerror or e))
        if response is None:
            raise DiagError("the firmware closed the maintenance connection (is it stopping?)")
        return response

    def call(self, cmd, wait=None, **fields):
        """One request; the response when ok, else Refused with the firmware's error."""
        response = self.request(cmd, wait, **fields)
        if not response.get("ok"):
            raise Refused(response.get("error") or "the firmware refused %r" % cmd, response)
        return response

    def stream(self, cmd, poll=0.5, **fields):
        """Start a streaming request ("trace"); yields each line after the
        acknowledgement, and None every `poll` s of silence (so a caller can
        stop on time). Ends when the firmware closes the connection."""
        ack = self.call(cmd, **fields)
        del ack
        while True:
            try:
                item = self._read_line(time.monotonic() + poll)
            except socket.timeout:
                yield None
                continue
            except OSError as e:
                raise DiagError("the maintenance connection broke: %s" % (e.strerror or e))
            if item is None:
                return
            yield item


def connect(args, timeout=DEFAULT_TIMEOUT):
    """A connected MaintenanceClient for the command-line arguments."""
    return MaintenanceClient(resolve(args), timeout).connect()
