"""Uploads (GetDiagnostics, GetLog) interrupted by a restart: resumed after the
next BootNotification Accepted while attempts remain, else the final failure
status; nothing while Pending (4.2), nothing twice. In process on the harness
(power_cut / power_on), then end to end: kill -9 of `python -m firmware --hal
mock` while its upload is stalled at a real upload server, restart on the same
data dir, the final status at the `ocpp`-package CSMS."""

import signal
import time

import pytest

from ocpp_core.firmware_management.diagnostics import uploads_done, uploads_of
from ocpp_core.security.get_log import logs_of
from tests.support.core_harness import FAST, Harness
from tests.support.upload_servers import UploadServer
from tests.test_octt_diagnostics import DIAG, LOG, fake, h  # noqa: F401 - fixtures

LOCATION = "ftp://diag.example/in/"


def restart(h, fake, boot=True):
    """kill -9 and power on again on the same data; the firmware attaches its
    uploader before the link comes up."""
    h.power_cut()
    h.power_on()
    uploads_of(h.cp).attach(fake)
    logs_of(h.cp).attach(fake)
    if boot:
        h.boot()


def uploads(fake):
    return [request for kind, op, request in fake.calls if kind == "upload"]


def get_diagnostics(h, retries):
    answer = h.call("GetDiagnostics", {"location": LOCATION, "retries": retries,
                                       "retryInterval": 5})
    h.pump()
    return answer["fileName"]


def attempt(h, op, tag, n):
    """The firmware's word that attempt n begins (as firmware/diagnostics.py posts it)."""
    uploads_done(h.cp, op, None, {"tag": tag, "attempt": n})


def test_an_interrupted_diagnostics_upload_is_resumed_with_the_attempts_left(h, fake):
    name = get_diagnostics(h, retries=3)
    attempt(h, "diagnostics", uploads(fake)[0]["tag"], 1)
    restart(h, fake)
    [resumed] = uploads(fake)[1:]
    assert resumed["name"] == name and resumed["attempts"] == 2
    assert resumed["location"] == LOCATION and resumed["kind"] == "DiagnosticsLog"
    actions = [a for a, p in h.sent()]
    after_boot = actions[actions.index("BootNotification", 1):]
    assert after_boot.index(DIAG) > after_boot.index("StatusNotification")   # after the boot's
    uploads_done(h.cp, "diagnostics", True, {"tag": resumed["tag"]})
    h.pump()
    assert [p["status"] for p in h.payloads(DIAG)] == ["Uploading", "Uploading", "Uploaded"]
    restart(h, fake)        # settled: nothing more after another restart
    assert len(uploads(fake)) == 2 and len(h.payloads(DIAG)) == 3


def test_with_no_attempt_left_upload_failed_once(h, fake):
    get_diagnostics(h, retries=2)
    attempt(h, "diagnostics", 1, 1)
    attempt(h, "diagnostics", 1, 2)     # the last attempt was under way
    restart(h, fake)
    assert len(uploads(fake)) == 1
    assert [p["status"] for p in h.payloads(DIAG)] == ["Uploading", "UploadFailed"]
    restart(h, fake)
    assert [p["status"] for p in h.payloads(DIAG)] == ["Uploading", "UploadFailed"]


def test_get_log_interrupted_resumed_then_upload_failure_with_its_request_id(h, fake):
    answer = h.call("GetLog", {"logType": "SecurityLog", "requestId": 42, "retries": 2,
                               "log": {"remoteLocation": "https://logs.example/up/"}})
    h.pump()
    attempt(h, "log", 1, 1)
    restart(h, fake)                    # attempt 2 of 2: resumed
    [resumed] = uploads(fake)[1:]
    assert resumed["request_id"] == 42 and resumed["name"] == answer["filename"]
    attempt(h, "log", resumed["tag"], 1)
    restart(h, fake)                    # cut short again: no attempt left
    assert len(uploads(fake)) == 2
    assert h.payloads(LOG) == [{"status": "Uploading", "requestId": 42}] * 2 + \
        [{"status": "UploadFailure", "requestId": 42}]


def test_nothing_while_pending_then_settled_once_accepted(tmp_path, fake):
    h = Harness(tmp_path / "data", config=FAST, boot_answers=[("Accepted", 300),
                                                             ("Pending", 10)])
    uploads_of(h.cp).attach(fake)
    logs_of(h.cp).attach(fake)
    h.boot()
    get_diagnostics(h, retries=1)
    restart(h, fake)
    h.advance(5)
    assert h.payloads("BootNotification") and h.payloads(DIAG) == [{"status": "Uploading"}]
    h.advance(10)                       # the next BootNotification is Accepted
    assert len(h.sent("BootNotification")) == 3
    assert h.payloads(DIAG) == [{"status": "Uploading"}, {"status": "UploadFailed"}]
    assert len(uploads(fake)) == 1
    h.check_clean()


def test_stopped_by_the_firmware_it_is_kept_for_the_restart(h, fake):
    get_diagnostics(h, retries=2)
    attempt(h, "diagnostics", 1, 1)     # failed; the firmware stops while it waits to retry
    uploads_done(h.cp, "diagnostics", False, {"tag": 1, "reason": "the firmware stops",
                                              "interrupted": True})
    h.pump()
    assert h.payloads(DIAG) == [{"status": "Uploading"}]
    restart(h, fake)
    assert uploads(fake)[1]["attempts"] == 1
    assert h.payloads(DIAG) == [{"status": "Uploading"}] * 2


# --- end to end: kill -9 mid-upload ------------------------------------------------------------

@pytest.fixture
def server():
    s = UploadServer()
    yield s
    s.stop()


def booted_station(ocpp_csms, firmware, data_dir):
    fw = firmware(ocpp_csms.url, data_dir=data_dir)
    ocpp_csms.wait_for("BootNotification", timeout=20)
    ocpp_csms.wait_for("StatusNotification", predicate=lambda p: p["connectorId"] == 1)
    return fw


def wait_hit(server, path, timeout=20):
    deadline = time.monotonic() + timeout
    while not server.hits.get(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.hits.get(path), "the upload never reached the server"


def test_kill_9_mid_upload_resumed_after_the_restart(ocpp_csms, firmware, server, tmp_path):
    data = str(tmp_path / "data")
    fw = booted_station(ocpp_csms, firmware, data)
    answer = ocpp_csms.call("CP-TEST-1", "GetDiagnostics", {
        "location": server.base + "/stall/", "retries": 2, "retryInterval": 1})
    path = "/stall/" + answer["fileName"]
    assert ocpp_csms.wait_for(DIAG) == {"status": "Uploading"}
    wait_hit(server, path)              # the first PUT is stalled at the server
    fw.stop(signal.SIGKILL)
    booted_station(ocpp_csms, firmware, data)
    assert ocpp_csms.wait_for(DIAG, timeout=20) == {"status": "Uploading"}
    assert ocpp_csms.wait_for(DIAG, timeout=30) == {"status": "Uploaded"}
    assert server.hits[path] == 2 and server.stored[path][:2] == b"\x1f\x8b"
    assert ocpp_csms.call("CP-TEST-1", "TriggerMessage",
                          {"requestedMessage": DIAG}) == {"status": "Accepted"}
    assert ocpp_csms.wait_for(DIAG) == {"status": "Idle"}   # and nothing else before it
    assert [a for a in ocpp_csms.actions() if a == DIAG] == [DIAG] * 4


def test_kill_9_mid_get_log_with_no_attempt_left_upload_failure(ocpp_csms, firmware, server,
                                                                 tmp_path):
    data = str(tmp_path / "data")
    fw = booted_station(ocpp_csms, firmware, data)
    answer = ocpp_csms.call("CP-TEST-1", "GetLog", {
        "logType": "SecurityLog", "requestId": 77, "retries": 1,
        "log": {"remoteLocation": server.base + "/stall/"}})
    assert answer["status"] == "Accepted"
    assert ocpp_csms.wait_for(LOG) == {"status": "Uploading", "requestId": 77}
    wait_hit(server, "/stall/" + answer["filename"])
    fw.stop(signal.SIGKILL)
    booted_station(ocpp_csms, firmware, data)
    assert ocpp_csms.wait_for(LOG, timeout=20) == {"status": "UploadFailure", "requestId": 77}
    assert server.hits["/stall/" + answer["filename"]] == 1
    assert [a for a in ocpp_csms.actions() if a == LOG] == [LOG] * 2


def test_reset_mid_upload_resumed_after_the_reboot(ocpp_csms, firmware, server, tmp_path):
    data = str(tmp_path / "data")
    booted_station(ocpp_csms, firmware, data)
    answer = ocpp_csms.call("CP-TEST-1", "GetDiagnostics", {
        "location": server.base + "/stall/", "retries": 2, "retryInterval": 1})
    path = "/stall/" + answer["fileName"]
    assert ocpp_csms.wait_for(DIAG) == {"status": "Uploading"}
    wait_hit(server, path)
    assert ocpp_csms.call("CP-TEST-1", "Reset", {"type": "Soft"}) == {"status": "Accepted"}
    ocpp_csms.wait_for("BootNotification", timeout=30)
    assert ocpp_csms.wait_for(DIAG, timeout=20) == {"status": "Uploading"}
    assert ocpp_csms.wait_for(DIAG, timeout=30) == {"status": "Uploaded"}
    assert server.hits[path] == 2
    assert ocpp_csms.call("CP-TEST-1", "TriggerMessage",
                          {"requestedMessage": DIAG}) == {"status": "Accepted"}
    assert ocpp_csms.wait_for(DIAG) == {"status": "Idle"}
    assert [a for a in ocpp_csms.actions() if a == DIAG] == [DIAG] * 4
