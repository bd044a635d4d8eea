"""Benchmark: what the transaction journal costs the data dir's medium.

    python -m tools.bench_journal [--dir DIR] [-n N] [--queued K] [--sessions-per-day S]

Measured on a fresh data directory under DIR (default: the system temp folder;
give a folder on the SD card to measure the card), through the journal's public
API only, so that the same script measures any version of the journal:

- per operation: microseconds per call, fsyncs per call (every fsync of a file
  or a folder, counted by the Store) and bytes written per call (the write()
  bytes of this process, /proc/self/io wchar; and the page-cache bytes it sent
  to the block layer, write_bytes: 0 on tmpfs). A delivery is pump() and the
  CALLRESULT handed back by a fake RPC (the journal's side without the network).
- one typical 1-hour session at the certified configuration (station-profile.md:
  MeterValueSampleInterval 10 s, ClockAlignedDataInterval 20 s, one sampled value
  per sample, StopTxnSampledData/StopTxnAlignedData the register,
  StopTransactionMaxMeterValues 50) on a virtual clock: the meter read every
  second (record_meter, persisted at most every 10 s), a periodic MeterValues and
  stop sample every 10 s, a clock-aligned MeterValues and stop sample every 20 s,
  every message answered at once;
- the estimate per year for S sessions a day (default 10): fsyncs, and bytes
  (write() bytes; block-layer bytes where measured, at least one 4 KiB block per
  fsync otherwise, plus the file system's own journal commit per fsync, not
  counted here);
- how long the journal takes to open with K messages queued (start-up after a
  long offline period).
"""

import argparse
import os
import shutil
import tempfile
import time

from ocpp_core.clock import Clock
from ocpp_core.journal import Journal
from ocpp_core.store import Store
from tools.bench_stats import filesystem_of

CONFIG = {"TransactionMessageAttempts": 3, "TransactionMessageRetryInterval": 60,
          "StopTransactionMaxMeterValues": 50}
SAMPLED = [{"value": "12345.6", "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
           {"value": "7360", "context": "Sample.Periodic", "measurand": "Power.Active.Import",
            "unit": "W"},
           {"value": "32.0", "context": "Sample.Periodic", "measurand": "Current.Import",
            "unit": "A", "phase": "L1"}]
BLOCK = 4096


def io_counters():
    """(wchar, write_bytes) of this process, or (0, 0) where /proc is missing."""
    out = {}
    try:
        with open("/proc/self/io") as f:
            for line in f:
                name, _, value = line.partition(":")
                out[name.strip()] = int(value)
    except (OSError, ValueError):
        return 0, 0
    return out.get("wchar", 0), out.get("write_bytes", 0)


class FakeRpc:
    def __init__(self):
        self.last = None

    def call(self, action, payload, on_result=None, on_error=None):
        self.last = (action, payload, on_result)


class VirtualTime:
    def __init__(self):
        self.wall = time.time()
        self.mono = 1000.0


class Cost:
    """What one measured stretch cost: fsyncs, write() bytes, block-layer bytes."""

    def __init__(self, store):
        self.store = store
        self.f0 = store.fsync_count
        self.w0, self.b0 = io_counters()
        self.t0 = time.perf_counter()

    def done(self):
        w1, b1 = io_counters()
        return (time.perf_counter() - self.t0, self.store.fsync_count - self.f0,
                w1 - self.w0, b1 - self.b0)


class Bench:
    def __init__(self, parent, virtual=False, max_untied=100):
        self.dir = tempfile.mkdtemp(prefix="bench-journal-", dir=parent)
        self.time = VirtualTime() if virtual else None
        if virtual:
            self.clock = Clock(wall=lambda: self.time.wall, monotonic=lambda: self.time.mono)
        else:
            self.clock = Clock()
        self.store = Store(os.path.join(self.dir, "data"))
        self.j = Journal(self.store, self.clock, CONFIG.get, meter_persist_interval=10.0,
                         max_untied=max_untied)
        self.rpc = FakeRpc()
        self.rows = []
        self.n_tid = 0
        self.counts = {}

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def measure(self, label, fn, n):
        cost = Cost(self.store)
        for i in range(n):
            fn(i)
        dt, fs, wb, bb = cost.done()
        self.rows.append((label, dt / n * 1e6, fs / float(n), wb / float(n), bb / float(n)))

    def deliver_one(self, _i=0):
        assert self.j.pump(self.rpc, self.clock.monotonic(), True)
        action, _payload, on_result = self.rpc.last
        self.counts[action] = self.counts.get(action, 0) + 1
        if action == "StartTransaction":
            self.n_tid += 1
            on_result({"transactionId": self.n_tid, "idTagInfo": {"status": "Accepted"}})
        else:
            on_result({})
        return action

    def sample(self, values=SAMPLED):
        return {"at": self.clock.stamp(), "sampledValue": values}

    def run(self, n):
        j = self.j
        keys = []
        self.measure("begin (StartTransaction queued)",
                     lambda i: keys.append(j.begin(1, "TAG%d" % i, 1000 + i)), n)
        self.measure("deliver StartTransaction", self.deliver_one, n)
        self.measure("record_meter, written (forced)",
                     lambda i: j.record_meter(keys[i], 2000 + i, force=True), n)
        self.measure("record_meter, throttled (not written)",
                     lambda i: j.record_meter(keys[i], 3000 + i), n)
        self.measure("add_stop_sample", lambda i: j.add_stop_sample(keys[i], self.sample()), n)
        self.measure("queue_meter_values (1 entry, 3 values)",
                     lambda i: j.queue_meter_values(keys[i], 1, [self.sample()]), n)
        self.measure("deliver MeterValues", self.deliver_one, n)
        self.measure("end (StopTransaction queued)",
                     lambda i: j.end(keys[i], 5000 + i, "Local"), n)
        self.measure("deliver StopTransaction", self.deliver_one, n)

    def session(self, minutes=60):
        """One certified session on the virtual clock; returns its Cost figures."""
        j, t = self.j, self.time
        register = [{"value": "0", "context": "Sample.Periodic",
                     "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
        self.counts = {}
        cost = Cost(self.store)
        key = j.begin(1, "04A1B2C3", 1000, first_sample=self.sample(register))
        self.deliver_one()
        wh = 1000.0
        for second in range(1, minutes * 60 + 1):
            t.wall += 1
            t.mono += 1
            wh += 7360 / 3600.0
            j.record_meter(key, wh)
            if second % 10 == 0:       # MeterValueSampleInterval 10
                sv = [dict(register[0], value="%d" % wh)]
                j.queue_meter_values(key, 1, [self.sample(sv)])
                j.add_stop_sample(key, self.sample(sv))
            if second % 20 == 0:       # ClockAlignedDataInterval 20
                sv = [dict(register[0], value="%d" % wh, context="Sample.Clock")]
                j.queue_meter_values(key, 1, [self.sample(sv)])
                j.add_stop_sample(key, self.sample(sv))
            while j.pending_count():
                self.deliver_one()
        j.end(key, int(wh), "Local", last_sample=self.sample(
            [dict(register[0], value="%d" % wh, context="Transaction.End")]))
        self.deliver_one()
        return cost.done()

    def open_with_queue(self, k):
        j = self.j
        for i in range(k):
            j.queue_meter_values(None, 0, [self.sample()])
        t0 = time.perf_counter()
        j = Journal(Store(self.store.directory), self.clock, CONFIG.get, max_untied=k + 1)
        dt = time.perf_counter() - t0
        assert j.pending_count() == k
        return dt


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return "%.1f %s" % (n, unit) if unit != "B" else "%d B" % n
        n /= 1024.0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=None, help="parent folder of the scratch data directory")
    p.add_argument("-n", type=int, default=200, help="calls per operation (default 200)")
    p.add_argument("--queued", type=int, default=1000,
                   help="messages queued for the start-up measurement (default 1000)")
    p.add_argument("--sessions-per-day", type=int, default=10,
                   help="for the yearly estimate (default 10)")
    p.add_argument("--session-minutes", type=int, default=60,
                   help="length of the typical session (default 60)")
    args = p.parse_args(argv)

    b = Bench(args.dir)
    kind = filesystem_of(b.dir)[1]
    try:
        b.run(args.n)
        print("journal on %s (%s), n=%d" % (b.dir, kind, args.n))
        print("%-42s %10s %8s %10s %10s" % ("operation", "us/call", "fsyncs", "write() B",
                                              "block B"))
        for label, us, fs, wb, bb in b.rows:
            print("%-42s %10.0f %8.2f %10.0f %10.0f" % (label, us, fs, wb, bb))
    finally:
        b.close()

    b = Bench(args.dir, virtual=True)
    try:
        dt, fs, wb, bb = b.session(args.session_minutes)
        msgs = sum(b.counts.values())
        print()
        print("one %d-minute session, certified configuration (10 s samples, 20 s clock-aligned):"
              % args.session_minutes)
        print("  %d transaction messages (%s)" % (msgs, ", ".join(
            "%s %d" % (a, n) for a, n in sorted(b.counts.items()))))
        print("  fsyncs %d (%.2f per message), write() bytes %s (%.0f per message), "
              "block-layer bytes %s" % (fs, fs / float(msgs), human(wb), wb / float(msgs),
                                        human(bb)))
        print("  %.2f s of journal time" % dt)
        per_year = args.sessions_per_day * 365
        block = bb if bb > 0 else fs * BLOCK
        print("per year at %d sessions a day (%d sessions): %.2f million fsyncs, %s written "
              "by write(), %s of data blocks%s" % (
                  args.sessions_per_day, per_year, fs * per_year / 1e6, human(wb * per_year),
                  human(block * per_year),
                  "" if bb > 0 else " (estimated: one 4 KiB block per fsync)"))
    finally:
        b.close()

    b = Bench(args.dir, max_untied=args.queued + 1)
    try:
        dt = b.open_with_queue(args.queued)
        print("opening the journal with %d messages queued: %.0f ms" % (args.queued, dt * 1e3))
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    main()
