"""TriggerMessage end to end: `python -m firmware --hal mock` as a subprocess and
the `ocpp`-package CSMS; every requestedMessage of OCPP 1.6 is answered Accepted
and followed by the message it asks for."""

import pytest

from tests.support.firmware_process import Bench, bench_port_of

TAG = "04A1B2C3"


@pytest.fixture
def station(ocpp_csms, firmware):
    fw = firmware(ocpp_csms.url)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    bench.wait(lambda s: s["ocpp"]["registration"] == "Accepted", what="Accepted")
    ocpp_csms.wait_for("StatusNotification", predicate=lambda p: p["connectorId"] == 1)
    return bench


def trigger(ocpp_csms, message, connector=None):
    payload = {"requestedMessage": message}
    if connector is not None:
        payload["connectorId"] = connector
    return ocpp_csms.call("CP-TEST-1", "TriggerMessage", payload)


def test_every_requested_message_is_sent_after_its_trigger(ocpp_csms, station):
    assert trigger(ocpp_csms, "Heartbeat") == {"status": "Accepted"}
    ocpp_csms.wait_for("Heartbeat")
    assert trigger(ocpp_csms, "StatusNotification", 1) == {"status": "Accepted"}
    status = ocpp_csms.wait_for("StatusNotification",
                                predicate=lambda p: p["connectorId"] == 1)
    assert status["status"] == "Available"            # unchanged, sent all the same
    assert trigger(ocpp_csms, "MeterValues", 1) == {"status": "Accepted"}
    values = ocpp_csms.wait_for("MeterValues")
    assert {v["context"] for v in values["meterValue"][0]["sampledValue"]} == {"Trigger"}
    for message in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        assert trigger(ocpp_csms, message) == {"status": "Accepted"}
        assert ocpp_csms.wait_for(message) == {"status": "Idle"}
    assert trigger(ocpp_csms, "BootNotification") == {"status": "Accepted"}
    ocpp_csms.wait_for("BootNotification")
    station.wait(lambda s: s["ocpp"]["registration"] == "Accepted", what="still Accepted")
    assert len(ocpp_csms.connections) == 1, "a triggered BootNotification does not reconnect"


def test_a_trigger_for_connector_99_is_rejected(ocpp_csms, station):
    assert trigger(ocpp_csms, "StatusNotification", 99) == {"status": "Rejected"}
    assert trigger(ocpp_csms, "MeterValues", 99) == {"status": "Rejected"}


def test_triggered_meter_values_during_a_session_carry_the_transaction(ocpp_csms, station):
    station("plug", connector=1)
    station("tap", uid=TAG)
    tx = ocpp_csms.wait_for("StartTransaction")
    assert tx["idTag"] == TAG
    station.wait(lambda s: s["connectors"]["1"]["transaction_id"] == 1, what="transaction")
    assert trigger(ocpp_csms, "MeterValues") == {"status": "Accepted"}
    values = ocpp_csms.wait_for("MeterValues", predicate=lambda p: any(
        v.get("context") == "Trigger" for v in p["meterValue"][0]["sampledValue"]))
    assert values["transactionId"] == 1 and values["connectorId"] == 1
