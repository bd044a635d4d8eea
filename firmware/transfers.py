"""File transfers for Firmware Management: downloads (fetch, download) and
uploads (send, for GetDiagnostics and GetLog: firmware/diagnostics.py) on a worker
thread of their own, so that a slow, stalled or dead server never delays
the main loop. Results reach the main loop as events (firmware/events.py):

    Event("transfer", None, TransferResult(op, ok, detail, attempts))

    op        "download" | "install" | "activate" (this module), "signature"
              (firmware/firmware_signature.py), "diagnostics" | "log" (uploads,
              firmware/diagnostics.py: its own detail dicts, ok None for an
              attempt that begins)
    ok        True when it worked
    detail    on success the file written (download) or the manifest (install);
              on failure one line saying why (no password in it)
    attempts  how many attempts were made

Locations (UpdateFirmware.req location, a URI):
    http://[user:password@]host[:port]/path   urllib, GET (HTTP Basic with a user)
    https://host[:port]/path      urllib, the server checked against the CA bundle
                                  ([csms] ca_bundle) or the system's CAs without one
    ftp://[user[:password]@]host[:port]/path   ftplib, binary, passive mode;
                                  anonymous without a user (percent-decoded)

Every attempt has a socket timeout (a server that stalls mid-transfer fails the
attempt), is written to FILE.part and renamed to FILE only once complete (a
Content-Length that is not reached fails it: a server that closes early). Between
attempts the worker waits retry_interval seconds, and stop() ends that wait.
"""

import base64
import ftplib
import http.client
import logging
import os
import queue
import shutil
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import namedtuple

from firmware.events import TRANSFER, Event
from firmware.releases import ReleaseError, Releases
from ocpp_core.redact import mask_url_userinfo

log = logging.getLogger("firmware.transfers")

TIMEOUT = 30.0              # s; a socket silent this long fails the attempt
MAX_BYTES = 256 * 1024 * 1024   # an image larger than this is refused
CHUNK = 64 * 1024
SCHEMES = ("http", "https", "ftp")

TransferResult = namedtuple("TransferResult", "op ok detail attempts")


class TransferError(Exception):
    """One attempt failed; str(e) is one line, without credentials."""


def _one_line(e):
    text = str(e) or type(e).__name__
    return mask_url_userinfo(text.splitlines()[0])


# --- one attempt ----------------------------------------------------------------------------
def fetch(location, dest, timeout=TIMEOUT, ca_bundle=None, max_bytes=MAX_BYTES):
    """Download location to dest (through dest.part). -> bytes written; raises
    TransferError."""
    parts = urllib.parse.urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname:
        raise TransferError("unsupported location %s (http, https or ftp)"
                            % mask_url_userinfo(location))
    tmp = dest + ".part"
    try:
        with open(tmp, "wb") as out:
            if scheme == "ftp":
                size = _fetch_ftp(parts, out, timeout, max_bytes)
            else:
                size = _fetch_http(location, scheme, out, timeout, ca_bundle, max_bytes)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
        return size
    except TransferError:
        _remove(tmp)
        raise
    except (OSError, EOFError, ftplib.Error, ValueError) as e:
        _remove(tmp)
        raise TransferError(_describe(e))


def _describe(e):
    if isinstance(e, urllib.error.HTTPError):
        return "HTTP %d %s" % (e.code, e.reason)
    if isinstance(e, urllib.error.URLError):
        return _one_line(e.reason if isinstance(e.reason, str) else e.reason or e)
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out (no data for the timeout)"
    if isinstance(e, ftplib.Error):
        return "FTP %s" % _one_line(e)
    return _one_line(e)


def _copy(read, out, max_bytes, expected=None):
    size = 0
    while True:
        chunk = read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise TransferError("larger than %d bytes" % max_bytes)
        out.write(chunk)
    if expected is not None and size != expected:
        raise TransferError("connection closed after %d of %d bytes" % (size, expected))
    return size


def _fetch_http(location, scheme, out, timeout, ca_bundle, max_bytes):
    context = ssl.create_default_context(cafile=ca_bundle) if scheme == "https" else None
    location, headers = _basic_auth(location)     # user:password@ in the URL: HTTP Basic
    request = urllib.request.Request(location, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        if expected is not None and expected > max_bytes:
            raise TransferError("larger than %d bytes" % max_bytes)
        try:
            return _copy(response.read, out, max_bytes, expected)
        except http.client.IncompleteRead as e:
            raise TransferError("connection closed after %d of %s bytes"
                                % (len(e.partial), expected))


def _fetch_ftp(parts, out, timeout, max_bytes):
    path = urllib.parse.unquote(parts.path)
    if not path or path.endswith("/"):
        raise TransferError("ftp location names no file")
    ftp = _ftp_login(parts, timeout)
    try:
        size = [0]

        def write(chunk):
            size[0] += len(chunk)
            if size[0] > max_bytes:
                raise TransferError("larger than %d bytes" % max_bytes)
            out.write(chunk)
        # the path from the URL, as the server names it (absolute when it starts with /)
        ftp.retrbinary("RETR " + path, write, blocksize=CHUNK)
        _quit(ftp)
        return size[0]
    finally:
        ftp.close()


def send(location, source, name, timeout=TIMEOUT, ca_bundle=None):
    """Upload the file source as `name` (GetDiagnostics, GetLog): ftp:// STOR
    (passive, into the URL's directory), http(s):// PUT (POST multipart/form-data
    when the server answers PUT with 405) to the URL + name when the URL ends
    with "/", else to the URL itself. -> bytes sent; raises TransferError."""
    parts = urllib.parse.urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname:
        raise TransferError("unsupported location %s (http, https or ftp)"
                            % mask_url_userinfo(location))
    try:
        size = os.path.getsize(source)
        with open(source, "rb") as f:
            if scheme == "ftp":
                _send_ftp(parts, f, name, timeout)
            else:
                _send_http(location, scheme, f, size, name, timeout, ca_bundle)
        return size
    except TransferError:
        raise
    except (OSError, EOFError, ftplib.Error, ValueError) as e:
        raise TransferError(_describe(e))


def _ftp_login(parts, timeout):
    user = urllib.parse.unquote(parts.username) if parts.username else "anonymous"
    password = urllib.parse.unquote(parts.password) if parts.password else \
        ("anonymous@" if user == "anonymous" else "")
    ftp = ftplib.FTP(timeout=timeout)
    try:
        ftp.connect(parts.hostname, parts.port or 21)
        ftp.login(user, password)
    except BaseException:
        ftp.close()
        raise
    ftp.set_pasv(True)
    return ftp


def _quit(ftp):
    """A polite QUIT; the transfer is complete whatever the server says to it."""
    try:
        ftp.quit()
    except (OSError, EOFError, ftplib.Error):
        pass


def _send_ftp(parts, f, name, timeout):
    folder = urllib.parse.unquote(parts.path)
    ftp = _ftp_login(parts, timeout)
    try:
        if folder not in ("", "/"):
            ftp.cwd(folder)
        ftp.storbinary("STOR " + name, f, blocksize=CHUNK)
        _quit(ftp)
    finally:
        ftp.close()


def _send_http(location, scheme, f, size, name, timeout, ca_bundle):
    """PUT the file; a server that answers 405 Method Not Allowed gets it again
    as an HTML-form upload (POST multipart/form-data, field "file"). The CSMS
    says nothing but a URL (GetDiagnostics.req location), so the station cannot
    know beforehand which of the two the server takes: PUT first (the plain
    HTTP upload, RFC 9110), POST as the web servers' file-upload form does."""
    context = ssl.create_default_context(cafile=ca_bundle) if scheme == "https" else None
    location, headers = _basic_auth(location)
    if location.endswith("/"):
        location += urllib.parse.quote(name)
    put = dict(headers, **{"Content-Length": str(size),
                           "Content-Type": "application/octet-stream"})
    request = urllib.request.Request(location, data=f, headers=put, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            response.read()
        return
    except urllib.error.HTTPError as e:
        e.close()
        if e.code != 405:
            raise
    log.info("%s refuses PUT (405): uploading with POST multipart/form-data",
             mask_url_userinfo(location))
    f.seek(0)
    _post_multipart(location, headers, f, size, name, timeout, context)


def _post_multipart(location, headers, f, size, name, timeout, context):
    boundary = "pi-ocpp-" + base64.b16encode(os.urandom(12)).decode().lower()
    quoted = name.replace("\\", "_").replace('"', "_")
    head = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" % (boundary, quoted)).encode()
    tail = ("\r\n--%s--\r\n" % boundary).encode()

    def body():         # streamed: the bundle is not read into memory
        yield head
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            yield chunk
        yield tail
    post = dict(headers, **{"Content-Length": str(len(head) + size + len(tail)),
                            "Content-Type": "multipart/form-data; boundary=" + boundary})
    request = urllib.request.Request(location, data=body(), headers=post, method="POST")
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        response.read()


def _basic_auth(location):
    """(location without user:password@, headers with HTTP Basic for them)."""
    parts = urllib.parse.urlsplit(location)
    headers = {"User-Agent": "pi-ocpp-charger"}
    if parts.username is not None:
        netloc = parts.hostname + (":%d" % parts.port if parts.port else "")
        location = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        pair = "%s:%s" % (urllib.parse.unquote(parts.username),
                          urllib.parse.unquote(parts.password or ""))
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return location, headers


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


# --- with retries, on a worker ---------------------------------------------------------------
def download(location, dest, attempts, interval, stopped, **kw):
    """Up to `attempts` attempts, `interval` s apart (stopped: a threading.Event
    that ends the wait). -> TransferResult("download", ...)."""
    attempts = max(1, int(attempts))
    reason = None
    for n in range(1, attempts + 1):
        if n > 1 and stopped.wait(max(0.0, interval)):
            return TransferResult("download", False, "stopped", n - 1)
        try:
            size = fetch(location, dest, **kw)
            log.info("downloaded %s: %d bytes (attempt %d)", mask_url_userinfo(location),
                     size, n)
            return TransferResult("download", True, dest, n)
        except TransferError as e:
            reason = str(e)
            log.warning("download of %s failed (attempt %d of %d): %s",
                        mask_url_userinfo(location), n, attempts, reason)
    return TransferResult("download", False, reason, attempts)


class TransferWorker:
    """One thread that runs transfer jobs in order; each job's TransferResult is
    put on the main loop's queue as a "transfer" event."""

    def __init__(self, events):
        self.events = events
        self.jobs = queue.Queue()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="transfers", daemon=True)

    def start(self):
        self.thread.start()

    def submit(self, job):
        """job(stopped) -> TransferResult, run on the worker thread."""
        self.jobs.put(job)

    def stop(self):
        self.stopped.set()
        self.jobs.put(None)

    def join(self, timeout=None):
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self):
        while not self.stopped.is_set():
            job = self.jobs.get()
            if job is None:
                break
            try:
                result = job(self.stopped)
            except Exception as e:      # a bug in a job must not end the worker
                log.exception("transfer job failed")
                result = TransferResult("unknown", False, _one_line(e), 0)
            self.events.put(Event(TRANSFER, None, result))


class FirmwareTransfers:
    """What the engine's FirmwareManagement asks of the firmware
    (ocpp_core.firmware_management.TransferInterface): each call returns at once,
    the result comes back as a "transfer" event that the main loop hands to
    cp.firmware.transfer_done(result).

    install() verifies the downloaded image and unpacks it beside the running
    release (releases/<version>/, firmware/releases.py); activate(version) puts
    it on trial, switches releases/current to it and asks the main loop for a
    restart (kind "firmware"), after which the process execs into it."""

    def __init__(self, worker, data_dir, ca_bundle=None, timeout=TIMEOUT, architecture=None,
                 releases_dir=None, restart=None):
        self.worker = worker
        self.dir = os.path.join(data_dir, "firmware")
        self.image = os.path.join(self.dir, "update.img")
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.architecture = architecture
        self.releases = Releases(releases_dir or os.path.join(data_dir, "releases"))
        self.restart = restart          # fn(kind), any thread: the main loop's restart

    def download(self, location, attempts, interval):
        self.worker.submit(lambda stopped: self._download(location, attempts, interval,
                                                          stopped))

    def _download(self, location, attempts, interval, stopped):
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as e:        # a failing data dir: the download fails, the loop goes on
            return TransferResult("download", False, _one_line(e), 0)
        return download(location, self.image, attempts, interval, stopped,
                        timeout=self.timeout, ca_bundle=self.ca_bundle)

    def install(self):
        """Verify the downloaded image and stage it as releases/<version>/ ->
        op "install" with the manifest; a refused image stages nothing."""
        self.worker.submit(self._stage)

    def _stage(self, stopped):
        try:
            manifest = self.releases.stage(self.image, architecture=self.architecture)
        except ReleaseError as e:
            return TransferResult("install", False, str(e), 1)
        _remove(self.image)         # unpacked: the SD card need not hold it twice
        log.info("firmware %s staged in %s", manifest["version"],
                 self.releases.path(manifest["version"]))
        return TransferResult("install", True, manifest, 1)

    def activate(self, version):
        """Switch releases/current to the staged `version` (on trial) and restart."""
        self.worker.submit(lambda stopped: self._activate(version))

    def _activate(self, version):
        try:
            self.releases.activate(version)
        except ReleaseError as e:
            return TransferResult("activate", False, str(e), 1)
        log.info("firmware %s is current; restarting into it", version)
        if self.restart is not None:
            self.restart("firmware")
        return TransferResult("activate", True, version, 1)

    def discard(self):
        """Remove what a finished or abandoned update left in the data dir."""
        shutil.rmtree(self.dir, ignore_errors=True)
