"""The security log: OCTT TC_079_CS "Get Security Log" end to end (the firmware
subprocess `--hal mock`, the `ocpp`-package CSMS, a real HTTP upload server),
ExtendedTriggerMessage(LogStatusNotification) during and after an upload, and
the technician's `python -m tools.diag security-log show|clear` (the CSMS gets
the critical SecurityLogWasCleared)."""

import json
import os
import time

import pytest

from firmware.security_log import SecurityLog, path_in
from tests.support.upload_servers import UploadServer
from tests.test_diag import CP_ID, diag, diag_json, no_traceback, start
from tests.test_octt_diagnostics import FakeUploads, done  # noqa: F401 - helpers

SEN = "SecurityEventNotification"
LOG = "LogStatusNotification"
PASSWORD = "Sec-Log-Pass-0042"


def records(data):
    path = path_in(data)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def startup_logged(ocpp_csms, data):
    """The StartupOfTheDevice event has reached the CSMS and the security log."""
    ocpp_csms.wait_for(SEN, 15, lambda p: p["type"] == "StartupOfTheDevice")
    deadline = time.monotonic() + 10
    while "StartupOfTheDevice" not in [r["type"] for r in records(data)]:
        assert time.monotonic() < deadline, records(data)
        time.sleep(0.02)        # a file has no change notification worth the complexity


@pytest.fixture
def upload_server():
    s = UploadServer()
    yield s
    s.stop()


# --- TC_079_CS, end to end ---------------------------------------------------------------------

def test_tc_079_cs_get_security_log(ocpp_csms, firmware, tmp_path, upload_server):
    data = str(tmp_path / "data")
    fw = firmware(ocpp_csms.url, data_dir=data, extra=["--password", PASSWORD])
    ocpp_csms.password = PASSWORD
    ocpp_csms.wait_for("BootNotification", timeout=20)
    startup_logged(ocpp_csms, data)

    answer = ocpp_csms.call(CP_ID, "GetLog", {
        "logType": "SecurityLog", "requestId": 79,
        "log": {"remoteLocation": upload_server.base + "/put/"}})
    assert answer["status"] == "Accepted"
    assert answer["filename"].startswith(CP_ID + "-security-")
    assert ocpp_csms.wait_for(LOG, 15) == {"status": "Uploading", "requestId": 79}
    assert ocpp_csms.wait_for(LOG, 30) == {"status": "Uploaded", "requestId": 79}

    body = upload_server.stored["/put/" + answer["filename"]].decode("utf-8")
    uploaded = [json.loads(line) for line in body.splitlines()]
    startup = [r for r in uploaded if r["type"] == "StartupOfTheDevice"]
    assert startup and startup[0]["critical"] is True
    assert PASSWORD not in body

    # Nothing uploads any more: a triggered LogStatusNotification is Idle, no requestId.
    assert ocpp_csms.call(CP_ID, "ExtendedTriggerMessage",
                          {"requestedMessage": LOG}) == {"status": "Accepted"}
    assert ocpp_csms.wait_for(LOG, 15) == {"status": "Idle"}
    no_traceback(fw)


# --- ExtendedTriggerMessage(LogStatusNotification), in process ---------------------------------

@pytest.fixture
def h(tmp_path):
    from ocpp_core.security.get_log import logs_of
    from tests.support.core_harness import FAST, Harness
    harness = Harness(tmp_path / "data", config=FAST)
    fake = FakeUploads()
    logs_of(harness.cp).attach(fake)
    logs_of(harness.cp).attach(fake)        # attached twice: still one answer
    harness.fake = fake
    harness.boot()
    yield harness
    harness.check_clean()


def trigger_log_status(h):
    m = h.mark()
    assert h.call("ExtendedTriggerMessage", {"requestedMessage": LOG}) == {"status": "Accepted"}
    h.pump()
    return h.payloads(LOG, since=m)


def test_triggered_log_status_is_idle_then_uploading_with_the_request_id(h):
    assert trigger_log_status(h) == [{"status": "Idle"}]
    answer = h.call("GetLog", {"logType": "SecurityLog", "requestId": 12,
                               "log": {"remoteLocation": "https://logs.example/up/"}})
    assert answer["status"] == "Accepted"
    h.pump()
    assert trigger_log_status(h) == [{"status": "Uploading", "requestId": 12}]
    tag = h.fake.calls[-1][2]["tag"]
    done(h, "log", False, tag, failure="PermissionDenied")
    assert h.payloads(LOG)[-1] == {"status": "PermissionDenied", "requestId": 12}
    assert trigger_log_status(h) == [{"status": "Idle"}]


# --- the technician's tool: show and clear ------------------------------------------------------

def test_security_log_show_and_clear_raise_security_log_was_cleared(ocpp_csms, firmware,
                                                                     tmp_path):
    ocpp_csms.password = PASSWORD
    fw, bench, data = start(ocpp_csms, firmware, tmp_path, extra=["--password", PASSWORD])
    startup_logged(ocpp_csms, data)

    code, text = diag(data, "security-log", "show")
    assert code == 0, text
    assert "StartupOfTheDevice" in text and "critical" in text and PASSWORD not in text
    code, shown = diag_json(data, "security-log", "show", "--limit", "1")
    assert code == 0 and len(shown["records"]) == 1 and shown["total"] >= 1
    assert shown["path"] == path_in(data)

    assert diag(data, "security-log", "clear") == (2, "")        # no --yes: nothing done
    assert "StartupOfTheDevice" in [r["type"] for r in records(data)]

    code, text = diag(data, "security-log", "clear", "--yes")
    assert (code, text) == (0, "security log cleared; SecurityLogWasCleared is queued for "
                               "the CSMS\n")
    event = ocpp_csms.wait_for(SEN, 15, lambda p: p["type"] == "SecurityLogWasCleared")
    assert "technician" in event["techInfo"]
    # Emptied: the clearing is the new log's first (and only) line.
    [record] = records(data)
    assert record["type"] == "SecurityLogWasCleared" and record["critical"] is True
    assert record["timestamp"] == event["timestamp"]
    assert not os.path.exists(path_in(data) + ".1")
    assert PASSWORD not in fw.log()
    no_traceback(fw)


def test_show_masks_a_secret_again_and_skips_cut_lines(tmp_path):
    log = SecurityLog(str(tmp_path), secrets=lambda: [PASSWORD])
    log.append({"timestamp": "2026-12-03T10:00:00Z", "type": "InvalidMessages",
                "techInfo": "a", "critical": False})
    with open(log.path, "a", encoding="utf-8") as f:      # written by an older build
        f.write(json.dumps({"timestamp": "2026-12-03T10:01:00Z", "type": "X",
                            "techInfo": "pw " + PASSWORD}) + "\n")
        f.write('{"timestamp": "2026-12-03T10:02:00Z", "ty')          # cut by a power loss
    shown, total = log.recent(10)
    assert total == 2 and [r["type"] for r in shown] == ["InvalidMessages", "X"]
    assert PASSWORD not in json.dumps(shown)
    assert log.recent(1) == (shown[-1:], 2)
    assert log.clear() and log.recent(10) == ([], 0)
