"""The Remote Trigger profile (ocpp_core/remote_trigger.py): TriggerMessage,
OCTT TC_054 and TC_055, in process on a virtual clock with exact message order."""

import pytest

from ocpp_core.station import StationProfile
from tests.support.core_harness import Harness

FAST = {"MinimumStatusDuration": 0}
TAG = "04A1B2C3"


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "data", config=FAST)
    harness.boot()
    yield harness
    harness.check_clean()


def trigger(h, message, connector=None):
    payload = {"requestedMessage": message}
    if connector is not None:
        payload["connectorId"] = connector
    m = h.mark()
    answer = h.call("TriggerMessage", payload)
    return answer, [a for a, _ in h.sent(since=m)], h.payloads(message, since=m) \
        if message in dict(h.sent(since=m)) else []


def test_remote_trigger_is_a_supported_feature_profile(h):
    answer = h.call("GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
    assert "RemoteTrigger" in answer["configurationKey"][0]["value"].split(",")


def test_tc_054_trigger_meter_values(h):
    answer, actions, payloads = trigger(h, "MeterValues", 1)
    assert answer == {"status": "Accepted"}
    assert actions == ["MeterValues"]
    sampled = payloads[0]["meterValue"][0]["sampledValue"]
    assert payloads[0]["connectorId"] == 1 and "transactionId" not in payloads[0]
    assert {v["context"] for v in sampled} == {"Trigger"}
    assert [v.get("measurand") for v in sampled] == ["Energy.Active.Import.Register"]


def test_tc_054_trigger_meter_values_in_a_transaction_carries_its_id(h):
    h.plug(1)
    h.tap(TAG)
    h.advance(0)
    answer, actions, payloads = trigger(h, "MeterValues")     # every connector
    assert answer == {"status": "Accepted"} and actions == ["MeterValues"]
    assert payloads[0]["transactionId"] == 1


def test_tc_054_trigger_heartbeat_restarts_the_interval(h):
    h.advance(100)
    answer, actions, _ = trigger(h, "Heartbeat")
    assert answer == {"status": "Accepted"} and actions == ["Heartbeat"]
    m = h.mark()
    h.advance(299)
    assert "Heartbeat" not in [a for a, _ in h.sent(since=m)], "the interval counts anew"
    h.advance(2)
    assert [a for a, _ in h.sent(since=m)].count("Heartbeat") == 1


@pytest.mark.parametrize("connector, expected", [(None, [0, 1]), (0, [0]), (1, [1])])
def test_tc_054_trigger_status_notification_even_unchanged(h, connector, expected):
    answer, actions, payloads = trigger(h, "StatusNotification", connector)
    assert answer == {"status": "Accepted"}
    assert [p["connectorId"] for p in payloads] == expected
    assert {p["status"] for p in payloads} == {"Available"}


@pytest.mark.parametrize("message", ["DiagnosticsStatusNotification",
                                     "FirmwareStatusNotification"])
def test_tc_054_trigger_idle_transfer_statuses(h, message):
    answer, actions, payloads = trigger(h, message)
    assert answer == {"status": "Accepted"} and actions == [message]
    assert payloads == [{"status": "Idle"}]


def test_tc_054_the_transfer_status_comes_from_the_profile_that_knows_it(h):
    h.cp.events.listen("firmware_status", lambda: "Downloading")
    _, _, payloads = trigger(h, "FirmwareStatusNotification")
    assert payloads == [{"status": "Downloading"}]


def test_triggered_boot_notification_keeps_the_registration(h):
    h.plug(1)
    h.tap(TAG)
    answer, actions, _ = trigger(h, "BootNotification")
    assert answer == {"status": "Accepted"}
    assert actions[0] == "BootNotification"
    assert h.cp.registration.status == "Accepted"
    assert h.station.contactor[1] is True, "nothing reboots, the session goes on"
    h.boot_answers = [("Pending", 60)]
    trigger(h, "BootNotification")
    assert h.cp.registration.status == "Accepted", "a triggered boot does not reset it"
    assert h.station.contactor[1] is True


def test_trigger_boot_while_pending_brings_the_next_attempt_forward(tmp_path):
    h = Harness(tmp_path / "d", config=FAST, boot_answers=[("Pending", 300)])
    h.connect()
    assert h.cp.registration.status == "Pending"
    answer = h.call("TriggerMessage", {"requestedMessage": "BootNotification"})
    assert answer == {"status": "Accepted"}
    h.advance(0)
    assert [a for a, _ in h.sent()][:2] == ["BootNotification", "BootNotification"]
    assert h.cp.registration.status == "Accepted"
    h.check_clean()


def test_while_pending_only_boot_notification_may_be_triggered(tmp_path):
    h = Harness(tmp_path / "d", config=FAST, boot_answers=[("Pending", 300)])
    h.connect()
    for message in ("Heartbeat", "StatusNotification", "MeterValues",
                    "FirmwareStatusNotification"):
        assert h.call("TriggerMessage", {"requestedMessage": message}) == \
            {"status": "Rejected"}, message
    assert [a for a, _ in h.sent()] == ["BootNotification"]
    h.check_clean()


@pytest.mark.parametrize("message", ["MeterValues", "StatusNotification", "Heartbeat",
                                     "BootNotification", "FirmwareStatusNotification"])
def test_tc_055_trigger_for_an_unknown_connector_is_rejected(h, message):
    answer, actions, _ = trigger(h, message, 99)
    assert answer == {"status": "Rejected"} and actions == []


def test_tc_055_meter_values_of_connector_0_is_rejected_without_a_main_meter(h):
    answer, actions, _ = trigger(h, "MeterValues", 0)
    assert answer == {"status": "Rejected"} and actions == []


def test_meter_values_without_a_reading_is_rejected(tmp_path):
    h = Harness(tmp_path / "d", profile=StationProfile(number_of_connectors=2), config=FAST)
    h.boot()
    h.cp.connectors[2].sample = None          # connector 2's meter never answered
    assert h.call("TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 2}) \
        == {"status": "Rejected"}
    m = h.mark()
    assert h.call("TriggerMessage", {"requestedMessage": "MeterValues"}) == \
        {"status": "Accepted"}
    assert [p["connectorId"] for p in h.payloads("MeterValues", since=m)] == [1]
    h.check_clean()


def test_a_malformed_trigger_gets_the_validators_callerror(h):
    answers = [h.raw_call("TriggerMessage", {"requestedMessage": "Reset"}, "t1"),
               h.raw_call("TriggerMessage", {"requestedMessage": "Heartbeat",
                                             "connectorId": -1}, "t2")]
    # Not in the enumeration: the validator's CALLERROR. A negative connectorId
    # is schema-valid (the 1.6 schema has no minimum): no such connector, Rejected.
    assert answers[0][:3] == [4, "t1", "PropertyConstraintViolation"]
    assert answers[1] == [3, "t2", {"status": "Rejected"}]
    assert h.cp.registration.status == "Accepted"
