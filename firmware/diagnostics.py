"""Uploads for GetDiagnostics and GetLog: the firmware side of the engine's
UploadInterface (ocpp_core/firmware_management/diagnostics.py).

upload() runs on the main loop's thread and returns at once: it takes a
snapshot of what only the main loop may read (the published state, the OCPP
configuration, the journal), then the TransferWorker (firmware/transfers.py)
builds the file and uploads it, attempt after attempt, and posts

    Event("transfer", None, TransferResult(op, ok, detail, attempts))

with op "diagnostics" or "log" and detail {"tag", "reason", "failure"}, which
the main loop hands to ocpp_core...uploads_done(cp, ...).

What is uploaded:
  DiagnosticsLog   the bundle of firmware/diag_bundle.py (as `tools.diag bundle`):
                   versions, station.ini (redacted), status, OCPP configuration,
                   journal, the firmware's log lines and OCPP frames between start
                   and stop (RecentLog: the last MAX_RECORDS lines this run
                   logged, each with its time), journalctl for the same range
                   when the station runs under systemd.
  SecurityLog      the lines of DIR/logs/security.log.1 and security.log (JSON
                   lines with an RFC 3339 "timestamp") between start and stop;
                   a missing file is an empty log. A line without a readable
                   timestamp is kept only when no range is asked for.
Secrets: the basic-auth password and the AuthorizationKey are scrubbed from
every file of the bundle and from the security log's lines, as are the
station.ini secrets, URL credentials and PEM private keys.

A failure is classed for LogStatusNotification from the last attempt's reason
(classify()). A cancelled upload (a newer request) stops before its next
attempt; one that is mid-transfer ends with its socket timeout at the latest.

Each attempt's start is posted too (TransferResult with ok None, detail
{"tag", "attempt"}): the engine persists it, so that after a restart it knows
how many attempts remain. An upload stopped by the firmware's own stop (Reset,
SIGTERM, a firmware update's restart) ends with detail "interrupted": the
engine keeps it and resumes it after the next boot.
"""

import collections
import json
import logging
import os
import re
import threading
import time

from firmware import maintenance_handlers, maintenance_requests
from firmware.diag_bundle import (UNIT, Bundle, add_station_ini, in_range, journal_logs,
                                  scrub, versions)
from firmware.events import TRANSFER, Event
from firmware.transfers import TIMEOUT, TransferError, TransferResult, send
from ocpp_core.firmware_management.diagnostics import UploadInterface, uploads_of
from ocpp_core.redact import mask_url_userinfo
from ocpp_core.security.get_log import logs_of
from ocpp_core.timestamps import parse_rfc3339

log = logging.getLogger("firmware.diagnostics")

MAX_RECORDS = 20000         # log lines kept in memory for the bundle
MAX_CHARS = 2 * 1024 * 1024     # and at most this many characters of them (RSS on a Pi)
MAX_LINE = 2000             # characters kept of one log line
CANCEL_POLL = 0.1           # s; how often a wait between attempts looks at its cancel flag
SECURITY_LOG = os.path.join("logs", "security.log")

_FAILURES = (
    (re.compile(r"^HTTP (401|403|407)\b|^FTP (530|550|553)\b"), "PermissionDenied"),
    (re.compile(r"^HTTP (405|501)\b|^FTP (502|504)\b"), "NotSupportedOperation"),
    (re.compile(r"^HTTP 400\b|^unsupported location|^FTP 50[01]\b"), "BadMessage"),
)


def classify(reason):
    """The LogStatusNotification status for a failed upload's reason."""
    for pattern, status in _FAILURES:
        if pattern.search(reason or ""):
            return status
    return "UploadFailure"


class RecentLog(logging.Handler):
    """The last MAX_RECORDS log lines of this run (MAX_CHARS at most), with
    their times (any thread)."""

    _installed = None

    def __init__(self, limit=MAX_RECORDS, max_chars=MAX_CHARS):
        logging.Handler.__init__(self, logging.DEBUG)
        self.lines = collections.deque()
        self.limit, self.max_chars, self.chars = limit, max_chars, 0
        self.setFormatter(logging.Formatter("%(levelname)-7s %(name)s: %(message)s"))

    @classmethod
    def install(cls):
        """Once per process, on the root logger (after logging_setup.setup)."""
        if cls._installed is None:
            cls._installed = cls()
        root = logging.getLogger()
        if cls._installed not in root.handlers:
            root.addHandler(cls._installed)
        return cls._installed

    def emit(self, record):
        try:
            text = self.format(record)[:MAX_LINE]
        except Exception:
            return
        with self.lock:         # Handler.handle holds it too; emit may be called alone
            self.lines.append((record.created, record.name, text))
            self.chars += len(text)
            while len(self.lines) > self.limit or self.chars > self.max_chars:
                self.chars -= len(self.lines.popleft()[2])

    def stamped(self, trace):
        """[(epoch s, "time line")] of the OCPP trace (trace True) or the rest."""
        out = []
        with self.lock:
            lines = list(self.lines)
        for t, name, text in lines:
            if (name == "ocpp.trace") == trace:
                out.append((t, "%s.%03dZ %s" % (time.strftime("%Y-%m-%dT%H:%M:%S",
                                                               time.gmtime(t)),
                                                int(t * 1000) % 1000, text)))
        return out


def security_lines(data_dir, start=None, stop=None):
    """The security log's lines (oldest file first) within [start, stop]."""
    lines = []
    base = os.path.join(data_dir, SECURITY_LOG)
    for path in (base + ".1", base):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    line = line.rstrip("\n")
                    if line.strip():
                        lines.append(line)
        except FileNotFoundError:
            continue
    if start is None and stop is None:
        return lines
    stamped = []
    for line in lines:
        try:
            t = parse_rfc3339(json.loads(line)["timestamp"])
        except (ValueError, KeyError, TypeError):
            continue
        stamped.append((t, line))
    return in_range(stamped, start, stop)


class DiagnosticsUploader(UploadInterface):
    """fw.uploads: what the engine's DiagnosticsUploads and LogUploads ask."""

    def __init__(self, worker, data_dir, station_id, snapshot=None, secrets=None,
                 config_file=None, ca_bundle=None, timeout=TIMEOUT, recent=None, unit=UNIT):
        self.worker = worker
        self.data_dir = data_dir
        self.dir = os.path.join(data_dir, "diagnostics")
        self.station_id = station_id
        self.snapshot = snapshot or (lambda: {})     # main thread: {name: JSON-able}
        self.secrets = secrets or (lambda: [])        # main thread: [secret strings]
        self.config_file = config_file
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.recent = recent
        self.unit = unit
        self._cancel = {}           # (op, tag) -> threading.Event

    # --- UploadInterface (main thread) ------------------------------------------------------
    def upload(self, op, request):
        request = dict(request)
        files = self.snapshot() if request["kind"] == "DiagnosticsLog" else None
        secrets = list(self.secrets())
        cancelled = self._cancel[(op, request["tag"])] = threading.Event()
        self.worker.submit(lambda stopped: self._job(op, request, files, secrets, cancelled,
                                                     stopped))

    def cancel(self, op, tag):
        flag = self._cancel.get((op, tag))
        if flag is not None:
            flag.set()

    # --- on the worker ---------------------------------------------------------------------
    def _job(self, op, request, files, secrets, cancelled, stopped):
        tag = request["tag"]
        try:
            if cancelled.is_set():
                return TransferResult(op, False, {"tag": tag, "reason": "cancelled"}, 0)
            try:
                os.makedirs(self.dir, exist_ok=True)
                path = os.path.join(self.dir, request["name"])
                self._make(path, request, files, secrets)
            except OSError as e:        # a full or failing data dir: the upload fails
                return TransferResult(op, False, {"tag": tag, "failure": "UploadFailure",
                                                  "reason": "cannot make the file: %s"
                                                  % (e.strerror or e)}, 0)
            try:
                return self._send(op, request, path, cancelled, stopped)
            finally:
                _remove(path)
        finally:
            self._cancel.pop((op, tag), None)

    def _make(self, path, request, files, secrets):
        start, stop = request.get("start"), request.get("stop")
        if request["kind"] == "SecurityLog":
            lines = security_lines(self.data_dir, start, stop)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(scrub("".join(line + "\n" for line in lines), secrets))
            return
        b = Bundle()
        b.secrets.extend(secrets)
        b.add_json("versions.json", versions())
        for name, obj in sorted((files or {}).items()):
            b.add_json(name, obj)
        if self.config_file:
            add_station_ini(b, self.config_file)
        if self.recent is not None:
            b.files["firmware.log"] = "\n".join(in_range(self.recent.stamped(False),
                                                         start, stop)) + "\n"
            b.files["ocpp-trace.txt"] = "\n".join(in_range(self.recent.stamped(True),
                                                           start, stop)) + "\n"
        text, why = journal_logs(self.unit, "@%d" % int(start) if start is not None
                                 else "24 hours ago",
                                 "@%d" % (int(stop) + 1) if stop is not None else None)
        if text is not None:
            b.files["logs.txt"] = text
        else:
            b.skipped.append(("logs.txt", why))
        top = request["name"][:-len(".tar.gz")] if request["name"].endswith(".tar.gz") \
            else request["name"]
        b.write(path, top, made_by="the firmware for the CSMS's %s"
                % ("GetLog" if "request_id" in request else "GetDiagnostics"))

    def _send(self, op, request, path, cancelled, stopped):
        tag, attempts = request["tag"], max(1, int(request["attempts"]))
        where = mask_url_userinfo(request["location"])
        reason = None
        for n in range(1, attempts + 1):
            if n > 1 and self._wait(max(0.0, request["interval"]), cancelled, stopped):
                detail = {"tag": tag, "reason": "cancelled"}
                if stopped.is_set() and not cancelled.is_set():
                    detail.update(reason="the firmware stops", interrupted=True)
                return TransferResult(op, False, detail, n - 1)
            self.worker.events.put(Event(TRANSFER, None, TransferResult(
                op, None, {"tag": tag, "attempt": n}, n)))
            try:
                size = send(request["location"], path, request["name"], timeout=self.timeout,
                            ca_bundle=self.ca_bundle)
                log.info("uploaded %s to %s: %d bytes (attempt %d)", request["name"], where,
                         size, n)
                return TransferResult(op, True, {"tag": tag}, n)
            except TransferError as e:
                reason = str(e)
                log.warning("upload of %s to %s failed (attempt %d of %d): %s",
                            request["name"], where, n, attempts, reason)
        return TransferResult(op, False, {"tag": tag, "reason": reason,
                                          "failure": classify(reason)}, attempts)

    @staticmethod
    def _wait(seconds, cancelled, stopped):
        """True when cancelled or stopped before `seconds` have passed."""
        deadline = time.monotonic() + seconds
        while not (cancelled.is_set() or stopped.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            stopped.wait(min(left, CANCEL_POLL))
        return True


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


# --- wiring (main loop's thread) -------------------------------------------------------------
def attach(fw):
    """The uploader of the firmware fw (firmware/main_loop.py), attached to the
    engine's DiagnosticsUploads and LogUploads; its results arrive as
    "transfer" events with op "diagnostics" or "log"."""
    cfg = fw.cfg
    uploads = DiagnosticsUploader(
        fw.transfer_worker, cfg.data_dir, cfg.charge_point_id,
        snapshot=lambda: snapshot(fw), secrets=lambda: secrets(fw), config_file=cfg.source,
        ca_bundle=cfg.ca_bundle, recent=RecentLog.install())
    uploads_of(fw.cp).attach(uploads)
    logs_of(fw.cp).attach(uploads)
    return uploads


def snapshot(fw):
    """What only the main loop may read, for the bundle (as tools.diag gets it)."""
    files = {"status.json": maintenance_handlers.current_state(fw)}
    for name, ask, request in (
            ("ocpp-configuration.json", maintenance_requests.config_get, {}),
            ("journal.json", maintenance_requests.journal, {"limit": 1000})):
        answer = ask(fw, request)
        answer.pop("ok", None)
        files[name] = answer
    return files


def secrets(fw):
    """The basic-auth password (flag or INI) and the AuthorizationKey in effect."""
    key = fw.cp.config.value_text("AuthorizationKey")
    return [s for s in (fw.cfg.password, key) if s]
