"""Crash safety of the journal, with real processes and SIGKILL.

A worker (tests/support/journal_crash_worker.py) runs transactions against a journal in
one data directory and keeps an independent fsynced log of every operation the
journal acknowledged. It is killed with SIGKILL, again and again on the same
directory: mostly at a chosen file-system step of the journal (every window
between two fsync/rename/unlink calls, and in the middle of an append's write:
a torn record), every fourth run at one of the steps of a compaction of the
log, sometimes after a random delay.

After every kill the directory is copied and the copy opened and checked
against the log (the original goes on to the next worker untouched, so the
journal's own start-up repairs are crash-tested too):

- the journal always opens, with no corrupt or temp files;
- every acknowledged message is queued exactly once, or was delivered (or was
  in flight when the worker died: answered but maybe not yet recorded);
- the queue is in the order the messages were acknowledged; deliveries happened
  in that order; nothing delivered is queued again;
- every transaction has exactly one StopTransaction; recovery ends the open
  ones with PowerLoss at the last persisted reading;
- draining the copy delivers exactly the rest, in order, with the right
  transactionIds and valid payloads.

A SIGKILL does not lose what the kernel holds in its page cache, so this tests
the ordering of the journal's steps; the torn appends the worker makes stand for
a power cut in the middle of a write (the log's CRC framing detects them). Every
second run ends in a simulated power cut instead: each journal file is cut back
to the size it had at its last fsync (the worker notes them), a file never
fsynced is removed, and the next worker goes on from there; an answer the worker
saw recorded ("D") must never be sent again, even then.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

from ocpp_core.clock import Clock
from ocpp_core.journal import Journal
from ocpp_core.store import Store
from tests.support.journal_crash_worker import CONFIG, JOURNAL_KW, check_payload, conf_for, ident

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "support",
                      "journal_crash_worker.py")
SEED = 20240601
ITERATIONS = 48
MAX_OPS = 150


class Recorder:
    def __init__(self):
        self.calls = []

    def call(self, action, payload, on_result=None, on_error=None):
        self.calls.append((action, payload, on_result, on_error))


class Model:
    """What the worker's log says must be true."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.offset = 0
        self.order = []        # idents in the order they were queued
        self.index = {}
        self.delivered = []    # "D" idents, in order
        self.dset = set()
        self.maybe = set()     # "Y" without "D": answered, maybe recorded
        self.tx = {}           # key -> {"start", "acked", "tried", "end"}
        self.compacting = False  # the last line of the log is "K": killed in a compaction
        self.compactions = 0

    def add(self, i):
        assert i not in self.index, "%s queued twice" % i
        self.index[i] = len(self.order)
        self.order.append(i)

    def tx_of(self, key):
        return self.tx.setdefault(key, {"start": None, "acked": None, "tried": None, "end": None})

    def read(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode().splitlines():
            kind, _, rest = line.partition(" ")
            args = rest.split(" ")
            assert kind != "ERR", "worker: " + rest
            if kind == "B":
                t = self.tx_of(args[0])
                t["start"] = t["acked"] = t["tried"] = int(args[1])
                self.add("S:" + args[0])
            elif kind == "r":
                self.tx_of(args[0])["tried"] = int(args[1])
            elif kind == "R":
                self.tx_of(args[0])["acked"] = int(args[1])
            elif kind == "M":
                self.add("M:" + args[1])
            elif kind == "G":
                self.add("G:" + args[0])
            elif kind in ("K", "k"):
                self.compacting = kind == "K"
                self.compactions += kind == "k"
            elif kind in ("E", "P"):
                t = self.tx_of(args[0])
                assert t["end"] is None, "transaction %s ended twice" % args[0]
                t["end"] = ("Local" if kind == "E" else "PowerLoss", int(args[1]))
                if kind == "P":
                    self.check_power_loss_meter(args[0], int(args[1]), t["start"])
                self.add("T:" + args[0])
            elif kind == "Y":
                self.maybe.add(args[0])
            elif kind == "D":
                assert args[0] not in self.dset, "%s delivered twice" % args[0]
                self.dset.add(args[0])
                self.delivered.append(args[0])
                self.maybe.discard(args[0])

    def check_power_loss_meter(self, key, meter, meter_start):
        t = self.tx_of(key)
        low = t["acked"] if t["acked"] is not None else meter_start
        high = t["tried"] if t["tried"] is not None else meter_start
        if low is not None:
            assert meter >= low, "PowerLoss stop of %s at %d Wh: %d was durable" % (key, meter, low)
        if high is not None:
            assert meter <= high, "PowerLoss stop of %s at %d Wh: never read" % (key, meter)


def drain(j, rng_unused=None):
    clock = Clock()
    out = []
    while j.pending_count():
        head = j.head()
        rpc = Recorder()
        assert j.pump(rpc, clock.monotonic(), True), "head %s not sent" % ident(head)
        action, payload, on_result, _ = rpc.calls[0]
        problem = check_payload(head, action, payload)
        assert problem is None, problem
        on_result(conf_for(head))
        out.append((ident(head), payload))
    return out


def check_copy(model, data, scratch):
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(data, scratch)
    store = Store(scratch)
    j = Journal(store, Clock(), CONFIG.get, **JOURNAL_KW)   # must always open
    assert store.corrupt_names() == [], store.corrupt_names()
    for root, _dirs, files in os.walk(scratch):
        assert not [f for f in files if f.endswith(".tmp")]

    queued = [ident(e) for e in j.queued()]
    for i in queued:  # a delivery recorded in the record is never sent again
        rec = j.get(i[2:]) if i[0] in "ST" else None
        assert rec is not None or i[0] in "MG", "%s without its record" % i
        assert not (i[0] == "S" and rec["transaction_id"] is not None), "%s re-queued" % i
        assert not (i[0] == "T" and rec["stop_delivered"]), "%s re-queued" % i
    assert len(set(queued)) == len(queued), "duplicate in the queue: %r" % queued
    qset = set(queued)
    assert not (qset & model.dset), "delivered yet queued: %r" % (qset & model.dset)
    unknown = [i for i in queued if i not in model.index]
    known = queued[:len(queued) - len(unknown)]
    assert queued[len(known):] == unknown, "unacknowledged messages not at the tail: %r" % queued
    positions = [model.index[i] for i in known]
    assert positions == sorted(positions), "queue out of order: %r" % known
    lost = [i for i in model.order if i not in model.dset and i not in qset and i not in model.maybe]
    assert not lost, "acknowledged messages lost: %r" % lost
    done = [model.index[i] for i in model.delivered]
    assert done == sorted(done), "delivered out of order: %r" % model.delivered
    if known:
        for i in model.order[:model.index[known[0]]]:
            assert i in model.dset or i in model.maybe, "%s skipped" % i
    for i in unknown:  # the operation the kill interrupted: adopted
        model.add(i)
        if i.startswith("S:"):
            model.tx_of(i[2:])["start"] = j.get(i[2:])["meter_start"]

    # recovery on the copy
    still_open = [r["key"] for r in j.open_transactions()]
    for key in still_open:
        assert "T:" + key not in model.index, "open transaction %s has a stop queued" % key
    ended = j.recover_after_power_loss()
    assert ended == still_open
    extra = []
    for key in ended:
        rec = j.get(key)
        assert rec["stop"]["reason"] == "PowerLoss"
        model.check_power_loss_meter(key, rec["stop"]["meter_stop"], rec["meter_start"])
        extra.append("T:" + key)
    assert j.recover_after_power_loss() == []

    # the rest goes out exactly once, in order
    got = drain(j)
    idents = [g[0] for g in got]
    expected = [i for i in model.order + extra if i not in model.dset]
    expected = [i for i in expected if not (i in model.maybe and i not in idents)]
    assert idents == expected
    for i, payload in got:
        if i.startswith("T:"):
            end = model.tx_of(i[2:])["end"]
            if end is not None:
                assert (payload["reason"], payload["meterStop"]) == end, (i, payload, end)
    assert j.open_transactions() == [] and j.set_aside_count() == 0
    j2 = Journal(Store(scratch), Clock(), CONFIG.get, **JOURNAL_KW)
    assert j2.pending_count() == 0 and j2.recover_after_power_loss() == []


def cut_the_power(data, sync_log):
    """What a power cut would leave: every file of the journal as far as it was
    fsynced (the worker noted each fsync's size), a file never fsynced gone.
    Unlinks are kept (an old segment coming back would be ignored anyway)."""
    synced = {}
    with open(sync_log) as f:
        for line in f:
            name, _, size = line.rstrip("\n").rpartition(" ")
            if name and size.isdigit():
                synced[name] = int(size)
    cut = 0
    folder = os.path.join(data, "journal")
    for entry in os.listdir(folder) if os.path.isdir(folder) else ():
        rel = "journal/" + entry
        path = os.path.join(folder, entry)
        if rel not in synced:
            os.unlink(path)
            cut += 1
        elif os.path.getsize(path) > synced[rel]:
            with open(path, "r+b") as f:
                f.truncate(synced[rel])
            cut += 1
    return cut


def test_sigkill_at_random_points_loses_nothing(tmp_path):
    rng = random.Random(SEED)
    data = str(tmp_path / "data")
    scratch = str(tmp_path / "copy")
    log_path = str(tmp_path / "ack.log")
    model = Model(log_path)
    started = time.monotonic()
    kills = 0
    in_compaction = 0
    cuts = 0
    for it in range(ITERATIONS):
        timed = it % 4 == 3
        compacting = it % 4 == 1             # killed at one of a compaction's steps
        kill_at = 0 if timed else rng.randint(1, 5 if compacting else 500)
        args = [sys.executable, WORKER, data, log_path, str(SEED % 1000 * 100 + it), str(kill_at),
                str(rng.randint(0, 1)), str(MAX_OPS), str(int(compacting))]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if timed:
            time.sleep(rng.uniform(0.05, 0.35))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode in (0, -signal.SIGKILL), (proc.returncode, out.decode()[-2000:])
        kills += proc.returncode == -signal.SIGKILL
        model.compacting = False
        model.read()
        in_compaction += model.compacting and proc.returncode == -signal.SIGKILL
        if it % 2 == 0:        # a power cut rather than a kill: unsynced bytes lost
            cuts += cut_the_power(data, log_path + ".sync")
        check_copy(model, data, scratch)
    assert kills >= ITERATIONS // 2, "too few kills (%d): the test tests little" % kills
    assert in_compaction >= 3, "only %d kill(s) during a compaction" % in_compaction
    assert model.compactions >= ITERATIONS, model.compactions
    assert cuts >= 3, "only %d power cut(s) lost unsynced bytes" % cuts
    assert len(model.order) > 200 and len(model.delivered) > 100
    assert time.monotonic() - started < 120
