"""Which hardware the firmware drives.

    mock      simulated devices (hal_mocks.sim), driven by the bench socket
    emulated  the REAL drivers over bus-level emulations of the same simulated
              world: an MFRC522 behind a fake spidev, a pymodbus server playing
              an SDM630 on a pseudo-terminal, a fake RPi.GPIO wired to the
              contactor and lock, a RAPI pilot board and an AT modem on
              pseudo-terminals. Same bench socket, same commands.
    pi        the real drivers on a Raspberry Pi, from the station config.

The simulated world stands for physics and outlives the firmware process.
"""

import json
import logging
import os

from firmware.device_config import Section, meter_settings, pins_in_use
from firmware.station_config import ConfigError

log = logging.getLogger("firmware")

SIM_STATE_FILE = "sim-world.json"
EMULATED_METER_MODEL = "SDM630"


class _SimPersistence:
    """Keeps the simulated world (EV connections, demand, registers, faults) in
    the data directory on every change and every meter reading (a plain write:
    it survives kill -9, which is what the bench needs)."""

    def __init__(self, world, path):
        self.world = world
        self.path = path

    def load(self):
        try:
            with open(self.path) as f:
                self.world.restore(json.load(f))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as e:
            log.warning("simulated world state %s unreadable (%s); starting fresh", self.path, e)

    def save(self):
        try:
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.world.physical_state(), f)
            os.replace(tmp, self.path)
        except OSError:
            pass


class _SavingMeter:
    def __init__(self, meter, persistence):
        self.meter = meter
        self.persistence = persistence

    def read(self):
        sample = self.meter.read()
        self.persistence.save()
        return sample


def _sim_world(cfg):
    from hal_mocks.sim import SimWorld
    world = SimWorld(number_of_connectors=cfg.connectors, fixed_cable=cfg.fixed_cable,
                     phases=cfg.phases)
    persistence = _SimPersistence(world, os.path.join(cfg.data_dir, SIM_STATE_FILE))
    persistence.load()
    world.on_change = persistence.save
    return world, persistence


def _gpio_kwargs(cfg):
    """[gpio] -> keyword arguments of drivers.gpio_devices.build_devices."""
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


def _attach_gpio(hal, devices):
    for cid, contactor in devices.contactors.items():
        hal.connectors[cid]["contactor"] = contactor
        hal.connectors[cid]["lock"] = devices.locks.get(cid)
    if devices.indicator is not None:
        hal.indicator = devices.indicator
    hal.on_close.append(devices.close)


def build_mock(cfg):
    from hal_mocks.sim import make_hal
    world, persistence = _sim_world(cfg)
    hal = make_hal(world)
    for devices in hal.connectors.values():
        devices["meter"] = _SavingMeter(devices["meter"], persistence)
    return hal


def build_emulated(cfg):
    if cfg.connectors != 1:
        raise ConfigError("--hal emulated supports 1 connector, not %d" % cfg.connectors)
    from drivers.gpio_devices import GpioBus, build_devices
    from drivers.meter_modbus import ModbusMeter
    from drivers.modem_at import AtModem
    from drivers.pilot_rapi import RapiPilot
    from drivers.rfid_mfrc522 import Mfrc522Reader
    from hal_mocks.fake_gpio import FakeGPIO, wiring_for
    from hal_mocks.fake_modem import start_fake_modem
    from hal_mocks.mfrc522_emulator import FakeSpiDev
    from hal_mocks.modbus_meter import EmulatorUnavailable, start_meter_emulator
    from hal_mocks.rapi_board import start_rapi_board
    from hal_mocks.sim import make_hal

    world, persistence = _sim_world(cfg)
    hal = make_hal(world)
    emulators = []
    try:
        try:
            meter_emu = start_meter_emulator(world, cid=1, model=EMULATED_METER_MODEL,
                                             address=1, transport="pty")
        except EmulatorUnavailable as e:
            raise ConfigError("--hal emulated: %s" % e)
        emulators.append(meter_emu)
        meter = ModbusMeter(meter_emu.port, model=EMULATED_METER_MODEL, address=1,
                            baudrate=9600, timeout=0.5)
        hal.connectors[1]["meter"] = _SavingMeter(meter, persistence)
        hal.on_close.append(meter.close)
        board = start_rapi_board(world, cid=1, enabled=False)
        emulators.append(board)
        pilot = RapiPilot(board.port, baudrate=115200, timeout=1.0)
        hal.connectors[1]["pilot"] = pilot
        hal.on_close.append(pilot.close)
        modem_emu = start_fake_modem(world)
        emulators.append(modem_emu)
        hal.modem = AtModem(modem_emu.port, baudrate=115200, timeout=2.0)
        hal.on_close.append(hal.modem.close)
        hal.rfid = Mfrc522Reader(spi=FakeSpiDev(world))
        contactors, locks, indicator = _gpio_kwargs(cfg)
        fake = FakeGPIO(world, wiring_for(contactors, locks, indicator))
        _attach_gpio(hal, build_devices(GpioBus(fake), contactors, locks, indicator))
    except Exception:
        for emu in emulators:
            emu.stop()
        raise
    hal.on_close.extend(emu.stop for emu in reversed(emulators))
    log.info("emulated hardware: MFRC522 on fake SPI, %s on %s, RAPI pilot on %s, "
             "modem on %s, fake RPi.GPIO", EMULATED_METER_MODEL, meter_emu.port, board.port,
             modem_emu.port)
    return hal


def build_pi(cfg):
    """The real drivers. Missing devices and wrong ports fail here, at start,
    with one line naming the setting."""
    if cfg.connectors != 1:
        raise ConfigError("--hal pi supports 1 connector, not %d" % cfg.connectors)
    from drivers.gpio_devices import GpioBus, build_devices
    from drivers.hal import Hal
    from drivers.meter_modbus import ModbusMeter
    from drivers.modem_at import AtModem
    from drivers.pilot_rapi import RapiPilot
    from drivers.rfid_mfrc522 import Mfrc522Reader

    sections = cfg.device_sections
    meter_cfg = meter_settings(Section("meter", sections.get("meter")))
    pilot = Section("pilot", sections.get("pilot"))
    modem = Section("modem", sections.get("modem"))
    pilot_port, modem_port = pilot.serial_port("port"), modem.serial_port("port")
    contactors, locks, indicator = _gpio_kwargs(cfg)
    rfid = Section("rfid", sections.get("rfid"))
    bus_no, dev_no = rfid.integer("spi_bus", 0, 6), rfid.integer("spi_device", 0, 3)
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
                      "pilot": RapiPilot(pilot_port, baudrate=pilot.integer(
                          "baudrate", 1200, 921600)),
                      "contactor": None, "lock": None}}
    hal = Hal(rfid=Mfrc522Reader(bus=bus_no, device=dev_no, gpio_bus=bus),
              modem=AtModem(modem_port, baudrate=modem.integer("baudrate", 1200, 921600)),
              indicator=None, connectors=connectors)
    _attach_gpio(hal, gpio)
    hal.on_close[:0] = [hal.rfid.close, connectors[1]["pilot"].close, hal.modem.close,
                        connectors[1]["meter"].close]
    if hal.indicator is None:
        from hal_mocks.sim import SimIndicator
        hal.indicator = SimIndicator()      # no LED wired: remember the state only
    return hal


def build_hal(cfg):
    if cfg.hal == "mock":
        return build_mock(cfg)
    if cfg.hal == "emulated":
        return build_emulated(cfg)
    if cfg.hal == "pi":
        return build_pi(cfg)
    raise ConfigError("unknown HAL %r" % cfg.hal)
