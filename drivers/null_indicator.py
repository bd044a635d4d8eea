"""The indicator of a station with no status LED wired: it shows nothing and
logs each change of state at debug level, so that a technician reading a
debug log still sees what the LEDs would have shown."""

import logging

from drivers.hal import Indicator

log = logging.getLogger("drivers.indicator")


class NullIndicator(Indicator):
    def __init__(self):
        self.state = None

    def show(self, state, blink_repeat=1, intensity=50):
        if state == self.state:
            return
        self.state = state
        log.debug("no LED wired; would show %s (blink %s, intensity %s %%)",
                  state, blink_repeat, intensity)
