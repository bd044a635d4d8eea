"""Time for the engine: a monotonic clock for timers, and the wall clock
corrected by the CSMS (a Pi has no real-time clock).

Events are recorded as *stamps* (plain dicts, so they can be journaled):
    {"w": wall epoch seconds, "m": monotonic seconds, "b": boot id, "v": trusted?}
A stamp taken before the time was known is provisional: once the CSMS has set
the clock, resolve() corrects it from the monotonic clock (same boot), so no
1970 timestamp is ever sent. Both sources are injectable for virtual-time tests.
"""

import time

from ocpp_core.compat import monotonic as _monotonic
from ocpp_core.timestamps import format_utc, parse_rfc3339

# Before this instant (2024-01-01) the system clock has certainly not been set.
PLAUSIBLE_EPOCH = 1704067200


def _kernel_boot_id():
    # Monotonic time is per boot: a stamp's "m" is only comparable within one.
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()[:8]
    except OSError:
        return None


class Clock:
    def __init__(self, wall=time.time, monotonic=_monotonic, boot_id=None):
        self._wall = wall
        self.monotonic = monotonic
        self.offset = 0.0          # seconds added to the system clock
        self.source = None         # "csms" once the central system gave the time
        self.boot_id = boot_id or _kernel_boot_id() or ("%x" % int(wall() * 1000))[-8:]

    def now(self):
        """Epoch seconds, UTC (best knowledge)."""
        return self._wall() + self.offset

    def timestamp(self):
        return format_utc(self.now())

    @property
    def valid(self):
        """True when timestamps can be trusted: set by the CSMS, or a system clock
        that has plainly been synchronised (NTP)."""
        return self.source is not None or self._wall() >= PLAUSIBLE_EPOCH

    def set_from_csms(self, rfc3339_text):
        """Adopt the central system's time (BootNotification/Heartbeat currentTime).
        Returns the correction applied, in seconds."""
        target = parse_rfc3339(rfc3339_text)
        before = self.now()
        self.offset = target - self._wall()
        self.source = "csms"
        return target - before

    # --- stamps ------------------------------------------------------------------
    def stamp(self):
        return {"w": self.now(), "m": self.monotonic(), "b": self.boot_id, "v": self.valid}

    def stamp_at(self, monotonic_t):
        """A stamp for an instant on the monotonic clock (a scheduled sample is
        stamped at its exact slot, not at the moment the loop got to it)."""
        delta = monotonic_t - self.monotonic()
        return {"w": self.now() + delta, "m": monotonic_t, "b": self.boot_id, "v": self.valid}

    def resolve(self, stamp):
        """Epoch seconds for a stamp, corrected if it was provisional."""
        if stamp.get("v"):
            return stamp["w"]
        if self.valid and stamp.get("b") == self.boot_id:
            return self.now() - (self.monotonic() - stamp["m"])
        if stamp["w"] >= PLAUSIBLE_EPOCH:
            return stamp["w"]
        return self.now()  # an untrusted 1970 time from an earlier boot: the best we have

    def resolve_iso(self, stamp):
        return format_utc(self.resolve(stamp))
