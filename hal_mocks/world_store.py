"""The simulated world kept in the firmware's data directory, and the mock HAL
on it (`--hal mock`).

The world stands for physics, so it outlives the firmware process: the EV
connections, the demand, the meter registers and the faults are saved on every
change and every meter reading (a plain write: it survives kill -9, which is
what the bench needs) and restored at the next start.
"""

import json
import logging
import os

from drivers.hal import EnergyMeter
from hal_mocks.sim import SimWorld, make_hal

# The firmware's logger: these lines belong to its start-up log.
log = logging.getLogger("firmware")

SIM_STATE_FILE = "sim-world.json"


class WorldStore:
    """Loads and saves world.physical_state() as JSON at `path`."""

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


class SavingMeter(EnergyMeter):
    """A meter whose every reading also saves the world (the register moved)."""

    def __init__(self, meter, store):
        self.meter = meter
        self.store = store

    @property
    def measurands(self):
        return self.meter.measurands

    def read(self):
        sample = self.meter.read()
        self.store.save()
        return sample


def open_world(data_dir, connectors, fixed_cable, phases):
    """(world, store): a SimWorld restored from data_dir and saved on every change."""
    world = SimWorld(number_of_connectors=connectors, fixed_cable=fixed_cable, phases=phases)
    store = WorldStore(world, os.path.join(data_dir, SIM_STATE_FILE))
    store.load()
    world.on_change = store.save
    return world, store


def build_mock_hal(data_dir, connectors, fixed_cable, phases):
    """The simulated devices (hal_mocks.sim) on the kept world; hal.bench = the world."""
    world, store = open_world(data_dir, connectors, fixed_cable, phases)
    hal = make_hal(world)
    for devices in hal.connectors.values():
        devices["meter"] = SavingMeter(devices["meter"], store)
    return hal
