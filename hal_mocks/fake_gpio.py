"""A fake RPi.GPIO module whose pins are wired to the simulated world.

FakeGPIO(world, wiring) has the subset of the RPi.GPIO API the drivers use,
with the real library's constants, checks and error messages (RuntimeError
for a pin not set up, output() on an input, setup() before setmode(); input()
on an output returns the level driven, as the real one does). It records every
call in `calls`, so a test can check, for example, that cleanup() was always
given a list of pins.

wiring maps a BCM pin to what the pin is connected to: a tuple
(kind, target[, active_high]) where active_high (default True) is the
hardware's polarity:

    (CONTACTOR_COIL, cid)        output: active level energises the coil, i.e.
                                 SimContactor(world, cid).set(True)
    (CONTACTOR_FEEDBACK, cid)    input: reads the active level while the main
                                 contacts are closed (SimContactor.feedback(),
                                 so "welded" and "stuck" show on the wire)
    (LOCK_MOTOR, cid)            output of a level actuator: active = locked
    (LOCK_PULSE_LOCK, cid)       outputs of a pulse actuator's H-bridge: going
    (LOCK_PULSE_UNLOCK, cid)     active moves the bolt (SimLock.set); both
                                 active at once is recorded in `hazards`
    (LOCK_FEEDBACK, cid)         input: active while the bolt is engaged
    (INDICATOR, "red"|"green"|"blue"|"led")
                                 output or PWM: the LED; what the LEDs show is
                                 put in the world's snapshot ("indicator")

A pin released by cleanup() stops driving its load: the coil de-energises and
a level lock releases (the board's pull resistors), an LED goes dark.

Test hooks: inject(pin, levels) makes the next input() calls of a pin return
these levels (bouncing contacts, glitches); drive(pin, level) sets the level
of an input that is not wired; fail = an exception that setmode() and setup()
raise (RuntimeError("Not running on a RPi!") as off a Pi, PermissionError...).

install_fake_gpio(fake) makes `import RPi.GPIO` return the fake (sys.modules)
and returns the function that undoes it.
"""

import collections
import sys
import threading
import time
import types

from hal_mocks.sim import SimContactor, SimLock

CONTACTOR_COIL = "contactor_coil"
CONTACTOR_FEEDBACK = "contactor_feedback"
LOCK_MOTOR = "lock_motor"
LOCK_PULSE_LOCK = "lock_pulse_lock"
LOCK_PULSE_UNLOCK = "lock_pulse_unlock"
LOCK_FEEDBACK = "lock_feedback"
INDICATOR = "indicator"

_OUTPUT_KINDS = (CONTACTOR_COIL, LOCK_MOTOR, LOCK_PULSE_LOCK, LOCK_PULSE_UNLOCK, INDICATOR)
_INPUT_KINDS = (CONTACTOR_FEEDBACK, LOCK_FEEDBACK)
_LED_COLOURS = ("red", "green", "blue", "led")
_COLOUR_NAMES = {(True, False, False): "red", (False, True, False): "green",
                 (False, False, True): "blue", (True, True, False): "yellow",
                 (False, True, True): "cyan", (True, False, True): "magenta",
                 (True, True, True): "white", (False, False, False): "off"}

_NO_MODE = "Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or GPIO.setmode(GPIO.BCM)"


class _Wire:
    def __init__(self, pin, spec, world):
        if not isinstance(spec, tuple) or len(spec) not in (2, 3):
            raise ValueError("wiring of GPIO%s must be (kind, target[, active_high]), not %r"
                             % (pin, spec))
        self.kind, self.target = spec[0], spec[1]
        self.active_high = spec[2] if len(spec) == 3 else True
        if self.kind not in _OUTPUT_KINDS + _INPUT_KINDS:
            raise ValueError("wiring of GPIO%s: unknown kind %r" % (pin, self.kind))
        if type(self.active_high) is not bool:
            raise ValueError("wiring of GPIO%s: active_high must be True or False" % pin)
        self.output = self.kind in _OUTPUT_KINDS
        self.driving = False       # an output wire's load is driven (active) now
        self.device = None
        if self.kind == INDICATOR:
            if self.target not in _LED_COLOURS:
                raise ValueError("wiring of GPIO%s: indicator LED must be one of %s, not %r"
                                 % (pin, "|".join(_LED_COLOURS), self.target))
        elif world is None:
            raise ValueError("wiring of GPIO%s to %s needs a world" % (pin, self.kind))
        elif self.kind.startswith("contactor"):
            self.device = SimContactor(world, self.target)
        else:
            self.device = SimLock(world, self.target)

    def active(self, level):
        return bool(level) == self.active_high

    def level(self, active):
        return 1 if active == self.active_high else 0


class FakePWM:
    """RPi.GPIO.PWM on a fake pin: the duty cycle is what the pin shows."""

    def __init__(self, fake, channel, frequency):
        self._fake = fake
        self.pin = channel
        self.frequency = float(frequency)
        self.duty = 0.0
        self.running = False

    def start(self, dc):
        self.ChangeDutyCycle(dc)
        with self._fake._lock:
            self.running = True
            self._fake._record("PWM.start", (self.pin, dc))
            self._fake._pwm_changed(self.pin)

    def ChangeDutyCycle(self, dc):
        dc = float(dc)
        if not 0.0 <= dc <= 100.0:
            raise ValueError("dutycycle must have a value from 0.0 to 100.0")
        with self._fake._lock:
            self.duty = dc
            self._fake._record("PWM.ChangeDutyCycle", (self.pin, dc))
            if self.running:
                self._fake._pwm_changed(self.pin)

    def ChangeFrequency(self, frequency):
        if float(frequency) <= 0.0:
            raise ValueError("frequency must be greater than 0.0")
        self.frequency = float(frequency)

    def stop(self):
        # Like rpi-lgpio: the wave stops and the pin is driven LOW.
        with self._fake._lock:
            self._fake._record("PWM.stop", (self.pin,))
            self.running = False
            pin = self._fake._pins.get(self.pin)
            if pin is not None and pin["dir"] == FakeGPIO.OUT:
                pin["level"] = 0
            self._fake._pwm_changed(self.pin)


class FakeGPIO:
    """A fake RPi.GPIO module (see the module docstring). pwm=False: a library
    without PWM (the attribute is absent, as the drivers check for it)."""

    BCM = 11
    BOARD = 10
    OUT = 0
    IN = 1
    HIGH = 1
    LOW = 0
    PUD_OFF = 20
    PUD_DOWN = 21
    PUD_UP = 22
    VERSION = "0.7.1a4 (fake)"

    def __init__(self, world=None, wiring=None, pwm=True, record_limit=100000):
        self.world = world
        self.RPI_INFO = {"P1_REVISION": 3, "REVISION": "c03114", "TYPE": "Pi 4 Model B",
                         "MANUFACTURER": "Sony UK", "PROCESSOR": "BCM2711", "RAM": "4GB"}
        self.RPI_REVISION = 3
        # (name, args) of the latest API calls, and (monotonic time, pin, % HIGH or None when
        # released) of the latest output changes: bounded, an emulated station runs for days.
        self.calls = collections.deque(maxlen=record_limit)
        self.history = collections.deque(maxlen=record_limit)
        self.cleanup_calls = []   # the argument of every cleanup() call
        self.setmode_calls = []   # the argument of every setmode() call
        self.hazards = []         # what would have damaged the hardware
        self.fail = None          # raised by setmode() and setup() when set
        self.indicator = None     # what the LEDs show: {"colour": "green", "leds": {...: %}}
        self._lock = threading.RLock()
        self._mode = None
        self._warnings = True
        self._pins = {}           # pin -> {"dir", "level" (outputs), "pull" (inputs)}
        self._pwms = {}
        self._injected = collections.defaultdict(collections.deque)
        self._external = {}
        self._wires = dict((pin, _Wire(pin, spec, world)) for pin, spec in (wiring or {}).items())
        if pwm:
            self.PWM = self._new_pwm

    # --- test hooks ------------------------------------------------------------------------
    def _record(self, name, args):
        self.calls.append((name, args))

    def calls_of(self, name):
        with self._lock:
            return [args for n, args in self.calls if n == name]

    def inject(self, pin, levels):
        """The next len(levels) input(pin) calls return these levels."""
        with self._lock:
            self._injected[pin].extend(1 if level else 0 for level in levels)

    def drive(self, pin, level):
        """An external level on an input that is not wired (None: back to its pull)."""
        with self._lock:
            if level is None:
                self._external.pop(pin, None)
            else:
                self._external[pin] = 1 if level else 0

    def level(self, pin):
        """The level an output drives now (a PWM: 1 when its duty is over 50 %)."""
        with self._lock:
            return 1 if self.duty(pin) > 50.0 else 0

    def duty(self, pin):
        """What an output drives now, in % of the time HIGH."""
        with self._lock:
            pwm = self._pwms.get(pin)
            if pwm is not None and pwm.running:
                return pwm.duty
            state = self._pins.get(pin)
            if state is None or state["dir"] != self.OUT:
                raise KeyError("GPIO%d is not an output" % pin)
            return 100.0 * state["level"]

    def is_set_up(self, pin):
        with self._lock:
            return pin in self._pins

    # --- the RPi.GPIO API --------------------------------------------------------------------
    def setwarnings(self, flag):
        with self._lock:
            self._record("setwarnings", (flag,))
            self._warnings = bool(flag)

    def getmode(self):
        with self._lock:
            return self._mode

    def setmode(self, mode):
        with self._lock:
            self._record("setmode", (mode,))
            self.setmode_calls.append(mode)
            if self.fail is not None:
                raise self.fail
            if self._mode is not None and mode != self._mode:
                raise ValueError("A different mode has already been set!")
            if mode not in (self.BCM, self.BOARD):
                raise ValueError("An invalid mode was passed to setmode()")
            self._mode = mode

    def _channels(self, channel):
        if self._mode is None:
            raise RuntimeError(_NO_MODE)
        channels = list(channel) if isinstance(channel, (list, tuple)) else [channel]
        for c in channels:
            if type(c) is not int or not 0 <= c < 54:
                raise ValueError("The channel sent is invalid on a Raspberry Pi")
            if self._mode == self.BOARD:
                raise NotImplementedError("the fake supports BCM numbering only")
        return channels

    def setup(self, channel, direction, pull_up_down=None, initial=None):
        with self._lock:
            self._record("setup", (channel, direction, pull_up_down, initial))
            if self.fail is not None:
                raise self.fail
            if direction == self.OUT:
                if pull_up_down is not None:
                    raise ValueError("pull_up_down parameter is not valid for outputs")
            elif direction == self.IN:
                if initial is not None:
                    raise ValueError("initial parameter is not valid for inputs")
                if pull_up_down is None:
                    pull_up_down = self.PUD_OFF
                if pull_up_down not in (self.PUD_UP, self.PUD_DOWN, self.PUD_OFF):
                    raise ValueError("Invalid value for pull_up_down - should be either "
                                     "PUD_OFF, PUD_UP or PUD_DOWN")
            else:
                raise ValueError("An invalid direction was passed to setup()")
            for pin in self._channels(channel):
                wire = self._wires.get(pin)
                if wire is not None and wire.output != (direction == self.OUT):
                    raise AssertionError("GPIO%d is wired as an %s (%s) but set up as an %s"
                                         % (pin, "output" if wire.output else "input",
                                            wire.kind, "output" if direction == self.OUT
                                            else "input"))
                if direction == self.OUT:
                    old = self._pins.get(pin)
                    level = (1 if initial else 0) if initial is not None else \
                        (old["level"] if old and old["dir"] == self.OUT else 0)
                    self._pins[pin] = {"dir": self.OUT, "level": level}
                    self._output_changed(pin)
                else:
                    self._pins[pin] = {"dir": self.IN, "pull": pull_up_down}

    def output(self, channel, value):
        with self._lock:
            self._record("output", (channel, value))
            for pin in self._channels(channel):
                state = self._pins.get(pin)
                if state is None or state["dir"] != self.OUT:
                    raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
                state["level"] = 1 if value else 0
                self._output_changed(pin)

    def input(self, channel):
        with self._lock:
            self._record("input", (channel,))
            (pin,) = self._channels(channel)
            state = self._pins.get(pin)
            if state is None:
                raise RuntimeError("You must setup() the GPIO channel first")
            if state["dir"] == self.OUT:
                return state["level"]        # the real library reads back the output
            if self._injected[pin]:
                return self._injected[pin].popleft()
            wire = self._wires.get(pin)
            if wire is not None:
                return wire.level(bool(wire.device.feedback()))
            if pin in self._external:
                return self._external[pin]
            return 1 if state["pull"] == self.PUD_UP else 0

    def cleanup(self, chanlist=None):
        with self._lock:
            self._record("cleanup", (chanlist,))
            self.cleanup_calls.append(chanlist)
            if chanlist is None:
                pins = list(self._pins)
                self._mode = None
            else:
                pins = self._channels(chanlist) if self._mode is not None else []
            for pin in pins:
                pwm = self._pwms.pop(pin, None)
                if pwm is not None:
                    pwm.running = False
                was_output = self._pins.get(pin, {}).get("dir") == self.OUT
                self._pins.pop(pin, None)
                if was_output:
                    self._released(pin)

    def _new_pwm(self, channel, frequency):
        with self._lock:
            self._record("PWM", (channel, frequency))
            (pin,) = self._channels(channel)
            if pin in self._pwms:
                raise RuntimeError("A PWM object already exists for this GPIO channel")
            state = self._pins.get(pin)
            if state is None or state["dir"] != self.OUT:
                raise RuntimeError("You must setup() the GPIO channel as an output first")
            if float(frequency) <= 0.0:
                raise ValueError("frequency must be greater than 0.0")
            pwm = FakePWM(self, pin, frequency)
            self._pwms[pin] = pwm
            return pwm

    # --- the wires (caller holds self._lock) -----------------------------------------------
    def _pwm_changed(self, pin):
        if pin in self._pins:
            self._output_changed(pin)

    def _output_changed(self, pin):
        duty = self.duty(pin)
        self.history.append((time.monotonic(), pin, duty))
        wire = self._wires.get(pin)
        if wire is None:
            return
        if wire.kind == INDICATOR:
            self._publish_indicator()
            return
        active = wire.active(duty > 50.0)
        self._drive_load(pin, wire, active)

    def _released(self, pin):
        """A pin back to an input: its load is no longer driven."""
        self.history.append((time.monotonic(), pin, None))
        wire = self._wires.get(pin)
        if wire is None:
            return
        if wire.kind == INDICATOR:
            self._publish_indicator()
        elif wire.kind in (CONTACTOR_COIL, LOCK_MOTOR):
            wire.device.set(False)      # de-energised: contactor open, solenoid released
        wire.driving = False

    def _drive_load(self, pin, wire, active):
        was = wire.driving
        wire.driving = active
        if wire.kind in (CONTACTOR_COIL, LOCK_MOTOR):
            wire.device.set(active)
            return
        if wire.kind in (LOCK_PULSE_LOCK, LOCK_PULSE_UNLOCK) and active:
            other_kind = LOCK_PULSE_UNLOCK if wire.kind == LOCK_PULSE_LOCK else LOCK_PULSE_LOCK
            for other_pin, other in self._wires.items():
                if other.kind == other_kind and other.target == wire.target \
                        and other.driving:
                    self.hazards.append("GPIO%d and GPIO%d (lock %s) both active: the motor "
                                        "bridge is short-circuited" % (other_pin, pin, wire.target))
            if not was:
                wire.device.set(wire.kind == LOCK_PULSE_LOCK)

    def _led_brightness(self, pin, wire):
        state = self._pins.get(pin)
        if state is None or state["dir"] != self.OUT:
            return 0.0
        duty = self.duty(pin)
        return duty if wire.active_high else 100.0 - duty

    def _publish_indicator(self):
        leds = dict((wire.target, self._led_brightness(pin, wire))
                    for pin, wire in self._wires.items() if wire.kind == INDICATOR)
        if "led" in leds:
            colour = "on" if leds["led"] > 0 else "off"
        else:
            colour = _COLOUR_NAMES.get(tuple(leds.get(c, 0.0) > 0 for c in ("red", "green",
                                                                           "blue")))
        self.indicator = {"colour": colour, "leds": leds}
        if self.world is not None:
            self.world.show_indicator(dict(self.indicator))


def wiring_for(contactors, locks=None, indicator=None):
    """The wiring for the devices that drivers.gpio_devices.build_devices() takes
    (the same keyword-argument dicts): the emulated hardware is wired the way
    the station config says it is, polarities included."""
    wiring = {}
    for cid, c in contactors.items():
        wiring[c["coil_pin"]] = (CONTACTOR_COIL, cid, c.get("active_high", True))
        if c.get("feedback_pin") is not None:
            wiring[c["feedback_pin"]] = (CONTACTOR_FEEDBACK, cid,
                                         c.get("feedback_active_high", True))
    for cid, k in (locks or {}).items():
        active = k.get("active_high", True)
        if k.get("motor_pin") is not None:
            wiring[k["motor_pin"]] = (LOCK_MOTOR, cid, active)
        if k.get("lock_pin") is not None:
            wiring[k["lock_pin"]] = (LOCK_PULSE_LOCK, cid, active)
        if k.get("unlock_pin") is not None:
            wiring[k["unlock_pin"]] = (LOCK_PULSE_UNLOCK, cid, active)
        if k.get("feedback_pin") is not None:
            wiring[k["feedback_pin"]] = (LOCK_FEEDBACK, cid, k.get("feedback_active_high", True))
    if indicator:
        active = indicator.get("active_high", True)
        for colour in ("red", "green", "blue"):
            if indicator.get(colour + "_pin") is not None:
                wiring[indicator[colour + "_pin"]] = (INDICATOR, colour, active)
        if indicator.get("pin") is not None:
            wiring[indicator["pin"]] = (INDICATOR, "led", active)
    return wiring


_MISSING = object()


def install_fake_gpio(fake):
    """Make `import RPi.GPIO` (and `from RPi import GPIO`) give `fake`; returns undo()."""
    saved = dict((name, sys.modules.get(name, _MISSING)) for name in ("RPi", "RPi.GPIO"))
    package = types.ModuleType("RPi")
    package.__path__ = []
    package.GPIO = fake
    sys.modules["RPi"] = package
    sys.modules["RPi.GPIO"] = fake

    def undo():
        for name, module in saved.items():
            if module is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return undo
