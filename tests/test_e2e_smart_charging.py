"""The Smart Charging profile end to end (OCPP 1.6 3.13, 5.16): `python -m
firmware` (`--hal mock`, and `--hal emulated` where the RAPI pilot board sees
the new current) as a subprocess against the CSMS built on the `ocpp`
package. A TxDefaultProfile of 10 A, then a TxProfile stepping
16 A -> 8 A -> 0 A -> 16 A: the bench's `offered_a`, the connector status
(Charging, SuspendedEVSE, Charging) and the MeterValues power follow each step,
in one transaction."""

import time

import pytest

from ocpp_core.timestamps import format_utc
from tests.support.firmware_process import Bench, bench_port_of

CP = "CP-TEST-1"
TAG = "04A1B2C3"
STEP = 5     # seconds per period


@pytest.fixture(params=["mock", "emulated"])
def hal(request):
    return request.param


def _status(ocpp_csms, status, timeout=15):
    return ocpp_csms.wait_for("StatusNotification", timeout, predicate=lambda p:
                              p["connectorId"] == 1 and p["status"] == status)


def _power(mv):
    for sv in mv["meterValue"][0]["sampledValue"]:
        if sv.get("measurand") == "Power.Active.Import":
            return float(sv["value"]) * (1000.0 if sv.get("unit") == "kW" else 1.0)
    return None


def _offer(bench, amps, what):
    return bench.wait(lambda s: s["connectors"]["1"]["offered_a"] == amps, timeout=STEP + 3,
                      what=what)


def test_tx_default_then_tx_profile_steps_drive_the_pilot(ocpp_csms, firmware, hal):
    fw = firmware(ocpp_csms.url, hal=hal)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    bench.wait(lambda s: s["ocpp"]["registration"] == "Accepted", what="Accepted")
    for key, value in (("MinimumStatusDuration", "0"), ("MeterValueSampleInterval", "1"),
                       ("MeterValuesSampledData",
                        "Energy.Active.Import.Register,Power.Active.Import")):
        assert ocpp_csms.call(CP, "ChangeConfiguration", {"key": key, "value": value}) == \
            {"status": "Accepted"}
    default = {"chargingProfileId": 1, "stackLevel": 0,
               "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
               "chargingSchedule": {"chargingRateUnit": "A",
                                    "startSchedule": format_utc(time.time() - 60),
                                    "chargingSchedulePeriod": [{"startPeriod": 0,
                                                                "limit": 10.0}]}}
    assert ocpp_csms.call(CP, "SetChargingProfile", {"connectorId": 0,
                                                     "csChargingProfiles": default}) == \
        {"status": "Accepted"}
    bench("meter", connector=1, power_w=22000)     # the EV would take anything offered
    bench("plug", connector=1)
    bench("tap", uid=TAG)
    tx = ocpp_csms.wait_for("StartTransaction")
    _status(ocpp_csms, "Charging")
    _offer(bench, 10.0, "the TxDefaultProfile's 10 A")
    start = time.time() + 2
    tx_profile = {"chargingProfileId": 2, "stackLevel": 0, "transactionId": 1,
                  "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Absolute",
                  "chargingSchedule": {"chargingRateUnit": "A",
                                       "startSchedule": format_utc(start),
                                       "chargingSchedulePeriod": [
                                           {"startPeriod": 0, "limit": 16.0},
                                           {"startPeriod": STEP, "limit": 8.0},
                                           {"startPeriod": 2 * STEP, "limit": 0.0},
                                           {"startPeriod": 3 * STEP, "limit": 16.0}]}}
    assert ocpp_csms.call(CP, "SetChargingProfile", {"connectorId": 1,
                                                     "csChargingProfiles": tx_profile}) == \
        {"status": "Accepted"}
    _offer(bench, 16.0, "16 A")
    assert time.time() >= start - 0.2, "not before the startSchedule"
    _offer(bench, 8.0, "8 A")
    assert abs(time.time() - (start + STEP)) < 1.5, "the change at the period boundary"
    mv = ocpp_csms.wait_for("MeterValues", STEP, predicate=lambda p:
                            _power(p) is not None and abs(_power(p) - 8 * 230 * 3) < 200)
    assert mv["transactionId"] == 1
    _offer(bench, 0.0, "0 A")
    _status(ocpp_csms, "SuspendedEVSE")
    ocpp_csms.wait_for("MeterValues", STEP, predicate=lambda p: _power(p) == 0.0)
    _offer(bench, 16.0, "16 A again")
    _status(ocpp_csms, "Charging")
    ocpp_csms.wait_for("MeterValues", STEP, predicate=lambda p:
                       _power(p) is not None and abs(_power(p) - 16 * 230 * 3) < 300)
    assert [a for _, a, _, _ in ocpp_csms.received].count("StartTransaction") == 1
    assert "StopTransaction" not in [a for _, a, _, _ in ocpp_csms.received]
    assert tx["connectorId"] == 1
    answer = ocpp_csms.call(CP, "GetCompositeSchedule", {"connectorId": 1, "duration": 60})
    assert answer["status"] == "Accepted"
    assert answer["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16.0
