"""Worker for tests/test_release_crash.py: installs an update image into a
releases directory, as the firmware does, and SIGKILLs itself at a chosen step.

    python tests/support/release_crash_worker.py ROOT IMAGE VERSION KILL_AT KILL_AFTER [MODE]

The install, in the firmware's order: stage(IMAGE) (unpack, fsync, rename),
activate(VERSION) (trial record, previous link, current link), then the restart
into it: decide() (the first, counted trial start) and then, MODE "rollback"
(default), decide() again as an unconfirmed second start would (the rollback),
or, MODE "confirm", confirm(VERSION) as BootNotification Accepted does.

KILL_AT > 0: SIGKILL at the KILL_AT-th file-system step (an open for writing,
write, fsync, mkdir, rename, replace, symlink, remove, rmtree), before it
(KILL_AFTER 0) or after it (1). KILL_AT 0: run to the end and print the number
of steps after activate() and at the end.
"""

import builtins
import os
import shutil
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from firmware.releases import Releases  # noqa: E402

STEPS = [0]


def _counted(fn, kill_at, after):
    def wrapper(*args, **kw):
        STEPS[0] += 1
        n = STEPS[0]        # steps nested in this one (rmtree's unlinks) count too
        if n == kill_at and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            return fn(*args, **kw)
        finally:        # also after a step that raised (mkdir of what exists)
            if n == kill_at and after:
                os.kill(os.getpid(), signal.SIGKILL)
    return wrapper


class _File:
    """A file opened for writing whose writes are steps too."""

    def __init__(self, f, wrap):
        self._f = f
        self.write = wrap(f.write)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


def main():
    root, image, version, kill_at, after = sys.argv[1:6]
    mode = sys.argv[6] if len(sys.argv) > 6 else "rollback"
    kill_at, after = int(kill_at), after == "1"

    def wrap(fn):
        return _counted(fn, kill_at, after)

    for name in ("fsync", "mkdir", "rename", "replace", "symlink", "remove", "unlink"):
        setattr(os, name, wrap(getattr(os, name)))
    shutil.rmtree = wrap(shutil.rmtree)
    real_open = builtins.open
    counted_open = wrap(real_open)

    def open_(file, mode="r", *args, **kw):
        if any(c in mode for c in "wa+x"):
            return _File(counted_open(file, mode, *args, **kw), wrap)
        return real_open(file, mode, *args, **kw)
    builtins.open = open_

    r = Releases(root)
    r.stage(image)
    r.activate(version)
    activated = STEPS[0]
    r.decide()
    if mode == "confirm":
        r.confirm(version)
    else:
        r.decide()
    print(activated, STEPS[0])


if __name__ == "__main__":
    main()
