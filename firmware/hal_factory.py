"""Which hardware the firmware drives: --hal mock (simulated) for now."""

import json
import logging
import os

log = logging.getLogger("firmware")

SIM_STATE_FILE = "sim-world.json"


class _SimPersistence:
    """The simulated world stands for physics: an EV stays plugged and a meter
    keeps its count while the controller restarts (Reset, kill -9). Its state
    is written to the data directory on every change and every meter reading
    (a plain write: it survives kill -9, which is what the bench needs)."""

    def __init__(self, world, path):
        self.world = world
        self.path = path

    def load(self):
        try:
            with open(self.path) as f:
                state = json.load(f)
            self.world.restore(state)
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


def build_hal(cfg):
    if cfg.hal == "mock":
        from hal_mocks.sim import SimWorld, make_hal
        world = SimWorld(number_of_connectors=cfg.connectors, fixed_cable=cfg.fixed_cable,
                         phases=cfg.phases)
        persistence = _SimPersistence(world, os.path.join(cfg.data_dir, SIM_STATE_FILE))
        persistence.load()
        world.on_change = persistence.save
        hal = make_hal(world)
        for devices in hal.connectors.values():
            devices["meter"] = _SavingMeter(devices["meter"], persistence)
        return hal
    raise ValueError("unknown HAL %r" % cfg.hal)
