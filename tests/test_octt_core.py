"""The OCA test tool's Core cases for a Charge Point (docs/octt-cases.md),
one test per case id, in process on a virtual clock. Each asserts the messages
the charge point sends, their fields and their order.

The reference station has a fixed cable (no lock); the cases for a socket
outlet run with StationProfile(fixed_cable=False).
"""

import pytest

from ocpp_core.station import StationProfile
from ocpp_core.timestamps import parse_rfc3339
from tests.support.core_harness import FAST, booted, Harness



def charging(h, tag="04A1B2C3"):
    """Reusable state 'Charging' (plug-in first)."""
    booted(h)
    h.plug(1)
    h.tap(tag)
    assert h.statuses(1)[-1] == "Charging"
    return h


def socket_outlet(tmp_path, **config):
    cfg = dict(FAST)
    cfg.update(config)
    return Harness(tmp_path / "data", profile=StationProfile(fixed_cable=False), config=cfg)


# ----------------------------------------------------------------------------- cold boot
def test_tc_001_cold_boot_rejected_then_accepted(tmp_path):
    h = Harness(tmp_path / "d", config=FAST, boot_answers=[("Rejected", 10)])
    h.heartbeat_interval = 60
    h.connect()
    assert [a for a, _ in h.sent()] == ["BootNotification"]
    h.advance(9.5)
    assert [a for a, _ in h.sent()] == ["BootNotification"], "nothing while Rejected"
    h.advance(1.0)
    actions = [a for a, _ in h.sent()]
    assert actions[:2] == ["BootNotification", "BootNotification"]
    boots = [t for a, p, t in h.csms_calls if a == "BootNotification"]
    assert boots[1] - boots[0] >= 10
    sn = h.payloads("StatusNotification")
    assert [(p["connectorId"], p["status"], p["errorCode"]) for p in sn] == \
        [(0, "Available", "NoError"), (1, "Available", "NoError")]
    m = h.mark()
    h.advance(61)
    assert [a for a, _ in h.sent(since=m) if a != "MeterValues"] == ["Heartbeat"]
    h.advance(60)
    assert [a for a, _ in h.sent(since=m)].count("Heartbeat") == 2
    h.check_clean()


def test_tc_002_cold_boot_pending(tmp_path):
    h = Harness(tmp_path / "d", config=FAST, boot_answers=[("Pending", 10)])
    h.connect()
    answer = h.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"
    assert h.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}) == \
        {"status": "Accepted"}
    h.advance(5)
    assert [a for a, _ in h.sent()] == ["BootNotification"], "only BootNotification while Pending"
    h.advance(6)
    assert [a for a, _ in h.sent()][:4] == ["BootNotification", "BootNotification",
                                            "StatusNotification", "StatusNotification"]
    h.check_clean()


# ----------------------------------------------------------------------------- sessions
def test_tc_003_regular_charging_session_plugin_first(h):
    booted(h)
    m = h.mark()
    h.plug(1)
    assert h.sent(since=m) == [("StatusNotification", h.payloads("StatusNotification")[-1])]
    assert h.statuses(1, since=m) == ["Preparing"]
    assert h.station.offered.get(1, 0) == 0, "no current offered before authorization"
    h.tap("04A1B2C3")
    actions = [a for a, _ in h.sent(since=m)]
    assert actions == ["StatusNotification", "Authorize", "StartTransaction", "StatusNotification"]
    start = h.payloads("StartTransaction")[-1]
    assert start["connectorId"] == 1 and start["idTag"] == "04A1B2C3"
    assert start["meterStart"] == 1000
    assert start["timestamp"].endswith("Z") and len(start["timestamp"]) == 24
    assert h.statuses(1)[-1] == "Charging"
    assert h.station.contactor[1] is True


def test_tc_004_1_identification_first(h):
    booted(h)
    m = h.mark()
    h.tap("04A1B2C3")
    assert [a for a, _ in h.sent(since=m)] == ["Authorize", "StatusNotification"]
    assert h.statuses(1, since=m) == ["Preparing"]
    h.plug(1)
    assert [a for a, _ in h.sent(since=m)][2:] == ["StartTransaction", "StatusNotification"]
    assert h.statuses(1)[-1] == "Charging"


def test_tc_004_2_identification_first_connection_timeout(h):
    booted(h)
    h.tap("04A1B2C3")
    assert h.statuses(1)[-1] == "Preparing"
    h.advance(59)
    assert h.statuses(1)[-1] == "Preparing"
    h.advance(2)
    assert h.statuses(1)[-1] == "Available"
    assert h.payloads("StartTransaction") == []
    h.plug(1)
    assert h.payloads("StartTransaction") == [], "the authorization has expired"


def test_tc_005_2_ev_side_disconnected_fixed_cable(h):
    charging(h)
    m = h.mark()
    h.unplug(1)
    stop = h.payloads("StopTransaction", since=m)
    assert len(stop) == 1 and stop[0]["reason"] == "EVDisconnected"
    assert h.statuses(1, since=m) == ["Available"]
    assert h.station.contactor[1] is False
    assert h.call("UnlockConnector", {"connectorId": 1}) == {"status": "NotSupported"}


def test_tc_005_1_ev_side_disconnected_socket_unlocks(tmp_path):
    h = socket_outlet(tmp_path, UnlockConnectorOnEVSideDisconnect=True)
    charging(h)
    assert ("lock", 1, True) in h.station.commands
    h.unplug(1)
    assert h.payloads("StopTransaction")[-1]["reason"] == "EVDisconnected"
    assert h.station.commands[-1] == ("lock", 1, False)
    assert h.statuses(1)[-1] == "Available"
    h.check_clean()


def test_tc_005_3_ev_side_disconnect_does_not_stop(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, StopTransactionOnEVSideDisconnect=False))
    charging(h)
    h.unplug(1)
    assert h.payloads("StopTransaction") == []
    assert h.statuses(1)[-1] == "SuspendedEV"
    assert h.station.contactor[1] is False
    assert h.call("RemoteStopTransaction", {"transactionId": 1}) == {"status": "Accepted"}
    assert h.payloads("StopTransaction")[-1]["reason"] == "Remote"
    assert h.statuses(1)[-1] == "Available"
    h.check_clean()


def test_tc_068_stop_with_same_id_tag(h):
    charging(h, "04A1B2C3")
    m = h.mark()
    h.tap("04A1B2C3")
    assert [a for a, _ in h.sent(since=m)] == ["StopTransaction", "StatusNotification"]
    stop = h.payloads("StopTransaction")[-1]
    assert stop["reason"] == "Local" and stop["idTag"] == "04A1B2C3"
    assert stop["transactionId"] == 1
    assert h.statuses(1)[-1] == "Finishing"
    h.unplug(1)
    assert h.statuses(1)[-1] == "Available"


def test_tc_069_stop_with_same_parent_id_tag(h):
    h.id_tags = {"AAAA0001": {"status": "Accepted", "parentIdTag": "FLEET"},
                 "BBBB0002": {"status": "Accepted", "parentIdTag": "FLEET"}}
    charging(h, "AAAA0001")
    m = h.mark()
    h.tap("BBBB0002")
    assert [a for a, _ in h.sent(since=m)] == ["Authorize", "StopTransaction",
                                                "StatusNotification"]
    stop = h.payloads("StopTransaction")[-1]
    assert stop["idTag"] == "BBBB0002" and stop["reason"] == "Local"


def test_other_card_of_other_group_does_not_stop(h):
    h.id_tags = {"AAAA0001": {"status": "Accepted", "parentIdTag": "FLEET"},
                 "CCCC0003": {"status": "Accepted", "parentIdTag": "OTHER"}}
    charging(h, "AAAA0001")
    h.tap("CCCC0003")
    assert h.payloads("StopTransaction") == []
    assert h.statuses(1)[-1] == "Charging"


# ----------------------------------------------------------------------------- cache
def cached(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, AuthorizationCacheEnabled=True,
                                            LocalPreAuthorize=True))
    booted(h)
    h.tap("04A1B2C3")                       # learns the tag from Authorize.conf
    h.advance(61)                           # ConnectionTimeOut: back to Available
    assert h.statuses(1)[-1] == "Available"
    return h


def test_tc_007_1_regular_start_cached_id(tmp_path):
    h = cached(tmp_path)
    m = h.mark()
    h.tap("04A1B2C3")
    assert h.statuses(1, since=m) == ["Preparing"]
    h.plug(1)
    assert [a for a, _ in h.sent(since=m)] == ["StatusNotification", "StartTransaction",
                                                "StatusNotification"]
    assert h.statuses(1)[-1] == "Charging"
    h.check_clean()


def test_tc_007_2_remote_start_cached_id(tmp_path):
    h = cached(tmp_path)
    h.plug(1)
    m = h.mark()
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": "04A1B2C3"}) == \
        {"status": "Accepted"}
    assert [a for a, _ in h.sent(since=m)] == ["StartTransaction", "StatusNotification"]
    h.check_clean()


def test_tc_061_clear_authorization_cache(tmp_path):
    h = cached(tmp_path)
    assert h.call("ClearCache", {}) == {"status": "Accepted"}
    m = h.mark()
    h.tap("04A1B2C3")
    assert [a for a, _ in h.sent(since=m)][0] == "Authorize", "cache emptied: must ask again"
    h.check_clean()


# ----------------------------------------------------------------------------- remote
def test_tc_010_remote_start_cable_plugged_first(h):
    booted(h)
    h.plug(1)
    m = h.mark()
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": "04A1B2C3"}) == \
        {"status": "Accepted"}
    assert [a for a, _ in h.sent(since=m)] == ["Authorize", "StartTransaction",
                                                "StatusNotification"]
    assert h.statuses(1)[-1] == "Charging"


def test_tc_010_remote_start_without_authorize_when_not_required(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, AuthorizeRemoteTxRequests=False))
    booted(h)
    h.plug(1)
    m = h.mark()
    h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": "04A1B2C3"})
    assert [a for a, _ in h.sent(since=m)] == ["StartTransaction", "StatusNotification"]
    h.check_clean()


def test_tc_011_1_remote_start_first(h):
    booted(h)
    m = h.mark()
    h.call("RemoteStartTransaction", {"idTag": "04A1B2C3"})
    assert [a for a, _ in h.sent(since=m)] == ["StatusNotification", "Authorize"] or \
        [a for a, _ in h.sent(since=m)] == ["Authorize", "StatusNotification"]
    assert h.statuses(1)[-1] == "Preparing"
    h.plug(1)
    assert h.payloads("StartTransaction")[-1]["connectorId"] == 1
    assert h.statuses(1)[-1] == "Charging"


def test_tc_011_2_remote_start_time_out(h):
    booted(h)
    h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": "04A1B2C3"})
    assert h.statuses(1)[-1] == "Preparing"
    h.advance(61)
    assert h.statuses(1)[-1] == "Available"
    assert h.payloads("StartTransaction") == []


def test_tc_012_remote_stop(h):
    charging(h)
    m = h.mark()
    assert h.call("RemoteStopTransaction", {"transactionId": 1}) == {"status": "Accepted"}
    assert [a for a, _ in h.sent(since=m)] == ["StopTransaction", "StatusNotification"]
    assert h.payloads("StopTransaction")[-1]["reason"] == "Remote"
    assert h.statuses(1)[-1] == "Finishing"
    h.unplug(1)
    assert h.statuses(1)[-1] == "Available"


# ----------------------------------------------------------------------------- reset
def reboot(h):
    """What the firmware does on restart(): a new process on the same data."""
    h.power_cut()
    h.power_on()
    h.boot()


def test_tc_013_hard_reset_without_transaction(h):
    booted(h)
    assert h.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) == \
        {"status": "Accepted"}
    assert h.statuses(1)[-1] == "Unavailable"
    assert h.call("Reset", {"type": "Hard"}) == {"status": "Accepted"}
    h.advance(0.1)
    assert h.station.restarts == ["Hard"]
    m = h.mark()
    reboot(h)
    sn = h.payloads("StatusNotification", since=m)
    assert {(p["connectorId"], p["status"]) for p in sn} == {(0, "Available"), (1, "Unavailable")}
    assert h.call("ChangeAvailability", {"connectorId": 1, "type": "Operative"}) == \
        {"status": "Accepted"}
    assert h.statuses(1)[-1] == "Available"


def test_tc_014_soft_reset_without_transaction(h):
    booted(h)
    m = h.mark()
    assert h.call("Reset", {"type": "Soft"}) == {"status": "Accepted"}
    h.advance(0.1)
    assert h.station.restarts == ["Soft"]
    assert h.sent(since=m) == []


@pytest.mark.parametrize("kind,reason", [("Hard", "HardReset"), ("Soft", "SoftReset")])
def test_tc_015_016_reset_with_transaction(h, kind, reason):
    charging(h)
    h.advance(30)
    m = h.mark()
    assert h.call("Reset", {"type": kind}) == {"status": "Accepted"}
    h.advance(0.1)
    stop = h.payloads("StopTransaction", since=m)
    assert len(stop) == 1 and stop[0]["reason"] == reason and stop[0]["transactionId"] == 1
    assert stop[0]["meterStop"] > 1000
    assert h.station.restarts == [kind]
    assert h.station.contactor[1] is False
    m = h.mark()
    reboot(h)
    assert h.payloads("StopTransaction", since=m) == [], "never stopped twice"
    assert h.statuses(1, since=m)[0] in ("Finishing", "Preparing")


# ----------------------------------------------------------------------------- unlock
def test_tc_017_2_unlock_no_session_fixed_cable(h):
    booted(h)
    assert h.call("UnlockConnector", {"connectorId": 1}) == {"status": "NotSupported"}


def test_tc_018_2_unlock_with_session_fixed_cable(h):
    charging(h)
    assert h.call("UnlockConnector", {"connectorId": 1}) == {"status": "NotSupported"}
    assert h.payloads("StopTransaction") == []
    assert h.statuses(1)[-1] == "Charging"


def test_tc_017_1_unlock_no_session_socket(tmp_path):
    h = socket_outlet(tmp_path)
    booted(h)
    assert h.call("UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
    h.check_clean()


def test_tc_018_1_unlock_with_session_socket(tmp_path):
    h = socket_outlet(tmp_path)
    charging(h)
    m = h.mark()
    assert h.call("UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
    assert [a for a, _ in h.sent(since=m)] == ["StopTransaction", "StatusNotification"]
    assert h.payloads("StopTransaction")[-1]["reason"] == "UnlockCommand"
    assert h.statuses(1)[-1] == "Finishing"
    h.unplug(1)
    assert h.statuses(1)[-1] == "Available"
    h.check_clean()


def test_tc_030_unlock_failure(tmp_path):
    h = socket_outlet(tmp_path)
    charging(h)
    h.station.lock_works = False
    box = []
    h.csms.call("UnlockConnector", {"connectorId": 1}, on_result=box.append)
    h.pump()
    assert box == [], "the answer waits for the lock"
    h.advance(6)
    assert box == [{"status": "UnlockFailed"}]
    h.check_clean()


def test_tc_031_unlock_unknown_connector(tmp_path):
    """On a socket outlet (a lock exists), so that NotSupported can only come
    from the unknown connector id (5.17: "or ConnectorId is unknown")."""
    h = socket_outlet(tmp_path)
    booted(h)
    assert h.call("UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
    assert h.call("UnlockConnector", {"connectorId": 2}) == {"status": "NotSupported"}
    h.check_clean()


# ----------------------------------------------------------------------------- configuration
CORE_KEYS = {"AuthorizeRemoteTxRequests", "ClockAlignedDataInterval", "ConnectionTimeOut",
             "ConnectorPhaseRotation", "GetConfigurationMaxKeys", "HeartbeatInterval",
             "LocalAuthorizeOffline", "LocalPreAuthorize", "MeterValuesAlignedData",
             "MeterValuesSampledData", "MeterValueSampleInterval", "NumberOfConnectors",
             "ResetRetries", "StopTransactionOnEVSideDisconnect", "StopTransactionOnInvalidId",
             "StopTxnAlignedData", "StopTxnSampledData", "SupportedFeatureProfiles",
             "TransactionMessageAttempts", "TransactionMessageRetryInterval",
             "UnlockConnectorOnEVSideDisconnect"}


def test_tc_019_retrieve_configuration(h):
    booted(h)
    answer = h.call("GetConfiguration", {})
    keys = {k["key"]: k for k in answer["configurationKey"]}
    assert CORE_KEYS <= set(keys)
    assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True,
                                          "value": "1"}
    assert keys["SupportedFeatureProfiles"]["value"].split(",")[0] == "Core"
    assert keys["MeterValueSampleInterval"]["value"] == "10"
    assert "unknownKey" not in answer


def test_tc_021_change_configuration(h):
    booted(h)
    assert h.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "15"}) == \
        {"status": "Accepted"}
    answer = h.call("GetConfiguration", {"key": ["MeterValueSampleInterval", "Nope"]})
    assert answer["configurationKey"] == [{"key": "MeterValueSampleInterval", "readonly": False,
                                           "value": "15"}]
    assert answer["unknownKey"] == ["Nope"]


def test_tc_040_1_change_configuration_not_supported_key(h):
    booted(h)
    assert h.call("ChangeConfiguration", {"key": "Testing", "value": "true"}) == \
        {"status": "NotSupported"}


def test_tc_040_2_change_configuration_invalid_value(h):
    booted(h)
    for key, value in [("MeterValueSampleInterval", "-1"), ("HeartbeatInterval", "abc"),
                       ("LocalPreAuthorize", "yes"), ("MeterValuesSampledData", "Foo.Bar"),
                       ("NumberOfConnectors", "2")]:
        assert h.call("ChangeConfiguration", {"key": key, "value": value}) == \
            {"status": "Rejected"}, key


def test_heartbeat_interval_change_applies_at_once(h):
    booted(h)
    h.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "20"})
    m = h.mark()
    h.advance(41)
    assert [a for a, _ in h.sent(since=m) if a != "MeterValues"] == ["Heartbeat", "Heartbeat"]


# ----------------------------------------------------------------------------- meter values
def test_tc_070_sampled_meter_values(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, ClockAlignedDataInterval=0,
                                            MeterValueSampleInterval=10))
    charging(h)
    m = h.mark()
    h.advance(35)
    mv = h.payloads("MeterValues", since=m)
    assert len(mv) == 3
    times = [parse_rfc3339(p["meterValue"][0]["timestamp"]) for p in mv]
    assert [round(b - a, 3) for a, b in zip(times, times[1:])] == [10.0, 10.0]
    for p in mv:
        assert p["connectorId"] == 1 and p["transactionId"] == 1
        (sv,) = p["meterValue"][0]["sampledValue"]
        assert sv["measurand"] == "Energy.Active.Import.Register"
        assert sv["context"] == "Sample.Periodic" and sv["unit"] == "Wh"
        assert "location" not in sv or sv["location"] != "EV"
    energies = [int(p["meterValue"][0]["sampledValue"][0]["value"]) for p in mv]
    assert energies == sorted(energies) and energies[-1] > energies[0]
    h.check_clean()


def test_tc_071_clock_aligned_meter_values(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, ClockAlignedDataInterval=20,
                                            MeterValueSampleInterval=0))
    booted(h)
    m = h.mark()
    h.advance(65)
    mv = h.payloads("MeterValues", since=m)
    assert len(mv) >= 3
    for p in mv:
        ts = p["meterValue"][0]["timestamp"]
        assert ts[17:] in ("00.000Z", "20.000Z", "40.000Z"), ts
        assert p["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
        assert "transactionId" not in p
    h.check_clean()


def test_stop_transaction_carries_transaction_data(h):
    charging(h)
    h.advance(25)
    h.tap("04A1B2C3")
    stop = h.payloads("StopTransaction")[-1]
    contexts = [mv["sampledValue"][0]["context"] for mv in stop["transactionData"]]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    assert "Sample.Periodic" in contexts
    assert stop["meterStop"] > 1000


def test_stop_transaction_without_samples_has_no_transaction_data(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, StopTxnSampledData=[],
                                            StopTxnAlignedData=[]))
    charging(h)
    h.tap("04A1B2C3")
    assert "transactionData" not in h.payloads("StopTransaction")[-1]
    h.check_clean()


# ----------------------------------------------------------------------------- non-happy
def test_tc_023_4_start_local_authorize_invalid(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, LocalPreAuthorize=True))
    h.id_tags = {"BAD00001": {"status": "Invalid"}}
    booted(h)
    m = h.mark()
    h.tap("BAD00001")
    assert [a for a, _ in h.sent(since=m)] == ["Authorize"]
    h.plug(1)
    assert h.statuses(1)[-1] == "Preparing"
    assert h.payloads("StartTransaction") == []
    assert h.station.offered.get(1, 0) == 0
    h.check_clean()


def test_tc_023_5_start_remote_authorize_invalid(h):
    h.id_tags = {"BAD00001": {"status": "Blocked"}}
    booted(h)
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": "BAD00001"}) == \
        {"status": "Accepted"}
    assert h.payloads("StartTransaction") == []
    assert h.statuses(1)[-1] == "Available"


def test_tc_024_start_lock_failure(tmp_path):
    h = socket_outlet(tmp_path)
    h.station.lock_works = False
    booted(h)
    h.tap("04A1B2C3")
    h.plug(1)
    h.advance(6)
    sn = h.payloads("StatusNotification")[-1]
    assert (sn["status"], sn["errorCode"]) == ("Faulted", "ConnectorLockFailure")
    assert h.payloads("StartTransaction") == []
    assert h.station.offered.get(1, 0) == 0
    h.check_clean()


def test_tc_026_remote_start_rejected(h):
    charging(h)
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": "OTHER001"}) == \
        {"status": "Rejected"}


def test_tc_027_remote_start_connector_zero(h):
    booted(h)
    assert h.call("RemoteStartTransaction", {"connectorId": 0, "idTag": "04A1B2C3"}) == \
        {"status": "Rejected"}


def test_tc_028_remote_stop_rejected(h):
    charging(h)
    assert h.call("RemoteStopTransaction", {"transactionId": 999}) == {"status": "Rejected"}
    assert h.payloads("StopTransaction") == []


# ----------------------------------------------------------------------------- availability
def test_change_availability_scheduled_during_transaction(h):
    charging(h)
    assert h.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) == \
        {"status": "Scheduled"}
    assert h.statuses(1)[-1] == "Charging"
    m = h.mark()
    h.tap("04A1B2C3")
    assert h.statuses(1, since=m) == ["Unavailable"], "straight to Unavailable, never Available"


def test_change_availability_unknown_connector_rejected(h):
    booted(h)
    assert h.call("ChangeAvailability", {"connectorId": 7, "type": "Inoperative"}) == \
        {"status": "Rejected"}


# ----------------------------------------------------------------------------- power failure
def test_tc_032_2_power_loss_stops_after_reboot(h):
    charging(h)
    h.advance(45)
    meter_before = int(h.energy_wh[1])
    h.power_cut()
    h.time.mono += 30
    m = h.mark()
    h.power_on()
    h.boot()
    stops = h.payloads("StopTransaction", since=m)
    assert len(stops) == 1
    stop = stops[0]
    assert stop["reason"] == "PowerLoss" and stop["transactionId"] == 1
    assert abs(stop["meterStop"] - meter_before) <= 25, "the last persisted reading"
    assert h.statuses(1, since=m)[0] == "Finishing"
    m = h.mark()
    reboot(h)
    assert h.payloads("StopTransaction", since=m) == [], "never stopped twice"


def test_tc_034_power_failure_with_unavailable_status(h):
    booted(h)
    assert h.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}) == \
        {"status": "Accepted"}
    assert h.statuses(0)[-1] == "Unavailable" and h.statuses(1)[-1] == "Unavailable"
    m = h.mark()
    h.power_cut()
    h.power_on()
    h.boot()
    assert sorted((p["connectorId"], p["status"]) for p in
                  h.payloads("StatusNotification", since=m)) == [(0, "Unavailable"),
                                                                 (1, "Unavailable")]
    h.call("ChangeAvailability", {"connectorId": 0, "type": "Operative"})
    assert h.statuses(0)[-1] == "Available" and h.statuses(1)[-1] == "Available"


# ----------------------------------------------------------------------------- offline
def test_tc_036_connection_loss_during_transaction(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, ClockAlignedDataInterval=0))
    charging(h)
    h.disconnect()
    h.advance(35)
    assert h.station.contactor[1] is True, "charging goes on offline"
    m = h.mark()
    h.connect()
    h.advance(0.5)
    mv = h.payloads("MeterValues", since=m)
    assert len(mv) >= 3
    times = [parse_rfc3339(p["meterValue"][0]["timestamp"]) for p in mv]
    assert times == sorted(times)
    assert [round(b - a, 3) for a, b in zip(times, times[1:])] == [10.0] * (len(times) - 1)
    assert all(p["transactionId"] == 1 for p in mv)
    h.check_clean()


def test_tc_037_1_offline_start_valid_id_tag(h):
    booted(h)
    h.disconnect()
    h.tap("04A1B2C3")
    h.plug(1)
    assert h.station.contactor[1] is True, "LocalAuthorizeOffline/AllowOfflineTxForUnknownId"
    m = h.mark()
    h.connect()
    h.advance(0.5)
    actions = [a for a, _ in h.sent(since=m)]
    assert actions[0] == "StartTransaction"
    assert actions.index("StartTransaction") < actions.index("StatusNotification")
    assert h.statuses(1)[-1] == "Charging"


@pytest.mark.parametrize("stop_on_invalid", [False, True])
def test_tc_037_2_3_offline_start_invalid_id_tag(tmp_path, stop_on_invalid):
    h = Harness(tmp_path / "d", config=dict(FAST, StopTransactionOnInvalidId=stop_on_invalid,
                                            MaxEnergyOnInvalidId=500))
    h.id_tags = {"BAD00001": {"status": "Invalid"}}
    booted(h)
    h.disconnect()
    h.tap("BAD00001")
    h.plug(1)
    assert h.station.contactor[1] is True
    h.connect()
    h.advance(0.5)
    if stop_on_invalid:
        stop = h.payloads("StopTransaction")[-1]
        assert stop["reason"] == "DeAuthorized"
        assert h.station.contactor[1] is False
    else:
        assert h.payloads("StopTransaction") == []
        assert h.statuses(1)[-1] == "Charging"
        h.advance(400)            # 7.4 kW: 500 Wh take about 4 minutes
        assert h.statuses(1)[-1] == "SuspendedEVSE"
        assert h.station.contactor[1] is False
    h.check_clean()


def test_tc_038_offline_stop(h):
    charging(h)
    h.disconnect()
    h.advance(5)
    h.tap("04A1B2C3")
    assert h.station.contactor[1] is False
    m = h.mark()
    h.connect()
    h.advance(0.5)
    stop = h.payloads("StopTransaction", since=m)
    assert len(stop) == 1 and stop[0]["reason"] == "Local" and stop[0]["transactionId"] == 1
    assert h.statuses(1)[-1] == "Finishing"


def test_tc_039_offline_transaction(h):
    booted(h)
    h.disconnect()
    h.plug(1)
    h.tap("04A1B2C3")
    h.advance(30)
    h.tap("04A1B2C3")
    h.unplug(1)
    m = h.mark()
    h.connect()
    h.advance(1)
    actions = [a for a, _ in h.sent(since=m) if a != "StatusNotification"]
    assert actions[0] == "StartTransaction" and actions[-1] == "StopTransaction"
    assert set(actions[1:-1]) <= {"MeterValues"}
    stop = h.payloads("StopTransaction", since=m)[0]
    assert stop["transactionId"] == 1, "the real id from StartTransaction.conf, no placeholder"
    assert all(p["transactionId"] == 1 for p in h.payloads("MeterValues", since=m))


# ----------------------------------------------------------------------------- retries
def test_transaction_message_retries_after_call_error(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, TransactionMessageAttempts=3,
                                            TransactionMessageRetryInterval=5))
    charging(h)
    h.call_errors["StopTransaction"] = "InternalError"
    h.tap("04A1B2C3")
    h.advance(4)
    assert len(h.payloads("StopTransaction")) == 1
    h.advance(2)       # first retry after 5 s (interval x 1)
    assert len(h.payloads("StopTransaction")) == 2
    del h.call_errors["StopTransaction"]
    h.advance(11)      # second retry after 10 s (interval x 2)
    assert len(h.payloads("StopTransaction")) == 3
    h.advance(60)
    assert len(h.payloads("StopTransaction")) == 3, "delivered: no more attempts"
    h.csms_errors.clear()


def test_transaction_message_set_aside_after_attempts(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, TransactionMessageAttempts=1))
    charging(h)
    h.call_errors["StopTransaction"] = "InternalError"
    h.tap("04A1B2C3")
    h.advance(60)
    assert len(h.payloads("StopTransaction")) == 1
    assert h.cp.journal.set_aside_count() == 1
    del h.call_errors["StopTransaction"]
    h.advance(60)
    assert len(h.payloads("StopTransaction")) == 1
    h.csms_errors.clear()


# ----------------------------------------------------------------------------- faults
def test_tc_041_fault_behavior(h):
    charging(h)
    m = h.mark()
    h.cp.fault(1, "PowerSwitchFailure", "contactor welded")
    h.pump()
    assert h.station.contactor[1] is False
    stop = h.payloads("StopTransaction", since=m)
    assert len(stop) == 1 and stop[0]["reason"] == "EmergencyStop"
    sn = h.payloads("StatusNotification", since=m)[-1]
    assert (sn["status"], sn["errorCode"], sn["info"]) == ("Faulted", "PowerSwitchFailure",
                                                           "contactor welded")
    h.cp.fault_cleared(1, "PowerSwitchFailure")
    h.pump()
    assert h.statuses(1)[-1] == "Finishing"


def test_meter_failure_faults_and_recovers(h):
    charging(h)
    h.cp.fault(1, "PowerMeterFailure", "meter does not answer")
    h.pump()
    sn = h.payloads("StatusNotification")[-1]
    assert (sn["status"], sn["errorCode"]) == ("Faulted", "PowerMeterFailure")
    assert h.payloads("StopTransaction")[-1]["reason"] == "Other"
    h.advance(2)    # the meter answers again
    assert h.statuses(1)[-1] == "Finishing"


def test_reader_failure_is_a_warning_on_connector_0(h):
    booted(h)
    h.cp.fault(0, "ReaderFailure", "RFID reader does not answer")
    h.pump()
    sn = h.payloads("StatusNotification")[-1]
    assert (sn["connectorId"], sn["status"], sn["errorCode"]) == (0, "Available", "ReaderFailure")


def test_minimum_status_duration_suppresses_short_states(tmp_path):
    h = Harness(tmp_path / "d", config={"MinimumStatusDuration": 2})
    booted(h)
    h.advance(3)
    m = h.mark()
    h.plug(1)
    h.advance(1)
    h.unplug(1)
    h.advance(3)
    assert h.statuses(1, since=m) == [], "Preparing held 1 s < 2 s: never reported"
    h.plug(1)
    h.advance(3)
    assert h.statuses(1, since=m) == ["Preparing"]
    h.check_clean()


# ----------------------------------------------------------------------------- data transfer
def test_tc_062_data_transfer_to_charge_point(h):
    booted(h)
    assert h.call("DataTransfer", {"vendorId": "com.example", "messageId": "x"}) == \
        {"status": "UnknownVendorId"}


# One valid request of every operation the CSMS may call on this station.
CSMS_CALLS = {
    "ChangeAvailability": {"connectorId": 1, "type": "Operative"},
    "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "300"},
    "ClearCache": {},
    "DataTransfer": {"vendorId": "v"},
    "GetConfiguration": {"key": ["Nope"]},
    "RemoteStartTransaction": {"idTag": "04A1B2C3", "connectorId": 1},
    "RemoteStopTransaction": {"transactionId": 99},
    "UnlockConnector": {"connectorId": 1},
    "GetLocalListVersion": {},
    "SendLocalList": {"listVersion": 1, "updateType": "Full"},
    "TriggerMessage": {"requestedMessage": "StatusNotification"},
    "ReserveNow": {"connectorId": 1, "expiryDate": "2027-01-01T00:00:00Z", "idTag": "R1",
                   "reservationId": 1},
    "CancelReservation": {"reservationId": 99},
    "SetChargingProfile": {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": {
            "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0,
                                                                "limit": 16.0}]}}},
    "ClearChargingProfile": {"id": 99},
    "GetCompositeSchedule": {"connectorId": 1, "duration": 60},
    "UpdateFirmware": {"location": "http://127.0.0.1:9/fw.img",
                       "retrieveDate": "2099-01-01T00:00:00Z"},
    "GetDiagnostics": {"location": "ftp://diag.example/"},
    "InstallCertificate": {"certificateType": "CentralSystemRootCertificate",
                           "certificate": "not a PEM"},
    "GetInstalledCertificateIds": {"certificateType": "ManufacturerRootCertificate"},
    "DeleteCertificate": {"certificateHashData": {
        "hashAlgorithm": "SHA256", "issuerNameHash": "00", "issuerKeyHash": "00",
        "serialNumber": "01"}},
    "CertificateSigned": {"certificateChain": "not a PEM"},
    "ExtendedTriggerMessage": {"requestedMessage": "Heartbeat"},
    "GetLog": {"logType": "SecurityLog", "requestId": 1,
               "log": {"remoteLocation": "ftp://diag.example/"}},
    "SignedUpdateFirmware": {"requestId": 1, "firmware": {
        "location": "http://127.0.0.1:9/fw.img", "retrieveDateTime": "2099-01-01T00:00:00Z",
        "signingCertificate": "not a PEM", "signature": "AA=="}},
    "Reset": {"type": "Soft"},          # last: it restarts the station
}


def test_no_call_is_answered_with_an_error(h):
    """Every operation the CSMS may send is answered with a CALLRESULT; a new
    operation registered without an entry in CSMS_CALLS fails this test."""
    from ocpp_core.catalogue import ACTIONS
    booted(h)
    registered = {a for a in ACTIONS if h.cp.rpc.supports(a)}
    assert registered == set(CSMS_CALLS)
    for action, payload in CSMS_CALLS.items():
        answer = h.call(action, payload)
        assert isinstance(answer, dict), (action, answer)


def test_fault_listeners_hear_each_fault_once(h):
    """The engine tells observers (the maintenance tool's fault log) about real
    changes only: a repeated report of the same fault is not a new fault."""
    booted(h)
    heard = []
    h.cp.events.listen("fault", lambda *event: heard.append(event))
    h.cp.fault(1, "PowerMeterFailure", "meter did not answer")
    h.cp.fault(1, "PowerMeterFailure", "meter did not answer")
    h.cp.fault(0, "ReaderFailure", None)
    h.cp.fault_cleared(1, "PowerMeterFailure")
    h.cp.fault_cleared(1, "PowerMeterFailure")
    assert heard == [(1, "PowerMeterFailure", "meter did not answer", "raised"),
                     (0, "ReaderFailure", None, "raised"),
                     (1, "PowerMeterFailure", None, "cleared")]
