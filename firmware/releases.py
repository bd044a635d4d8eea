"""The releases directory of the A/B installation (Firmware Management):

    ROOT/<version>/     a complete release (its packages, and release.json: the
                        image's manifest), only ever created by a rename
    ROOT/current        symbolic link to the release that starts
    ROOT/previous       symbolic link to the release before it (the rollback)
    ROOT/trial.json     {"version", "previous", "starts"}: `current` has not yet
                        reached BootNotification Accepted

ROOT is DIR/releases (DIR: --data-dir) unless [firmware] releases_dir says
otherwise. Every change is one atomic step (a rename, a symlink replaced by
os.replace, a file written beside and renamed), made durable by fsync before
the next one, in an order chosen so that a power cut between any two steps
leaves a start-up that resolves to a complete release (decide()):

    stage     unpack to ROOT/.staging, fsync, rename to ROOT/<version>
    activate  trial.json, then previous -> old, then current -> new
    decide    trial.json names a release `current` does not point at: the
              switch never happened, the record is dropped (the old release
              runs, the engine reports InstallationFailed); it names `current`:
              one more trial start, and a second one unconfirmed (the first
              crashed, restarted or ran past its deadline) is a rollback
    confirm   BootNotification Accepted: trial.json removed

Standard library only, and no import of the firmware package at module level:
firmware/launcher.py runs this module from a file path before any release's
packages are on sys.path.
"""

import json
import os
import shutil

CURRENT = "current"
PREVIOUS = "previous"
TRIAL = "trial.json"
MARK = "release.json"           # in each release: the manifest of the image it came from
STAGING = ".staging"
DEFAULT_TRIAL_SECONDS = 600.0   # s a new release has to reach BootNotification Accepted


class ReleaseError(Exception):
    """An operation on the releases directory failed; str(e) is one line."""


def code_root():
    """The folder holding the running `firmware` package (a release or a checkout)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def release_version(folder):
    """The version of the release in folder (its release.json), or None."""
    try:
        with open(os.path.join(folder, MARK), encoding="utf-8") as f:
            version = json.load(f).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def running_version():
    """The version of the release this code runs from, None from a checkout."""
    return release_version(code_root())


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(top):
    for root, dirs, files in os.walk(top):
        for name in files:
            with open(os.path.join(root, name), "rb+") as f:
                os.fsync(f.fileno())
        _fsync_dir(root)


def _write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


class Releases:
    def __init__(self, root):
        self.root = root

    def path(self, version):
        return os.path.join(self.root, version)

    # --- reading --------------------------------------------------------------------------
    def _link(self, name):
        """The version a link points at, when it is a complete release; else None."""
        try:
            target = os.readlink(os.path.join(self.root, name))
        except OSError:
            return None
        version = os.path.basename(target.rstrip("/"))
        if release_version(self.path(version)) != version:
            return None
        return version

    def current(self):
        return self._link(CURRENT)

    def previous(self):
        return self._link(PREVIOUS)

    def versions(self):
        """Complete releases present, sorted."""
        try:
            names = os.listdir(self.root)
        except OSError:
            return []
        return sorted(n for n in names if not n.startswith(".") and
                      release_version(self.path(n)) == n)

    def trial(self):
        """The trial record: a dict, None without one, "corrupt" when unreadable."""
        try:
            with open(os.path.join(self.root, TRIAL), encoding="utf-8") as f:
                record = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return "corrupt"
        if not isinstance(record, dict) or not isinstance(record.get("version"), str) \
                or not isinstance(record.get("starts", 0), int):
            return "corrupt"
        return record

    # --- writing --------------------------------------------------------------------------
    def _switch(self, name, version):
        """Point link `name` at version (None: remove it), atomically."""
        link = os.path.join(self.root, name)
        if version is None:
            if os.path.lexists(link):
                os.remove(link)
        else:
            tmp = os.path.join(self.root, "." + name + ".tmp")
            if os.path.lexists(tmp):
                os.remove(tmp)
            os.symlink(version, tmp)        # relative: the data dir may move
            os.replace(tmp, link)
        _fsync_dir(self.root)

    def _write_trial(self, record):
        _write_atomic(os.path.join(self.root, TRIAL),
                      json.dumps(record, sort_keys=True).encode("utf-8"))

    def _drop_trial(self):
        path = os.path.join(self.root, TRIAL)
        if os.path.lexists(path):
            os.remove(path)
            _fsync_dir(self.root)

    def _clean(self):
        """What a power cut left half done: the staging folder, temporary links."""
        shutil.rmtree(os.path.join(self.root, STAGING), ignore_errors=True)
        for name in ("." + CURRENT + ".tmp", "." + PREVIOUS + ".tmp", TRIAL + ".tmp"):
            path = os.path.join(self.root, name)
            if os.path.lexists(path):
                os.remove(path)

    def prune(self, keep=()):
        """Remove every release but current, previous and `keep` (the SD card is small)."""
        wanted = {self.current(), self.previous()} | set(keep)
        for name in os.listdir(self.root):
            if name.startswith(".") or name in (CURRENT, PREVIOUS, TRIAL) or name in wanted:
                continue
            path = self.path(name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)

    def stage(self, image, architecture=None):
        """Verify the image and unpack it as ROOT/<version> (firmware/images.py)
        -> the manifest. A refused image writes nothing; the running release
        (current) is never touched."""
        from firmware.images import ImageError, verify_image
        try:
            os.makedirs(self.root, exist_ok=True)
            self._clean()
        except OSError as e:
            raise ReleaseError("releases directory %s: %s" % (self.root, e.strerror or e))
        staging = os.path.join(self.root, STAGING)
        try:
            manifest = verify_image(image, architecture=architecture, extract_to=staging)
        except ImageError as e:
            raise ReleaseError(str(e))
        except OSError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise ReleaseError("unpacking failed: %s" % (e.strerror or e))
        return self._place(staging, manifest)

    def install_tree(self, source_dir, version):
        """Copy the release files of a checkout as ROOT/<version> (the installer's
        first release) -> the manifest written as its release.json."""
        from firmware.images import FORMAT, NOARCH, release_files
        os.makedirs(self.root, exist_ok=True)
        self._clean()
        staging = os.path.join(self.root, STAGING)
        import hashlib
        files = {}
        for rel in release_files(source_dir):
            dest = os.path.join(staging, *rel.split("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(os.path.join(source_dir, rel), "rb") as f:
                data = f.read()
            with open(dest, "wb") as f:
                f.write(data)
            files[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        return self._place(staging, {"format": FORMAT, "version": version,
                                     "architecture": NOARCH, "files": files})

    def complete(self, version):
        """True when releases/<version> holds every file of its manifest, intact."""
        import hashlib
        folder = self.path(version)
        try:
            with open(os.path.join(folder, MARK), encoding="utf-8") as f:
                files = json.load(f)["files"]
            for rel, entry in files.items():
                with open(os.path.join(folder, *rel.split("/")), "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() != entry["sha256"]:
                        return False
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return True

    def _place(self, staging, manifest):
        version = manifest["version"]
        target = self.path(version)
        try:
            if version == self.current():
                # Already the running release: nothing to replace (activating it
                # restarts into the same files).
                shutil.rmtree(staging, ignore_errors=True)
                return manifest
            with open(os.path.join(staging, MARK), "w", encoding="utf-8") as f:
                json.dump(manifest, f, sort_keys=True)
            _fsync_tree(staging)
            self.prune()
            if os.path.lexists(target):     # an older copy, not the running one
                if os.path.islink(target) or not os.path.isdir(target):
                    os.remove(target)
                else:
                    shutil.rmtree(target)
            os.rename(staging, target)
            _fsync_dir(self.root)
        except OSError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise ReleaseError("staging %s failed: %s" % (version, e.strerror or e))
        return manifest

    def activate(self, version):
        """Make the staged `version` the one that starts, on trial."""
        if release_version(self.path(version)) != version:
            raise ReleaseError("release %s is not staged" % version)
        old = self.current()
        try:
            if old != version:
                self._write_trial({"version": version, "previous": old, "starts": 0})
                if old is not None:
                    self._switch(PREVIOUS, old)
            self._switch(CURRENT, version)
        except OSError as e:
            try:        # reported as failed: the station must not switch later on
                if old != version:
                    self._switch(CURRENT, old)
                    self._drop_trial()
            except OSError:
                pass    # the next start drops a trial that current does not match
            raise ReleaseError("switching to %s failed: %s" % (version, e.strerror or e))

    def set_current(self, version):
        """Point current at version without a trial (the installer)."""
        old = self.current()
        self._drop_trial()
        if old is not None and old != version:
            self._switch(PREVIOUS, old)
        self._switch(CURRENT, version)
        self.prune()

    def confirm(self, version):
        """`version` reached BootNotification Accepted: it is no longer on trial.
        -> True when a trial was confirmed."""
        record = self.trial()
        if not isinstance(record, dict) or record["version"] != version \
                or self.current() != version:
            return False
        self._drop_trial()
        self.prune()
        return True

    def rollback(self):
        """current back to the trial's previous release (none: the checkout).
        -> the version that starts now, or None."""
        record = self.trial()
        back = record.get("previous") if isinstance(record, dict) else self.previous()
        if back is not None and release_version(self.path(back)) != back:
            back = None     # gone: the checkout the station was started from
        self._switch(CURRENT, back)
        self._drop_trial()
        # The failed release stays until the next start prunes it (enter()):
        # its files may be the code running this.
        return back

    # --- the start-up decision -------------------------------------------------------------
    def decide(self):
        """Which release starts now -> (version or None for the checkout, what
        happened: None, "trial" or "rolled back <version>"). Counts a trial start."""
        if not os.path.isdir(self.root):
            return None, None
        self._clean()
        current = self.current()
        record = self.trial()
        if record is None:
            return current, None
        if record == "corrupt":
            # Written atomically, so only a failing medium corrupts it: the
            # release it was about is not known to be good; go back.
            return self.rollback(), "rolled back (trial record unreadable)"
        if record["version"] != current:
            self._drop_trial()      # the power cut came before the switch: the old one runs
            return current, None
        starts = record.get("starts", 0) + 1
        if starts > 1:
            failed = current
            return self.rollback(), "rolled back %s (it did not reach BootNotification " \
                "Accepted)" % failed
        record["starts"] = starts
        self._write_trial(record)
        return current, "trial"

    def on_trial(self, version):
        """True while `version` is current and awaits its BootNotification Accepted."""
        record = self.trial()
        return isinstance(record, dict) and record["version"] == version \
            and self.current() == version


def main(argv=None):
    """python -m firmware.releases --root DIR seed [--version V] [--source DIR]:
    the installer's first release, from a checkout (default: the one this runs in)."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m firmware.releases")
    p.add_argument("--root", required=True, help="the releases directory")
    sub = p.add_subparsers(dest="cmd", required=True)
    seed = sub.add_parser("seed", help="install this checkout as a release and start it")
    seed.add_argument("--version", help="its version (default: the firmware's)")
    seed.add_argument("--source", help="the checkout to install (default: this one)")
    sub.add_parser("show", help="print current, previous, trial")
    args = p.parse_args(argv)
    r = Releases(args.root)
    if args.cmd == "seed":
        from firmware import __version__
        version = args.version or __version__
        r.install_tree(args.source or code_root(), version)
        r.set_current(version)
        print("release %s installed in %s, current" % (version, args.root))
    else:
        print("current %s, previous %s, trial %s" % (r.current(), r.previous(), r.trial()))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
