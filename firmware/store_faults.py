"""A test seam: make the data dir fail as a sick SD card would, without root.

Only when the environment variable PI_OCPP_STORE_FAULTS names a control file
(tests set it; a station never does) the firmware gives its Store this object.
The file holds one word, read again before every write step (a test writes it
and the very next write obeys; a station never pays for this):

    none       every write goes through (also: the file is missing or empty)
    ENOSPC     the disk is full: writes that take space fail (save, mkdir);
               removals still go through, as on a real full file system
    EROFS      the medium is read-only: every write, rename and removal fails
    EIO        every write, rename and removal fails with an I/O error
    EIO once   the next write step fails once, then none (until the file changes)

Reads are never affected: a failing card usually still reads.
"""

import errno
import os

ENV = "PI_OCPP_STORE_FAULTS"
_CODES = {"ENOSPC": errno.ENOSPC, "EROFS": errno.EROFS, "EIO": errno.EIO}
_SPACE_OPS = ("write", "mkdir")


class ControlFileFaults:
    def __init__(self, path):
        self.path = path
        self._text = None
        self._code = None
        self._once = False

    def _refresh(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read().strip()
        except OSError:
            text = ""
        if text == self._text:
            return
        self._text = text
        words = text.split()
        self._code = _CODES.get(words[0].upper()) if words else None
        self._once = len(words) > 1 and words[1].lower() == "once"

    def check(self, op, path):
        """Called by the Store before each step that changes the medium."""
        self._refresh()
        code = self._code
        if code is None or (code == errno.ENOSPC and op not in _SPACE_OPS):
            return
        if self._once:
            self._code = None
        raise OSError(code, os.strerror(code), path)


def from_environment(environ=None):
    environ = os.environ if environ is None else environ
    path = environ.get(ENV)
    return ControlFileFaults(path) if path else None
