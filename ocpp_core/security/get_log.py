"""GetLog and its LogStatusNotifications (OCA "Improved security for OCPP
1.6-J", the Security extension's GetLog.req/.conf and LogStatusNotification.req):
the LogUploads service and the GetLog operation. The upload itself is the one
GetDiagnostics uses (UploadSlot and UploadInterface in
ocpp_core/firmware_management/diagnostics.py).

- logType DiagnosticsLog: the diagnostics bundle (as GetDiagnostics);
  SecurityLog: the security log's lines (the firmware keeps them), both
  between log.oldestTimestamp and log.latestTimestamp.
- GetLog.conf: Accepted with the filename; AcceptedCanceled when an upload of
  an earlier GetLog was running (it is cancelled: the whitepaper "Accepted
  this log upload, but in doing this has canceled an ongoing log file
  upload"); Rejected when nothing can be uploaded (no firmware upload
  attached), the remoteLocation's scheme is not ftp, http or https, or the
  registration is not Accepted (4.2, as GetDiagnostics).
- LogStatusNotification (with the requestId of the GetLog): Uploading when
  the upload starts, then Uploaded, or the status that fits the failure of
  the last attempt: PermissionDenied (HTTP 401/403, FTP 530/550 permission),
  NotSupportedOperation (HTTP 405/501 after the POST fallback, FTP 502/504),
  BadMessage (a location that cannot be used, a protocol error) or
  UploadFailure (anything else: timeout, connection refused or closed, 404).
  Nothing is sent for a cancelled upload.
- ExtendedTriggerMessage(LogStatusNotification) (ocpp_core/security/trigger.py)
  sends what status() answers to events.ask("log_status"): {"status": "Idle"}
  while no upload runs (the whitepaper: requestId only "unless the message was
  triggered by an ExtendedTriggerMessage.req AND there is no log upload
  ongoing"), else the last status sent for the running upload with its
  requestId (Uploading: a retry between attempts is still that upload).
- retries / retryInterval as GetDiagnostics (retries = attempts, at least one).
- An upload interrupted by a restart: resumed after the next BootNotification
  Accepted while attempts remain, else UploadFailure with the requestId
  (UploadSlot, the reading in ocpp_core/firmware_management/diagnostics.py).
"""

from ocpp_core.firmware_management.diagnostics import (DEFAULT_RETRY_INTERVAL, IDLE, UPLOADED,
                                                        UPLOADING, UploadSlot, attempts_of,
                                                        file_stamp, safe_name, time_or_none)
from ocpp_core.rpc import Reply

OP = "log"
UPLOAD_FAILURE = "UploadFailure"
FAILURES = ("BadMessage", "NotSupportedOperation", "PermissionDenied", UPLOAD_FAILURE)
_NAMES = {"DiagnosticsLog": ("diagnostics", ".tar.gz"), "SecurityLog": ("security", ".log")}


class LogUploads(UploadSlot):
    """cp.log_uploads, made by the security extension's operations(cp)."""
    op = OP
    store_name = "log_upload"       # an upload a restart interrupted (UploadSlot.resume)

    def __init__(self, cp):
        UploadSlot.__init__(self, cp)
        self.last = None            # (status, requestId) of the last notification sent

    def attach(self, uploads):
        if self.uploads is None:    # one listener, however often it is attached
            self.cp.events.listen("log_status", self.status)
        UploadSlot.attach(self, uploads)

    def status(self):
        """The LogStatusNotification payload of an ExtendedTriggerMessage."""
        running = self.running
        if running is None:
            return {"status": IDLE}
        status = UPLOADING
        if self.last is not None and self.last[1] == running["request_id"]:
            status = self.last[0]
        return {"status": status, "requestId": running["request_id"]}

    def file_name(self, kind):
        what, ext = _NAMES[kind]
        return "%s-%s-%s%s" % (safe_name(self.uploads.station_id), what,
                               file_stamp(self.cp.clock.now()), ext)

    def notify(self, status, request):
        self.last = (status, request["request_id"])
        self.cp.rpc.call("LogStatusNotification",
                         {"status": status, "requestId": request["request_id"]})

    def notify_failure(self, failure, request):
        self.notify(failure if failure in FAILURES else UPLOAD_FAILURE, request)


def logs_of(cp):
    """The engine's LogUploads (cp.log_uploads)."""
    return cp.log_uploads


class GetLog:
    action = "GetLog"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        service = logs_of(self.cp)
        where = payload["log"]
        if not service.supports(where["remoteLocation"]) or not self.cp.registration.accepted:
            return {"status": "Rejected"}
        kind = payload["logType"]
        request, cancels = service.prepare(
            kind=kind, request_id=payload["requestId"], location=where["remoteLocation"],
            name=service.file_name(kind), start=time_or_none(where.get("oldestTimestamp")),
            stop=time_or_none(where.get("latestTimestamp")),
            attempts=attempts_of(payload.get("retries")),
            interval=payload.get("retryInterval", DEFAULT_RETRY_INTERVAL))
        status = "AcceptedCanceled" if cancels else "Accepted"
        return Reply({"status": status, "filename": request["name"]},
                     then=lambda: service.start(request))


__all__ = ["GetLog", "LogUploads", "logs_of", "UPLOADED"]
