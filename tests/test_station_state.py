"""firmware/station_state.py: the one projection of the engine's state that the
bench's status (the bench contract) and the maintenance socket both show."""


from firmware.station_state import FirstSeen, aged, bench_view


def test_bench_view_has_every_field_of_the_contract():
    state = {
        "link": {"connected": True, "since": "2026-01-01T00:00:00.000Z", "_wall": 1.0},
        "registration": "Accepted",
        "messages": {"queued": 2, "set_aside": 0, "in_flight": False},
        "connectors": {
            "1": {"ocpp_status": "Charging", "error_code": "NoError", "ev_state": "C",
                  "transaction": {"transaction_id": 17, "id_tag": "04A1B2C3", "key": "k1"}},
            "2": {"ocpp_status": "Faulted", "error_code": "PowerMeterFailure",
                  "transaction": None},
        },
    }
    assert bench_view(state) == {
        "connectors": {
            "1": {"ocpp_status": "Charging", "error_code": "NoError", "transaction_id": 17,
                  "id_tag": "04A1B2C3", "reservation": None},
            "2": {"ocpp_status": "Faulted", "error_code": "PowerMeterFailure",
                  "transaction_id": None, "id_tag": None, "reservation": None},
        },
        "ocpp": {"connected": True, "registration": "Accepted", "queued_messages": 2},
    }


def test_aged_turns_the_time_markers_into_ages():
    state = {"link": {"connected": True, "_wall": 1000.0},
             "meter": {"energy_wh": 5.0, "_mono": 40.0},
             "faults": [{"error_code": "X", "_mono": 49.5}, {"_mono": None}],
             "down": {"_wall": None}}
    assert aged(state, now_mono=50.0, now_wall=1060.0) == {
        "link": {"connected": True, "for_s": 60.0},
        "meter": {"energy_wh": 5.0, "age_s": 10.0},
        "faults": [{"error_code": "X", "age_s": 0.5}, {}],
        "down": {"for_s": None}}
    assert state["meter"]["_mono"] == 40.0          # a copy: the published state stays


def test_a_reading_published_again_keeps_its_age():
    seen = FirstSeen()
    sample, newer = object(), object()
    assert seen.since("meter", sample, now=10.0) == 10.0
    assert seen.since("meter", sample, now=15.0) == 10.0
    assert seen.since("meter", newer, now=16.0) == 16.0
    assert seen.since("modem", None, now=17.0) is None
    assert seen.since("modem", sample, now=18.0) == 18.0     # one memory per key


def test_the_bench_and_the_maintenance_socket_show_one_projection(tmp_path):
    from firmware.hal_factory import build_hal
    from firmware.main_loop import Firmware
    from tests.support.firmware_process import mock_station_config
    cfg = mock_station_config(tmp_path / "data", "CP-PROJ-1")
    hal = build_hal(cfg)
    try:
        fw = Firmware(cfg, hal)          # built, not started: its first projection is published
        state = fw.maintenance.state
        assert fw.snapshot == bench_view(state)
        assert set(fw.snapshot["connectors"]) == set(state["connectors"]) == {"1"}
        assert fw.snapshot["ocpp"] == {"connected": False, "registration": state["registration"],
                                       "queued_messages": 0}
        c1 = state["connectors"]["1"]
        assert (c1["error_code"], c1["transaction"], c1["locked"]) == ("NoError", None, None)
        assert state["station"]["charge_point_id"] == "CP-PROJ-1"
        assert state["station"]["error_code"] == "NoError"
        fw.cp.fault(0, "ReaderFailure", "no answer")      # the engine changes ...
        fw.publish()
        assert fw.maintenance.state["station"]["error_code"] == "ReaderFailure"  # ... both follow
        assert fw.snapshot == bench_view(fw.maintenance.state)
    finally:
        hal.close()


def test_the_projection_and_diag_status_show_the_charging_limit(tmp_path):
    """Issue 11: `tools.diag status` shows the profiles in force and the
    composite limit of each connector."""
    from firmware.hal_factory import build_hal
    from firmware.main_loop import Firmware
    from tests.support.firmware_process import mock_station_config
    from tools.diag.status import _limit_text
    hal = build_hal(mock_station_config(tmp_path / "data", "CP-LIMIT-1"))
    try:
        fw = Firmware(mock_station_config(tmp_path / "data", "CP-LIMIT-1"), hal)
        assert fw.maintenance.state["connectors"]["1"]["charging_profiles"] == \
            {"ids": [], "limit_a": None}
        assert fw.cp.smart_charging.set_profile({"connectorId": 0, "csChargingProfiles": {
            "chargingProfileId": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}}}) == "Accepted"
        fw.publish()
        limits = fw.maintenance.state["connectors"]["1"]["charging_profiles"]
        assert limits == {"ids": [7], "limit_a": 10.0}
        assert _limit_text(limits) == "10.0 A (profile 7)"
        assert _limit_text({"ids": [], "limit_a": None}) is None
    finally:
        hal.close()
