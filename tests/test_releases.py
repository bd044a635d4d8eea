"""The releases directory of the A/B installation (firmware/releases.py): stage,
switch, confirm, rollback, bounded retention, a corrupt trial record."""

import os

import pytest

from firmware.images import build_image
from firmware.releases import CURRENT, MARK, PREVIOUS, TRIAL, ReleaseError, Releases


def make_source(folder, marker):
    (folder / "firmware").mkdir(parents=True)
    (folder / "firmware" / "__init__.py").write_text("MARKER = %r\n" % marker)
    (folder / "ocpp_core").mkdir()
    (folder / "ocpp_core" / "x.py").write_text("X = 1\n")
    return str(folder)


@pytest.fixture
def r(tmp_path):
    return Releases(str(tmp_path / "releases"))


def image(tmp_path, version):
    src = make_source(tmp_path / ("src-" + version), version)
    out = str(tmp_path / (version + ".img"))
    build_image(src, version, out)
    return out


def installed(tmp_path, r, version="1.0.0"):
    r.install_tree(make_source(tmp_path / "checkout", version), version)
    r.set_current(version)


def test_stage_unpacks_a_complete_release_beside_the_running_one(tmp_path, r):
    installed(tmp_path, r)
    manifest = r.stage(image(tmp_path, "2.0.0"))
    assert manifest["version"] == "2.0.0"
    assert r.complete("2.0.0") and r.complete("1.0.0")
    assert r.current() == "1.0.0" and r.trial() is None      # staging switches nothing
    assert (tmp_path / "releases" / "2.0.0" / "firmware" / "__init__.py").read_text() \
        == "MARKER = '2.0.0'\n"
    assert not os.path.exists(str(tmp_path / "releases" / ".staging"))


def test_a_refused_image_stages_nothing(tmp_path, r):
    installed(tmp_path, r)
    bad = image(tmp_path, "2.0.0")
    with open(bad, "r+b") as f:
        f.truncate(200)
    with pytest.raises(ReleaseError, match="unreadable"):
        r.stage(bad)
    assert r.versions() == ["1.0.0"] and r.current() == "1.0.0"
    assert sorted(os.listdir(r.root)) == ["1.0.0", CURRENT]


def test_activate_confirm_keeps_the_previous_release(tmp_path, r):
    installed(tmp_path, r)
    r.stage(image(tmp_path, "2.0.0"))
    r.activate("2.0.0")
    assert r.current() == "2.0.0" and r.previous() == "1.0.0"
    assert os.readlink(os.path.join(r.root, CURRENT)) == "2.0.0"    # relative
    assert r.trial() == {"version": "2.0.0", "previous": "1.0.0", "starts": 0}
    assert r.decide() == ("2.0.0", "trial")
    assert r.on_trial("2.0.0")
    assert r.confirm("2.0.0") is True
    assert r.trial() is None and not r.on_trial("2.0.0")
    assert r.decide() == ("2.0.0", None)            # confirmed: no more counting
    assert r.decide() == ("2.0.0", None)
    assert r.versions() == ["1.0.0", "2.0.0"]


def test_a_second_unconfirmed_start_rolls_back(tmp_path, r):
    installed(tmp_path, r)
    r.stage(image(tmp_path, "2.0.0"))
    r.activate("2.0.0")
    assert r.decide() == ("2.0.0", "trial")
    version, event = r.decide()
    assert version == "1.0.0" and event.startswith("rolled back 2.0.0")
    assert r.current() == "1.0.0" and r.trial() is None
    assert r.versions() == ["1.0.0", "2.0.0"]       # maybe the code running the rollback
    r.prune()                                       # the next start removes it
    assert r.versions() == ["1.0.0"]
    assert r.confirm("2.0.0") is False


def test_rollback_from_a_first_release_goes_back_to_the_checkout(tmp_path, r):
    r.stage(image(tmp_path, "2.0.0"))
    r.activate("2.0.0")
    assert r.trial()["previous"] is None
    assert r.decide() == ("2.0.0", "trial")
    assert r.decide()[0] is None
    assert not os.path.lexists(os.path.join(r.root, CURRENT))


def test_no_releases_directory_is_the_checkout(r):
    assert r.decide() == (None, None)
    assert not os.path.exists(r.root)


def test_retention_is_current_and_previous(tmp_path, r):
    installed(tmp_path, r)
    for version in ("2.0.0", "3.0.0", "4.0.0"):
        r.stage(image(tmp_path, version))
        r.activate(version)
        r.decide()
        r.confirm(version)
    assert r.versions() == ["3.0.0", "4.0.0"]
    assert (r.current(), r.previous()) == ("4.0.0", "3.0.0")


def test_a_trial_record_for_a_release_not_switched_to_is_dropped(tmp_path, r):
    installed(tmp_path, r)
    r.stage(image(tmp_path, "2.0.0"))
    r._write_trial({"version": "2.0.0", "previous": "1.0.0", "starts": 0})  # cut before the switch
    assert r.decide() == ("1.0.0", None)
    assert r.trial() is None


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'{"version": 7}'])
def test_a_corrupt_trial_record_rolls_back_to_the_previous_release(tmp_path, r, content):
    installed(tmp_path, r)
    r.stage(image(tmp_path, "2.0.0"))
    r.activate("2.0.0")
    with open(os.path.join(r.root, TRIAL), "wb") as f:
        f.write(content)
    assert r.decide()[0] == "1.0.0"
    assert r.current() == "1.0.0" and r.trial() is None


def test_a_link_to_an_incomplete_release_is_not_followed(tmp_path, r):
    installed(tmp_path, r)
    os.remove(os.path.join(r.root, "1.0.0", MARK))
    assert r.current() is None and r.decide() == (None, None)
    os.symlink("nowhere", os.path.join(r.root, PREVIOUS))
    assert r.previous() is None


def test_activating_a_version_that_is_not_staged_fails(tmp_path, r):
    installed(tmp_path, r)
    with pytest.raises(ReleaseError, match="not staged"):
        r.activate("7.7.7")
    assert r.current() == "1.0.0" and r.trial() is None


def test_restaging_the_running_version_changes_nothing(tmp_path, r):
    installed(tmp_path, r)
    before = (tmp_path / "releases" / "1.0.0" / "firmware" / "__init__.py").read_text()
    r.stage(image(tmp_path, "1.0.0"))
    assert (tmp_path / "releases" / "1.0.0" / "firmware" / "__init__.py").read_text() == before
    r.activate("1.0.0")
    assert r.trial() is None and r.decide() == ("1.0.0", None)


def test_the_installer_seed_command(tmp_path):
    import subprocess
    import sys
    root = str(tmp_path / "releases")
    out = subprocess.run([sys.executable, "-m", "firmware.releases", "--root", root, "seed",
                          "--version", "5.0.0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    r = Releases(root)
    assert r.current() == "5.0.0" and r.complete("5.0.0") and r.trial() is None
    assert os.path.isfile(os.path.join(root, "5.0.0", "firmware", "launcher.py"))


def test_the_station_ini_firmware_section(tmp_path):
    import argparse

    from firmware.station_config import ConfigError, load

    def cfg(text):
        ini = tmp_path / "station.ini"
        ini.write_text(text)
        return load(argparse.Namespace(config=str(ini), hal="mock", csms_url="ws://127.0.0.1:9/x",
                                       charge_point_id="CP-1", password=None,
                                       data_dir=str(tmp_path / "data"), bench_port="0",
                                       log_level=None))
    default = cfg("")
    assert default.boot_trial_seconds == 600.0
    assert default.releases_dir == str(tmp_path / "data" / "releases")
    custom = cfg("[firmware]\nboot_trial_seconds = 90\nreleases_dir = /srv/rel\n")
    assert (custom.boot_trial_seconds, custom.releases_dir) == (90.0, "/srv/rel")
    with pytest.raises(ConfigError, match=r"\[firmware\] boot_trial_seconds must be between"):
        cfg("[firmware]\nboot_trial_seconds = 1\n")
    with pytest.raises(ConfigError, match="whole number"):
        cfg("[firmware]\nboot_trial_seconds = soon\n")


def test_firmware_version_is_the_running_releases(tmp_path, monkeypatch):
    import json

    from firmware import releases
    from tests.support.firmware_process import mock_station_config
    assert mock_station_config(tmp_path / "a").boot_fields["firmwareVersion"] != "4.5.6"
    code = tmp_path / "release"
    code.mkdir()
    (code / MARK).write_text(json.dumps({"version": "4.5.6"}))
    monkeypatch.setattr(releases, "code_root", lambda: str(code))
    assert mock_station_config(tmp_path / "b").boot_fields["firmwareVersion"] == "4.5.6"
