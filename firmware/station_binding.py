"""The engine's StationInterface bound to the device workers.

Every command returns at once; the device threads carry it out. The main loop
asks for a restart; it happens after the loop has shut everything down.
"""

import logging

from ocpp_core.station import StationInterface

log = logging.getLogger("firmware.station")


class HalStation(StationInterface):
    def __init__(self, workers, on_restart):
        self.workers = workers          # cid -> {"pilot", "contactor", "lock" (or None)}
        self.on_restart = on_restart

    def set_contactor(self, cid, closed):
        log.info("connector %d: contactor %s", cid, "CLOSE" if closed else "OPEN")
        self.workers[cid]["contactor"].set(closed)

    def set_lock(self, cid, locked):
        lock = self.workers[cid].get("lock")
        if lock is not None:
            log.info("connector %d: lock %s", cid, "ENGAGE" if locked else "RELEASE")
            lock.set(locked)

    def set_offered_current(self, cid, amps):
        log.info("connector %d: offer %.1f A", cid, amps)
        self.workers[cid]["pilot"].offer(amps)

    def restart(self, kind):
        self.on_restart(kind)
