"""The transaction journal: no transaction is ever lost, none is sent twice.

Everything lives in the data directory, through a Store (atomic, fsynced,
checksummed files):

    tx/<key>          one record per transaction (key: 8-digit local id,
                      never a placeholder transactionId)
    queue/<seq>       one file per transaction-related message, seq = 10 digits;
                      the queue is strictly FIFO across all transactions
    setaside/<seq>    messages given up on (TransactionMessageAttempts reached,
                      or unsendable); kept for diagnostics
    setaside/tx/<key> a record of a shape this code cannot use

A queue entry holds only what the record does not: the action, the tx key, and
for MeterValues the connector and the sampled values with their *stamps*.
Payloads are BUILT WHEN SENT, from the record: an offline-started transaction
needs no placeholder id, because its MeterValues/StopTransaction wait behind its
StartTransaction and are built after StartTransaction.conf brought the real
transactionId; timestamps come from clock.resolve_iso(stamp) at send time, so
stamps taken before the clock was set are corrected.

Memory is the truth, the files its durable copy. The records and the queue
entries are kept in memory (read from the files once, at open); messages are
built and sent from memory. Every change is written through at once while the
store is healthy, so each API call is durable before it returns. A write that
fails (OSError: ENOSPC, EROFS, EIO, ...) never raises out of the journal: the
change holds in memory, is marked "not yet durable", and is written later by
the catch-up, driven by pump() (the engine's tick; next_due() says when):
at once when the store is healthy again, else every RETRY_S seconds. While
anything is pending, later changes queue behind it, and the catch-up writes in
the order that keeps the crash windows below: records first, then queue
entries (and set-asides), then removals of queue entries, then of records. While
the store reports a problem and nothing is pending, pump() probes the store
every RETRY_S (Store.probe) so that a recovered card is noticed. Only OSError
is caught: anything else is a bug, not the medium.

Crash windows and what the next start-up does about them:

    begin():  record saved, StartTransaction not queued  -> re-queued at open
    end():    stop saved in record, Stop not queued      -> re-queued at open
    Start.conf: transactionId saved, entry not removed   -> entry dropped at open
    Stop.conf:  stop_delivered saved, entry not removed  -> entry dropped at open
    MeterValues.conf: entry not yet removed -> sent again (at-least-once: the
        removal IS the record of its delivery; a crash before it cannot be told
        apart from a crash before the answer came)
    giving up: attempts saved, then the record flag, then the move -> at open or
        at the head the entry is set aside again (attempts >= the limit)
    corrupt record/entry (detected by the Store's checksum): logged once,
        moved aside; a lost Start/Stop entry is rebuilt from the record.

record_meter() throttles: a reading is written at most once per
`meter_persist_interval` seconds (default 10 s) unless forced; the first reading
of a transaction is always written, and every other save of the record (a stop
sample, the stop) carries the newest reading too. After a power cut at most that
interval of energy is missing from the PowerLoss meterStop.

What each message contains, and what its answer does beyond the journal's own
bookkeeping, is the message class's (ocpp_core/core/transactions.py and
core/meter_values.py): build(record, entry, resolve) and confirmed(record, conf).

Standard library only, plain class: portable to MicroPython.
"""


from ocpp_core import errors
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

TX = "tx/"
QUEUE = "queue/"
ASIDE = "setaside/"
ASIDE_TX = "setaside/tx/"

DEFAULTS = {
    "TransactionMessageAttempts": 3,
    "TransactionMessageRetryInterval": 60,
    "StopTransactionMaxMeterValues": 50,
}

_DELIVERED = "delivered"   # _build(): the entry's delivery is already recorded
RETRY_S = 2.0              # s between attempts to catch up / probe a failing store
_SAVE, _DELETE, _ASIDE = "save", "delete", "aside"


def _seq_name(folder, seq):
    return "%s%010d" % (folder, seq)


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
    if "payload" in entry:      # queue_message (stopgap, see there)
        return _self_contained(entry.get("action")) and isinstance(entry["payload"], dict) \
            and entry.get("key") is None and type(entry.get("attempts")) is int
    if entry.get("action") not in _ACTIONS or type(entry.get("attempts")) is not int:
        return False
    key = entry.get("key")
    if key is not None and not isinstance(key, str):
        return False
    if entry["action"] == METER:
        return type(entry.get("connector_id")) is int and isinstance(entry.get("meter_value"), list)
    return key is not None


def _self_contained(action):
    """A CALL the charge point sends that is not a transaction message."""
    spec = ACTIONS.get(action) if isinstance(action, str) else None
    return spec is not None and spec[1] == "cp" and action not in _ACTIONS


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
        self._entries = {}       # seq -> queue entry (the truth; the file is its copy)
        self._pending_tx = {}    # key -> _SAVE/_DELETE not yet durable
        self._pending_q = {}     # seq -> _SAVE/_DELETE/_ASIDE not yet durable
        self._retry_at = None    # monotonic time of the next catch-up or probe
        self._aside_entries = {}  # seq -> entry being set aside (until durable)
        self._due = {}           # seq -> monotonic time before which it is not sent again
        self._meter_saved = {}   # key -> monotonic time the reading was last written
        self._flight = None      # seq of our message waiting for its answer
        self._aside = 0
        self._next_seq = 1
        self._next_key = 1
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

    # --- opening -----------------------------------------------------------------------
    def _open(self):
        store = self.store
        top_key = 0
        for name in store.names(TX):
            key = name[len(TX):]
            if not _digits(key):
                continue
            top_key = max(top_key, int(key))
            rec = store.load(name)
            if rec is None:
                continue  # missing or corrupt: the Store logged it
            if not _record_ok(rec, key):
                log.error("transaction record %s is unusable; moved to %s%s", name, ASIDE_TX, key)
                self._move(name, ASIDE_TX + key)
                continue
            for flag in ("start_delivered", "stop_delivered", "set_aside"):
                rec.setdefault(flag, False)
            rec.setdefault("samples", [])
            rec.setdefault("transaction_id", None)
            rec.setdefault("last_meter", None)
            self._tx[key] = rec
        for name in store.corrupt_names(TX) + store.names(ASIDE_TX):
            head = name.rpartition("/")[2].split(".")[0]
            if _digits(head):
                top_key = max(top_key, int(head))
        top_seq = 0
        for name in store.names(ASIDE):
            tail = name[len(ASIDE):]
            if _digits(tail):
                self._aside += 1
                top_seq = max(top_seq, int(tail))
        for name in store.names(QUEUE):
            tail = name[len(QUEUE):]
            if not _digits(tail):
                log.warning("ignored a stray file in the queue: %s", name)
                continue
            seq = int(tail)
            top_seq = max(top_seq, seq)
            entry = store.load(name)
            if entry is None:
                continue  # missing or corrupt: the Store logged it
            if not _entry_ok(entry, seq):
                log.error("queued message %s is unusable; set aside", name)
                self._move(name, _seq_name(ASIDE, seq))
                self._aside += 1
                continue
            key = entry.get("key")
            if key is not None and _digits(key):
                top_key = max(top_key, int(key))
            self._queue.append([seq, entry["action"], key])
            self._entries[seq] = entry
        self._next_seq = top_seq + 1
        self._next_key = top_key + 1
        self._drop_delivered()
        self._requeue_missing()

    def _drop_delivered(self):
        """Remove entries whose delivery was recorded in the transaction record
        (a crash between "record delivered" and "remove from the queue")."""
        for seq, action, key in list(self._queue):
            rec = self._tx.get(key)
            if rec is None:
                continue
            if (action == START and rec["transaction_id"] is not None) \
                    or (action == STOP and rec["stop_delivered"]):
                log.info("%s of transaction %s was already delivered; removed from the queue",
                         action, key)
                self._drop(seq)

    def _requeue_missing(self):
        """Queue a StartTransaction/StopTransaction the record needs but the queue
        lacks (a crash between saving the record and queuing, or a corrupt entry).
        A rebuilt StartTransaction goes just before the transaction's first queued
        message (the corrupt file's number is free there), else at the tail."""
        starts = set(q[2] for q in self._queue if q[1] == START)
        stops = set(q[2] for q in self._queue if q[1] == STOP)
        for key in sorted(self._tx):
            rec = self._tx[key]
            if rec["set_aside"]:
                continue
            if rec["transaction_id"] is None and key not in starts:
                log.warning("StartTransaction of transaction %s was not queued; queued now", key)
                self._enqueue(START, key, seq=self._slot_before(key))
            if rec["stop"] is not None and not rec["stop_delivered"] and key not in stops:
                log.warning("StopTransaction of transaction %s was not queued; queued now", key)
                self._enqueue(STOP, key)

    def _slot_before(self, key):
        """A free sequence number just before the first queued message of key, or
        None (= the tail)."""
        prev = 0
        for seq, _action, k in self._queue:
            if k == key:
                slot = seq - 1
                if slot > prev and not self.store.exists(_seq_name(ASIDE, slot)):
                    return slot
                return None
            prev = seq
        return None

    # --- files ----------------------------------------------------------------------------
    def _durable(self, table, ident, op):
        """Write one change now, or remember it for the catch-up. True when durable."""
        if not self._pending_tx and not self._pending_q:
            try:
                self._write(table is self._pending_tx, ident, op)
                return True
            except OSError:
                pass      # the Store logged the state change (once)
        if table is self._pending_q and op == _DELETE and table.get(ident) == _SAVE \
                and not self.store.exists(_seq_name(QUEUE, ident)):
            del table[ident]          # never written: nothing to remove
        else:
            table[ident] = op
        if self._retry_at is None:
            self._retry_at = self._now() + RETRY_S
        return False

    def _write(self, is_tx, ident, op):
        store = self.store
        if is_tx:
            if op == _SAVE:
                store.save(TX + ident, self._tx[ident])
            else:
                store.delete(TX + ident)
            return
        name = _seq_name(QUEUE, ident)
        if op == _SAVE:
            store.save(name, self._entries[ident])
        elif op == _DELETE:
            store.delete(name)
        else:   # _ASIDE: (seq) moved to setaside/; its entry is in _aside_entries
            entry = self._aside_entries.get(ident)
            if store.exists(name):
                if entry is not None:
                    store.save(name, entry)       # the latest attempts count
                store.move(name, _seq_name(ASIDE, ident))
            elif entry is not None:
                store.save(_seq_name(ASIDE, ident), entry)
            self._aside_entries.pop(ident, None)

    def not_durable(self):
        """How many changes wait for the catch-up (0: memory and files agree)."""
        return len(self._pending_tx) + len(self._pending_q)

    def catch_up(self, now=None):
        """Write what is not yet durable, in crash-safe order; True when done."""
        if not self._pending_tx and not self._pending_q:
            return True
        steps = [(True, k, _SAVE) for k in sorted(self._pending_tx)
                 if self._pending_tx[k] == _SAVE]
        steps += [(False, q, self._pending_q[q]) for q in sorted(self._pending_q)
                  if self._pending_q[q] != _DELETE]
        steps += [(False, q, _DELETE) for q in sorted(self._pending_q)
                  if self._pending_q[q] == _DELETE]
        steps += [(True, k, _DELETE) for k in sorted(self._pending_tx)
                  if self._pending_tx[k] == _DELETE]
        for is_tx, ident, op in steps:
            table = self._pending_tx if is_tx else self._pending_q
            try:
                self._write(is_tx, ident, op)
            except OSError:
                self._retry_at = (self._now() if now is None else now) + RETRY_S
                return False
            if table.get(ident) == op:
                del table[ident]
        log.info("journal caught up: every record and queued message is durable again")
        self._retry_at = None
        return True

    def maintain(self, now):
        """Catch up, or probe a failing store, when due (called by pump())."""
        problem = getattr(self.store, "problem", None)
        if self._pending_tx or self._pending_q:
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

    def _save_tx(self, rec):
        self._tx.setdefault(rec["key"], rec)
        self._meter_saved[rec["key"]] = self._now()
        return self._durable(self._pending_tx, rec["key"], _SAVE)

    def _enqueue(self, action, key, connector_id=None, meter_value=None, seq=None,
                 payload=None):
        if seq is None:
            seq = self._next_seq
            self._next_seq += 1
        entry = {"seq": seq, "action": action, "key": key, "attempts": 0}
        if payload is not None:
            entry["payload"] = payload
        if action == METER:
            entry["connector_id"] = connector_id
            entry["meter_value"] = meter_value
        self._entries[seq] = entry
        self._durable(self._pending_q, seq, _SAVE)
        i = len(self._queue)
        while i > 0 and self._queue[i - 1][0] > seq:
            i -= 1
        self._queue.insert(i, [seq, action, key])
        return seq

    def _unindex(self, seq):
        for i, q in enumerate(self._queue):
            if q[0] == seq:
                del self._queue[i]
                break
        self._due.pop(seq, None)
        self._entries.pop(seq, None)

    def _drop(self, seq):
        self._durable(self._pending_q, seq, _DELETE)
        self._unindex(seq)

    def _move(self, name, new_name):
        try:
            self.store.move(name, new_name)
        except OSError as e:
            log.error("cannot move %s to %s: %s", name, new_name, e)

    def _load_entry(self, seq):
        """The queued entry (from memory), or None (then it is gone from the index too)."""
        entry = self._entries.get(seq)
        if entry is None:
            self._unindex(seq)
        return entry

    def _set_aside(self, seq, action, key, reason):
        """Give up on a message: moved to setaside/ (one log line). A StartTransaction
        takes its transaction's later messages with it: without a transactionId
        they cannot be sent."""
        later = []
        if action == START and key is not None:
            later = [q[0] for q in self._queue if q[2] == key and q[0] != seq
                     and q[0] != self._flight]
        log.error("%s %010d (transaction %s) set aside: %s%s", action, seq, key, reason,
                  "; with %d later message(s) of it" % len(later) if later else "")
        rec = self._tx.get(key) if key is not None else None
        if rec is not None and action in (START, STOP) and not rec["set_aside"]:
            rec["set_aside"] = True
            self._save_tx(rec)
        for s in [seq] + later:
            entry = self._entries.get(s)
            if entry is not None:
                self._aside_entries[s] = entry
            if self._pending_q.get(s) == _SAVE:
                del self._pending_q[s]    # never written: set aside from memory
            self._durable(self._pending_q, s, _ASIDE)
            self._unindex(s)
            self._aside += 1

    # --- transactions -------------------------------------------------------------------
    def begin(self, connector_id, id_tag, meter_start, reservation_id=None, first_sample=None):
        """Record a new transaction and queue its StartTransaction (stamped now).
        first_sample: the Transaction.Begin entry for transactionData, written
        with the record (one write instead of two before the Start can leave)."""
        key = "%08d" % self._next_key
        self._next_key += 1
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
        self._save_tx(rec)
        self._tx[key] = rec
        self._enqueue(START, key)
        return key

    def record_meter(self, key, wh, force=False):
        """Remember the transaction's latest register reading (Wh) with a stamp.
        Returns True when it was written to disk (see the throttle above)."""
        rec = self._tx.get(key)
        if rec is None or rec["stop"] is not None:
            return False
        rec["last_meter"] = {"wh": int(round(wh)), "at": self.clock.stamp()}
        last = self._meter_saved.get(key)
        if force or last is None or self._now() - last >= self.meter_persist_interval:
            self._save_tx(rec)
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
        rec["samples"].append({"at": meter_value_entry["at"],
                               "sampledValue": meter_value_entry["sampledValue"]})
        thin_samples(rec["samples"], cap)
        self._save_tx(rec)
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
        if key is None:
            untied = [q[0] for q in self._queue
                      if q[1] == METER and q[2] is None and q[0] != self._flight]
            while untied and len(untied) >= self.max_untied:
                seq = untied.pop(0)
                log.warning("MeterValues %010d (no transaction) dropped: more than %d queued",
                            seq, self.max_untied)
                self._drop(seq)
        entries = [{"at": e["at"], "sampledValue": e["sampledValue"]} for e in meter_value_entries]
        return self._enqueue(METER, key, connector_id, entries)

    def end(self, key, meter_stop, reason, id_tag=None, last_sample=None):
        """Record the stop and queue StopTransaction (stamped now). Ending an ended
        transaction does nothing: returns False. True when the stop was queued.
        last_sample: the Transaction.End entry, written with the stop."""
        return self._end(key, meter_stop, reason, id_tag, self.clock.stamp(), last_sample)

    def _end(self, key, meter_stop, reason, id_tag, at, last_sample=None):
        rec = self._tx.get(key)
        if rec is None:
            log.warning("end of unknown transaction %s ignored", key)
            return False
        if rec["stop"] is not None:
            return False
        cap = self._cfg("StopTransactionMaxMeterValues")
        if last_sample is not None and cap > 0:
            rec["samples"].append({"at": last_sample["at"],
                                   "sampledValue": last_sample["sampledValue"]})
            thin_samples(rec["samples"], cap)
        rec["stop"] = {"meter_stop": int(round(meter_stop)), "at": at, "reason": reason,
                       "id_tag": id_tag}
        self._save_tx(rec)
        self._enqueue(STOP, key)
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

    # --- self-contained messages ------------------------------------------------------------
    # STOPGAP (branch wt-secevents): the journal redesign brings its own
    # queue_message(action, payload) with the same contract; this one is replaced
    # by it at merge. Nothing outside the journal relies on how it is stored.
    def queue_message(self, action, payload):
        """Queue a self-contained CP->CS message (e.g. a critical
        SecurityEventNotification) in the same FIFO as the transaction messages:
        durable before it returns (or caught up like any entry when the store
        fails), sent in order once the registration is Accepted, removed after its
        CALLRESULT; retried and set aside like a transaction message. Returns the
        queue sequence number."""
        if not _self_contained(action):
            raise ValueError("%s is not a self-contained charge point message" % action)
        bad = first_violation(ACTIONS[action][2], payload)
        if bad is not None:
            raise ValueError("invalid %s: %s" % (action, bad.description()))
        return self._enqueue(action, None, payload=dict(payload))

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
        elif getattr(self.store, "problem", None) is not None or self.not_durable():
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
        of what is not yet durable (maintain())."""
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
        if "payload" in entry:      # queue_message: sent as it was queued
            limit = max(1, self._cfg("TransactionMessageAttempts"))
            if entry["attempts"] >= limit:
                return None, "%d attempts failed" % entry["attempts"]
            bad = first_violation(ACTIONS[action][2], entry["payload"])
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
        limit = max(1, self._cfg("TransactionMessageAttempts"))
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
        if action == START and rec is not None:
            rec["transaction_id"] = conf["transactionId"]
            rec["id_tag_info"] = conf["idTagInfo"]
            rec["start_delivered"] = True
            self._save_tx(rec)          # durable first: then the entry may go
        elif action == STOP and rec is not None:
            rec["stop_delivered"] = True
            self._save_tx(rec)
        self._drop(seq)
        if rec is None:
            return
        if action == STOP:
            self._prune()
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
        if "payload" in entry and code in (errors.NOT_IMPLEMENTED, errors.NOT_SUPPORTED):
            # queue_message (stopgap): a CSMS without the message will never take it;
            # retrying would hold the transaction messages behind it for minutes.
            self._set_aside(seq, action, key, "%s (%s)" % (code, description))
            return
        entry["attempts"] += 1
        limit = max(1, self._cfg("TransactionMessageAttempts"))
        self._durable(self._pending_q, seq, _SAVE)
        if entry["attempts"] >= limit:
            self._set_aside(seq, action, key, "%s after %d attempts (%s)"
                            % (code, entry["attempts"], description))
            return
        delay = self._cfg("TransactionMessageRetryInterval") * entry["attempts"]
        self._due[seq] = self._now() + delay
        log.warning("%s %010d (transaction %s) failed with %s (%s); attempt %d of %d, "
                    "again in %d s", action, seq, key, code, description, entry["attempts"],
                    limit, delay)

    def _prune(self):
        """Forget the oldest finished transactions beyond keep_done."""
        busy = set(q[2] for q in self._queue)
        done = [k for k in sorted(self._tx)
                if k not in busy and self._tx[k]["stop"] is not None
                and (self._tx[k]["stop_delivered"] or self._tx[k]["set_aside"])]
        for key in done[:max(0, len(done) - max(1, self.keep_done))]:
            self._durable(self._pending_tx, key, _DELETE)
            del self._tx[key]
            self._meter_saved.pop(key, None)
