"""firmware/actuation.py: the self-test cycles a contactor or lock only while
nothing could notice, on the device's own worker, and reports what the
feedback read (tools/diag/checks.py judges it)."""

import threading
from types import SimpleNamespace

import pytest

from firmware import actuation


def idle_connector(**facts):
    c = SimpleNamespace(in_transaction=False, ev_known=True, ev_state="A", authorization=None,
                        unlock_request=None, lock_pending_since=None, contactor_closed=False,
                        offered_a=0.0, faults={})
    for name, value in facts.items():
        setattr(c, name, value)
    return c


def engine(connector, reset_pending=None):
    return SimpleNamespace(connectors={1: connector}, reset_pending=reset_pending)


class Contactor:
    def __init__(self, welded=False, stuck_open=False):
        self.closed = False
        self.welded, self.stuck_open = welded, stuck_open
        self.commands = []

    def set(self, closed):
        self.commands.append(closed)
        self.closed = closed

    def feedback(self):
        return True if self.welded else (False if self.stuck_open else self.closed)


class Worker:
    """A device worker whose thread is this one thread, started by run()."""

    def __init__(self, device, kind="contactor"):
        setattr(self, kind, device)
        self.jobs = []

    def submit(self, fn):
        self.jobs.append(fn)

    def run(self):
        for job in self.jobs:
            threading.Thread(target=job, daemon=True).start()


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(actuation, "SETTLE", 0.01)
    monkeypatch.setattr(actuation, "REPORT_MARGIN", 0.2)


@pytest.mark.parametrize("facts, reset, why", [
    ({"ev_state": "B"}, None, "skipped: EV connected"),
    ({"in_transaction": True}, None, "skipped: transaction running"),
    ({"ev_known": False}, None, "skipped: EV state not known yet"),
    ({"authorization": {"id_tag": "X"}}, None, "skipped: a card was accepted, waiting for the EV"),
    ({"lock_pending_since": 12.0}, None, "skipped: the lock is busy"),
    ({"offered_a": 16.0}, None, "skipped: the connector is in use"),
    ({}, {"kind": "Soft"}, "skipped: a reset is under way"),
])
def test_nothing_moves_while_it_could_be_noticed(facts, reset, why):
    worker = Worker(Contactor())
    steps = actuation.plan(engine(idle_connector(**facts), reset), {1: {"contactor": worker}})
    assert actuation.collect(steps) == [{"device": "contactor", "connector": 1, "skipped": why}]
    assert worker.jobs == []


def test_an_idle_contactor_is_cycled_on_its_worker():
    contactor = Contactor()
    worker = Worker(contactor)
    steps = actuation.plan(engine(idle_connector()), {1: {"contactor": worker, "lock": None}})
    assert contactor.commands == []           # the main loop only plans
    worker.run()
    assert actuation.collect(steps) == [{"device": "contactor", "connector": 1,
                                         "settle_s": 0.01, "closed_feedback": True,
                                         "open_feedback": False}]
    assert contactor.commands == [True, False] and not contactor.closed


def test_a_welded_contactor_and_a_silent_worker_are_reported():
    worker = Worker(Contactor(welded=True))
    steps = actuation.plan(engine(idle_connector()), {1: {"contactor": worker}})
    worker.run()
    (result,) = actuation.collect(steps)
    assert result["open_feedback"] is True
    silent = Worker(Contactor())
    (result,) = actuation.collect(actuation.plan(engine(idle_connector()),
                                                 {1: {"contactor": silent}}))
    assert result["error"] == "the contactor's worker did not report within 0.22 s"


def test_a_faulted_contactor_is_not_cycled_and_a_lock_is():
    class Lock:
        actuation_time = 0.05

        def __init__(self):
            self.engaged = False

        def set(self, engaged):
            self.engaged = engaged

        def feedback(self):
            return self.engaged
    lock = Worker(Lock(), kind="lock")
    contactor = Worker(Contactor())
    c = idle_connector(faults={"PowerSwitchFailure": "contactor welded"})
    steps = actuation.plan(engine(c), {1: {"contactor": contactor, "lock": lock}})
    lock.run()
    assert actuation.collect(steps) == [
        {"device": "contactor", "connector": 1,
         "skipped": "skipped: the contactor is already faulted"},
        {"device": "lock", "connector": 1, "engaged": True, "released": True}]
    assert contactor.jobs == [] and lock.lock.engaged is False


def test_not_run_skips_every_device_of_every_connector():
    assert actuation.not_run(["1", "2"], "skipped: the main loop does not answer") == [
        {"device": d, "connector": c, "skipped": "skipped: the main loop does not answer"}
        for c in (1, 2) for d in ("contactor", "lock")]
