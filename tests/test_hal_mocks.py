"""The simulated world and devices of hal_mocks.sim."""

import threading
import time

import pytest

from drivers.hal import (CableLock, ControlPilot, Contactor, DeviceError, EnergyMeter, Hal,
                         Indicator, Modem, ModemStatus, RfidReader)
from hal_mocks.sim import (SimContactor, SimIndicator, SimLock, SimMeter, SimModem, SimPilot,
                           SimRfid, SimWorld, make_hal)
from ocpp_core.metering import MeterSample
from tests.support.device_fixtures import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def world(clock):
    w = SimWorld(clock=clock, meter_timeout=0.05, modem_timeout=0.05)
    yield w
    w.close()


def in_thread(call, expected=DeviceError):
    """Run call() in a thread that expects it to raise `expected`; returns
    (thread, outcomes): outcomes gets the exception, or what went wrong."""
    outcomes = []

    def run():
        try:
            call()
            outcomes.append("returned")
        except expected as e:
            outcomes.append(e)
        except Exception as e:   # reported by the test
            outcomes.append(repr(e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, outcomes


def start_charging(world, cid=1, amps=32):
    world.plug(cid)
    SimPilot(world, cid).set_offered_current(amps)
    SimContactor(world, cid).set(True)


def energy(world, cid=1):
    return SimMeter(world, cid).read().energy_wh


# --- make_hal -------------------------------------------------------------------------------

def test_make_hal_fixed_cable_has_no_lock(world):
    hal = make_hal(world)
    assert isinstance(hal, Hal)
    assert hal.bench is world
    assert isinstance(hal.rfid, RfidReader) and isinstance(hal.modem, Modem)
    assert isinstance(hal.indicator, Indicator)
    assert list(hal.connectors) == [1]
    devices = hal.connectors[1]
    assert devices["lock"] is None
    assert isinstance(devices["meter"], EnergyMeter)
    assert isinstance(devices["contactor"], Contactor)
    assert isinstance(devices["pilot"], ControlPilot)


def test_make_hal_socket_outlets_have_locks():
    w = SimWorld(number_of_connectors=2, fixed_cable=False)
    hal = make_hal(w)
    assert sorted(hal.connectors) == [1, 2]
    for cid in (1, 2):
        assert isinstance(hal.connectors[cid]["lock"], CableLock)
        assert hal.connectors[cid]["lock"].actuation_time <= 0.5
    w.close()


def test_hal_close_opens_the_contactors(world):
    hal = make_hal(world)
    hal.connectors[1]["contactor"].set(True)
    assert hal.connectors[1]["contactor"].feedback() is True
    hal.close()
    assert hal.connectors[1]["contactor"].feedback() is False


def test_bad_world_arguments():
    with pytest.raises(ValueError):
        SimWorld(number_of_connectors=0)
    with pytest.raises(ValueError):
        SimWorld(phases=4)


# --- EV and pilot ---------------------------------------------------------------------------

def test_auto_ev_follows_the_offer(world):
    pilot = SimPilot(world, 1)
    assert pilot.ev_state() == "A"
    assert world.plug(1) == "B"
    assert pilot.ev_state() == "B"
    pilot.set_offered_current(16)
    assert pilot.ev_state() == "C"
    pilot.set_offered_current(0)
    assert pilot.ev_state() == "B"
    pilot.set_offered_current(6)
    assert pilot.ev_state() == "C"
    world.unplug(1)
    assert pilot.ev_state() == "A"
    pilot.set_offered_current(16)          # nobody there to follow it
    assert pilot.ev_state() == "A"


def test_plug_while_current_is_offered_goes_to_c(world):
    SimPilot(world, 1).set_offered_current(16)
    world.plug(1)
    assert SimPilot(world, 1).ev_state() == "C"


def test_explicit_ev_state_turns_auto_off_until_the_next_plug(world):
    pilot = SimPilot(world, 1)
    world.plug(1)
    assert world.ev(1, "b") == "B"         # case-insensitive
    pilot.set_offered_current(16)
    assert pilot.ev_state() == "B"          # the EV does not want energy
    world.ev(1, "C")
    pilot.set_offered_current(0)
    assert pilot.ev_state() == "C"
    world.ev(1, "F")
    assert pilot.ev_state() == "F"
    world.plug(1)                           # auto again; nothing offered
    assert pilot.ev_state() == "B"
    pilot.set_offered_current(16)
    assert pilot.ev_state() == "C"


def test_ev_rejects_unknown_states_and_connectors(world):
    with pytest.raises(ValueError, match="A\\|B\\|C\\|D\\|E\\|F"):
        world.ev(1, "X")
    with pytest.raises(ValueError, match="unknown connector 2"):
        world.plug(2)
    with pytest.raises(ValueError, match="unknown connector"):
        world.plug(True)
    with pytest.raises(ValueError, match="unknown connector"):
        world.unplug("1")


def test_pilot_rejects_a_negative_offer(world):
    with pytest.raises(ValueError):
        SimPilot(world, 1).set_offered_current(-1)


def test_pilot_offline(world):
    pilot = SimPilot(world, 1)
    world.fault("pilot", "offline")
    with pytest.raises(DeviceError, match="pilot"):
        pilot.ev_state()
    with pytest.raises(DeviceError):
        pilot.set_offered_current(16)
    world.fault("pilot", "none")
    assert pilot.ev_state() == "A"


# --- energy ---------------------------------------------------------------------------------

def test_energy_integrates_power_over_time(world, clock):
    assert energy(world) == 1000.0
    start_charging(world, amps=32)          # 32 A x 230 V x 3 = 22080 W available
    world.set_power(1, 7400)
    clock.advance(3600)
    sample = SimMeter(world, 1).read()
    assert sample.energy_wh == pytest.approx(1000.0 + 7400.0)
    assert sample.power_w == 7400.0
    assert sample.current_a == pytest.approx((10.725, 10.725, 10.725), abs=0.001)
    assert sample.voltage_v == (230.1, 229.8, 230.4)
    assert sample.frequency_hz == 50.0
    assert isinstance(sample, MeterSample)


def test_power_is_limited_by_the_offer(world, clock):
    start_charging(world, amps=6)           # 6 x 230 x 3 = 4140 W
    clock.advance(1800)
    sample = SimMeter(world, 1).read()
    assert sample.power_w == pytest.approx(4140.0)
    assert sample.energy_wh == pytest.approx(1000.0 + 2070.0)


def test_changes_are_booked_at_the_old_power(world, clock):
    start_charging(world, amps=32)
    clock.advance(1800)                     # 0.5 h at 7400 W
    world.set_power(1, 3000)
    clock.advance(1800)                     # 0.5 h at 3000 W
    world.ev(1, "B")                        # EV pauses
    clock.advance(3600)
    world.ev(1, "D")                        # D draws too
    clock.advance(360)                      # 0.1 h at 3000 W
    SimContactor(world, 1).set(False)
    clock.advance(3600)
    assert energy(world) == pytest.approx(1000.0 + 3700.0 + 1500.0 + 300.0)


def test_no_power_without_closed_contacts_or_ev_demand(world, clock):
    world.plug(1)
    SimPilot(world, 1).set_offered_current(16)
    clock.advance(3600)                     # contactor open
    assert energy(world) == 1000.0
    SimContactor(world, 1).set(True)
    world.ev(1, "E")
    clock.advance(3600)
    assert energy(world) == 1000.0
    assert SimMeter(world, 1).read().current_a == (0.0, 0.0, 0.0)


def test_single_phase_world(clock):
    w = SimWorld(clock=clock, phases=1)
    start_charging(w, amps=32)              # 7360 W available
    clock.advance(3600)
    sample = SimMeter(w, 1).read()
    assert sample.power_w == 7360.0
    assert sample.current_a == (32.0,)
    assert sample.voltage_v == (230.1,)
    assert sample.energy_wh == pytest.approx(1000.0 + 7360.0)
    w.close()


def test_initial_energy(clock):
    w = SimWorld(clock=clock, initial_energy_wh=52000.5)
    assert energy(w) == 52000.5
    w.close()


def test_set_power_validation(world):
    world.set_power(1, 0)
    world.set_power(1, 100000)
    world.set_power(1, 2500.5)
    for bad in (-1, 100001, True, "7400", float("nan"), None):
        with pytest.raises(ValueError, match="power_w"):
            world.set_power(1, bad)


def test_connectors_are_independent(clock):
    w = SimWorld(number_of_connectors=2, fixed_cable=False, clock=clock)
    start_charging(w, cid=2, amps=16)
    clock.advance(3600)
    snap = w.snapshot()["connectors"]
    assert snap[1]["energy_wh"] == 1000.0 and snap[1]["ev_state"] == "A"
    assert snap[2]["energy_wh"] == pytest.approx(1000.0 + 7400.0)
    w.close()


# --- contactor ------------------------------------------------------------------------------

def test_contactor_feedback_follows_the_coil(world):
    contactor = SimContactor(world, 1)
    assert contactor.feedback() is False
    contactor.set(True)
    assert contactor.feedback() is True
    contactor.set(False)
    assert contactor.feedback() is False


def test_welded_contactor_stays_closed(world, clock):
    contactor = SimContactor(world, 1)
    start_charging(world)
    world.fault("contactor", "welded")
    contactor.set(False)
    assert contactor.feedback() is True
    clock.advance(3600)                     # welded contacts still carry the load
    assert energy(world) == pytest.approx(1000.0 + 7400.0)
    snap = world.snapshot()["connectors"][1]
    assert snap["contactor"] is True and snap["coil"] is False
    world.fault("contactor", "none")
    assert contactor.feedback() is False


def test_stuck_contactor_never_closes(world, clock):
    contactor = SimContactor(world, 1)
    world.fault("contactor", "stuck")
    start_charging(world)
    assert contactor.feedback() is False
    clock.advance(3600)
    assert energy(world) == 1000.0
    world.fault("contactor", "none")
    assert contactor.feedback() is True


# --- lock -----------------------------------------------------------------------------------

def test_lock_engages_and_releases():
    w = SimWorld(fixed_cable=False)
    lock = SimLock(w, 1)
    assert lock.feedback() is False
    lock.set(True)
    assert lock.feedback() is True
    assert w.snapshot()["connectors"][1]["locked"] is True
    lock.set(False)
    assert lock.feedback() is False
    assert w.snapshot()["connectors"][1]["locked"] is False
    w.close()


def test_stuck_lock_freezes_where_it_is():
    w = SimWorld(fixed_cable=False)
    lock = SimLock(w, 1)
    w.fault("lock", "stuck")
    lock.set(True)
    assert lock.feedback() is False         # never engages
    w.fault("lock", "none")
    lock.set(True)
    assert lock.feedback() is True
    w.fault("lock", "stuck")
    lock.set(False)
    assert lock.feedback() is True          # nor releases
    w.close()


def test_fixed_cable_has_no_lock(world):
    with pytest.raises(ValueError, match="this station has a fixed cable: no lock"):
        world.fault("lock", "stuck")
    with pytest.raises(ValueError, match="fixed cable"):
        SimLock(world, 1)
    assert world.snapshot()["connectors"][1]["locked"] is True


# --- faults ---------------------------------------------------------------------------------

@pytest.mark.parametrize("device, mode, valid", [
    ("meter", "welded", "none|offline"),
    ("rfid", "stuck", "none|offline"),
    ("contactor", "offline", "none|welded|stuck"),
    ("modem", "welded", "none|offline"),
    ("pilot", "stuck", "none|offline"),
])
def test_invalid_fault_modes(world, device, mode, valid):
    with pytest.raises(ValueError) as e:
        world.fault(device, mode)
    assert valid in str(e.value) and "\n" not in str(e.value)


def test_unknown_fault_device(world):
    with pytest.raises(ValueError, match="meter\\|rfid\\|contactor\\|lock\\|modem"):
        world.fault("toaster", "offline")


def test_socket_outlet_lock_fault_modes():
    w = SimWorld(fixed_cable=False)
    with pytest.raises(ValueError, match="none\\|stuck"):
        w.fault("lock", "offline")
    w.fault("lock", "stuck")
    assert w.snapshot()["faults"]["lock"] == "stuck"
    w.close()


def test_meter_offline_blocks_for_the_timeout(world, clock):
    meter = SimMeter(world, 1)
    start_charging(world)
    world.fault("meter", "offline")
    t0 = time.monotonic()
    with pytest.raises(DeviceError) as e:
        meter.read()
    assert time.monotonic() - t0 >= 0.05
    assert str(e.value) == "meter did not answer (Modbus timeout 0.05 s)"
    clock.advance(3600)                     # energy still flows while the meter is silent
    world.fault("meter", "none")
    assert meter.read().energy_wh == pytest.approx(1000.0 + 7400.0)


def test_default_timeouts():
    w = SimWorld()
    assert w.meter_timeout == 1.0 and w.modem_timeout == 2.0
    w.close()


def test_close_interrupts_a_blocked_meter_read():
    w = SimWorld(meter_timeout=60.0)
    w.fault("meter", "offline")
    t0 = time.monotonic()
    t, outcomes = in_thread(SimMeter(w, 1).read)
    assert w.wait_blocked(1, timeout=5)
    assert w.blocked_calls() == 1
    w.close()
    t.join(5)
    assert not t.is_alive()
    assert len(outcomes) == 1 and isinstance(outcomes[0], DeviceError)
    assert time.monotonic() - t0 < 10
    assert [str(e) for e in outcomes] == ["meter did not answer (Modbus timeout 60.0 s)"]
    assert w.blocked_calls() == 0
    assert w.closed
    with pytest.raises(DeviceError):        # after close(): fails at once
        SimMeter(w, 1).read()


def test_other_devices_answer_while_the_meter_blocks():
    w = SimWorld(meter_timeout=60.0)
    w.fault("meter", "offline")
    t, outcomes = in_thread(SimMeter(w, 1).read)
    assert w.wait_blocked(1, timeout=5)
    w.plug(1)                               # the lock is not held while blocking
    assert SimPilot(w, 1).ev_state() == "B"
    assert w.snapshot()["faults"]["meter"] == "offline"
    w.close()
    t.join(5)
    assert not t.is_alive()
    assert len(outcomes) == 1 and isinstance(outcomes[0], DeviceError)


# --- RFID -----------------------------------------------------------------------------------

def test_tap_is_one_presentation(world):
    rfid = SimRfid(world)
    assert rfid.poll() is None
    assert world.tap("04a1b2c3") == ("04A1B2C3", True)
    assert rfid.poll() == "04A1B2C3"
    assert rfid.poll() is None
    world.tap("AA")
    world.tap("BB")
    assert [rfid.poll(), rfid.poll(), rfid.poll()] == ["AA", "BB", None]


@pytest.mark.parametrize("uid", ["", "x" * 21, "04-A1", "04 A1", None, 42, "é"])
def test_tap_rejects_bad_uids(world, uid):
    with pytest.raises(ValueError, match="uid"):
        world.tap(uid)


def test_tap_accepts_up_to_20_characters(world):
    assert world.tap("a" * 20) == ("A" * 20, True)


def test_rfid_offline(world):
    rfid = SimRfid(world)
    world.fault("rfid", "offline")
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="RFID reader does not answer \\(VersionReg 0x00\\)"):
        rfid.poll()
    assert time.monotonic() - t0 < 0.5     # at once
    assert world.tap("04A1") == ("04A1", False)   # the reader did not see the card
    world.fault("rfid", "none")
    assert rfid.poll() is None


# --- modem and indicator --------------------------------------------------------------------

def test_modem_status(world):
    status = SimModem(world).status()
    assert isinstance(status, ModemStatus)
    assert status.signal_dbm == -71
    assert status.registered is True and status.sim_ready is True
    assert status.operator == "Bench Telecom"
    assert status.iccid.isdigit() and len(status.iccid) in (19, 20)
    assert status.imsi.isdigit() and len(status.imsi) == 15
    assert status.imei.isdigit() and len(status.imei) == 15


def test_modem_offline_blocks_then_fails(world):
    modem = SimModem(world)
    world.fault("modem", "offline")
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="modem"):
        modem.status()
    assert time.monotonic() - t0 >= 0.05
    modem.reset()
    assert world.snapshot()["modem_resets"] == 1
    world.fault("modem", "none")
    assert modem.status().registered


def test_close_interrupts_a_blocked_modem():
    w = SimWorld(modem_timeout=60.0)
    w.fault("modem", "offline")
    t, outcomes = in_thread(SimModem(w).status)
    assert w.wait_blocked(1, timeout=5)
    w.close()
    t.join(5)
    assert not t.is_alive()
    assert len(outcomes) == 1 and isinstance(outcomes[0], DeviceError)


def test_indicator_records_the_last_state(world):
    indicator = SimIndicator(world)
    assert indicator.last is None
    indicator.show("charging", blink_repeat=3, intensity=80)
    assert indicator.last == {"state": "charging", "blink_repeat": 3, "intensity": 80}
    assert world.snapshot()["indicator"]["state"] == "charging"
    standalone = SimIndicator()
    standalone.show("faulted")
    assert standalone.last["state"] == "faulted"


# --- snapshot and threads -------------------------------------------------------------------

def test_snapshot_facts(world, clock):
    start_charging(world, amps=16)
    clock.advance(360)
    snap = world.snapshot()
    c = snap["connectors"][1]
    for key in ("ev_state", "contactor", "locked", "energy_wh", "offered_a", "power_w"):
        assert key in c
    assert c["ev_state"] == "C" and c["contactor"] is True and c["offered_a"] == 16.0
    assert c["power_w"] == 7400.0
    assert c["energy_wh"] == pytest.approx(1740.0)
    assert snap["faults"] == {"meter": "none", "rfid": "none", "contactor": "none",
                              "lock": "none", "modem": "none", "pilot": "none"}


def test_concurrent_use_is_consistent():
    w = SimWorld()
    stop = threading.Event()
    errors = []

    def device_thread():
        pilot, contactor, meter = SimPilot(w, 1), SimContactor(w, 1), SimMeter(w, 1)
        last = 0.0
        try:
            while not stop.is_set():
                pilot.set_offered_current(16)
                contactor.set(True)
                e = meter.read().energy_wh
                assert e >= last
                last = e
                pilot.ev_state()
        except Exception as e:   # reported below
            errors.append(e)

    threads = [threading.Thread(target=device_thread) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(300):
        w.plug(1) if i % 2 else w.ev(1, "C")
        w.set_power(1, 1000 + i)
        w.snapshot()
    stop.set()
    for t in threads:
        t.join(5)
    assert not errors
    w.close()
