"""`--hal emulated`: the REAL drivers over bus-level emulations of the kept
simulated world (hal_mocks.world_store): an MFRC522 behind a fake spidev, a
pymodbus server playing an SDM630 on a pseudo-terminal, a fake RPi.GPIO wired
to the contactor and lock the way the station config says, a RAPI pilot board
and an AT modem on pseudo-terminals. Same bench socket, same commands as
`--hal mock`. One connector: one emulator of each bus.
"""

import logging

from drivers.gpio_devices import GpioBus, build_devices
from drivers.meter_modbus import ModbusMeter
from drivers.modem_at import AtModem
from drivers.pilot_rapi import RapiPilot
from drivers.rfid_mfrc522 import Mfrc522Reader
from hal_mocks.fake_gpio import FakeGPIO, wiring_for
from hal_mocks.fake_modem import start_fake_modem
from hal_mocks.mfrc522_emulator import FakeSpiDev
from hal_mocks.modbus_meter import start_meter_emulator
from hal_mocks.rapi_board import start_rapi_board
from hal_mocks.sim import make_hal
from hal_mocks.world_store import SavingMeter, open_world

# The firmware's logger: this line belongs to its start-up log.
log = logging.getLogger("firmware")

EMULATED_METER_MODEL = "SDM630"


def build_emulated_hal(data_dir, fixed_cable, phases, contactors, locks, indicator):
    """A drivers.hal.Hal of real drivers on emulated buses (hal.bench = the world).

    contactors, locks, indicator: the keyword arguments of
    drivers.gpio_devices.build_devices, from the station config. Raises
    hal_mocks.modbus_meter.EmulatorUnavailable when pymodbus cannot run the
    meter emulation; whatever was started is stopped again on any failure."""
    world, store = open_world(data_dir, 1, fixed_cable, phases)
    hal = make_hal(world)
    emulators = []
    try:
        meter_emu = start_meter_emulator(world, cid=1, model=EMULATED_METER_MODEL,
                                         address=1, transport="pty")
        emulators.append(meter_emu)
        meter = ModbusMeter(meter_emu.port, model=EMULATED_METER_MODEL, address=1,
                            baudrate=9600, timeout=0.5)
        hal.connectors[1]["meter"] = SavingMeter(meter, store)
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
        fake = FakeGPIO(world, wiring_for(contactors, locks, indicator))
        build_devices(GpioBus(fake), contactors, locks, indicator).attach_to(hal)
    except Exception:
        for emu in emulators:
            emu.stop()
        raise
    hal.on_close.extend(emu.stop for emu in reversed(emulators))
    log.info("emulated hardware: MFRC522 on fake SPI, %s on %s, RAPI pilot on %s, "
             "modem on %s, fake RPi.GPIO", EMULATED_METER_MODEL, meter_emu.port, board.port,
             modem_emu.port)
    return hal
