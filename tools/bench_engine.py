"""Benchmark: how fast the OCPP engine turns an event into the message it causes.

    python -m tools.bench_engine [--n 2000] [--dir DIR]

In process, on the real clock (time.perf_counter_ns): the ChargePoint with a
real Store (fsyncs included) in a scratch folder under DIR (default: the system
temp folder; give a folder on the SD card to measure the card), and a CSMS
RpcEndpoint wired back to back that answers at once. Each figure runs from just
before the event is handed to the engine to the moment the engine calls its
send function with the resulting frame, i.e. what the firmware's main loop does
for one event: the handler, then tick().

Cases (each iteration starts from the same state; transactions are stopped and
the EV unplugged between iterations, outside the measurement):

  (a) a card is tapped with the EV already plugged in, the idTag in the
      authorization cache and LocalPreAuthorize true -> StartTransaction;
      the plain case: a card the station cannot decide locally -> Authorize
  (b) identification first: the card was accepted, the EV is then plugged in
      -> StartTransaction
  (c) a CSMS CALL arrives (GetConfiguration, ChangeConfiguration,
      RemoteStartTransaction, DataTransfer) -> its CALLRESULT

Also printed: the fsyncs each transaction message costs (Store.fsync_count
deltas: before the message may leave, and when its answer is processed), the
store writes behind them, and the time of one store write.
"""

import argparse
import json
import os
import shutil
import tempfile
import time

from ocpp_core.charge_point import ChargePoint
from ocpp_core.clock import Clock
from ocpp_core.metering import MeterSample
from ocpp_core.rpc import CENTRAL_SYSTEM, CHARGE_POINT, RpcEndpoint
from ocpp_core.station import StationInterface, StationProfile
from ocpp_core.store import Store
from ocpp_core.timestamps import format_utc
from tools.bench_stats import filesystem_of, summary

CACHED_TAG = "04A1B2C3"        # known to the authorization cache (case a, b, c)
UNKNOWN_TAG = "0BADC0DE"       # the CSMS answers Invalid: nothing starts (plain case)
INJECTED_PREFIX = "bench-"     # message ids of the CALLs this benchmark injects

now_ns = time.perf_counter_ns


# --- measuring ------------------------------------------------------------------------

def summary_us(samples_ns):
    """(p50, p99, max) in microseconds."""
    return summary(samples_ns, 1e3)


class TimedStore(Store):
    """A real Store that also records what each write cost (name, kind, ns)."""

    def __init__(self, directory):
        self.ops = []
        Store.__init__(self, directory)

    def _timed(self, kind, name, fn, *args):
        t0 = now_ns()
        try:
            return fn(self, *args)
        finally:
            self.ops.append((kind, name, now_ns() - t0))

    def save(self, name, obj):
        return self._timed("save", name, Store.save, name, obj)

    def delete(self, name):
        return self._timed("delete", name, Store.delete, name)

    def move(self, name, new_name):
        return self._timed("move", name, Store.move, name, new_name)

    def append(self, name, data):
        return self._timed("append", name, Store.append, name, data)


def op_label(kind, name):
    folder = name.split("/", 1)[0] + "/" if "/" in name else name
    return "%s %s" % (kind, folder)


class _Station(StationInterface):
    """Hardware commands go nowhere: the benchmark is about the engine."""

    def set_contactor(self, connector_id, closed):
        pass

    def set_lock(self, connector_id, locked):
        pass

    def set_offered_current(self, connector_id, amps):
        pass

    def restart(self, kind):
        pass


# --- the rig: engine + back-to-back CSMS ---------------------------------------------------

class Rig:
    def __init__(self, parent=None):
        self.dir = tempfile.mkdtemp(prefix="bench-engine-", dir=parent)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self):
        self.store = TimedStore(os.path.join(self.dir, "data"))
        self.clock = Clock()
        self.sent = []               # (t_ns, fsync_count, text): every frame the CP sent
        self._delivered = 0          # how many of `sent` went to the CSMS
        self.to_cp = []              # frames from the CSMS, not yet delivered
        self.next_tx = 1
        self.answers = {}            # idTag -> idTagInfo status the CSMS answers
        self.csms = RpcEndpoint(CENTRAL_SYSTEM, self.to_cp.append, clock=self.clock.monotonic)
        for action in ("BootNotification", "Heartbeat", "Authorize", "StartTransaction",
                       "StopTransaction", "StatusNotification", "MeterValues", "DataTransfer"):
            self.csms.on(action, self._handler(action))
        self.rpc = RpcEndpoint(CHARGE_POINT, self._cp_send, clock=self.clock.monotonic)
        boot = {"chargePointVendor": "OpenPiCharge", "chargePointModel": "bench-engine"}
        self.cp = ChargePoint(self.rpc, self.clock, self.store, _Station(), StationProfile(), boot)
        # Time-driven messages would land in random iterations: keep them out.
        for key, value in (("MinimumStatusDuration", 0), ("MeterValueSampleInterval", 0),
                           ("ClockAlignedDataInterval", 0)):
            self.cp.config.set(key, value)
        self.energy_wh = 1000.0
        self.cp.meter_sample(1, self._sample())
        self.cp.ev_state_changed(1, "A")
        self.csms.connection_up()
        self.cp.connection_up()
        self.pump()
        if not self.cp.online:
            raise RuntimeError("the engine did not register with the back-to-back CSMS")

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _sample(self):
        return MeterSample(energy_wh=self.energy_wh, power_w=0.0, current_a=(0.0, 0.0, 0.0),
                           voltage_v=(230.0, 230.0, 230.0), frequency_hz=50.0)

    def _cp_send(self, text):
        self.sent.append((now_ns(), self.store.fsync_count, text))

    def _handler(self, action):
        def handle(payload):
            now = format_utc(time.time())
            if action == "BootNotification":
                return {"status": "Accepted", "currentTime": now, "interval": 86400}
            if action == "Heartbeat":
                return {"currentTime": now}
            if action in ("Authorize", "StartTransaction") or \
                    (action == "StopTransaction" and "idTag" in payload):
                info = {"status": self.answers.get(payload["idTag"], "Accepted")}
                if action == "StartTransaction":
                    self.next_tx += 1
                    return {"transactionId": self.next_tx - 1, "idTagInfo": info}
                return {"idTagInfo": info}
            if action == "DataTransfer":
                return {"status": "UnknownVendorId"}
            return {}
        return handle

    # --- delivery -------------------------------------------------------------------------
    def pump(self, limit=100000):
        """Deliver frames both ways and tick until nothing moves."""
        for _ in range(limit):
            while self._delivered < len(self.sent):
                text = self.sent[self._delivered][2]
                self._delivered += 1
                msg = json.loads(text)
                if msg[0] != 2 and str(msg[1]).startswith(INJECTED_PREFIX):
                    continue        # answers a CALL we injected: no CSMS endpoint waits
                self.csms.receive(text)
            while self.to_cp:
                self.cp.rpc.receive(self.to_cp.pop(0))
            self.cp.tick()
            if self._delivered == len(self.sent) and not self.to_cp:
                return
        raise RuntimeError("the engine does not settle")

    def find(self, mark, predicate):
        """The first frame sent since `mark` for which predicate(msg) holds."""
        for i in range(mark, len(self.sent)):
            t, fsyncs, text = self.sent[i]
            if predicate(json.loads(text)):
                return t, fsyncs
        return None

    # --- the EV, the driver ------------------------------------------------------------------
    def ev(self, state):
        self.cp.ev_state_changed(1, state)
        self.pump()

    def stop_and_unplug(self):
        if self.cp.connector(1).in_transaction:
            self.cp.stop_transaction(1, "Local")
            self.pump()
        self.ev("A")
        self.cp.connector(1).authorization = None   # e.g. a remote start with no EV
        self.cp.refresh()
        self.pump()

    def configure(self, **values):
        for key, value in values.items():
            if self.cp.config.get(key) != value:
                self.cp.config.set(key, value)


def is_call(action):
    return lambda msg: msg[0] == 2 and msg[2] == action


def answers(msg_id):
    return lambda msg: msg[0] in (3, 4) and msg[1] == msg_id


class Case:
    def __init__(self, label, target):
        self.label = label
        self.target = target
        self.samples = []        # ns
        self.fsyncs = []         # fsyncs between the event and the send
        self.late = 0            # iterations where the frame needed a delivery round first


def measure(rig, case, event, predicate):
    """Run the event (then tick, like the main loop), return when the frame left."""
    mark = len(rig.sent)
    f0 = rig.store.fsync_count
    t0 = now_ns()
    event()
    rig.cp.tick()
    hit = rig.find(mark, predicate)
    if hit is None:               # queued behind another message: deliver and look again
        case.late += 1
        rig.pump()
        hit = rig.find(mark, predicate)
        if hit is None:
            raise RuntimeError("%s: the expected frame was never sent" % case.label)
    case.samples.append(hit[0] - t0)
    case.fsyncs.append(hit[1] - f0)


# --- the cases -------------------------------------------------------------------------------

class Phases:
    """Store operations and fsyncs per phase of a transaction's messages."""

    def __init__(self):
        self.data = {}           # phase -> [fsyncs list, ops Counter-like dict]
        self.order = []

    def add(self, phase, fsyncs, ops):
        if phase not in self.data:
            self.data[phase] = [[], {}]
            self.order.append(phase)
        entry = self.data[phase]
        entry[0].append(fsyncs)
        for kind, name, _ns in ops:
            label = op_label(kind, name)
            entry[1][label] = entry[1].get(label, 0) + 1


def tap_plugged_cached(rig, n, phases):
    case = Case("(a) tap, EV plugged, cached idTag, LocalPreAuthorize", "StartTransaction")
    rig.configure(AuthorizationCacheEnabled=True, LocalPreAuthorize=True)
    rig.cp.auth.learn(CACHED_TAG, {"status": "Accepted"})
    for _ in range(n):
        rig.ev("B")
        ops0 = len(rig.store.ops)
        measure(rig, case, lambda: rig.cp.card_presented(CACHED_TAG), is_call("StartTransaction"))
        sent_ops = len(rig.store.ops)
        phases.add("StartTransaction  event -> sent", case.fsyncs[-1],
                   rig.store.ops[ops0:sent_ops])
        f1 = rig.store.fsync_count
        rig.pump()               # StartTransaction delivered, its answer processed
        phases.add("StartTransaction  answer processed", rig.store.fsync_count - f1,
                   rig.store.ops[sent_ops:])
        mark, f2, ops2 = len(rig.sent), rig.store.fsync_count, len(rig.store.ops)
        rig.cp.stop_transaction(1, "Local")
        rig.cp.tick()
        hit = rig.find(mark, is_call("StopTransaction"))
        ops3 = len(rig.store.ops)
        if hit is not None:
            phases.add("StopTransaction   stop -> sent", hit[1] - f2, rig.store.ops[ops2:ops3])
        f3 = rig.store.fsync_count
        rig.pump()
        phases.add("StopTransaction   answer processed", rig.store.fsync_count - f3,
                   rig.store.ops[ops3:])
        rig.stop_and_unplug()
    return case


def tap_plain(rig, n):
    case = Case("(a) tap, idTag not decided locally", "Authorize")
    rig.configure(AuthorizationCacheEnabled=False, LocalPreAuthorize=False)
    rig.answers[UNKNOWN_TAG] = "Invalid"       # nothing starts: every iteration is the same
    for _ in range(n):
        measure(rig, case, lambda: rig.cp.card_presented(UNKNOWN_TAG), is_call("Authorize"))
        rig.pump()
    return case


def plug_authorized(rig, n):
    case = Case("(b) EV plugged, authorization pending", "StartTransaction")
    rig.configure(AuthorizationCacheEnabled=True, LocalPreAuthorize=True)
    rig.cp.auth.learn(CACHED_TAG, {"status": "Accepted"})
    for _ in range(n):
        rig.cp.card_presented(CACHED_TAG)
        rig.pump()
        if rig.cp.connector(1).authorization is None:
            raise RuntimeError("the card was not accepted locally")
        measure(rig, case, lambda: rig.cp.ev_state_changed(1, "B"), is_call("StartTransaction"))
        rig.pump()
        rig.stop_and_unplug()
    return case


def csms_calls(rig, n):
    """(c): one Case per CSMS CALL; returns them in print order."""
    rig.configure(AuthorizationCacheEnabled=True, LocalPreAuthorize=True)
    rig.cp.auth.learn(CACHED_TAG, {"status": "Accepted"})
    counter = [0]

    def inject(action, payload):
        counter[0] += 1
        msg_id = "%s%d" % (INJECTED_PREFIX, counter[0])
        text = json.dumps([2, msg_id, action, payload])
        return msg_id, (lambda: rig.cp.rpc.receive(text))

    cases = []
    simple = (
        ("GetConfiguration, all keys", "GetConfiguration", lambda i: {}),
        ("GetConfiguration, 2 keys", "GetConfiguration",
         lambda i: {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]}),
        ("ChangeConfiguration LightIntensity", "ChangeConfiguration",
         lambda i: {"key": "LightIntensity", "value": str(40 + i % 2)}),
        ("DataTransfer, unknown vendor", "DataTransfer",
         lambda i: {"vendorId": "com.example.bench", "messageId": "ping", "data": "x" * 32}),
    )
    for label, action, payload in simple:
        case = Case("(c) " + label, "CALLRESULT")
        for i in range(n):
            msg_id, event = inject(action, payload(i))
            measure(rig, case, event, answers(msg_id))
            rig.pump()
        cases.append(case)

    for message in ("StatusNotification", "MeterValues", "Heartbeat"):
        # The 60 s triggered-function budget: TriggerMessage -> the message it asks for.
        case = Case("(c) TriggerMessage %s" % message, message)
        for _ in range(n):
            msg_id, event = inject("TriggerMessage", {"requestedMessage": message,
                                                      "connectorId": 1}
                                   if message != "Heartbeat" else {"requestedMessage": message})
            measure(rig, case, event, is_call(message))
            rig.pump()
        cases.append(case)

    case = Case("(c) RemoteStartTransaction, EV plugged", "CALLRESULT")
    for _ in range(n):
        rig.ev("B")
        msg_id, event = inject("RemoteStartTransaction", {"connectorId": 1, "idTag": CACHED_TAG})
        measure(rig, case, event, answers(msg_id))
        rig.pump()                # the transaction starts after the answer
        if not rig.cp.connector(1).in_transaction:
            raise RuntimeError("RemoteStartTransaction did not start a transaction")
        rig.stop_and_unplug()
    cases.append(case)
    return cases


# --- report ------------------------------------------------------------------------------------

def print_report(rig, n, cases, phases, seconds):
    mount, fstype = filesystem_of(rig.dir)
    print("engine: event -> frame handed to the link (send called); real clock, n=%d per case"
          % n)
    print("store: %s (%s on %s); CSMS back to back, answering at once" % (rig.dir, fstype, mount))
    print()
    print("%-56s %-17s %9s %9s %9s %7s" % ("case", "frame", "p50 us", "p99 us", "max us",
                                          "fsyncs"))
    for c in cases:
        p50, p99, mx = summary_us(c.samples)
        fs = sum(c.fsyncs) / float(len(c.fsyncs)) if c.fsyncs else 0.0
        print("%-56s %-17s %9.0f %9.0f %9.0f %7.1f" % (c.label, c.target, p50, p99, mx, fs))
    late = [c for c in cases if c.late]
    for c in late:
        print("note: %s: %d of %d frames waited behind another message" % (c.label, c.late,
                                                                          len(c.samples)))
    print()
    print("transaction messages: fsyncs and store operations per message (case a, mean)")
    print("%-38s %7s  %s" % ("message / phase", "fsyncs", "store operations"))
    for phase in phases.order:
        fsyncs, ops = phases.data[phase]
        count = len(fsyncs)
        text = ", ".join("%s x%g" % (label, round(num / float(count), 2))
                         for label, num in sorted(ops.items()))
        print("%-38s %7.1f  %s" % (phase, sum(fsyncs) / float(count), text or "-"))
    print()
    print("store write times over the whole run:")
    groups = (
        ("journal append (journal/): write+fsync",
         lambda k, name: k == "append"),
        ("save (connectors, config, auth_cache)",
         lambda k, name: k == "save"),
        ("delete (an old journal segment): unlink+fsync dir",
         lambda k, name: k == "delete"),
    )
    for label, pick in groups:
        times = [ns for kind, name, ns in rig.store.ops if pick(kind, name)]
        if not times:
            continue
        p50, p99, mx = summary_us(times)
        print("  %-58s n=%-6d p50 %6.0f us  p99 %6.0f us  max %6.0f us" % (label, len(times), p50,
                                                                           p99, mx))
    print("  total fsyncs: %d" % rig.store.fsync_count)
    print("run time %.1f s" % seconds)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="iterations per case (default 2000)")
    p.add_argument("--dir", default=None,
                   help="parent folder of the scratch data directory (default: system temp)")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error("--n must be at least 1")
    t0 = time.monotonic()
    rig = Rig(args.dir)
    try:
        phases = Phases()
        cases = [tap_plugged_cached(rig, args.n, phases), tap_plain(rig, args.n),
                 plug_authorized(rig, args.n)]
        cases.extend(csms_calls(rig, args.n))
        print_report(rig, args.n, cases, phases, time.monotonic() - t0)
    finally:
        rig.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
