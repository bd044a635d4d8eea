"""The security log (OCA security whitepaper: every security event is logged;
GetLog SecurityLog uploads this file): DIR/logs/security.log, one JSON object a line

    {"timestamp": "2026-12-03T11:00:00Z", "type": "StartupOfTheDevice",
     "techInfo": "..." or null, "critical": true}

Rotated when it would grow past MAX_BYTES: security.log becomes security.log.1
(the older security.log.1 goes), so at most about twice MAX_BYTES are kept.
Each line is flushed, not fsynced: the critical events are journaled for the
CSMS anyway, and an fsync per line would cost an SD card dearly. A failing
medium is logged once per state change and never raises into the engine.

No secret ever enters it: techInfo has its URL user information masked by the
engine, and every string the firmware knows as a secret (`secrets()`: the
basic-auth password, the AuthorizationKey) is masked here again.
clear() empties it (both files); the caller then reports SecurityLogWasCleared
(critical), which becomes its first line. Nothing in the station clears it on its
own (rotation is not clearing): the technician does, with
`python -m tools.diag security-log clear` (firmware/maintenance_requests.py);
`security-log show` prints recent() through the same socket.
"""

import json
import logging
import os
import threading

from ocpp_core.redact import mask_secrets, mask_url_userinfo

log = logging.getLogger("firmware.security_log")

FOLDER = "logs"
NAME = "security.log"
MAX_BYTES = 256 * 1024


def path_in(data_dir):
    return os.path.join(data_dir, FOLDER, NAME)


class SecurityLog:
    """ocpp_core.security.SecurityLogInterface over the file."""

    def __init__(self, data_dir, max_bytes=MAX_BYTES, secrets=None):
        self.path = path_in(data_dir)
        self.max_bytes = max_bytes
        self.secrets = secrets or (lambda: ())
        self._lock = threading.Lock()      # GetLog's upload reads from another thread
        self._failing = False

    def files(self):
        """The log's files that exist, oldest first (for GetLog)."""
        return [p for p in (self.path + ".1", self.path) if os.path.exists(p)]

    def _line(self, record):
        info = record.get("techInfo")
        if info is not None:
            info = mask_secrets(mask_url_userinfo(str(info)), [s for s in self.secrets() if s])
        return json.dumps({"timestamp": record["timestamp"], "type": record["type"],
                           "techInfo": info, "critical": bool(record.get("critical"))},
                          ensure_ascii=False, separators=(", ", ": ")) + "\n"

    def append(self, record):
        data = self._line(record).encode("utf-8")
        with self._lock:
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                try:
                    size = os.path.getsize(self.path)
                except OSError:
                    size = 0
                if size and size + len(data) > self.max_bytes:
                    os.replace(self.path, self.path + ".1")
                with open(self.path, "ab") as f:
                    f.write(data)
                    f.flush()
            except OSError as e:
                if not self._failing:
                    log.error("security log not written: %s", e)
                self._failing = True
                return
            if self._failing:
                log.info("security log written again")
            self._failing = False

    def clear(self):
        """Empty the log (a technician's act): True when it was cleared. The
        caller reports SecurityLogWasCleared (it becomes the first line)."""
        with self._lock:
            try:
                for p in (self.path + ".1", self.path):
                    if os.path.exists(p):
                        os.remove(p)
            except OSError as e:
                log.error("security log not cleared: %s", e)
                return False
        return True

    def recent(self, limit):
        """(the newest `limit` records oldest first, how many there are in all),
        every techInfo masked again (what a tool may print)."""
        records = self.read()
        secrets = [s for s in self.secrets() if s]
        shown = []
        for r in records[-limit:] if limit else []:
            info = r.get("techInfo")
            if info is not None:
                info = mask_secrets(mask_url_userinfo(str(info)), secrets)
            shown.append({"timestamp": r.get("timestamp"), "type": r.get("type"),
                          "techInfo": info, "critical": bool(r.get("critical"))})
        return shown, len(records)

    def read(self):
        """Every record, oldest first (diagnostics, tests)."""
        out = []
        with self._lock:
            for p in self.files():
                with open(p, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        try:
                            record = json.loads(line)
                        except ValueError:
                            continue        # a line cut by a power loss
                        if isinstance(record, dict):
                            out.append(record)
        return out
