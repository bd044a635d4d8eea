"""GPIO devices: the contactor, the cable lock and the status LEDs on the Pi's
40-pin header, through the RPi.GPIO API.

On a Pi 5 RPi.GPIO itself does not work; the `rpi-lgpio` package provides the
same `RPi.GPIO` module on every Pi (pip install rpi-lgpio). The module is
imported lazily, on the first device set up, so that importing this file never
needs a Pi: the tests and `--hal emulated` inject hal_mocks.fake_gpio instead.

GpioBus owns the library for the whole process: it sets BCM numbering once,
checks that no pin is used twice (by a device or by another driver that
reserve()d it), serialises the library calls of the device threads, and on
close() releases only its own pins: GPIO.cleanup(pins), never GPIO.cleanup(),
which would also release the pins of every other user of the library.

Wiring conventions (each polarity is configurable):
  contactor coil     output; active = coil energised = main contacts closed.
                     Set up OPEN, and driven open again on close(). Fit a pull
                     resistor to the de-energised level on the coil driver: while
                     the Pi boots and after cleanup the pin is an input.
  contactor feedback input; the auxiliary (mirror) contact. feedback_active_high
                     = the input reads HIGH when the MAIN contacts are closed. A
                     mirror contact is normally-closed: wired from the pin to GND
                     with the pull-up, it opens (pin HIGH) when the main contacts
                     close, so the default (pull "up", active high) fits it, and a
                     broken wire reads "closed", i.e. welded while commanded open:
                     a fault is reported instead of hidden.
  lock, "level"      one output (motor_pin) held active while locked (a solenoid).
  lock, "pulse"      two outputs (lock_pin, unlock_pin) of an H-bridge: the one
                     for the wanted direction is pulsed for pulse_ms; both are
                     never active at once.
  lock feedback      input, active = the bolt is engaged.
  indicator          one LED (pin) or an RGB LED (red_pin, green_pin, blue_pin);
                     the brightness by PWM when the library has it.

Settings: a device's pin errors name "<name>_<setting>"; with the default
names ("contactor", "lock", "led") these are the [gpio] options of
firmware/device_config.py: contactor_pin (coil_pin), contactor_feedback_pin,
lock_pin (motor_pin of a level actuator, or lock_pin of a pulse actuator),
lock_unlock_pin, lock_feedback_pin, led_red_pin, led_green_pin, led_blue_pin,
led_pin. A second connector's devices take name="contactor2", "lock2".

Inputs are debounced by majority: DEBOUNCE_SAMPLES reads spread over
debounce_ms, so a single glitch (a spike from the contactor coil itself) never
flips a reading.
"""

import importlib
import logging
import threading
import time

from drivers.hal import CableLock, Contactor, DeviceError, Indicator

log = logging.getLogger("drivers.gpio")

MIN_PIN = 0
MAX_PIN = 27            # the BCM GPIOs on the 40-pin header
DEBOUNCE_SAMPLES = 5    # odd: a majority always exists
PULLS = ("up", "down", "off")
LOCK_ACTUATORS = ("level", "pulse")

# The colour of each Indicator state on an RGB LED, and what a single LED does.
STATE_COLOURS = {
    "available": "green",
    "preparing": "cyan",
    "charging": "blue",
    "suspended": "yellow",
    "finishing": "cyan",
    "reserved": "yellow",     # blinking on the RGB LED (steady yellow is "suspended")
    "unavailable": "magenta",
    "faulted": "red",
    "offline": "white",
    "refused": "red",         # a card was refused: blinks for a few seconds
}
COLOUR_CHANNELS = {   # (red, green, blue)
    "red": (True, False, False),
    "green": (False, True, False),
    "blue": (False, False, True),
    "yellow": (True, True, False),
    "cyan": (False, True, True),
    "magenta": (True, False, True),
    "white": (True, True, True),
}
SINGLE_LED_OFF = ("unavailable",)   # a single LED is lit in every other state
BLINKING_STATES = ("faulted", "refused")  # blink for as long as the state lasts (both kinds)
RGB_BLINKING_STATES = ("reserved",)  # ... on an RGB LED only (a single LED stays lit)


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def _setup_error(error):
    """A library error while taking the GPIO: one line a technician can act on."""
    text = _first_line(error)
    if isinstance(error, ValueError):    # a bad argument, not a permission problem
        return DeviceError("cannot use GPIO: %s" % text)
    low = text.lower()
    hint = "is the user in the gpio group?"
    if "raspberry pi" in low or "rpi" in low or "peripheral base" in low:
        hint += " On a Raspberry Pi 5 install rpi-lgpio instead of RPi.GPIO"
    return DeviceError("cannot use GPIO: %s (%s)" % (text, hint))


def _check_bool(value, setting):
    if type(value) is not bool:
        raise ValueError("%s must be True or False, not %r" % (setting, value))
    return value


def _check_number(value, setting, low, high, unit):
    if type(value) not in (int, float) or value != value or not low <= value <= high:
        raise ValueError("%s must be a number from %s to %s %s, not %r"
                         % (setting, low, high, unit, value))
    return value


def _check_pull(value, setting):
    if value not in PULLS:
        raise ValueError("%s must be one of %s, not %r" % (setting, "|".join(PULLS), value))
    return value


class _Pwm:
    """A library PWM object whose errors become DeviceError."""

    def __init__(self, bus, pin, pwm):
        self.bus = bus
        self.pin = pin
        self._pwm = pwm

    def start(self, duty):
        self.bus._call(self.pin, self._pwm.start, float(duty))

    def duty(self, duty):
        self.bus._call(self.pin, self._pwm.ChangeDutyCycle, float(duty))

    def stop(self):
        self.bus._call(self.pin, self._pwm.stop)


class GpioBus:
    """The RPi.GPIO library, shared by every GPIO device of the process.

    gpio: the RPi.GPIO module to use (a hal_mocks.fake_gpio.FakeGPIO in the
    tests and emulation); None imports RPi.GPIO on the first set-up.

    Thread safety: every library call holds one lock, so the device threads
    (and the indicator's blink thread) never interleave inside the library."""

    def __init__(self, gpio=None):
        self._gpio = gpio
        self._ready = False
        self._lock = threading.RLock()
        self._owners = {}      # pin -> setting name (devices of this bus, and reservations)
        self._reserved = set()
        self._set_up = []      # pins set up through the library, in order
        self._devices = []
        self._closed = False

    # --- the library ---------------------------------------------------------------------
    def _module(self):
        """The library, imported and put in BCM numbering on first use."""
        with self._lock:
            if self._closed:
                raise DeviceError("GPIO is closed")
            if self._ready:
                return self._gpio
            if self._gpio is None:
                try:
                    self._gpio = importlib.import_module("RPi.GPIO")
                except ImportError:
                    raise DeviceError("cannot use GPIO: the RPi.GPIO module is not installed "
                                      "(on the Pi: pip install rpi-lgpio)")
                except Exception as e:    # RPi.GPIO raises RuntimeError off a Pi
                    raise _setup_error(e)
            gpio = self._gpio
            try:
                gpio.setwarnings(False)
                mode = gpio.getmode()
                if mode is None:
                    gpio.setmode(gpio.BCM)
                elif mode != gpio.BCM:
                    raise DeviceError("cannot use GPIO: another part of the program set BOARD "
                                      "pin numbering; these drivers use BCM GPIO numbers")
            except DeviceError:
                raise
            except Exception as e:
                raise _setup_error(e)
            self._ready = True
            return gpio

    def _call(self, pin, fn, *args):
        """fn(*args) under the lock; a library error becomes a DeviceError naming the pin."""
        with self._lock:
            if self._closed:
                raise DeviceError("GPIO is closed")
            try:
                return fn(*args)
            except Exception as e:
                raise DeviceError("GPIO%d (%s): %s" % (pin, self._owners.get(pin, "?"),
                                                       _first_line(e)))

    def has_pwm(self):
        return hasattr(self._module(), "PWM")

    # --- pins ------------------------------------------------------------------------------
    def claim(self, settings):
        """Take pins for a device: settings maps a setting name to a BCM number (None =
        not used). All or nothing: ValueError, naming the setting, for a pin that is
        not a header GPIO or is already used."""
        wanted = [(name, pin) for name, pin in settings.items() if pin is not None]
        with self._lock:
            seen = {}
            for name, pin in wanted:
                if type(pin) is not int or not MIN_PIN <= pin <= MAX_PIN:
                    raise ValueError("%s must be a BCM GPIO number %d..%d, not %r"
                                     % (name, MIN_PIN, MAX_PIN, pin))
                other = self._owners.get(pin) or seen.get(pin)
                if other is not None:
                    raise ValueError("%s: GPIO%d is already used by %s" % (name, pin, other))
                seen[pin] = name
            self._owners.update(seen)

    def reserve(self, setting, pin):
        """Mark a pin used by another driver (the RFID reader's SPI and reset pins, the
        control pilot's PWM...) so that no GPIO device is configured on it."""
        self.claim({setting: pin})
        with self._lock:
            self._reserved.add(pin)

    def setup_output(self, pin, level):
        gpio = self._module()
        with self._lock:
            try:
                gpio.setup(pin, gpio.OUT, initial=gpio.HIGH if level else gpio.LOW)
            except Exception as e:
                raise _setup_error(e)
            self._set_up.append(pin)

    def setup_input(self, pin, pull):
        gpio = self._module()
        with self._lock:
            try:
                gpio.setup(pin, gpio.IN, pull_up_down={"up": gpio.PUD_UP, "down": gpio.PUD_DOWN,
                                                       "off": gpio.PUD_OFF}[pull])
            except Exception as e:
                raise _setup_error(e)
            self._set_up.append(pin)

    def pwm(self, pin, frequency):
        """A started-at-0 % PWM on an output pin, or None when the library has no PWM."""
        gpio = self._module()
        if not hasattr(gpio, "PWM"):
            return None
        return _Pwm(self, pin, self._call(pin, gpio.PWM, pin, frequency))

    def write(self, pin, level):
        gpio = self._module()
        self._call(pin, gpio.output, pin, gpio.HIGH if level else gpio.LOW)

    def read(self, pin):
        """The input level now: 1 or 0."""
        gpio = self._module()
        return 1 if self._call(pin, gpio.input, pin) else 0

    def read_debounced(self, pin, debounce_ms):
        """The majority of DEBOUNCE_SAMPLES reads spread over debounce_ms (one read
        when debounce_ms is 0): up to two glitches are rejected."""
        if debounce_ms <= 0:
            return self.read(pin)
        gap = debounce_ms / 1000.0 / (DEBOUNCE_SAMPLES - 1)
        highs = 0
        for i in range(DEBOUNCE_SAMPLES):
            if i:
                time.sleep(gap)
            highs += self.read(pin)
        return 1 if 2 * highs > DEBOUNCE_SAMPLES else 0

    def release(self, pins):
        """Give pins back: GPIO.cleanup(those that were set up), and forget them."""
        pins = [p for p in pins if p is not None]
        with self._lock:
            done = [p for p in pins if p in self._set_up]
            for p in pins:
                if p not in self._reserved:
                    self._owners.pop(p, None)
            self._set_up = [p for p in self._set_up if p not in done]
            if done and self._gpio is not None:
                try:
                    self._gpio.cleanup(done)
                except Exception as e:    # releasing must not stop the shutdown
                    log.warning("GPIO cleanup of %s failed: %s", done, _first_line(e))

    # --- devices ---------------------------------------------------------------------------
    def register(self, device):
        with self._lock:
            self._devices.append(device)

    def close(self):
        """Every device to its safe state (contactors open, LEDs off), then
        GPIO.cleanup(the pins set up here). Idempotent."""
        with self._lock:
            devices, self._devices = self._devices, []
        # The contactors first: the power is off before a lock lets go of the cable.
        devices.sort(key=lambda d: not isinstance(d, GpioContactor))
        for device in devices:
            try:
                device.close()
            except Exception as e:
                log.warning("closing %s: %s", getattr(device, "name", device), e)
        with self._lock:
            if self._closed:
                return
            self.release(list(self._set_up))
            self._closed = True

    @property
    def pins(self):
        """{pin: setting} of everything claimed or reserved."""
        with self._lock:
            return dict(self._owners)


class _GpioDevice:
    # The station-config setting of each pin argument: "<name>_<suffix>"; with the
    # default names, those of firmware/device_config.py's [gpio] section.
    SETTINGS = {}

    def __init__(self, bus, name):
        self.bus = bus
        self.name = name
        self._pins = []
        self._closed = False

    def _setting(self, role):
        return "%s_%s" % (self.name, self.SETTINGS.get(role, role))

    def _take(self, roles, set_up):
        """Claim {role: pin}, then run set_up(); on failure give everything back."""
        self.bus.claim(dict((self._setting(role), pin) for role, pin in roles.items()))
        self._pins = [pin for pin in roles.values() if pin is not None]
        try:
            set_up()
        except BaseException:
            self.bus.release(self._pins)
            raise
        self.bus.register(self)


class GpioContactor(_GpioDevice, Contactor):
    """The main contactor: set(closed) drives the coil, feedback() reads the
    mirror contact. Without a feedback pin, feedback() returns the commanded
    state (has_feedback is False): a welded or stuck contactor then goes
    unnoticed, so fit one."""

    SETTINGS = {"coil_pin": "pin"}

    def __init__(self, bus, coil_pin, feedback_pin=None, active_high=True,
                 feedback_active_high=True, debounce_ms=20, feedback_pull="up",
                 name="contactor"):
        _GpioDevice.__init__(self, bus, name)
        if coil_pin is None:
            raise ValueError("%s must be set" % self._setting("coil_pin"))
        self.active_high = _check_bool(active_high, self._setting("active_high"))
        self.feedback_active_high = _check_bool(feedback_active_high,
                                                self._setting("feedback_active_high"))
        self.debounce_ms = _check_number(debounce_ms, self._setting("debounce_ms"), 0, 1000, "ms")
        self.feedback_pull = _check_pull(feedback_pull, self._setting("feedback_pull"))
        self.coil_pin = coil_pin
        self.feedback_pin = feedback_pin
        self.has_feedback = feedback_pin is not None
        self.commanded = False

        def set_up():
            bus.setup_output(coil_pin, self._coil_level(False))    # open from the start
            if feedback_pin is not None:
                bus.setup_input(feedback_pin, feedback_pull)
        self._take({"coil_pin": coil_pin, "feedback_pin": feedback_pin}, set_up)
        log.info("%s: coil GPIO%d (active %s), %s", name, coil_pin,
                 "high" if active_high else "low",
                 "feedback GPIO%d (closed = %s)" % (feedback_pin, "high" if feedback_active_high
                                                    else "low")
                 if feedback_pin is not None else "no feedback contact")

    def _coil_level(self, closed):
        return closed == self.active_high

    def set(self, closed):
        closed = bool(closed)
        self.commanded = closed
        self.bus.write(self.coil_pin, self._coil_level(closed))

    def feedback(self):
        if self.feedback_pin is None:
            return self.commanded
        level = self.bus.read_debounced(self.feedback_pin, self.debounce_ms)
        return bool(level) == self.feedback_active_high

    def close(self):
        """Coil open, pins released. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.commanded = False
        try:
            self.bus.write(self.coil_pin, self._coil_level(False))
        finally:
            self.bus.release(self._pins)


class GpioLock(_GpioDevice, CableLock):
    """A socket outlet's cable lock.

    actuator "level": motor_pin is held active while locked (a solenoid);
    actuator "pulse": lock_pin or unlock_pin is pulsed for pulse_ms (a motor on
    an H-bridge), never both at once. By default the actuator follows from the
    pins given. set() of a pulse actuator blocks for the pulse (the firmware
    calls it on the lock's own thread). Without a feedback pin, feedback()
    returns the commanded state (has_feedback is False)."""

    SETTINGS = {"motor_pin": "pin", "lock_pin": "pin"}

    def __init__(self, bus, motor_pin=None, feedback_pin=None, lock_pin=None, unlock_pin=None,
                 actuator=None, active_high=True, feedback_active_high=True, pulse_ms=300,
                 actuation_time=1.0, debounce_ms=20, feedback_pull="up", name="lock"):
        _GpioDevice.__init__(self, bus, name)
        if actuator is None:
            actuator = "level" if motor_pin is not None else "pulse"
        if actuator not in LOCK_ACTUATORS:
            raise ValueError("%s must be one of %s, not %r"
                             % (self._setting("actuator"), "|".join(LOCK_ACTUATORS), actuator))
        if actuator == "level" and (motor_pin is None or lock_pin is not None
                                    or unlock_pin is not None):
            raise ValueError("%s is level: set %s, the one actuator pin (and not %s)" % (
                self._setting("actuator"), self._setting("motor_pin"),
                self._setting("unlock_pin")))
        if actuator == "pulse" and (lock_pin is None or unlock_pin is None
                                    or motor_pin is not None):
            raise ValueError("%s is pulse: set both %s and %s" % (
                self._setting("actuator"), self._setting("lock_pin"),
                self._setting("unlock_pin")))
        self.actuator = actuator
        self.active_high = _check_bool(active_high, self._setting("active_high"))
        self.feedback_active_high = _check_bool(feedback_active_high,
                                                self._setting("feedback_active_high"))
        self.pulse_ms = _check_number(pulse_ms, self._setting("pulse_ms"), 10, 5000, "ms")
        self.actuation_time = _check_number(actuation_time, self._setting("actuation_time"),
                                            0.05, 30, "s")
        self.debounce_ms = _check_number(debounce_ms, self._setting("debounce_ms"), 0, 1000, "ms")
        self.feedback_pull = _check_pull(feedback_pull, self._setting("feedback_pull"))
        self.motor_pin = motor_pin
        self.lock_pin = lock_pin
        self.unlock_pin = unlock_pin
        self.feedback_pin = feedback_pin
        self.has_feedback = feedback_pin is not None
        self.commanded = False
        idle = not active_high

        def set_up():
            for pin in (motor_pin, lock_pin, unlock_pin):
                if pin is not None:
                    bus.setup_output(pin, idle)    # not driven: unlocked / motor stopped
            if feedback_pin is not None:
                bus.setup_input(feedback_pin, feedback_pull)
        self._take({"motor_pin" if actuator == "level" else "lock_pin":
                    motor_pin if actuator == "level" else lock_pin,
                    "unlock_pin": unlock_pin, "feedback_pin": feedback_pin}, set_up)
        log.info("%s: %s actuator on %s (active %s), %s", name, actuator,
                 "GPIO%d" % motor_pin if actuator == "level"
                 else "GPIO%d/GPIO%d" % (lock_pin, unlock_pin),
                 "high" if active_high else "low",
                 "feedback GPIO%d" % feedback_pin if feedback_pin is not None else "no feedback")

    def set(self, locked):
        locked = bool(locked)
        self.commanded = locked
        active, idle = self.active_high, not self.active_high
        if self.actuator == "level":
            self.bus.write(self.motor_pin, active if locked else idle)
            return
        on, off = (self.lock_pin, self.unlock_pin) if locked else (self.unlock_pin, self.lock_pin)
        self.bus.write(off, idle)           # never both sides of the bridge at once
        self.bus.write(on, active)
        try:
            time.sleep(self.pulse_ms / 1000.0)
        finally:
            self.bus.write(on, idle)

    def feedback(self):
        if self.feedback_pin is None:
            return self.commanded
        level = self.bus.read_debounced(self.feedback_pin, self.debounce_ms)
        return bool(level) == self.feedback_active_high

    def close(self):
        """Actuator outputs idle (a level lock releases, a motor stops), pins released."""
        if self._closed:
            return
        self._closed = True
        try:
            for pin in (self.motor_pin, self.lock_pin, self.unlock_pin):
                if pin is not None:
                    self.bus.write(pin, not self.active_high)
        finally:
            self.bus.release(self._pins)


class GpioIndicator(_GpioDevice, Indicator):
    """Status LEDs: an RGB LED (red_pin, green_pin, blue_pin: STATE_COLOURS) or
    a single LED (pin: on, off for "unavailable", blinking for "faulted"). On
    the RGB LED "reserved" blinks yellow.

    show() never blocks: a thread of the indicator drives the LEDs. On a change
    of state the LED blinks blink_repeat times (period blink_s) and then stays
    lit; "faulted" keeps blinking. intensity (0-100 %) is the PWM duty cycle
    when the library has PWM and pwm_hz is not None, else any intensity > 0 is
    fully on. A GPIO failure in that thread is raised by the next show()."""

    def __init__(self, bus, red_pin=None, green_pin=None, blue_pin=None, pin=None,
                 active_high=True, pwm_hz=200, blink_s=0.5, name="led"):
        _GpioDevice.__init__(self, bus, name)
        rgb = (red_pin, green_pin, blue_pin)
        if pin is not None and any(p is not None for p in rgb) or \
                pin is None and any(p is None for p in rgb):
            raise ValueError("%s: set either %s (one LED) or all of %s, %s and %s (RGB LED)" % (
                name, self._setting("pin"), self._setting("red_pin"), self._setting("green_pin"),
                self._setting("blue_pin")))
        self.active_high = _check_bool(active_high, self._setting("active_high"))
        if pwm_hz is not None:
            _check_number(pwm_hz, self._setting("pwm_hz"), 1, 10000, "Hz")
        self.blink_s = _check_number(blink_s, self._setting("blink_s"), 0.01, 10, "s")
        self.rgb = pin is None
        self.led_pins = list(rgb) if self.rgb else [pin]
        self._pwms = {}
        self._state = None
        self._cond = threading.Condition()
        self._program = (None, 0.0, [], None)
        self._generation = 0
        self._settled = True
        self._stopping = False
        self._error = None

        def set_up():
            for p in self.led_pins:
                bus.setup_output(p, self._level(False))
            if pwm_hz is not None and bus.has_pwm():
                for p in self.led_pins:
                    pwm = bus.pwm(p, pwm_hz)
                    pwm.start(self._duty(False, 0))
                    self._pwms[p] = pwm
        roles = {"red_pin": red_pin, "green_pin": green_pin, "blue_pin": blue_pin} if self.rgb \
            else {"pin": pin}
        self._take(roles, set_up)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _level(self, lit):
        return lit == self.active_high

    def _duty(self, lit, intensity):
        duty = intensity if lit else 0.0
        return duty if self.active_high else 100.0 - duty

    def show(self, state, blink_repeat=1, intensity=50):
        if state not in STATE_COLOURS:
            raise ValueError("unknown indicator state %r: one of %s"
                             % (state, "|".join(STATE_COLOURS)))
        try:
            intensity = min(100.0, max(0.0, float(intensity)))
            blink_repeat = min(20, max(0, int(blink_repeat)))
        except (TypeError, ValueError):
            raise ValueError("intensity and blink_repeat must be numbers")
        if self.rgb:
            channels = COLOUR_CHANNELS[STATE_COLOURS[state]]
        else:
            channels = (state not in SINGLE_LED_OFF,)
        half = self.blink_s / 2.0
        steps = [(True, half), (False, half)] * blink_repeat if state != self._state else []
        blinking = state in BLINKING_STATES or (self.rgb and state in RGB_BLINKING_STATES)
        loop = [(True, half), (False, half)] if blinking else None
        with self._cond:
            error, self._error = self._error, None
            self._state = state
            self._program = (channels, intensity, steps, loop)
            self._generation += 1
            self._settled = False
            self._cond.notify_all()
        if error is not None:
            raise error

    def wait_settled(self, timeout=5.0):
        """Wait until the LEDs show the last state steadily (its blinks done, or
        blinking forever); False on timeout. For tests and diagnostics."""
        with self._cond:
            return self._cond.wait_for(lambda: self._settled, timeout)

    def _apply(self, channels, intensity):
        for p, lit in zip(self.led_pins, channels or (False,) * len(self.led_pins)):
            lit = bool(lit) and intensity > 0
            if p in self._pwms:
                self._pwms[p].duty(self._duty(lit, intensity))
            else:
                self.bus.write(p, self._level(lit))

    def _mark_settled(self, generation):
        with self._cond:
            if self._generation == generation and not self._settled:
                self._settled = True
                self._cond.notify_all()

    def _run(self):
        generation = None
        pending, loop = [], None
        channels, intensity = None, 0.0
        deadline = None
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    if self._generation != generation:
                        generation = self._generation
                        channels, intensity, steps, loop = self._program
                        pending = list(steps)
                        break
                    if deadline is None:
                        self._cond.wait()
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            if not pending and loop:
                pending = list(loop)
                self._mark_settled(generation)
            if pending:
                lit, duration = pending.pop(0)
            else:
                lit, duration = True, None
            try:
                self._apply(channels if lit else None, intensity)
            except DeviceError as e:
                log.warning("%s: %s", self.name, e)
                with self._cond:
                    self._error = e
            if duration is None:
                deadline = None
                self._mark_settled(generation)
            else:
                deadline = time.monotonic() + duration

    def close(self):
        """Stop the blinking, LEDs off, pins released. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)
        try:
            for p in self.led_pins:
                pwm = self._pwms.pop(p, None)
                if pwm is not None:
                    pwm.stop()      # rpi-lgpio then drives the pin LOW: lit if active low
                self.bus.write(p, self._level(False))
        finally:
            self.bus.release(self._pins)


class GpioDevices:
    """The GPIO devices of a station: contactors and locks by connector id, the
    indicator (None when not configured). close(): everything safe and released."""

    def __init__(self, bus):
        self.bus = bus
        self.contactors = {}
        self.locks = {}
        self.indicator = None

    def close(self):
        self.bus.close()

    def attach_to(self, hal):
        """Put these devices into a drivers.hal.Hal: each connector's contactor and
        lock (None where there is none), the indicator when one is configured, and
        close() among the hal's closers."""
        for cid, contactor in self.contactors.items():
            hal.connectors[cid]["contactor"] = contactor
            hal.connectors[cid]["lock"] = self.locks.get(cid)
        if self.indicator is not None:
            hal.indicator = self.indicator
        hal.on_close.append(self.close)


def build_devices(bus, contactors, locks=None, indicator=None, section="[gpio]"):
    """Set up a station's GPIO devices on `bus` (reserve() the pins of the other
    drivers on it first): contactors and locks map a connector id to the keyword
    arguments of GpioContactor / GpioLock, indicator is those of GpioIndicator
    (or None). Returns GpioDevices. ValueError, prefixed with `section`, for a
    setting; DeviceError for the library; on either, whatever was already set up
    is released again (contactors open)."""
    devices = GpioDevices(bus)
    try:
        for cid, kwargs in sorted(contactors.items()):
            devices.contactors[cid] = GpioContactor(bus, **kwargs)
        for cid, kwargs in sorted((locks or {}).items()):
            devices.locks[cid] = GpioLock(bus, **kwargs)
        if indicator:
            devices.indicator = GpioIndicator(bus, **indicator)
    except ValueError as e:
        bus.close()
        raise ValueError("%s %s" % (section, e))
    except BaseException:
        bus.close()
        raise
    return devices
