"""tools/diag/checks.py: the self-test's and the device commands' verdicts,
pure functions of the state the firmware publishes (firmware/station_state.py,
here written out by hand) and of the actuation results (firmware/actuation.py)."""

import copy

import pytest

from tools.diag import checks
from tools.diag.hints import HINTS

LOOP_OK = {"responding": True, "answer_ms": 3.2}


def station_state(fixed_cable=True):
    """A healthy, idle one-connector station as the firmware publishes it (aged)."""
    return copy.deepcopy({
        "station": {"charge_point_id": "CP-1", "fixed_cable": fixed_cable, "faults": {},
                    "error_code": "NoError", "ocpp_status": "Available"},
        "link": {"connected": True, "since": "2026-01-01T00:00:00.000Z", "for_s": 125.0,
                 "last_error": None},
        "registration": "Accepted",
        "clock": {"valid": True, "source": "csms", "now": "2026-01-01T00:02:05.000Z"},
        "connectors": {"1": {
            "ocpp_status": "Available", "error_code": "NoError", "error_info": None,
            "faults": {}, "ev_state": "A", "ev_known": True, "contactor_closed": False,
            "locked": None if fixed_cable else False, "transaction": None,
            "meter": {"energy_wh": 1000.0, "power_w": 0.0, "voltage_v": [230.0, 231.0, 229.5],
                      "current_a": [0.0, 0.0, 0.0], "frequency_hz": 50.0, "age_s": 0.4}}},
        "messages": {"queued": 0, "set_aside": 0, "in_flight": False},
        "faults": [],
        "modem": {"signal_dbm": -71, "registered": True, "operator": "Bench Telecom",
                  "sim_ready": True, "age_s": 12.0},
        "rfid": {"last_card": None},
        "workers": {name: {"kind": kind, "connector": cid, "failures": 0, "faulted": False}
                    for name, kind, cid in (("pilot1", "pilot", 1), ("meter1", "meter", 1),
                                            ("contactor1", "contactor", 1), ("rfid", "rfid", None),
                                            ("modem", "modem", None))},
    })


def by_name(found, name):
    (one,) = [c for c in found if c["name"] == name]
    return one


# --- the self-test ----------------------------------------------------------------------------

def test_a_healthy_station_passes_every_check_in_order():
    found = checks.selftest_checks(station_state(), LOOP_OK, False, {})
    assert [c["name"] for c in found] == ["main loop", "CSMS link", "registration", "clock",
                                         "card reader", "modem", "meter 1", "pilot 1",
                                         "contactor 1", "journal"]
    assert {c["result"] for c in found} == {"pass"}
    assert all(c["error_code"] == "NoError" and c["hint"] is None for c in found)
    assert by_name(found, "meter 1")["detail"] == \
        "1000.0 Wh, 0.0 W, 230.0/231.0/229.5 V, 0.00/0.00/0.00 A, 50.0 Hz (0 s ago)"
    assert by_name(found, "CSMS link")["detail"] == "connected for 2 min"
    assert by_name(found, "modem")["detail"] == \
        "-71 dBm, registered on Bench Telecom, SIM ready (12 s ago)"
    assert by_name(found, "contactor 1")["detail"] == \
        "commanded open, feedback agrees (not cycled: use --actuate)"


def test_no_main_loop_check_when_it_was_not_asked():
    found = checks.selftest_checks(station_state(), None, False, {})
    assert "main loop" not in [c["name"] for c in found]
    stuck = checks.selftest_checks(station_state(), {"responding": False, "error": "stuck"},
                                   False, {})
    loop = by_name(stuck, "main loop")
    assert (loop["result"], loop["error_code"], loop["detail"]) == ("fail", "InternalError",
                                                                    "stuck")
    assert loop["hint"] == HINTS["main_loop"]


@pytest.mark.parametrize("faulty, name, code, detail, hint", [
    (lambda s: s["connectors"]["1"]["faults"].update(PowerMeterFailure="meter offline"),
     "meter 1", "PowerMeterFailure", "meter offline", "meter"),
    (lambda s: s["workers"]["meter1"].update(failures=1),
     "meter 1", "PowerMeterFailure", "the last read failed", "meter"),
    (lambda s: s["connectors"]["1"].update(meter=None),
     "meter 1", "PowerMeterFailure", "no reading since start-up", "meter-stale"),
    (lambda s: s["connectors"]["1"]["meter"].update(age_s=42.0),
     "meter 1", "PowerMeterFailure", "no reading for 42 s", "meter-stale"),
    (lambda s: s["station"]["faults"].update(ReaderFailure=None),
     "card reader", "ReaderFailure", "does not answer", "rfid"),
    (lambda s: s["workers"]["rfid"].update(failures=3),
     "card reader", "ReaderFailure", "the last 3 polls failed", "rfid"),
    (lambda s: s["workers"]["modem"].update(failures=2),
     "modem", "WeakSignal", "the last 2 status queries failed", "modem"),
    (lambda s: s["connectors"]["1"]["faults"].update(EVCommunicationError="pilot board"),
     "pilot 1", "EVCommunicationError", "pilot board", "pilot"),
    (lambda s: s["connectors"]["1"]["faults"].update(PowerSwitchFailure="contactor welded"),
     "contactor 1", "PowerSwitchFailure", "contactor welded", "contactor-welded"),
    (lambda s: s["workers"]["contactor1"].update(failures=2),
     "contactor 1", "PowerSwitchFailure", "its feedback disagreed 2 time(s)", "contactor"),
    (lambda s: s["link"].update(connected=False, last_error="connection refused"),
     "CSMS link", "NoError", "not connected: connection refused", "link"),
    (lambda s: s.update(registration="Pending"),
     "registration", "NoError", "BootNotification Pending", "registration"),
    (lambda s: s["clock"].update(valid=False, source=None),
     "clock", "NoError", "unknown", "clock"),
])
def test_each_failure_names_its_error_code_and_hint(faulty, name, code, detail, hint):
    state = station_state()
    faulty(state)
    found = checks.selftest_checks(state, LOOP_OK, False, {})
    failed = [c for c in found if c["result"] == "fail"]
    assert [c["name"] for c in failed] == [name]
    assert (failed[0]["error_code"], failed[0]["detail"], failed[0]["hint"]) == \
        (code, detail, HINTS[hint])


def test_warnings_do_not_fail():
    state = station_state()
    state["modem"].update(registered=False)
    state["messages"].update(queued=2, set_aside=1)
    found = checks.selftest_checks(state, LOOP_OK, False, {})
    assert [(c["name"], c["result"]) for c in found if c["result"] != "pass"] == \
        [("modem", "warn"), ("journal", "warn")]
    assert by_name(found, "modem")["hint"] == HINTS["modem-network"]
    assert by_name(found, "journal")["detail"] == "2 queued, 1 set aside"
    state["modem"] = None
    assert by_name(checks.selftest_checks(state, None, False, {}), "modem")["result"] == "warn"


@pytest.mark.parametrize("result, verdict, detail, hint", [
    ({"closed_feedback": True, "open_feedback": False, "settle_s": 0.5}, "pass",
     "cycled: closed and opened, the mirror contact followed within 0.5 s", None),
    ({"closed_feedback": True, "open_feedback": True, "settle_s": 0.5}, "fail",
     "stayed closed when commanded open (welded)", "contactor-welded"),
    ({"closed_feedback": False, "open_feedback": False, "settle_s": 0.5}, "fail",
     "did not close when commanded", "contactor-open"),
    ({"error": "DeviceError: coil"}, "fail", "cycle failed: DeviceError: coil", "contactor"),
    ({"skipped": "skipped: EV connected"}, "skipped",
     "skipped: EV connected; commanded open, no fault", None),
    (None, "fail", "cycle failed: no result", "contactor"),
])
def test_contactor_cycle_results(result, verdict, detail, hint):
    actuated = {("contactor", 1): dict(result, device="contactor", connector=1)} if result else {}
    c = by_name(checks.selftest_checks(station_state(), LOOP_OK, True, actuated), "contactor 1")
    assert (c["result"], c["detail"], c["hint"]) == (verdict, detail, hint and HINTS[hint])
    assert c["error_code"] == ("PowerSwitchFailure" if verdict == "fail" else "NoError")


@pytest.mark.parametrize("result, verdict, detail", [
    ({"engaged": True, "released": True}, "pass",
     "cycled: engaged and released, feedback followed"),
    ({"engaged": False, "released": True}, "fail", "did not engage when commanded"),
    ({"engaged": True, "released": False}, "fail", "did not release when commanded"),
    ({"skipped": "skipped: transaction running"}, "skipped",
     "skipped: transaction running; released, no fault"),
])
def test_lock_only_on_a_socket_outlet(result, verdict, detail):
    assert "lock 1" not in [c["name"] for c in checks.selftest_checks(
        station_state(fixed_cable=True), LOOP_OK, True, {("lock", 1): result})]
    found = checks.selftest_checks(station_state(fixed_cable=False), LOOP_OK, True,
                                   {("lock", 1): result})
    lock = by_name(found, "lock 1")
    assert (lock["result"], lock["detail"]) == (verdict, detail)


def test_selftest_result_from_the_firmwares_facts():
    answer = {"ok": True, "actuate": True, "main_loop": LOOP_OK, "state": station_state(),
              "actuated": [{"device": "contactor", "connector": 1, "closed_feedback": False,
                            "open_feedback": False, "settle_s": 0.5}]}
    result = checks.selftest_result(answer)
    assert list(result) == ["ok", "actuate", "checks", "passed"]
    assert result["ok"] is True and result["actuate"] is True and result["passed"] is False
    assert by_name(result["checks"], "contactor 1")["detail"] == "did not close when commanded"
    answer["actuated"][0].update(closed_feedback=True)
    assert checks.selftest_result(answer)["passed"] is True


# --- one device ----------------------------------------------------------------------------------

def test_device_answer_of_a_working_meter():
    state = station_state()
    reply = {"ok": True, "device": "meter", "state": state, "connector": 1,
             "reading": state["connectors"]["1"]["meter"]}
    judged = checks.device_answer(reply, "meter", 1)
    assert "state" not in judged and judged["ok"] is True
    assert judged["reading"] == state["connectors"]["1"]["meter"]
    assert [c["name"] for c in judged["checks"]] == ["meter 1"]


def test_device_answer_of_a_failing_device_is_the_failure():
    state = station_state()
    state["connectors"]["1"].update(meter=None)      # the firmware itself saw no fault
    judged = checks.device_answer({"ok": True, "device": "meter", "state": state}, "meter")
    assert judged == {"ok": False, "device": "meter",
                      "error": "meter 1 (PowerMeterFailure): no reading since start-up",
                      "error_code": "PowerMeterFailure", "hint": HINTS["meter-stale"],
                      "checks": judged["checks"]}
    state["station"]["faults"]["ReaderFailure"] = "VersionReg 0x00"
    judged = checks.device_answer({"ok": False, "error": "rfid (ReaderFailure): VersionReg 0x00",
                                   "error_code": "ReaderFailure", "state": state}, "rfid")
    assert judged["error"] == "card reader (ReaderFailure): VersionReg 0x00"
    assert judged["hint"] == HINTS["rfid"]


def test_device_answer_without_a_state_is_left_alone():
    reply = {"ok": True, "reading": {"energy_wh": 1.0}}
    assert checks.device_answer(reply, "meter") is reply
    refused = {"ok": False, "error": "the firmware is starting: no state published yet"}
    assert checks.device_answer(refused, "modem") is refused
