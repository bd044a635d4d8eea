"""The bench central system (tools/csms.py), driven by a fake charge point."""

import io
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import websocket

from ocpp_core import errors
from ocpp_core.catalogue import ACTIONS
from ocpp_core.timestamps import parse_rfc3339
from ocpp_core.validation import validate
from tools.csms import (BenchCsms, CallError, charge_point_id_from_path, parse_command,
                        run_command, split_target)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = {"chargePointVendor": "PiOCPP", "chargePointModel": "Bench-1"}


class FakeCp:
    """A charge point played by the test, over websocket-client."""

    def __init__(self, port, cp_id="CP-TEST", path="/ocpp/"):
        self.ws = websocket.create_connection("ws://127.0.0.1:%d%s%s" % (port, path, cp_id),
                                              subprotocols=["ocpp1.6"], timeout=5)
        self.count = 0
        self.inbox = []   # CALLs from the central system that arrived while waiting

    def send(self, frame):
        self.ws.send(json.dumps(frame))

    def call(self, action, payload):
        """Send a CALL and return the answering frame (CALLRESULT or CALLERROR)."""
        self.count += 1
        msg_id = "fake-%d" % self.count
        self.send([2, msg_id, action, payload])
        return self.answer_to(msg_id)

    def answer_to(self, msg_id):
        while True:
            frame = json.loads(self.ws.recv())
            if frame[0] == 2:
                self.inbox.append(frame)
                continue
            assert frame[1] == msg_id, frame
            return frame

    def result(self, action, payload):
        frame = self.call(action, payload)
        assert frame[0] == 3, frame
        validate(ACTIONS[action][3], frame[2])
        return frame[2]

    def next_call(self):
        if self.inbox:
            return self.inbox.pop(0)
        frame = json.loads(self.ws.recv())
        assert frame[0] == 2, frame
        return frame

    def close(self):
        self.ws.close()      # a no-op once the server's close frame was read...
        self.ws.shutdown()   # ...so close the TCP connection, as a real charge point does


@pytest.fixture
def make_csms():
    started = []

    def make(**kwargs):
        kwargs.setdefault("out", io.StringIO())
        csms = BenchCsms(port=0, **kwargs)
        csms.start()
        started.append(csms)
        return csms

    yield make
    for csms in started:
        csms.stop()


@pytest.fixture
def csms(make_csms):
    return make_csms(heartbeat_interval=120)


@pytest.fixture
def make_cp():
    cps = []

    def make(csms, cp_id="CP-TEST", **kwargs):
        cp = FakeCp(csms.port, cp_id, **kwargs)
        cps.append(cp)
        return cp

    yield make
    for cp in cps:   # closed before the central systems stop (fixture order)
        cp.close()


@pytest.fixture
def cp(csms, make_cp):
    cp = make_cp(csms)
    assert csms.wait_connected("CP-TEST", timeout=5) == "CP-TEST"
    return cp


def test_boot_accepted_with_heartbeat_interval(csms, cp):
    answer = cp.result("BootNotification", BOOT)
    assert answer["status"] == "Accepted"
    assert answer["interval"] == 120
    assert abs(parse_rfc3339(answer["currentTime"]) - time.time()) < 5
    assert csms.wait_for("BootNotification", timeout=5) == BOOT
    assert csms.received == [("CP-TEST", "BootNotification", BOOT)]
    assert csms.charge_points() == ["CP-TEST"]


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
def test_boot_pending_or_rejected_uses_boot_interval(make_csms, make_cp, status):
    csms = make_csms(boot_status=status, boot_interval=7)
    answer = make_cp(csms).result("BootNotification", BOOT)
    assert (answer["status"], answer["interval"]) == (status, 7)


def test_bad_boot_status_refused():
    with pytest.raises(ValueError):
        BenchCsms(boot_status="Maybe")


def test_heartbeat_current_time(cp):
    answer = cp.result("Heartbeat", {})
    assert abs(parse_rfc3339(answer["currentTime"]) - time.time()) < 5
    assert answer["currentTime"].endswith("Z")


def test_authorize_known_and_unknown_tags(cp):
    assert cp.result("Authorize", {"idTag": "04A1B2C3"}) == {"idTagInfo": {"status": "Accepted"}}
    assert cp.result("Authorize", {"idTag": "deadbeef"}) == {"idTagInfo": {"status": "Accepted"}}
    assert cp.result("Authorize", {"idTag": "CAFE0001"}) == {"idTagInfo": {"status": "Invalid"}}


def test_custom_tags_and_accept_all(make_csms, make_cp):
    only = make_csms(id_tags="AAA,BBB")
    cp = make_cp(only, "CP-A")
    assert cp.result("Authorize", {"idTag": "BBB"})["idTagInfo"]["status"] == "Accepted"
    assert cp.result("Authorize", {"idTag": "04A1B2C3"})["idTagInfo"]["status"] == "Invalid"
    anything = make_csms(accept_all=True)
    cp = make_cp(anything, "CP-B")
    assert cp.result("Authorize", {"idTag": "WHATEVER"})["idTagInfo"]["status"] == "Accepted"


def test_transaction_ids_increment_across_charge_points(csms, cp, make_cp):
    other = make_cp(csms, "CP-OTHER")
    start = {"connectorId": 1, "idTag": "04A1B2C3", "meterStart": 0,
             "timestamp": "2026-11-24T10:00:00Z"}
    first = cp.result("StartTransaction", start)
    second = other.result("StartTransaction", start)
    third = cp.result("StartTransaction", dict(start, idTag="NOPE"))
    assert [first["transactionId"], second["transactionId"], third["transactionId"]] == [1, 2, 3]
    assert first["idTagInfo"] == {"status": "Accepted"}
    assert third["idTagInfo"] == {"status": "Invalid"}
    stop = {"transactionId": 1, "meterStop": 1200, "timestamp": "2026-11-24T11:00:00Z"}
    assert cp.result("StopTransaction", stop) == {}
    assert cp.result("StopTransaction", dict(stop, idTag="04A1B2C3")) == \
        {"idTagInfo": {"status": "Accepted"}}


def test_notifications_and_data_transfer(cp):
    assert cp.result("StatusNotification", {"connectorId": 1, "errorCode": "NoError",
                                            "status": "Available"}) == {}
    assert cp.result("MeterValues", {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-11-24T10:00:00Z", "sampledValue": [{"value": "12"}]}]}) == {}
    assert cp.result("DiagnosticsStatusNotification", {"status": "Idle"}) == {}
    assert cp.result("FirmwareStatusNotification", {"status": "Idle"}) == {}
    assert cp.result("DataTransfer", {"vendorId": "x"}) == {"status": "UnknownVendorId"}


def test_invalid_requests_get_the_right_callerror(cp):
    frame = cp.call("BootNotification", {"chargePointVendor": "PiOCPP"})
    assert frame[0] == 4 and frame[2] == errors.OCCURENCE_CONSTRAINT_VIOLATION
    assert "chargePointModel" in frame[3]
    assert cp.call("Heartbeat", {"extra": 1})[2] == errors.FORMATION_VIOLATION
    assert cp.call("Authorize", {"idTag": 42})[2] == errors.TYPE_CONSTRAINT_VIOLATION
    assert cp.call("NoSuchAction", {})[2] == errors.NOT_IMPLEMENTED
    assert cp.call("Reset", {"type": "Soft"})[2] == errors.NOT_SUPPORTED   # a CSMS-to-CP action
    cp.ws.send('[2,"broken-1","Heartbeat",{')
    assert cp.answer_to("broken-1")[2] == errors.FORMATION_VIOLATION
    assert cp.result("Heartbeat", {})   # still serving


def test_csms_initiated_call_round_trip(csms, cp):
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(csms.call, "CP-TEST", "Reset", {"type": "Soft"}, 5)
        frame = cp.next_call()
        assert frame[2:] == ["Reset", {"type": "Soft"}]
        cp.send([3, frame[1], {"status": "Accepted"}])
        assert future.result(timeout=5) == {"status": "Accepted"}

        future = pool.submit(csms.call, None, "UnlockConnector", {"connectorId": 1}, 5)
        frame = cp.next_call()
        cp.send([4, frame[1], "NotSupported", "no lock", {}])
        with pytest.raises(CallError) as info:
            future.result(timeout=5)
        assert (info.value.code, info.value.description) == ("NotSupported", "no lock")

        future = pool.submit(csms.call, "CP-TEST", "ClearCache", {}, 5)
        frame = cp.next_call()
        cp.send([3, frame[1], {"status": "Maybe"}])   # an invalid answer fails the call
        with pytest.raises(CallError) as info:
            future.result(timeout=5)
        assert info.value.code == errors.PROPERTY_CONSTRAINT_VIOLATION


def test_csms_call_timeout_and_disconnect(csms, cp):
    with pytest.raises(CallError) as info:
        csms.call("CP-TEST", "ClearCache", {}, timeout=0.2)
    assert info.value.code == errors.TIMEOUT
    assert cp.next_call()[2] == "ClearCache"   # it was sent, just never answered

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(csms.call, "CP-TEST", "ClearCache", {}, 5)
        cp.next_call()
        cp.close()
        with pytest.raises(CallError) as info:
            future.result(timeout=5)
        assert info.value.code == errors.DISCONNECTED


def test_csms_call_refuses_invalid_requests_and_unknown_charge_points(csms, cp):
    with pytest.raises(ValueError, match="invalid Reset request"):
        csms.call("CP-TEST", "Reset", {"type": "Medium"})
    with pytest.raises(ValueError):
        csms.call("CP-TEST", "BootNotification", BOOT)   # not the CSMS's to send
    with pytest.raises(CallError) as info:
        csms.call("CP-NOBODY", "ClearCache", {})
    assert info.value.code == errors.DISCONNECTED
    assert cp.result("Heartbeat", {})   # nothing was sent meanwhile
    assert cp.inbox == []


def test_wait_for_consumes_in_order_and_filters(csms, cp, make_cp):
    other = make_cp(csms, "CP-OTHER")
    for tag in ("T1", "T2"):
        cp.result("Authorize", {"idTag": tag})
    other.result("Authorize", {"idTag": "T3"})
    assert csms.wait_for("Authorize", 5, cp_id="CP-OTHER") == {"idTag": "T3"}
    assert csms.wait_for("Authorize", 5, predicate=lambda p: p["idTag"] == "T2") == {"idTag": "T2"}
    assert csms.wait_for("Authorize", 5) == {"idTag": "T1"}
    with pytest.raises(TimeoutError):
        csms.wait_for("Authorize", 0.05)
    with ThreadPoolExecutor(1) as pool:   # waits for a CALL that arrives later
        future = pool.submit(csms.wait_for, "Heartbeat", 5)
        cp.result("Heartbeat", {})
        assert future.result(timeout=5) == {}


def test_printed_lines_show_direction_action_and_hide_secrets(csms, cp):
    cp.result("BootNotification", BOOT)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(csms.call, "CP-TEST", "ChangeConfiguration",
                             {"key": "AuthorizationKey", "value": "s3cr3t-pa55"}, 5)
        frame = cp.next_call()
        assert frame[3]["value"] == "s3cr3t-pa55"   # the charge point gets the real value
        cp.send([3, frame[1], {"status": "Accepted"}])
        future.result(timeout=5)
    cp.call("BootNotification", {})
    text = csms.out.getvalue()
    stamp = r"\d\d:\d\d:\d\d\.\d{3}  CP-TEST  "
    assert re.search(stamp + r"connected from 127\.0\.0\.1:\d+", text)
    assert re.search(stamp + r'-> CALL BootNotification  \{"chargePointVendor": "PiOCPP"', text)
    assert re.search(stamp + r'<- RESULT BootNotification  \{"status": "Accepted"', text)
    assert re.search(stamp + r'<- CALL ChangeConfiguration  .*"value": "\*\*\*"', text)
    assert re.search(stamp + r'-> RESULT ChangeConfiguration  \{"status": "Accepted"\}', text)
    assert re.search(stamp + r"<- ERROR OccurenceConstraintViolation \(BootNotification\)", text)
    assert "s3cr3t-pa55" not in text
    assert all(line.count("\n") == 0 for line in text.splitlines())


def test_quiet_prints_no_frames(make_csms, make_cp):
    csms = make_csms(quiet=True)
    make_cp(csms).result("Heartbeat", {})
    text = csms.out.getvalue()
    assert "connected from" in text and "Heartbeat" not in text


def test_disconnect_is_printed_and_forgotten(csms, cp):
    cp.close()
    csms.wait_disconnected("CP-TEST", timeout=5)
    assert csms.charge_points() == []
    assert re.search(r"CP-TEST  disconnected: closed by the charge point \(code 1000\)",
                     csms.out.getvalue())


def test_path_gives_percent_decoded_id_and_reconnect_replaces(csms, make_cp):
    first = make_cp(csms, "CP%20ONE", path="/any/thing/")
    assert csms.wait_connected("CP ONE", timeout=5) == "CP ONE"
    second = make_cp(csms, "CP%20ONE", path="/ocpp/")
    assert second.result("Heartbeat", {})
    assert csms.charge_points() == ["CP ONE"]
    opcode, _ = first.ws.recv_data()   # the old connection is closed by the central system
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert "CP ONE  disconnected: replaced by a new connection" in csms.out.getvalue()
    assert csms.charge_points() == ["CP ONE"]
    assert second.result("Heartbeat", {})


@pytest.mark.parametrize("path, expected", [
    ("/ocpp/CP-1", "CP-1"), ("/CP-1", "CP-1"), ("/a/b/CP%2F1", "CP/1"),
    ("/ocpp/CP-1?token=x", "CP-1"), ("/", None), ("/ocpp/", None), ("/ocpp/%0A", None),
    ("/ocpp/%FF", None),
])
def test_charge_point_id_from_path(path, expected):
    assert charge_point_id_from_path(path) == expected


@pytest.mark.parametrize("offered", [["ocpp2.0.1"], ["ocpp1.5"], None])
def test_other_subprotocols_are_refused(csms, offered):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection("ws://127.0.0.1:%d/ocpp/CP-X" % csms.port,
                                    subprotocols=offered, timeout=5)
    assert info.value.status_code == 400
    assert "refused" in csms.out.getvalue()
    assert csms.charge_points() == []


def test_path_without_id_is_refused(csms):
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection("ws://127.0.0.1:%d/" % csms.port,
                                    subprotocols=["ocpp1.6"], timeout=5)
    assert info.value.status_code == 404


@pytest.mark.parametrize("text, action, payload", [
    ("remote-start 1 04A1B2C3", "RemoteStartTransaction", {"connectorId": 1, "idTag": "04A1B2C3"}),
    ("Remote-Stop 17", "RemoteStopTransaction", {"transactionId": 17}),
    ("get-config", "GetConfiguration", {}),
    ("get-config HeartbeatInterval MeterValueSampleInterval", "GetConfiguration",
     {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]}),
    ("change-config HeartbeatInterval 60", "ChangeConfiguration",
     {"key": "HeartbeatInterval", "value": "60"}),
    ("change-config Greeting hello  world", "ChangeConfiguration",
     {"key": "Greeting", "value": "hello  world"}),
    ('change-config Greeting ""', "ChangeConfiguration", {"key": "Greeting", "value": ""}),
    ("reset soft", "Reset", {"type": "Soft"}),
    ("reset HARD", "Reset", {"type": "Hard"}),
    ("unlock 2", "UnlockConnector", {"connectorId": 2}),
    ("availability 0 inoperative", "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
    ("clear-cache", "ClearCache", {}),
    ("trigger heartbeat", "TriggerMessage", {"requestedMessage": "Heartbeat"}),
    ("trigger StatusNotification 1", "TriggerMessage",
     {"requestedMessage": "StatusNotification", "connectorId": 1}),
    ("data-transfer acme", "DataTransfer", {"vendorId": "acme"}),
    ("data-transfer acme ping {\"a\": 1}", "DataTransfer",
     {"vendorId": "acme", "messageId": "ping", "data": '{"a": 1}'}),
    ("call ClearCache", "ClearCache", {}),
    ('call getconfiguration {"key": ["A"]}', "GetConfiguration", {"key": ["A"]}),
    ('call DataTransfer {"vendorId": "x"}', "DataTransfer", {"vendorId": "x"}),
])
def test_parse_command_good(text, action, payload):
    assert parse_command(text) == (action, payload)


@pytest.mark.parametrize("text", [
    "", "frobnicate", "remote-start", "remote-start one TAG", "remote-start 0 TAG",
    "remote-start 1", "remote-stop", "remote-stop x", "remote-stop 1_0", "change-config Key",
    "reset", "reset medium", "unlock", "unlock -1", "availability 1", "availability 1 maybe",
    "clear-cache now", "trigger", "trigger Reset", "trigger Heartbeat x", "data-transfer",
    "call", "call NoSuchAction {}", "call BootNotification {}", 'call Reset {"type": ',
    'change-config Key "unterminated\\"',
])
def test_parse_command_bad(text):
    with pytest.raises(ValueError) as info:
        parse_command(text)
    assert "\n" not in str(info.value)


def test_split_target():
    assert split_target("@CP-1 reset soft") == ("CP-1", "reset soft")
    assert split_target("  reset soft ") == (None, "reset soft")
    with pytest.raises(ValueError):
        split_target("@ reset soft")


def test_prompt_commands(csms, cp, make_cp):
    out = csms.out
    assert run_command(csms, "help")
    assert "remote-start CONNECTOR IDTAG" in out.getvalue()
    assert run_command(csms, "list")
    assert re.search(r"^CP-TEST  from 127\.0\.0\.1:\d+", out.getvalue(), re.M)
    assert run_command(csms, "reset sideways")
    assert "error: the reset type must be one of" in out.getvalue()
    assert run_command(csms, "remote-start 1 THIS-TAG-IS-FAR-TOO-LONG-FOR-OCPP")
    assert "error: invalid RemoteStartTransaction request: idTag" in out.getvalue()
    assert run_command(csms, "@CP-NOBODY clear-cache")
    assert "error: Disconnected: CP-NOBODY is not connected" in out.getvalue()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run_command, csms, "remote-start 1 04A1B2C3", 5)
        frame = cp.next_call()
        assert frame[2:] == ["RemoteStartTransaction", {"connectorId": 1, "idTag": "04A1B2C3"}]
        cp.send([3, frame[1], {"status": "Rejected"}])
        assert future.result(timeout=5) is True
    make_cp(csms, "CP-2")
    csms.wait_connected("CP-2", timeout=5)
    assert run_command(csms, "clear-cache")
    assert "2 charge points are connected" in out.getvalue()
    assert run_command(csms, "quit") is False


def test_command_line_server(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.csms", "--port", "0", "--no-prompt",
         "--heartbeat-interval", "42"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    lines = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def read_until(pattern, timeout=10):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError("%r not printed; got:\n%s" % (pattern, "".join(seen)))
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    try:
        port = int(read_until(r"listening on ws://127\.0\.0\.1:(\d+)/").group(1))
        assert port > 0
        ws = websocket.create_connection("ws://127.0.0.1:%d/ocpp/CP-SUB" % port,
                                         subprotocols=["ocpp1.6"], timeout=5)
        try:
            ws.send(json.dumps([2, "b1", "BootNotification", BOOT]))
            answer = json.loads(ws.recv())
        finally:
            ws.close()
        assert answer[:2] == [3, "b1"]
        assert (answer[2]["status"], answer[2]["interval"]) == ("Accepted", 42)
        read_until(r"CP-SUB  -> CALL BootNotification")
        read_until(r"CP-SUB  <- RESULT BootNotification")
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        read_until(r"stopping")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
