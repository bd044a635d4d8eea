"""Export the CPython tests' vectors to a JSON file for tests/micropython/run.py.

Runs under CPython (with the test extra): the inputs come from the CPython
tests themselves (the parametrized cases of test_framing.py and
test_timestamps.py, and the hypothesis strategies of test_validation_schemas.py,
derandomized), and the expected answers are what ocpp_core gives on CPython,
cross-checked against jsonschema for validation. The MicroPython runner must
give the same answers.

    python -m tests.micropython.vectors OUT.json
"""

import itertools
import json
import sys
import tempfile

from hypothesis import HealthCheck, given, settings

from ocpp_core import auth, framing, timestamps
from ocpp_core.catalogue import ACTIONS
from ocpp_core.config import Configuration
from ocpp_core.station import StationProfile
from ocpp_core.store import Store
from ocpp_core.validation import first_violation
from tests import test_framing, test_timestamps
from tests import test_validation_schemas as tvs

PER_CASE = 8        # valid and mutated payloads per action and direction

# Frames where CPython and MicroPython may legitimately differ are left out:
# lone surrogates (MicroPython strings are UTF-8 and cannot hold one), and
# nesting between json_strict.MAX_DEPTH and CPython's recursion limit.
EXTRA_FRAMES = [
    '[2,"a","Heartbeat",{}]', ' \n[2,"a","Heartbeat",{}]\r\n ', '[2,"a","Heartbeat",{},]',
    '[2,"a","Heartbeat",{"x":1,}]', '[3,"a",{"x":[1,2,]}]', '[3,"a",{"x":01}]',
    '[3,"a",{"x":1.}]', '[3,"a",{"x":.5}]', '[3,"a",{"x":-}]', '[3,"a",{"x":1e}]',
    '[3,"a",{"x":1e+5}]', '[3,"a",{"x":-0.0e-0}]', '[3,"a",{"x":123456789012345678901234567890}]',
    '[3,"a",{"x":"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/"}]', '[3,"a",{"x":"\u00e9\u20ac"}]',
    '[3,"a",{"x":"tab\there"}]', '[3,"a",{"x":"\\x"}]', '[3,"a",{"x":"\\u12"}]',
    '[3,"a",{"x":"\\u12G4"}]', '[3,"a",{"x":"unterminated}]', "[3,'a',{}]",
    '[3,"a",{"x":true,"y":false,"z":null}]', '[3,"a",{"x":tru}]', '[3,"a",{"x":nul}]',
    '[3,"a",{"x" 1}]', '[3,"a",{1:1}]', '[3,"a",{"x":1}', '[3,"a",{"x":1}]]', '[3,"a",{}] x',
    '[3,"a",{"x":NaN}]', '[3,"a",{"x":-Infinity}]', '[3,"a",{"x":1e400}]', "", " ", "[",
    '[2,"a","Heartbeat",{}]\x00', '[4,"e","GenericError","d",{"k":[{"a":{}}]}]',
    "[" * 50 + "]" * 50, "[" * 5000 + "]" * 5000,
    '[2,"n","DataTransfer",{"vendorId":"v","data":' + "[" * 3000 + "]" * 3000 + "}]",
]


def _utf8_safe(value):
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def describe_frame(f):
    if isinstance(f, framing.Frame):
        return ["F", f.kind, f.id, f.action, f.payload, f.code, f.description, f.details]
    return ["B", f.reply_id, f.code, f.answer_to]


def _param_values(module, argname):
    out = []
    for name in dir(module):
        fn = getattr(module, name)
        for mark in getattr(fn, "pytestmark", ()):
            if mark.name != "parametrize":
                continue
            names = [n.strip() for n in mark.args[0].split(",")]
            if argname not in names:
                continue
            for values in mark.args[1]:
                values = getattr(values, "values", values)       # pytest.param
                v = values if len(names) == 1 else values[names.index(argname)]
                out.append(v)
    return out


def frame_vectors():
    texts = [t for t in _param_values(test_framing, "text") if isinstance(t, str)]
    texts += ['[2,"n1","DataTransfer",{"vendorId":"v","x":%s}]' % c
              for c in _param_values(test_framing, "constant")]
    texts += ['[%s,"a","Heartbeat",{}]' % k for k in _param_values(test_framing, "kind")]
    texts += EXTRA_FRAMES
    out = []
    for text in texts:
        if not _utf8_safe(text):
            continue
        out.append([text, describe_frame(framing.decode(text))])
    return out


def _collect(strategy, n):
    found = []

    @settings(max_examples=n, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def grab(x):
        found.append(x)
    grab()
    return found


def _verdict(action, direction, payload):
    v = first_violation(tvs.spec_of(action, direction), payload)
    return None if v is None else [v.code, v.path]


def validation_vectors():
    out = []
    for action, direction in tvs.PAIRS:
        payloads = _collect(tvs.valid_payloads(action, direction), PER_CASE)
        payloads += _collect(tvs.valid_payloads(action, direction, rich=True), PER_CASE)
        payloads += [p for _, _, p in _collect(tvs.mutated_payloads(action, direction),
                                               PER_CASE * 2)]
        for payload in payloads:
            if not _utf8_safe(payload):
                continue
            verdict = _verdict(action, direction, payload)
            ref = tvs.ref_errors(action, direction, payload)
            assert (verdict is None) == (not ref), (action, direction, payload, verdict, ref)
            # through JSON text, as a frame brings it
            out.append([action, direction, json.dumps(payload), verdict])
    return out


def timestamp_vectors():
    texts = _param_values(test_timestamps, "text")
    texts += _collect(tvs.date_times, 60) + _collect(tvs.bad_date_times(), 60)
    parsed = []
    for text in texts:
        if not isinstance(text, str) or not _utf8_safe(text):
            continue
        try:
            value = timestamps.parse_rfc3339(text)
        except ValueError:
            value = None
        parsed.append([text, timestamps.is_rfc3339(text), value])
    seconds = [s for s in _param_values(test_timestamps, "seconds")
               if isinstance(s, (int, float))]
    seconds += [0, 1.0005, 1709208000.4994, 1764756930.123, 253402300799.999, -1.5]
    formatted = [[s, timestamps.format_utc(s)] for s in seconds]
    return parsed, formatted


def config_vectors():
    with tempfile.TemporaryDirectory() as d:
        cfg = Configuration(Store(d), StationProfile())
        cfg.change_configuration({"key": "HeartbeatInterval", "value": "60"})
        some = cfg.get_configuration({"key": ["heartbeatinterval", "Nope"]})
        return Configuration(Store(d + "/fresh"), StationProfile()).get_configuration({}), some


def auth_vectors():
    now = timestamps.parse_rfc3339("2026-11-24T10:00:00Z")
    entries = [None, {"status": "Accepted"}, {"status": "Blocked"}, {"status": "Invalid"},
               {"status": "ConcurrentTx"}, {"status": "Expired"},
               {"status": "Accepted", "expiryDate": "2026-11-24T09:59:59Z"},
               {"status": "Accepted", "expiryDate": "2026-11-24T10:00:00Z"},
               {"status": "Accepted", "expiryDate": "2026-11-24T11:00:00+01:00"},
               {"status": "Accepted", "expiryDate": "2026-11-24T10:30:00+00:00",
                "parentIdTag": "P"},
               {"status": "Accepted", "expiryDate": "not a date"}]
    decisions = []
    for entry in entries:
        for online in (True, False):
            for flags in itertools.product((True, False), repeat=3):
                args = [entry, online] + list(flags) + [now]
                decisions.append([args, list(auth.authorization_decision(*args))])
    groups = []
    infos = [None, {}, {"parentIdTag": "grp"}, {"parentIdTag": "GRP"}, {"parentIdTag": ""},
             {"parentIdTag": "other"}]
    for a, b in itertools.product(["tag1", "TAG1", "tag2", None], repeat=2):
        for ia, ib in itertools.product(infos, repeat=2):
            groups.append([[a, ia, b, ib], auth.same_group(a, ia, b, ib)])
    return decisions, groups


def build():
    parsed, formatted = timestamp_vectors()
    config_all, config_some = config_vectors()
    decisions, groups = auth_vectors()
    return {"frames": frame_vectors(), "validation": validation_vectors(),
            "rfc3339": parsed, "format_utc": formatted, "actions": sorted(ACTIONS),
            "config_all": config_all, "config_some": config_some,
            "auth_decisions": decisions, "auth_groups": groups}


def main(argv):
    data = build()
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)   # MicroPython joins no surrogate pairs
    print("%d frames, %d payloads, %d date-times, %d epochs -> %s"
          % (len(data["frames"]), len(data["validation"]), len(data["rfc3339"]),
             len(data["format_utc"]), argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
