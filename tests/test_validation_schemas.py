"""ocpp_core.validation cross-checked against jsonschema and the official schemas.

The reference side is jsonschema's Draft4Validator loaded with the OCPP 1.6 JSON
schemas from the `ocpp` package, with format checks that owe nothing to
ocpp_core:

- "date-time": rfc3339_validator.validate_rfc3339, wrapped (see _ref_date_time);
- "uri":       rfc3986_validator.validate_rfc3986(value, rule="URI").

Numbers reach jsonschema as decimal.Decimal (schema and payload), as the `ocpp`
package does it, so that multipleOf 0.1 is decided in decimal: with floats
jsonschema would call 0.3 "not a multiple of 0.1".

URIs: ocpp_core's uri check is deliberately light (scheme, ':', only URI
characters, well-formed %-escapes); it does not parse authorities, IPv6
literals or ports. The generators therefore draw realistic URLs and clear
garbage (no scheme, spaces, empty, bad escapes, non-ASCII) rather than arbitrary
text, on which the two checks could legitimately differ.

Hypothesis runs derandomized and without an example database: CI sees the same
examples every time.
"""

import calendar
import datetime
import decimal
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator, FormatChecker
from rfc3339_validator import validate_rfc3339
from rfc3986_validator import validate_rfc3986

from ocpp_core import errors
from ocpp_core.catalogue import ACTIONS
from ocpp_core.timestamps import is_rfc3339, parse_rfc3339
from ocpp_core.validation import first_violation, is_uri
from tools.gen_catalogue import default_schema_dir

SCHEMA_DIR = default_schema_dir()
DIRECTIONS = ("request", "response")
PAIRS = [(a, d) for a in sorted(ACTIONS) for d in DIRECTIONS]


def _settings(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# --- the reference: jsonschema + independent format checks --------------------------

REF_FORMATS = FormatChecker(formats=())


@REF_FORMATS.checks("date-time")
def _ref_date_time(value):
    if not isinstance(value, str):
        return True  # "type" judges non-strings
    # rfc3339-validator anchors its regex with "$", and Python's "$" also matches
    # just before a trailing "\n": it would accept "2024-01-01T00:00:00Z\n".
    if value.endswith("\n"):
        return False
    # RFC 3339 section 5.6, NOTE: "T" and "Z" may alternatively be lower case.
    # rfc3339-validator's regex is case-sensitive, so hand it upper case; any
    # other letter makes the string invalid whatever its case.
    return validate_rfc3339(value.replace("t", "T").replace("z", "Z"))


@REF_FORMATS.checks("uri")
def _ref_uri(value):
    if not isinstance(value, str):
        return True
    if value.endswith("\n"):  # the same "$" pitfall as above
        return False
    return validate_rfc3986(value, rule="URI") is not None


_REF_VALIDATORS = {}


def ref_validator(action, direction):
    key = (action, direction)
    if key not in _REF_VALIDATORS:
        name = action + ("Response" if direction == "response" else "") + ".json"
        with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as f:
            schema = json.loads(f.read(), parse_float=decimal.Decimal)
        Draft4Validator.check_schema(schema)
        _REF_VALIDATORS[key] = Draft4Validator(schema, format_checker=REF_FORMATS)
    return _REF_VALIDATORS[key]


def ref_errors(action, direction, payload):
    """jsonschema's error messages for the payload ([] = valid)."""
    as_decimal = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
    return [e.message for e in ref_validator(action, direction).iter_errors(as_decimal)]


def spec_of(action, direction):
    return ACTIONS[action][2 if direction == "request" else 3]


def ours(action, direction, payload):
    return first_violation(spec_of(action, direction), payload)


def assert_same_verdict(action, direction, payload):
    """Both sides agree; returns our Violation (or None)."""
    v = ours(action, direction, payload)
    ref = ref_errors(action, direction, payload)
    assert (v is None) == (not ref), (
        "%s %s disagreement on %r\n  ocpp_core: %s\n  jsonschema: %s"
        % (action, direction, payload, v and "%s %s" % (v.code, v.description()), ref))
    return v


# --- strategies: leaves -------------------------------------------------------------

def _max_day(year, month):
    return calendar.monthrange(year, month)[1]


_DIGITS = "0123456789"
_years = st.one_of(st.integers(2000, 2040), st.integers(1, 9999))
_fractions = st.one_of(st.just(""), st.text(_DIGITS, min_size=1, max_size=9).map(lambda s: "." + s))
_offsets = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+05:30", "-03:30", "+05:45", "-08:00",
                     "+14:00", "-12:00", "+23:59", "-23:59"]),
    st.builds(lambda sign, h, m: "%s%02d:%02d" % (sign, h, m),
              st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)))


@st.composite
def _dt_parts(draw):
    year = draw(_years)
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, _max_day(year, month)))
    return {"Y": "%04d" % year, "M": "%02d" % month, "D": "%02d" % day,
            "T": draw(st.sampled_from("TTTt")), "h": "%02d" % draw(st.integers(0, 23)),
            "m": "%02d" % draw(st.integers(0, 59)), "s": "%02d" % draw(st.integers(0, 59)),
            "f": draw(_fractions), "z": draw(_offsets), "year": year, "month": month}


def _join_dt(p):
    return "%s-%s-%s%s%s:%s:%s%s%s" % (p["Y"], p["M"], p["D"], p["T"], p["h"], p["m"], p["s"],
                                       p["f"], p["z"])


date_times = _dt_parts().map(_join_dt)


def _non_leap(year):
    while calendar.isleap(year):
        year += 1
    return year


# Each way to break a date-time; second 60 is left out on purpose: RFC 3339 allows
# it on a leap second, and both sides refuse it (documented in timestamps.py).
_DT_BREAKS = {
    "feb30": lambda p: dict(p, M="02", D="30"),
    "feb29_non_leap": lambda p: dict(p, Y="%04d" % _non_leap(min(p["year"], 9990)), M="02", D="29"),
    "feb29_1900": lambda p: dict(p, Y="1900", M="02", D="29"),
    "day31_short_month": lambda p: dict(p, M="%02d" % (4, 6, 9, 11)[p["month"] % 4], D="31"),
    "day00": lambda p: dict(p, D="00"),
    "day32": lambda p: dict(p, D="32"),
    "month00": lambda p: dict(p, M="00"),
    "month13": lambda p: dict(p, M="13"),
    "hour24": lambda p: dict(p, h="24"),
    "minute60": lambda p: dict(p, m="60"),
    "year0": lambda p: dict(p, Y="0000"),
    "year5": lambda p: dict(p, Y="1" + p["Y"]),
    "year2": lambda p: dict(p, Y=p["Y"][2:]),
    "single_digit_month": lambda p: dict(p, M=str(p["month"])) if p["month"] < 10 else dict(p, M="7"),
    "offset_missing": lambda p: dict(p, z=""),
    "offset_no_colon": lambda p: dict(p, z="+0530"),
    "offset_hours_only": lambda p: dict(p, z="+05"),
    "offset_hour24": lambda p: dict(p, z="+24:00"),
    "offset_minute60": lambda p: dict(p, z="-01:60"),
    "offset_named": lambda p: dict(p, z="UTC"),
    "space_separator": lambda p: dict(p, T=" "),
    "no_separator": lambda p: dict(p, T=""),
    "empty_fraction": lambda p: dict(p, f="."),
    "comma_fraction": lambda p: dict(p, f=",5"),
    "trailing_newline": lambda p: dict(p, z=p["z"] + "\n"),
    "trailing_junk": lambda p: dict(p, z=p["z"] + "x"),
    "leading_space": lambda p: dict(p, Y=" " + p["Y"]),
    "arabic_digit": lambda p: dict(p, D="\u0663" + p["D"][1:]),
    "fullwidth_digit": lambda p: dict(p, h="\uff11" + p["h"][1:]),
}


def _break_no_seconds(p):
    # "2024-01-01T10:15Z": no ":ss"
    return "%s-%s-%s%s%s:%s%s" % (p["Y"], p["M"], p["D"], p["T"], p["h"], p["m"], p["z"])


@st.composite
def bad_date_times(draw):
    p = draw(_dt_parts())
    how = draw(st.sampled_from(sorted(_DT_BREAKS) + ["no_seconds", "date_only", "time_only",
                                                     "slashes", "empty"]))
    if how == "no_seconds":
        return _break_no_seconds(p)
    if how == "date_only":
        return "%s-%s-%s" % (p["Y"], p["M"], p["D"])
    if how == "time_only":
        return "%s:%s:%s%s" % (p["h"], p["m"], p["s"], p["z"])
    if how == "slashes":
        return _join_dt(p).replace("-", "/", 2)
    if how == "empty":
        return ""
    return _join_dt(_DT_BREAKS[how](p))


_URL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
_segments = st.text(_URL_CHARS, min_size=1, max_size=12)
_HOSTS = ["example.com", "fw.example.org", "10.0.0.5", "192.168.1.20:8080", "[2001:db8::1]",
          "[::1]:2121", "user:secret@diag.example.net", "csms.example.com:443", "localhost",
          "ftp.example.com:21"]


@st.composite
def _built_urls(draw):
    scheme = draw(st.sampled_from(["http", "https", "ftp", "ftps", "sftp", "HTTP", "s3+https"]))
    host = draw(st.sampled_from(_HOSTS))
    path = "".join("/" + s for s in draw(st.lists(
        st.one_of(_segments, st.sampled_from(["diag%202024.zip", "%7Euser", "a%2Fb"])), max_size=4)))
    if draw(st.booleans()):
        path += "/"
    query = ""
    if draw(st.booleans()):
        query = "?" + "&".join("%s=%s" % kv for kv in draw(
            st.lists(st.tuples(_segments, _segments), min_size=1, max_size=3)))
    if draw(st.booleans()):
        query += draw(st.sampled_from(["#part", "#", "#a%20b"]))
    return "%s://%s%s%s" % (scheme, host, path, query)


uris = st.one_of(
    _built_urls(),
    st.sampled_from(["file:///var/log/diagnostics.zip", "mailto:ops@example.com",
                     "urn:oid:1.3.6.1.4.1", "ftp://ftp.example.com/uploads/diag%202024.zip",
                     "https://fw.example.org/cp/firmware-1.2.3.bin?token=a1b2c3",
                     "ftp://anonymous@ftp.example.com/", "http://example.com"]))

_GARBAGE_URIS = ["", " ", "fw.example.com/firmware.bin", "/uploads/diag.zip", "example.com",
                 "diag.zip", "//example.com/fw.bin", "://example.com/fw", "1ftp://example.com/x",
                 "ht tp://example.com/", "http://exa mple.com/", "http://example.com/a b",
                 " http://example.com/", "http://example.com/%zz", "http://example.com/%4",
                 "http://ex\u00e4mple.com/", "http://example.com/<fw>", 'http://example.com/"fw"',
                 "http://example.com/{id}", "http://example.com/a\\b", "c:\\firmware\\fw.bin",
                 "http://example.com/\n", "http://example.com/x\ty", "\u00e9http://example.com/"]


@st.composite
def bad_uris(draw):
    how = draw(st.sampled_from(["fixed", "space", "drop_scheme"]))
    if how == "fixed":
        return draw(st.sampled_from(_GARBAGE_URIS))
    url = draw(_built_urls())
    if how == "space":
        i = draw(st.integers(0, len(url)))
        return url[:i] + " " + url[i:]
    return url.split(":", 1)[1]   # "//host/path": a relative reference, not a URI


# multipleOf 0.1: k/10 is the double nearest to the decimal k/10, and its shortest
# repr (what json.dumps writes) is exactly that decimal. Range kept small enough for
# Decimal's 28-digit context.
_tenths = st.one_of(st.integers(-10 ** 6, 10 ** 6).map(lambda k: k / 10),
                    st.integers(-10 ** 5, 10 ** 5), st.integers(-10 ** 5, 10 ** 5).map(float))


def _is_decimal_multiple(x, step):
    return decimal.Decimal(repr(x)) % decimal.Decimal(repr(step)) == 0


def non_multiples(step):
    near = st.builds(lambda k, off: k / 10 + off, st.integers(-10 ** 5, 10 ** 5),
                     st.sampled_from([0.05, 0.01, 0.001, 0.07, 0.0333, 1e-6, 1e-9, 1e-12, -1e-12]))
    hundredths = st.integers(-10 ** 6, 10 ** 6).map(lambda k: k / 100)
    return st.one_of(near, hundredths).filter(lambda x: not _is_decimal_multiple(x, step))


# --- strategies: valid payloads from the catalogue's spec nodes ---------------------------

def valid_value(node, rich=False):
    """Valid values for a spec node. rich: every optional field present and
    arrays never empty (so that mutation sites exist)."""
    kind = node[0]
    if kind == "o":
        props, required = node[1], node[2]
        if rich:
            return st.fixed_dictionaries({k: valid_value(v, rich) for k, v in props.items()})
        return st.fixed_dictionaries(
            {k: valid_value(props[k], rich) for k in required},
            optional={k: valid_value(v, rich) for k, v in props.items() if k not in required})
    if kind == "s":
        max_length, enum, fmt = node[1], node[2], node[3]
        if enum is not None:
            return st.sampled_from(enum)
        if fmt == "date-time":
            return date_times
        if fmt == "uri":
            return uris
        return st.text(max_size=max_length or 40)
    if kind == "i":
        return st.one_of(st.integers(-3, 600), st.integers(-2 ** 31, 2 ** 31 - 1),
                         st.integers(-10 ** 15, 10 ** 15))
    if kind == "n":
        if node[1]:
            assert node[1] == 0.1, "only multipleOf 0.1 exists in OCPP 1.6"
            return _tenths
        return st.one_of(st.integers(-10 ** 6, 10 ** 6),
                         st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
    if kind == "b":
        return st.booleans()
    if kind == "a":
        low = max(node[2], 1) if rich else node[2]
        return st.lists(valid_value(node[1], rich), min_size=low, max_size=low + 3)
    raise AssertionError(node)


_VALID = {}


def valid_payloads(action, direction, rich=False):
    key = (action, direction, rich)
    if key not in _VALID:
        _VALID[key] = valid_value(spec_of(action, direction), rich)
    return _VALID[key]


# --- mutations: break exactly one rule -------------------------------------------------

def _sites(node, value, path=()):
    yield path, node, value
    if node[0] == "o":
        for k, v in value.items():
            yield from _sites(node[1][k], v, path + (k,))
    elif node[0] == "a":
        for i, v in enumerate(value):
            yield from _sites(node[1], v, path + (i,))


def _deep_copy(v):
    if type(v) is dict:
        return {k: _deep_copy(x) for k, x in v.items()}
    if type(v) is list:
        return [_deep_copy(x) for x in v]
    return v


def _replace(payload, path, new):
    if not path:
        return new
    out = _deep_copy(payload)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out


def _is_string(n, with_what):
    return n[0] == "s" and with_what(n)


# kind -> (applies to (path, node), CALLERROR code ocpp_core must give)
MUTATIONS = {
    "missing_required": (lambda p, n: n[0] == "o" and bool(n[2]),
                         errors.OCCURENCE_CONSTRAINT_VIOLATION),
    "unknown_field": (lambda p, n: n[0] == "o", errors.FORMATION_VIOLATION),
    "wrong_type": (lambda p, n: bool(p), errors.TYPE_CONSTRAINT_VIOLATION),
    "too_long": (lambda p, n: _is_string(n, lambda n: n[1] > 0), errors.PROPERTY_CONSTRAINT_VIOLATION),
    "bad_enum": (lambda p, n: _is_string(n, lambda n: n[2] is not None),
                 errors.PROPERTY_CONSTRAINT_VIOLATION),
    "bad_date_time": (lambda p, n: _is_string(n, lambda n: n[3] == "date-time"),
                      errors.PROPERTY_CONSTRAINT_VIOLATION),
    "bad_uri": (lambda p, n: _is_string(n, lambda n: n[3] == "uri"),
                errors.PROPERTY_CONSTRAINT_VIOLATION),
    "too_few_items": (lambda p, n: n[0] == "a" and n[2] > 0, errors.OCCURENCE_CONSTRAINT_VIOLATION),
    "not_multiple": (lambda p, n: n[0] == "n" and bool(n[1]), errors.PROPERTY_CONSTRAINT_VIOLATION),
    "not_object": (lambda p, n: not p, errors.FORMATION_VIOLATION),
}

_WRONG_TYPES = {
    "o": [[], [{}], "x", "{}", 0, 1.5, True, None],
    "s": [0, 1, 6.3, -1, True, False, None, [], {}, ["x"]],
    "i": ["1", "0", "", 1.5, 3.0, -0.0, 1e3, True, False, None, [], {}, [1]],
    "n": ["6.3", "", "0", True, False, None, [], {}, [6.3]],
    "b": [0, 1, 1.0, "true", "false", "", None, [], {}, [True]],
    "a": [{}, "x", "[]", "", 0, 1.5, True, None],
}
_WRONG_TYPES_EXTRA = {
    "s": st.integers(),
    "i": st.one_of(st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
                   st.text(_DIGITS, min_size=1, max_size=6)),
    "n": st.text(max_size=6),
    "b": st.integers(-2, 2),
    "o": st.text(max_size=6),
    "a": st.integers(),
}


def _mutant(draw, kind, node, value, payload):
    if kind == "missing_required":
        out = dict(value)
        del out[draw(st.sampled_from(node[2]))]
        return out
    if kind == "unknown_field":
        props = node[1]
        variants = ["unknownField", "", " ", "x", "$schema"]
        for name in props:
            variants += [name.upper(), name[:1].upper() + name[1:], name + " ", name + "s"]
        key = draw(st.one_of(st.sampled_from(variants), st.text(max_size=8))
                   .filter(lambda k: k not in props))
        out = dict(value)
        out[key] = draw(st.sampled_from([1, "x", None, {}, [], True]))
        return out
    if kind == "wrong_type":
        choices = list(_WRONG_TYPES[node[0]])
        if node[0] == "a" and value:
            choices.append(value[0])          # the item without its list
        if node[0] == "o":
            choices.append([value])           # the object wrapped in a list
        return draw(st.one_of(st.sampled_from(choices), _WRONG_TYPES_EXTRA[node[0]]))
    if kind == "too_long":
        # hypothesis draws at most 10,000 characters (CertificateSigned's
        # chain may hold 10,000): a drawn tail beyond the limit instead
        return "a" * node[1] + draw(st.text(min_size=1, max_size=12))
    if kind == "bad_enum":
        enum = node[2]
        variants = []
        for e in enum:
            variants += [e.lower(), e.upper(), e + " ", " " + e, e + "X", e[:-1]]
        variants.append("")
        return draw(st.one_of(st.sampled_from(variants), st.text(max_size=20))
                    .filter(lambda s: s not in enum))
    if kind == "bad_date_time":
        return draw(bad_date_times())
    if kind == "bad_uri":
        return draw(bad_uris())
    if kind == "too_few_items":
        return []
    if kind == "not_multiple":
        return draw(non_multiples(node[1]))
    if kind == "not_object":
        return draw(st.sampled_from([[], [payload], "x", json.dumps(payload), 0, 1.5, True, None]))
    raise AssertionError(kind)


@st.composite
def mutated_payloads(draw, action, direction, kinds=None, rich=False):
    """-> (kind, path, payload with exactly one rule broken)."""
    spec = spec_of(action, direction)
    payload = draw(valid_payloads(action, direction, rich))
    candidates = [(kind, path, node, value)
                  for path, node, value in _sites(spec, payload)
                  for kind, (applies, _) in MUTATIONS.items()
                  if (kinds is None or kind in kinds) and applies(path, node)]
    # Every payload has at least its root: "unknown_field" and "not_object" apply.
    kind, path, node, value = draw(st.sampled_from(candidates))
    return kind, path, _replace(payload, path, _mutant(draw, kind, node, value, payload))


def _possible(kind, action, direction):
    """Can a rich payload of this action offer a site for this mutation?"""
    spec = spec_of(action, direction)
    applies = MUTATIONS[kind][0]

    def walk(node, path):
        if applies(path, node):
            return True
        if node[0] == "o":
            return any(walk(v, path + (k,)) for k, v in node[1].items())
        if node[0] == "a":
            return walk(node[1], path + (0,))
        return False
    return walk(spec, ())


# --- properties -----------------------------------------------------------------------

@pytest.mark.parametrize("action,direction", PAIRS)
@_settings(80)
@given(data=st.data())
def test_generated_valid_payloads_are_valid_on_both_sides(action, direction, data):
    payload = data.draw(valid_payloads(action, direction), label="payload")
    v = assert_same_verdict(action, direction, payload)
    assert v is None


@pytest.mark.parametrize("action,direction", PAIRS)
@_settings(120)
@given(data=st.data())
def test_any_single_mutation_is_refused_by_both_sides(action, direction, data):
    kind, path, payload = data.draw(mutated_payloads(action, direction), label="mutation")
    v = assert_same_verdict(action, direction, payload)
    assert v is not None, (kind, path, payload)
    assert v.code == MUTATIONS[kind][1], (kind, path, payload, v.description())


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
@_settings(300)
@given(data=st.data())
def test_each_mutation_kind_gives_its_callerror_code(kind, data):
    pairs = [(a, d) for a, d in PAIRS if _possible(kind, a, d)]
    assert pairs, kind
    action, direction = data.draw(st.sampled_from(pairs), label="action")
    _, path, payload = data.draw(mutated_payloads(action, direction, kinds=(kind,), rich=True),
                                 label="mutation")
    v = assert_same_verdict(action, direction, payload)
    assert v is not None and v.code == MUTATIONS[kind][1], (path, payload, v and v.description())


# Character-level fuzzing of single strings, where the two format checks could
# drift apart without any payload structure around them.

_DT_ALPHABET = _DIGITS + "-:.+TtZz \n,/x"


@st.composite
def _edited_date_times(draw):
    s = draw(date_times)
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(s)))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        c = draw(st.sampled_from(_DT_ALPHABET))
        if op == "replace" and i < len(s):
            s = s[:i] + c + s[i + 1:]
        elif op == "insert":
            s = s[:i] + c + s[i:]
        elif i < len(s):
            s = s[:i] + s[i + 1:]
    return s


@_settings(300)
@given(st.one_of(date_times, bad_date_times(), _edited_date_times()))
def test_date_time_check_agrees_with_rfc3339_validator(text):
    assert is_rfc3339(text) == _ref_date_time(text), repr(text)
    v = assert_same_verdict("Heartbeat", "response", {"currentTime": text})
    if v is not None:
        assert v.code == errors.PROPERTY_CONSTRAINT_VIOLATION


@_settings(300)
@given(st.one_of(uris, bad_uris()))
def test_uri_check_agrees_with_rfc3986_validator_on_realistic_input(text):
    assert is_uri(text) == _ref_uri(text), repr(text)
    assert_same_verdict("UpdateFirmware", "request",
                        {"location": text, "retrieveDate": "2024-05-01T02:00:00Z"})


@_settings(300)
@given(st.one_of(_tenths, non_multiples(0.1),
                 st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False),
                 st.decimals(-10 ** 6, 10 ** 6, places=3).map(float)))
def test_multiple_of_agrees_with_decimal_arithmetic(x):
    payload = {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "A",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": x}]}}}
    v = assert_same_verdict("SetChargingProfile", "request", payload)
    assert (v is None) == _is_decimal_multiple(x, 0.1), repr(x)


@_settings(300)
@given(_dt_parts())
def test_parse_rfc3339_matches_datetime(p):
    text = _join_dt(p)
    z = p["z"]
    if z in ("Z", "z"):
        tz = datetime.timezone.utc
    else:
        sign = 1 if z[0] == "+" else -1
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(z[1:3]), minutes=int(z[4:6])))
    frac = p["f"][1:7].ljust(6, "0") if p["f"] else "0"
    dt = datetime.datetime(p["year"], p["month"], int(p["D"]), int(p["h"]), int(p["m"]), int(p["s"]),
                           int(frac), tzinfo=tz)
    expected = (dt - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds()
    assert parse_rfc3339(text) == pytest.approx(expected, rel=1e-15, abs=2e-6), text


# --- hand-written examples --------------------------------------------------------------

STOP_TRANSACTION = {
    "transactionId": 1742,
    "idTag": "04A2B3C4D5E680",
    "meterStop": 152307,
    "timestamp": "2024-11-24T10:15:30.123Z",
    "reason": "EVDisconnected",
    "transactionData": [
        {"timestamp": "2024-11-24T08:02:11.000Z",
         "sampledValue": [{"value": "140112", "context": "Transaction.Begin",
                           "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                           "location": "Outlet"}]},
        {"timestamp": "2024-11-24T10:15:30.123Z",
         "sampledValue": [
             {"value": "152307", "context": "Transaction.End", "format": "Raw",
              "measurand": "Energy.Active.Import.Register", "unit": "Wh", "location": "Outlet"},
             {"value": "15.98", "context": "Transaction.End",
              "measurand": "Current.Import", "phase": "L1", "unit": "A"},
             {"value": "231.4", "context": "Transaction.End",
              "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
             {"value": "3.68", "context": "Transaction.End",
              "measurand": "Power.Active.Import", "unit": "kW"},
         ]},
    ],
}


def _profile(limit, min_rate=None, **extra):
    schedule = {"duration": 3600, "startSchedule": "2024-11-24T18:00:00+05:30",
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
                                           {"startPeriod": 900, "limit": limit}]}
    if min_rate is not None:
        schedule["minChargingRate"] = min_rate
    profile = {"chargingProfileId": 12, "stackLevel": 1,
               "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
               "validFrom": "2024-11-24T00:00:00Z", "validTo": "2024-12-24T00:00:00Z",
               "chargingSchedule": schedule}
    profile.update(extra)
    return profile


def test_real_stop_transaction_with_transaction_data():
    assert assert_same_verdict("StopTransaction", "request", STOP_TRANSACTION) is None


def test_stop_transaction_unit_enum_lacks_hertz():
    # A quirk of the official schemas: "Hertz" is a unit in MeterValues only.
    payload = _replace(STOP_TRANSACTION, ("transactionData", 1, "sampledValue", 0, "unit"), "Hertz")
    v = assert_same_verdict("StopTransaction", "request", payload)
    assert v.code == errors.PROPERTY_CONSTRAINT_VIOLATION
    assert v.path == "transactionData[1].sampledValue[0].unit"
    meter_values = {"connectorId": 1, "meterValue": [
        {"timestamp": "2024-11-24T10:15:30Z",
         "sampledValue": [{"value": "50.0", "measurand": "Frequency", "unit": "Hertz"}]}]}
    assert assert_same_verdict("MeterValues", "request", meter_values) is None


@pytest.mark.parametrize("limit,min_rate,ok", [
    (6.3, None, True), (6.35, None, False), (6, 0.3, True), (32.0, 0.1, True),
    (10.0, 0.05, False), (-0.0, None, True), (6.300000000001, None, False),
])
def test_set_charging_profile_limits(limit, min_rate, ok):
    payload = {"connectorId": 1, "csChargingProfiles": _profile(limit, min_rate)}
    v = assert_same_verdict("SetChargingProfile", "request", payload)
    if ok:
        assert v is None
    else:
        assert v.code == errors.PROPERTY_CONSTRAINT_VIOLATION


def test_float_multiple_of_needs_decimal_on_the_reference_side():
    # Why the reference parses numbers as Decimal: with floats, jsonschema calls
    # 0.3 not a multiple of 0.1 (0.3 / 0.1 == 2.9999999999999996).
    with open(os.path.join(SCHEMA_DIR, "SetChargingProfile.json"), encoding="utf-8") as f:
        float_validator = Draft4Validator(json.load(f))
    payload = {"connectorId": 1, "csChargingProfiles": _profile(6.3, 0.3)}
    assert not float_validator.is_valid(payload)
    assert ref_errors("SetChargingProfile", "request", payload) == []
    assert ours("SetChargingProfile", "request", payload) is None


def test_remote_start_with_charging_profile():
    payload = {"connectorId": 2, "idTag": "DEADBEEF01",
               "chargingProfile": _profile(11.0, 6.0, chargingProfilePurpose="TxProfile",
                                           chargingProfileKind="Relative")}
    del payload["chargingProfile"]["chargingSchedule"]["startSchedule"]
    assert assert_same_verdict("RemoteStartTransaction", "request", payload) is None
    bad = _replace(payload, ("chargingProfile", "chargingProfileKind"), "relative")
    assert assert_same_verdict("RemoteStartTransaction", "request", bad).code == \
        errors.PROPERTY_CONSTRAINT_VIOLATION
    bad = _replace(payload, ("chargingProfile", "stackLevel"), 1.0)
    assert assert_same_verdict("RemoteStartTransaction", "request", bad).code == \
        errors.TYPE_CONSTRAINT_VIOLATION


@pytest.mark.parametrize("text,ok", [
    ("2024-03-10T15:45:00+05:30", True),
    ("2024-03-10T15:45:00.5+05:30", True),
    ("2024-03-10T15:45:00.123456789-05:30", True),
    ("2024-03-10t15:45:00z", True),            # RFC 3339 5.6: lower case allowed
    ("2024-03-10t15:45:00+05:30", True),
    ("2024-02-29T00:00:00Z", True),
    ("2023-02-29T00:00:00Z", False),
    ("2024-02-30T00:00:00Z", False),
    ("2024-03-10T24:00:00Z", False),
    ("2024-03-10T15:45:00", False),            # no offset
    ("2024-03-10T15:45:00+0530", False),
    ("2024-03-10 15:45:00Z", False),
    ("2024-03-10T15:45:00Z\n", False),
])
def test_hand_written_timestamps(text, ok):
    payload = {"status": "Accepted", "currentTime": text, "interval": 300}
    v = assert_same_verdict("BootNotification", "response", payload)
    assert (v is None) == ok
    if not ok:
        assert v.code == errors.PROPERTY_CONSTRAINT_VIOLATION


def test_offset_arithmetic():
    assert parse_rfc3339("2024-03-10T15:45:00+05:30") == parse_rfc3339("2024-03-10T10:15:00Z")
    assert parse_rfc3339("2024-03-10t10:15:00z") == parse_rfc3339("2024-03-10T10:15:00Z")
    assert parse_rfc3339("2024-03-09T23:45:00-10:30") == parse_rfc3339("2024-03-10T10:15:00Z")


def test_reference_wrapper_quirks():
    # The raw rfc3339-validator is fooled by "$" and is case-sensitive; the wrapper
    # corrects both, and ocpp_core agrees with the wrapper.
    assert validate_rfc3339("2024-03-10T10:15:00Z\n")
    assert not _ref_date_time("2024-03-10T10:15:00Z\n")
    assert not validate_rfc3339("2024-03-10t10:15:00z")
    assert _ref_date_time("2024-03-10t10:15:00z")
    assert validate_rfc3986("http://example.com/\n", rule="URI")
    assert not _ref_uri("http://example.com/\n")


def test_non_object_payloads_are_formation_violations():
    for payload in ([], None, "x", 1, [{"idTag": "A"}]):
        v = assert_same_verdict("Authorize", "request", payload)
        assert v.code == errors.FORMATION_VIOLATION
