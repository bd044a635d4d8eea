"""No energy where the CSMS has not accepted the station or made a connector
Inoperative (issue 17): `python -m firmware --hal mock` as a subprocess, a
websocket CSMS and the bench socket, one test per rule.

Absence ("nothing was answered", "nothing started") is proven against a later
positive event the firmware had to process first, never by waiting a while."""

import json
import signal

from tests.support.firmware_process import Bench, bench_port_of

TAG = "04A1B2C3"


def _call(raw, msg_id, action, payload):
    raw.send(json.dumps([2, msg_id, action, payload]))


def test_rejected_registration_answers_no_csms_call_and_starts_nothing(raw_csms, firmware):
    fw = firmware("ws://127.0.0.1:%d/ocpp" % raw_csms.port)
    boot = raw_csms.next()
    assert boot[2] == "BootNotification"
    raw_csms.send(json.dumps([3, boot[1], {"status": "Rejected", "interval": 60,
                                           "currentTime": "2026-12-03T10:00:00.000Z"}]))
    fw.wait_log("BootNotification Rejected")
    bench = Bench(bench_port_of(fw))
    bench("plug", connector=1)
    bench.wait(lambda s: s["connectors"]["1"]["ev_state"] == "B", what="EV plugged")
    _call(raw_csms, "g1", "GetConfiguration", {})
    _call(raw_csms, "r1", "RemoteStartTransaction", {"connectorId": 1, "idTag": "UNKNOWN-1"})
    raw_csms.send('[2, "bad-1", "Reset"]')      # malformed: not even a CALLERROR
    fw.wait_log("dropped a bad frame")           # the last one: all three were handled
    assert raw_csms.inbox.empty(), "the station answered while Rejected"
    assert "GetConfiguration g1 dropped unanswered" in fw.log()
    assert "RemoteStartTransaction r1 dropped unanswered" in fw.log()
    s = bench.status()["connectors"]["1"]
    assert s["contactor"] is False and s["transaction_id"] is None
    assert bench.status()["ocpp"]["registration"] == "Rejected"


def test_pending_registration_refuses_remote_start_and_authorizes_nothing(ocpp_csms, firmware):
    ocpp_csms.boot_answers = [("Pending", 60)]
    fw = firmware(ocpp_csms.url)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    bench.wait(lambda s: s["ocpp"]["registration"] == "Pending", what="Pending")
    bench("plug", connector=1)
    bench.wait(lambda s: s["connectors"]["1"]["ev_state"] == "B", what="EV plugged")
    # Other calls are still answered while Pending (TC_002) ...
    answer = ocpp_csms.call("CP-TEST-1", "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"
    # ... but not a remote start, and the offline rules do not decide either.
    assert ocpp_csms.call("CP-TEST-1", "RemoteStartTransaction",
                          {"connectorId": 1, "idTag": TAG}) == {"status": "Rejected"}
    assert ocpp_csms.call("CP-TEST-1", "RemoteStopTransaction",
                          {"transactionId": 1}) == {"status": "Rejected"}
    bench("tap", uid=TAG)
    fw.wait_log("card %s ignored: the CSMS has not accepted the station" % TAG)
    s = bench.status()["connectors"]["1"]
    assert s["contactor"] is False and s["transaction_id"] is None
    assert ocpp_csms.actions() == ["BootNotification"], "only BootNotification while Pending"


def _accepted(ocpp_csms, firmware, **kw):
    fw = firmware(ocpp_csms.url, **kw)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    bench.wait(lambda s: s["ocpp"]["registration"] == "Accepted", what="Accepted")
    answer = ocpp_csms.call("CP-TEST-1", "ChangeConfiguration",
                            {"key": "MinimumStatusDuration", "value": "0"})
    assert answer == {"status": "Accepted"}
    return fw, bench


def _status(ocpp_csms, connector, status, timeout=10):
    return ocpp_csms.wait_for("StatusNotification", timeout, predicate=lambda p:
                              p["connectorId"] == connector and p["status"] == status)


def test_inoperative_connector_never_starts_a_transaction(ocpp_csms, firmware):
    fw, bench = _accepted(ocpp_csms, firmware)
    bench("tap", uid=TAG)                        # card first: authorized, no EV yet
    assert ocpp_csms.wait_for("Authorize")["idTag"] == TAG
    _status(ocpp_csms, 1, "Preparing")
    assert ocpp_csms.call("CP-TEST-1", "ChangeAvailability",
                          {"connectorId": 1, "type": "Inoperative"}) == {"status": "Accepted"}
    _status(ocpp_csms, 1, "Unavailable")
    bench("plug", connector=1)                   # the plug does not start it
    bench("tap", uid="04FFFFFF")                 # nor another card
    fw.wait_log("card 04FFFFFF presented")       # the engine has seen the plug-in too
    assert ocpp_csms.call("CP-TEST-1", "RemoteStartTransaction",     # nor a remote start
                          {"connectorId": 1, "idTag": TAG}) == {"status": "Rejected"}
    # The answer came after anything the plug-in would have sent.
    assert "StartTransaction" not in ocpp_csms.actions()
    s = bench.status()["connectors"]["1"]
    assert s["ocpp_status"] == "Unavailable"
    assert s["contactor"] is False and s["transaction_id"] is None
    assert "authorization for %s dropped" % TAG in fw.log()


def test_station_inoperative_is_scheduled_until_the_transaction_ends(ocpp_csms, firmware,
                                                                      tmp_path):
    data = str(tmp_path / "data")
    fw, bench = _accepted(ocpp_csms, firmware, data_dir=data)
    bench("plug", connector=1)
    bench("tap", uid=TAG)
    tx = ocpp_csms.wait_for("StartTransaction")
    _status(ocpp_csms, 1, "Charging")
    assert ocpp_csms.call("CP-TEST-1", "ChangeAvailability",
                          {"connectorId": 0, "type": "Inoperative"}) == {"status": "Scheduled"}
    s = bench.status()["connectors"]["1"]
    assert s["ocpp_status"] == "Charging" and s["contactor"] is True
    stop_answer = ocpp_csms.call("CP-TEST-1", "RemoteStopTransaction",
                                 {"transactionId": 1})
    assert stop_answer == {"status": "Accepted"}
    assert ocpp_csms.wait_for("StopTransaction")["transactionId"] == 1
    _status(ocpp_csms, 0, "Unavailable")
    _status(ocpp_csms, 1, "Unavailable")
    order = [(a, p.get("connectorId"), p.get("status")) for _, a, p, _ in ocpp_csms.received]
    stop_at = [a for a, _, _ in order].index("StopTransaction")
    assert (("StatusNotification", 0, "Unavailable") not in order[:stop_at]), \
        "connector 0 went Unavailable before the transaction ended"
    assert tx["connectorId"] == 1
    # A connector cannot be made Operative while its station is Inoperative.
    assert ocpp_csms.call("CP-TEST-1", "ChangeAvailability",
                          {"connectorId": 1, "type": "Operative"}) == {"status": "Rejected"}
    # Persisted: after a power cut the station is still Inoperative ...
    fw.stop(signal.SIGKILL)
    fw2 = firmware(ocpp_csms.url, data_dir=data)
    _status(ocpp_csms, 0, "Unavailable", timeout=15)
    _status(ocpp_csms, 1, "Unavailable", timeout=15)
    # ... and a connector still cannot be made Operative on its own.
    ocpp_csms.wait_connections(2)
    assert ocpp_csms.call("CP-TEST-1", "ChangeAvailability",
                          {"connectorId": 1, "type": "Operative"}) == {"status": "Rejected"}
    assert fw2.proc.poll() is None


def test_connector_phase_rotation_uses_the_section_9_format(ocpp_csms, firmware):
    _accepted(ocpp_csms, firmware)
    answer = ocpp_csms.call("CP-TEST-1", "GetConfiguration",
                            {"key": ["ConnectorPhaseRotation",
                                     "ConnectorPhaseRotationMaxLength"]})
    values = {e["key"]: e["value"] for e in answer["configurationKey"]}
    assert values == {"ConnectorPhaseRotation": "0.RST,1.RST",
                      "ConnectorPhaseRotationMaxLength": "2"}
    assert ocpp_csms.call("CP-TEST-1", "ChangeConfiguration",
                          {"key": "ConnectorPhaseRotation", "value": "0.RST,1.RTS"}) == \
        {"status": "Accepted"}


def test_a_refused_card_is_shown_on_the_indicator_then_the_state_again(ocpp_csms, firmware):
    """A driver whose card starts nothing sees it: "refused" (red, blinking) for a
    few seconds, whatever the reason (here the CSMS answers Invalid)."""
    ocpp_csms.id_tags = {"BADCARD1": "Invalid"}
    fw, bench = _accepted(ocpp_csms, firmware)
    bench.wait(lambda s: (s.get("indicator") or {}).get("state") == "available",
               what="the indicator shows available")
    bench("tap", uid="BADCARD1")
    assert ocpp_csms.wait_for("Authorize")["idTag"] == "BADCARD1"
    bench.wait(lambda s: (s.get("indicator") or {}).get("state") == "refused",
               what="the indicator shows refused")
    bench.wait(lambda s: (s.get("indicator") or {}).get("state") == "available",
               what="the indicator shows available again")
    assert "StartTransaction" not in ocpp_csms.actions()
