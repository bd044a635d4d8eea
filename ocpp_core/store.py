"""Durable, atomic, self-checking JSON files in one data directory.

An SD card (and FAT, and ext4 without data journaling) may leave a file torn
by a power cut, so every file is written the safe way and carries its own check:

    save():  write "<name>.tmp" in the same folder, flush, fsync, rename it over
             "<name>", fsync the folder. A reader sees the old content or the
             new one, never a mix.
    content: one header line "OCPPSTORE1 <crc32 hex> <body length>\\n", then the
             JSON body (UTF-8). A torn, truncated or flipped file fails the
             check and is DETECTED.
    load():  a missing file gives the default; a corrupt one is logged (one line,
             logger "ocpp.store"), renamed aside to "<name>.corrupt" for the
             technician, and also gives the default. load() never raises for bad
             content: a bad file must never stop the charger from booting.

Names are relative paths with "/" between folders ("tx/00000012"); folders are
created on demand. Leftover temp files of a save interrupted by a crash are
removed when the Store is constructed. `fsync_count` counts every fsync (of
files and of folders) for the benchmark.

append() is the other way to write: bytes added at the end of a file (kept
open), flushed and fsynced, one fsync per call (plus one of the folder when the
call created the file). A failed append may leave part of its bytes behind: the
caller (the journal's log, ocpp_core/journal_log.py) frames its records so that
such a tail is detected, and never appends to that file again. read_bytes()
reads a file back whole. An append that went through onto a file system with
no free space left sets `problem` "full" all the same (an append fills the
file's last block before it needs a new one: the card is full before a write
fails).

Every durable write (save, append, delete, move, the folders they create) goes
through one seam, `_write_step()`: there an optional `faults` object (tests only; see
firmware/store_faults.py) may make a step fail as a sick SD card would, and
there a failure is classified into `problem`:

    None         every write since the last failure went through
    "full"       ENOSPC / EDQUOT          info "data dir full"
    "read-only"  EROFS / EACCES / EPERM   info "data dir read-only"
    "io"         anything else (EIO, ...) info "data dir I/O error"

One WARNING line per change of `problem` (not one per failed write). A
successful save() clears it; while it is set, probe() (called a few seconds
apart by the journal) writes a tiny hidden file to see whether the card
recovered. The writes still raise OSError: a caller that must not promise
what it cannot keep (ChangeConfiguration, SendLocalList) needs to know.

Standard library only, plain class: portable to MicroPython (where os.fsync or
directory fsync may be missing: then those steps are skipped).
os.rename replaces an existing target on POSIX, littlefs and MicroPython's FAT.
"""

import errno
import json
import os
from ocpp_core.log import get_logger

try:
    from binascii import crc32 as _crc32
except ImportError:  # a port without binascii.crc32
    _crc32 = None

log = get_logger("ocpp.store")

FULL = "full"
READ_ONLY = "read-only"
IO_ERROR = "io"
# problem -> (StatusNotification info, vendorErrorCode)
PROBLEMS = {FULL: ("data dir full", "DataDirFull"),
            READ_ONLY: ("data dir read-only", "DataDirReadOnly"),
            IO_ERROR: ("data dir I/O error", "DataDirIOError")}
PROBE_NAME = ".probe"
_NO_SPACE = tuple(getattr(errno, n) for n in ("ENOSPC", "EDQUOT") if hasattr(errno, n))
_READ_ONLY = tuple(getattr(errno, n) for n in ("EROFS", "EACCES", "EPERM") if hasattr(errno, n))


def classify(exc):
    """The problem (FULL, READ_ONLY, IO_ERROR) a failed write means."""
    code = _errno(exc) if isinstance(exc, OSError) else None
    if code in _NO_SPACE:
        return FULL
    if code in _READ_ONLY:
        return READ_ONLY
    return IO_ERROR

MAGIC = "OCPPSTORE1"
TMP_SUFFIX = ".tmp"
CORRUPT_SUFFIX = ".corrupt"

_CRC_TABLE = None


def _crc32_portable(data):
    """CRC-32 (IEEE 802.3, as zlib) for ports without binascii.crc32."""
    global _CRC_TABLE
    if _CRC_TABLE is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            table.append(c)
        _CRC_TABLE = table
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def checksum(data):
    if _crc32 is not None:
        return _crc32(data) & 0xFFFFFFFF
    return _crc32_portable(data)


def encode(obj):
    """The bytes save() writes for obj: header line + JSON body."""
    body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return ("%s %08x %d\n" % (MAGIC, checksum(body), len(body))).encode() + body


class Corrupt(Exception):
    pass


def decode(data):
    """obj from bytes written by encode(); raises Corrupt(reason) otherwise."""
    nl = data.find(b"\n")
    if nl < 0:
        raise Corrupt("empty" if not data else "no header line")
    parts = data[:nl].split(b" ")
    if len(parts) != 3 or parts[0] != MAGIC.encode():
        raise Corrupt("bad header")
    try:
        crc = int(parts[1], 16)
        length = int(parts[2])
    except ValueError:
        raise Corrupt("bad header")
    body = data[nl + 1:]
    if len(body) != length:
        raise Corrupt("%d bytes, expected %d" % (len(body), length))
    if checksum(body) != crc:
        raise Corrupt("checksum mismatch")
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeError):
        raise Corrupt("not JSON")


def _errno(e):
    return getattr(e, "errno", None) or (e.args[0] if e.args else None)


def _is_dir(path):
    try:
        return (os.stat(path)[0] & 0o170000) == 0o040000
    except OSError:
        return False


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _check_name(name):
    if not isinstance(name, str) or not name:
        raise ValueError("bad store name %r" % (name,))
    for part in name.split("/"):
        if not part or part.startswith(".") or part.endswith(TMP_SUFFIX) \
                or part.endswith(CORRUPT_SUFFIX):
            raise ValueError("bad store name %r" % (name,))


class Store:
    def __init__(self, directory, faults=None, probe=False):
        self.directory = directory.rstrip("/") or "/"
        self.fsync_count = 0
        self.faults = faults          # tests only: .check(op, path) may raise OSError
        self.problem = None           # see the module docstring
        self.problem_detail = None    # the last failure's text (diagnostics)
        self.failed_writes = 0        # counted, not logged one by one
        self._known_dirs = set()
        self._open_files = {}         # name -> file object kept open by append()
        try:
            self._make_dirs("")
        except OSError as e:          # e.g. a read-only card: boot degraded, reads still work
            self._failed(e)
        removed = self._clean_temp("")
        if removed:
            log.info("removed %d temp file(s) left by an interrupted save", removed)
        if probe and self.problem is None:
            self.probe()      # a card that is full or read-only at boot is known at once

    # --- health ------------------------------------------------------------------------
    def _write_step(self, op, path):
        """Every step that changes the medium passes here first (the fault seam)."""
        if self.faults is not None:
            self.faults.check(op, path)

    def _failed(self, e):
        self.failed_writes += 1
        problem = classify(e)
        self.problem_detail = "%s: %s" % (type(e).__name__, e)
        if problem != self.problem:
            self.problem = problem
            log.warning("data dir %s: %s (%s); durable writes are retried, "
                        "nothing that cannot be kept is promised", self.directory,
                        PROBLEMS[problem][0], self.problem_detail)

    def _succeeded(self):
        if self.problem is not None:
            log.warning("data dir %s is writable again (%s cleared)", self.directory,
                        PROBLEMS[self.problem][0])
            self.problem = None
            self.problem_detail = None

    def _guarded(self, fn, *args):
        try:
            result = fn(*args)
        except OSError as e:
            self._failed(e)
            raise
        return result

    def probe(self):
        """Is the medium writable again? Writes (and fsyncs) a tiny hidden file;
        True and the problem cleared when it went through."""
        try:
            self._save_path(PROBE_NAME, encode({"probe": self.failed_writes}), "")
        except OSError as e:
            self._failed(e)
            return False
        if self.problem == FULL and self.free_bytes() == 0:
            return False      # root may write into the reserved blocks: still full
        self._succeeded()
        return True

    # --- paths ---------------------------------------------------------------------
    def _path(self, rel):
        return self.directory + "/" + rel if rel else self.directory

    def _make_dirs(self, rel_dir):
        """Create the folder (and parents) durably: each new folder's entry is
        fsynced in its parent."""
        if rel_dir in self._known_dirs:
            return
        if not _is_dir(self._path(rel_dir)):
            if rel_dir == "":
                self._make_root(self.directory)
            else:
                parent = rel_dir.rpartition("/")[0]
                self._make_dirs(parent)
                try:
                    self._write_step("mkdir", self._path(rel_dir))
                    os.mkdir(self._path(rel_dir))
                except OSError as e:
                    if _errno(e) != errno.EEXIST:
                        raise
                self._fsync_dir(self._path(parent))
        self._known_dirs.add(rel_dir)

    def _make_root(self, path):
        parent = path.rpartition("/")[0]
        if parent and not _is_dir(parent):
            self._make_root(parent)
        try:
            self._write_step("mkdir", path)
            os.mkdir(path)
        except OSError as e:
            if _errno(e) != errno.EEXIST:
                raise
        self._fsync_dir(parent or ".")

    def _clean_temp(self, rel_dir):
        removed = 0
        path = self._path(rel_dir)
        try:
            entries = os.listdir(path)
        except OSError:
            return 0
        for entry in entries:
            rel = rel_dir + "/" + entry if rel_dir else entry
            if entry.endswith(TMP_SUFFIX):
                try:
                    self._write_step("unlink", self._path(rel))
                    os.unlink(self._path(rel))
                    removed += 1
                except OSError as e:
                    log.warning("cannot remove temp file %s: %s", rel, e)
            elif _is_dir(self._path(rel)):
                removed += self._clean_temp(rel)
        if removed:
            self._fsync_dir(path)
        return removed

    # --- durability --------------------------------------------------------------------
    def _fsync_fd(self, fd):
        fsync = getattr(os, "fsync", None)   # looked up per call: MicroPython has none
        if fsync is None:
            return
        fsync(fd)
        self.fsync_count += 1

    def _fsync_dir(self, path):
        """Make a rename/unlink/create in the folder durable. Skipped where a
        folder cannot be opened (e.g. MicroPython, Windows)."""
        opener = getattr(os, "open", None)
        if opener is None or getattr(os, "fsync", None) is None:
            return
        try:
            fd = opener(path, os.O_RDONLY)
        except OSError:
            return
        try:
            self._fsync_fd(fd)
        except OSError:
            pass  # a file system that cannot sync folders
        finally:
            os.close(fd)

    # --- API -----------------------------------------------------------------------------
    def save(self, name, obj):
        """Write obj as JSON, atomically and durably. Raises OSError (e.g. disk
        full) without touching the previous content; ValueError/TypeError for
        something that is not JSON."""
        _check_name(name)
        data = encode(obj)
        self._guarded(self._save_path, name, data, name.rpartition("/")[0])
        self._succeeded()

    def _save_path(self, name, data, folder):
        self._make_dirs(folder)
        path = self._path(name)
        tmp = path + TMP_SUFFIX
        try:
            self._write_step("write", tmp)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                self._fsync_fd(f.fileno())
            self._write_step("rename", path)
            os.rename(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self._fsync_dir(self._path(folder))

    def append(self, name, data):
        """Add data at the end of the file (created if missing), durably: one
        fsync (and one of the folder when the file is new). Raises OSError; the
        file may then end with part of data (see the module docstring)."""
        _check_name(name)
        self._guarded(self._append_path, name, data)
        if self.free_bytes() == 0:
            # The bytes fitted in the file's last block, the next ones will not:
            # "full" now, as a save() (a new file, new blocks) would find it.
            self._failed(OSError(errno.ENOSPC, "no space left after an append"))
            return
        self._succeeded()

    def _append_path(self, name, data):
        folder = name.rpartition("/")[0]
        self._make_dirs(folder)
        path = self._path(name)
        f = self._open_files.get(name)
        created = False
        try:
            self._write_step("write", path)
            if f is None:
                created = not _exists(path)
                f = open(path, "ab")
                self._open_files[name] = f
            self._put(f, data)
            f.flush()
            self._fsync_fd(f.fileno())
        except BaseException:
            self.close_file(name)
            raise
        if created:
            self._fsync_dir(self._path(folder))

    def _put(self, f, data):
        # one place where appended bytes are written (the crash test tears them here)
        f.write(data)

    def close_file(self, name):
        """Close the file append() keeps open (if it does)."""
        f = self._open_files.pop(name, None)
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def read_bytes(self, name):
        """The file's bytes, or None when it is missing. Raises OSError when it
        cannot be read."""
        _check_name(name)
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except OSError as e:
            if _errno(e) in (errno.ENOENT, errno.EISDIR):
                return None
            raise

    def load(self, name, default=None):
        """The saved object; default if the file is missing, or corrupt (then
        logged once and moved aside)."""
        _check_name(name)
        path = self._path(name)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            if _errno(e) in (errno.ENOENT, errno.EISDIR):
                return default  # nothing there (a folder is not a file of ours)
            reason = "unreadable: %s" % (e,)
        else:
            try:
                return decode(data)
            except Corrupt as e:
                reason = e.args[0]
        self._set_aside_corrupt(name, reason)
        return default

    def _set_aside_corrupt(self, name, reason):
        target = name + CORRUPT_SUFFIX
        n = 1
        while _exists(self._path(target)):
            target = "%s.%d%s" % (name, n, CORRUPT_SUFFIX)
            n += 1
        try:
            self._write_step("rename", self._path(target))
            os.rename(self._path(name), self._path(target))
            self._fsync_dir(self._path(name.rpartition("/")[0]))
            log.error("file %s is corrupt (%s); moved aside to %s", name, reason, target)
        except OSError as e:
            log.error("file %s is corrupt (%s); could not move it aside: %s", name, reason, e)

    def exists(self, name):
        _check_name(name)
        return _exists(self._path(name))

    def delete(self, name):
        """Remove durably; False if there was nothing to remove."""
        _check_name(name)
        self.close_file(name)
        try:
            self._write_step("unlink", self._path(name))
            os.unlink(self._path(name))
        except OSError as e:
            if _errno(e) == errno.ENOENT:
                return False
            self._failed(e)
            raise
        self._fsync_dir(self._path(name.rpartition("/")[0]))
        return True

    def move(self, name, new_name):
        """Rename durably (atomic on one file system), replacing new_name."""
        _check_name(name)
        _check_name(new_name)
        folder, new_folder = name.rpartition("/")[0], new_name.rpartition("/")[0]
        self._guarded(self._make_dirs, new_folder)
        self._guarded(self._rename, name, new_name)
        self._fsync_dir(self._path(new_folder))
        if new_folder != folder:
            self._fsync_dir(self._path(folder))

    def _rename(self, name, new_name):
        self._write_step("rename", self._path(new_name))
        os.rename(self._path(name), self._path(new_name))

    def free_bytes(self):
        """Bytes available to us on the data dir's file system, or None."""
        statvfs = getattr(os, "statvfs", None)
        if statvfs is None:
            return None
        try:
            st = statvfs(self.directory)
        except OSError:
            return None
        return st[1] * st[4]     # f_frsize * f_bavail

    def names(self, prefix=""):
        """Sorted names of the stored files that start with prefix (temp and
        corrupt files excluded)."""
        out = []
        self._walk(prefix.rpartition("/")[0], out, False)
        return sorted(n for n in out if n.startswith(prefix))

    def corrupt_names(self, prefix=""):
        """Sorted names of the files moved aside as corrupt (for diagnostics)."""
        out = []
        self._walk(prefix.rpartition("/")[0], out, True)
        return sorted(n for n in out if n.startswith(prefix))

    def _walk(self, rel_dir, out, corrupt):
        try:
            entries = os.listdir(self._path(rel_dir))
        except OSError:
            return
        for entry in entries:
            rel = rel_dir + "/" + entry if rel_dir else entry
            if entry.endswith(TMP_SUFFIX):
                continue
            if entry.endswith(CORRUPT_SUFFIX):
                if corrupt:
                    out.append(rel)
                continue
            if entry.startswith("."):
                continue
            if _is_dir(self._path(rel)):
                self._walk(rel, out, corrupt)
            elif not corrupt:
                out.append(rel)
