"""Hostile frames from the CSMS, seeded.

FuzzFrames(rng).batch(n) -> [(frame, expect)]: frame is text (or bytes: a binary
websocket message), expect the CALL id the station must answer (CALLRESULT or a
valid CALLERROR, within 5 s) or None when nothing may be expected.

"Recoverable id" is read as the firmware's framing reads it, and as OCPP-J 4.2.3
asks: a frame that begins like a CALL, `[2, "<id>"`, with an id of 1 to 36
characters (section 4.1.3) and no escapes, must get a CALLERROR even when the
rest of it is garbage or oversized.

Mutated payloads start from a valid request of every CSMS-initiated action of
the catalogue and break one rule. Those of actions with side effects (Reset,
ChangeAvailability, RemoteStart...) are always invalid, so the fuzz cannot turn
into a real command that would change the sessions the soak is judging; those of
read-only actions may stay valid (then a CALLRESULT is the right answer).
"""

import json
import re

from ocpp_core.catalogue import ACTIONS
from ocpp_core.timestamps import format_utc
from ocpp_core.validation import first_violation

MAX_FRAME = 1 << 20                     # "frames up to 1 MiB"
_RECOVERABLE = re.compile(r'\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')

CSMS_ACTIONS = sorted(a for a, (_, sender, _r, _s) in ACTIONS.items() if sender in ("cs", "both"))
# Read-only requests: a mutation that stays valid is harmless.
HARMLESS = ("GetConfiguration", "GetLocalListVersion", "GetCompositeSchedule", "DataTransfer")


def recoverable_id(frame):
    if isinstance(frame, (bytes, bytearray)):
        try:
            frame = frame.decode("utf-8")
        except UnicodeError:
            return None
    m = _RECOVERABLE.match(frame[:128])
    return m.group(1) if m else None


def valid_value(node, rng, depth=0):
    """A valid value for a catalogue spec node."""
    kind = node[0]
    if kind == "o":
        props, required = node[1], node[2]
        out = {}
        for name in props:
            if name in required or (depth < 2 and rng.random() < 0.3):
                out[name] = valid_value(props[name], rng, depth + 1)
        return out
    if kind == "s":
        if node[2]:
            return rng.choice(node[2])
        if node[3] == "date-time":
            return format_utc(1767225600 + rng.randint(0, 86400 * 30))
        if node[3] == "uri":
            return "http://127.0.0.1:9/soak"
        return "soak"[:node[1] or 4]
    if kind == "i":
        return rng.randint(0, 3)
    if kind == "n":
        return rng.choice([0, 6, 16.5, 32])
    if kind == "b":
        return rng.random() < 0.5
    if kind == "a":
        return [valid_value(node[1], rng, depth + 1) for _ in range(max(1, node[2]))]
    raise ValueError("unknown spec node %r" % (kind,))


_WRONG = (None, True, -1, 1.5, "", "x" * 600, [], {}, [1, [2]], {"k": "v"}, 10 ** 30)


def _paths(value, prefix=()):
    """Every (path) to a value inside a payload, objects and arrays."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _set(payload, path, value):
    target = payload
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value


def mutate(payload, rng):
    """A copy of payload with one rule broken (most of the time)."""
    p = json.loads(json.dumps(payload))
    paths = [q for q in _paths(p) if q]
    how = rng.randrange(5)
    if how == 0 or not paths:
        p["soakUnknownField"] = rng.choice(_WRONG)          # objects are closed in 1.6
    elif how == 1:
        path = rng.choice(paths)
        parent = p
        for q in path[:-1]:
            parent = parent[q]
        if isinstance(parent, dict):
            del parent[path[-1]]                            # a required field missing, maybe
        else:
            parent.clear()                                  # an array below minItems, maybe
    elif how == 2:
        _set(p, rng.choice(paths), rng.choice(_WRONG))      # wrong type or value
    elif how == 3:
        _set(p, rng.choice(paths), "2026-13-45T25:61:00")   # a bad date-time / enum / type
    else:
        return rng.choice([[], "payload", 7, None, [p]])   # not an object at all
    return p


class FuzzFrames:
    def __init__(self, rng):
        self.rng = rng
        self.n = 0
        self.kinds = {}          # kind -> frames made
        self._kinds = (
            ("random bytes", self._random_bytes, 8),
            ("non-JSON", self._non_json, 10),
            ("wrong arrays", self._wrong_array, 12),
            ("large frame", self._large, 2),
            ("deep nesting", self._deep, 4),
            ("wrong types", self._wrong_types, 12),
            ("unknown action", self._unknown_action, 8),
            ("mutated payload", self._mutated, 34),
            ("duplicate id", self._duplicate_id, 4),
            ("unknown-id result", self._unknown_result, 6),
        )
        self._weights = [w for _, _, w in self._kinds]
        self.kinds_list = [name for name, _, _ in self._kinds]

    def _id(self):
        self.n += 1
        return "fz-%d" % self.n

    def batch(self, count):
        out = []
        if count <= 0:
            return out
        while len(out) < count:
            name, make, _ = self.rng.choices(self._kinds, self._weights)[0]
            frames = make()[:count - len(out)]
            self.kinds[name] = self.kinds.get(name, 0) + len(frames)
            out.extend((f, recoverable_id(f)) for f in frames)
        return out

    def every_kind(self):
        """One frame of each kind (so that a short run covers them all)."""
        out = []
        for name, make, _ in self._kinds:
            frames = make()
            self.kinds[name] = self.kinds.get(name, 0) + len(frames)
            out.extend((f, recoverable_id(f)) for f in frames)
        return out

    # --- the kinds ---------------------------------------------------------------------------
    def _random_bytes(self):
        r = self.rng
        data = bytes(r.getrandbits(8) for _ in range(r.randint(0, 300)))
        if r.random() < 0.5:
            return [data]                                            # binary message
        return ["".join(chr(r.randint(1, 0x2FFF)) for _ in range(r.randint(1, 200)))]

    def _non_json(self):
        i = self._id()
        return [self.rng.choice([
            '[2,"%s","Heartbeat",{' % i, '[2,"%s","Reset",{"type":Soft}]' % i,
            '[2,"%s","GetConfiguration",{}] trailing' % i, "hello", "", " ", "NaN",
            '[2,"%s","DataTransfer",{"vendorId":"v","data":NaN}]' % i,
            '[2,"%s","DataTransfer",{"vendorId":"v","data":1e400}]' % i,
            "[2,'%s','Heartbeat',{}]" % i, '{"2": "%s"}' % i, "[" * 50,
            '[2,"%s","ClearCache",{}' % i])]

    def _wrong_array(self):
        i = self._id()
        return [json.dumps(self.rng.choice([
            [], [2], [2, i], [2, i, "Reset"], [5, i, "Reset", {}], ["2", i, "Reset", {}],
            [2, 17, "Reset", {}], [2, i, "Reset", {"type": "Soft"}, "extra"], {"a": 1},
            [3, i], [4, i, "InternalError"], [2, "x" * 37, "ClearCache", {}], [2, "", "Reset", {}],
            [2, i, 42, {}], [2, i, None, {}], [None], [2.0, i, "Reset", {}], "just a string",
            [2, i, "GetConfiguration", []]]))]

    def _large(self):
        r = self.rng
        size = int(65536 * (16 ** r.random()))                     # 64 KiB .. 1 MiB, log-uniform
        size = min(size, MAX_FRAME)
        head = '[2,"%s","DataTransfer",{"vendorId":"soak","data":"' % self._id()
        if r.random() < 0.3:
            head = '[2,"%s","SendLocalList",{"listVersion":1,"updateType":"Full","data":"' \
                % self._id()
        tail = '"}]'
        return [head + "A" * max(0, size - len(head) - len(tail)) + tail]

    def _deep(self):
        depth = int(10 ** self.rng.uniform(1, 5.5))                 # 10 .. ~300,000 levels
        depth = min(depth, (MAX_FRAME - 100) // 2)
        body = "[" * depth + "]" * depth
        if self.rng.random() < 0.5:
            body = '{"a":' * depth + "1" + "}" * depth
        return ['[2,"%s","DataTransfer",{"vendorId":"soak","data":%s}]' % (self._id(), body)]

    def _base(self, action):
        return valid_value(ACTIONS[action][2], self.rng)

    def _wrong_types(self):
        action = self.rng.choice(CSMS_ACTIONS)
        base = self._base(action)
        for _ in range(8):
            p = json.loads(json.dumps(base))
            paths = [q for q in _paths(p) if q]
            if paths:
                _set(p, self.rng.choice(paths), self.rng.choice(_WRONG))
            else:
                p = self.rng.choice([[], "x", 1])
            if self._harmless(action, p):
                return [self._call(action, p)]
        return [self._call(action, dict(base, soakUnknownField=[]))]

    @staticmethod
    def _harmless(action, payload):
        """Valid requests only of read-only actions: the rest must be refused."""
        return action in HARMLESS or first_violation(ACTIONS[action][2], payload) is not None

    def _unknown_action(self):
        action = self.rng.choice(["FooBar", "reset", "RESET", "", " Reset", "Reset ",
                                  "StartTransaction", "BootNotification", "Heartbeat",
                                  "A" * 200, "Get\u00e9Configuration", "MeterValues",
                                  "StatusNotification", "Authorize"])
        return [self._call(action, {})]

    def _mutated(self):
        action = self.rng.choice(CSMS_ACTIONS)
        base = self._base(action)
        for _ in range(8):
            p = mutate(base, self.rng)
            if self._harmless(action, p):
                return [self._call(action, p)]
        p = dict(base, soakUnknownField=1)          # always invalid: objects are closed
        return [self._call(action, p)]

    def _duplicate_id(self):
        frame = self._call("GetConfiguration", {"key": ["HeartbeatInterval"]})
        return [frame, frame]

    def _unknown_result(self):
        i = "fz-nobody-%d" % self.n
        self.n += 1
        return [self.rng.choice([json.dumps([3, i, {}]),
                                 json.dumps([4, i, "InternalError", "no such call", {}]),
                                 json.dumps([3, i, {"status": "Accepted"}])])]

    def _call(self, action, payload):
        return json.dumps([2, self._id(), action, payload])
