"""ocpp_core.journal: the transaction journal, in process, with a fake RPC and a
hand-moved clock. Every payload the journal sends is checked against ocpp_core's
validator and against the official OCPP 1.6 JSON schemas (jsonschema)."""

import json
import logging
import os

import pytest
from jsonschema import Draft4Validator, FormatChecker

from ocpp_core import errors, framing
from ocpp_core.catalogue import ACTIONS
from ocpp_core.clock import Clock
from ocpp_core.journal import Journal, thin_samples
from ocpp_core.rpc import CHARGE_POINT, RpcEndpoint
from ocpp_core.store import Store
from ocpp_core.timestamps import format_utc
from ocpp_core.validation import first_violation
from tools.gen_catalogue import default_schema_dir

T_WALL = 1717236000.0   # 2024-06-01T10:00:00Z
ACCEPTED = {"status": "Accepted"}
SECURITY_EVENT = {"type": "FirmwareUpdated", "timestamp": "2024-06-01T10:00:00Z"}

# --- official schemas ------------------------------------------------------------------

_SCHEMAS = {}


def official_errors(action, payload):
    if action not in _SCHEMAS:
        with open(os.path.join(default_schema_dir(), action + ".json"), encoding="utf-8") as f:
            _SCHEMAS[action] = Draft4Validator(json.load(f), format_checker=FormatChecker())
    return [e.message for e in _SCHEMAS[action].iter_errors(payload)]


# --- fakes -------------------------------------------------------------------------------

class Time:
    def __init__(self, wall=T_WALL, mono=500.0):
        self.wall = wall
        self.mono = mono

    def advance(self, seconds):
        self.wall += seconds
        self.mono += seconds


class Sent:
    def __init__(self, action, payload, on_result, on_error):
        self.action = action
        self.payload = payload
        self.on_result = on_result
        self.on_error = on_error


class FakeRpc:
    """Records calls; every payload must pass both validators."""

    def __init__(self):
        self.calls = []

    def call(self, action, payload, on_result=None, on_error=None):
        bad = first_violation(ACTIONS[action][2], payload)
        assert bad is None, "%s invalid for ocpp_core: %s" % (action, bad.description())
        ref = official_errors(action, payload)
        assert not ref, "%s invalid for the official schema: %s" % (action, ref)
        json.dumps(payload)
        self.calls.append(Sent(action, payload, on_result, on_error))

    @property
    def last(self):
        return self.calls[-1]


class Env:
    def __init__(self, path, config=None, **kw):
        self.path = str(path)
        self.time = Time()
        self.config = {"TransactionMessageAttempts": 3, "TransactionMessageRetryInterval": 10,
                       "StopTransactionMaxMeterValues": 5}
        self.config.update(config or {})
        self.clock = Clock(wall=lambda: self.time.wall, monotonic=lambda: self.time.mono,
                           boot_id="boot-1")
        self.rpc = FakeRpc()
        self.kw = kw
        self.j = self.reopen()
        self.next_tid = 100

    def reopen(self):
        self.store = Store(self.path)
        self.j = Journal(self.store, self.clock, self.config.get, **self.kw)
        return self.j

    def pump(self, can_send=True):
        return self.j.pump(self.rpc, self.time.mono, can_send)

    def answer(self, conf=None):
        """Pump, and answer the call sent with a CALLRESULT. Returns the Sent."""
        n = len(self.rpc.calls)
        assert self.pump() is True
        assert len(self.rpc.calls) == n + 1
        c = self.rpc.last
        if conf is None:
            if c.action == "StartTransaction":
                self.next_tid += 1
                conf = {"transactionId": self.next_tid, "idTagInfo": ACCEPTED}
            else:
                conf = {}
        c.on_result(conf)
        return c

    def fail(self, code=errors.INTERNAL_ERROR):
        assert self.pump() is True
        c = self.rpc.last
        c.on_error(code, "it failed", {})
        return c

    def drain(self, limit=100):
        out = []
        while self.j.pending_count() and limit:
            out.append(self.answer())
            limit -= 1
        return out


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path / "data")


def sample(env, wh, context="Sample.Periodic", **extra):
    sv = dict({"value": str(wh), "context": context, "measurand": "Energy.Active.Import.Register",
               "unit": "Wh"}, **extra)
    return {"at": env.clock.stamp(), "sampledValue": [sv]}


def iso(epoch):
    return format_utc(epoch)


def actions(calls):
    return [c.action for c in calls]


# --- a transaction online ------------------------------------------------------------------------

def test_online_transaction_payloads(env):
    j = env.j
    key = j.begin(1, "TAG-1", 1000.4, reservation_id=7)
    start_at = env.time.wall
    c = env.answer({"transactionId": 42, "idTagInfo": ACCEPTED})
    assert c.action == "StartTransaction"
    assert c.payload == {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000,
                         "reservationId": 7, "timestamp": iso(start_at)}
    rec = j.get(key)
    assert rec["transaction_id"] == 42 and rec["start_delivered"] and rec["id_tag_info"] == ACCEPTED

    env.time.advance(60)
    mv = sample(env, 1500)
    j.add_stop_sample(key, mv)
    j.record_meter(key, 1500)
    j.queue_meter_values(key, 1, [mv])
    c = env.answer()
    assert c.payload == {"connectorId": 1, "transactionId": 42,
                         "meterValue": [{"timestamp": iso(env.time.wall),
                                         "sampledValue": mv["sampledValue"]}]}
    env.time.advance(60)
    assert j.end(key, 2000, "Local", id_tag="TAG-1") is True
    c = env.answer({"idTagInfo": ACCEPTED})
    assert c.action == "StopTransaction"
    assert c.payload == {"transactionId": 42, "meterStop": 2000, "timestamp": iso(env.time.wall),
                         "reason": "Local", "idTag": "TAG-1",
                         "transactionData": [{"timestamp": iso(env.time.wall - 60),
                                              "sampledValue": mv["sampledValue"]}]}
    assert j.get(key)["stop_delivered"]
    assert j.pending_count() == 0 and j.next_due() is None
    assert j.open_transactions() == []


def test_works_with_the_real_rpc_endpoint(env):
    sent = []
    ep = RpcEndpoint(CHARGE_POINT, sent.append, clock=lambda: env.time.mono)
    ep.connection_up()
    key = env.j.begin(1, "TAG", 0)
    env.j.queue_meter_values(key, 1, [sample(env, 10)])
    env.j.end(key, 20, "EVDisconnected")
    got = []
    while env.j.pending_count():
        assert env.j.pump(ep, env.time.mono, ep.connected)
        assert env.j.in_flight and not env.j.pump(ep, env.time.mono, True)
        frame = json.loads(sent[-1])
        got.append(frame)
        conf = {}
        if frame[2] == "StartTransaction":
            conf = {"transactionId": 9, "idTagInfo": ACCEPTED}
        ep.receive(framing.encode_result(frame[1], conf))
        assert not env.j.in_flight
    assert [f[2] for f in got] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert got[1][3]["transactionId"] == 9 and got[2][3]["transactionId"] == 9


# --- offline start: no placeholder id, strict order ---------------------------------------

def test_offline_transaction_then_online_in_order(env):
    j = env.j
    key = j.begin(1, "OFFLINE", 500)
    untied = j.queue_meter_values(None, 0, [sample(env, 1)])
    for i in range(3):  # clock-aligned / periodic samples while offline
        env.time.advance(900)
        j.queue_meter_values(key, 1, [sample(env, 500 + 100 * (i + 1), "Sample.Clock")])
    env.time.advance(30)
    j.end(key, 900, "Local")
    assert untied is not None
    assert env.pump(can_send=False) is False and env.rpc.calls == []
    assert j.pending_count() == 6 and j.next_due() == 0

    calls = env.drain()
    assert actions(calls) == ["StartTransaction", "MeterValues", "MeterValues", "MeterValues",
                              "MeterValues", "StopTransaction"]
    tid = j.get(key)["transaction_id"]
    assert "transactionId" not in calls[0].payload
    assert "transactionId" not in calls[1].payload          # the untied one
    stamps = []
    for c in calls[2:5]:
        assert c.payload["transactionId"] == tid
        stamps.append(c.payload["meterValue"][0]["timestamp"])
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert calls[5].payload["transactionId"] == tid
    assert calls[5].payload["meterStop"] == 900


def test_fifo_across_transactions(env):
    j = env.j
    a = j.begin(1, "A", 0)
    b = j.begin(2, "B", 0)
    j.queue_meter_values(a, 1, [sample(env, 1)])
    j.end(b, 5, "Local")
    j.queue_meter_values(a, 1, [sample(env, 2)])
    j.end(a, 9, "Local")
    calls = env.drain()
    tid = {a: j.get(a)["transaction_id"], b: j.get(b)["transaction_id"]}
    seen = [(c.action, c.payload.get("transactionId"), c.payload.get("connectorId")) for c in calls]
    assert seen == [("StartTransaction", None, 1), ("StartTransaction", None, 2),
                    ("MeterValues", tid[a], 1), ("StopTransaction", tid[b], None),
                    ("MeterValues", tid[a], 1), ("StopTransaction", tid[a], None)]


# --- retries -------------------------------------------------------------------------------------

def test_retry_interval_times_attempts_then_set_aside(env, caplog):
    j = env.j
    key = j.begin(1, "TAG", 0)
    j.queue_meter_values(key, 1, [sample(env, 1)])
    j.end(key, 10, "Local")
    other = j.queue_meter_values(None, 0, [sample(env, 2)])
    env.fail()
    assert j.queued()[0]["attempts"] == 1
    assert j.next_due() == 10
    env.time.advance(9.9)
    assert env.pump() is False
    env.time.advance(0.1)
    env.fail()
    assert j.next_due() == 20  # interval * attempts
    env.time.advance(19)
    assert env.pump() is False
    env.time.advance(1)
    with caplog.at_level(logging.WARNING, logger="ocpp.journal"):
        env.fail()
    assert len(env.rpc.calls) == 3 and actions(env.rpc.calls) == ["StartTransaction"] * 3
    # StartTransaction given up: its later messages cannot be sent either
    assert j.set_aside_count() == 3
    assert j.get(key)["set_aside"]
    assert [e["seq"] for e in j.set_aside_entries()] == [1, 2, 3]
    assert env.reopen().set_aside_count() == 3 and env.j.get(key)["set_aside"]
    j = env.j
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert msgs == ["StartTransaction 0000000001 (transaction %s) set aside: InternalError after "
                    "3 attempts (it failed); with 2 later message(s) of it" % key]
    # the queue goes on with the next message at once
    assert j.pending_count() == 1 and j.next_due() == 0
    c = env.answer()
    assert c.action == "MeterValues" and "transactionId" not in c.payload
    assert j.queued() == [] and other is not None


def test_meter_values_retry_and_set_aside_alone(env):
    env.config["TransactionMessageAttempts"] = 2
    j = env.j
    key = j.begin(1, "TAG", 0)
    env.answer()
    j.queue_meter_values(key, 1, [sample(env, 1)])
    j.end(key, 3, "Local")
    env.fail(errors.FORMATION_VIOLATION)
    env.time.advance(10)
    env.fail(errors.PROPERTY_CONSTRAINT_VIOLATION)
    assert j.set_aside_count() == 1 and not j.get(key)["set_aside"]
    c = env.answer()
    assert c.action == "StopTransaction"


def test_invalid_answer_counts_as_attempt(env):
    """The RPC fails a call whose answer does not match the schema with a
    CALLERROR-like code: an attempt like any other."""
    j = env.j
    j.begin(1, "TAG", 0)
    env.fail(errors.FORMATION_VIOLATION)
    assert j.queued()[0]["attempts"] == 1


def test_timeouts_and_disconnects_do_not_count(env):
    j = env.j
    key = j.begin(1, "TAG", 0)
    j.end(key, 1, "Local")
    for code in (errors.TIMEOUT, errors.DISCONNECTED, errors.TIMEOUT, errors.TIMEOUT,
                 errors.DISCONNECTED):
        c = env.fail(code)
        assert c.action == "StartTransaction"
        assert j.next_due() == 0 and not j.in_flight
    assert j.queued()[0]["attempts"] == 0 and j.set_aside_count() == 0
    assert actions(env.drain()) == ["StartTransaction", "StopTransaction"]
    assert len(env.rpc.calls) == 7


def test_rpc_failure_does_not_leave_a_message_in_flight(env):
    class Broken:
        def call(self, *a, **kw):
            raise RuntimeError("link object broken")

    env.j.begin(1, "TAG", 0)
    with pytest.raises(RuntimeError):
        env.j.pump(Broken(), env.time.mono, True)
    assert not env.j.in_flight
    assert env.answer().action == "StartTransaction"


def test_nothing_sent_while_in_flight_or_not_allowed(env):
    j = env.j
    j.begin(1, "TAG", 0)
    j.begin(2, "TAG", 0)
    assert env.pump(can_send=False) is False
    assert env.pump() is True and j.in_flight and j.next_due() is None
    assert env.pump() is False and len(env.rpc.calls) == 1


def test_attempts_survive_a_restart(env):
    j = env.j
    j.begin(1, "TAG", 0)
    env.fail()
    env.time.advance(10)
    env.fail()
    j = env.reopen()
    assert j.queued()[0]["attempts"] == 2
    assert j.next_due() == 0  # due times are not kept across a restart
    env.fail()
    assert j.pending_count() == 0 and j.set_aside_count() == 1


def test_stale_answer_ignored(env):
    j = env.j
    j.begin(1, "TAG", 0)
    first = env.fail(errors.TIMEOUT)
    env.answer()
    first.on_result({"transactionId": 1, "idTagInfo": ACCEPTED})  # too late, ignored
    assert j.recent(1)[0]["transaction_id"] == env.next_tid


# --- end, callbacks, queries -------------------------------------------------------------------

def test_ending_twice_is_a_noop(env):
    j = env.j
    key = j.begin(1, "TAG", 0)
    assert j.end(key, 10, "Local") is True
    assert j.end(key, 20, "Remote") is False
    assert j.end("99999999", 20, "Remote") is False
    calls = env.drain()
    assert actions(calls) == ["StartTransaction", "StopTransaction"]
    assert calls[1].payload["meterStop"] == 10 and calls[1].payload["reason"] == "Local"
    assert j.end(key, 30, "Local") is False and j.pending_count() == 0
    assert j.recover_after_power_loss() == []


def on_answer(journal, action, fn):
    """Have fn(record, conf) hear the answers to `action` (the message class's
    confirmed(), as the engine's message classes do)."""
    message = journal.messages[action]

    class Heard(type(message)):
        def confirmed(self, rec, conf):
            fn(rec, conf)
    journal.messages[action] = Heard()


def test_callbacks(env):
    j = env.j
    seen = []

    def started(rec, info):
        seen.append(("start", rec["key"], rec["transaction_id"], info))
        if info["status"] != "Accepted":  # StopTransactionOnInvalidId, done by the engine
            j.end(rec["key"], 0, "DeAuthorized")

    on_answer(j, "StartTransaction", lambda rec, conf: started(rec, conf["idTagInfo"]))
    on_answer(j, "StopTransaction", lambda rec, conf: seen.append(("stop", rec["key"], conf)))
    key = j.begin(1, "BAD", 0)
    env.answer({"transactionId": 5, "idTagInfo": {"status": "Invalid"}})
    assert seen == [("start", key, 5, {"status": "Invalid"})]
    c = env.answer({"idTagInfo": {"status": "Invalid"}})
    assert c.payload["reason"] == "DeAuthorized"
    assert seen[1] == ("stop", key, {"idTagInfo": {"status": "Invalid"}})


def test_failing_callback_does_not_break_the_journal(env, caplog):
    j = env.j

    def boom(rec, info):
        raise RuntimeError("engine bug")

    on_answer(j, "StartTransaction", lambda rec, conf: boom(rec, conf["idTagInfo"]))
    key = j.begin(1, "TAG", 0)
    j.end(key, 1, "Local")
    assert actions(env.drain()) == ["StartTransaction", "StopTransaction"]


def test_queries(env):
    j = env.j
    a = j.begin(1, "A", 0)
    b = j.begin(2, "B", 0)
    env.answer({"transactionId": 11, "idTagInfo": ACCEPTED})
    assert [r["key"] for r in j.open_transactions()] == [a, b]
    assert j.transaction_by_id(11)["key"] == a and j.transaction_by_id(12) is None
    j.end(a, 1, "Local")
    assert [r["key"] for r in j.open_transactions()] == [b]
    assert [r["key"] for r in j.recent(5)] == [b, a]
    assert [r["key"] for r in j.recent(1)] == [b]
    assert j.get("nope") is None
    assert a < b and a != b


def test_keys_are_never_reused_after_restart(env):
    keys = [env.j.begin(1, "T", 0) for _ in range(3)]
    env.reopen()
    assert env.j.begin(1, "T", 0) > keys[-1]


def test_finished_transactions_pruned(tmp_path):
    env = Env(tmp_path / "d", keep_done=2)
    keys = []
    for i in range(5):
        k = env.j.begin(1, "T", 0)
        env.j.end(k, 1, "Local")
        keys.append(k)
    env.drain()
    assert [r["key"] for r in env.j.recent(10)] == [keys[-1], keys[-2]]
    assert [r["key"] for r in env.reopen().recent(10)] == [keys[-1], keys[-2]]
    assert env.j.begin(1, "T", 0) > keys[-1]


# --- meter readings, stop samples ------------------------------------------------------------------

def test_record_meter_throttled(env):
    j = env.j
    key = j.begin(1, "TAG", 0)
    assert j.record_meter(key, 10) is False      # the record was just written by begin
    env.time.advance(10)
    assert j.record_meter(key, 20) is True
    env.time.advance(5)
    assert j.record_meter(key, 30) is False
    assert j.record_meter(key, 31, force=True) is True
    assert j.record_meter("nope", 1) is False
    assert env.reopen().get(key)["last_meter"]["wh"] == 31


def test_stop_samples_thinned_keep_first_and_newest(env):
    j = env.j
    key = j.begin(1, "TAG", 0)
    for i in range(23):
        env.time.advance(60)
        j.add_stop_sample(key, sample(env, i))
    values = [s["sampledValue"][0]["value"] for s in j.get(key)["samples"]]
    assert len(values) <= 5
    assert values[0] == "0" and values[-1] == "22"
    assert [int(v) for v in values] == sorted(int(v) for v in values)
    j.end(key, 99, "Local")
    stop = env.drain()[-1]
    assert len(stop.payload["transactionData"]) == len(values)


@pytest.mark.parametrize("n,cap", [(6, 5), (10, 5), (3, 2), (5, 1), (100, 7), (2, 3)])
def test_thin_samples(n, cap):
    s = list(range(n))
    thin_samples(s, cap)
    assert len(s) <= cap and s[-1] == n - 1
    if cap >= 2:
        assert s[0] == 0


def test_no_empty_transaction_data(env):
    j = env.j
    key = j.begin(1, "TAG", 0)
    j.end(key, 5, "Local")
    stop = env.drain()[-1]
    assert "transactionData" not in stop.payload
    env.config["StopTransactionMaxMeterValues"] = 0
    key = j.begin(1, "TAG", 0)
    assert j.add_stop_sample(key, sample(env, 1)) is False
    j.end(key, 5, "Local")
    assert "transactionData" not in env.drain()[-1].payload


def test_unsendable_transaction_data_dropped_not_the_stop(env, caplog):
    """transactionData allows fewer units than MeterValues (no Hertz)."""
    j = env.j
    key = j.begin(1, "TAG", 0)
    j.add_stop_sample(key, sample(env, 50, measurand="Frequency", unit="Hertz"))
    j.end(key, 5, "Local")
    with caplog.at_level(logging.WARNING, logger="ocpp.journal"):
        stop = env.drain()[-1]
    assert stop.action == "StopTransaction" and "transactionData" not in stop.payload
    assert any("without transactionData" in r.getMessage() for r in caplog.records)


def test_unsendable_start_set_aside_not_crashing(env):
    j = env.j
    key = j.begin(1, "X" * 21, 0)   # idTag longer than 20: can never be sent
    j.queue_meter_values(None, 0, [sample(env, 1)])
    c = env.answer()
    assert c.action == "MeterValues"
    assert j.get(key)["set_aside"] and j.set_aside_count() == 1


def test_untied_meter_values_capped(tmp_path, caplog):
    env = Env(tmp_path / "d", max_untied=3)
    for i in range(5):
        env.j.queue_meter_values(None, 0, [sample(env, i)])
    assert env.j.pending_count() == 3
    values = [c.payload["meterValue"][0]["sampledValue"][0]["value"] for c in env.drain()]
    assert values == ["2", "3", "4"]


# --- power loss, restarts ----------------------------------------------------------------------------

def test_recovery_after_power_loss(env):
    j = env.j
    a = j.begin(1, "A", 100)
    b = j.begin(2, "B", 200)
    env.answer({"transactionId": 1, "idTagInfo": ACCEPTED})
    env.time.advance(60)
    j.record_meter(a, 150, force=True)
    read_at = env.time.wall
    env.time.advance(5)
    j.record_meter(a, 160)           # throttled: not on disk, lost in the power cut
    # power cut; the charger boots again (new boot id, monotonic restarted)
    env.time.advance(300)
    env.time.mono = 3.0
    env.clock.boot_id = "boot-2"
    j = env.reopen()
    assert [r["key"] for r in j.open_transactions()] == [a, b]
    assert j.recover_after_power_loss() == [a, b]
    assert j.recover_after_power_loss() == []
    assert j.open_transactions() == []
    calls = env.drain()
    assert actions(calls) == ["StartTransaction", "StopTransaction", "StopTransaction"]
    assert calls[1].payload == {"transactionId": 1, "meterStop": 150, "timestamp": iso(read_at),
                                "reason": "PowerLoss"}
    assert calls[2].payload["meterStop"] == 200 and calls[2].payload["reason"] == "PowerLoss"
    assert calls[2].payload["timestamp"] == iso(T_WALL)   # no reading: the start
    assert calls[2].payload["transactionId"] == env.next_tid


def test_restart_mid_delivery_keeps_order_without_duplicates(env):
    j = env.j
    a = j.begin(1, "A", 0)
    j.queue_meter_values(a, 1, [sample(env, 1)])
    j.end(a, 2, "Local")
    b = j.begin(2, "B", 0)
    env.pump()                        # StartTransaction in flight ... and the charger restarts
    j = env.reopen()
    assert j.recover_after_power_loss() == [b]
    env.drain()
    calls = env.rpc.calls
    assert actions(calls) == ["StartTransaction", "StartTransaction", "MeterValues",
                              "StopTransaction", "StartTransaction", "StopTransaction"]
    assert calls[0].payload == calls[1].payload       # the unanswered one, sent again
    assert calls[3].payload["transactionId"] == j.get(a)["transaction_id"]
    assert calls[5].payload["reason"] == "PowerLoss"
    j = env.reopen()
    assert j.pending_count() == 0 and j.recover_after_power_loss() == []


def segment_path(env):
    [name] = env.store.names("journal/")
    return os.path.join(env.path, *name.split("/"))


def log_size(env):
    return os.path.getsize(segment_path(env))


def lose_last_record(env, size_before):
    """A crash before the last append reached the medium: the file as it was."""
    with open(segment_path(env), "r+b") as f:
        f.truncate(size_before)


def test_every_durable_event_is_one_fsync(env):
    j, store = env.j, env.store

    def fsyncs(fn):
        before = store.fsync_count
        fn()
        return store.fsync_count - before

    key = [None]
    assert fsyncs(lambda: key.__setitem__(0, j.begin(1, "A", 0, first_sample=sample(env, 0)))) == 1
    key = key[0]
    assert fsyncs(lambda: env.answer()) == 1                        # Start.conf
    env.time.advance(10)
    assert fsyncs(lambda: j.record_meter(key, 10)) == 1
    assert fsyncs(lambda: j.record_meter(key, 11)) == 0             # throttled
    assert fsyncs(lambda: j.add_stop_sample(key, sample(env, 11))) == 1
    assert fsyncs(lambda: j.queue_meter_values(key, 1, [sample(env, 11)])) == 1
    assert fsyncs(lambda: env.answer()) == 1                        # MeterValues.conf
    assert fsyncs(lambda: j.queue_message("SecurityEventNotification", SECURITY_EVENT)) == 1
    assert fsyncs(lambda: env.answer()) == 1
    assert fsyncs(lambda: j.end(key, 20, "Local", last_sample=sample(env, 20))) == 1
    assert fsyncs(lambda: env.answer()) == 1                        # Stop.conf


@pytest.mark.parametrize("step", ["begin", "end", "start.conf", "stop.conf", "meter.conf"])
def test_a_crash_before_the_record_leaves_all_or_nothing(env, step):
    """Each event is one record: a crash before it reached the medium undoes
    the whole event, never half of it (record without its message, delivery
    recorded without the removal, ...)."""
    j = env.j
    a = j.begin(1, "A", 0) if step != "begin" else None
    if step in ("end", "stop.conf", "meter.conf"):
        env.answer({"transactionId": 5, "idTagInfo": ACCEPTED})
    if step == "meter.conf":
        j.queue_meter_values(a, 1, [sample(env, 1)])
    if step == "stop.conf":
        j.end(a, 3, "Local")
    size = log_size(env)
    if step == "begin":
        j.begin(1, "A", 0)
    elif step == "end":
        j.end(a, 3, "Local")
    else:
        env.answer({"transactionId": 5, "idTagInfo": ACCEPTED} if step == "start.conf" else {})
    lose_last_record(env, size)
    j = env.reopen()
    if step == "begin":
        assert j.pending_count() == 0 and j.open_transactions() == []
        return
    if step == "end":
        assert [r["key"] for r in j.open_transactions()] == [a] and j.pending_count() == 0
        return
    sent = [c.action for c in env.drain()]     # the unrecorded answer's message: again
    assert sent == {"start.conf": ["StartTransaction"], "stop.conf": ["StopTransaction"],
                    "meter.conf": ["MeterValues"]}[step]


def test_an_answer_recorded_is_never_sent_again(env):
    """The known duplicate of the first journal: a MeterValues acknowledged just
    before a crash went out again. Its answer is now one record: once written,
    the message is gone for good, whatever happens next."""
    j = env.j
    a = j.begin(1, "A", 0)
    env.answer()
    j.queue_meter_values(a, 1, [sample(env, 1)])
    j.queue_meter_values(a, 1, [sample(env, 2)])
    first = env.answer()
    assert first.action == "MeterValues"
    j = env.reopen()                             # the crash: right after the answer
    calls = env.drain()
    assert [c.payload["meterValue"][0]["sampledValue"][0]["value"] for c in calls] == ["2"]


def test_a_torn_last_record_is_dropped_with_one_line(env, caplog):
    j = env.j
    a = j.begin(1, "A", 0)
    size = log_size(env)
    j.queue_meter_values(a, 1, [sample(env, 1)])
    full = log_size(env)
    with open(segment_path(env), "r+b") as f:
        f.truncate(size + (full - size) // 2)      # a power cut in the middle of the append
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ocpp.journal"):
        j = env.reopen()
    assert [r.getMessage() for r in caplog.records if "torn" in r.getMessage()] == [
        "journal journal/%010d.log: a torn last record (%d bytes) dropped"
        % (1, (full - size) // 2)]
    assert j.pending_count() == 1 and j.get(a) is not None
    j.queue_meter_values(a, 1, [sample(env, 3)])  # appended after a clean snapshot
    j = env.reopen()
    assert actions(env.drain()) == ["StartTransaction", "MeterValues"]


def test_a_damaged_record_in_the_middle_is_skipped(env, caplog):
    j = env.j
    a = j.begin(1, "A", 0)
    before = log_size(env)
    j.queue_meter_values(a, 1, [sample(env, 1)])
    after = log_size(env)
    j.queue_meter_values(a, 1, [sample(env, 2)])
    with open(segment_path(env), "r+b") as f:
        f.seek((before + after) // 2)
        f.write(b"\xff")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        env.reopen()
    errors_ = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors_ == ["journal journal/0000000001.log: %d damaged bytes skipped"
                       % (after - before)]
    calls = env.drain()
    assert [c.payload["meterValue"][0]["sampledValue"][0]["value"] for c in calls[1:]] == ["2"]


def test_compaction_keeps_the_state_and_one_segment(tmp_path, monkeypatch):
    import ocpp_core.journal as journal_mod
    monkeypatch.setattr(journal_mod, "COMPACT_MIN_BYTES", 2000)
    env = Env(tmp_path / "d")
    j = env.j
    a = j.begin(1, "A", 0)
    env.answer()
    generations = set()
    for i in range(60):
        j.queue_meter_values(a, 1, [sample(env, i)])
        env.answer()
        generations.add(env.store.names("journal/")[0])
        assert len(env.store.names("journal/")) == 1
    assert len(generations) > 3 and log_size(env) < 4000
    j.queue_meter_values(a, 1, [sample(env, 99)])
    j = env.reopen()
    assert [c.payload["meterValue"][0]["sampledValue"][0]["value"] for c in env.drain()] == ["99"]


@pytest.mark.parametrize("cut", ["torn-snapshot", "empty", "before-delete"])
def test_an_interrupted_compaction_loses_nothing(env, cut):
    j = env.j
    a = j.begin(1, "A", 0)
    j.queue_meter_values(a, 1, [sample(env, 1)])
    [old] = env.store.names("journal/")
    new = os.path.join(env.path, "journal", "0000000009.log")
    with open(os.path.join(env.path, *old.split("/")), "rb") as f:
        data = f.read()
    with open(new, "wb") as f:
        if cut == "torn-snapshot":
            f.write(data[:25])            # the new snapshot half written
        elif cut == "before-delete":
            # the new segment complete (a copy of the state), the old not yet deleted
            from ocpp_core import journal_log
            f.write(journal_log.frame([["snap", env.j._snapshot()]]))
    j = env.reopen()
    assert env.store.names("journal/") == ["journal/%010d.log" % 10]
    assert j.pending_count() == 2
    assert actions(env.drain()) == ["StartTransaction", "MeterValues"]


def test_a_data_dir_of_the_first_journal_is_carried_forward(env, caplog):
    """tx/ and queue/ files of the journal before the log: read once, written as
    the log's snapshot, then deleted; keys and numbers go on, nothing is lost."""
    store = env.store
    start = env.clock.stamp()
    rec = {"key": "00000007", "connector_id": 1, "id_tag": "OLD", "meter_start": 100,
           "start": start, "reservation_id": None, "transaction_id": 31,
           "id_tag_info": ACCEPTED, "last_meter": {"wh": 150, "at": start},
           "samples": [], "stop": None, "start_delivered": True, "stop_delivered": False,
           "set_aside": False}
    store.save("tx/00000007", rec)
    store.save("queue/0000000041", {"seq": 41, "action": "MeterValues", "key": "00000007",
                                    "attempts": 1, "connector_id": 1,
                                    "meter_value": [{"at": start, "sampledValue": [
                                        {"value": "150", "unit": "Wh"}]}]})
    store.save("setaside/0000000040", {"seq": 40, "action": "MeterValues", "key": None,
                                       "attempts": 3})
    for name in store.names("journal/"):
        store.delete(name)
    with caplog.at_level(logging.INFO, logger="ocpp.journal"):
        j = env.reopen()
    assert "carried forward" in caplog.text
    assert store.names("tx/") == store.names("queue/") == store.names("setaside/") == []
    assert j.pending_count() == 1 and j.queued()[0]["attempts"] == 1
    assert j.set_aside_count() == 1
    assert j.recover_after_power_loss() == ["00000007"]
    assert j.begin(2, "NEW", 0) == "00000008"
    j = env.reopen()
    calls = env.drain()
    assert actions(calls) == ["MeterValues", "StopTransaction", "StartTransaction"]
    assert calls[0].payload["transactionId"] == 31 == calls[1].payload["transactionId"]
    assert calls[1].payload["meterStop"] == 150 and calls[1].payload["reason"] == "PowerLoss"
    assert j.queue_meter_values(None, 0, [sample(env, 1)]) > 41


def test_the_first_journals_files_left_by_a_crash_after_migration_are_not_read_again(env):
    env.j.begin(1, "A", 0)
    env.store.save("queue/0000000001", {"seq": 1, "action": "MeterValues", "key": None,
                                        "attempts": 0, "connector_id": 0, "meter_value": []})
    j = env.reopen()                     # a log exists: the old file is a leftover
    assert env.store.names("queue/") == [] and j.pending_count() == 1


# --- provisional time ------------------------------------------------------------------------------------

def test_provisional_stamps_corrected_when_the_clock_is_set(tmp_path):
    env = Env(tmp_path / "d")
    env.time.wall = 1000.0           # a Pi without RTC, before NTP: 1970
    assert not env.clock.valid
    j = env.j
    key = j.begin(1, "TAG", 0)       # at mono 500
    env.time.advance(60)
    j.queue_meter_values(key, 1, [sample(env, 5)])  # at mono 560
    env.time.advance(40)             # mono 600
    env.clock.set_from_csms("2024-06-01T12:00:00Z")
    calls = env.drain()
    assert calls[0].payload["timestamp"] == "2024-06-01T11:58:20.000Z"
    assert calls[1].payload["meterValue"][0]["timestamp"] == "2024-06-01T11:59:20.000Z"


# --- unusable content ------------------------------------------------------------------------------------

def test_unusable_but_intact_content_is_set_aside_not_a_crash(env, caplog):
    """CRC fine, shape wrong (another version, a bug): set aside, not a crash."""
    from ocpp_core import journal_log
    env.j.begin(1, "A", 0)
    env.store.append(env.j._segment, journal_log.frame([["Q", {"seq": 9, "action": "x"}]]))
    env.store.append(env.j._segment, journal_log.frame([["nonsense"]]))
    snap = env.j._snapshot()
    snap["tx"].append({"key": "00000005"})
    snap["queue"].append({"seq": 12, "action": "Heartbeat"})
    with open(os.path.join(env.path, "journal", "0000000009.log"), "wb") as f:
        f.write(journal_log.frame([["snap", snap]]))
    with caplog.at_level(logging.INFO):
        j = env.reopen()
    assert j.pending_count() == 1 and j.set_aside_count() == 2
    assert actions(env.drain()) == ["StartTransaction"]
    assert j.begin(1, "B", 0) == "00000006"


def test_a_missing_data_directory_is_created(tmp_path):
    env = Env(tmp_path / "a" / "b" / "c")
    assert env.j.pending_count() == 0 and os.path.isdir(env.path)


# --- a failing data dir (issue 18) ----------------------------------------------------------------

class SwitchFaults:
    """The Store's fault seam: every write step fails with `code` while set."""

    def __init__(self):
        self.code = None
        self.failed = 0

    def check(self, op, path):
        import errno as _errno
        if self.code is not None and not (self.code == _errno.ENOSPC and op == "unlink"):
            self.failed += 1
            raise OSError(self.code, os.strerror(self.code), path)


def faulty(env):
    faults = SwitchFaults()
    env.store.faults = faults
    return faults


def test_a_full_disk_sends_from_memory_and_catches_up(env):
    import errno as _errno
    faults = faulty(env)
    j = env.j
    faults.code = _errno.ENOSPC
    a = j.begin(1, "A", 1000)                    # nothing written, nothing raised
    j.queue_meter_values(a, 1, [sample(env, 1500)])
    j.end(a, 2000, "Local")
    assert faults.failed and env.store.problem == "full"
    assert j.not_durable() > 0 and env.store.names("tx/") == []
    calls = env.drain()                          # sent from memory, in order
    assert actions(calls) == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert calls[2].payload["meterStop"] == 2000
    b = j.begin(1, "B", 2000)                    # a second one, still in memory
    assert j.next_due() is not None and j.next_due() <= 2.0
    faults.code = None                           # space is back
    env.time.advance(2.0)
    env.pump(can_send=False)                     # the tick drives the catch-up
    assert j.not_durable() == 0 and env.store.problem is None
    # A power cut now loses nothing: b is on disk and ends with PowerLoss.
    j2 = env.reopen()
    assert [r["key"] for r in j2.open_transactions()] == [b]
    assert j2.get(a)["stop_delivered"] is True
    assert j2.recover_after_power_loss() == [b]
    assert actions(env.drain()) == ["StartTransaction", "StopTransaction"]


def test_a_read_only_disk_keeps_answers_in_memory_and_writes_them_later(env):
    import errno as _errno
    j = env.j
    a = j.begin(1, "A", 0)
    faults = faulty(env)
    faults.code = _errno.EROFS
    env.answer({"transactionId": 7, "idTagInfo": ACCEPTED})   # Start.conf: not durable
    assert j.get(a)["transaction_id"] == 7 and j.pending_count() == 0
    assert env.store.problem == "read-only"
    j.end(a, 10, "Local")
    stop = env.answer()
    assert stop.action == "StopTransaction" and stop.payload["transactionId"] == 7
    faults.code = None
    env.time.advance(2.0)
    env.pump()
    assert j.not_durable() == 0
    j2 = env.reopen()
    assert j2.pending_count() == 0 and j2.get(a)["stop_delivered"]
    assert j2.recover_after_power_loss() == []


def test_a_single_io_error_is_caught_up_at_the_next_tick(env):
    import errno as _errno
    faults = faulty(env)
    faults.code = _errno.EIO
    a = env.j.begin(1, "A", 0)
    faults.code = None
    assert env.store.problem == "io"
    env.pump(can_send=False)                     # healthy again (probe not needed)
    env.time.advance(2.0)
    env.pump(can_send=False)
    assert env.j.not_durable() == 0 and env.store.problem is None
    assert env.reopen().get(a) is not None


def test_queue_entries_are_not_read_back_at_send_time(env):
    j = env.j
    j.begin(1, "A", 0)
    os.unlink(segment_path(env))                                # memory is the truth
    assert actions(env.drain()) == ["StartTransaction"]


# --- queue_message: self-contained messages in the same queue (security events) -------------------

def test_queue_message_goes_in_fifo_order_and_survives_a_restart(env):
    j = env.j
    a = j.begin(1, "A", 0)
    first = j.queue_message("SecurityEventNotification", dict(SECURITY_EVENT, techInfo="1"))
    j.queue_meter_values(a, 1, [sample(env, 1)])
    j.queue_message("SecurityEventNotification", dict(SECURITY_EVENT, techInfo="2"))
    assert first == 2
    j = env.reopen()                              # kill -9 right after: all durable
    calls = env.drain()
    assert actions(calls) == ["StartTransaction", "SecurityEventNotification", "MeterValues",
                              "SecurityEventNotification"]
    assert calls[1].payload == dict(SECURITY_EVENT, techInfo="1")
    assert calls[3].payload["techInfo"] == "2"
    assert env.reopen().pending_count() == 0      # answered: removed for good


def test_queue_message_callerror_retried_then_set_aside_like_transaction_messages(env):
    j = env.j
    j.queue_message("SecurityEventNotification", SECURITY_EVENT)
    j.queue_meter_values(None, 0, [sample(env, 1)])
    env.fail()
    assert j.queued()[0]["attempts"] == 1 and j.next_due() == 10
    env.time.advance(10)
    c = env.fail(errors.TIMEOUT)                  # not an attempt
    assert c.action == "SecurityEventNotification" and j.queued()[0]["attempts"] == 1
    j = env.reopen()
    assert j.queued()[0]["attempts"] == 1
    env.fail()
    env.time.advance(20)
    env.fail()
    assert j.set_aside_count() == 1 and j.set_aside_entries()[0]["payload"] == SECURITY_EVENT
    assert actions(env.drain()) == ["MeterValues"]


def test_queue_message_refuses_what_it_cannot_send(env):
    j = env.j
    for action, payload in (("Heartbeat", []), ("Reset", {"type": "Soft"}),
                            ("StartTransaction", {}), ("NoSuchAction", {}),
                            ("SecurityEventNotification", {"type": "x"}), (None, {})):
        with pytest.raises(ValueError):
            j.queue_message(action, payload)
    assert j.pending_count() == 0


def test_queue_message_not_counted_with_untied_meter_values(tmp_path):
    env = Env(tmp_path / "d", max_untied=2)
    env.j.queue_message("SecurityEventNotification", SECURITY_EVENT)
    for i in range(4):
        env.j.queue_meter_values(None, 0, [sample(env, i)])
    assert actions(env.drain()) == ["SecurityEventNotification", "MeterValues", "MeterValues"]


def test_queue_message_while_the_store_fails_is_sent_and_caught_up(env):
    import errno as _errno
    faults = faulty(env)
    faults.code = _errno.EIO
    env.j.queue_message("SecurityEventNotification", SECURITY_EVENT)
    assert env.j.not_durable() == 1
    faults.code = None
    env.time.advance(2.0)
    env.pump(can_send=False)
    assert env.j.not_durable() == 0
    assert actions(env.reopen() and env.drain()) == ["SecurityEventNotification"]


def test_the_journal_benchmark_runs(tmp_path, capsys):
    """tools.bench_journal (tiny counts): it completes and prints its figures."""
    from tools import bench_journal
    assert bench_journal.main(["--dir", str(tmp_path), "-n", "3", "--queued", "5",
                               "--session-minutes", "2"]) == 0
    out = capsys.readouterr().out
    for text in ("begin (StartTransaction queued)", "deliver MeterValues",
                 "one 2-minute session", "20 transaction messages (MeterValues 18,",
                 # one fsync per event: begin, Start.conf, 18 x (queued, answered),
                 # 12 readings (every 10 s), 18 stop samples, end, Stop.conf
                 "fsyncs 70 (3.50 per message)", "per year at 10 sessions",
                 "opening the journal with 5 messages queued"):
        assert text in out, out
    assert "    1.00 " in out.splitlines()[2]         # begin: one fsync


def test_an_append_that_fails_half_written_is_never_appended_to(env, caplog):
    """EIO in the middle of a write leaves part of a record at the end of the
    segment: nothing more is appended there; the catch-up writes a new one."""
    import errno as _errno
    store = env.store
    real_put = Store._put
    state = {"fail": True}

    def half_then_eio(f, data):
        if state.pop("fail", False):
            f.write(data[:len(data) // 2])
            raise OSError(_errno.EIO, "I/O error")
        real_put(store, f, data)
    store._put = half_then_eio
    j = env.j
    a = j.begin(1, "A", 0)                          # half written, then EIO
    j.queue_meter_values(a, 1, [sample(env, 1)])    # held in memory, not appended
    assert j.not_durable() == 2 and store.problem == "io"
    env.time.advance(2.0)
    env.pump(can_send=False)                        # the catch-up: a new segment
    assert j.not_durable() == 0 and store.problem is None
    assert len(store.names("journal/")) == 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ocpp.journal"):
        env.reopen()
    assert "torn" not in caplog.text and "damaged" not in caplog.text
    assert actions(env.drain()) == ["StartTransaction", "MeterValues"]
