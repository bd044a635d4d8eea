"""Crash safety of the A/B install, with real processes and SIGKILL (issue 12:
"kill -9 at every step of the install, as the journal's crash test does").

A worker (tests/support/release_crash_worker.py) stages an update image beside
the running release, activates it and makes the restart's start-up decisions,
and SIGKILLs itself at the n-th file-system step, before or after it, for every
n. Each run starts from a fresh copy of a station on release 1.0.0. After every
kill the next start-up's decision must resolve to a complete release (every file
of its manifest present and intact): the old one or the new one, never a half
one, never none; and a trial it starts must still be able to roll back to a
complete old release.
"""

import os
import shutil
import subprocess
import sys

from firmware.images import build_image
from firmware.releases import Releases

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "support",
                      "release_crash_worker.py")


def _source(folder, version, files=6):
    for i in range(files):
        pkg = folder / ("pkg%d" % (i % 3))
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / ("m%d.py" % i)).write_text("VERSION = %r  # %s\n" % (version, "x" * 500 * i))
    (folder / "firmware").mkdir(exist_ok=True)
    (folder / "firmware" / "__init__.py").write_text("")
    return str(folder)


def _run(root, image, kill_at, after, mode="rollback"):
    return subprocess.run([sys.executable, WORKER, root, image, "2.0.0", str(kill_at),
                           "1" if after else "0", mode], capture_output=True, text=True,
                          timeout=60)


def test_kill_at_every_step_of_the_install_leaves_a_bootable_release(tmp_path):
    import firmware.images as images
    images.RELEASE_PACKAGES = images.RELEASE_PACKAGES + ("pkg0", "pkg1", "pkg2")
    try:
        seed = Releases(str(tmp_path / "seed"))
        seed.install_tree(_source(tmp_path / "old", "1.0.0"), "1.0.0")
        seed.set_current("1.0.0")
        image = str(tmp_path / "2.0.0.img")
        build_image(_source(tmp_path / "new", "2.0.0"), "2.0.0", image,
                    files=images.release_files(str(tmp_path / "new")))
    finally:
        images.RELEASE_PACKAGES = images.RELEASE_PACKAGES[:-3]

    root = str(tmp_path / "releases")
    shutil.copytree(seed.root, root, symlinks=True)
    full = _run(root, image, 0, False)
    assert full.returncode == 0, full.stderr
    activated, steps = map(int, full.stdout.split())
    assert activated > 30, "the worker counted too few steps: %d" % activated
    assert Releases(root).decide() == ("1.0.0", None)   # two unconfirmed starts: rolled back

    outcomes = set()
    # every step of stage, activate, the trial start and the rollback; then the
    # steps of a confirmation after the same trial start
    plan = [(n, "rollback") for n in range(1, steps + 1)]
    shutil.rmtree(root)
    shutil.copytree(seed.root, root, symlinks=True)
    confirmed = _run(root, image, 0, False, "confirm")
    assert confirmed.returncode == 0, confirmed.stderr
    assert Releases(root).decide() == ("2.0.0", None) and Releases(root).previous() == "1.0.0"
    plan += [(n, "confirm") for n in range(activated + 1, int(confirmed.stdout.split()[1]) + 1)]
    for kill_at, mode in plan:
        for after in (False, True):
            shutil.rmtree(root)
            shutil.copytree(seed.root, root, symlinks=True)
            p = _run(root, image, kill_at, after, mode)
            where = "%s: kill at step %d %s" % (mode, kill_at, "after" if after else "before")
            assert p.returncode == -9, "%s: %s %s" % (where, p.returncode, p.stderr)
            r = Releases(root)
            version, event = r.decide()
            assert version in ("1.0.0", "2.0.0"), where
            assert r.complete(version), where
            assert not os.path.exists(os.path.join(root, ".staging")), where
            outcomes.add(version)
            if version == "2.0.0" and r.on_trial("2.0.0"):
                back, event = r.decide()                # it never got Accepted
                assert back == "1.0.0" and r.complete("1.0.0"), where
            elif version == "2.0.0":                    # confirmed: the old one is kept
                assert mode == "confirm" and r.previous() == "1.0.0", where
                assert r.complete("1.0.0"), where
            r.prune()
            assert len(r.versions()) <= 2, where
    assert outcomes == {"1.0.0", "2.0.0"}
