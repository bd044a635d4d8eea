"""The soak's invariant checker (tools/soak/checker.py) on hand-made CSMS logs:
a clean log passes everything, and each invariant fails on a log that breaks it."""

import pytest

from tools.soak.checker import INVARIANTS, TX_ACTIONS, check


class Log:
    """A CSMS log written by hand: the station's CALLs answered by the CSMS."""

    def __init__(self):
        self.log = []
        self.t = 100.0
        self.n = 0
        self.conn = 0

    def add(self, kind, **fields):
        self.t += fields.pop("dt", 0.01)
        fields.update(kind=kind, t=self.t)
        self.log.append(fields)
        return self

    def spawn(self):
        self.add("spawn", life=1)
        return self.connect()

    def connect(self):
        self.conn += 1
        self.add("connect", conn=self.conn)
        return self.station("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"},
                            {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z",
                             "interval": 300})

    def station(self, action, payload, answer=None, error=None, dt=0.01):
        """A CALL of the station and the CSMS's answer (None, None: no answer)."""
        self.n += 1
        msg_id = "cp-%d" % self.n
        self.add("rx", conn=self.conn, msg=[2, msg_id, action, payload], dt=dt)
        if error is not None:
            self.add("tx", conn=self.conn, msg=[4, msg_id, error, "", {}])
        elif answer is not None:
            self.add("tx", conn=self.conn, msg=[3, msg_id, answer])
        return self

    def start(self, tag="T1", tx=1, meter=1000, ts="2026-01-01T00:00:01Z"):
        return self.station("StartTransaction", start_payload(tag, meter, ts),
                            {"transactionId": tx, "idTagInfo": {"status": "Accepted"}})

    def meter(self, tx=1, wh=1001, ts="2026-01-01T00:00:02Z", answered=True):
        return self.station("MeterValues", meter_payload(tx, wh, ts), {} if answered else None)

    def stop(self, tx=1, meter=1002, ts="2026-01-01T00:00:03Z", reason="Local"):
        return self.station("StopTransaction", stop_payload(tx, meter, ts, reason), {})

    def csms_call(self, msg_id="sk-1", action="GetConfiguration", answer=None, after=0.05):
        self.add("tx", conn=self.conn, msg=[2, msg_id, action, {}], text="[2,%r]" % msg_id,
                 expect=msg_id)
        if answer is not None:
            self.add("rx", conn=self.conn, msg=answer, dt=after)
        return self

    def end(self):
        return self.add("end", dt=6.0)


def start_payload(tag, meter, ts):
    return {"connectorId": 1, "idTag": tag, "meterStart": meter, "timestamp": ts}


def meter_payload(tx, wh, ts):
    return {"connectorId": 1, "transactionId": tx, "meterValue": [
        {"timestamp": ts, "sampledValue": [{"value": str(wh), "unit": "Wh",
                                            "measurand": "Energy.Active.Import.Register"}]}]}


def stop_payload(tx, meter, ts, reason):
    return {"transactionId": tx, "meterStop": meter, "timestamp": ts, "reason": reason}


def session():
    return Log().spawn().start().meter().stop()


def failed(verdict):
    return [name for name, ok, _ in verdict.results if not ok]


def test_a_clean_log_passes_every_invariant():
    log = session().csms_call(answer=[3, "sk-1", {"configurationKey": []}]).end()
    v = check(log.log, [("StartTransaction", start_payload("T1", 1000, "2026-01-01T00:00:01Z"))])
    assert failed(v) == []
    assert [name for name, _, _ in v.results] == list(INVARIANTS)
    assert v.figures["transactions"] == 1
    assert v.figures["lost"] == v.figures["duplicated"] == v.figures["reordered"] == 0


def test_a_transaction_never_stopped():
    v = check(Log().spawn().start().meter().end().log)
    assert failed(v) == ["every transaction stopped exactly once"]
    assert v.figures["lost"] == 1


def test_a_transaction_stopped_twice():
    log = session().stop(meter=1003, ts="2026-01-01T00:00:09Z", reason="PowerLoss").end()
    assert "every transaction stopped exactly once" in failed(check(log.log))


def test_a_message_for_an_unknown_transaction_id():
    log = session().meter(tx=99, ts="2026-01-01T00:00:05Z").end()
    assert failed(check(log.log)) == ["no message for an unknown transaction id"]


def test_a_physical_session_started_twice():
    log = session().start(tx=2, ts="2026-01-01T00:00:07Z").stop(tx=2, meter=1002,
                                                                ts="2026-01-01T00:00:08Z").end()
    assert failed(check(log.log)) == ["no physical session started twice"]


def test_meter_stop_below_meter_start():
    log = Log().spawn().start(meter=1000).stop(meter=999).end()
    assert failed(check(log.log)) == ["meterStop >= meterStart and every reading"]


def test_meter_stop_below_a_reading():
    log = Log().spawn().start(meter=1000).meter(wh=1500).stop(meter=1200).end()
    assert "meterStop >= meterStart and every reading" in failed(check(log.log))


def test_readings_that_go_down():
    log = Log().spawn().start(meter=1000).meter(wh=1010, ts="2026-01-01T00:00:02Z") \
        .meter(wh=1005, ts="2026-01-01T00:00:03Z").stop(meter=1020, ts="2026-01-01T00:00:04Z")
    assert failed(check(log.end().log)) == ["readings non-decreasing"]


def test_meter_values_out_of_order():
    log = Log().spawn().start().meter(wh=1002, ts="2026-01-01T00:00:03Z") \
        .meter(wh=1001, ts="2026-01-01T00:00:02Z").stop(meter=1003, ts="2026-01-01T00:00:04Z")
    v = check(log.end().log)
    assert "messages of a transaction in order" in failed(v)
    assert v.figures["reordered"] == 1


def test_meter_values_after_the_stop():
    log = session().meter(wh=1002, ts="2026-01-01T00:00:04Z").end()
    v = check(log.log)
    assert failed(v) == ["messages of a transaction in order"]
    assert v.figures["reordered"] == 1


def test_a_message_the_station_sent_never_acknowledged():
    log = Log().spawn().start().meter(answered=False).stop().end()
    lost = ("MeterValues", meter_payload(1, 1001, "2026-01-01T00:00:02Z"))
    v = check(log.log, [lost])
    assert failed(v) == ["no transaction message lost"]
    assert v.figures["lost"] == 1


def test_a_session_charging_without_start_transaction():
    log = session().add("session_seen", id_tag="T9").end()
    assert failed(check(log.log)) == ["no transaction message lost"]


def test_a_message_re_sent_after_the_station_had_read_its_answer():
    # MeterValues answered, then a StatusNotification (the answer was read), then the same
    # MeterValues again: a duplicate no window excuses.
    log = Log().spawn().start().meter().station("StatusNotification", {}, {}).meter().stop().end()
    v = check(log.log, tolerate=TX_ACTIONS)
    assert failed(v) == ["no transaction message duplicated"]
    assert v.figures["duplicated"] == 1


def killed_after_the_answer(action, delay):
    log = Log().spawn().start()
    if action == "MeterValues":
        log.meter().add("kill", instant="during journal write", dt=delay).spawn().meter()
    else:
        log.add("kill", instant="during journal write", dt=delay).spawn().start()
    return log.stop().end().log


@pytest.mark.parametrize("action", ["MeterValues", "StartTransaction"])
def test_a_re_send_in_the_ack_window_is_tolerated_only_with_the_flag_and_still_counted(action):
    strict = check(killed_after_the_answer(action, 0.01))
    assert failed(strict) == ["no transaction message duplicated"]
    assert "killed 10 ms after it" in strict.failures["no transaction message duplicated"][0]
    tolerant = check(killed_after_the_answer(action, 0.01), tolerate=TX_ACTIONS)
    assert failed(tolerant) == []
    assert tolerant.figures["duplicated"] == 1 and tolerant.figures["duplicated_tolerated"] == 1
    assert tolerant.figures["ack_window_ms"] == 10.0
    assert len(tolerant.notes) == 1


def test_a_re_send_long_after_the_answer_is_never_tolerated():
    # killed 2 s after the CALLRESULT: the station had all the time to write it down
    v = check(killed_after_the_answer("MeterValues", 2.0), tolerate=TX_ACTIONS)
    assert failed(v) == ["no transaction message duplicated"]


@pytest.mark.parametrize("event", ["exit", "traceback"])
def test_a_crash(event):
    log = session().add(event, detail="boom").end()
    v = check(log.log)
    assert failed(v) == ["no crash"]
    assert v.figures["crashes"] == 1


def test_a_call_never_answered():
    v = check(session().csms_call().end().log)
    assert failed(v) == ["every CALL answered within 5 s"]


def test_a_call_answered_late():
    v = check(session().csms_call(answer=[3, "sk-1", {"configurationKey": []}], after=5.5)
              .end().log)
    assert failed(v) == ["every CALL answered within 5 s"]


@pytest.mark.parametrize("answer", [[4, "sk-1", "Oops", "", {}], [4, "sk-1", "InternalError"],
                                    [3, "sk-1", []], [3, "sk-1", {"configurationKey": 7}]])
def test_a_call_answered_wrongly(answer):
    v = check(session().csms_call(answer=answer).end().log)
    assert failed(v) == ["every CALL answered within 5 s"]


def test_a_call_whose_connection_closed_is_not_judged():
    log = session().csms_call().add("close", conn=1).end()
    v = check(log.log)
    assert failed(v) == []
    assert v.figures["calls_unjudged"] == 1


def test_a_call_unanswered_is_not_excused_by_a_kill_long_after():
    log = session().csms_call().add("kill", instant="after plug", dt=8.0).end()
    assert failed(check(log.log)) == ["every CALL answered within 5 s"]


def test_a_not_implemented_answer_is_a_valid_callerror():
    v = check(session().csms_call(answer=[4, "sk-1", "NotImplemented", "no", {}]).end().log)
    assert failed(v) == []


def test_a_message_before_the_boot_was_accepted():
    log = Log().add("spawn", life=1).add("connect", conn=1)
    log.conn = 1
    log.station("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}, None)
    log.station("StatusNotification", {"connectorId": 0}, {})
    log.end()
    assert failed(check(log.log)) == ["nothing but BootNotification before Accepted"]
