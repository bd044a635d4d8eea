"""The transaction journal: no transaction is ever lost, none is sent twice.

Memory is the truth, the log its durable copy. The transaction records and the
strictly FIFO queue of messages (StartTransaction, MeterValues, StopTransaction,
and the self-contained messages of queue_message()) are kept in memory; every
change is an *operation* applied to memory and appended to the log, and each
durable event costs ONE fsync: a transaction begun (its record and its
StartTransaction together), a reading or a stop sample persisted, a MeterValues
or another message queued, a stop (the stop and its StopTransaction together),
an answer received (its effect on the record and the removal together).

The log (format: ocpp_core/journal_log.py) is one segment file
`journal/<generation>.log` of CRC-framed records; a record is a list of
operations applied together or not at all:

    R rec                   a transaction record (new)
    P key {field: value}    fields of a record changed
    S key sample cap lm     a stop sample kept (thinned to cap), the newest reading
    Q entry                 a message queued, or its attempts counted
    D [seq...]              messages removed: answered, or dropped
    A [seq...] why          messages set aside (kept for diagnostics)
    X [key...]              finished records forgotten (beyond keep_done)
    snap {...}              the whole live state: the first record of a segment

Compaction writes the live state as the first record of a new segment (fsync
of the file and of its folder), switches to it, then deletes the older ones. A
crash at any step leaves either the old segment (the new one's snapshot is torn
or missing: ignored) or the new one complete (the old one is deleted again).
The log is compacted at open when it needs it (a torn tail, several segments,
a repair, the first journal's files to carry forward) and by maintain() when
the segment has grown past COMPACT_MIN_BYTES and COMPACT_RATIO times its
snapshot.

Opening reads the newest segment that starts with a valid snapshot and replays
its records; a torn last record (a power cut in the middle of an append) is
dropped with one log line, a damaged one in the middle is skipped with one
error line. A data dir of the first journal (tx/, queue/, setaside/ files:
ocpp_core/journal_v1.py) is read once, written as a snapshot, and its files
deleted.

A queue entry holds only what the record does not: the action, the tx key, and
for MeterValues the connector and the sampled values with their *stamps*.
Payloads of transaction messages are BUILT WHEN SENT, from the record: an
offline-started transaction needs no placeholder id, because its MeterValues
and StopTransaction wait behind its StartTransaction and are built after
StartTransaction.conf brought the real transactionId; timestamps come from
clock.resolve_iso(stamp) at send time, so stamps taken before the clock was set
are corrected. A queue_message() entry carries its payload, built by the caller.

A failed write (OSError: ENOSPC, EROFS, EIO, ...) never raises out of the
journal: the change holds in memory, and from then on nothing is appended (the
segment may end with a torn record) until the catch-up, driven by pump() (the
engine's tick; next_due() says when), has written the whole live state to a new
segment: at once when the store is healthy again, else every RETRY_S seconds.
not_durable() counts the changes waiting for it. While the store reports a
problem and nothing is pending, pump() probes the store every RETRY_S
(Store.probe) so that a recovered card is noticed. Only OSError is caught:
anything else is a bug, not the medium.

Crash windows and what the next start-up does about them:

    an answer arrived, its D record not yet durable -> the message is sent
        again (at-least-once; the CSMS has seen it, the journal cannot know).
        Once that one record is durable, the message is never sent again.
    an append torn by a power cut -> that last record is dropped: the call it
        belonged to had not returned, nothing acknowledged is lost
    a compaction interrupted -> the previous segment is still complete
    a record whose Start/Stop delivery is recorded but whose entry is still
        queued (carried forward from the first journal) -> the entry is dropped;
        a record needing a Start/Stop the queue lacks -> it is queued again

record_meter() throttles: a reading is written at most once per
`meter_persist_interval` seconds (default 10 s) unless forced; the first reading
of a transaction is always written, and a stop sample and the stop carry the
newest reading too. After a power cut at most that interval of energy is
missing from the PowerLoss meterStop.

CALLERROR answers: a transaction message and a queue_message() message alike
are attempted TransactionMessageAttempts times, TransactionMessageRetryInterval
x attempts apart, then set aside (kept, logged, never silently dropped);
timeouts and a lost link are not attempts. A StartTransaction set aside takes
its transaction's later messages with it.

What each transaction message contains, and what its answer does beyond the
journal's own bookkeeping, is the message class's (ocpp_core/core/transactions.py
and core/meter_values.py): build(record, entry, resolve) and confirmed(record, conf).

Standard library only, plain class: portable to MicroPython.
"""


from ocpp_core import errors
from ocpp_core import journal_log
from ocpp_core import journal_v1
from ocpp_core.catalogue import ACTIONS
from ocpp_core.core.meter_values import MeterValues
from ocpp_core.core.transactions import StartTransaction, StopTransaction
from ocpp_core.validation import first_violation
from ocpp_core.log import get_logger

log = get_logger("ocpp.journal")

START = "StartTransaction"
METER = "MeterValues"
STOP = "StopTransaction"
_ACTIONS = (START, METER, STOP)

DEFAULTS = {
    "TransactionMessageAttempts": 3,
    "TransactionMessageRetryInterval": 60,
    "StopTransactionMaxMeterValues": 50,
}

_DELIVERED = "delivered"   # _build(): the entry's delivery is already recorded
RETRY_S = 2.0              # s between attempts to catch up / probe a failing store
KEEP_ASIDE = 100           # set-aside messages kept for diagnostics (the count is total)
COMPACT_MIN_BYTES = 128 * 1024
COMPACT_RATIO = 4


def _digits(text):
    return isinstance(text, str) and text != "" and all(c in "0123456789" for c in text)


def _record_ok(rec, key):
    return (isinstance(rec, dict) and rec.get("key") == key
            and type(rec.get("connector_id")) is int and isinstance(rec.get("id_tag"), str)
            and type(rec.get("meter_start")) is int and isinstance(rec.get("start"), dict)
            and isinstance(rec.get("samples", []), list)
            and (rec.get("stop") is None or isinstance(rec.get("stop"), dict)))


def _entry_ok(entry, seq):
    if not isinstance(entry, dict) or entry.get("seq") != seq:
        return False
    action = entry.get("action")
    if not isinstance(action, str) or type(entry.get("attempts")) is not int:
        return False
    key = entry.get("key")
    if key is not None and not isinstance(key, str):
        return False
    if action not in _ACTIONS:      # queue_message(): self-contained
        return key is None and isinstance(entry.get("payload"), dict)
    if action == METER:
        return type(entry.get("connector_id")) is int and isinstance(entry.get("meter_value"), list)
    return key is not None


def _fill_record(rec):
    for flag in ("start_delivered", "stop_delivered", "set_aside"):
        rec.setdefault(flag, False)
    rec.setdefault("samples", [])
    rec.setdefault("transaction_id", None)
    rec.setdefault("last_meter", None)
    return rec


def thin_samples(samples, cap):
    """Keep at most cap samples: when over, drop every second one but keep the
    first and the newest (the time span stays covered, the density halves)."""
    while len(samples) > cap:
        if cap < 2:
            del samples[:len(samples) - cap]
        else:
            kept = samples[0:-1:2] + [samples[-1]]
            samples[:] = kept
    return samples


class Journal:
    def __init__(self, store, clock, config_get, meter_persist_interval=10.0,
                 max_untied=100, keep_done=100, messages=None):
        self.store = store
        self.clock = clock
        self._config_get = config_get
        self.meter_persist_interval = meter_persist_interval
        self.max_untied = max_untied      # MeterValues without a transaction kept queued
        self.keep_done = keep_done        # finished transaction records kept for recent()
        # action -> message class instance (build, confirmed); unbound ones by default
        self.messages = messages or {START: StartTransaction(), METER: MeterValues(),
                                     STOP: StopTransaction()}
        self._tx = {}            # key -> record
        self._queue = []         # [seq, action, key], oldest first
        self._entries = {}       # seq -> queue entry
        self._aside_list = []    # the newest KEEP_ASIDE set-aside entries
        self._aside = 0          # set-aside messages in all
        self._due = {}           # seq -> monotonic time before which it is not sent again
        self._meter_saved = {}   # key -> monotonic time the reading was last written
        self._flight = None      # seq of our message waiting for its answer
        self._next_seq = 1
        self._next_key = 1
        self._segment = None     # the store name of the segment appended to
        self._generation = 0     # the highest segment generation seen or written
        self._seg_bytes = 0
        self._snap_bytes = 0
        self._dirty = False      # memory is ahead of the log: compact before appending
        self._unsynced = 0       # changes not durable (not_durable())
        self._retry_at = None    # monotonic time of the next catch-up or probe
        self._opening = True     # replaying: operations are applied, not written
        self._v1_files = False   # the first journal's files are still there
        self._open()

    # --- configuration ---------------------------------------------------------------
    def _cfg(self, name):
        try:
            value = self._config_get(name)
        except Exception:
            value = None
        if value is None or isinstance(value, bool):
            return DEFAULTS[name]
        try:
            return int(value)
        except (TypeError, ValueError):
            return DEFAULTS[name]

    def _now(self):
        return self.clock.monotonic()

    # --- operations: the one way memory changes ----------------------------------------
    def _apply(self, op):
        kind = op[0]
        if kind == "P":
            rec = self._tx.get(op[1])
            if rec is not None:
                for name in op[2]:
                    rec[name] = op[2][name]
        elif kind == "S":
            rec = self._tx.get(op[1])
            if rec is not None:
                rec["samples"].append(op[2])
                thin_samples(rec["samples"], op[3])
                if op[4] is not None:
                    rec["last_meter"] = op[4]
        elif kind == "Q":
            self._put_entry(op[1])
        elif kind == "D":
            for seq in op[1]:
                self._unindex(seq)
        elif kind == "R":
            rec = _fill_record(op[1])
            self._tx[rec["key"]] = rec
            if _digits(rec["key"]):
                self._next_key = max(self._next_key, int(rec["key"]) + 1)
        elif kind == "A":
            for seq in op[1]:
                entry = self._entries.get(seq)
                if entry is not None:
                    self._aside_list.append(entry)
                self._unindex(seq)
                self._aside += 1
            del self._aside_list[:max(0, len(self._aside_list) - KEEP_ASIDE)]
        elif kind == "X":
            for key in op[1]:
                self._tx.pop(key, None)
                self._meter_saved.pop(key, None)
        elif kind == "snap":
            self._load_snapshot(op[1])
        else:
            raise ValueError("unknown operation %r" % (kind,))

    def _put_entry(self, entry):
        seq = entry["seq"]
        self._next_seq = max(self._next_seq, seq + 1)
        if seq not in self._entries:
            i = len(self._queue)
            while i > 0 and self._queue[i - 1][0] > seq:
                i -= 1
            self._queue.insert(i, [seq, entry["action"], entry.get("key")])
        self._entries[seq] = entry

    def _commit(self, ops):
        """Apply ops to memory, then append them as one record (one fsync).
        True when durable; a failure is held for the catch-up, never raised."""
        for op in ops:
            self._apply(op)
        if self._opening:
            return True
        if self._dirty:
            self._unsynced += 1
            self._arm_retry()
            return False
        data = journal_log.frame(ops)
        try:
            self.store.append(self._segment, data)
        except OSError:           # the Store logged the state change (once)
            self._dirty = True
            self._unsynced += 1
            self._arm_retry()
            return False
        self._seg_bytes += len(data)
        return True

    def _arm_retry(self):
        if self._retry_at is None:
            self._retry_at = self._now() + RETRY_S

    # --- the log -------------------------------------------------------------------------
    def _snapshot(self):
        return {"next_key": self._next_key, "next_seq": self._next_seq,
                "tx": [self._tx[k] for k in sorted(self._tx)],
                "queue": [self._entries[q[0]] for q in self._queue],
                "aside": self._aside_list, "aside_count": self._aside}

    def _load_snapshot(self, snap):
        for rec in snap.get("tx") or ():
            key = rec.get("key") if isinstance(rec, dict) else None
            if _digits(key):             # a key is never reused, not even an unusable one's
                self._next_key = max(self._next_key, int(key) + 1)
            if not _record_ok(rec, key):
                log.error("transaction record %r in the journal is unusable; set aside", key)
                self._aside += 1
                continue
            self._tx[key] = _fill_record(rec)
        for entry in snap.get("queue") or ():
            seq = entry.get("seq") if isinstance(entry, dict) else None
            if type(seq) is not int or not _entry_ok(entry, seq):
                log.error("queued message %r in the journal is unusable; set aside", seq)
                self._aside += 1
                if isinstance(entry, dict):
                    self._aside_list.append(entry)
                continue
            self._put_entry(entry)
        self._aside_list.extend(e for e in snap.get("aside") or () if isinstance(e, dict))
        del self._aside_list[:max(0, len(self._aside_list) - KEEP_ASIDE)]
        self._aside += int(snap.get("aside_count") or 0)
        self._next_key = max(self._next_key, int(snap.get("next_key") or 1))
        self._next_seq = max(self._next_seq, int(snap.get("next_seq") or 1))

    def _compact(self):
        """Write the live state as a new segment, switch to it, delete the others.
        True when done (then everything in memory is durable)."""
        self._generation += 1
        name = journal_log.segment_name(self._generation)
        data = journal_log.frame([["snap", self._snapshot()]])
        try:
            self.store.append(name, data)
        except OSError:
            self._forget(name)       # a partial segment: never appended to again
            return False
        self._segment = name
        self._seg_bytes = self._snap_bytes = len(data)
        for other in self.store.names(journal_log.FOLDER):
            if other != name:
                self._forget(other)
        if self._v1_files:
            for old in journal_v1.files(self.store):
                self._forget(old)
            self._v1_files = bool(journal_v1.files(self.store))
        return True

    def _forget(self, name):
        try:
            self.store.delete(name)
        except OSError:
            self.store.close_file(name)   # deleted by a later compaction

    def _open(self):
        store = self.store
        names = store.names(journal_log.FOLDER)
        gens = []
        for name in names:
            gen = journal_log.generation_of(name)
            if gen is None:
                log.warning("ignored a stray file in the journal: %s", name)
            else:
                gens.append(gen)
        gens.sort()
        self._generation = gens[-1] if gens else 0
        needs_compaction = len(names) != 1
        base = None
        for gen in reversed(gens):
            name = journal_log.segment_name(gen)
            try:
                data = store.read_bytes(name)
            except OSError as e:
                log.error("journal segment %s cannot be read (%s); ignored", name, e)
                continue
            records, skipped, torn = journal_log.read_frames(data or b"")
            first = records[0] if records else None
            if not (first and isinstance(first[0], list) and first[0][0] == "snap"
                    and len(first) == 1 and data.startswith(journal_log.MAGIC)):
                log.warning("journal segment %s does not start with a complete snapshot "
                            "(an interrupted compaction); ignored", name)
                continue
            base = name
            self._replay(name, records)
            if torn:
                log.info("journal %s: a torn last record (%d bytes) dropped", name, torn)
            if skipped:
                log.error("journal %s: %d damaged bytes skipped", name, skipped)
            needs_compaction = needs_compaction or bool(torn or skipped)
            self._segment = name
            self._seg_bytes = len(data)
            self._snap_bytes = journal_log.HEADER + int.from_bytes(data[2:6], "big")
            break
        self._v1_files = bool(journal_v1.files(store))
        if base is None and self._v1_files:
            self._migrate()
        needs_compaction = needs_compaction or base is None or self._v1_files
        repairs = self._drop_delivered() + self._requeue_missing()
        self._opening = False
        if needs_compaction or repairs or self._seg_bytes > self._compact_limit():
            if not self._compact():
                self._dirty = True
                self._unsynced = repairs
                self._arm_retry()

    def _replay(self, name, records):
        bad = 0
        for ops in records:
            for op in ops:
                try:
                    self._apply(op)
                except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                    bad += 1
        if bad:
            log.error("journal %s: %d operation(s) of an unexpected shape skipped", name, bad)

    def _migrate(self):
        old = journal_v1.read(self.store, _record_ok, _entry_ok)
        for key in sorted(old["tx"]):
            self._apply(["R", old["tx"][key]])
        for entry in old["queue"]:
            self._put_entry(entry)
        self._aside_list.extend(old["aside"])
        del self._aside_list[:max(0, len(self._aside_list) - KEEP_ASIDE)]
        self._aside += old["aside_count"]
        self._next_key = max(self._next_key, old["top_key"] + 1)
        self._next_seq = max(self._next_seq, old["top_seq"] + 1)
        log.info("journal: %d transaction record(s) and %d queued message(s) carried forward "
                 "from the tx/ and queue/ files", len(old["tx"]), len(old["queue"]))

    def _compact_limit(self):
        return max(COMPACT_MIN_BYTES, COMPACT_RATIO * self._snap_bytes)

    def _drop_delivered(self):
        """Remove entries whose delivery was recorded in the transaction record
        (a crash of the first journal between "record delivered" and "remove")."""
        n = 0
        for seq, action, key in list(self._queue):
            rec = self._tx.get(key) if key is not None else None
            if rec is None:
                continue
            if (action == START and rec["transaction_id"] is not None) \
                    or (action == STOP and rec["stop_delivered"]):
                log.info("%s of transaction %s was already delivered; removed from the queue",
                         action, key)
                self._drop(seq)
                n += 1
        return n

    def _requeue_missing(self):
        """Queue a StartTransaction/StopTransaction the record needs but the queue
        lacks (a corrupt entry of the first journal, a damaged log record). A
        rebuilt StartTransaction goes just before the transaction's first queued
        message (when that number is free), else at the tail."""
        n = 0
        starts = set(q[2] for q in self._queue if q[1] == START)
        stops = set(q[2] for q in self._queue if q[1] == STOP)
        for key in sorted(self._tx):
            rec = self._tx[key]
            if rec["set_aside"]:
                continue
            if rec["transaction_id"] is None and key not in starts:
                log.warning("StartTransaction of transaction %s was not queued; queued now", key)
                self._enqueue(START, key, seq=self._slot_before(key))
                n += 1
            if rec["stop"] is not None and not rec["stop_delivered"] and key not in stops:
                log.warning("StopTransaction of transaction %s was not queued; queued now", key)
                self._enqueue(STOP, key)
                n += 1
        return n

    def _slot_before(self, key):
        """A free sequence number just before the first queued message of key, or
        None (= the tail)."""
        prev = 0
        aside = set(e.get("seq") for e in self._aside_list)
        for seq, _action, k in self._queue:
            if k == key:
                slot = seq - 1
                if slot > prev and slot not in aside:
                    return slot
                return None
            prev = seq
        return None

    # --- durability ---------------------------------------------------------------------
    def not_durable(self):
        """How many changes wait for the catch-up (0: memory and the log agree)."""
        return self._unsynced

    def catch_up(self, now=None):
        """Write the whole live state to a new segment; True when done."""
        if not self._dirty:
            return True
        if not self._compact():
            self._retry_at = (self._now() if now is None else now) + RETRY_S
            return False
        if self._unsynced:
            log.info("journal caught up: every record and queued message is durable again")
        self._dirty = False
        self._unsynced = 0
        self._retry_at = None
        return True

    def maintain(self, now):
        """Catch up, or probe a failing store, when due; compact a long log
        (called by pump())."""
        problem = getattr(self.store, "problem", None)
        if self._dirty:
            if problem is None or self._retry_at is None or now >= self._retry_at:
                self.catch_up(now)
        elif problem is not None:
            if self._retry_at is None:
                self._retry_at = now + RETRY_S
            elif now >= self._retry_at:
                probe = getattr(self.store, "probe", None)
                self._retry_at = None if (probe is None or probe()) else now + RETRY_S
        else:
            self._retry_at = None
            if self._seg_bytes > self._compact_limit() and not self._compact():
                self._dirty = True
                self._arm_retry()

    # --- transactions -------------------------------------------------------------------
    def begin(self, connector_id, id_tag, meter_start, reservation_id=None, first_sample=None):
        """Record a new transaction and queue its StartTransaction (stamped now),
        in one record. first_sample: the Transaction.Begin entry for
        transactionData, written with it."""
        key = "%08d" % self._next_key
        samples = []
        if first_sample is not None and self._cfg("StopTransactionMaxMeterValues") > 0:
            samples.append({"at": first_sample["at"], "sampledValue": first_sample["sampledValue"]})
        rec = {
            "key": key, "connector_id": connector_id, "id_tag": id_tag,
            "meter_start": int(round(meter_start)), "start": self.clock.stamp(),
            "reservation_id": reservation_id, "transaction_id": None, "id_tag_info": None,
            "last_meter": None, "samples": samples, "stop": None,
            "start_delivered": False, "stop_delivered": False, "set_aside": False,
        }
        self._meter_saved[key] = self._now()
        self._commit([["R", rec], ["Q", self._entry(START, key)]])
        return key

    def record_meter(self, key, wh, force=False):
        """Remember the transaction's latest register reading (Wh) with a stamp.
        Returns True when it was written to the log (see the throttle above)."""
        rec = self._tx.get(key)
        if rec is None or rec["stop"] is not None:
            return False
        last = {"wh": int(round(wh)), "at": self.clock.stamp()}
        rec["last_meter"] = last
        saved = self._meter_saved.get(key)
        if force or saved is None or self._now() - saved >= self.meter_persist_interval:
            self._meter_saved[key] = self._now()
            self._commit([["P", key, {"last_meter": last}]])
            return True
        return False

    def add_stop_sample(self, key, meter_value_entry):
        """Keep {"at": stamp, "sampledValue": [...]} for StopTransaction's
        transactionData (at most StopTransactionMaxMeterValues, thinned)."""
        rec = self._tx.get(key)
        if rec is None or rec["stop"] is not None:
            return False
        cap = self._cfg("StopTransactionMaxMeterValues")
        if cap <= 0:
            return False
        sample = {"at": meter_value_entry["at"], "sampledValue": meter_value_entry["sampledValue"]}
        self._meter_saved[key] = self._now()
        self._commit([["S", key, sample, cap, rec["last_meter"]]])
        return True

    def queue_meter_values(self, key, connector_id, meter_value_entries):
        """Queue a MeterValues message: entries [{"at": stamp, "sampledValue": [...]}].
        key None: not transaction-related; at most max_untied such messages are kept
        (the oldest dropped). Returns the queue sequence number, or None."""
        if not meter_value_entries:
            return None
        if key is not None and key not in self._tx:
            log.warning("MeterValues for unknown transaction %s not queued", key)
            return None
        ops = []
        if key is None:
            untied = [q[0] for q in self._queue
                      if q[1] == METER and q[2] is None and q[0] != self._flight]
            dropped = []
            while untied and len(untied) >= self.max_untied:
                seq = untied.pop(0)
                log.warning("MeterValues %010d (no transaction) dropped: more than %d queued",
                            seq, self.max_untied)
                dropped.append(seq)
            if dropped:
                ops.append(["D", dropped])
        entries = [{"at": e["at"], "sampledValue": e["sampledValue"]} for e in meter_value_entries]
        entry = self._entry(METER, key, connector_id, entries)
        ops.append(["Q", entry])
        self._commit(ops)
        return entry["seq"]

    def queue_message(self, action, payload):
        """Queue a self-contained CP->CS message (payload built now, no transaction;
        e.g. SecurityEventNotification of a critical security event) at the tail
        of the same FIFO queue: durable before it returns (one fsync, or held for
        the catch-up while the store fails), sent by pump() in order, retried and
        set aside like a transaction message, removed once answered. Returns its
        queue sequence number. ValueError: not a CP->CS action of the catalogue,
        a transaction message (they have their own methods), or a payload its
        schema refuses."""
        spec = ACTIONS.get(action) if isinstance(action, str) else None
        if spec is None or spec[1] not in ("cp", "both"):
            raise ValueError("%r is not a message the charge point sends" % (action,))
        if action in _ACTIONS:
            raise ValueError("%s is queued with the journal's transaction methods" % action)
        if not isinstance(payload, dict):
            raise ValueError("the payload of %s must be an object" % action)
        bad = first_violation(spec[2], payload)
        if bad is not None:
            raise ValueError("%s payload invalid: %s" % (action, bad.description()))
        entry = self._entry(action, None)
        entry["payload"] = payload
        self._commit([["Q", entry]])
        return entry["seq"]

    def end(self, key, meter_stop, reason, id_tag=None, last_sample=None):
        """Record the stop and queue StopTransaction (stamped now), in one record.
        Ending an ended transaction does nothing: returns False. True when the
        stop was queued. last_sample: the Transaction.End entry, written with it."""
        return self._end(key, meter_stop, reason, id_tag, self.clock.stamp(), last_sample)

    def _end(self, key, meter_stop, reason, id_tag, at, last_sample=None):
        rec = self._tx.get(key)
        if rec is None:
            log.warning("end of unknown transaction %s ignored", key)
            return False
        if rec["stop"] is not None:
            return False
        ops = []
        cap = self._cfg("StopTransactionMaxMeterValues")
        if last_sample is not None and cap > 0:
            ops.append(["S", key, {"at": last_sample["at"],
                                   "sampledValue": last_sample["sampledValue"]}, cap, None])
        stop = {"meter_stop": int(round(meter_stop)), "at": at, "reason": reason,
                "id_tag": id_tag}
        ops.append(["P", key, {"stop": stop, "last_meter": rec["last_meter"]}])
        ops.append(["Q", self._entry(STOP, key)])
        self._meter_saved[key] = self._now()
        self._commit(ops)
        return True

    def recover_after_power_loss(self):
        """At start-up: end every transaction left open, reason PowerLoss, with the
        last persisted reading and its stamp (or meterStart and the start).
        Returns the keys it ended, oldest first."""
        self._drop_delivered()
        ended = []
        for key in sorted(self._tx):
            rec = self._tx[key]
            if rec["stop"] is not None:
                continue
            last = rec["last_meter"]
            meter, at = (last["wh"], last["at"]) if last else (rec["meter_start"], rec["start"])
            self._end(key, meter, "PowerLoss", None, at)
            log.warning("transaction %s (connector %s) was open at power loss; ended at %d Wh",
                        key, rec["connector_id"], meter)
            ended.append(key)
        return ended

    # --- queries ----------------------------------------------------------------------------
    def get(self, key):
        """The record (do not modify it), or None."""
        return self._tx.get(key)

    def open_transactions(self):
        return [self._tx[k] for k in sorted(self._tx) if self._tx[k]["stop"] is None]

    def transaction_by_id(self, transaction_id):
        for key in sorted(self._tx, reverse=True):
            if self._tx[key]["transaction_id"] == transaction_id:
                return self._tx[key]
        return None

    def recent(self, n):
        """The n newest transaction records, newest first."""
        return [self._tx[k] for k in sorted(self._tx, reverse=True)[:n]]

    def queued(self):
        """The queued entries, oldest first (from memory: diagnostics, tests)."""
        out = []
        for seq, _action, _key in list(self._queue):
            entry = self._load_entry(seq)
            if entry is not None:
                out.append(entry)
        return out

    def set_aside_entries(self):
        """The newest set-aside entries (at most KEEP_ASIDE), oldest first."""
        return list(self._aside_list)

    def head(self):
        """The entry at the head of the queue (the next to send), or None."""
        while self._queue:
            entry = self._load_entry(self._queue[0][0])
            if entry is not None:
                return entry
        return None

    def pending_count(self):
        return len(self._queue)

    def set_aside_count(self):
        return self._aside

    @property
    def in_flight(self):
        return self._flight is not None

    def next_due(self, now_monotonic=None):
        """Seconds until the head message may be sent (0 = now); None when the
        queue is empty or a message is waiting for its answer."""
        now = self._now() if now_monotonic is None else now_monotonic
        retry = None
        if self._retry_at is not None:
            retry = max(0, self._retry_at - now)
        elif getattr(self.store, "problem", None) is not None or self._dirty:
            retry = RETRY_S
        if not self._queue or self._flight is not None:
            return retry
        due = self._due.get(self._queue[0][0])
        head = 0 if due is None else max(0, due - now)
        return head if retry is None else min(head, retry)

    # --- delivery ------------------------------------------------------------------------------
    def pump(self, rpc, now_monotonic, can_send):
        """Send the head message if we may (can_send: registration accepted and
        connected), nothing of ours is waiting for an answer and it is due.
        Returns True when a message was handed to rpc. Also drives the catch-up
        and the compaction (maintain())."""
        self.maintain(now_monotonic)
        if not can_send or self._flight is not None:
            return False
        while self._queue:
            seq, action, key = self._queue[0]
            due = self._due.get(seq)
            if due is not None and now_monotonic < due:
                return False
            entry = self._load_entry(seq)
            if entry is None:
                continue
            try:
                payload, problem = self._build(entry)
            except Exception as e:  # a record or entry of an unexpected shape
                payload, problem = None, "cannot be built (%s: %s)" % (type(e).__name__, e)
            if payload is None:
                if problem == _DELIVERED:
                    self._drop(seq)
                else:
                    self._set_aside(seq, action, key, problem)
                continue
            self._flight = seq
            try:
                rpc.call(action, payload, self._result_handler(seq, action, key),
                         self._error_handler(seq, action, key))
            except ValueError as e:  # the RPC refused the payload: it never will take it
                if self._flight == seq:
                    self._flight = None
                self._set_aside(seq, action, key, "cannot be sent: %s" % e)
                continue
            except Exception:
                if self._flight == seq:
                    self._flight = None  # not stuck "in flight": tried again next time
                raise
            return True
        return False

    def _resolve(self, stamp):
        return self.clock.resolve_iso(stamp)

    def _build(self, entry):
        """(payload, None) or (None, why not): _DELIVERED or a reason to set it aside."""
        action = entry["action"]
        limit = max(1, self._cfg("TransactionMessageAttempts"))
        if action not in _ACTIONS:         # queue_message(): built when queued
            if entry["attempts"] >= limit:
                return None, "%d attempts failed" % entry["attempts"]
            spec = ACTIONS.get(action)
            if spec is None:
                return None, "unknown action"
            bad = first_violation(spec[2], entry["payload"])
            if bad is not None:
                return None, "invalid payload (%s)" % bad.description()
            return entry["payload"], None
        key = entry.get("key")
        rec = None
        if key is not None:
            rec = self._tx.get(key)
            if rec is None:
                return None, "its transaction record is missing"
        if action == START and rec["transaction_id"] is not None:
            return None, _DELIVERED
        if action == STOP and rec["stop_delivered"]:
            return None, _DELIVERED
        if entry["attempts"] >= limit:
            return None, "%d attempts failed" % entry["attempts"]
        if action == START and rec["set_aside"]:
            return None, "its transaction was set aside"
        if action == METER and rec is not None and rec["transaction_id"] is None:
            return None, "its transaction has no transactionId (StartTransaction set aside)"
        if action == STOP:
            if rec["set_aside"] or rec["transaction_id"] is None:
                return None, "its transaction has no transactionId (StartTransaction set aside)"
            if rec["stop"] is None:
                return None, "its transaction has no stop"
        payload = self.messages[action].build(rec, entry, self._resolve)
        spec = ACTIONS[action][2]
        bad = first_violation(spec, payload)
        if bad is not None and "transactionData" in payload:
            log.warning("StopTransaction of transaction %s sent without transactionData (%s)",
                        key, bad.description())
            del payload["transactionData"]
            bad = first_violation(spec, payload)
        if bad is not None:
            return None, "invalid payload (%s)" % bad.description()
        return payload, None

    def _result_handler(self, seq, action, key):
        def on_result(payload):
            self._on_result(seq, action, key, payload)
        return on_result

    def _error_handler(self, seq, action, key):
        def on_error(code, description, details=None):
            self._on_error(seq, action, key, code, description)
        return on_error

    def _on_result(self, seq, action, key, conf):
        if self._flight != seq:
            log.warning("late answer to %s %010d ignored", action, seq)
            return
        self._flight = None
        rec = self._tx.get(key) if key is not None else None
        ops = []
        if action == START and rec is not None:
            ops.append(["P", key, {"transaction_id": conf["transactionId"],
                                   "id_tag_info": conf["idTagInfo"], "start_delivered": True,
                                   "last_meter": rec["last_meter"]}])
            self._meter_saved[key] = self._now()
        elif action == STOP and rec is not None:
            # its stop samples served their one purpose (transactionData)
            ops.append(["P", key, {"stop_delivered": True, "samples": []}])
        ops.append(["D", [seq]])
        if action == STOP and rec is not None:
            forget = self._prunable(seq, key)
            if forget:
                ops.append(["X", forget])
        self._commit(ops)        # the answer's effect and the removal: one record
        if rec is None:
            return
        try:
            self.messages[action].confirmed(rec, conf)
        except Exception:
            log.exception("handling the answer to %s failed", action)

    def _on_error(self, seq, action, key, code, description):
        if self._flight != seq:
            return
        self._flight = None
        if code in (errors.TIMEOUT, errors.DISCONNECTED):
            self._due.pop(seq, None)  # not an attempt: the same message goes again
            return
        entry = self._load_entry(seq)
        if entry is None:
            return
        entry = dict(entry)
        entry["attempts"] += 1
        limit = max(1, self._cfg("TransactionMessageAttempts"))
        if entry["attempts"] >= limit:
            self._set_aside(seq, action, key, "%s after %d attempts (%s)"
                            % (code, entry["attempts"], description), [["Q", entry]])
            return
        self._commit([["Q", entry]])
        delay = self._cfg("TransactionMessageRetryInterval") * entry["attempts"]
        self._due[seq] = self._now() + delay
        log.warning("%s %010d (transaction %s) failed with %s (%s); attempt %d of %d, "
                    "again in %d s", action, seq, key, code, description, entry["attempts"],
                    limit, delay)

    def _prunable(self, seq, key):
        """The oldest finished transactions beyond keep_done, once the answer to
        message seq (the StopTransaction of key) is recorded."""
        busy = set(q[2] for q in self._queue if q[0] != seq)
        done = [k for k in sorted(self._tx)
                if k not in busy and self._tx[k]["stop"] is not None
                and (k == key or self._tx[k]["stop_delivered"] or self._tx[k]["set_aside"])]
        return done[:max(0, len(done) - max(1, self.keep_done))]

    # --- queue helpers ------------------------------------------------------------------
    def _entry(self, action, key, connector_id=None, meter_value=None, seq=None):
        if seq is None:
            seq = self._next_seq
        entry = {"seq": seq, "action": action, "key": key, "attempts": 0}
        if action == METER:
            entry["connector_id"] = connector_id
            entry["meter_value"] = meter_value
        return entry

    def _enqueue(self, action, key, connector_id=None, meter_value=None, seq=None):
        entry = self._entry(action, key, connector_id, meter_value, seq)
        self._commit([["Q", entry]])
        return entry["seq"]

    def _unindex(self, seq):
        for i, q in enumerate(self._queue):
            if q[0] == seq:
                del self._queue[i]
                break
        self._due.pop(seq, None)
        self._entries.pop(seq, None)

    def _drop(self, seq):
        self._commit([["D", [seq]]])

    def _load_entry(self, seq):
        """The queued entry (from memory), or None (then it is gone from the index too)."""
        entry = self._entries.get(seq)
        if entry is None:
            self._unindex(seq)
        return entry

    def _set_aside(self, seq, action, key, reason, ops=None):
        """Give up on a message: kept aside for diagnostics (one log line), in one
        record with ops. A StartTransaction takes its transaction's later messages
        with it: without a transactionId they cannot be sent."""
        ops = list(ops or ())
        later = []
        if action == START and key is not None:
            later = [q[0] for q in self._queue if q[2] == key and q[0] != seq
                     and q[0] != self._flight]
        log.error("%s %010d (transaction %s) set aside: %s%s", action, seq, key, reason,
                  "; with %d later message(s) of it" % len(later) if later else "")
        rec = self._tx.get(key) if key is not None else None
        if rec is not None and action in (START, STOP) and not rec["set_aside"]:
            ops.append(["P", key, {"set_aside": True}])
        ops.append(["A", [seq] + later, reason])
        self._commit(ops)
