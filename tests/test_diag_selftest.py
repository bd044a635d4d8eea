"""`tools.diag selftest` reads every device afresh (firmware/maintenance_probes.py):
the measured bug - `bench fault meter offline` followed at once by `selftest
--json` reported the meter passing with a reading "2 s ago" and exited 0 - and
the healthy case, with `--hal mock` and `--hal emulated`."""

import json
import re
import subprocess
import sys
import threading

import pytest

from tests.support.firmware_process import ROOT
from tests.test_diag import ask, check, diag_json, no_traceback, start

DEVICE_CHECKS = ("card reader", "modem", "meter 1", "pilot 1", "contactor 1")


@pytest.fixture(params=["mock", "emulated"])
def hal(request):
    return request.param


def selftest_process(data):
    """`python -m tools.diag --json selftest` as a technician runs it: (exit status, result)."""
    done = subprocess.run([sys.executable, "-m", "tools.diag", "--data-dir", data, "--json",
                           "selftest"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done.returncode, json.loads(done.stdout)


def test_selftest_healthy_every_device_read_afresh(ocpp_csms, firmware, tmp_path, hal):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path, hal=hal)
    code, result = diag_json(data, "selftest")
    assert code == 0 and result["passed"] is True, result
    for name in DEVICE_CHECKS:
        c = check(result, name)
        assert c["result"] == "pass", c
        assert re.search(r"; read afresh [0-9.]+ s ago$", c["detail"]), c
        assert c["age_s"] is not None and c["age_s"] < 2.0, c    # read for this self-test
    for c in result["checks"]:
        assert c["age_s"] is not None, c         # every check says how old its fact is
    no_traceback(fw)


def test_selftest_right_after_meter_offline_fails(ocpp_csms, firmware, tmp_path, hal):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path, hal=hal)
    bench("fault", device="meter", mode="offline")
    # at once: no poll has failed yet, the cached reading is a second old
    loop = {}

    def status_meanwhile():         # the main loop answers while the meter is being read
        loop.update(ask(data, "status")["main_loop"])
    other = threading.Thread(target=status_meanwhile)
    other.start()
    code, result = selftest_process(data)
    other.join(30)
    assert code == 1 and result["passed"] is False, result
    meter = check(result, "meter 1")
    assert (meter["result"], meter["error_code"]) == ("fail", "PowerMeterFailure"), meter
    assert "RS-485" in meter["hint"], meter
    assert "fresh read" in meter["detail"] or "no fresh reading" in meter["detail"], meter
    for name in ("card reader", "pilot 1", "contactor 1"):
        assert check(result, name)["result"] == "pass", check(result, name)
    assert loop.get("responding") is True and loop["answer_ms"] < 1000, loop
    no_traceback(fw)


class _SilentWorker:
    """A device worker whose device never answers (its thread is stuck in a read)."""
    name, kind, cid, probe_timeout = "meter1", "meter", 1, 0.2

    def request_probe(self, answers):
        pass


class _PromptWorker:
    name, kind, cid, probe_timeout = "pilot1", "pilot", 1, 2.0

    def request_probe(self, answers):
        import time
        answers.put((self.name, {"ok": True, "facts": {"ev_state": "A"},
                                 "read_mono": time.monotonic(), "took_s": 0.0}))


def test_a_device_that_does_not_answer_within_its_timeout_fails():
    from firmware.maintenance_probes import probe_all
    from tests.test_diag_checks import LOOP_OK, station_state
    from tools.diag.checks import selftest_checks
    probes = probe_all([_SilentWorker(), _PromptWorker()])
    assert probes["meter1"] == {"kind": "meter", "connector": 1, "timeout_s": 0.2, "ok": False,
                                "timed_out": True, "error": "no answer within 0.2 s"}
    assert probes["pilot1"]["ok"] is True and probes["pilot1"]["age_s"] < 1.0
    found = selftest_checks(station_state(), LOOP_OK, False, {}, probes)
    meter = check({"checks": found}, "meter 1")
    assert (meter["result"], meter["error_code"]) == ("fail", "PowerMeterFailure")
    assert meter["detail"] == "did not answer a fresh read within 0.2 s"
    assert "RS-485" in meter["hint"]
    assert check({"checks": found}, "pilot 1")["result"] == "pass"
