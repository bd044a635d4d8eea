"""Worker for tests/test_journal_crash.py: runs random transactions against a
journal until it is killed (or has done its operations).

    python tests/support/journal_crash_worker.py DATA_DIR ACK_LOG SEED KILL_AT KILL_AFTER \
        MAX_OPS [IN_COMPACTION]

Next to the journal it keeps an independent, append-only, fsynced log of what it
has been told is durable (one line per acknowledged operation):

    O seed              started
    P key wh            recover_after_power_loss() ended key at wh
    B key meter_start   begin() returned key
    r key wh            about to record_meter(key, wh)
    R key wh            record_meter() said the reading is on disk
    M key|- id          queue_meter_values() returned (id: the sampled value)
    G id                queue_message(SecurityEventNotification) returned (id: techInfo)
    E key wh            end(key, wh, "Local") returned
    Y ident             about to hand the CALLRESULT of ident to the journal
    D ident             the journal has processed that CALLRESULT
    K / k               a compaction begins / ended (a kill between: during compaction)
    ERR text            a payload was wrong (the worker exits with status 3)

ident: "S:<key>" StartTransaction, "T:<key>" StopTransaction, "M:<id>" MeterValues,
"G:<id>" a queue_message() message.

KILL_AT > 0: the worker SIGKILLs itself at the KILL_AT-th file-system step of the
journal: os.fsync/os.rename/os.unlink (before the call if KILL_AFTER is 0, after
it if 1) or the write of an append (KILL_AFTER 0: only a part of the bytes is
written, as a power cut tears a write; 1: after all of them), so every crash
window between two file-system steps gets hit, torn records included. The
journal compacts its log often here (COMPACT_MIN_BYTES is small), so many kills
land in a compaction; with IN_COMPACTION 1 the steps are counted from the
start of the first compaction after the start-up, so the kill is inside one.
"""

import os
import random
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ocpp_core import errors  # noqa: E402
from ocpp_core.catalogue import ACTIONS  # noqa: E402
from ocpp_core import journal as journal_mod  # noqa: E402
from ocpp_core.clock import Clock  # noqa: E402
from ocpp_core.journal import Journal  # noqa: E402
from ocpp_core.store import Store  # noqa: E402
from ocpp_core.validation import first_violation  # noqa: E402

CONFIG = {"TransactionMessageAttempts": 1000000, "TransactionMessageRetryInterval": 0,
          "StopTransactionMaxMeterValues": 4}
JOURNAL_KW = {"meter_persist_interval": 0.002, "max_untied": 1000000, "keep_done": 5}
MAX_PENDING = 60
COMPACT_MIN_BYTES = 3000
COMPACT_RATIO = 1.2
STATE = {"n": 0, "armed": True}   # file-system steps counted; counting on

_real_fsync = os.fsync


def ident(entry):
    if "payload" in entry:
        return "G:" + entry["payload"]["techInfo"]
    if entry["action"] == "MeterValues":
        return "M:" + entry["meter_value"][0]["sampledValue"][0]["value"]
    return ("S:" if entry["action"] == "StartTransaction" else "T:") + entry["key"]


def txid_of(key):
    """The transactionId the fake CSMS gives a transaction (checkable later)."""
    return int(key) * 10 + 7


def check_payload(entry, action, payload):
    """A description of what is wrong with the payload built for entry, or None."""
    if action != entry["action"]:
        return "sent %s for %s" % (action, ident(entry))
    bad = first_violation(ACTIONS[action][2], payload)
    if bad is not None:
        return "%s invalid: %s" % (ident(entry), bad.description())
    if "payload" in entry:
        return None if payload == entry["payload"] else "%s carries another payload" % ident(entry)
    key = entry.get("key")
    if action == "MeterValues":
        want = txid_of(key) if key is not None else None
        if payload.get("transactionId") != want:
            return "%s transactionId %r, expected %r" % (ident(entry), payload.get("transactionId"),
                                                         want)
        if payload["meterValue"][0]["sampledValue"][0]["value"] != ident(entry)[2:]:
            return "%s carries other values" % ident(entry)
    elif action == "StopTransaction":
        if payload["transactionId"] != txid_of(key):
            return "%s transactionId %r" % (ident(entry), payload["transactionId"])
        if "transactionData" in payload and not payload["transactionData"]:
            return "%s has an empty transactionData" % ident(entry)
    elif "transactionId" in payload:
        return "StartTransaction with a transactionId"
    return None


def conf_for(entry):
    if entry["action"] == "StartTransaction":
        return {"transactionId": txid_of(entry["key"]), "idTagInfo": {"status": "Accepted"}}
    return {}


class Recorder:
    def __init__(self):
        self.calls = []

    def call(self, action, payload, on_result=None, on_error=None):
        self.calls.append((action, payload, on_result, on_error))


class AckLog:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, line):
        os.write(self.fd, (line + "\n").encode())
        _real_fsync(self.fd)


def record_syncs(data_dir, sync_path):
    """Note "<file> <size>" at every fsync of a file under data_dir (in
    SYNC_LOG = ACK_LOG + ".sync", no fsync needed: SIGKILL keeps the page cache),
    so that the test can cut the power: every file back to what was fsynced."""
    fd_out = os.open(sync_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    root = os.path.realpath(data_dir) + "/"
    real = os.fsync

    def fsync(fd):
        result = real(fd)
        try:
            path = os.readlink("/proc/self/fd/%d" % fd)
            st = os.fstat(fd)
        except OSError:
            return result
        if path.startswith(root) and (st.st_mode & 0o170000) == 0o100000:
            os.write(fd_out, ("%s %d\n" % (path[len(root):], st.st_size)).encode())
        return result
    os.fsync = fsync


def install_kill(kill_at, kill_after, rng):
    state = STATE

    def wrap(fn):
        def wrapper(*args, **kw):
            if not state["armed"]:
                return fn(*args, **kw)
            state["n"] += 1
            if state["n"] == kill_at and not kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            result = fn(*args, **kw)
            if state["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapper

    os.fsync = wrap(os.fsync)
    os.rename = wrap(os.rename)
    os.unlink = wrap(os.unlink)
    real_put = Store._put

    def put(store, f, data):
        if not state["armed"]:
            return real_put(store, f, data)
        state["n"] += 1
        if state["n"] == kill_at and not kill_after and len(data) > 1:
            f.write(data[:rng.randint(1, len(data) - 1)])   # a torn write
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        real_put(store, f, data)
        if state["n"] == kill_at:
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    Store._put = put


def trace_compaction(ack):
    real = Journal._compact

    def compact(self):
        if getattr(self, "booted", False):
            STATE["armed"] = True
        ack("K")
        done = real(self)
        ack("k")
        return done
    Journal._compact = compact


def run(data_dir, log_path, seed, kill_at, kill_after, max_ops, in_compaction=0):
    rng = random.Random(seed)
    ack = AckLog(log_path)
    ack("O %d" % seed)
    journal_mod.COMPACT_MIN_BYTES = COMPACT_MIN_BYTES
    journal_mod.COMPACT_RATIO = COMPACT_RATIO
    trace_compaction(ack)
    STATE["armed"] = not in_compaction
    record_syncs(data_dir, log_path + ".sync")
    if kill_at > 0:
        install_kill(kill_at, kill_after, random.Random(seed + 1))
    clock = Clock()
    journal = Journal(Store(data_dir), clock, CONFIG.get, **JOURNAL_KW)
    journal.booted = True
    for key in journal.recover_after_power_loss():
        ack("P %s %d" % (key, journal.get(key)["stop"]["meter_stop"]))
    open_tx = {}          # key -> [connector, wh]
    mid = seed * 100000
    for _ in range(max_ops):
        r = rng.random()
        keys = sorted(open_tx)
        if r < 0.10:
            used = [v[0] for v in open_tx.values()]
            free = [c for c in (1, 2) if c not in used]
            if free and journal.pending_count() < MAX_PENDING:
                conn = rng.choice(free)
                start = rng.randint(0, 1000000)
                key = journal.begin(conn, "TAG%d" % conn, start)
                open_tx[key] = [conn, start]
                ack("B %s %d" % (key, start))
        elif r < 0.30 and keys:
            key = rng.choice(keys)
            open_tx[key][1] += rng.randint(1, 50)
            wh = open_tx[key][1]
            ack("r %s %d" % (key, wh))
            if journal.record_meter(key, wh, force=rng.random() < 0.2):
                ack("R %s %d" % (key, wh))
        elif r < 0.38 and keys:
            key = rng.choice(keys)
            journal.add_stop_sample(key, {"at": clock.stamp(), "sampledValue": [
                {"value": str(open_tx[key][1]), "context": "Sample.Periodic"}]})
        elif r < 0.52 and journal.pending_count() < MAX_PENDING:
            key = rng.choice(keys + [None])
            mid += 1
            conn = open_tx[key][0] if key else 0
            journal.queue_meter_values(key, conn, [
                {"at": clock.stamp(), "sampledValue": [{"value": str(mid), "unit": "Wh"}]}])
            ack("M %s %d" % (key or "-", mid))
        elif r < 0.56 and journal.pending_count() < MAX_PENDING:
            mid += 1
            journal.queue_message("SecurityEventNotification", {
                "type": "SettingSystemTime", "timestamp": "2024-06-01T10:00:00Z",
                "techInfo": str(mid)})
            ack("G %d" % mid)
        elif r < 0.62 and keys:
            key = rng.choice(keys)
            wh = open_tx.pop(key)[1]
            journal.end(key, wh, "Local")
            ack("E %s %d" % (key, wh))
        else:
            head = journal.head()
            if head is None:
                continue
            rpc = Recorder()
            if not journal.pump(rpc, clock.monotonic(), True):
                ack("ERR head %s not sent" % ident(head))
                return 3
            action, payload, on_result, on_error = rpc.calls[0]
            problem = check_payload(head, action, payload)
            if problem:
                ack("ERR " + problem)
                return 3
            x = rng.random()
            if x < 0.75:
                ack("Y " + ident(head))
                on_result(conf_for(head))
                ack("D " + ident(head))
            elif x < 0.9:
                on_error(errors.INTERNAL_ERROR, "test", {})
            else:
                on_error(rng.choice([errors.TIMEOUT, errors.DISCONNECTED]), "test", {})
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    sys.exit(run(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]),
                 int(a[6]) if len(a) > 6 else 0))
