"""Which hardware the firmware drives.

    mock      simulated devices (hal_mocks.sim), driven by the bench socket
              (assembled by hal_mocks.world_store)
    emulated  the REAL drivers over bus-level emulations of the same simulated
              world, wired as the [gpio] section says (hal_mocks.emulated).
              Same bench socket, same commands.
    pi        the real drivers on a Raspberry Pi, from the station config.

Here: the choice, and the station config turned into driver settings (a bad
setting is a ConfigError naming it). The simulated world stands for physics
and outlives the firmware process (hal_mocks.world_store keeps it).
"""

import os

from firmware.device_config import (Section, meter_settings, modem_poll_interval, pins_in_use,
                                    rfid_settings, serial_settings)
from firmware.station_config import ConfigError


def _gpio_kwargs(cfg):
    """[gpio] -> keyword arguments of drivers.gpio_devices.build_devices (for the
    Pi, and for the fake RPi.GPIO of the emulated HAL)."""
    g = Section("gpio", cfg.device_sections.get("gpio"))
    pins_in_use(g)      # duplicates -> ConfigError naming the setting
    contactors = {1: dict(coil_pin=g.pin("contactor_pin"),
                          active_high=g.flag("contactor_active_high"),
                          feedback_pin=g.pin("contactor_feedback_pin", optional=True),
                          feedback_active_high=g.flag("contactor_feedback_active_high"))}
    locks = {}
    actuator = g.text("lock_actuator", ("none", "level", "pulse"))
    if not cfg.fixed_cable:
        if actuator == "none":
            raise ConfigError("[gpio] lock_actuator must be level or pulse for a socket outlet "
                              "(fixed_cable = no)")
        lock = dict(actuator=actuator, feedback_pin=g.pin("lock_feedback_pin", optional=True),
                    active_high=g.flag("lock_active_high"))
        if actuator == "level":
            lock["motor_pin"] = g.pin("lock_pin")
        else:
            lock["lock_pin"] = g.pin("lock_pin")
            lock["unlock_pin"] = g.pin("lock_unlock_pin")
        locks[1] = lock
    leds = [g.pin(o, optional=True) for o in ("led_red_pin", "led_green_pin", "led_blue_pin")]
    indicator = None
    if any(p is not None for p in leds):
        indicator = dict(red_pin=leds[0], green_pin=leds[1], blue_pin=leds[2],
                         active_high=g.flag("led_active_high"))
    return contactors, locks, indicator


def build_mock(cfg):
    from hal_mocks.world_store import build_mock_hal
    return build_mock_hal(cfg.data_dir, cfg.connectors, cfg.fixed_cable, cfg.phases)


def build_emulated(cfg):
    if cfg.connectors != 1:
        raise ConfigError("--hal emulated supports 1 connector, not %d" % cfg.connectors)
    from hal_mocks.emulated import build_emulated_hal
    from hal_mocks.modbus_meter import EmulatorUnavailable

    contactors, locks, indicator = _gpio_kwargs(cfg)    # a bad setting fails before any emulator
    try:
        return build_emulated_hal(cfg.data_dir, cfg.fixed_cable, cfg.phases,
                                  contactors, locks, indicator)
    except EmulatorUnavailable as e:
        raise ConfigError("--hal emulated: %s" % e)


def build_pi(cfg):
    """The real drivers. Missing devices and wrong ports fail here, at start,
    with one line naming the setting."""
    if cfg.connectors != 1:
        raise ConfigError("--hal pi supports 1 connector, not %d" % cfg.connectors)
    from drivers.gpio_devices import GpioBus, build_devices
    from drivers.hal import Hal
    from drivers.meter_modbus import ModbusMeter
    from drivers.modem_at import AtModem
    from drivers.null_indicator import NullIndicator
    from drivers.pilot_rapi import RapiPilot
    from drivers.rfid_mfrc522 import Mfrc522Reader

    sections = cfg.device_sections
    meter_cfg = meter_settings(Section("meter", sections.get("meter")))
    pilot_cfg = serial_settings(Section("pilot", sections.get("pilot")))
    modem_cfg = serial_settings(Section("modem", sections.get("modem")))
    contactors, locks, indicator = _gpio_kwargs(cfg)
    rfid_cfg = rfid_settings(Section("rfid", sections.get("rfid")))
    bus_no, dev_no = rfid_cfg["bus"], rfid_cfg["device"]
    if not os.path.exists("/dev/spidev%d.%d" % (bus_no, dev_no)):
        raise ConfigError("[rfid] spi_bus/spi_device: /dev/spidev%d.%d does not exist "
                          "(enable SPI: raspi-config nonint do_spi 0, then reboot)"
                          % (bus_no, dev_no))
    bus = GpioBus()
    for pin in (7, 8, 9, 10, 11):       # SPI0 belongs to the card reader
        bus.reserve("[rfid] SPI0 pin", pin)
    try:
        gpio = build_devices(bus, contactors, locks, indicator)
    except ValueError as e:
        raise ConfigError(str(e))
    connectors = {1: {"meter": ModbusMeter(**meter_cfg),
                      "pilot": RapiPilot(pilot_cfg["port"], baudrate=pilot_cfg["baudrate"]),
                      "contactor": None, "lock": None}}
    hal = Hal(rfid=Mfrc522Reader(bus=bus_no, device=dev_no, gpio_bus=bus,
                                 reset_pin=rfid_cfg["reset_pin"]),
              modem=AtModem(modem_cfg["port"], baudrate=modem_cfg["baudrate"]),
              indicator=None, connectors=connectors)
    gpio.attach_to(hal)
    hal.on_close[:0] = [hal.rfid.close, connectors[1]["pilot"].close, hal.modem.close,
                        connectors[1]["meter"].close]
    if hal.indicator is None:
        hal.indicator = NullIndicator()     # no LED wired: the debug log says the state
    return hal


def build_hal(cfg):
    modem_poll_interval(cfg)      # a bad setting fails at start, before any device opens
    if cfg.hal == "mock":
        return build_mock(cfg)
    if cfg.hal == "emulated":
        return build_emulated(cfg)
    if cfg.hal == "pi":
        return build_pi(cfg)
    raise ConfigError("unknown HAL %r" % cfg.hal)
