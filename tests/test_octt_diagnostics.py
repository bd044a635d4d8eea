"""GetDiagnostics (OCPP 1.6 4.4, 5.9) and GetLog (security whitepaper): the
engine's services on the in-process harness with a recording UploadInterface,
then end to end: TC_045_1 / TC_045_2 with `python -m firmware --hal mock`, the
`ocpp`-package CSMS and a real upload server; GetLog for both log types with
the real uploader and servers."""

import io
import json
import re
import tarfile
import time

import pytest

from firmware.diagnostics import DiagnosticsUploader
from ocpp_core.firmware_management.diagnostics import UploadInterface, uploads_done, uploads_of
from ocpp_core.security.get_log import logs_of
from tests.support.core_harness import FAST, Harness
from tests.support.firmware_process import Bench, bench_port_of
from tests.support.firmware_transfers import running_worker

DIAG = "DiagnosticsStatusNotification"
LOG = "LogStatusNotification"
NAME = re.compile(r"^CP-TEST-1-diagnostics-\d{8}T\d{6}Z\.tar\.gz$")


class FakeUploads(UploadInterface):
    station_id = "CP-TEST-1"

    def __init__(self):
        self.calls = []

    def upload(self, op, request):
        self.calls.append(("upload", op, dict(request)))

    def cancel(self, op, tag):
        self.calls.append(("cancel", op, tag))


@pytest.fixture
def fake():
    return FakeUploads()


@pytest.fixture
def h(tmp_path, fake):
    harness = Harness(tmp_path / "data", config=FAST)
    uploads_of(harness.cp).attach(fake)
    logs_of(harness.cp).attach(fake)
    harness.boot()
    yield harness
    harness.check_clean()


def done(h, op, ok, tag, failure=None):
    detail = {"tag": tag}
    if not ok:
        detail.update(reason="HTTP 404 Not Found", failure=failure or "UploadFailure")
    uploads_done(h.cp, op, ok, detail)
    h.pump()


def trigger(h):
    assert h.call("TriggerMessage", {"requestedMessage": DIAG}) == {"status": "Accepted"}
    h.pump()
    return h.payloads(DIAG)[-1]["status"]


# --- GetDiagnostics, in process ----------------------------------------------------------------

def test_get_diagnostics_names_the_file_then_uploading_uploaded(h, fake):
    answer = h.call("GetDiagnostics", {"location": "ftp://u:p@diag.example/in/", "retries": 2,
                                       "retryInterval": 7, "startTime": "2026-11-24T09:00:00Z",
                                       "stopTime": "2026-11-24T10:00:00Z"})
    assert NAME.match(answer["fileName"]), answer
    assert answer["fileName"] == "CP-TEST-1-diagnostics-20261124T100000Z.tar.gz"
    assert [p["status"] for p in h.payloads(DIAG)] == ["Uploading"]
    kind, op, request = fake.calls[0]
    assert (kind, op) == ("upload", "diagnostics")
    assert request["name"] == answer["fileName"] and request["attempts"] == 2
    assert request["interval"] == 7 and request["location"] == "ftp://u:p@diag.example/in/"
    assert request["stop"] - request["start"] == 3600
    assert trigger(h) == "Uploading"
    done(h, "diagnostics", True, request["tag"])
    assert [p["status"] for p in h.payloads(DIAG)] == ["Uploading", "Uploading", "Uploaded"]
    assert trigger(h) == "Idle"


def test_idle_on_trigger_only_and_defaults(h, fake):
    assert trigger(h) == "Idle"
    h.call("GetDiagnostics", {"location": "http://x.example/"})
    request = fake.calls[0][2]
    assert request["attempts"] == 3 and request["interval"] == 60
    assert request["start"] is None and request["stop"] is None
    done(h, "diagnostics", False, request["tag"])
    assert [p["status"] for p in h.payloads(DIAG)] == ["Idle", "Uploading", "UploadFailed"]


def test_retries_zero_is_one_attempt(h, fake):
    h.call("GetDiagnostics", {"location": "http://x.example/", "retries": 0})
    assert fake.calls[0][2]["attempts"] == 1


def test_a_newer_get_diagnostics_cancels_the_running_one(h, fake):
    h.call("GetDiagnostics", {"location": "http://x.example/a/"})
    first = fake.calls[0][2]["tag"]
    h.call("GetDiagnostics", {"location": "http://x.example/b/"})
    assert fake.calls[1] == ("cancel", "diagnostics", first)
    second = fake.calls[2][2]["tag"]
    done(h, "diagnostics", False, first)            # the cancelled one's late result
    done(h, "diagnostics", True, second)
    assert [p["status"] for p in h.payloads(DIAG)] == ["Uploading", "Uploading", "Uploaded"]


def test_without_a_firmware_upload_the_answer_has_no_file_name(tmp_path):
    h = Harness(tmp_path / "data", config=FAST)
    h.boot()
    assert h.call("GetDiagnostics", {"location": "ftp://diag.example/"}) == {}
    h.pump()
    assert h.payloads(DIAG) == []
    h.check_clean()


def test_while_pending_nothing_is_uploaded(tmp_path, fake):
    h = Harness(tmp_path / "data", config=FAST, boot_answers=[("Pending", 300)])
    uploads_of(h.cp).attach(fake)
    logs_of(h.cp).attach(fake)
    h.boot()
    assert h.call("GetDiagnostics", {"location": "ftp://diag.example/"}) == {}
    assert get_log(h) == {"status": "Rejected"}
    h.pump()
    assert fake.calls == [] and h.payloads(DIAG) == [] and h.payloads(LOG) == []
    h.check_clean()


# --- GetLog, in process ------------------------------------------------------------------------

def get_log(h, kind="SecurityLog", request_id=5, location="https://logs.example/up/",
            retries=None, **log):
    log["remoteLocation"] = location
    payload = {"logType": kind, "requestId": request_id, "log": log}
    if retries is not None:
        payload["retries"] = retries
    return h.call("GetLog", payload)


def test_get_log_accepted_with_filename_and_the_request_id(h, fake):
    answer = get_log(h, oldestTimestamp="2026-11-24T08:00:00Z")
    assert answer["status"] == "Accepted"
    assert re.match(r"^CP-TEST-1-security-\d{8}T\d{6}Z\.log$", answer["filename"])
    request = fake.calls[0][2]
    assert fake.calls[0][1] == "log" and request["kind"] == "SecurityLog"
    assert request["stop"] is None and request["start"] is not None
    assert h.payloads(LOG) == [{"status": "Uploading", "requestId": 5}]
    assert h.cp.events.ask("log_status") == {"status": "Uploading", "requestId": 5}
    done(h, "log", True, request["tag"])
    assert h.payloads(LOG)[-1] == {"status": "Uploaded", "requestId": 5}
    assert h.cp.events.ask("log_status") == {"status": "Idle"}


@pytest.mark.parametrize("failure", ["PermissionDenied", "NotSupportedOperation", "BadMessage",
                                     "UploadFailure"])
def test_get_log_failures_have_their_status(h, fake, failure):
    get_log(h, kind="DiagnosticsLog", request_id=9)
    assert fake.calls[0][2]["name"].endswith(".tar.gz")
    done(h, "log", False, fake.calls[0][2]["tag"], failure=failure)
    assert h.payloads(LOG)[-1] == {"status": failure, "requestId": 9}


def test_a_new_get_log_cancels_the_running_one(h, fake):
    assert get_log(h, request_id=1)["status"] == "Accepted"
    first = fake.calls[0][2]["tag"]
    assert get_log(h, request_id=2)["status"] == "AcceptedCanceled"
    assert fake.calls[1] == ("cancel", "log", first)
    done(h, "log", False, first)
    done(h, "log", True, fake.calls[2][2]["tag"])
    assert h.payloads(LOG) == [{"status": "Uploading", "requestId": 1},
                               {"status": "Uploading", "requestId": 2},
                               {"status": "Uploaded", "requestId": 2}]


def test_get_log_to_an_unsupported_location_is_rejected(h, fake):
    assert get_log(h, location="sftp://logs.example/") == {"status": "Rejected"}
    assert fake.calls == [] and h.payloads(LOG) == []


# --- GetLog with the real uploader and servers -------------------------------------------------

@pytest.fixture
def real(tmp_path):
    """The harness with the firmware's DiagnosticsUploader on a real TransferWorker."""
    h = Harness(tmp_path / "data", config=FAST)
    with running_worker() as worker:
        up = DiagnosticsUploader(worker, h.data_dir, "CP-TEST-1", timeout=5,
                                 secrets=lambda: ["Secret-Pass-777"])
        uploads_of(h.cp).attach(up)
        logs_of(h.cp).attach(up)
        h.boot()
        yield h, worker.events
    h.check_clean()


def settle(h, events):
    """The worker's results to the engine, as the main loop does, up to the
    final one (ok None: an attempt begins)."""
    while True:
        result = events.get(timeout=30).value
        uploads_done(h.cp, result.op, result.ok, result.detail)
        h.pump()
        if result.ok is not None:
            return


def test_get_log_security_log_uploaded(real, upload_server, tmp_path):
    h, events = real
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "security.log").write_text(
        '{"timestamp": "2026-11-23T10:00:00Z", "type": "FirmwareUpdated"}\n'
        '{"timestamp": "2026-11-24T09:30:00Z", "type": "InvalidCsmsCertificate"}\n')
    answer = get_log(h, request_id=11, location=upload_server.base + "/put/",
                     oldestTimestamp="2026-11-24T00:00:00Z",
                     latestTimestamp="2026-11-24T10:00:00Z")
    settle(h, events)
    assert h.payloads(LOG) == [{"status": "Uploading", "requestId": 11},
                               {"status": "Uploaded", "requestId": 11}]
    lines = upload_server.stored["/put/" + answer["filename"]].decode().splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["InvalidCsmsCertificate"]


def test_get_log_diagnostics_log_uploaded_and_a_denied_one(real, upload_server):
    h, events = real
    answer = get_log(h, kind="DiagnosticsLog", request_id=12,
                     location=upload_server.base + "/form/")
    settle(h, events)
    assert h.payloads(LOG)[-1] == {"status": "Uploaded", "requestId": 12}
    assert upload_server.forms["/form/" + answer["filename"]].startswith("multipart/form-data")
    get_log(h, kind="DiagnosticsLog", request_id=13, location=upload_server.base + "/auth/",
            retries=1)
    settle(h, events)
    assert h.payloads(LOG)[-1] == {"status": "PermissionDenied", "requestId": 13}


# --- end to end: the firmware process --------------------------------------------------------

@pytest.fixture
def station(ocpp_csms, firmware):
    fw = firmware(ocpp_csms.url, extra=["--password", "Fw-Pass-31415"])
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    bench.wait(lambda s: s["ocpp"]["registration"] == "Accepted", what="Accepted")
    ocpp_csms.wait_for("StatusNotification", predicate=lambda p: p["connectorId"] == 1)
    return fw


def bundle_files(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                for m in tar.getmembers() if m.isfile()}


def test_tc_045_1_get_diagnostics(ocpp_csms, station, upload_server):
    answer = ocpp_csms.call("CP-TEST-1", "GetDiagnostics",
                            {"location": upload_server.base + "/put/"})
    assert NAME.match(answer["fileName"]), answer
    assert ocpp_csms.wait_for(DIAG) == {"status": "Uploading"}
    assert ocpp_csms.wait_for(DIAG, timeout=30) == {"status": "Uploaded"}
    files = bundle_files(upload_server.stored["/put/" + answer["fileName"]])
    assert json.loads(files["status.json"])["station"]["charge_point_id"] == "CP-TEST-1"
    assert "GetDiagnostics" in files["ocpp-trace.txt"]         # the request itself
    assert "BootNotification" in files["ocpp-trace.txt"]
    assert all("Fw-Pass-31415" not in text for text in files.values())
    assert ocpp_csms.call("CP-TEST-1", "TriggerMessage",
                          {"requestedMessage": DIAG}) == {"status": "Accepted"}
    assert ocpp_csms.wait_for(DIAG) == {"status": "Idle"}
    assert "Traceback" not in station.log()


def test_tc_045_2_get_diagnostics_upload_failed(ocpp_csms, station, upload_server):
    answer = ocpp_csms.call("CP-TEST-1", "GetDiagnostics", {
        "location": upload_server.base + "/nowhere/", "retries": 2, "retryInterval": 1})
    assert NAME.match(answer["fileName"])
    assert ocpp_csms.wait_for(DIAG) == {"status": "Uploading"}
    started = time.monotonic()
    assert ocpp_csms.wait_for(DIAG, timeout=30) == {"status": "UploadFailed"}
    assert time.monotonic() - started >= 0.9          # retryInterval between the 2 attempts
    assert upload_server.hits["/nowhere/" + answer["fileName"]] == 2
    station.wait_log("failed (attempt 2 of 2): HTTP 404")
