"""The GPIO drivers (drivers/gpio_devices.py) on the fake RPi.GPIO wired to the
simulated world (hal_mocks/fake_gpio.py)."""

import importlib.abc
import importlib.machinery
import queue
import subprocess
import sys
import time

import pytest

from drivers.gpio_devices import GpioBus, GpioContactor, GpioIndicator, GpioLock, build_devices
from drivers.hal import CableLock, Contactor, DeviceError, Indicator
from firmware.devices import ContactorWorker, LockWorker
from hal_mocks.fake_gpio import (CONTACTOR_COIL, CONTACTOR_FEEDBACK, INDICATOR, LOCK_FEEDBACK,
                                 LOCK_MOTOR, LOCK_PULSE_LOCK, LOCK_PULSE_UNLOCK, FakeGPIO,
                                 install_fake_gpio, wiring_for)
from hal_mocks.sim import SimContactor, SimWorld
from tests.support.firmware_process import ROOT

COIL, FEEDBACK = 17, 27
LOCK_PIN, UNLOCK_PIN, LOCK_FB, MOTOR = 22, 23, 24, 16
RED, GREEN, BLUE = 5, 6, 13

CONTACTOR_WIRING = {COIL: (CONTACTOR_COIL, 1), FEEDBACK: (CONTACTOR_FEEDBACK, 1)}
PULSE_LOCK_WIRING = {LOCK_PIN: (LOCK_PULSE_LOCK, 1), UNLOCK_PIN: (LOCK_PULSE_UNLOCK, 1),
                     LOCK_FB: (LOCK_FEEDBACK, 1)}
RGB_WIRING = {RED: (INDICATOR, "red"), GREEN: (INDICATOR, "green"), BLUE: (INDICATOR, "blue")}


@pytest.fixture
def world():
    w = SimWorld(fixed_cable=False)
    yield w
    w.close()


@pytest.fixture
def rig(world):
    """(fake, bus) with a contactor, a pulse lock and an RGB LED wired."""
    wiring = dict(CONTACTOR_WIRING)
    wiring.update(PULSE_LOCK_WIRING)
    wiring.update(RGB_WIRING)
    fake = FakeGPIO(world, wiring)
    bus = GpioBus(fake)
    yield fake, bus
    bus.close()
    assert None not in fake.cleanup_calls, "GPIO.cleanup() without a pin list"


def contactor(bus, **kw):
    kw.setdefault("feedback_pin", FEEDBACK)
    return GpioContactor(bus, COIL, **kw)


def pulse_lock(bus, **kw):
    kw.setdefault("pulse_ms", 20)
    kw.setdefault("actuation_time", 0.5)
    return GpioLock(bus, lock_pin=LOCK_PIN, unlock_pin=UNLOCK_PIN, feedback_pin=LOCK_FB, **kw)


def wait_for(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)   # polling a fake pin: there is no notification to wait on
    return predicate()


def off_transitions(fake, pin, since):
    """How many times the pin went from lit to dark after `since`."""
    levels = [duty for t, p, duty in list(fake.history) if p == pin and t >= since]
    return sum(1 for a, b in zip(levels, levels[1:]) if a and not b)


def next_event(events, kind, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if event[0] == kind:
            return event
    raise AssertionError("no %r event" % kind)


# --- the library: lazy import, BCM once, readable errors ------------------------------------

def test_importing_the_drivers_does_not_import_the_gpio_library():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, drivers.gpio_devices as g; g.GpioBus(); "
                               "print(sorted(m for m in sys.modules if m.startswith('RPi')))"],
        cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_library_is_imported_on_first_use_from_sys_modules(world):
    fake = FakeGPIO(world, CONTACTOR_WIRING)
    had = "RPi.GPIO" in sys.modules
    undo = install_fake_gpio(fake)
    try:
        from RPi import GPIO
        assert GPIO is fake
        bus = GpioBus()
        assert fake.calls_of("setmode") == []
        c = contactor(bus)
        assert fake.setmode_calls == [FakeGPIO.BCM]
        c.set(True)
        assert world.snapshot()["connectors"][1]["contactor"] is True
        bus.close()
    finally:
        undo()
    assert ("RPi.GPIO" in sys.modules) == had


def test_a_missing_library_is_a_readable_device_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "RPi", None)       # `import RPi` raises ImportError
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    bus = GpioBus()
    with pytest.raises(DeviceError) as e:
        GpioContactor(bus, COIL)
    assert str(e.value) == ("cannot use GPIO: the RPi.GPIO module is not installed "
                            "(on the Pi: pip install rpi-lgpio)")
    assert bus.pins == {}          # the pin claim was given back


class _NotAPi(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import RPi.GPIO` as on a PC with RPi.GPIO installed: RuntimeError at import."""

    def find_spec(self, name, path=None, target=None):
        if name in ("RPi", "RPi.GPIO"):
            return importlib.machinery.ModuleSpec(name, self, is_package=name == "RPi")
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        if module.__name__ == "RPi.GPIO":
            raise RuntimeError("This module can only be run on a Raspberry Pi!")


def test_runtime_error_at_import_off_a_pi(monkeypatch):
    monkeypatch.delitem(sys.modules, "RPi", raising=False)
    monkeypatch.delitem(sys.modules, "RPi.GPIO", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NotAPi()] + sys.meta_path)
    with pytest.raises(DeviceError) as e:
        GpioContactor(GpioBus(), COIL)
    message = str(e.value)
    assert message.startswith("cannot use GPIO: This module can only be run on a Raspberry Pi! (")
    assert "gpio group" in message and "rpi-lgpio" in message and "\n" not in message


@pytest.mark.parametrize("error, text", [
    (RuntimeError("Not running on a RPi!"), "cannot use GPIO: Not running on a RPi! (is the "
                                            "user in the gpio group?"),
    (RuntimeError("No access to /dev/mem.  Try running as root!\nmore"),
     "cannot use GPIO: No access to /dev/mem.  Try running as root! (is the user in the gpio "
     "group?)"),
    (PermissionError(13, "Permission denied", "/dev/gpiomem"),
     "cannot use GPIO: [Errno 13] Permission denied: '/dev/gpiomem' (is the user in the gpio "
     "group?)"),
])
def test_library_errors_become_one_line_device_errors(world, error, text):
    fake = FakeGPIO(world, CONTACTOR_WIRING)
    fake.fail = error
    bus = GpioBus(fake)
    with pytest.raises(DeviceError) as e:
        contactor(bus)
    assert str(e.value).startswith(text)
    assert "\n" not in str(e.value)
    assert bus.pins == {}
    fake.fail = None               # the library works again: the same pins can be taken
    contactor(bus)
    bus.close()


def test_bcm_numbering_is_set_once_and_warnings_are_off(rig):
    fake, bus = rig
    contactor(bus)
    pulse_lock(bus)
    GpioIndicator(bus, RED, GREEN, BLUE)
    assert fake.setmode_calls == [FakeGPIO.BCM]
    assert fake.calls_of("setwarnings") == [(False,)]


def test_bcm_already_set_by_another_module_is_fine(rig):
    fake, bus = rig
    fake.setmode(FakeGPIO.BCM)
    contactor(bus)
    assert fake.setmode_calls == [FakeGPIO.BCM]


def test_board_numbering_set_by_another_module_is_refused(rig):
    fake, bus = rig
    fake.setmode(FakeGPIO.BOARD)
    with pytest.raises(DeviceError, match="BOARD pin numbering; these drivers use BCM"):
        contactor(bus)


# --- contactor ---------------------------------------------------------------------------------

def test_contactor_is_driven_open_on_construction_and_on_close(rig, world):
    fake, bus = rig
    SimContactor(world, 1).set(True)           # left closed, e.g. by a crashed process
    c = contactor(bus)
    assert isinstance(c, Contactor)
    assert ("setup", (COIL, FakeGPIO.OUT, None, FakeGPIO.LOW)) in fake.calls
    assert ("setup", (FEEDBACK, FakeGPIO.IN, FakeGPIO.PUD_UP, None)) in fake.calls
    assert world.snapshot()["connectors"][1]["coil"] is False
    assert c.feedback() is False
    c.set(True)
    assert world.snapshot()["connectors"][1]["contactor"] is True
    assert c.feedback() is True
    c.close()
    assert world.snapshot()["connectors"][1]["contactor"] is False
    assert [duty for t, p, duty in fake.history if p == COIL][-2:] == [0.0, None]   # open, released
    assert fake.cleanup_calls == [[COIL, FEEDBACK]]
    c.close()                                  # idempotent
    assert fake.cleanup_calls == [[COIL, FEEDBACK]]


def test_bus_close_opens_the_contactor_and_cleans_up_only_its_own_pins(rig, world):
    fake, bus = rig
    fake.setmode(FakeGPIO.BCM)
    fake.setup(4, FakeGPIO.OUT, initial=FakeGPIO.HIGH)   # somebody else's pin
    c = contactor(bus)
    pulse_lock(bus)
    c.set(True)
    bus.close()
    assert world.snapshot()["connectors"][1]["contactor"] is False
    assert fake.cleanup_calls and None not in fake.cleanup_calls
    cleaned = [pin for pins in fake.cleanup_calls for pin in pins]
    assert sorted(cleaned) == sorted([COIL, FEEDBACK, LOCK_PIN, UNLOCK_PIN, LOCK_FB])
    assert fake.is_set_up(4) and fake.level(4) == 1
    with pytest.raises(DeviceError, match="GPIO is closed"):
        c.set(True)
    bus.close()                                # idempotent
    assert None not in fake.cleanup_calls


def test_active_low_coil_and_feedback(world):
    fake = FakeGPIO(world, {COIL: (CONTACTOR_COIL, 1, False),
                            FEEDBACK: (CONTACTOR_FEEDBACK, 1, False)})
    bus = GpioBus(fake)
    c = contactor(bus, active_high=False, feedback_active_high=False)
    assert ("setup", (COIL, FakeGPIO.OUT, None, FakeGPIO.HIGH)) in fake.calls   # HIGH = open
    assert fake.level(COIL) == 1 and world.snapshot()["connectors"][1]["coil"] is False
    assert c.feedback() is False
    c.set(True)
    assert fake.level(COIL) == 0
    assert world.snapshot()["connectors"][1]["contactor"] is True
    assert c.feedback() is True
    bus.close()
    assert world.snapshot()["connectors"][1]["contactor"] is False


def test_a_polarity_that_does_not_match_the_wiring_shows_as_a_feedback_mismatch(world):
    fake = FakeGPIO(world, {COIL: (CONTACTOR_COIL, 1), FEEDBACK: (CONTACTOR_FEEDBACK, 1, False)})
    c = contactor(GpioBus(fake))               # configured active high: wrong for this board
    assert c.feedback() is True                # "closed" while commanded open: reported welded


def test_welded_contactor_reads_closed_while_commanded_open(rig, world):
    fake, bus = rig
    c = contactor(bus)
    world.fault("contactor", "welded")
    c.set(False)
    assert c.feedback() is True


def test_stuck_contactor_reads_open_while_commanded_closed(rig, world):
    fake, bus = rig
    c = contactor(bus)
    world.fault("contactor", "stuck")
    c.set(True)
    assert world.snapshot()["connectors"][1]["coil"] is True
    assert c.feedback() is False


def test_without_feedback_pin_feedback_is_the_commanded_state(rig, world):
    fake, bus = rig
    c = GpioContactor(bus, COIL)
    assert c.has_feedback is False
    world.fault("contactor", "welded")
    assert c.feedback() is False
    c.set(True)
    assert c.feedback() is True


def test_debounce_rejects_a_glitch_and_follows_a_bouncing_contact(rig):
    fake, bus = rig
    c = contactor(bus, debounce_ms=20)
    fake.inject(FEEDBACK, [0, 1, 0, 0, 0])         # one spike while open
    t0 = time.monotonic()
    assert c.feedback() is False
    assert time.monotonic() - t0 >= 0.015          # the samples are spread over debounce_ms
    fake.inject(FEEDBACK, [1, 1, 0, 1, 0])         # bouncing, mostly closed
    assert c.feedback() is True
    c.set(True)
    fake.inject(FEEDBACK, [1, 0, 1, 1, 1])         # one dropout while closed
    assert c.feedback() is True
    assert c.feedback() is True                    # the wire again


def test_without_debounce_a_single_glitch_gets_through(rig):
    fake, bus = rig
    c = contactor(bus, debounce_ms=0)
    fake.inject(FEEDBACK, [1])
    assert c.feedback() is True                    # what the debounce is for
    assert c.feedback() is False


def test_contactor_worker_reports_a_welded_contactor_and_its_recovery(rig, world):
    fake, bus = rig
    events = queue.Queue()
    worker = ContactorWorker(events, 1, contactor(bus), interval=0.05)
    worker.start()
    try:
        world.fault("contactor", "welded")
        kind, cid, (code, info) = next_event(events, "fault")
        assert (cid, code) == (1, "PowerSwitchFailure") and "welded" in info
        world.fault("contactor", "none")
        assert next_event(events, "fault_cleared")[1:] == (1, "PowerSwitchFailure")
    finally:
        worker.stop()
        worker.join(2)


def test_gpio_errors_at_run_time_are_device_errors_naming_the_pin(rig):
    fake, bus = rig
    c = contactor(bus)
    fake.cleanup([COIL])                           # taken away under the driver's feet
    with pytest.raises(DeviceError) as e:
        c.set(True)
    assert str(e.value) == ("GPIO17 (contactor_pin): "
                            "The GPIO channel has not been set up as an OUTPUT")


# --- cable lock ---------------------------------------------------------------------------------

def test_pulse_lock_engages_and_releases_within_its_actuation_time(rig, world):
    fake, bus = rig
    lock = pulse_lock(bus)
    assert isinstance(lock, CableLock) and lock.actuator == "pulse"
    assert fake.level(LOCK_PIN) == 0 and fake.level(UNLOCK_PIN) == 0
    t0 = time.monotonic()
    lock.set(True)
    assert 0.018 <= time.monotonic() - t0 < 0.5     # the pulse
    assert fake.level(LOCK_PIN) == 0 and fake.level(UNLOCK_PIN) == 0
    assert [d for t, p, d in fake.history if p == LOCK_PIN and t >= t0] == [100.0, 0.0]
    assert wait_for(lock.feedback, lock.actuation_time)
    assert world.snapshot()["connectors"][1]["locked"] is True
    lock.set(False)
    assert wait_for(lambda: not lock.feedback(), lock.actuation_time)
    assert world.snapshot()["connectors"][1]["locked"] is False
    assert fake.hazards == []


def test_lock_worker_sees_the_lock_follow(rig):
    fake, bus = rig
    events = queue.Queue()
    worker = LockWorker(events, 1, pulse_lock(bus), interval=0.05)
    worker.start()
    try:
        assert next_event(events, "lock") == ("lock", 1, False)
        worker.set(True)
        assert next_event(events, "lock") == ("lock", 1, True)
        worker.set(False)
        assert next_event(events, "lock") == ("lock", 1, False)
    finally:
        worker.stop()
        worker.join(2)


def test_stuck_lock_does_not_confirm(rig, world):
    fake, bus = rig
    lock = pulse_lock(bus, actuation_time=0.1)
    world.fault("lock", "stuck")
    lock.set(True)
    assert not wait_for(lock.feedback, lock.actuation_time)
    assert world.snapshot()["connectors"][1]["locked"] is False


def test_level_lock_active_low(world):
    fake = FakeGPIO(world, {MOTOR: (LOCK_MOTOR, 1, False), LOCK_FB: (LOCK_FEEDBACK, 1)})
    bus = GpioBus(fake)
    lock = GpioLock(bus, MOTOR, LOCK_FB, active_high=False)
    assert lock.actuator == "level"
    assert ("setup", (MOTOR, FakeGPIO.OUT, None, FakeGPIO.HIGH)) in fake.calls   # released
    lock.set(True)
    assert fake.level(MOTOR) == 0 and lock.feedback() is True
    lock.set(False)
    assert fake.level(MOTOR) == 1 and lock.feedback() is False
    lock.set(True)
    bus.close()                                # released, the solenoid lets go
    assert world.snapshot()["connectors"][1]["locked"] is False
    assert fake.cleanup_calls == [[MOTOR, LOCK_FB]]


def test_fake_flags_both_sides_of_a_lock_bridge_active(world):
    fake = FakeGPIO(world, PULSE_LOCK_WIRING)
    fake.setmode(FakeGPIO.BCM)
    fake.setup([LOCK_PIN, UNLOCK_PIN], FakeGPIO.OUT, initial=0)
    fake.output(LOCK_PIN, 1)
    fake.output(UNLOCK_PIN, 1)
    assert len(fake.hazards) == 1 and "short-circuited" in fake.hazards[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(lock_pin=LOCK_PIN), "lock_actuator is pulse: set both lock_pin and lock_unlock_pin"),
    (dict(actuator="level", lock_pin=LOCK_PIN, unlock_pin=UNLOCK_PIN),
     "lock_actuator is level: set lock_pin, the one actuator pin (and not lock_unlock_pin)"),
    (dict(motor_pin=MOTOR, actuator="spring"), "lock_actuator must be one of level|pulse"),
    (dict(motor_pin=MOTOR, pulse_ms=0), "lock_pulse_ms must be a number from 10 to 5000 ms"),
    (dict(motor_pin=MOTOR, active_high="low"), "lock_active_high must be True or False"),
    (dict(motor_pin=MOTOR, name="lock2", active_high=1), "lock2_active_high must be True or False"),
])
def test_lock_settings_are_checked(rig, kwargs, message):
    fake, bus = rig
    with pytest.raises(ValueError) as e:
        GpioLock(bus, **kwargs)
    assert str(e.value).startswith(message)
    assert bus.pins == {} and fake.calls_of("setup") == []


# --- indicator ----------------------------------------------------------------------------------

def test_indicator_shows_the_state_colour_at_the_intensity(rig, world):
    fake, bus = rig
    led = GpioIndicator(bus, RED, GREEN, BLUE, blink_s=0.02)
    assert isinstance(led, Indicator)
    led.show("available", blink_repeat=0, intensity=30)
    assert led.wait_settled()
    assert (fake.duty(RED), fake.duty(GREEN), fake.duty(BLUE)) == (0.0, 30.0, 0.0)
    assert world.snapshot()["indicator"]["colour"] == "green"
    for state, colour in (("charging", "blue"), ("suspended", "yellow"), ("faulted", "red"),
                          ("unavailable", "magenta"), ("preparing", "cyan"),
                          ("offline", "white")):
        led.show(state, blink_repeat=1, intensity=100)
        assert led.wait_settled()
        assert wait_for(lambda: world.snapshot()["indicator"]["colour"] == colour), state
    with pytest.raises(ValueError, match="unknown indicator state 'party'"):
        led.show("party")


def test_indicator_blinks_on_a_change_without_blocking(rig):
    fake, bus = rig
    led = GpioIndicator(bus, RED, GREEN, BLUE, blink_s=0.1)
    t0 = time.monotonic()
    led.show("charging", blink_repeat=3, intensity=80)
    assert time.monotonic() - t0 < 0.1          # the 0.3 s of blinking are the LED thread's
    assert led.wait_settled(2.0)
    assert time.monotonic() - t0 >= 3 * 0.1 * 0.9
    assert off_transitions(fake, BLUE, t0) == 3
    assert fake.duty(BLUE) == 80.0 and fake.duty(RED) == 0.0
    t1 = time.monotonic()
    led.show("charging", blink_repeat=3, intensity=40)   # same state: no blinking
    assert led.wait_settled()
    assert off_transitions(fake, BLUE, t1) == 0 and fake.duty(BLUE) == 40.0


def test_a_new_state_interrupts_the_blinking(rig):
    fake, bus = rig
    led = GpioIndicator(bus, RED, GREEN, BLUE, blink_s=0.5)
    led.show("charging", blink_repeat=10)
    led.show("available", blink_repeat=0, intensity=60)
    assert led.wait_settled(0.5)
    assert wait_for(lambda: (fake.duty(GREEN), fake.duty(BLUE)) == (60.0, 0.0))


def test_faulted_keeps_blinking(rig):
    fake, bus = rig
    led = GpioIndicator(bus, RED, GREEN, BLUE, blink_s=0.04)
    t0 = time.monotonic()
    led.show("faulted", blink_repeat=0, intensity=100)
    assert led.wait_settled()
    assert wait_for(lambda: off_transitions(fake, RED, t0) >= 3)


def test_active_low_rgb_led_and_dark_after_close(world):
    fake = FakeGPIO(world, dict((pin, (INDICATOR, colour, False)) for pin, colour in
                                ((RED, "red"), (GREEN, "green"), (BLUE, "blue"))))
    bus = GpioBus(fake)
    led = GpioIndicator(bus, RED, GREEN, BLUE, active_high=False)
    assert (fake.duty(RED), fake.duty(GREEN), fake.duty(BLUE)) == (100.0, 100.0, 100.0)
    led.show("available", blink_repeat=0, intensity=25)
    assert led.wait_settled()
    assert (fake.duty(RED), fake.duty(GREEN)) == (100.0, 75.0)
    assert world.snapshot()["indicator"] == {"colour": "green",
                                             "leds": {"red": 0.0, "green": 25.0, "blue": 0.0}}
    bus.close()
    for pin in (RED, GREEN, BLUE):       # PWM.stop() drives LOW: lit, so HIGH again after it
        last = [d for t, p, d in fake.history if p == pin and d is not None][-1]
        assert last == 100.0, pin
    assert fake.cleanup_calls == [[RED, GREEN, BLUE]]


def test_single_led_without_pwm(world):
    fake = FakeGPIO(world, {RED: (INDICATOR, "led")}, pwm=False)
    assert not hasattr(fake, "PWM")
    bus = GpioBus(fake)
    led = GpioIndicator(bus, pin=RED, blink_s=0.04)
    led.show("charging", blink_repeat=0, intensity=10)
    assert led.wait_settled()
    assert fake.level(RED) == 1 and fake.calls_of("PWM") == []
    led.show("unavailable", blink_repeat=0)
    assert led.wait_settled() and fake.level(RED) == 0
    t0 = time.monotonic()
    led.show("faulted", blink_repeat=0)
    assert wait_for(lambda: off_transitions(fake, RED, t0) >= 2)
    led.show("available", blink_repeat=0, intensity=0)   # intensity 0: dark
    assert led.wait_settled() and fake.level(RED) == 0
    bus.close()


def test_a_gpio_failure_in_the_led_thread_is_raised_by_the_next_show(world):
    fake = FakeGPIO(world, RGB_WIRING, pwm=False)
    bus = GpioBus(fake)
    led = GpioIndicator(bus, RED, GREEN, BLUE)
    fake.cleanup([RED])
    led.show("faulted", blink_repeat=0)
    assert led.wait_settled()
    assert wait_for(lambda: led._error is not None)
    with pytest.raises(DeviceError, match=r"GPIO5 \(led_red_pin\): The GPIO channel has "
                                          r"not been set up as an OUTPUT"):
        led.show("available")


def test_indicator_needs_one_led_or_three(rig):
    fake, bus = rig
    with pytest.raises(ValueError, match="set either led_pin .one LED. or all of "
                                         "led_red_pin, led_green_pin and led_blue_pin"):
        GpioIndicator(bus, RED, GREEN)


# --- pins -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("pin", [28, -1, "17", 17.0, True])
def test_pins_must_be_header_gpio_numbers(rig, pin):
    fake, bus = rig
    with pytest.raises(ValueError) as e:
        GpioContactor(bus, pin)
    assert str(e.value) == "contactor_pin must be a BCM GPIO number 0..27, not %r" % (pin,)
    assert fake.calls_of("setup") == []


def test_a_pin_is_used_once(rig):
    fake, bus = rig
    with pytest.raises(ValueError, match="^contactor_feedback_pin: GPIO17 is already used by "
                                         "contactor_pin$"):
        GpioContactor(bus, COIL, feedback_pin=COIL)
    contactor(bus)
    with pytest.raises(ValueError) as e:
        GpioLock(bus, lock_pin=LOCK_PIN, unlock_pin=FEEDBACK)
    assert str(e.value) == "lock_unlock_pin: GPIO27 is already used by contactor_feedback_pin"
    assert not fake.is_set_up(LOCK_PIN)                # all or nothing
    bus.reserve("rfid_reset_pin", 25)
    with pytest.raises(ValueError, match="^led_pin: GPIO25 is already used by rfid_reset_pin$"):
        GpioIndicator(bus, pin=25)
    pulse_lock(bus)                                    # its pins were not kept by the failure


# --- the station assembly (build_devices + wiring_for) --------------------------------------------

def station_devices(cids, fixed_cable):
    """The keyword arguments firmware/device_config.py's [gpio] section maps to."""
    contactors = {1: dict(coil_pin=17, feedback_pin=27, active_high=True,
                          feedback_active_high=True)}
    locks = {} if fixed_cable else {1: dict(actuator="pulse", lock_pin=22, unlock_pin=23,
                                            feedback_pin=24, pulse_ms=20)}
    if 2 in cids:
        contactors[2] = dict(coil_pin=16, feedback_pin=20, active_high=False,
                             feedback_active_high=False, name="contactor2")
        if not fixed_cable:
            locks[2] = dict(actuator="level", motor_pin=21, feedback_pin=26, name="lock2")
    return contactors, locks, dict(red_pin=5, green_pin=6, blue_pin=13)


def test_build_devices_rejects_a_shared_pin_and_releases_everything(world):
    fake = FakeGPIO(world)
    with pytest.raises(ValueError) as e:
        build_devices(GpioBus(fake), {1: dict(coil_pin=17, feedback_pin=27)},
                      {1: dict(lock_pin=22, unlock_pin=17)})
    assert str(e.value) == "[gpio] lock_unlock_pin: GPIO17 is already used by contactor_pin"
    assert fake.cleanup_calls == [[17, 27]] and not fake.is_set_up(17)


@pytest.mark.parametrize("fixed_cable", [True, False])
def test_emulated_station(fixed_cable):
    world = SimWorld(number_of_connectors=2, fixed_cable=fixed_cable)
    contactors, locks, indicator = station_devices(world.connector_ids, fixed_cable)
    fake = FakeGPIO(world, wiring_for(contactors, locks, indicator))
    devices = build_devices(GpioBus(fake), contactors, locks, indicator)
    try:
        assert sorted(devices.contactors) == [1, 2]
        assert sorted(devices.locks) == ([] if fixed_cable else [1, 2])
        devices.contactors[2].set(True)
        snap = world.snapshot()["connectors"]
        assert (snap[1]["contactor"], snap[2]["contactor"]) == (False, True)
        assert devices.contactors[2].feedback() is True
        assert fake.level(16) == 0                      # connector 2's coil is active low
        for lock in devices.locks.values():
            lock.set(True)
            assert wait_for(lock.feedback, lock.actuation_time)
        devices.indicator.show("charging", blink_repeat=0)
        assert devices.indicator.wait_settled()
        assert world.snapshot()["indicator"]["colour"] == "blue"
    finally:
        devices.close()
        world.close()
    assert not any(c["contactor"] for c in world.snapshot()["connectors"].values())
    assert fake.hazards == [] and fake.cleanup_calls and None not in fake.cleanup_calls


# --- the fake behaves like the library ------------------------------------------------------------

def test_fake_gpio_checks_like_the_library():
    fake = FakeGPIO()
    with pytest.raises(RuntimeError, match="Please set pin numbering mode"):
        fake.setup(4, fake.OUT)
    fake.setmode(fake.BCM)
    with pytest.raises(ValueError, match="A different mode has already been set!"):
        fake.setmode(fake.BOARD)
    with pytest.raises(RuntimeError, match="You must setup\\(\\) the GPIO channel first"):
        fake.input(4)
    with pytest.raises(RuntimeError, match="has not been set up as an OUTPUT"):
        fake.output(4, 1)
    with pytest.raises(ValueError, match="pull_up_down parameter is not valid for outputs"):
        fake.setup(4, fake.OUT, pull_up_down=fake.PUD_UP)
    fake.setup(4, fake.IN, pull_up_down=fake.PUD_UP)
    assert fake.input(4) == 1
    fake.drive(4, 0)
    assert fake.input(4) == 0
    with pytest.raises(RuntimeError, match="has not been set up as an OUTPUT"):
        fake.output(4, 1)
    with pytest.raises(RuntimeError, match="as an output first"):
        fake.PWM(4, 100)
    fake.setup(5, fake.OUT, initial=1)
    assert fake.input(5) == 1                  # reads back an output, like RPi.GPIO
    pwm = fake.PWM(5, 100)
    with pytest.raises(RuntimeError, match="A PWM object already exists"):
        fake.PWM(5, 100)
    with pytest.raises(ValueError, match="dutycycle"):
        pwm.start(101)
    fake.cleanup()
    assert fake.getmode() is None and not fake.is_set_up(5)


def test_bus_close_opens_the_contactors_before_the_locks_let_go(world):
    fake = FakeGPIO(world, {MOTOR: (LOCK_MOTOR, 1), COIL: (CONTACTOR_COIL, 1)})
    bus = GpioBus(fake)
    lock = GpioLock(bus, MOTOR)                        # set up first, on purpose
    c = GpioContactor(bus, COIL)
    lock.set(True)
    c.set(True)
    t0 = time.monotonic()
    bus.close()
    order = [p for t, p, d in fake.history if t >= t0 and not d and p in (COIL, MOTOR)]
    assert order.index(COIL) < order.index(MOTOR), order
    assert fake.cleanup_calls == [[COIL], [MOTOR]]
