"""What differs between CPython and MicroPython, chosen once at import.

On CPython every name below is the standard library's own object (time.monotonic,
os.fsync, os.replace, ...): nothing is wrapped, so the CPython path runs exactly
the code it ran before this module existed. On MicroPython (or another port that
lacks one of them) a small substitute is used instead:

    monotonic()   time.monotonic, else seconds from time.ticks_ms()/ticks_diff(),
                  accumulated so that the ticks counter wrapping (2**30 ms on most
                  ports) does not make it jump; call it at least once every few
                  days (the engine's tick() does, many times a second)
    fsync(fd)     os.fsync, else None (the store then skips that step)
    replace(a, b) os.replace, else os.rename (which replaces on POSIX, littlefs
                  and MicroPython's FAT driver)

Where json.JSONDecoder is missing (MicroPython), ocpp_core.framing decodes with
the strict pure-Python scanner of ocpp_core.json_strict: MicroPython's json.loads
accepts [1,] and turns 1e400 into inf, and cannot be made strict.
"""

import os
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"


def _ticks_monotonic_factory():
    ticks_ms, ticks_diff = time.ticks_ms, time.ticks_diff
    state = [ticks_ms(), 0]          # last reading, milliseconds accumulated

    def monotonic():
        now = ticks_ms()
        state[1] += ticks_diff(now, state[0])
        state[0] = now
        return state[1] / 1000
    return monotonic


monotonic = getattr(time, "monotonic", None)
if monotonic is None:
    monotonic = _ticks_monotonic_factory()

fsync = getattr(os, "fsync", None)       # ocpp_core.store looks it up per call instead
replace = getattr(os, "replace", None) or os.rename



def _shortest_float_repr(x):
    # MicroPython's repr(float) is not the shortest text that reads back as x
    # (98765.4 prints as 98765.39999999999); validation's multipleOf reads the
    # decimal digits of a number, so it needs that shortest text.
    if x != x or x - x != 0:
        return repr(x)             # nan / inf: the caller refuses them
    for digits in range(1, 18):
        text = "%.*g" % (digits, x)
        if float(text) == x:
            return text
    return repr(x)


# repr(float) on CPython: the shortest text that round-trips (what json.dumps writes)
float_repr = _shortest_float_repr if MICROPYTHON else repr
