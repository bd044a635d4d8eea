"""ocpp_core.framing: OCPP-J frames in and out; decode() never raises."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_core import errors, framing
from ocpp_core.framing import CALL, CALLERROR, CALLRESULT, BadFrame, Frame, decode


def _bad(text):
    f = decode(text)
    assert isinstance(f, BadFrame), "expected a BadFrame for %r" % (text[:80],)
    assert isinstance(f.reason, str) and f.reason
    return f


def _unanswerable(f):
    return f.reply_id is None and f.answer_to is None


# --- encoding -----------------------------------------------------------------

def test_encode_call_exact():
    assert framing.encode_call("19223201", "BootNotification",
                               {"chargePointVendor": "VendorX", "chargePointModel": "M1"}) == \
        '[2,"19223201","BootNotification",{"chargePointVendor":"VendorX","chargePointModel":"M1"}]'
    assert framing.encode_call("1", "Heartbeat", {}) == '[2,"1","Heartbeat",{}]'


def test_encode_result_exact():
    assert framing.encode_result("abc", {"status": "Accepted"}) == \
        '[3,"abc",{"status":"Accepted"}]'
    assert framing.encode_result("abc", {}) == '[3,"abc",{}]'


def test_encode_error_exact_and_defaults():
    assert framing.encode_error("162376037", "NotSupported", "SetDisplayMessageRequest not implemented") == \
        '[4,"162376037","NotSupported","SetDisplayMessageRequest not implemented",{}]'
    assert framing.encode_error("1", "GenericError") == '[4,"1","GenericError","",{}]'
    assert framing.encode_error("1", "InternalError", "x", {"a": 1}) == \
        '[4,"1","InternalError","x",{"a":1}]'


def test_encode_error_truncates_description_to_255():
    frame = json.loads(framing.encode_error("1", "GenericError", "d" * 1000))
    assert frame[3] == "d" * 255


def test_encode_escapes_non_ascii_and_quotes():
    text = framing.encode_call("1", "DataTransfer", {"vendorId": "v", "data": 'caf\u00e9 "q"'})
    assert text == '[2,"1","DataTransfer",{"vendorId":"v","data":"caf\\u00e9 \\"q\\""}]'
    assert decode(text).payload["data"] == 'caf\u00e9 "q"'


# --- decoding valid frames ----------------------------------------------------

def test_decode_call():
    f = decode('[2,"19223201","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
    assert isinstance(f, Frame)
    assert (f.kind, f.id, f.action) == (CALL, "19223201", "BootNotification")
    assert f.payload == {"chargePointVendor": "V", "chargePointModel": "M"}
    assert f.code is None and f.description is None and f.details is None


def test_decode_call_keeps_any_payload_type_for_the_validator():
    # the payload's shape is the validator's business (FormationViolation there)
    assert decode('[2,"1","Heartbeat",[]]').payload == []
    assert decode('[2,"1","Heartbeat",null]').payload is None


def test_decode_callresult():
    f = decode('[3,"19223201",{"status":"Accepted","currentTime":"2013-02-01T20:53:32.486Z","interval":300}]')
    assert isinstance(f, Frame)
    assert (f.kind, f.id, f.action) == (CALLRESULT, "19223201", None)
    assert f.payload == {"status": "Accepted", "currentTime": "2013-02-01T20:53:32.486Z",
                         "interval": 300}


def test_decode_callerror():
    f = decode('[4,"162376037","NotSupported","no such thing",{"hint":"x"}]')
    assert isinstance(f, Frame)
    assert (f.kind, f.id) == (CALLERROR, "162376037")
    assert (f.code, f.description, f.details) == ("NotSupported", "no such thing", {"hint": "x"})
    assert f.payload is None


def test_decode_tolerates_whitespace():
    f = decode(' \n[ 2 ,\t"a" , "Heartbeat" , { } ] \r\n')
    assert (f.kind, f.id, f.action, f.payload) == (CALL, "a", "Heartbeat", {})


@pytest.mark.parametrize("text", [
    framing.encode_call("id-1", "Authorize", {"idTag": "ABC"}),
    framing.encode_result("id-1", {"idTagInfo": {"status": "Accepted"}}),
    framing.encode_error("id-1", "FormationViolation", "bad", {"path": "idTag"}),
])
def test_encode_decode_round_trip(text):
    f = decode(text)
    assert isinstance(f, Frame)
    if f.kind == CALL:
        assert framing.encode_call(f.id, f.action, f.payload) == text
    elif f.kind == CALLRESULT:
        assert framing.encode_result(f.id, f.payload) == text
    else:
        assert framing.encode_error(f.id, f.code, f.description, f.details) == text


def test_decode_bytes_and_bytearray():
    for raw in (b'[2,"a","Heartbeat",{}]', bytearray(b'[2,"a","Heartbeat",{}]')):
        f = decode(raw)
        assert isinstance(f, Frame)
        assert (f.kind, f.id, f.action, f.payload) == (CALL, "a", "Heartbeat", {})
    f = decode('[2,"a","DataTransfer",{"vendorId":"v","data":"\u00e9\u20ac"}]'.encode("utf-8"))
    assert f.payload["data"] == "\u00e9\u20ac"


def test_decode_non_utf8_bytes():
    f = _bad(b'[2,"a","DataTransfer",{"vendorId":"\xff\xfe"}]')
    assert _unanswerable(f)
    f = _bad(bytearray(b"\xc3("))
    assert _unanswerable(f)


# --- decoding bad frames ------------------------------------------------------

@pytest.mark.parametrize("text", ["", "hello", "[2,", '{"a":', "[2 \"a\"]", "[1,2,]", "\x00"])
def test_not_json_without_recoverable_id_is_dropped(text):
    f = _bad(text)
    assert _unanswerable(f)


def test_not_json_with_call_head_is_answered_with_formation_violation():
    f = _bad('[2, "abc", "Heartbeat", {')
    assert (f.reply_id, f.code) == ("abc", errors.FORMATION_VIOLATION)
    f = _bad('  [ 2 ,"x-1","Authorize",{"idTag":}]')
    assert (f.reply_id, f.code) == ("x-1", errors.FORMATION_VIOLATION)


@pytest.mark.parametrize("text", [
    '[20,"abc",{',          # not a CALL
    '[3,"abc",{',           # a broken CALLRESULT is never answered
    '[2.0,"abc",{',
    '[2,abc",{',
    '[2,"",{',              # empty id
    '[2,"a\\"b",{',         # escape in the id: not recovered
    '[2,"' + "i" * 37 + '",{',
    '[2,"abc',              # unterminated id
])
def test_not_json_with_unrecoverable_id(text):
    f = _bad(text)
    assert f.reply_id is None


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numbers_rejected(constant):
    f = _bad('[2,"n1","DataTransfer",{"vendorId":"v","x":%s}]' % constant)
    assert (f.reply_id, f.code) == ("n1", errors.FORMATION_VIOLATION)
    f = _bad('[3,"n1",{"x":%s}]' % constant)
    assert f.reply_id is None


def test_finite_floats_accepted():
    f = decode('[3,"n1",{"a":1.5,"b":-0.0,"c":1e-400,"d":1.7976931348623157e308}]')
    assert f.payload == {"a": 1.5, "b": 0.0, "c": 0.0, "d": 1.7976931348623157e308}


@pytest.mark.parametrize("text", ['{}', '{"0":2}', '"[2]"', '2', 'null', 'true'])
def test_not_an_array(text):
    assert _unanswerable(_bad(text))


def test_empty_array():
    assert _unanswerable(_bad("[]"))
    assert _unanswerable(_bad(" [ ] "))


@pytest.mark.parametrize("kind", ["0", "1", "5", "-2", "2.0", "true", "false", '"2"', "null", "[2]"])
def test_unknown_message_type(kind):
    assert _unanswerable(_bad('[%s,"a","Heartbeat",{}]' % kind))


@pytest.mark.parametrize("text", [
    "[2]", "[3]", "[4]",
    '[2,5,"Heartbeat",{}]', '[2,null,"Heartbeat",{}]', '[2,["a"],"Heartbeat",{}]',
    '[2,"","Heartbeat",{}]',
    '[3,7,{}]', '[4,{},"GenericError","",{}]',
])
def test_id_missing_or_not_a_string(text):
    assert _unanswerable(_bad(text))


def test_call_with_three_elements_is_a_protocol_error():
    f = _bad('[2,"p1","Heartbeat"]')
    assert (f.reply_id, f.code) == ("p1", errors.PROTOCOL_ERROR)
    f = _bad('[2,"p2"]')
    assert (f.reply_id, f.code) == ("p2", errors.PROTOCOL_ERROR)


def test_call_with_five_elements_is_a_formation_violation():
    f = _bad('[2,"f1","Heartbeat",{},{}]')
    assert (f.reply_id, f.code) == ("f1", errors.FORMATION_VIOLATION)


@pytest.mark.parametrize("action", ["5", "null", "{}", '["Heartbeat"]', "true"])
def test_call_with_non_string_action_is_a_formation_violation(action):
    f = _bad('[2,"f2",%s,{}]' % action)
    assert (f.reply_id, f.code) == ("f2", errors.FORMATION_VIOLATION)


def test_id_of_36_chars_accepted_37_rejected():
    ok = "i" * framing.MAX_ID_CHARS
    assert decode('[2,"%s","Heartbeat",{}]' % ok).id == ok
    long_id = "i" * (framing.MAX_ID_CHARS + 1)
    f = _bad('[2,"%s","Heartbeat",{}]' % long_id)
    assert (f.reply_id, f.code) == (long_id, errors.FORMATION_VIOLATION)


def test_frame_at_the_size_limit_accepted():
    head = '[2,"big","DataTransfer",{"vendorId":"v","data":"'
    tail = '"}]'
    text = head + "a" * (framing.MAX_FRAME_CHARS - len(head) - len(tail)) + tail
    assert len(text) == framing.MAX_FRAME_CHARS
    f = decode(text)
    assert isinstance(f, Frame) and f.id == "big"


def test_oversized_call_answered_with_formation_violation():
    head = '[2,"big","DataTransfer",{"vendorId":"v","data":"'
    tail = '"}]'
    text = head + "a" * (framing.MAX_FRAME_CHARS - len(head) - len(tail) + 1) + tail
    assert len(text) == framing.MAX_FRAME_CHARS + 1
    f = _bad(text)
    assert (f.reply_id, f.code) == ("big", errors.FORMATION_VIOLATION)
    # also as bytes, and even when the JSON is broken after the head
    f = _bad(text.encode("utf-8"))
    assert (f.reply_id, f.code) == ("big", errors.FORMATION_VIOLATION)
    f = _bad(text[:-3] + "x" * 10)
    assert (f.reply_id, f.code) == ("big", errors.FORMATION_VIOLATION)


def test_oversized_frame_without_recoverable_id_dropped():
    filler = "a" * (framing.MAX_FRAME_CHARS + 10)
    for text in ('[3,"big",{"data":"%s"}]' % filler,
                 '[4,"big","GenericError","%s",{}]' % filler,
                 '{"data":"%s"}' % filler,
                 '[2,"%s","DataTransfer",{"data":"%s"}]' % ("i" * 37, filler)):
        f = _bad(text)
        assert _unanswerable(f)


def test_callresult_wrong_length_names_the_call_it_answers():
    for text in ('[3,"r1"]', '[3,"r1",{},{}]'):
        f = _bad(text)
        assert (f.answer_to, f.reply_id) == ("r1", None)


@pytest.mark.parametrize("text", [
    '[4,"e1","GenericError","d"]',
    '[4,"e1","GenericError","d",{},1]',
    '[4,"e1",5,"d",{}]',
    '[4,"e1","GenericError",null,{}]',
    '[4,"e1","GenericError","d",null]',
    '[4,"e1","GenericError","d",[]]',
])
def test_callerror_malformed_names_the_call_it_answers(text):
    f = _bad(text)
    assert (f.answer_to, f.reply_id) == ("e1", None)


def test_deeply_nested_json_does_not_raise():
    depth = 5000
    f = _bad("[" * depth + "]" * depth)
    assert _unanswerable(f)
    f = _bad('[2,"deep","DataTransfer",{"vendorId":"v","data":' + "[" * depth + "]" * depth + "}]")
    assert (f.reply_id, f.code) == ("deep", errors.FORMATION_VIOLATION)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200),
                 st.lists(_json, max_size=6).map(json.dumps),
                 st.tuples(st.sampled_from([2, 3, 4]), st.lists(_json, max_size=5))
                 .map(lambda t: json.dumps([t[0]] + t[1]))))
def test_decode_never_raises(text):
    f = decode(text)
    assert isinstance(f, (Frame, BadFrame))
    if isinstance(f, BadFrame):
        assert f.reply_id is None or (isinstance(f.reply_id, str) and f.code in errors.CALL_ERROR_CODES)
    else:
        assert f.kind in (CALL, CALLRESULT, CALLERROR) and isinstance(f.id, str) and f.id


@settings(max_examples=100, deadline=None)
@given(msg_id=st.text(min_size=1, max_size=36),
       action=st.text(min_size=1, max_size=40),
       payload=st.dictionaries(st.text(max_size=8), _json, max_size=4))
def test_call_round_trip_property(msg_id, action, payload):
    f = decode(framing.encode_call(msg_id, action, payload))
    assert isinstance(f, Frame)
    assert (f.kind, f.id, f.action, f.payload) == (CALL, msg_id, action, payload)
