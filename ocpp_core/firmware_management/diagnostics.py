"""GetDiagnostics and its DiagnosticsStatusNotifications (OCPP 1.6 Edition 2,
sections 4.4 and 5.9): the DiagnosticsUploads service and the GetDiagnostics
operation. The upload slot (UploadSlot) is shared with GetLog
(ocpp_core/security/get_log.py).

The engine builds and uploads nothing itself: it asks the firmware through an
UploadInterface whose calls return at once; the firmware reports back with
uploads_done(cp, op, ok, detail) from the main loop's thread.

Readings chosen where the specification leaves room:
- 5.9 GetDiagnostics.conf fileName "the name of the file with diagnostic
  information that will be uploaded. This field is not present when no
  diagnostic information is available": the firmware always has something to
  upload (versions, state, logs), so fileName is present whenever a firmware
  upload is attached; the engine alone (no UploadInterface) answers {} and
  sends nothing. So does a station whose registration is not Accepted (a
  GetDiagnostics while Pending): this project reads 4.2 as "nothing but
  BootNotification is sent before Accepted" (as TriggerMessage and
  UpdateFirmware do), and the status notifications could not be sent.
  The name: "<chargePointId>-diagnostics-<UTC yyyymmddThhmmssZ>.tar.gz".
- retries "how many times Charge Point must try to upload the diagnostics
  before giving up": the number of attempts, at least one (as UpdateFirmware:
  retries 0 = one attempt); absent: DEFAULT_ATTEMPTS. retryInterval absent:
  DEFAULT_RETRY_INTERVAL s.
- startTime / stopTime: the range of the log lines in the bundle (lines that
  carry a timestamp); the state snapshot is always the present one.
- 4.4: Uploading when the upload starts (the bundle is made as its first
  step), then Uploaded or UploadFailed. Idle only in a triggered notification
  (4.4 "SHALL only send the status Idle after receipt of a TriggerMessage for a
  Diagnostics Status Notification, when it is not busy uploading
  diagnostics"): a TriggerMessage reports Uploading while an upload runs,
  otherwise Idle.
- The specification says nothing of a GetDiagnostics that arrives while an
  upload runs: the newer request wins (as GetLog's AcceptedCanceled in the
  security whitepaper); the running one is cancelled and no notification is
  sent for it, the new one sends its own Uploading.
- An upload interrupted by a restart (power cut, kill -9, Reset, the restart
  of a firmware update) is persisted in the store ("diagnostics_upload", for
  GetLog "log_upload": the request and "tried", the attempts begun) and settled
  after the next BootNotification Accepted, once (resume_uploads()): 4.4 / 5.9
  say nothing of a restart, only that the Charge Point "must try to upload
  the diagnostics" `retries` times "before giving up". An operator who asked
  for diagnostics wants the file (a restart is often why they are wanted), and
  a fresh bundle of the new run still holds the state, configuration and
  journal (and journalctl's lines of the previous run): so the upload is
  resumed, under the file name the .conf announced, with the attempts that
  remain (the interrupted one counts as made), and Uploading is sent again
  (as a firmware download interrupted by a restart sends Downloading again:
  the CSMS, having seen the BootNotification, learns the upload lives on).
  With no attempt left, or a location this run cannot use, UploadFailed (GetLog:
  UploadFailure with its requestId). Nothing is sent while Pending or
  Rejected (4.2): it waits for Accepted. The record is cleared before the
  final notification, so no final status is sent twice.
"""

from ocpp_core.log import get_logger
from ocpp_core.rpc import Reply
from ocpp_core.timestamps import format_utc, parse_rfc3339

log = get_logger("ocpp.diagnostics")

DEFAULT_ATTEMPTS = 3
DEFAULT_RETRY_INTERVAL = 60         # s

UPLOADING = "Uploading"
UPLOADED = "Uploaded"
UPLOAD_FAILED = "UploadFailed"
IDLE = "Idle"

OP = "diagnostics"          # the op of its TransferResults (firmware/diagnostics.py)


class UploadInterface:
    """What the engine asks of the firmware for GetDiagnostics and GetLog. Every
    method returns at once; each result comes back through
    uploads_done(cp, op, ok, detail) on the engine's thread, where detail is a
    dict: "tag" (the request's), and on failure "reason" (one line) and
    "failure" (the whitepaper's LogStatusNotification status that fits:
    PermissionDenied, NotSupportedOperation, BadMessage or UploadFailure)."""

    station_id = "station"                  # names the uploaded files
    schemes = ("ftp", "http", "https")      # the locations it can upload to

    def upload(self, op, request):
        """request: {"tag", "kind" ("DiagnosticsLog" | "SecurityLog"), "location",
        "name", "start", "stop" (epoch s or None), "attempts", "interval"}."""
        raise NotImplementedError

    def cancel(self, op, tag):
        """Abandon the upload `tag` of `op` (its result, if any, is ignored)."""
        raise NotImplementedError


def file_stamp(epoch):
    """UTC yyyymmddThhmmssZ, for file names."""
    text = format_utc(int(epoch))
    return text[0:4] + text[5:7] + text[8:10] + "T" + text[11:13] + text[14:16] + \
        text[17:19] + "Z"


def safe_name(text):
    """A charge point id as a file name part (only A-Z a-z 0-9 . _ -)."""
    out = []
    for ch in text[:48]:
        ok = ord(ch) < 128 and (ch.isalpha() or ch.isdigit()) or ch in "._-"
        out.append(ch if ok else "_")
    return "".join(out) or "station"


def attempts_of(retries):
    return max(1, DEFAULT_ATTEMPTS if retries is None else retries)


def scheme_of(location):
    i = location.find("://")
    return location[:i].lower() if i > 0 else ""


def time_or_none(text):
    return None if text is None else parse_rfc3339(text)


class UploadSlot:
    """One upload at a time of one kind of request; a newer request cancels
    the running one. The running request is persisted (store_name) so that a
    restart can settle it. Subclasses say how a status is notified."""
    op = None
    store_name = None

    def __init__(self, cp):
        self.cp = cp
        self.uploads = None
        self.running = None         # the request dict under way, or None
        self._tag = 0
        self.interrupted = self._load()     # the request a restart cut short, or None

    # --- persistence ---------------------------------------------------------------------------
    def _load(self):
        saved = self.cp.store.load(self.store_name, None)
        if saved is None:
            return None
        if isinstance(saved, dict) and isinstance(saved.get("name"), str) and \
                isinstance(saved.get("location"), str) and isinstance(saved.get("attempts"), int):
            return saved
        log.warning("%s upload state unreadable; dropped", self.op)
        self._save(None)
        return None

    def _save(self, request):
        try:
            self.cp.store.save(self.store_name, request)
        except OSError as e:        # a failing data dir, reported by the store
            log.warning("%s upload state not saved: %s", self.op, e)

    def resume(self):
        """Once Accepted after a restart: resume the interrupted upload with the
        attempts left, or report it failed (see the module's docstring)."""
        request = self.interrupted
        if request is None or self.uploads is None or not self.cp.online:
            return
        self.interrupted = None
        left = request["attempts"] - max(1, request.get("tried") or 0)
        if left > 0 and self.supports(request["location"]):
            log.info("%s upload %s interrupted by a restart: resumed (%d attempt(s) left)",
                     self.op, request["name"], left)
            self._tag += 1
            resumed = dict(request)
            resumed.update({"tag": self._tag, "attempts": left, "tried": 0})
            self.start(resumed)
        else:
            log.warning("%s upload %s interrupted by a restart: no attempt left; failed",
                        self.op, request["name"])
            self._save(None)
            self.notify_failure(None, request)

    def attach(self, uploads):
        self.uploads = uploads

    def supports(self, location):
        return self.uploads is not None and scheme_of(location) in self.uploads.schemes

    def prepare(self, **request):
        """The request with its tag; returns (request, cancelled: a request was running)."""
        self._tag += 1
        request["tag"] = self._tag
        return request, self.running is not None

    def start(self, request):
        """After the answer has left: cancel what runs, then Uploading and the upload."""
        if self.running is not None:
            log.info("%s upload %s cancelled by a newer request", self.op, self.running["name"])
            self.uploads.cancel(self.op, self.running["tag"])
        self.interrupted = None     # a newer request supersedes one a restart cut short
        self.running = request
        self._save(request)
        self.notify(UPLOADING, request)
        self.uploads.upload(self.op, request)

    def done(self, ok, detail):
        """ok None: attempt detail["attempt"] begins (persisted, for a restart);
        detail["interrupted"]: the firmware is stopping (kept for the restart)."""
        detail = detail if isinstance(detail, dict) else {}
        request = self.running
        if request is None or detail.get("tag") != request["tag"]:
            return          # a cancelled upload's late result
        if ok is None:
            request["tried"] = detail.get("attempt", 1)
            self._save(request)
            return
        if detail.get("interrupted"):
            return          # settled after the restart
        self.running = None
        self._save(None)    # before the notification: a restart does not send it again
        if ok:
            log.info("%s uploaded as %s", self.op, request["name"])
            self.notify(UPLOADED, request)
        else:
            log.warning("%s upload failed: %s", self.op, detail.get("reason"))
            self.notify_failure(detail.get("failure"), request)

    def notify(self, status, request):
        raise NotImplementedError

    def notify_failure(self, failure, request):
        raise NotImplementedError


class DiagnosticsUploads(UploadSlot):
    """cp.diagnostics, made by the profile's operations(cp)."""
    op = OP
    store_name = "diagnostics_upload"

    def attach(self, uploads):
        UploadSlot.attach(self, uploads)
        self.cp.events.listen("diagnostics_status", self.status)

    def status(self):
        """What a triggered DiagnosticsStatusNotification reports now."""
        return IDLE if self.running is None else UPLOADING

    def file_name(self):
        return "%s-diagnostics-%s.tar.gz" % (safe_name(self.uploads.station_id),
                                             file_stamp(self.cp.clock.now()))

    def notify(self, status, request):
        self.cp.rpc.call("DiagnosticsStatusNotification", {"status": status})

    def notify_failure(self, failure, request):
        self.notify(UPLOAD_FAILED, request)


def uploads_of(cp):
    """The engine's DiagnosticsUploads (cp.diagnostics)."""
    return cp.diagnostics


def resume_uploads(cp):
    """The engine's tick: settle uploads a restart interrupted, once Accepted
    (GetDiagnostics, GetLog). Returns None (nothing timed)."""
    for service in (cp.diagnostics, cp.log_uploads):
        if service.interrupted is not None:
            service.resume()
    return None


def uploads_done(cp, op, ok, detail):
    """An upload's result from the firmware (main loop's thread), to the service
    that asked for it."""
    if op == OP:
        uploads_of(cp).done(ok, detail)
    else:
        from ocpp_core.security.get_log import logs_of     # the Security extension
        if op == logs_of(cp).op:
            logs_of(cp).done(ok, detail)


class GetDiagnostics:
    """GetDiagnostics (5.9): answered at once with the fileName; the upload
    starts once the answer has left."""
    action = "GetDiagnostics"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        service = uploads_of(self.cp)
        if service.uploads is None or not self.cp.registration.accepted:
            return {}           # nothing will be uploaded: no fileName (5.9)
        request, _ = service.prepare(
            kind="DiagnosticsLog", location=payload["location"], name=service.file_name(),
            start=time_or_none(payload.get("startTime")),
            stop=time_or_none(payload.get("stopTime")),
            attempts=attempts_of(payload.get("retries")),
            interval=payload.get("retryInterval", DEFAULT_RETRY_INTERVAL))
        return Reply({"fileName": request["name"]}, then=lambda: service.start(request))
