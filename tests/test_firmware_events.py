"""The main loop's events (firmware/events.py) and its table of handlers
(Firmware.ON_EVENT): every kind a producer sends has one handler, and each
handler hands the event to the right part of the engine."""

import logging
import queue

import pytest

from firmware import events as ev
from firmware import maintenance_handlers
from firmware.devices import DeviceWorker, RfidWorker
from firmware.events import Event, LinkEvent
from firmware.main_loop import Firmware


class Recorder:
    """Any method call is recorded as (name, args)."""

    def __init__(self, calls):
        self._calls = calls

    def __getattr__(self, name):
        return lambda *args: self._calls.append((name,) + args)


class CardHook:
    def __init__(self, taken):
        self.taken = taken

    def take_card(self, fw, id_tag):
        return id_tag in self.taken


class ModemStatus:
    iccid, imsi = "8949020000123456789", "001010123456789"


@pytest.fixture
def fw():
    """A Firmware with its engine, RPC endpoint and store replaced by recorders
    (nothing started: only the dispatch is under test); its security wiring
    records apart (it is tested end to end: tests/test_e2e_security.py)."""
    f = object.__new__(Firmware)
    f.calls = []
    f.cp = Recorder(f.calls)
    f.rpc = Recorder(f.calls)
    f.store = Recorder(f.calls)
    f.security_wiring = Recorder([])
    f.maintenance = CardHook(taken={"TOOLCARD"})
    f._saved_modem = {"iccid": None, "imsi": None}
    f.modem_status = None
    f._graceful_stop = lambda: f.calls.append(("graceful_stop",))
    return f


def test_every_kind_has_one_handler():
    assert set(Firmware.ON_EVENT) == set(ev.KINDS)
    assert len(set(Firmware.ON_EVENT.values())) == len(ev.KINDS)
    for method in Firmware.ON_EVENT.values():
        assert callable(getattr(Firmware, method)), method


@pytest.mark.parametrize("event, calls", [
    (LinkEvent(ev.FRAME, '[2,"1","Heartbeat",{}]'), [("receive", '[2,"1","Heartbeat",{}]')]),
    (LinkEvent(ev.UP, None), [("connection_up",)]),
    (LinkEvent(ev.DOWN, "connection refused"), [("connection_down",)]),
    (Event(ev.EV, 1, "B"), [("ev_state_changed", 1, "B")]),
    (Event(ev.METER, 2, "sample"), [("meter_sample", 2, "sample")]),
    (Event(ev.CARD, None, "04A1B2C3"), [("card_presented", "04A1B2C3")]),
    (Event(ev.CARD, None, "TOOLCARD"), []),          # taken by tools.diag rfid
    (Event(ev.LOCK, 1, True), [("lock_feedback", 1, True)]),
    (Event(ev.FAULT, 0, ("ReaderFailure", "no answer")),
     [("fault", 0, "ReaderFailure", "no answer")]),
    (Event(ev.FAULT_CLEARED, 1, "PowerMeterFailure"),
     [("fault_cleared", 1, "PowerMeterFailure")]),
    (Event(ev.STOP, None, None), [("graceful_stop",)]),
])
def test_each_event_reaches_its_handler(fw, event, calls):
    fw._dispatch(event)
    assert fw.calls == calls


def test_a_modem_status_is_kept_and_a_new_sim_saved(fw):
    status = ModemStatus()
    fw._dispatch(Event(ev.MODEM, None, status))
    assert fw.modem_status is status
    assert fw.calls == [("save", "modem", {"iccid": ModemStatus.iccid,
                                           "imsi": ModemStatus.imsi})]
    fw._dispatch(Event(ev.MODEM, None, ModemStatus()))     # the same SIM: not saved again
    assert len(fw.calls) == 1


def test_a_maintenance_request_is_answered_on_the_main_thread(fw):
    reply = maintenance_handlers.Reply()
    fw._dispatch(Event(ev.MAINTENANCE, None, ({"cmd": "no-such"}, reply)))
    assert reply.get(0) == {"ok": False, "error": "'no-such' is not a main-loop request"}


def test_an_unknown_kind_or_a_failing_handler_does_not_stop_the_loop(fw, caplog):
    caplog.set_level(logging.WARNING, logger="firmware")
    fw._handle(Event("teleport", 1, None))
    assert "unknown kind 'teleport'" in caplog.text
    fw.rpc = None                                  # receive() now raises
    fw._handle(LinkEvent(ev.FRAME, "[]"))
    assert "event 'frame' failed" in caplog.text


def test_events_are_named_tuples_equal_to_plain_ones():
    card = Event(ev.CARD, None, "04A1B2C3")
    assert card == ("card", None, "04A1B2C3")
    assert (card.kind, card.connector, card.value) == ("card", None, "04A1B2C3")
    up = LinkEvent(ev.UP, None)
    assert up == ("up", None) and up.connector is None and up.kind == "up"
    with pytest.raises(AttributeError):
        card.value = "other"


class Reader:
    def __init__(self, uids):
        self.uids = list(uids)

    def poll(self):
        return self.uids.pop(0) if self.uids else None


def test_device_workers_send_events():
    events = queue.Queue()
    worker = RfidWorker(events, Reader(["04A1B2C3"]))
    worker.start()
    try:
        event = events.get(timeout=5)
    finally:
        worker.stop()
        worker.join(5)
    assert type(event) is Event and event == (ev.CARD, None, "04A1B2C3")
    meter = DeviceWorker("meter2", events, 2, "meter", 1.0)
    meter.failed("timeout", at_once=True)
    meter.succeeded()
    assert events.get_nowait() == Event(ev.FAULT, 2, ("PowerMeterFailure", "timeout"))
    assert events.get_nowait() == Event(ev.FAULT_CLEARED, 2, "PowerMeterFailure")
    reader = DeviceWorker("rfid", events, None, "rfid", 1.0)
    reader.failed("no answer", at_once=True)
    assert events.get_nowait() == Event(ev.FAULT, 0, ("ReaderFailure", "no answer"))


class _Clock:
    def __init__(self):
        self.t = 0.0

    def monotonic(self):
        return self.t


def _stopping_firmware(answer_after_ticks):
    """A bare Firmware whose engine answers its one pending CALL after so many
    ticks (None: never); each tick moves the clock on by 0.1 s."""
    f = object.__new__(Firmware)
    f.clock = _Clock()
    f.events = queue.Queue()
    f.ticks = 0

    class Rpc:
        pending = 1

    class Journal:
        def pending_count(self):
            return 0

    class Cp:
        connectors = {}
        journal = Journal()

        def tick(self):
            f.ticks += 1
            f.clock.t += 0.1
            if answer_after_ticks is not None and f.ticks >= answer_after_ticks:
                f.rpc.pending = 0
            return 1.0

    class Link:
        connected = True

    f.rpc, f.cp, f.link = Rpc(), Cp(), Link()
    return f


def test_a_restart_waits_for_the_calls_already_made():
    """A firmware update's restart comes from the transfer worker right after
    the engine sent InstallRebooting: the loop ends only once that CALL is
    answered (it is no journal message), within SHUTDOWN_GRACE."""
    f = _stopping_firmware(answer_after_ticks=3)
    f._graceful_stop()
    assert f.rpc.pending == 0 and f.ticks == 3 and f._running is False


def test_a_restart_does_not_wait_beyond_the_grace_for_an_unanswered_call():
    from firmware.main_loop import SHUTDOWN_GRACE
    f = _stopping_firmware(answer_after_ticks=None)
    f._graceful_stop()
    assert f.rpc.pending == 1 and f.clock.t >= SHUTDOWN_GRACE and f._running is False
