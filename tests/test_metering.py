"""ocpp_core.metering: sampledValue entries (values, units, phases, locations)
checked exactly and against the official schemas; clock-aligned timing."""

import json
import os

import pytest
from jsonschema import Draft4Validator, FormatChecker

from ocpp_core.catalogue import ACTIONS
from ocpp_core.metering import MEASURANDS, MeterSample, energy_register_wh, is_aligned, \
    measurand_supported, next_aligned, parse_measurands, previous_aligned, sampled_values
from ocpp_core.station import StationProfile
from ocpp_core.timestamps import format_utc, parse_rfc3339
from ocpp_core.validation import validate
from tools.gen_catalogue import default_schema_dir

ALL = ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage",
       "Frequency", "Temperature", "SoC", "Current.Offered", "Power.Offered")

FULL_SAMPLE = MeterSample(energy_wh=12345.9, power_w=7360.04, current_a=(16.004, 15.996, 16.5),
                          voltage_v=(230.04, 229.96, 231.0), frequency_hz=50.004,
                          temperature_c=35.26, soc_percent=80.4)


def _schema(name):
    with open(os.path.join(default_schema_dir(), name)) as f:
        return Draft4Validator(json.load(f), format_checker=FormatChecker())


METER_VALUES = _schema("MeterValues.json")
STOP_TRANSACTION = _schema("StopTransaction.json")
TS = "2026-03-01T12:00:00.000Z"


def assert_valid(svs):
    """Valid in MeterValues.req and in StopTransaction.req transactionData, by
    ocpp_core and by jsonschema with the official schemas."""
    mv = {"connectorId": 1, "transactionId": 7, "meterValue": [{"timestamp": TS, "sampledValue": svs}]}
    st = {"transactionId": 7, "timestamp": TS, "meterStop": 12345,
          "transactionData": [{"timestamp": TS, "sampledValue": svs}]}
    validate(ACTIONS["MeterValues"][2], mv)
    validate(ACTIONS["StopTransaction"][2], st)
    METER_VALUES.validate(mv)
    STOP_TRANSACTION.validate(st)


def test_all_measurands_exact():
    svs = sampled_values(FULL_SAMPLE, ALL, "Sample.Periodic", phases=3, offered_current_a=16,
                         nominal_voltage_v=230.0)
    c = "Sample.Periodic"
    assert svs == [
        {"value": "12345", "context": c, "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "7360.0", "context": c, "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "16.00", "context": c, "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        {"value": "16.00", "context": c, "measurand": "Current.Import", "phase": "L2", "unit": "A"},
        {"value": "16.50", "context": c, "measurand": "Current.Import", "phase": "L3", "unit": "A"},
        {"value": "230.0", "context": c, "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
        {"value": "230.0", "context": c, "measurand": "Voltage", "phase": "L2-N", "unit": "V"},
        {"value": "231.0", "context": c, "measurand": "Voltage", "phase": "L3-N", "unit": "V"},
        {"value": "50.00", "context": c, "measurand": "Frequency"},
        {"value": "35.3", "context": c, "measurand": "Temperature", "location": "Body",
         "unit": "Celsius"},
        {"value": "80", "context": c, "measurand": "SoC", "location": "EV", "unit": "Percent"},
        {"value": "16.00", "context": c, "measurand": "Current.Offered", "unit": "A"},
        {"value": "11040.0", "context": c, "measurand": "Power.Offered", "unit": "W"},
    ]
    assert_valid(svs)
    for sv in svs:
        assert "format" not in sv          # Raw is the default
        assert sv.get("location") != "Outlet"  # the default, left out


def test_frequency_has_no_unit_because_stop_transaction_forbids_hertz():
    sv = sampled_values(MeterSample(frequency_hz=49.987), ["Frequency"], "Sample.Clock")
    assert sv == [{"value": "49.99", "context": "Sample.Clock", "measurand": "Frequency"}]
    # the reason: Hertz passes MeterValues.json but not StopTransaction.json
    hertz = [dict(sv[0], unit="Hertz")]
    METER_VALUES.validate({"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": hertz}]})
    assert not STOP_TRANSACTION.is_valid({"transactionId": 1, "timestamp": TS, "meterStop": 0,
                                          "transactionData": [{"timestamp": TS,
                                                               "sampledValue": hertz}]})


def test_missing_measurands_are_left_out():
    assert sampled_values(MeterSample(), ALL, "Sample.Periodic") == []
    svs = sampled_values(MeterSample(energy_wh=10.0), ALL, "Sample.Periodic")
    assert svs == [{"value": "10", "context": "Sample.Periodic",
                    "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
    # a failed meter (energy None) still reports what it has
    svs = sampled_values(MeterSample(energy_wh=None, power_w=0.0), ALL, "Trigger")
    assert svs == [{"value": "0.0", "context": "Trigger", "measurand": "Power.Active.Import",
                    "unit": "W"}]
    # NaN / inf are not readings
    svs = sampled_values(MeterSample(energy_wh=float("nan"), power_w=float("inf"),
                                     current_a=(float("nan"), 3.0, None)), ALL, "Trigger")
    assert svs == [{"value": "3.00", "context": "Trigger", "measurand": "Current.Import",
                    "phase": "L2", "unit": "A"}]
    # measurands not asked for are not reported; unsupported ones are skipped
    svs = sampled_values(FULL_SAMPLE, ["Energy.Active.Export.Register", "RPM", "Power.Factor",
                                       "Voltage"], None, phases=1)
    assert svs == [{"value": "230.0", "measurand": "Voltage", "phase": "L1-N", "unit": "V"}]
    # Current.Offered / Power.Offered need the offered current
    assert sampled_values(FULL_SAMPLE, ["Current.Offered", "Power.Offered"], "Trigger") == []


def test_single_phase_and_short_tuples():
    svs = sampled_values(FULL_SAMPLE, ["Current.Import", "Power.Offered"], "Sample.Periodic",
                         phases=1, offered_current_a=10.0, nominal_voltage_v=230.0)
    assert svs == [
        {"value": "16.00", "context": "Sample.Periodic", "measurand": "Current.Import",
         "phase": "L1", "unit": "A"},
        {"value": "2300.0", "context": "Sample.Periodic", "measurand": "Power.Offered", "unit": "W"},
    ]
    svs = sampled_values(MeterSample(current_a=(6.0,), voltage_v=[229.0, 230.0]),
                         ["Current.Import", "Voltage"], "Sample.Periodic", phases=3)
    assert [(s["phase"], s["value"]) for s in svs] == [("L1", "6.00"), ("L1-N", "229.0"),
                                                       ("L2-N", "230.0")]
    assert_valid(svs)


def test_contexts_order_duplicates_and_csl():
    for ctx in ACTIONS["MeterValues"][2][1]["meterValue"][1][1]["sampledValue"][1][1]["context"][2]:
        svs = sampled_values(FULL_SAMPLE, ALL, ctx, offered_current_a=32)
        assert all(s["context"] == ctx for s in svs)
        assert_valid(svs)
    svs = sampled_values(FULL_SAMPLE, "Power.Active.Import, Energy.Active.Import.Register,"
                                      "Power.Active.Import", "Transaction.Begin")
    assert [s["measurand"] for s in svs] == ["Power.Active.Import",
                                             "Energy.Active.Import.Register"]


def test_value_formatting():
    assert energy_register_wh(999.999) == 999
    assert energy_register_wh(0) == 0
    assert energy_register_wh(-0.5) == -1
    assert energy_register_wh(None) is None
    assert energy_register_wh(float("nan")) is None
    svs = sampled_values(MeterSample(energy_wh=10 ** 9 + 0.7, power_w=-0.04, soc_percent=99.6,
                                     temperature_c=-5.04),
                         ["Energy.Active.Import.Register", "Power.Active.Import", "SoC",
                          "Temperature"], "Sample.Periodic")
    assert [s["value"] for s in svs] == ["1000000000", "0.0", "100", "-5.0"]
    assert_valid(svs)


def test_every_measurand_output_validates():
    # all 1.6 measurands asked at once: only the known ones come out, all valid
    svs = sampled_values(FULL_SAMPLE, MEASURANDS, "Sample.Clock", offered_current_a=6)
    assert len(svs) == 13
    assert_valid(svs)


# --- station support ----------------------------------------------------------------------

def test_measurand_supported():
    profile = StationProfile()
    assert measurand_supported("Energy.Active.Import.Register", profile)
    assert measurand_supported("Power.Offered", profile)
    assert not measurand_supported("SoC", profile)           # a 1.6 measurand, not metered here
    assert not measurand_supported("Bogus", StationProfile(meter_measurands=("Bogus",)))


def test_parse_measurands():
    profile = StationProfile()
    assert parse_measurands("Energy.Active.Import.Register, Voltage", profile) == \
        ("Energy.Active.Import.Register", "Voltage")
    assert parse_measurands("", profile) == ()
    assert parse_measurands("Voltage,SoC", profile) is None
    assert parse_measurands("Voltage,,Frequency", profile) is None
    assert parse_measurands(None, profile) is None


# --- clock-aligned timing -----------------------------------------------------------------

DAY0 = parse_rfc3339("2026-03-01T00:00:00Z")


def at(hms, day=DAY0):
    h, m, s = hms.split(":")
    return day + int(h) * 3600 + int(m) * 60 + float(s)


def test_next_aligned_20s():
    assert format_utc(next_aligned(at("10:15:05"), 20)) == "2026-03-01T10:15:20.000Z"
    assert format_utc(next_aligned(at("10:15:20"), 20)) == "2026-03-01T10:15:40.000Z"
    assert format_utc(next_aligned(at("10:15:45"), 20)) == "2026-03-01T10:16:00.000Z"
    assert next_aligned(at("10:15:19.999"), 20) == at("10:15:20")
    assert isinstance(next_aligned(at("10:15:19.5"), 20), int)


def test_next_aligned_900s():
    assert next_aligned(at("12:00:01"), 900) == at("12:15:00")
    assert next_aligned(at("12:59:59"), 900) == at("13:00:00")
    assert next_aligned(at("12:00:00"), 900) == at("12:15:00")


def test_next_aligned_across_midnight():
    assert format_utc(next_aligned(at("23:59:59"), 900)) == "2026-03-02T00:00:00.000Z"
    assert format_utc(next_aligned(at("23:45:00"), 900)) == "2026-03-02T00:00:00.000Z"
    assert format_utc(next_aligned(at("23:59:59"), 86400)) == "2026-03-02T00:00:00.000Z"
    # longer than a day: midnight only
    assert format_utc(next_aligned(at("03:00:00"), 100000)) == "2026-03-02T00:00:00.000Z"


def test_next_aligned_7s_restarts_at_midnight():
    assert next_aligned(at("00:00:00"), 7) == at("00:00:07")
    assert next_aligned(at("23:59:53"), 7) == at("23:59:54")   # 86394 = 7 * 12342
    assert next_aligned(at("23:59:54"), 7) == at("24:00:00")   # the last interval is 6 s
    assert next_aligned(at("24:00:00"), 7) == at("24:00:07")   # counted again from midnight
    assert next_aligned(at("24:00:03"), 7) == at("24:00:07")


def test_interval_zero_means_none():
    assert next_aligned(at("10:00:00"), 0) is None
    assert next_aligned(at("10:00:00"), -5) is None
    assert next_aligned(at("10:00:00"), None) is None
    assert previous_aligned(at("10:00:00"), 0) is None
    assert is_aligned(at("10:00:00"), 0) is False


def test_is_aligned_and_previous_aligned():
    assert is_aligned(at("10:15:40"), 20)
    assert not is_aligned(at("10:15:41"), 20)
    assert is_aligned(at("10:15:41"), 20, tolerance_s=1.5)
    assert is_aligned(at("10:15:38.9"), 20, tolerance_s=1.5)
    assert is_aligned(at("23:59:54"), 7) and is_aligned(at("24:00:00"), 7)
    assert not is_aligned(at("23:59:57"), 7)
    assert is_aligned(at("23:59:59.5"), 7, tolerance_s=0.5)
    assert previous_aligned(at("23:59:59"), 7) == at("23:59:54")
    assert previous_aligned(at("10:15:40"), 20) == at("10:15:40")
    assert previous_aligned(at("10:29:59"), 900) == at("10:15:00")


@pytest.mark.parametrize("interval", [1, 7, 20, 60, 900, 3600, 86400])
def test_next_aligned_properties(interval):
    t = at("23:40:00") - 3 * interval
    for _ in range(500):
        n = next_aligned(t, interval)
        assert n > t and is_aligned(n, interval)
        assert (n - DAY0) % 86400 % interval == 0 or (n - DAY0) % 86400 == 0
        assert n - t <= interval
        t = n
