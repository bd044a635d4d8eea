"""UpdateFirmware end to end (OCTT TC_044_1/3 and the A/B rollback): the real
firmware subprocess (`--hal mock`), a real CSMS (the `ocpp` package), the image
built by `python -m tools.make_image` and served by http.server on loopback.
The station installs it into DIR/releases, restarts into it and must report the
image's version in its next BootNotification; a release that fails to start or
never reaches BootNotification Accepted is rolled back."""

import functools
import http.server
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from firmware import __version__ as CHECKOUT_VERSION
from firmware.images import build_image, copy_release
from firmware.releases import Releases
from ocpp_core.timestamps import format_utc
from tests.support.firmware_process import ROOT

FW = "FirmwareStatusNotification"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    """(folder, base URL): http.server on 127.0.0.1, port 0, serving folder."""
    folder = tmp_path / "www"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield folder, "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def make_image(version, out):
    p = subprocess.run([sys.executable, "-m", "tools.make_image", "--version", version,
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr


def broken_image(tmp_path, version, out):
    """An image of a copy of this checkout whose firmware does not even compile."""
    copy = tmp_path / "broken-src"
    copy_release(ROOT, str(copy))
    (copy / "firmware" / "__main__.py").write_text("this is not python (\n")
    build_image(str(copy), version, str(out))


def update_firmware(csms, location):
    assert csms.call("CP-TEST-1", "UpdateFirmware",
                     {"location": location, "retrieveDate": format_utc(time.time())}) == {}


def fw_statuses(csms, upto, timeout=60):
    """FirmwareStatusNotifications, waited for in order until `upto` comes."""
    seen = []
    while not seen or seen[-1] != upto:
        seen.append(csms.wait_for(FW, timeout=timeout)["status"])
        assert len(seen) < 10, seen
    return seen


def boots(csms):
    return [r[2] for r in csms.received if r[1] == "BootNotification"]


def started(firmware, csms, tmp_path, extra=()):
    fw = firmware(csms.url, extra=list(extra))
    boot = csms.wait_for("BootNotification", timeout=20)
    assert boot["firmwareVersion"] == CHECKOUT_VERSION
    csms.wait_for("StatusNotification", timeout=10)
    return fw, Releases(str(tmp_path / "data" / "releases"))


def test_tc_044_1_update_installs_restarts_and_reports_the_new_version(
        ocpp_csms, firmware, http_dir, tmp_path):
    folder, base = http_dir
    make_image("9.9.9", folder / "fw-9.9.9.img")
    fw, releases = started(firmware, ocpp_csms, tmp_path)
    pid = fw.proc.pid
    update_firmware(ocpp_csms, base + "/fw-9.9.9.img")
    assert fw_statuses(ocpp_csms, "Installing") == ["Downloading", "Downloaded", "Installing"]
    boot = ocpp_csms.wait_for("BootNotification", timeout=30)
    assert boot["firmwareVersion"] == "9.9.9"
    assert fw_statuses(ocpp_csms, "Installed") == ["Installed"]
    assert fw.proc.pid == pid and fw.proc.poll() is None     # re-executed in place
    fw.wait_log("release 9.9.9 confirmed")
    assert releases.current() == "9.9.9" and releases.trial() is None
    assert releases.complete("9.9.9")
    # The code running now is the release's, not the checkout's (nor the venv's).
    log = fw.log()
    assert "starting release 9.9.9 (%s)" % os.path.realpath(releases.path("9.9.9")) in log
    reply = ocpp_csms.call("CP-TEST-1", "TriggerMessage", {"requestedMessage": FW})
    assert reply == {"status": "Accepted"}
    assert ocpp_csms.wait_for(FW)["status"] == "Idle"
    # A Reset in the release stays in it (the decision is made again: no trial left).
    assert ocpp_csms.call("CP-TEST-1", "Reset", {"type": "Soft"}) == {"status": "Accepted"}
    assert ocpp_csms.wait_for("BootNotification", timeout=30)["firmwareVersion"] == "9.9.9"


def test_the_release_runs_its_own_code(ocpp_csms, firmware, http_dir, tmp_path):
    """The release's modules are imported, not the checkout's editable install:
    an image whose firmware/__init__.py prints where it was loaded from."""
    folder, base = http_dir
    copy = tmp_path / "src"
    copy_release(ROOT, str(copy))
    with open(str(copy / "firmware" / "__init__.py"), "a") as f:
        f.write("\nimport logging as _l, ocpp_core as _o\n"
                "print('LOADED firmware=%s ocpp_core=%s' % (__file__, _o.__file__), flush=True)\n")
    build_image(str(copy), "9.9.7", str(folder / "fw.img"))
    fw, releases = started(firmware, ocpp_csms, tmp_path)
    update_firmware(ocpp_csms, base + "/fw.img")
    assert ocpp_csms.wait_for("BootNotification", timeout=30)["firmwareVersion"] == "9.9.7"
    fw.wait_log("LOADED")
    line = [x for x in fw.log().splitlines() if x.startswith("LOADED")][0]
    where = os.path.realpath(releases.path("9.9.7"))
    paths = dict(part.split("=", 1) for part in line.split()[1:])
    assert os.path.realpath(paths["firmware"]).startswith(where + os.sep), line
    assert os.path.realpath(paths["ocpp_core"]).startswith(where + os.sep), line


def test_tc_044_3_a_corrupt_image_is_installation_failed_and_changes_nothing(
        ocpp_csms, firmware, http_dir, tmp_path):
    folder, base = http_dir
    make_image("9.9.9", folder / "good.img")
    data = (folder / "good.img").read_bytes()
    (folder / "bad.img").write_bytes(data[:len(data) // 2])
    fw, releases = started(firmware, ocpp_csms, tmp_path)
    update_firmware(ocpp_csms, base + "/bad.img")
    assert fw_statuses(ocpp_csms, "InstallationFailed") == [
        "Downloading", "Downloaded", "Installing", "InstallationFailed"]
    assert releases.versions() == [] and releases.current() is None
    assert len(boots(ocpp_csms)) == 1


def test_a_release_that_fails_to_start_is_rolled_back(ocpp_csms, firmware, http_dir, tmp_path):
    folder, base = http_dir
    broken_image(tmp_path, "9.9.8", folder / "broken.img")
    fw, releases = started(firmware, ocpp_csms, tmp_path)
    pid = fw.proc.pid
    update_firmware(ocpp_csms, base + "/broken.img")
    assert fw_statuses(ocpp_csms, "Installing") == ["Downloading", "Downloaded", "Installing"]
    boot = ocpp_csms.wait_for("BootNotification", timeout=30)
    assert boot["firmwareVersion"] == CHECKOUT_VERSION        # back on the old code
    assert fw_statuses(ocpp_csms, "InstallationFailed") == ["InstallationFailed"]
    assert "release 9.9.8 failed to start; rolled back to the checkout" in fw.log()
    assert fw.proc.pid == pid and fw.proc.poll() is None
    assert releases.current() is None and releases.trial() is None
    assert releases.versions() == []


def test_a_release_never_accepted_is_rolled_back(ocpp_csms, firmware, http_dir, tmp_path):
    """The CSMS rejects the new version's BootNotification: past
    [firmware] boot_trial_seconds the station restarts and rolls back."""
    folder, base = http_dir
    make_image("9.9.9", folder / "fw.img")
    ini = tmp_path / "station.ini"
    ini.write_text("[firmware]\nboot_trial_seconds = 5\n")

    def boot_answer(payload):
        accepted = payload.get("firmwareVersion") != "9.9.9"
        return {"status": "Accepted" if accepted else "Rejected",
                "currentTime": format_utc(time.time()), "interval": 300 if accepted else 2}
    ocpp_csms.responders["BootNotification"] = boot_answer
    fw, releases = started(firmware, ocpp_csms, tmp_path, extra=["--config", str(ini)])
    update_firmware(ocpp_csms, base + "/fw.img")
    assert fw_statuses(ocpp_csms, "Installing") == ["Downloading", "Downloaded", "Installing"]
    assert ocpp_csms.wait_for("BootNotification", timeout=30)["firmwareVersion"] == "9.9.9"
    boot = ocpp_csms.wait_for("BootNotification", timeout=30,
                              predicate=lambda p: p["firmwareVersion"] != "9.9.9")
    assert boot["firmwareVersion"] == CHECKOUT_VERSION
    assert fw_statuses(ocpp_csms, "InstallationFailed") == ["InstallationFailed"]
    assert "rolled back 9.9.9" in fw.log()
    assert releases.current() is None and releases.versions() == []
    reply = ocpp_csms.call("CP-TEST-1", "TriggerMessage", {"requestedMessage": FW})
    assert reply == {"status": "Accepted"}
    assert ocpp_csms.wait_for(FW)["status"] == "Idle"       # the update has ended


def test_tc_044_2_download_failed(ocpp_csms, firmware, http_dir, tmp_path):
    folder, base = http_dir
    fw, releases = started(firmware, ocpp_csms, tmp_path)
    assert ocpp_csms.call("CP-TEST-1", "UpdateFirmware", {
        "location": base + "/missing.img", "retrieveDate": format_utc(time.time()),
        "retries": 2, "retryInterval": 1}) == {}
    assert fw_statuses(ocpp_csms, "DownloadFailed") == ["Downloading", "DownloadFailed"]
    assert "(attempt 2 of 2): HTTP 404" in fw.log()
    assert not os.path.exists(releases.root) and len(boots(ocpp_csms)) == 1


def test_the_installers_first_release_starts(ocpp_csms, firmware, tmp_path):
    """The Pi layout from the first install on (tools/deploy/install-pi.sh): the
    checkout seeded as releases/<version>/, current -> it; `python -m firmware`
    (the unit's launcher) execs into it."""
    root = tmp_path / "data" / "releases"
    p = subprocess.run([sys.executable, "-m", "firmware.releases", "--root", str(root), "seed",
                        "--version", "7.0.0", "--source", ROOT], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    fw = firmware(ocpp_csms.url)
    assert ocpp_csms.wait_for("BootNotification", timeout=20)["firmwareVersion"] == "7.0.0"
    assert "starting release 7.0.0 (%s)" % os.path.realpath(str(root / "7.0.0")) in fw.log()
    assert "on trial" not in fw.log()


def test_the_install_script_and_unit_use_the_ab_layout():
    script = os.path.join(ROOT, "tools", "deploy", "install-pi.sh")
    out = subprocess.run(["bash", script, "--dry-run"], capture_output=True, text=True).stdout
    assert "-m firmware.releases --root /var/lib/pi-ocpp/releases seed --source /opt/pi-ocpp" \
        in out
    assert out.index("pip install") < out.index("firmware.releases") < out.index("systemctl")
    with open(os.path.join(ROOT, "tools", "deploy", "pi-ocpp.service")) as f:
        unit = f.read()
    assert "ExecStart=/opt/pi-ocpp/.venv/bin/python -m firmware " in unit
    assert "--data-dir ${STATE_DIRECTORY}" in unit and "StateDirectory=pi-ocpp" in unit


def test_a_power_cut_before_accepted_rolls_back(ocpp_csms, firmware, http_dir, tmp_path):
    """kill -9 of the new release while it awaits its Accepted, then the same
    command again (a power cut): the second unconfirmed start is a rollback."""
    folder, base = http_dir
    make_image("9.9.9", folder / "fw.img")

    def boot_answer(payload):
        pending = payload.get("firmwareVersion") == "9.9.9"
        return {"status": "Pending" if pending else "Accepted",
                "currentTime": format_utc(time.time()), "interval": 30 if pending else 300}
    ocpp_csms.responders["BootNotification"] = boot_answer
    fw, releases = started(firmware, ocpp_csms, tmp_path)
    update_firmware(ocpp_csms, base + "/fw.img")
    assert ocpp_csms.wait_for("BootNotification", timeout=30,
                              predicate=lambda p: p["firmwareVersion"] == "9.9.9")
    assert releases.on_trial("9.9.9") and releases.trial()["starts"] == 1
    fw.stop(signal.SIGKILL)
    fw = firmware(ocpp_csms.url)
    boot = ocpp_csms.wait_for("BootNotification", timeout=30,
                              predicate=lambda p: p["firmwareVersion"] != "9.9.9")
    assert boot["firmwareVersion"] == CHECKOUT_VERSION
    assert fw_statuses(ocpp_csms, "InstallationFailed") == [
        "Downloading", "Downloaded", "Installing", "InstallationFailed"]
    fw.wait_log("rolled back 9.9.9")
    assert releases.current() is None and releases.trial() is None
