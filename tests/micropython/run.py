"""ocpp_core's MicroPython test subset (pytest does not run on MicroPython).

    python -m tests.micropython.vectors /tmp/vectors.json          # CPython: the vectors
    MICROPYPATH=. micropython tests/micropython/run.py /tmp/vectors.json [--heap]

Also runs under CPython (`python tests/micropython/run.py ...` from the repo root).
Groups: framing (every frame vector), validation of every action of the
catalogue in both directions (the vectors of test_validation_schemas, with the
verdict CPython gives), RFC 3339 timestamps, the RPC endpoint, the store, the
configuration, the authorization rules, and a full in-process charging session
on a virtual clock (journal on a temporary folder) with a power cut and a
restart that recovers the journal. The last line is "N passed, M failed".
--heap prints the heap (gc.mem_free()/gc.mem_alloc()) after importing the
engine and after the session; --session-only runs the session alone (no
vector file), e.g. under `micropython -X heapsize=240K`.
"""

import gc
import os
import sys

if "" not in sys.path and "." not in sys.path:
    sys.path.insert(0, ".")

try:
    import json
except ImportError:
    import ujson as json

PASSED = [0]
FAILED = []
HEAP = []


def heap(label):
    gc.collect()
    free = gc.mem_free() if hasattr(gc, "mem_free") else -1
    alloc = gc.mem_alloc() if hasattr(gc, "mem_alloc") else -1
    HEAP.append((label, free, alloc))


def check(name, ok, detail=""):
    if ok:
        PASSED[0] += 1
    else:
        FAILED.append(name)
        print("FAIL %s %s" % (name, detail))


def group(name, fn, *args):
    try:
        fn(*args)
    except Exception as e:      # a crash in a group is one more failure, with its cause
        FAILED.append(name)
        print("FAIL %s: crashed: %s %r" % (name, type(e).__name__, e))
        if hasattr(sys, "print_exception"):
            sys.print_exception(e)
        else:
            import traceback
            traceback.print_exc()


heap("bare interpreter")
from ocpp_core import auth, errors, framing, timestamps                      # noqa: E402
from ocpp_core.catalogue import ACTIONS                                       # noqa: E402
from ocpp_core.charge_point import ChargePoint                                # noqa: E402
from ocpp_core.clock import Clock                                             # noqa: E402
from ocpp_core.config import Configuration                                    # noqa: E402
from ocpp_core.metering import MeterSample                                    # noqa: E402
from ocpp_core.rpc import CENTRAL_SYSTEM, CHARGE_POINT, RpcEndpoint           # noqa: E402
from ocpp_core.station import StationInterface, StationProfile                # noqa: E402
from ocpp_core.store import Store                                             # noqa: E402
from ocpp_core.validation import first_violation                              # noqa: E402
from ocpp_core import compat                                                  # noqa: E402
heap("engine imported")


# --- helpers -------------------------------------------------------------------------
def describe_frame(f):
    if isinstance(f, framing.Frame):
        return ["F", f.kind, f.id, f.action, f.payload, f.code, f.description, f.details]
    return ["B", f.reply_id, f.code, f.answer_to]


def same(a, b):
    """Deep equality where 1 == 1.0 does not count as the same JSON."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items())
    if type(a) is list or type(a) is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def rmtree(path):
    try:
        entries = os.listdir(path)
    except OSError:
        try:
            os.remove(path)
        except OSError:
            pass
        return
    for e in entries:
        rmtree(path + "/" + e)
    try:
        os.rmdir(path)
    except OSError:
        pass


def temp_dir(tag):
    base = os.getenv("TMPDIR") or "/tmp"
    rnd = "".join("%02x" % b for b in os.urandom(4))
    path = "%s/ocpp-mpy-%s-%s" % (base, tag, rnd)
    return path


# --- groups --------------------------------------------------------------------------
def test_frames(vectors):
    for text, expected in vectors["frames"]:
        got = describe_frame(framing.decode(text))
        check("frame %r" % text[:60], same(got, expected), "got %r expected %r"
              % (got, expected))
    # and back out: encode, decode, same frame
    for text, expected in vectors["frames"]:
        if expected[0] == "F" and expected[1] == framing.CALL:
            again = framing.decode(framing.encode_call(expected[2], expected[3], expected[4]))
            check("re-encode %r" % text[:60], same(describe_frame(again), expected))
    check("encode exact", framing.encode_call("1", "Heartbeat", {}) == '[2,"1","Heartbeat",{}]')
    check("encode error", framing.encode_error("x", "NotSupported", "d" * 300)
          == '[4,"x","NotSupported","%s",{}]' % ("d" * 255))
    check("bytes frame", describe_frame(framing.decode(b'[2,"b","Heartbeat",{}]'))
          == ["F", 2, "b", "Heartbeat", {}, None, None, None])
    check("not UTF-8", isinstance(framing.decode(b'[2,"b","\xff"]'), framing.BadFrame))
    for bad in ("[1,]", "[1] 2", "NaN", "1e400", "[-Infinity]", '{"a":1,}', "[01]", '["\t"]'):
        try:
            framing.loads(bad)
            check("loads refuses %r" % bad, False)
        except ValueError:
            check("loads refuses %r" % bad, True)
    check("loads", same(framing.loads(' {"a":[1,2.5,-3e2,"\\u20ac",true,null]} '),
                        {"a": [1, 2.5, -300.0, "\u20ac", True, None]}))


def test_validation(vectors):
    seen = set()
    for action, direction, text, expected in vectors["validation"]:
        spec = ACTIONS[action][2 if direction == "request" else 3]
        v = first_violation(spec, framing.loads(text))
        got = None if v is None else [v.code, v.path]
        seen.add(action)
        check("validate %s %s %s" % (action, direction, text[:50]), same(got, expected),
              "got %r expected %r" % (got, expected))
    check("every action has vectors", sorted(seen) == sorted(ACTIONS) == vectors["actions"],
          "%d of %d" % (len(seen), len(ACTIONS)))


def test_timestamps(vectors):
    for text, ok, value in vectors["rfc3339"]:
        check("is_rfc3339 %r" % text, timestamps.is_rfc3339(text) == ok)
        try:
            got = timestamps.parse_rfc3339(text)
        except ValueError:
            got = None
        check("parse_rfc3339 %r" % text, got == value or (
            got is not None and value is not None and abs(got - value) < 1e-6),
            "got %r expected %r" % (got, value))
    for seconds, text in vectors["format_utc"]:
        got = timestamps.format_utc(seconds)
        check("format_utc %r" % seconds, got == text, "got %r expected %r" % (got, text))


def test_rpc():
    now = [100.0]
    wire = []
    cp = RpcEndpoint(CHARGE_POINT, lambda t: wire.append(("cs", t)), clock=lambda: now[0])
    cs = RpcEndpoint(CENTRAL_SYSTEM, lambda t: wire.append(("cp", t)), clock=lambda: now[0])

    def pump():
        while wire:
            to, text = wire.pop(0)
            (cs if to == "cs" else cp).receive(text)
    cs.on("Heartbeat", lambda p: {"currentTime": "2026-11-24T10:00:00.000Z"})
    cp.on("Reset", lambda p: {"status": "Accepted"})
    cp.connection_up()
    cs.connection_up()
    box = []
    cp.call("Heartbeat", {}, on_result=box.append,
            on_error=lambda c, d, x: box.append(("error", c)))
    pump()
    check("rpc call -> result", box == [{"currentTime": "2026-11-24T10:00:00.000Z"}], repr(box))
    box = []
    cs.call("Reset", {"type": "Hard"}, on_result=box.append,
            on_error=lambda c, d, x: box.append(("error", c)))
    pump()
    check("rpc handled CALL", box == [{"status": "Accepted"}], repr(box))
    # CALLs the endpoint cannot take: answered with the right CALLERROR
    for text, code in (('[2,"u1","Frobnicate",{}]', errors.NOT_IMPLEMENTED),
                       ('[2,"u2","Reset",{"type":"Soft","x":1}]', errors.FORMATION_VIOLATION),
                       ('[2,"u3","Reset",{}]', errors.OCCURENCE_CONSTRAINT_VIOLATION),
                       ('[2,"u4","Reset",{"type":5}]', errors.TYPE_CONSTRAINT_VIOLATION),
                       ('[2,"u5","Reset",{"type":"Warm"}]', errors.PROPERTY_CONSTRAINT_VIOLATION),
                       ('[2,"u6","GetConfiguration",{}]', errors.NOT_SUPPORTED),
                       ('[2,"u7","Reset",{"type":"Hard"},]', errors.FORMATION_VIOLATION),
                       ('[2,"u8","Reset"]', errors.PROTOCOL_ERROR)):
        wire[:] = []
        cp.receive(text)
        answers = [framing.loads(t) for _, t in wire]
        check("rpc answers %s" % text, len(answers) == 1 and answers[0][0] == 4
              and answers[0][1] == framing.loads(text[:text.index(",", 4)] + "]")[1]
              and answers[0][2] == code, repr(answers))
    # a CALL without an answer times out on the (virtual) clock
    wire[:] = []
    box = []
    cp.call("Heartbeat", {}, on_result=box.append,
            on_error=lambda c, d, x: box.append(("error", c)), timeout=5)
    check("rpc one outstanding CALL", cp.busy and len(wire) == 1)
    now[0] += 6
    cp.poll(now[0])
    check("rpc timeout", len(box) == 1 and type(box[0]) is tuple, repr(box))
    check("rpc idle after timeout", not cp.busy)
    # an invalid outgoing payload is refused before it leaves
    try:
        cp.call("BootNotification", {"chargePointVendor": "v"})
        refused = False
    except Exception:
        refused = True
    check("rpc refuses an invalid CALL of its own", refused)


def test_store(tmp):
    st = Store(tmp + "/s")
    st.save("a", {"x": 1, "y": [1.5, "\u00e9"]})
    st.save("tx/00000001", [1, 2])
    st.save("a", {"x": 2})           # replaces the existing file
    check("store round trip", st.load("a") == {"x": 2} and st.load("tx/00000001") == [1, 2])
    check("store names", st.names() == ["a", "tx/00000001"], repr(st.names()))
    check("store missing", st.load("nope", 7) == 7)
    with open(tmp + "/s/a", "wb") as f:
        f.write(b"OCPPSTORE1 00000000 7\n{\"x\":3}")
    check("store corrupt -> default", st.load("a", "dflt") == "dflt")
    check("store corrupt set aside", st.corrupt_names() == ["a.corrupt"], repr(st.corrupt_names()))
    st.move("tx/00000001", "done/00000001")
    check("store move", st.load("done/00000001") == [1, 2] and not st.exists("tx/00000001"))
    check("store delete", st.delete("done/00000001") and not st.delete("done/00000001"))
    with open(tmp + "/s/b.tmp", "wb") as f:
        f.write(b"half")
    Store(tmp + "/s")
    check("store cleans temp files", "b.tmp" not in os.listdir(tmp + "/s"))
    check("store fsync count", st.fsync_count == (0 if compat.fsync is None else st.fsync_count))
    from ocpp_core import journal_log
    one, two = journal_log.frame([["Q", {"seq": 1}]]), journal_log.frame([["D", [1]]])
    st.append("journal/0000000001.log", one)
    st.append("journal/0000000001.log", two + two[:5])      # and a torn tail
    data = st.read_bytes("journal/0000000001.log")
    check("journal log frames", journal_log.read_frames(data) ==
          ([[["Q", {"seq": 1}]], [["D", [1]]]], 0, 5), repr(journal_log.read_frames(data)))
    damaged = data[:3] + b"?" + data[4:]
    check("journal log skips a damaged frame", journal_log.read_frames(damaged)[:2] ==
          ([[["D", [1]]]], len(one)))


def test_config(tmp, vectors):
    profile = StationProfile()
    st = Store(tmp + "/c")
    cfg = Configuration(st, profile)
    got = cfg.get_configuration({})
    check("config GetConfiguration all keys", same(got, vectors["config_all"]),
          "got %r" % (got,))
    check("config change", cfg.change_configuration(
        {"key": "HeartbeatInterval", "value": "60"}) == {"status": "Accepted"})
    check("config rejected", cfg.change_configuration(
        {"key": "HeartbeatInterval", "value": "-1"}) == {"status": "Rejected"})
    check("config unknown", cfg.change_configuration(
        {"key": "Nope", "value": "1"}) == {"status": "NotSupported"})
    check("config read-only", cfg.change_configuration(
        {"key": "NumberOfConnectors", "value": "2"}) == {"status": "Rejected"})
    cfg2 = Configuration(Store(tmp + "/c"), profile)
    check("config persisted", cfg2.get("HeartbeatInterval") == 60, repr(cfg2.get("HeartbeatInterval")))
    got = cfg2.get_configuration({"key": ["heartbeatinterval", "Nope"]})
    check("config some keys", same(got, vectors["config_some"]), repr(got))


def test_auth(tmp, vectors):
    for args, expected in vectors["auth_decisions"]:
        got = list(auth.authorization_decision(*args))
        check("auth decision %r" % (args,), same(got, expected), "got %r expected %r"
              % (got, expected))
    for args, expected in vectors["auth_groups"]:
        check("auth same_group %r" % (args,), auth.same_group(*args) == expected)
    st = Store(tmp + "/a")
    lst = auth.LocalList(st)
    status = lst.apply("Full", 3, [{"idTag": "tag1", "idTagInfo": {"status": "Accepted"}},
                                   {"idTag": "TAG2", "idTagInfo": {"status": "Blocked"}}])
    check("local list Full", status == "Accepted" and lst.version == 3, repr(status))
    check("local list case-insensitive", lst.get("TAG1") == {"status": "Accepted"})
    check("local list version mismatch",
          lst.apply("Differential", 3, [{"idTag": "x", "idTagInfo": {"status": "Accepted"}}])
          == "VersionMismatch")
    lst2 = auth.LocalList(st)
    check("local list persisted", lst2.version == 3 and lst2.get("tag2") == {"status": "Blocked"})


# --- a charging session ----------------------------------------------------------------
START_WALL = timestamps.parse_rfc3339("2026-11-24T10:00:00Z")


class VirtualTime:
    def __init__(self):
        self.mono = 1000.0
        self.wall_offset = START_WALL - self.mono

    def monotonic(self):
        return self.mono

    def wall(self):
        return self.mono + self.wall_offset


class FakeStation(StationInterface):
    def __init__(self):
        self.contactor = {}
        self.offered = {}
        self.lock = {}
        self.events = []

    def set_contactor(self, cid, closed):
        self.contactor[cid] = closed

    def set_offered_current(self, cid, amps):
        self.offered[cid] = amps
        self.events.append(("ev_wants", cid, amps > 0))

    def set_lock(self, cid, locked):
        self.lock[cid] = locked
        self.events.append(("lock_feedback", cid, locked))

    def restart(self, kind):
        pass


class Session:
    """tests/support/core_harness.Harness in small: CSMS endpoint back to back."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.time = VirtualTime()
        self.profile = StationProfile()
        self.station = FakeStation()
        self.calls = []
        self.csms_errors = []
        self.next_tx = 1
        self.wire = []
        self.connected = False
        self.ev = {1: "A"}
        self.energy = {1: 1000.0}
        self.csms = RpcEndpoint(CENTRAL_SYSTEM, lambda t: self.wire.append(("cp", t)),
                                clock=self.time.monotonic)
        for action in ("BootNotification", "Heartbeat", "Authorize", "StartTransaction",
                       "StopTransaction", "StatusNotification", "MeterValues", "DataTransfer"):
            self.csms.on(action, self._handler(action))
        self.power_on()

    def _handler(self, action):
        def handler(payload):
            self.calls.append((action, payload))
            now = timestamps.format_utc(self.time.wall())
            if action == "BootNotification":
                return {"status": "Accepted", "currentTime": now, "interval": 300}
            if action == "Heartbeat":
                return {"currentTime": now}
            if action == "Authorize":
                return {"idTagInfo": {"status": "Accepted"}}
            if action == "StartTransaction":
                self.next_tx += 1
                return {"transactionId": self.next_tx - 1, "idTagInfo": {"status": "Accepted"}}
            if action == "StopTransaction":
                return {"idTagInfo": {"status": "Accepted"}} if "idTag" in payload else {}
            if action == "DataTransfer":
                return {"status": "UnknownVendorId"}
            return {}
        return handler

    def power_on(self):
        self.clock = Clock(wall=self.time.wall, monotonic=self.time.monotonic, boot_id="mpy")
        self.store = Store(self.data_dir)
        self.rpc = RpcEndpoint(CHARGE_POINT, lambda t: self.wire.append(("cs", t)),
                               clock=self.time.monotonic)
        self.station.events = []
        self.cp = ChargePoint(self.rpc, self.clock, self.store, self.station, self.profile,
                              {"chargePointVendor": "OpenPiCharge",
                               "chargePointModel": "PiCharger-AC1"})
        self.cp.config.set("MinimumStatusDuration", 0)
        self.cp.config.set("MeterValueSampleInterval", 60)
        self.cp.lock_feedback(1, self.station.lock.get(1, False)) if self.profile.has_lock else None
        self.sample()
        self.cp.ev_state_changed(1, self.ev[1])
        self.pump()

    def power_cut(self):
        self.connected = False
        self.wire = []
        self.csms.connection_down()
        self.cp = None
        self.station.contactor = {}

    def sample(self):
        drawing = self.station.contactor.get(1) and self.ev[1] in ("C", "D")
        self.cp.meter_sample(1, MeterSample(
            energy_wh=self.energy[1], power_w=7400.0 if drawing else 0.0,
            current_a=(10.0, 10.0, 10.0) if drawing else (0.0, 0.0, 0.0),
            voltage_v=(230.0, 231.0, 229.0), frequency_hz=50.0))

    def boot(self):
        self.connected = True
        self.csms.connection_up()
        self.cp.connection_up()
        self.advance(0)

    def pump(self):
        for _ in range(10000):
            if self.wire:
                to, text = self.wire.pop(0)
                if not self.connected:
                    continue
                if to == "cs":
                    self.csms.receive(text)
                else:
                    framing.loads(text)   # the frame must decode here too
                    self.cp.rpc.receive(text)
                continue
            if self.cp is not None and self.station.events:
                kind, cid, value = self.station.events.pop(0)
                if kind == "lock_feedback":
                    self.cp.lock_feedback(cid, value)
                elif kind == "ev_wants" and value and self.ev[cid] == "B":
                    self.ev[cid] = "C"
                    self.cp.ev_state_changed(cid, "C")
                continue
            if self.cp is not None:
                self.cp.tick(self.time.mono)
                if self.wire or self.station.events:
                    continue
            return
        raise AssertionError("the engine does not settle")

    def advance(self, seconds, step=1.0):
        end = self.time.mono + seconds
        while True:
            self.pump()
            if self.time.mono >= end:
                break
            due = self.cp.tick(self.time.mono)
            dt = min(max(due, 0.001), step, end - self.time.mono)
            if self.station.contactor.get(1) and self.ev[1] in ("C", "D"):
                self.energy[1] += 7400.0 * dt / 3600.0
            self.time.mono += dt
            self.sample()
        self.pump()

    def sent(self, action, since=0):
        return [p for a, p in self.calls[since:] if a == action]

    def statuses(self, since=0):
        return [p["status"] for p in self.sent("StatusNotification", since)
                if p["connectorId"] == 1]


def test_session(tmp):
    h = Session(tmp + "/data")
    h.boot()
    check("session BootNotification first", h.calls and h.calls[0][0] == "BootNotification")
    check("session Available", h.statuses()[-1:] == ["Available"], repr(h.statuses()))
    h.ev[1] = "B"
    h.cp.ev_state_changed(1, "B")
    h.pump()
    check("session plug -> Preparing", h.statuses()[-1:] == ["Preparing"], repr(h.statuses()))
    h.cp.card_presented("04A1B2C3")
    h.pump()
    starts = h.sent("StartTransaction")
    check("session StartTransaction", len(starts) == 1 and starts[0]["idTag"] == "04A1B2C3"
          and starts[0]["connectorId"] == 1, repr(starts))
    check("session Charging", h.statuses()[-1:] == ["Charging"], repr(h.statuses()))
    check("session contactor closed", h.station.contactor.get(1) is True)
    h.advance(185)
    mv = h.sent("MeterValues")
    check("session MeterValues", len(mv) >= 3 and all(p.get("transactionId") == 1 for p in mv),
          "%d MeterValues" % len(mv))
    h.cp.card_presented("04A1B2C3")
    h.pump()
    stops = h.sent("StopTransaction")
    check("session StopTransaction", len(stops) == 1 and stops[0]["transactionId"] == 1
          and stops[0]["meterStop"] > starts[0]["meterStart"], repr(stops))
    check("session contactor open", not h.station.contactor.get(1))
    check("session nothing left to send", h.store.names("queue") == [],
          repr(h.store.names()))
    # a second session, cut by a power loss: the journal brings the stop after restart
    h.cp.card_presented("04A1B2C3")
    h.pump()
    check("session 2 started", len(h.sent("StartTransaction")) == 2
          and h.statuses()[-1:] == ["Charging"], repr(h.statuses()))
    h.advance(45)
    before = int(h.energy[1])
    h.power_cut()
    h.time.mono += 30
    check("session journal holds tx 2", len(Store(tmp + "/data").names()) > 0)
    mark = len(h.calls)
    h.power_on()
    h.boot()
    stops = h.sent("StopTransaction", mark)
    check("restart recovers the journal: PowerLoss stop", len(stops) == 1
          and stops[0]["reason"] == "PowerLoss" and stops[0]["transactionId"] == 2
          and abs(stops[0]["meterStop"] - before) <= 25, repr(stops))
    check("restart: no CALLERROR from the CSMS", not h.csms_errors)
    mark = len(h.calls)
    h.power_cut()
    h.power_on()
    h.boot()
    check("restart again: never stopped twice", h.sent("StopTransaction", mark) == [])


def test_security_events(tmp):
    """A critical security event raised offline, through a power cut, delivered
    after the boot (ocpp_core/security, the journal's queue_message)."""
    from ocpp_core import security

    class Log:
        def __init__(self):
            self.records = []

        def append(self, record):
            self.records.append(record)

    h = Session(tmp + "/data")
    h.csms.on("SecurityEventNotification", h._handler("SecurityEventNotification"))
    log = Log()
    security.attach(h.cp, log)
    h.cp.events.emit("security_event", "TamperDetectionActivated", "enclosure opened")
    check("security event logged", [r["type"] for r in log.records] == ["TamperDetectionActivated"])
    check("security event journaled", h.cp.journal.pending_count() == 1)
    h.power_cut()
    h.power_on()
    security.attach(h.cp, Log())
    h.boot()
    sent = h.sent("SecurityEventNotification")
    check("security event delivered after the power cut",
          [p["type"] for p in sent] == ["TamperDetectionActivated"], repr(sent))
    check("security event removed after its answer", h.cp.journal.pending_count() == 0)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    only_session = "--session-only" in argv     # small heaps: no vector file to hold
    if not args and not only_session:
        print("usage: run.py VECTORS.json [--heap] | run.py --session-only [--heap]   (python -m tests.micropython.vectors OUT)")
        print("0 passed, 1 failed")
        return 1
    tmp = temp_dir("run")
    try:
        os.mkdir(tmp)
        group("session", test_session, tmp + "/session")
        os.mkdir(tmp + "/security")
        group("security events", test_security_events, tmp + "/security")
        heap("after a charging session")
        if only_session:
            args = None
            raise StopIteration
        with open(args[0]) as f:
            vectors = json.load(f)
        group("framing", test_frames, vectors)
        group("validation", test_validation, vectors)
        group("timestamps", test_timestamps, vectors)
        group("rpc", test_rpc)
        group("store", test_store, tmp)
        group("config", test_config, tmp, vectors)
        group("auth", test_auth, tmp, vectors)
    except StopIteration:
        pass
    finally:
        rmtree(tmp)
    print("implementation: %s %s" % (sys.implementation.name,
                                     ".".join(str(x) for x in sys.implementation.version[:3])))
    if "--heap" in argv:
        for label, free, alloc in HEAP:
            print("heap %-26s free %8d  allocated %8d bytes" % (label + ":", free, alloc))
    print("%d passed, %d failed" % (PASSED[0], len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
