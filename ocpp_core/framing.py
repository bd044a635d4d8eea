"""OCPP-J frames: CALL [2, id, action, payload], CALLRESULT [3, id, payload],
CALLERROR [4, id, code, description, details].

decode() never raises on bad input: it returns a Frame, or a BadFrame that says
whether (and how) the peer can be answered.

JSON goes through CPython's C accelerator (_json) directly when it is there: the
`json` package would pull in `re` (about 1 MiB resident) for nothing we use, and
json.loads/dumps with keyword arguments build a new decoder/encoder per call.
Elsewhere (PyPy, other builds) the public `json` module does the same work with
the same settings, so the output is identical either way. Where json has no
JSONDecoder (MicroPython) the strict scanner of ocpp_core.json_strict decodes
and json.dumps(value, separators) encodes.
"""

from ocpp_core.errors import FORMATION_VIOLATION, PROTOCOL_ERROR

CALL = 2
CALLRESULT = 3
CALLERROR = 4

MAX_FRAME_CHARS = 65536   # far larger than any legitimate 1.6 message
MAX_ID_CHARS = 36         # OCPP-J 1.6 section 4.1.3

_DUMPS_SEPARATORS = (",", ":")
_JSON_WHITESPACE = " \t\n\r"   # what json.loads skips around the value


def _reject_constant(name):
    # json.loads would otherwise turn NaN/Infinity into floats: not JSON.
    raise ValueError("%s is not JSON" % name)


def _finite_float(text):
    # A number like 1e400 would otherwise become float('inf') and slip past the
    # NaN/Infinity check (and later break arithmetic on it, e.g. multipleOf).
    value = float(text)
    if value - value != 0:
        raise ValueError("%s is out of range" % text)
    return value


def _not_serializable(o):
    # json.JSONEncoder.default, word for word
    raise TypeError("Object of type %s is not JSON serializable" % o.__class__.__name__)


class _DecoderSettings:
    """What json.JSONDecoder(parse_constant=..., parse_float=...) hands its scanner."""

    def __init__(self):
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = _finite_float
        self.parse_int = int
        self.parse_constant = _reject_constant


def _c_codec():
    """(scan_once, encode) from _json, checked on a sample; None if unusable."""
    try:
        import _json
        scan_once = _json.make_scanner(_DecoderSettings())
        make_encoder, escape = _json.make_encoder, _json.encode_basestring_ascii

        def encode(obj):
            # A fresh `markers` dict per call (circular-reference check): a
            # failed encode leaves entries behind, so it cannot be shared.
            return "".join(make_encoder({}, _not_serializable, escape, None, ":", ",",
                                        False, False, True)(obj, 0))

        sample = '[3,"\\u00e9",{"a":[1.5,null,false]}]'
        value = [3, "\u00e9", {"a": [1.5, None, False]}]
        if scan_once(sample + " ", 0) != (value, len(sample)) or encode(value) != sample:
            return None
        return scan_once, encode
    except Exception:
        return None


def _py_codec():
    import json
    if not hasattr(json, "JSONDecoder"):   # MicroPython: see ocpp_core.compat
        from ocpp_core.json_strict import scan_once
        dumps = json.dumps
        return scan_once, lambda value: dumps(value, separators=_DUMPS_SEPARATORS)
    scan_once = json.JSONDecoder(parse_constant=_reject_constant,
                                 parse_float=_finite_float).scan_once
    return scan_once, json.JSONEncoder(separators=_DUMPS_SEPARATORS).encode


_scan_once, _encode = _c_codec() or _py_codec()


def dumps(value):
    """Compact JSON text: json.dumps(value, separators=(",", ":")), same output,
    without importing `json` (see the module's docstring)."""
    return _encode(value)


def loads(text):
    """A str of JSON -> value, as decode() reads frames: like json.loads(text),
    except that NaN, Infinity and numbers out of float range are refused.
    Raises ValueError (or RecursionError if nested too deeply) on bad input."""
    start = 0
    if text[:1] in _JSON_WHITESPACE:   # "" is in any string: handled by the scanner
        start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
    try:
        value, end = _scan_once(text, start)
    except StopIteration:  # nothing that starts a JSON value
        raise ValueError("expecting a value")
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        raise ValueError("extra data")
    return value


class Frame:
    __slots__ = ("kind", "id", "action", "payload", "code", "description", "details")

    def __init__(self, kind, msg_id, action=None, payload=None, code=None,
                 description=None, details=None):
        self.kind = kind
        self.id = msg_id
        self.action = action
        self.payload = payload
        self.code = code
        self.description = description
        self.details = details


class BadFrame:
    """A frame we cannot process. reply_id is set when the peer sent something
    CALL-shaped enough to be answered with a CALLERROR of `code`."""
    __slots__ = ("reason", "reply_id", "code", "answer_to")

    def __init__(self, reason, reply_id=None, code=None, answer_to=None):
        self.reason = reason
        self.reply_id = reply_id
        self.code = code
        self.answer_to = answer_to  # id of a CALLRESULT/CALLERROR we could not read


def _recover_call_id(text):
    """Best effort: the id of something that starts like '[2, "id", ...'."""
    head = text[:128].lstrip()
    if not head.startswith("["):
        return None
    rest = head[1:].lstrip()
    if not rest.startswith("2"):
        return None
    rest = rest[1:].lstrip()
    if not rest.startswith(","):
        return None
    rest = rest[1:].lstrip()
    if not rest.startswith('"'):
        return None
    end = rest.find('"', 1)
    if end < 2 or end > MAX_ID_CHARS + 1 or "\\" in rest[1:end]:
        return None
    return rest[1:end]


def decode(text):
    """Text of one websocket message -> Frame or BadFrame."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8")
        except UnicodeError:   # MicroPython has no UnicodeDecodeError
            return BadFrame("not UTF-8 text")
    n = len(text)
    if n > MAX_FRAME_CHARS:
        return BadFrame("frame of %d characters exceeds the %d limit" % (n, MAX_FRAME_CHARS),
                        _recover_call_id(text), FORMATION_VIOLATION)
    try:  # loads(text), inlined: this is the hot path
        start = 0
        if text[:1] in _JSON_WHITESPACE:
            start = n - len(text.lstrip(_JSON_WHITESPACE))
        try:
            msg, end = _scan_once(text, start)
        except StopIteration:
            raise ValueError("expecting a value")
        if end != n and text[end:].strip(_JSON_WHITESPACE):
            raise ValueError("extra data")
    except ValueError:
        return BadFrame("not valid JSON", _recover_call_id(text), FORMATION_VIOLATION)
    except RuntimeError:  # RecursionError: arrays/objects nested too deeply
        return BadFrame("JSON nested too deeply", _recover_call_id(text), FORMATION_VIOLATION)
    if type(msg) is not list or not msg:
        return BadFrame("not a non-empty JSON array")
    kind = msg[0]
    if type(kind) is not int or kind not in (CALL, CALLRESULT, CALLERROR):
        return BadFrame("unknown message type %r" % (kind,))
    size = len(msg)
    msg_id = msg[1] if size > 1 else None
    if type(msg_id) is not str or not msg_id:
        return BadFrame("message id missing or not a string")
    if kind == CALL:
        if size == 4 and type(msg[2]) is str and len(msg_id) <= MAX_ID_CHARS:
            return Frame(CALL, msg_id, msg[2], msg[3])
        if size < 4:
            return BadFrame("CALL has %d of 4 elements" % size, msg_id, PROTOCOL_ERROR)
        return BadFrame("CALL is not [2, id, action, payload]", msg_id, FORMATION_VIOLATION)
    if kind == CALLRESULT:
        if size != 3:
            return BadFrame("CALLRESULT is not [3, id, payload]", answer_to=msg_id)
        return Frame(CALLRESULT, msg_id, None, msg[2])
    if size != 5 or type(msg[2]) is not str or type(msg[3]) is not str \
            or type(msg[4]) is not dict:
        return BadFrame("CALLERROR is not [4, id, code, description, details]", answer_to=msg_id)
    return Frame(CALLERROR, msg_id, None, None, msg[2], msg[3], msg[4])


def encode_call(msg_id, action, payload):
    return _encode([CALL, msg_id, action, payload])


def encode_result(msg_id, payload):
    return _encode([CALLRESULT, msg_id, payload])


def encode_error(msg_id, code, description="", details=None):
    return _encode([CALLERROR, msg_id, code, description[:255],
                    details if details is not None else {}])
