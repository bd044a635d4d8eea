"""The firmware as a subprocess against real central systems: boot, heartbeat,
basic auth, and bad frames from the CSMS."""

import base64
import json


def test_boot_pending_then_accepted_then_heartbeats(ocpp_csms, firmware):
    ocpp_csms.heartbeat_interval = 1
    ocpp_csms.boot_answers = [("Pending", 1)]
    fw = firmware(ocpp_csms.url, "CP-TEST-1")
    cp_id, subprotocol, auth = ocpp_csms.wait_connected()
    assert (cp_id, subprotocol, auth) == ("CP-TEST-1", "ocpp1.6", None)
    boot = ocpp_csms.wait_for("BootNotification")
    assert boot["chargePointVendor"] and boot["chargePointModel"] and boot["firmwareVersion"]
    ocpp_csms.wait_for("BootNotification", timeout=5)
    t_boot = ocpp_csms.received[-1][3]
    first_boot_t = ocpp_csms.received[0][3]
    assert t_boot - first_boot_t >= 0.9, "retried before the interval the CSMS gave"
    ocpp_csms.wait_for("Heartbeat", timeout=5)
    ocpp_csms.wait_for("Heartbeat", timeout=5)
    beats = [r[3] for r in ocpp_csms.received if r[1] == "Heartbeat"]
    assert 0.8 <= beats[1] - beats[0] <= 2.5
    # Nothing but BootNotification before it was accepted.
    actions = ocpp_csms.actions()
    assert actions[:2] == ["BootNotification", "BootNotification"]
    assert fw.proc.poll() is None


def test_boot_rejected_waits_for_the_interval(ocpp_csms, firmware):
    ocpp_csms.boot_answers = [("Rejected", 2)]
    firmware(ocpp_csms.url)
    ocpp_csms.wait_for("BootNotification")
    ocpp_csms.wait_for("BootNotification", timeout=6)
    t = [r[3] for r in ocpp_csms.received if r[1] == "BootNotification"]
    assert t[1] - t[0] >= 1.9
    assert ocpp_csms.actions()[:2] == ["BootNotification", "BootNotification"]


def test_basic_auth_password_is_sent_and_never_logged(ocpp_csms, firmware):
    ocpp_csms.password = "Zr7-very-secret"
    fw = firmware(ocpp_csms.url, "CP/7-é", extra=["--password", "Zr7-very-secret"])
    cp_id, subprotocol, auth = ocpp_csms.wait_connected()
    assert cp_id == "CP/7-é"
    assert auth == "Basic " + base64.b64encode("CP/7-é:Zr7-very-secret".encode()).decode()
    ocpp_csms.wait_for("BootNotification")
    fw.stop()
    assert "Zr7-very-secret" not in fw.log()


def test_wrong_password_is_refused_and_retried(ocpp_csms, firmware):
    ocpp_csms.password = "right"
    fw = firmware(ocpp_csms.url, extra=["--password", "Qx9-not-the-one"])
    fw.wait_log("401")
    assert fw.proc.poll() is None
    assert ocpp_csms.received == []
    assert "Qx9-not-the-one" not in fw.log()


def test_bad_frames_from_the_csms_get_errors_and_the_link_stays_up(raw_csms, firmware):
    fw = firmware("ws://127.0.0.1:%d/ocpp" % raw_csms.port)
    boot = raw_csms.next()
    assert boot[0] == 2 and boot[2] == "BootNotification"
    raw_csms.send(json.dumps([3, boot[1], {"status": "Accepted", "currentTime":
                                           "2026-11-24T10:15:30.123Z", "interval": 300}]))
    cases = [
        ('not json at all', None),
        ('[2, "m1", "Reset"', ("m1", "FormationViolation")),
        ('[2, "m2", "Reset"]', ("m2", "ProtocolError")),
        ('[2, "m3", "FlyToTheMoon", {}]', ("m3", "NotImplemented")),
        ('[2, "m4", "BootNotification", {}]', ("m4", "NotSupported")),
        ('{"an": "object"}', None),
        ('[2, "m5", "DataTransfer", {"vendorId": 42}]', ("m5", "TypeConstraintViolation")),
        ('[3, "nobody-asked", {}]', None),
        ('[2, "m6", "DataTransfer", {}]', ("m6", "OccurenceConstraintViolation")),
        ('[2, "m7", "DataTransfer", {"vendorId": "x", "extra": 1}]', ("m7", "FormationViolation")),
        ('[2, "m8", "DataTransfer", {"vendorId": "%s"}]' % ("v" * 256),
         ("m8", "PropertyConstraintViolation")),
        ('[2, "m9", "DataTransfer", {"vendorId": "com.example"}]', ("m9", None)),
    ]
    for text, expect in cases:
        raw_csms.send(text)
    answers = {}
    while len(answers) < sum(1 for _, e in cases if e):
        msg = raw_csms.next()
        if msg[0] in (3, 4):       # the charge point's own CALLs go unanswered here
            answers[msg[1]] = msg
    for text, expect in cases:
        if expect is None:
            continue
        msg_id, code = expect
        if code is None:   # a valid DataTransfer: answered, unknown vendor
            assert answers[msg_id] == [3, msg_id, {"status": "UnknownVendorId"}]
        else:
            assert answers[msg_id][0] == 4 and answers[msg_id][2] == code, (text, answers[msg_id])
    assert fw.proc.poll() is None


def test_boots_and_heartbeats_against_the_bench_csms(firmware):
    """The bench CSMS (tools.csms, built on ocpp_core) is the other real peer."""
    import io

    from tools.csms import BenchCsms
    out = io.StringIO()
    csms = BenchCsms(port=0, heartbeat_interval=1, out=out)
    csms.start()
    try:
        fw = firmware("ws://127.0.0.1:%d/ocpp" % csms.port, "CP-BENCH-9")
        boot = csms.wait_for("BootNotification", timeout=10, cp_id="CP-BENCH-9")
        assert boot["chargePointModel"]
        statuses = [csms.wait_for("StatusNotification", timeout=5)["connectorId"] for _ in range(2)]
        assert sorted(statuses) == [0, 1]
        csms.wait_for("Heartbeat", timeout=5)
        csms.wait_for("Heartbeat", timeout=5)
        assert csms.call("CP-BENCH-9", "GetConfiguration", {"key": ["HeartbeatInterval"]}) == \
            {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "1"}]}
        assert fw.proc.poll() is None
        assert "-> CALL BootNotification" in out.getvalue()
    finally:
        csms.stop()


def test_tc_073_update_basic_auth_password_twice(ocpp_csms, firmware):
    """ChangeConfiguration AuthorizationKey: the answer arrives first, then the
    charge point reconnects with the new password; never logged."""
    ocpp_csms.password = "first-Secret-01"
    fw = firmware(ocpp_csms.url, extra=["--password", "first-Secret-01"])
    ocpp_csms.wait_for("BootNotification")
    for n, new in enumerate(["second-Secret-22", "third-Secret-333"], start=2):
        ocpp_csms.password = new
        answer = ocpp_csms.call("CP-TEST-1", "ChangeConfiguration",
                                {"key": "AuthorizationKey", "value": new})
        assert answer == {"status": "Accepted"}
        cp_id, subprotocol, auth = ocpp_csms.wait_connections(n)
        assert auth == "Basic " + base64.b64encode(("CP-TEST-1:" + new).encode()).decode()
    fw.stop()
    log = fw.log()
    for secret in ("first-Secret-01", "second-Secret-22", "third-Secret-333"):
        assert secret not in log
