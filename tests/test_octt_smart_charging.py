"""The OCA test tool's Smart Charging cases for a Charge Point (docs/octt-cases.md,
OCPP 1.6 sections 3.13, 5.5, 5.7, 5.11, 5.16), one test per case id, in
process on a virtual clock; then bad input, persistence, the pilot and the
readings of the spec that ocpp_core/smart_charging documents.
"""


import pytest

from ocpp_core import smart_charging
from ocpp_core.profiles import PROFILES
from ocpp_core.timestamps import format_utc, parse_rfc3339
from tests.support.core_harness import FAST, Harness

TAG = "04A1B2C3"


def register(h):
    """The profile's operations, also while profiles.py does not declare it yet."""
    if smart_charging not in PROFILES:
        for op in smart_charging.operations(h.cp):
            h.cp.rpc.on(op.action, op.handle)


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "data", config=FAST)
    register(harness)
    yield harness
    harness.check_clean()


def booted(h):
    h.boot()
    return h


def charging(h, cid=1):
    booted(h)
    h.plug(cid)
    h.tap(TAG)
    assert h.statuses(cid)[-1] == "Charging"
    return h


def reboot(h):
    h.power_cut()
    h.power_on()
    register(h)
    h.boot()


def at(h, seconds=0):
    return format_utc(h.time.wall() + seconds)


def profile(pid=1, purpose="TxDefaultProfile", stack=0, kind="Absolute", periods=((0, 16),),
            unit="A", start=None, duration=None, **extra):
    schedule = {"chargingRateUnit": unit,
                "chargingSchedulePeriod": [{"startPeriod": s, "limit": float(l)}
                                           for s, l in periods]}
    if start is not None:
        schedule["startSchedule"] = start
    if duration is not None:
        schedule["duration"] = duration
    out = {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
           "chargingProfileKind": kind, "chargingSchedule": schedule}
    out.update(extra)
    return out


def set_profile(h, cid, prof):
    return h.call("SetChargingProfile", {"connectorId": cid, "csChargingProfiles": prof})


def composite(h, cid=1, duration=400, unit=None):
    payload = {"connectorId": cid, "duration": duration}
    if unit:
        payload["chargingRateUnit"] = unit
    return h.call("GetCompositeSchedule", payload)


def periods(answer):
    return [(p["startPeriod"], p["limit"]) for p in
            answer["chargingSchedule"]["chargingSchedulePeriod"]]



# ----------------------------------------------------------------------------- TC_056
def test_tc_056_tx_default_profile(h):
    booted(h)
    assert set_profile(h, 0, profile(start=at(h), periods=((0, 10),))) == {"status": "Accepted"}
    h.plug(1)
    h.tap(TAG)
    assert h.statuses(1)[-1] == "Charging"
    assert h.station.offered[1] == 10.0
    assert periods(composite(h)) == [(0, 10.0)]


# ----------------------------------------------------------------------------- TC_057
def test_tc_057_tx_profile(h):
    charging(h)
    tx = h.payloads("StartTransaction")  # the harness CSMS numbers transactions from 1
    assert tx
    assert set_profile(h, 1, profile(purpose="TxProfile", transactionId=1, start=at(h),
                                     periods=((0, 8),))) == {"status": "Accepted"}
    assert h.station.offered[1] == 8.0
    assert h.statuses(1)[-1] == "Charging"


# ----------------------------------------------------------------------------- TC_058
def test_tc_058_1_tx_profile_without_ongoing_transaction(h):
    booted(h)
    assert set_profile(h, 1, profile(purpose="TxProfile", start=at(h))) == \
        {"status": "Rejected"}
    assert h.cp.smart_charging.profiles == []


def test_tc_058_2_tx_profile_wrong_transaction_id(h):
    charging(h)
    assert set_profile(h, 1, profile(purpose="TxProfile", transactionId=999,
                                     start=at(h))) == {"status": "Rejected"}
    assert h.cp.smart_charging.profiles == []
    assert h.station.offered[1] == 32.0


# ----------------------------------------------------------------------------- TC_059 / 060
def test_tc_059_remote_start_with_charging_profile(h):
    booted(h)
    h.plug(1)
    prof = profile(purpose="TxProfile", kind="Relative", periods=((0, 6), (60, 12)))
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG,
                                             "chargingProfile": prof}) == {"status": "Accepted"}
    assert h.statuses(1)[-1] == "Charging"
    assert h.station.offered[1] == 6.0
    assert [p["purpose"] for p in h.cp.smart_charging.profiles] == ["TxProfile"]
    h.advance(61)
    assert h.station.offered[1] == 12.0
    assert periods(composite(h, duration=100)) == [(0, 12.0)]
    h.tap(TAG)     # the transaction ends: its TxProfile with it
    assert h.cp.smart_charging.profiles == []


def test_tc_060_remote_start_with_charging_profile_rejected(h):
    booted(h)
    h.plug(1)
    prof = profile(purpose="TxDefaultProfile", start=at(h))
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG,
                                             "chargingProfile": prof}) == {"status": "Rejected"}
    assert h.payloads("StartTransaction") == []
    assert h.cp.smart_charging.profiles == []


def test_remote_start_with_an_invalid_tx_profile_is_rejected(h):
    booted(h)
    prof = profile(purpose="TxProfile", kind="Relative", periods=((5, 6),))
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG,
                                             "chargingProfile": prof}) == {"status": "Rejected"}


# ----------------------------------------------------------------------------- TC_066
def test_tc_066_get_composite_schedule(h):
    charging(h)
    now = at(h)
    assert set_profile(h, 0, profile(pid=100, purpose="ChargePointMaxProfile", start=now,
                                     duration=86400, periods=((0, 10),))) == \
        {"status": "Accepted"}
    assert set_profile(h, 0, profile(pid=101, purpose="TxDefaultProfile", start=now,
                                     duration=300, periods=((0, 6), (100, 8), (200, 12)))) == \
        {"status": "Accepted"}
    assert set_profile(h, 1, profile(pid=102, purpose="TxProfile", transactionId=1, start=now,
                                     duration=150, periods=((0, 7), (50, 9)))) == \
        {"status": "Accepted"}
    answer = composite(h, duration=400)
    assert answer["status"] == "Accepted"
    assert answer["connectorId"] == 1
    assert abs(parse_rfc3339(answer["scheduleStart"]) - h.time.wall()) <= 1
    # TxProfile 7/9 until 150, then TxDefault 8 until 200, 12 capped by CPMax 10, then
    # (TxDefault over at 300) the station max capped by CPMax 10.
    assert periods(answer) == [(0, 7.0), (50, 9.0), (150, 8.0), (200, 10.0)]
    assert answer["chargingSchedule"]["duration"] == 400
    w = composite(h, duration=400, unit="W")
    assert periods(w)[0] == (0, 7 * 230 * 3.0)
    assert composite(h, cid=7)["status"] == "Rejected"
    assert periods(composite(h, cid=0)) == [(0, 10.0)]


# ----------------------------------------------------------------------------- TC_067
def test_tc_067_clear_charging_profile(h):
    charging(h)
    assert set_profile(h, 1, profile(pid=5, purpose="TxProfile", start=at(h),
                                     periods=((0, 8),))) == {"status": "Accepted"}
    assert h.station.offered[1] == 8.0
    assert h.call("ClearChargingProfile", {"id": 5}) == {"status": "Accepted"}
    assert h.station.offered[1] == 32.0
    assert h.call("ClearChargingProfile", {"id": 5}) == {"status": "Unknown"}
    set_profile(h, 0, profile(pid=6, stack=1, start=at(h)))
    set_profile(h, 0, profile(pid=7, stack=2, start=at(h)))
    assert h.call("ClearChargingProfile", {"connectorId": 1}) == {"status": "Unknown"}
    assert h.call("ClearChargingProfile", {"chargingProfilePurpose": "TxDefaultProfile",
                                           "stackLevel": 2}) == {"status": "Accepted"}
    assert [p["id"] for p in h.cp.smart_charging.profiles] == [6]
    assert h.call("ClearChargingProfile", {}) == {"status": "Accepted"}
    assert h.cp.smart_charging.profiles == []


# ----------------------------------------------------------------------------- TC_072
def test_tc_072_stacking_charging_profiles(h):
    charging(h)
    now = at(h)
    set_profile(h, 0, profile(pid=1, stack=0, start=now, duration=400,
                              periods=((0, 6), (100, 8), (200, 10))))
    set_profile(h, 0, profile(pid=2, stack=1, start=now, duration=150, periods=((0, 14),)))
    assert periods(composite(h, duration=500)) == [(0, 14.0), (150, 8.0), (200, 10.0),
                                                   (400, 32.0)]
    assert h.station.offered[1] == 14.0
    h.advance(160)
    assert h.station.offered[1] == 8.0


# ----------------------------------------------------------------------------- TC_082
def test_tc_082_tx_default_profile_with_ongoing_transaction(h):
    charging(h)
    assert h.station.offered[1] == 32.0
    assert set_profile(h, 1, profile(start=at(h), periods=((0, 10),))) == {"status": "Accepted"}
    assert h.station.offered[1] == 10.0
    assert h.statuses(1)[-1] == "Charging"


# ----------------------------------------------------------------------------- the pilot
def test_below_6a_suspends_and_resumes_in_the_same_transaction(h):
    charging(h)
    set_profile(h, 1, profile(purpose="TxProfile", kind="Relative",
                              periods=((0, 16), (10, 8), (20, 0), (30, 5.9), (40, 16))))
    offers = []
    statuses = []
    for _ in range(5):
        offers.append(h.station.offered[1])
        statuses.append(h.statuses(1)[-1])
        h.advance(10)
    # Relative to the transaction's start (a few virtual seconds before the profile).
    assert 16.0 in offers and 8.0 in offers and 0.0 in offers
    assert "SuspendedEVSE" in statuses
    h.advance(30)
    assert h.station.offered[1] == 16.0
    assert h.statuses(1)[-1] == "Charging"
    assert len(h.payloads("StartTransaction")) == 1
    assert h.payloads("StopTransaction") == []


def test_the_offer_changes_at_the_period_boundary_within_a_second(h):
    charging(h)
    t0 = h.time.mono
    set_profile(h, 1, profile(purpose="TxProfile", start=at(h), periods=((0, 16), (30, 8))))
    changes = []
    orig = h.station.set_offered_current

    def spy(cid, amps):
        changes.append((h.time.mono - t0, amps))
        orig(cid, amps)
    h.station.set_offered_current = spy
    h.advance(40, step=5.0)
    assert [a for _, a in changes] == [8.0]
    assert 30.0 <= changes[0][0] <= 31.0


def test_a_profile_never_raises_the_offer_above_the_station_max(h):
    charging(h)
    set_profile(h, 1, profile(start=at(h), periods=((0, 63),)))
    assert h.station.offered[1] == 32.0
    assert smart_charging.signalable(52.3) == 51.0
    assert smart_charging.signalable(5.99) == 0.0
    assert smart_charging.signalable(13.7) == 13.0


def test_power_limits_are_converted_with_voltage_and_phases(h):
    charging(h)
    set_profile(h, 1, profile(start=at(h), unit="W", periods=((0, 11040),)))   # 16 A x 3 x 230
    assert h.station.offered[1] == 16.0
    assert periods(composite(h, duration=60, unit="W")) == [(0, 11040.0)]


def test_charge_point_max_profile_caps_a_tx_profile(h):
    charging(h)
    set_profile(h, 0, profile(pid=9, purpose="ChargePointMaxProfile", start=at(h),
                              periods=((0, 12),)))
    set_profile(h, 1, profile(pid=10, purpose="TxProfile", start=at(h), periods=((0, 20),)))
    assert h.station.offered[1] == 12.0


def test_recurring_daily_profile(h):
    booted(h)
    start = at(h, -3600)      # the cycle began an hour ago
    set_profile(h, 0, profile(kind="Recurring", recurrencyKind="Daily", start=start,
                              periods=((0, 10), (7200, 20))))
    assert periods(composite(h, duration=86400)) == [(0, 10.0), (3600, 20.0), (82800, 10.0)]


def test_replacement_by_id_and_by_stack_level(h):
    booted(h)
    set_profile(h, 0, profile(pid=1, stack=3, start=at(h), periods=((0, 10),)))
    set_profile(h, 0, profile(pid=2, stack=3, start=at(h), periods=((0, 11),)))
    assert [p["id"] for p in h.cp.smart_charging.profiles] == [2]
    set_profile(h, 0, profile(pid=2, stack=4, start=at(h), periods=((0, 12),)))
    assert [(p["id"], p["stack"]) for p in h.cp.smart_charging.profiles] == [(2, 4)]


# ----------------------------------------------------------------------------- bad input
BAD = {
    "periods out of order": dict(periods=((0, 10), (200, 8), (100, 6))),
    "overlapping periods": dict(periods=((0, 10), (100, 8), (100, 6))),
    "startPeriod not 0": dict(periods=((10, 10),)),
    "limit -1": dict(periods=((0, -1),)),
    "stackLevel over the max": dict(stack=9),
    "Weekly without startSchedule": dict(kind="Recurring", recurrencyKind="Weekly"),
    "transactionId on TxDefault": dict(transactionId=1),
    "CPMax on a connector": dict(purpose="ChargePointMaxProfile"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_profiles_are_rejected_and_nothing_installed(h, case):
    booted(h)
    extra = dict(BAD[case])
    extra.setdefault("start", None if extra.get("kind") == "Recurring" else at(h))
    assert set_profile(h, 1, profile(pid=3, **extra)) == {"status": "Rejected"}
    assert h.cp.smart_charging.profiles == []
    assert not h.cp.store.exists(smart_charging.STORE_NAME)


def test_too_many_periods_rejected(h):
    booted(h)
    many = tuple((i * 10, 10) for i in range(25))   # ChargingScheduleMaxPeriods 24
    assert set_profile(h, 0, profile(start=at(h), periods=many)) == {"status": "Rejected"}
    assert set_profile(h, 0, profile(start=at(h), periods=many[:24])) == {"status": "Accepted"}


def test_w_where_only_a_is_allowed(h, monkeypatch):
    booted(h)
    key = h.cp.smart_charging.key
    monkeypatch.setattr(h.cp.smart_charging, "key",
                        lambda n: ["Current"] if n == "ChargingScheduleAllowedChargingRateUnit"
                        else key(n))
    assert set_profile(h, 0, profile(start=at(h), unit="W", periods=((0, 5000),))) == \
        {"status": "Rejected"}
    assert h.cp.smart_charging.profiles == []


def test_too_many_profiles_rejected(h):
    booted(h)
    for i in range(8):
        assert set_profile(h, 0, profile(pid=i + 1, stack=i, start=at(h)))["status"] == "Accepted"
    assert set_profile(h, 0, profile(pid=50, stack=8, start=at(h))) == {"status": "Rejected"}
    assert len(h.cp.smart_charging.profiles) == 8


def test_schema_violations_get_a_callerror_and_nothing_installed(h):
    booted(h)
    bad = profile(start=at(h))
    del bad["chargingSchedule"]["chargingSchedulePeriod"]
    answer = h.raw_call("SetChargingProfile", {"connectorId": 0, "csChargingProfiles": bad})
    assert answer[0] == 4
    assert h.cp.smart_charging.profiles == []
    h.csms_errors.clear()


def test_unknown_connector_rejected(h):
    booted(h)
    assert set_profile(h, 5, profile(start=at(h))) == {"status": "Rejected"}


# ----------------------------------------------------------------------------- persistence
def test_profiles_survive_a_power_cut(h):
    booted(h)
    set_profile(h, 0, profile(pid=4, start=at(h), periods=((0, 10),)))
    set_profile(h, 0, profile(pid=5, purpose="ChargePointMaxProfile", start=at(h),
                              periods=((0, 20),)))
    reboot(h)
    assert sorted(p["id"] for p in h.cp.smart_charging.profiles) == [4, 5]
    h.plug(1)
    h.tap(TAG)
    assert h.station.offered[1] == 10.0


def test_tx_profile_does_not_survive_a_power_cut(h):
    charging(h)
    set_profile(h, 1, profile(pid=8, purpose="TxProfile", start=at(h), periods=((0, 8),)))
    reboot(h)
    assert h.cp.smart_charging.profiles == []


def test_corrupt_store_gives_no_profiles_and_a_log_line(h, caplog):
    booted(h)
    set_profile(h, 0, profile(pid=4, start=at(h), periods=((0, 10),)))
    h.power_cut()
    path = h.data_dir + "/" + smart_charging.STORE_NAME
    with open(path, "r+b") as f:
        f.seek(30)
        f.write(b"XXXX")
    h.power_on()
    register(h)
    h.boot()
    assert h.cp.smart_charging.profiles == []
    assert any("corrupt" in r.getMessage().lower() or "charging profile" in r.getMessage()
               for r in caplog.records)
    h.plug(1)
    h.tap(TAG)
    assert h.station.offered[1] == 32.0


def test_a_stored_profile_that_does_not_parse_is_dropped(h, caplog):
    booted(h)
    h.cp.store.save(smart_charging.STORE_NAME, {"items": [{"connector_id": 0,
                                                          "profile": {"x": 1}}, 7]})
    reboot(h)
    assert h.cp.smart_charging.profiles == []
    assert any("ignored" in r.getMessage() for r in caplog.records)


def test_a_clock_jump_from_the_csms_re_evaluates_the_profiles(h):
    charging(h)
    set_profile(h, 1, profile(purpose="TxProfile", start=at(h, 3600), periods=((0, 8),)))
    assert h.station.offered[1] == 32.0
    h.cp.clock.set_from_csms(format_utc(h.time.wall() + 3601))
    h.advance(1)
    assert h.station.offered[1] == 8.0


def test_charge_point_max_profile_is_shared_between_connectors(tmp_path):
    from ocpp_core.station import StationProfile
    h = Harness(tmp_path / "d", profile=StationProfile(number_of_connectors=2), config=FAST)
    register(h)
    booted(h)
    set_profile(h, 0, profile(purpose="ChargePointMaxProfile", start=at(h), periods=((0, 20),)))
    for cid in (1, 2):
        h.plug(cid)
        h.tap(TAG if cid == 1 else "CAFE0002")
    assert h.station.offered == {1: 10.0, 2: 10.0}
    assert periods(composite(h, cid=0, duration=60)) == [(0, 20.0)]
    h.check_clean()
