"""Security events end to end: the real firmware (`python -m firmware --hal mock`)
against the real websocket CSMS of the `ocpp` package (schema-checked), its
security log on disk, a critical event raised while offline that survives a
kill -9, and the link's FailedToAuthenticateAtCentralSystem."""

import json
import os
import signal
import time

from ocpp_core.timestamps import parse_rfc3339
from tests.support.firmware_process import Bench, bench_port_of

SEN = "SecurityEventNotification"


def _log_records(data):
    path = os.path.join(data, "logs", "security.log")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _wait_log(data, event_type, count=1, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if [r["type"] for r in _log_records(data)].count(event_type) >= count:
            return _log_records(data)
        time.sleep(0.02)      # a file has no change notification worth the complexity
    raise AssertionError("%s not %d time(s) in the security log: %r"
                         % (event_type, count, _log_records(data)))


def test_startup_of_the_device_reaches_the_csms_and_the_security_log(ocpp_csms, firmware,
                                                                     tmp_path):
    data = str(tmp_path / "data")
    firmware(ocpp_csms.url, data_dir=data)
    ocpp_csms.wait_for("BootNotification")
    event = ocpp_csms.wait_for(SEN, predicate=lambda p: p["type"] == "StartupOfTheDevice")
    assert abs(parse_rfc3339(event["timestamp"]) - time.time()) < 30
    assert "started" in event["techInfo"]
    boot_at = ocpp_csms.actions().index("BootNotification")
    assert ocpp_csms.actions().index(SEN) > boot_at       # nothing before Accepted (4.2)
    [record] = [r for r in _log_records(data) if r["type"] == "StartupOfTheDevice"]
    assert record["critical"] is True and record["timestamp"] == event["timestamp"]


def test_a_critical_event_raised_offline_survives_kill_9(ocpp_csms, firmware, tmp_path):
    data = str(tmp_path / "data")
    ocpp_csms.refuse_connections = True         # the CSMS is unreachable (HTTP 503)
    first = firmware(ocpp_csms.url, data_dir=data)
    _wait_log(data, "StartupOfTheDevice")       # journaled before it is logged
    first.stop(signal.SIGKILL)
    assert ocpp_csms.received == []
    ocpp_csms.refuse_connections = False
    second = firmware(ocpp_csms.url, data_dir=data)     # the next start, same data dir
    ocpp_csms.wait_for("BootNotification")
    startups = [ocpp_csms.wait_for(SEN, 15, lambda p: p["type"] == "StartupOfTheDevice")
                for _ in range(2)]
    records = _wait_log(data, "StartupOfTheDevice", 2)
    # The killed run's event first (FIFO), then the new run's; each exactly once.
    assert [s["timestamp"] for s in startups] == \
        [r["timestamp"] for r in records if r["type"] == "StartupOfTheDevice"]
    # Both left the journal after their CALLRESULT: none can come again.
    bench = Bench(bench_port_of(second))
    deadline = time.monotonic() + 10
    while bench.status()["ocpp"]["queued_messages"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bench.status()["ocpp"]["queued_messages"] == 0
    assert [p["type"] for _, a, p, _ in ocpp_csms.received if a == SEN].count(
        "StartupOfTheDevice") == 2


def test_refused_credentials_raise_failed_to_authenticate(ocpp_csms, firmware, tmp_path):
    data = str(tmp_path / "data")
    ocpp_csms.password = "the-right-password-16"
    fw = firmware(ocpp_csms.url, data_dir=data, extra=["--password", "a-wrong-password-16"])
    records = _wait_log(data, "FailedToAuthenticateAtCentralSystem")
    info = [r["techInfo"] for r in records if r["type"] == "FailedToAuthenticateAtCentralSystem"]
    assert info[0] == "HTTP 401 on the websocket upgrade"
    ocpp_csms.password = None                   # the CSMS lets it in again
    event = ocpp_csms.wait_for(SEN, 15, lambda p:
                               p["type"] == "FailedToAuthenticateAtCentralSystem")
    assert event["techInfo"].startswith("HTTP 401")
    log_text = fw.log() + open(os.path.join(data, "logs", "security.log")).read()
    assert "a-wrong-password-16" not in log_text


def test_the_bench_tamper_contact_raises_tamper_detection_activated(ocpp_csms, firmware,
                                                                     tmp_path):
    from tests.support.firmware_process import Bench, bench_port_of
    data = str(tmp_path / "data")
    fw = firmware(ocpp_csms.url, data_dir=data)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    assert bench("tamper", open=True)["open"] is True
    event = ocpp_csms.wait_for(SEN, predicate=lambda p: p["type"] == "TamperDetectionActivated")
    assert event["techInfo"] == "enclosure opened"
    bench("tamper", open=False)
    bench("tamper", open=True)          # opened again: a second event
    ocpp_csms.wait_for(SEN, predicate=lambda p: p["type"] == "TamperDetectionActivated")
    records = _wait_log(data, "TamperDetectionActivated", 2)
    assert all(r["critical"] for r in records if r["type"] == "TamperDetectionActivated")


def test_a_reset_raises_reset_or_reboot_then_startup(ocpp_csms, firmware, tmp_path):
    data = str(tmp_path / "data")
    firmware(ocpp_csms.url, data_dir=data)
    ocpp_csms.wait_for("BootNotification")
    ocpp_csms.wait_for(SEN, predicate=lambda p: p["type"] == "StartupOfTheDevice")
    assert ocpp_csms.call("CP-TEST-1", "Reset", {"type": "Hard"}) == {"status": "Accepted"}
    ocpp_csms.wait_for("BootNotification", 20)          # the restarted firmware
    reset = ocpp_csms.wait_for(SEN, 15, lambda p: p["type"] == "ResetOrReboot")
    startup = ocpp_csms.wait_for(SEN, 15, lambda p: p["type"] == "StartupOfTheDevice")
    assert reset["techInfo"] == "restart (Hard)"
    assert reset["timestamp"] <= startup["timestamp"]
    types = [p["type"] for _, a, p, _ in ocpp_csms.received if a == SEN]
    assert types.index("ResetOrReboot") < len(types) - 1 - types[::-1].index("StartupOfTheDevice")
