"""Benchmark: what the transaction journal costs on this machine's disk.

    python -m tools.bench_journal [--dir DIR] [-n N] [--queued K]

For each journal operation: microseconds per call and fsyncs per call (every
fsync of a file or a folder, counted by the Store), measured on a fresh data
directory under DIR (default: the system temp folder; give a folder on the SD
card to measure the card). Deliveries are pump() + the CALLRESULT handed back
by a fake RPC, i.e. the journal's side of a delivery without the network.
A delivered StopTransaction also prunes the oldest finished transaction record
once more than 100 are kept (one unlink: the .5 fsync).

Also: the cost of one typical transaction (begin, 20 readings, 4 MeterValues,
4 stop samples, end, and the delivery of its 6 messages), and how long the
journal takes to open with K messages queued (start-up after a long offline
period).
"""

import argparse
import os
import shutil
import tempfile
import time

from ocpp_core.clock import Clock
from ocpp_core.journal import Journal
from ocpp_core.store import Store

CONFIG = {"TransactionMessageAttempts": 3, "TransactionMessageRetryInterval": 60,
          "StopTransactionMaxMeterValues": 20}
SAMPLED = [{"value": "12345.6", "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
           {"value": "7360", "context": "Sample.Periodic", "measurand": "Power.Active.Import",
            "unit": "W"},
           {"value": "32.0", "context": "Sample.Periodic", "measurand": "Current.Import",
            "unit": "A", "phase": "L1"}]


class FakeRpc:
    def __init__(self):
        self.last = None

    def call(self, action, payload, on_result=None, on_error=None):
        self.last = (action, payload, on_result)


def conf(action, n):
    if action == "StartTransaction":
        return {"transactionId": n, "idTagInfo": {"status": "Accepted"}}
    return {}


class Bench:
    def __init__(self, parent, max_untied=100):
        self.dir = tempfile.mkdtemp(prefix="bench-journal-", dir=parent)
        self.clock = Clock()
        self.store = Store(os.path.join(self.dir, "data"))
        self.j = Journal(self.store, self.clock, CONFIG.get, meter_persist_interval=10.0,
                         max_untied=max_untied)
        self.rpc = FakeRpc()
        self.rows = []
        self.n_tid = 0

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def measure(self, label, fn, n):
        f0 = self.store.fsync_count
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        dt = time.perf_counter() - t0
        self.rows.append((label, dt / n * 1e6, (self.store.fsync_count - f0) / n))

    def deliver_one(self, _i=0):
        assert self.j.pump(self.rpc, self.clock.monotonic(), True)
        action, _payload, on_result = self.rpc.last
        self.n_tid += 1
        on_result(conf(action, self.n_tid))
        return action

    def sample(self):
        return {"at": self.clock.stamp(), "sampledValue": SAMPLED}

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

    def typical(self, n):
        j = self.j

        def one(i):
            key = j.begin(1, "TAG", 0)
            for r in range(20):
                j.record_meter(key, r * 100, force=(r % 5 == 0))
            for _ in range(4):
                j.queue_meter_values(key, 1, [self.sample()])
                j.add_stop_sample(key, self.sample())
            j.end(key, 2000, "Local")
            while j.pending_count():
                self.deliver_one()

        self.measure("one typical transaction (see docstring)", one, n)

    def open_with_queue(self, k):
        j = self.j
        for i in range(k):
            j.queue_meter_values(None, 0, [self.sample()])
        t0 = time.perf_counter()
        j = Journal(Store(self.store.directory), self.clock, CONFIG.get, max_untied=k + 1)
        dt = time.perf_counter() - t0
        assert j.pending_count() == k
        return dt


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=None, help="parent folder of the scratch data directory")
    p.add_argument("-n", type=int, default=200, help="calls per operation (default 200)")
    p.add_argument("--queued", type=int, default=1000,
                   help="messages queued for the start-up measurement (default 1000)")
    args = p.parse_args(argv)

    b = Bench(args.dir)
    try:
        b.run(args.n)
        b.typical(max(1, args.n // 10))
        print("journal on %s (n=%d)" % (b.dir, args.n))
        print("%-42s %12s %8s" % ("operation", "us/call", "fsyncs"))
        for label, us, fs in b.rows:
            print("%-42s %12.0f %8.2f" % (label, us, fs))
    finally:
        b.close()
    b = Bench(args.dir, max_untied=args.queued + 1)
    try:
        dt = b.open_with_queue(args.queued)
        print("opening the journal with %d messages queued: %.0f ms" % (args.queued, dt * 1e3))
    finally:
        b.close()


if __name__ == "__main__":
    main()
