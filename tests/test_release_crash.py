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


def _run(root, image, kill_at, after):
    return subprocess.run([sys.executable, WORKER, root, image, "2.0.0", str(kill_at),
                           "1" if after else "0"], capture_output=True, text=True, timeout=60)


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
    steps = int(full.stdout.split()[-1])
    assert steps > 30, "the worker counted too few steps: %d" % steps
    assert Releases(root).decide() == ("1.0.0", None)   # two unconfirmed starts: rolled back

    outcomes = set()
    for kill_at in range(1, steps + 1):
        for after in (False, True):
            shutil.rmtree(root)
            shutil.copytree(seed.root, root, symlinks=True)
            p = _run(root, image, kill_at, after)
            where = "kill at step %d %s" % (kill_at, "after" if after else "before")
            assert p.returncode == -9, "%s: %s %s" % (where, p.returncode, p.stderr)
            r = Releases(root)
            version, event = r.decide()
            assert version in ("1.0.0", "2.0.0"), where
            assert r.complete(version), where
            assert not os.path.exists(os.path.join(root, ".staging")), where
            outcomes.add(version)
            if version == "2.0.0":
                assert r.on_trial("2.0.0"), where       # never confirmed without an Accepted
                back, event = r.decide()                # it never got Accepted either
                assert back == "1.0.0" and r.complete("1.0.0"), where
            assert len(r.versions()) <= 2, where
    assert outcomes == {"1.0.0", "2.0.0"}
