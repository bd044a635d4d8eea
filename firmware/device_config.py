"""The hardware settings of the station config: wiring, buses, ports.

    [meter]  port, model, address, baudrate, parity, stopbits, timeout
    [rfid]   spi_bus, spi_device, reset_pin (optional)
    [pilot]  port, baudrate
    [modem]  port, baudrate, poll_interval (s between health queries)
    [gpio]   contactor_pin, contactor_active_high, contactor_feedback_pin,
             contactor_feedback_active_high, lock_actuator (none|level|pulse),
             lock_pin, lock_unlock_pin, lock_feedback_pin, lock_active_high,
             led_red_pin, led_green_pin, led_blue_pin, led_active_high

Each setting is read with its type and range; a bad one is a ConfigError whose
text names it ("[meter] baudrate must be one of ..."), which `python -m firmware`
prints as its one-line error. Defaults are a common Pi charger wiring (see
tools/deploy/station.example.ini).
"""

from drivers.meter_maps import MODELS as METER_MODELS  # one table: a new map is a new model
from firmware.station_config import ConfigError

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)

DEFAULTS = {
    "meter": {"port": "/dev/ttyUSB0", "model": "SDM630", "address": "1", "baudrate": "9600",
              "parity": "N", "stopbits": "1", "timeout": "0.5"},
    "rfid": {"spi_bus": "0", "spi_device": "0"},
    "pilot": {"port": "/dev/ttyAMA0", "baudrate": "115200"},
    "modem": {"port": "/dev/ttyUSB2", "baudrate": "115200", "poll_interval": "60"},
    "gpio": {"contactor_pin": "17", "contactor_active_high": "yes",
             "contactor_feedback_pin": "27", "contactor_feedback_active_high": "yes",
             "lock_actuator": "none", "lock_pin": "", "lock_unlock_pin": "",
             "lock_feedback_pin": "", "lock_active_high": "yes",
             "led_red_pin": "5", "led_green_pin": "6", "led_blue_pin": "13",
             "led_active_high": "yes"},
}


class Section:
    """Typed access to one INI section, falling back to DEFAULTS."""

    def __init__(self, name, values):
        self.name = name
        self.values = dict(DEFAULTS.get(name, {}))
        self.values.update({k: v for k, v in (values or {}).items() if v is not None})

    def raw(self, option):
        return (self.values.get(option) or "").strip()

    def _what(self, option):
        return "[%s] %s" % (self.name, option)

    def text(self, option, choices=None):
        value = self.raw(option)
        if choices is not None:
            match = [c for c in choices if c.lower() == value.lower()]
            if not match:
                raise ConfigError("%s must be one of %s, not %r"
                                  % (self._what(option), ", ".join(choices), value))
            return match[0]
        if not value:
            raise ConfigError("%s is not set" % self._what(option))
        return value

    def integer(self, option, low, high, choices=None, optional=False):
        value = self.raw(option)
        if optional and value == "":
            return None
        try:
            n = int(value)
        except ValueError:
            raise ConfigError("%s must be a whole number, not %r" % (self._what(option), value))
        if choices is not None and n not in choices:
            raise ConfigError("%s must be one of %s, not %d"
                              % (self._what(option), ", ".join(str(c) for c in choices), n))
        if not low <= n <= high:
            raise ConfigError("%s must be between %d and %d, not %d"
                              % (self._what(option), low, high, n))
        return n

    def number(self, option, low, high):
        value = self.raw(option)
        try:
            x = float(value)
        except ValueError:
            raise ConfigError("%s must be a number, not %r" % (self._what(option), value))
        if not low <= x <= high:
            raise ConfigError("%s must be between %g and %g, not %g"
                              % (self._what(option), low, high, x))
        return x

    def flag(self, option):
        value = self.raw(option).lower()
        if value in ("yes", "true", "1", "on"):
            return True
        if value in ("no", "false", "0", "off"):
            return False
        raise ConfigError("%s must be yes or no, not %r" % (self._what(option), self.raw(option)))

    def pin(self, option, optional=False):
        return self.integer(option, 0, 27, optional=optional)

    def serial_port(self, option, must_exist=True):
        """A device path (must exist on this machine) or a pyserial URL."""
        port = self.text(option)
        if "://" in port:
            return port
        if must_exist and not port.startswith("/dev/pts/") and not _exists(port):
            raise ConfigError("%s: %s does not exist (is the adapter plugged in? "
                              "ls /dev/serial/by-id)" % (self._what(option), port))
        return port


def _exists(path):
    import os
    return os.path.exists(path)


SERIAL_BAUD = (1200, 921600)     # the range a Pi UART or USB adapter takes


def meter_settings(section, must_exist=True):
    return {
        "port": section.serial_port("port", must_exist),
        "model": section.text("model", METER_MODELS),
        "address": section.integer("address", 1, 247),
        "baudrate": section.integer("baudrate", 1200, 115200, choices=BAUD_RATES),
        "parity": section.text("parity", ("N", "E", "O")),
        "stopbits": section.integer("stopbits", 1, 2),
        "timeout": section.number("timeout", 0.05, 5.0),
    }


def rfid_settings(section):
    """[rfid]: the MFRC522 on /dev/spidev<spi_bus>.<spi_device>."""
    return {"bus": section.integer("spi_bus", 0, 6),
            "device": section.integer("spi_device", 0, 3),
            "reset_pin": section.pin("reset_pin", optional=True)}


def serial_settings(section, must_exist=True):
    """[pilot] and [modem]: a serial port and its baud rate."""
    return {"port": section.serial_port("port", must_exist),
            "baudrate": section.integer("baudrate", SERIAL_BAUD[0], SERIAL_BAUD[1])}


def pins_in_use(gpio):
    """{pin: setting} for every pin the [gpio] section uses; duplicates rejected."""
    used = {}
    for option in ("contactor_pin", "contactor_feedback_pin", "lock_pin", "lock_unlock_pin",
                   "lock_feedback_pin", "led_red_pin", "led_green_pin", "led_blue_pin"):
        pin = gpio.pin(option, optional=option != "contactor_pin")
        if pin is None:
            continue
        if pin in used:
            raise ConfigError("[gpio] %s uses BCM pin %d, already used by %s"
                              % (option, pin, used[pin]))
        used[pin] = option
    return used


def modem_poll_interval(cfg):
    """[modem] poll_interval: seconds between the modem's health queries (signal,
    registration); a failed query is a WeakSignal fault. 1 s on a bench that
    injects modem faults, a minute on a station (each query costs AT traffic)."""
    return Section("modem", cfg.device_sections.get("modem")).number("poll_interval", 1, 3600)
