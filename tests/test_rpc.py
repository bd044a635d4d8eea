"""ocpp_core.rpc: the request/response engine, driven with a list as the link
and a hand-moved clock."""

import json
import logging

import pytest

from ocpp_core import errors, framing, rpc
from ocpp_core.rpc import Reply, RpcEndpoint

T0 = 1000.0
NOW = "2024-02-29T12:00:00.000Z"
HEARTBEAT_RESULT = {"currentTime": NOW}


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


class Recorder:
    """on_result / on_error callbacks that remember what they saw."""

    def __init__(self, log=None, name=None):
        self.results = []
        self.errors = []
        self.log = log
        self.name = name

    def on_result(self, payload):
        self.results.append(payload)
        if self.log is not None:
            self.log.append(("result", self.name, payload))

    def on_error(self, code, description, details):
        self.errors.append((code, description, details))
        if self.log is not None:
            self.log.append(("error", self.name, code))


def make(role=rpc.CHARGE_POINT, up=True, **kw):
    sent = []
    clock = Clock()
    ep = RpcEndpoint(role, sent.append, clock=clock, **kw)
    if up:
        ep.connection_up()
    return ep, sent, clock


def frames(sent):
    return [json.loads(t) for t in sent]


def heartbeat(ep, rec=None, **kw):
    rec = rec or Recorder()
    return ep.call("Heartbeat", {}, rec.on_result, rec.on_error, **kw), rec


def answer(ep, call, payload=None):
    ep.receive(framing.encode_result(call.id, HEARTBEAT_RESULT if payload is None else payload))


# --- construction and registration -------------------------------------------

def test_role_must_be_cp_or_cs():
    with pytest.raises(ValueError):
        RpcEndpoint("csms", [].append)


def test_on_refuses_unknown_and_own_actions():
    ep, sent, _ = make()
    with pytest.raises(ValueError):
        ep.on("FooBar", lambda p: {})
    with pytest.raises(ValueError):
        ep.on("BootNotification", lambda p: {})   # the charge point sends it
    ep.on("Reset", lambda p: {"status": "Accepted"})
    ep.on("DataTransfer", lambda p: {"status": "Accepted"})  # both directions
    assert ep.supports("Reset") and ep.supports("DataTransfer")
    assert not ep.supports("ChangeAvailability")
    cs, _, _ = make(rpc.CENTRAL_SYSTEM)
    with pytest.raises(ValueError):
        cs.on("Reset", lambda p: {})
    cs.on("BootNotification", lambda p: {})
    assert sent == []


# --- outgoing calls -------------------------------------------------------------

def test_call_frame_is_exact_and_ids_unique():
    ep, sent, _ = make()
    c, _ = heartbeat(ep)
    assert sent == ['[2,"%s","Heartbeat",{}]' % c.id]
    ids = {c.id}
    for _ in range(200):
        ids.add(heartbeat(ep)[0].id)
    assert len(ids) == 201
    assert all(isinstance(i, str) and 0 < len(i) <= framing.MAX_ID_CHARS for i in ids)


def test_only_one_outstanding_call_queue_in_order():
    ep, sent, _ = make()
    order = []
    calls = []
    for name in "abc":
        rec = Recorder(order, name)
        calls.append(ep.call("Heartbeat", {}, rec.on_result, rec.on_error))
    auth = Recorder(order, "auth")
    calls.append(ep.call("Authorize", {"idTag": "TAG1"}, auth.on_result, auth.on_error))
    assert len(sent) == 1 and ep.busy and ep.pending == 4
    assert frames(sent)[0] == [2, calls[0].id, "Heartbeat", {}]

    for i, c in enumerate(calls[:3]):
        answer(ep, c)
        assert len(sent) == i + 2
        assert ep.pending == 3 - i
    assert frames(sent)[3] == [2, calls[3].id, "Authorize", {"idTag": "TAG1"}]
    ep.receive('[3,"%s",{"idTagInfo":{"status":"Accepted"}}]' % calls[3].id)
    assert order == [("result", "a", HEARTBEAT_RESULT), ("result", "b", HEARTBEAT_RESULT),
                     ("result", "c", HEARTBEAT_RESULT),
                     ("result", "auth", {"idTagInfo": {"status": "Accepted"}})]
    assert [f[1] for f in frames(sent)] == [c.id for c in calls]
    assert not ep.busy and ep.pending == 0
    assert len(sent) == 4


def test_call_without_callbacks():
    ep, sent, _ = make()
    c1 = ep.call("Heartbeat", {})
    c2 = ep.call("Heartbeat", {})
    answer(ep, c1)
    ep.receive(framing.encode_error(c2.id, "GenericError"))
    assert len(sent) == 2 and ep.pending == 0


def test_invalid_outgoing_payload_raises_and_sends_nothing():
    ep, sent, _ = make()
    for action, payload in [
        ("Authorize", {}),                                   # required field missing
        ("Authorize", {"idTag": "T" * 21}),                  # too long
        ("Authorize", {"idTag": 5}),                         # wrong type
        ("Heartbeat", {"extra": 1}),                         # unknown field
        ("Heartbeat", None),                                 # not an object
        ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}),
        ("Reset", {"type": "Hard"}),                         # sent by the central system
        ("FooBar", {}),                                      # unknown action
    ]:
        with pytest.raises(ValueError):
            ep.call(action, payload)
    assert sent == [] and ep.pending == 0 and not ep.busy
    # the engine is still usable
    heartbeat(ep)
    assert len(sent) == 1


def test_invalid_outgoing_number_raises_value_error():
    cs, sent, _ = make(rpc.CENTRAL_SYSTEM)
    profile = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
               "chargingProfileKind": "Absolute",
               "chargingSchedule": {"chargingRateUnit": "A",
                                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0.0}]}}
    for bad in (float("inf"), float("nan"), float("-inf"), 16.05, "16"):
        profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = bad
        with pytest.raises(ValueError):
            cs.call("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile})
    assert sent == []
    profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 16.1
    cs.call("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile})
    assert len(sent) == 1


def test_calls_while_disconnected_go_out_on_connection_up():
    ep, sent, clock = make(up=False)
    assert not ep.connected
    c1, _ = heartbeat(ep)
    c2, _ = heartbeat(ep)
    assert sent == [] and ep.pending == 2 and not ep.busy
    assert ep.poll() is None
    clock.t += 100          # time spent waiting for the link does not count
    ep.connection_up()
    assert ep.connected
    assert frames(sent) == [[2, c1.id, "Heartbeat", {}]]
    assert c1.sent_at == clock.t and c1.deadline == clock.t + rpc.DEFAULT_RESPONSE_TIMEOUT
    answer(ep, c1)
    assert frames(sent)[1] == [2, c2.id, "Heartbeat", {}]


def test_connection_up_twice_sends_once():
    ep, sent, _ = make()
    heartbeat(ep)
    ep.connection_up()
    assert len(sent) == 1


def test_connection_down_fails_outstanding_and_queued():
    ep, sent, _ = make()
    log = []
    for name in "abc":
        rec = Recorder(log, name)
        ep.call("Heartbeat", {}, rec.on_result, rec.on_error)
    recs_seen = []
    c, rec = heartbeat(ep)
    recs_seen.append(rec)
    ep.connection_down()
    assert log == [("error", "a", errors.DISCONNECTED), ("error", "b", errors.DISCONNECTED),
                   ("error", "c", errors.DISCONNECTED)]
    code, description, details = rec.errors[0]
    assert code == errors.DISCONNECTED and isinstance(description, str) and details == {}
    assert not ep.connected and not ep.busy and ep.pending == 0
    assert len(sent) == 1
    # a late answer to the failed call is ignored
    answer(ep, c)
    assert rec.results == [] and len(sent) == 1


def test_call_requeued_from_on_error_goes_out_on_reconnect():
    ep, sent, _ = make()
    retried = []

    def on_error(code, description, details):
        if code == errors.DISCONNECTED and not retried:
            retried.append(ep.call("Heartbeat", {}))

    first = ep.call("Heartbeat", {}, on_error=on_error)
    ep.connection_down()
    assert len(retried) == 1 and ep.pending == 1 and len(sent) == 1
    ep.connection_up()
    assert frames(sent)[1] == [2, retried[0].id, "Heartbeat", {}]
    assert retried[0].id != first.id


# --- time -------------------------------------------------------------------------

def test_response_timeout_fails_the_call_and_sends_the_next():
    ep, sent, clock = make(response_timeout=10.0)
    c1, r1 = heartbeat(ep)
    c2, r2 = heartbeat(ep)
    assert ep.poll() == pytest.approx(10.0)
    clock.t += 9.5
    assert ep.poll() == pytest.approx(0.5)
    assert r1.errors == [] and len(sent) == 1
    clock.t += 0.5
    remaining = ep.poll()
    assert [e[0] for e in r1.errors] == [errors.TIMEOUT]
    assert r1.errors[0][2] == {}
    assert frames(sent)[1] == [2, c2.id, "Heartbeat", {}]
    assert remaining == pytest.approx(10.0)
    assert c2.sent_at == clock.t
    # the timed-out call's late answer is dropped; the new one is still waited for
    answer(ep, c1)
    assert r1.results == [] and r2.results == [] and ep.busy
    answer(ep, c2)
    assert r2.results == [HEARTBEAT_RESULT]
    assert ep.poll() is None


def test_per_call_timeout_and_explicit_now():
    ep, sent, clock = make()
    c1, r1 = heartbeat(ep, timeout=2.0)
    assert c1.deadline == T0 + 2.0
    assert ep.poll(now=T0 + 1.25) == pytest.approx(0.75)
    assert ep.poll(now=T0 + 2.0) is None      # deadline reached: timed out
    assert [e[0] for e in r1.errors] == [errors.TIMEOUT]


def test_poll_after_several_timeouts():
    ep, sent, clock = make(response_timeout=5.0)
    recs = [heartbeat(ep)[1] for _ in range(3)]
    for i in range(3):
        clock.t += 5.0
        ep.poll()
        assert [len(r.errors) for r in recs] == [1] * (i + 1) + [0] * (2 - i)
    assert len(sent) == 3 and ep.pending == 0 and ep.poll() is None


def test_last_tx():
    ep, sent, clock = make()
    assert ep.last_tx is None
    clock.t = 1234.5
    c, _ = heartbeat(ep)
    assert ep.last_tx == 1234.5
    clock.t = 1300.0
    answer(ep, c)                      # receiving does not count
    assert ep.last_tx == 1234.5
    ep.on("Reset", lambda p: {"status": "Accepted"})
    ep.receive('[2,"r1","Reset",{"type":"Soft"}]')
    assert ep.last_tx == 1300.0
    clock.t = 1400.0
    ep.receive('[2,"r2","FooBar",{}]')  # a CALLERROR is a frame too
    assert ep.last_tx == 1400.0


# --- answers to our calls -----------------------------------------------------------

@pytest.mark.parametrize("payload, code", [
    ({}, errors.OCCURENCE_CONSTRAINT_VIOLATION),
    ({"currentTime": 1700000000}, errors.TYPE_CONSTRAINT_VIOLATION),
    ({"currentTime": "yesterday"}, errors.PROPERTY_CONSTRAINT_VIOLATION),
    ({"currentTime": NOW, "extra": True}, errors.FORMATION_VIOLATION),
    ([], errors.FORMATION_VIOLATION),
])
def test_callresult_breaking_the_schema_fails_the_call(payload, code):
    ep, sent, _ = make()
    c1, r1 = heartbeat(ep)
    c2, _ = heartbeat(ep)
    answer(ep, c1, payload)
    assert r1.results == []
    assert len(r1.errors) == 1 and r1.errors[0][0] == code
    assert frames(sent)[1][1] == c2.id


def test_callerror_reaches_on_error():
    ep, sent, _ = make()
    c1, r1 = heartbeat(ep)
    c2, _ = heartbeat(ep)
    ep.receive('[4,"%s","NotSupported","not here",{"why":"because"}]' % c1.id)
    assert r1.errors == [("NotSupported", "not here", {"why": "because"})]
    assert r1.results == []
    assert frames(sent)[1][1] == c2.id


def test_answer_with_unknown_id_is_dropped():
    ep, sent, _ = make()
    c, rec = heartbeat(ep)
    ep.receive(framing.encode_result("nope", HEARTBEAT_RESULT))
    ep.receive(framing.encode_error("nope", "GenericError", "x"))
    ep.receive('[3,"nope"]')
    assert rec.results == [] and rec.errors == [] and ep.busy and len(sent) == 1
    answer(ep, c)
    assert rec.results == [HEARTBEAT_RESULT]


def test_answer_while_nothing_outstanding_is_dropped():
    ep, sent, _ = make()
    ep.receive(framing.encode_result("x", {}))
    ep.receive('[4,"x","GenericError","",{}]')
    assert sent == [] and not ep.busy


@pytest.mark.parametrize("text", ['[3,"%s"]', '[3,"%s",{},{}]', '[4,"%s","GenericError"]',
                                  '[4,"%s","GenericError","d",null]'])
def test_unreadable_answer_fails_the_outstanding_call_at_once(text):
    ep, sent, clock = make()
    c1, r1 = heartbeat(ep)
    c2, _ = heartbeat(ep)
    ep.receive(text % c1.id)
    assert len(r1.errors) == 1 and r1.errors[0][0] == errors.FORMATION_VIOLATION
    assert frames(sent)[1][1] == c2.id
    assert len(sent) == 2        # never answered: a CALLRESULT/CALLERROR gets no reply


def _crashing_validator(monkeypatch, when):
    """Make rpc's validator blow up (as a validator bug would) for payloads `when` picks."""
    real = rpc.validate

    def validate(spec, payload):
        if when(payload):
            raise OverflowError("validator bug")
        return real(spec, payload)

    monkeypatch.setattr(rpc, "validate", validate)


def test_answer_whose_validation_crashes_fails_the_call(monkeypatch):
    ep, sent, _ = make()
    c1, r1 = heartbeat(ep)
    c2, r2 = heartbeat(ep)
    _crashing_validator(monkeypatch, lambda p: p == {"currentTime": "crash"})
    answer(ep, c1, {"currentTime": "crash"})
    assert r1.results == [] and len(r1.errors) == 1 and r1.errors[0][0] == errors.INTERNAL_ERROR
    assert frames(sent)[1][1] == c2.id      # the queue did not stall
    answer(ep, c2)
    assert r2.results == [HEARTBEAT_RESULT]


def test_incoming_call_whose_validation_crashes_is_internal_error(monkeypatch):
    ep, sent, _ = make()
    ep.on("Reset", lambda p: {"status": "Accepted"})
    _crashing_validator(monkeypatch, lambda p: p == {"type": "Soft"})
    ep.receive('[2,"v1","Reset",{"type":"Soft"}]')
    assert answered(sent)[:3] == [4, "v1", errors.INTERNAL_ERROR]
    ep.receive('[2,"v2","Reset",{"type":"Hard"}]')
    assert sent[-1] == '[3,"v2",{"status":"Accepted"}]'


def test_handler_answer_whose_validation_crashes_is_internal_error(monkeypatch):
    ep, sent, _ = make()
    ep.on("Reset", lambda p: {"status": "Rejected"} if p["type"] == "Soft" else {"status": "Accepted"})
    _crashing_validator(monkeypatch, lambda p: p == {"status": "Rejected"})
    ep.receive('[2,"w1","Reset",{"type":"Soft"}]')
    assert answered(sent)[:3] == [4, "w1", errors.INTERNAL_ERROR]
    ep.receive('[2,"w2","Reset",{"type":"Hard"}]')
    assert sent[-1] == '[3,"w2",{"status":"Accepted"}]'


def test_outgoing_payload_whose_validation_crashes_raises_value_error(monkeypatch):
    ep, sent, _ = make()
    _crashing_validator(monkeypatch, lambda p: p == {"idTag": "CRASH"})
    with pytest.raises(ValueError):
        ep.call("Authorize", {"idTag": "CRASH"})
    assert sent == [] and ep.pending == 0


def test_raising_callbacks_do_not_crash_the_engine():
    ep, sent, clock = make(response_timeout=5.0)

    def boom(*args):
        raise RuntimeError("callback bug")

    c1 = ep.call("Heartbeat", {}, on_result=boom, on_error=boom)
    c2 = ep.call("Heartbeat", {}, on_result=boom, on_error=boom)
    c3 = ep.call("Heartbeat", {}, on_result=boom, on_error=boom)
    c4 = ep.call("Heartbeat", {}, on_result=boom, on_error=boom)
    c5 = ep.call("Heartbeat", {}, on_result=boom, on_error=boom)
    answer(ep, c1)                                        # on_result raises
    assert frames(sent)[-1][1] == c2.id
    ep.receive(framing.encode_error(c2.id, "GenericError"))  # on_error raises
    assert frames(sent)[-1][1] == c3.id
    clock.t += 5.0
    ep.poll()                                             # on_error raises on timeout
    assert frames(sent)[-1][1] == c4.id
    answer(ep, c4, {})                                    # invalid answer: on_error raises
    assert frames(sent)[-1][1] == c5.id
    ep.connection_down()                                  # on_error raises on disconnect
    assert ep.pending == 0


def test_send_failure_does_not_crash():
    clock = Clock()

    def send(text):
        raise OSError("link gone")

    ep = RpcEndpoint(rpc.CHARGE_POINT, send, clock=clock)
    ep.connection_up()
    c = ep.call("Heartbeat", {})
    assert ep.busy and ep.last_tx == T0
    ep.receive('[2,"x","FooBar",{}]')     # answering fails too, silently
    answer(ep, c)
    assert not ep.busy


# --- incoming calls ---------------------------------------------------------------

def answered(sent):
    return json.loads(sent[-1])


def test_incoming_unknown_action_not_implemented():
    ep, sent, _ = make()
    ep.receive('[2,"m1","FooBar",{}]')
    f = answered(sent)
    assert f[:3] == [4, "m1", errors.NOT_IMPLEMENTED] and f[4] == {}
    assert "FooBar" in f[3]


def test_incoming_known_action_without_handler_not_supported():
    ep, sent, _ = make()
    ep.receive('[2,"m2","Reset",{"type":"Hard"}]')
    assert answered(sent)[:3] == [4, "m2", errors.NOT_SUPPORTED]


def test_incoming_action_in_the_wrong_direction_not_supported():
    ep, sent, _ = make()
    ep.receive('[2,"m3","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
    assert answered(sent)[:3] == [4, "m3", errors.NOT_SUPPORTED]
    cs, cs_sent, _ = make(rpc.CENTRAL_SYSTEM)
    cs.receive('[2,"m4","Reset",{"type":"Hard"}]')
    assert answered(cs_sent)[:3] == [4, "m4", errors.NOT_SUPPORTED]


def test_incoming_call_answered_exactly():
    ep, sent, _ = make()
    seen = []
    ep.on("Reset", lambda p: seen.append(p) or {"status": "Accepted"})
    ep.receive('[2,"m5","Reset",{"type":"Soft"}]')
    assert sent == ['[3,"m5",{"status":"Accepted"}]']
    assert seen == [{"type": "Soft"}]


def test_incoming_data_transfer_both_directions():
    ep, sent, _ = make()
    ep.on("DataTransfer", lambda p: {"status": "UnknownVendorId"})
    ep.receive('[2,"d1","DataTransfer",{"vendorId":"acme"}]')
    assert sent == ['[3,"d1",{"status":"UnknownVendorId"}]']
    c = ep.call("DataTransfer", {"vendorId": "acme", "data": "x"})
    assert frames(sent)[1] == [2, c.id, "DataTransfer", {"vendorId": "acme", "data": "x"}]


@pytest.mark.parametrize("payload, code", [
    ('{"type":"Hard","extra":1}', errors.FORMATION_VIOLATION),
    ('["Hard"]', errors.FORMATION_VIOLATION),
    ('{}', errors.OCCURENCE_CONSTRAINT_VIOLATION),
    ('{"type":1}', errors.TYPE_CONSTRAINT_VIOLATION),
    ('{"type":"Medium"}', errors.PROPERTY_CONSTRAINT_VIOLATION),
])
def test_incoming_invalid_payload_mapped_code(payload, code):
    ep, sent, _ = make()
    calls = []
    ep.on("Reset", lambda p: calls.append(p) or {"status": "Accepted"})
    ep.receive('[2,"v1","Reset",%s]' % payload)
    f = answered(sent)
    assert f[:3] == [4, "v1", code]
    assert isinstance(f[3], str) and f[3]
    assert calls == []


def test_incoming_invalid_nested_payload_codes():
    ep, sent, _ = make()
    ep.on("GetConfiguration", lambda p: {})
    ep.receive('[2,"g1","GetConfiguration",{"key":["a",7]}]')
    assert answered(sent)[:3] == [4, "g1", errors.TYPE_CONSTRAINT_VIOLATION]
    ep.on("ChangeAvailability", lambda p: {"status": "Accepted"})
    ep.receive('[2,"g2","ChangeAvailability",{"connectorId":1.5,"type":"Operative"}]')
    assert answered(sent)[:3] == [4, "g2", errors.TYPE_CONSTRAINT_VIOLATION]
    ep.on("RemoteStartTransaction", lambda p: {"status": "Accepted"})
    ep.receive('[2,"g3","RemoteStartTransaction",{"idTag":"%s"}]' % ("T" * 21))
    assert answered(sent)[:3] == [4, "g3", errors.PROPERTY_CONSTRAINT_VIOLATION]


def test_handler_raising_ocpp_error():
    ep, sent, _ = make()

    def handler(p):
        raise errors.OcppError(errors.PROPERTY_CONSTRAINT_VIOLATION, "unknown key", {"key": p["key"]})

    ep.on("ChangeConfiguration", handler)
    ep.receive('[2,"h1","ChangeConfiguration",{"key":"Foo","value":"1"}]')
    assert sent == ['[4,"h1","PropertyConstraintViolation","unknown key",{"key":"Foo"}]']


def test_handler_raising_ocpp_error_without_details():
    ep, sent, _ = make()

    def handler(p):
        raise errors.OcppError(errors.GENERIC_ERROR)

    ep.on("ClearCache", handler)
    ep.receive('[2,"h2","ClearCache",{}]')
    assert sent == ['[4,"h2","GenericError","",{}]']


def test_handler_raising_other_exception_is_internal_error_and_engine_keeps_working():
    ep, sent, _ = make()
    state = {"fail": True}

    def handler(p):
        if state["fail"]:
            raise KeyError("oops")
        return {"status": "Accepted"}

    ep.on("Reset", handler)
    ep.receive('[2,"i1","Reset",{"type":"Hard"}]')
    f = answered(sent)
    assert f[:3] == [4, "i1", errors.INTERNAL_ERROR] and f[4] == {}
    state["fail"] = False
    ep.receive('[2,"i2","Reset",{"type":"Hard"}]')
    assert sent[-1] == '[3,"i2",{"status":"Accepted"}]'
    c, rec = heartbeat(ep)
    answer(ep, c)
    assert rec.results == [HEARTBEAT_RESULT]


@pytest.mark.parametrize("result", [
    {"status": "Maybe"}, {}, None, "Accepted", {"status": "Accepted", "extra": 1},
    Reply({"status": 1}),
])
def test_handler_returning_invalid_answer_is_internal_error(result):
    ep, sent, _ = make()
    ep.on("Reset", lambda p: result)
    ep.receive('[2,"j1","Reset",{"type":"Hard"}]')
    assert answered(sent)[:3] == [4, "j1", errors.INTERNAL_ERROR]


def test_invalid_reply_does_not_run_then():
    ep, sent, _ = make()
    ran = []
    ep.on("Reset", lambda p: Reply({"status": "Nope"}, then=lambda: ran.append(1)))
    ep.receive('[2,"j2","Reset",{"type":"Hard"}]')
    assert answered(sent)[:3] == [4, "j2", errors.INTERNAL_ERROR]
    assert ran == []


def test_handler_returning_non_finite_number_is_internal_error():
    ep, sent, _ = make()
    schedule = {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0.0}]}
    ep.on("GetCompositeSchedule",
          lambda p: {"status": "Accepted", "connectorId": 1, "chargingSchedule": schedule})
    for i, bad in enumerate((float("nan"), float("inf"), float("-inf"))):
        schedule["chargingSchedulePeriod"][0]["limit"] = bad
        ep.receive('[2,"k%d","GetCompositeSchedule",{"connectorId":1,"duration":60}]' % i)
        assert answered(sent)[:3] == [4, "k%d" % i, errors.INTERNAL_ERROR]
    schedule["chargingSchedulePeriod"][0]["limit"] = 32.0
    ep.receive('[2,"k9","GetCompositeSchedule",{"connectorId":1,"duration":60}]')
    assert answered(sent) == [3, "k9", {"status": "Accepted", "connectorId": 1,
                                         "chargingSchedule": schedule}]


def test_incoming_numbers_beyond_float_range_are_answered():
    ep, sent, _ = make()
    ep.on("SetChargingProfile", lambda p: {"status": "Accepted"})
    template = ('[2,"%s","SetChargingProfile",{"connectorId":1,"csChargingProfiles":'
                '{"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxDefaultProfile",'
                '"chargingProfileKind":"Absolute","chargingSchedule":{"chargingRateUnit":"A",'
                '"chargingSchedulePeriod":[{"startPeriod":0,"limit":%s}]}}}]')
    ep.receive(template % ("s1", "1e400"))
    assert answered(sent)[:3] == [4, "s1", errors.FORMATION_VIOLATION]
    ep.receive(template % ("s2", "-1e999"))
    assert answered(sent)[:3] == [4, "s2", errors.FORMATION_VIOLATION]
    ep.receive(template % ("s4", "1" + "0" * 400))   # huge but finite: answered either way
    assert answered(sent)[:2] in ([3, "s4"], [4, "s4"])
    ep.receive(template % ("s3", "16.1"))
    assert sent[-1] == '[3,"s3",{"status":"Accepted"}]'


def test_reply_then_runs_after_the_callresult_was_sent():
    ep, sent, _ = make()
    seen_at_then = []
    ep.on("Reset", lambda p: Reply({"status": "Accepted"},
                                   then=lambda: seen_at_then.append(list(sent))))
    ep.receive('[2,"t1","Reset",{"type":"Hard"}]')
    assert seen_at_then == [['[3,"t1",{"status":"Accepted"}]']]


def test_failing_then_does_not_crash():
    ep, sent, _ = make()

    def then():
        raise RuntimeError("reboot failed")

    ep.on("Reset", lambda p: Reply({"status": "Accepted"}, then=then))
    ep.receive('[2,"t2","Reset",{"type":"Hard"}]')
    assert sent == ['[3,"t2",{"status":"Accepted"}]']
    ep.receive('[2,"t3","Reset",{"type":"Soft"}]')
    assert sent[-1] == '[3,"t3",{"status":"Accepted"}]'


def test_then_may_send_a_call():
    ep, sent, _ = make()
    ep.on("RemoteStartTransaction",
          lambda p: Reply({"status": "Accepted"},
                          then=lambda: ep.call("StatusNotification",
                                               {"connectorId": 1, "errorCode": "NoError",
                                                "status": "Preparing"})))
    ep.receive('[2,"rs","RemoteStartTransaction",{"idTag":"TAG"}]')
    f = frames(sent)
    assert f[0] == [3, "rs", {"status": "Accepted"}]
    assert f[1][0] == 2 and f[1][2] == "StatusNotification"


def test_incoming_call_while_our_call_is_outstanding():
    ep, sent, _ = make()
    c, rec = heartbeat(ep)
    ep.on("ClearCache", lambda p: {"status": "Accepted"})
    ep.receive('[2,"%s","ClearCache",{}]' % c.id)      # same id, other direction
    assert sent[-1] == '[3,"%s",{"status":"Accepted"}]' % c.id
    assert ep.busy and rec.results == []
    answer(ep, c)
    assert rec.results == [HEARTBEAT_RESULT]


# --- bad frames ---------------------------------------------------------------------

def test_bad_frames_answered_or_dropped():
    ep, sent, _ = make()
    ep.receive('[2,"b1","Heartbeat"]')
    assert sent[-1] == '[4,"b1","ProtocolError","CALL has 3 of 4 elements",{}]'
    ep.receive('[2,"b2","Reset",{"type":"Hard"},{}]')
    assert answered(sent)[:3] == [4, "b2", errors.FORMATION_VIOLATION]
    ep.receive('[2,"b3","Reset",{"type":')
    assert answered(sent)[:3] == [4, "b3", errors.FORMATION_VIOLATION]
    long_id = "L" * 37
    ep.receive('[2,"%s","Reset",{"type":"Hard"}]' % long_id)
    assert answered(sent)[:3] == [4, long_id, errors.FORMATION_VIOLATION]
    n = len(sent)
    for junk in ("hello", "[]", "{}", "[9,\"x\"]", "[2,5,\"Reset\",{}]", b"\xff\xfe", ""):
        ep.receive(junk)
    assert len(sent) == n


def test_oversized_frame_answered_when_id_recoverable():
    ep, sent, _ = make()
    ep.on("DataTransfer", lambda p: {"status": "Accepted"})
    big = "x" * (framing.MAX_FRAME_CHARS + 1)
    ep.receive('[2,"big","DataTransfer",{"vendorId":"v","data":"%s"}]' % big)
    f = answered(sent)
    assert f[:3] == [4, "big", errors.FORMATION_VIOLATION]
    n = len(sent)
    ep.receive('[3,"big",{"data":"%s"}]' % big)
    assert len(sent) == n


def test_bytes_are_processed_like_text():
    ep, sent, _ = make()
    ep.on("Reset", lambda p: {"status": "Accepted"})
    ep.receive(b'[2,"y1","Reset",{"type":"Hard"}]')
    ep.receive(bytearray(b'[2,"y2","Reset",{"type":"Hard"}]'))
    assert sent == ['[3,"y1",{"status":"Accepted"}]', '[3,"y2",{"status":"Accepted"}]']


# --- trace and redaction ---------------------------------------------------------------

def test_trace_sees_tx_and_rx_with_authorization_key_masked():
    trace = []
    ep, sent, _ = make(trace=lambda d, t: trace.append((d, t)))
    got = []
    ep.on("ChangeConfiguration", lambda p: got.append(p) or {"status": "Accepted"})
    ep.on("GetConfiguration", lambda p: {"configurationKey": [
        {"key": "AuthorizationKey", "readonly": False, "value": "0123456789abcdef"}]})
    ep.receive('[2,"c1","ChangeConfiguration",{"key":"AuthorizationKey","value":"s3cr3t"}]')
    ep.receive(b'[2,"c2","ChangeConfiguration",{"key":"AuthorizationKey","value":"b1nary"}]')
    ep.receive('[2,"c3","GetConfiguration",{"key":["AuthorizationKey"]}]')
    ep.receive('[2,"c4","ChangeConfiguration",{"key":"HeartbeatInterval","value":"300"}]')
    c, _ = heartbeat(ep)

    # the engine itself sees the real values
    assert got[0] == {"key": "AuthorizationKey", "value": "s3cr3t"}
    assert got[1]["value"] == "b1nary"
    assert "0123456789abcdef" in sent[2]
    # the trace never does
    text = repr(trace)
    for secret in ("s3cr3t", "b1nary", "0123456789abcdef"):
        assert secret not in text
    assert trace[0] == ("rx", '[2,"c1","ChangeConfiguration",{"key":"AuthorizationKey","value":"***"}]')
    assert trace[1] == ("tx", '[3,"c1",{"status":"Accepted"}]')
    assert trace[2] == ("rx", '[2,"c2","ChangeConfiguration",{"key":"AuthorizationKey","value":"***"}]')
    assert trace[5] == ("tx", '[3,"c3",{"configurationKey":[{"key":"AuthorizationKey",'
                              '"readonly":false,"value":"***"}]}]')
    # other frames pass unchanged
    assert trace[6] == ("rx", '[2,"c4","ChangeConfiguration",{"key":"HeartbeatInterval","value":"300"}]')
    assert trace[-1] == ("tx", sent[-1]) == ("tx", '[2,"%s","Heartbeat",{}]' % c.id)
    assert [d for d, _ in trace] == ["rx", "tx"] * 4 + ["tx"]


def test_trace_of_undecodable_bytes():
    trace = []
    ep, sent, _ = make(trace=lambda d, t: trace.append((d, t)))
    ep.receive(b"\xff\xfe[2")
    assert trace == [("rx", repr(b"\xff\xfe[2"))]
    assert sent == []


def test_raising_trace_hook_does_not_crash():
    def trace(direction, text):
        raise RuntimeError("trace bug")

    ep, sent, _ = make(trace=trace)
    ep.on("Reset", lambda p: {"status": "Accepted"})
    c, rec = heartbeat(ep)
    assert len(sent) == 1
    ep.receive('[2,"z1","Reset",{"type":"Hard"}]')
    assert sent[-1] == '[3,"z1",{"status":"Accepted"}]'
    answer(ep, c)
    assert rec.results == [HEARTBEAT_RESULT]


def test_log_does_not_leak_secret_of_a_bad_frame(caplog):
    ep, sent, _ = make()
    with caplog.at_level(logging.DEBUG, logger="ocpp.rpc"):
        ep.receive('[2,"c1","ChangeConfiguration",{"key":"AuthorizationKey","value":"s3cr3t"},{}]')
        ep.receive(b'[2,"c2","ChangeConfiguration",{"key":"AuthorizationKey","value":"s3cr3t"}')
    assert caplog.records
    assert "s3cr3t" not in caplog.text
    assert len(sent) == 2


# --- the owner's admission rule (OCPP 1.6 4.2) ------------------------------------------
def test_admission_silent_drops_calls_and_broken_calls_unanswered():
    ep, sent, _ = make()
    handled = []
    ep.on("Reset", lambda p: handled.append(p) or {"status": "Accepted"})
    ep.admission = lambda action: rpc.SILENT
    ep.receive('[2, "a1", "Reset", {"type": "Soft"}]')
    ep.receive('[2, "a2", "Reset"]')                 # broken: no CALLERROR either
    ep.receive('[2, "a3", "NoSuchAction", {}]')
    assert sent == [] and handled == []
    ep.admission = None
    ep.receive('[2, "a4", "Reset", {"type": "Soft"}]')
    assert frames(sent) == [[3, "a4", {"status": "Accepted"}]]


def test_admission_answer_replaces_the_handler_after_validation():
    ep, sent, _ = make()
    handled = []
    ep.on("RemoteStopTransaction", lambda p: handled.append(p) or {"status": "Accepted"})
    ep.admission = lambda action: {"status": "Rejected"} \
        if action == "RemoteStopTransaction" else None
    ep.receive('[2, "b1", "RemoteStopTransaction", {"transactionId": 1}]')
    ep.receive('[2, "b2", "RemoteStopTransaction", {"transactionId": "x"}]')
    got = frames(sent)
    assert got[0] == [3, "b1", {"status": "Rejected"}]
    assert got[1][:3] == [4, "b2", "TypeConstraintViolation"]
    assert handled == []


def test_a_failing_admission_rule_does_not_stall_the_engine():
    ep, sent, _ = make()
    ep.on("Reset", lambda p: {"status": "Accepted"})
    ep.admission = lambda action: 1 / 0
    ep.receive('[2, "c1", "Reset", {"type": "Hard"}]')
    assert frames(sent) == [[3, "c1", {"status": "Accepted"}]]
