"""Firmware Management, UpdateFirmware (ocpp_core/firmware_management/): OCTT
TC_044_1/2/3 and the readings around them, in process on a virtual clock with
exact message order. The firmware's transfers are a recorder (FakeTransfers)
or the real worker against a loopback HTTP server. End to end with the real
firmware process: tests/test_e2e_firmware_update.py."""


import pytest

from firmware.images import build_image
from firmware.transfers import FirmwareTransfers
from ocpp_core import firmware_management
from ocpp_core.firmware_management.updates import MAX_WAIT_FOR_TRANSACTIONS
from ocpp_core.station import StationProfile
from ocpp_core.timestamps import format_utc
from tests.support.core_harness import Harness
from tests.support.file_server import FileServer
from tests.support.firmware_transfers import (FakeTransfers, deliver_firmware_results,
                                              running_worker)
from tests.support.firmware_transfers import firmware_done as done

FAST = {"MinimumStatusDuration": 0}
TAG = "04A1B2C3"
LOCATION = "ftp://op:secret@ftp.example.com/fw/image-9.9.9.tgz"
FW = "FirmwareStatusNotification"


def wire(h, transfers, version="1.0.0"):
    """The engine as the firmware would build it once the profile is registered."""
    h.cp.registration.boot_payload["firmwareVersion"] = version
    h.cp.firmware.attach(transfers)
    for op in firmware_management.operations(h.cp):
        h.cp.rpc.on(op.action, op.handle)


@pytest.fixture
def fake():
    return FakeTransfers()


@pytest.fixture
def h(tmp_path, fake):
    harness = Harness(tmp_path / "data", config=FAST)
    wire(harness, fake)
    harness.boot()
    yield harness
    harness.check_clean()


def update(h, location=LOCATION, in_s=0, **extra):
    payload = {"location": location, "retrieveDate": format_utc(h.clock.now() + in_s)}
    payload.update(extra)
    return h.call("UpdateFirmware", payload)


def fw_statuses(h, since=0):
    return [p["status"] for p in h.payloads(FW, since)]


def triggered(h):
    m = h.mark()
    assert h.call("TriggerMessage", {"requestedMessage": FW}) == {"status": "Accepted"}
    h.pump()
    return fw_statuses(h, m)


def reboot(h, fake, version):
    h.power_cut()
    h.power_on()
    wire(h, fake, version)
    h.boot()


def test_tc_044_1_download_and_install(h, fake):
    m = h.mark()
    assert update(h) == {}
    h.advance(0)
    assert fake.calls == [("download", LOCATION, 3, 60)]
    assert triggered(h) == ["Downloading"]
    done(h, "download", True, "/data/firmware/update.img")
    assert fake.calls[-1] == ("install",)
    done(h, "install", True, {"version": "9.9.9"})
    assert fake.calls[-1] == ("activate", "9.9.9")
    assert fw_statuses(h, m) == ["Downloading", "Downloading", "Downloaded", "Installing"]
    reboot(h, fake, "9.9.9")            # the firmware restarted into the new release
    after_boot = [a for a, _ in h.sent(since=m) if a != "SecurityEventNotification"]
    assert after_boot[-1] == FW and "BootNotification" in after_boot
    # whitepaper: FirmwareUpdated (critical) once the new firmware runs
    assert [p["type"] for p in h.payloads("SecurityEventNotification", m)] == ["FirmwareUpdated"]
    assert fw_statuses(h, m)[-1] == "Installed"
    assert triggered(h) == ["Idle"]


def test_tc_044_2_download_failed(h, fake):
    m = h.mark()
    update(h, retries=2, retryInterval=5)
    h.advance(0)
    assert fake.calls == [("download", LOCATION, 2, 5)]
    done(h, "download", False, "HTTP 404 Not Found")
    assert fw_statuses(h, m) == ["Downloading", "DownloadFailed"]
    assert [c[0] for c in fake.calls] == ["download"]
    assert triggered(h) == ["Idle"]
    assert h.statuses(1)[-1] == "Available"


def test_tc_044_3_installation_failed(h, fake):
    m = h.mark()
    update(h)
    h.advance(0)
    done(h, "download", True, "img")
    done(h, "install", False, "checksum mismatch for firmware/main_loop.py")
    assert fw_statuses(h, m) == ["Downloading", "Downloaded", "Installing",
                                 "InstallationFailed"]
    assert ("activate", "9.9.9") not in fake.calls
    assert triggered(h) == ["Idle"]
    assert h.statuses(1)[-1] == "Available"


def test_idle_when_nothing_happens(h):
    assert triggered(h) == ["Idle"]


def test_retries_zero_is_one_attempt(h, fake):
    update(h, retries=0)
    h.advance(0)
    assert fake.calls == [("download", LOCATION, 1, 60)]


def test_retrieve_date_in_the_future_delays_the_download(h, fake):
    m = h.mark()
    update(h, in_s=600)
    h.advance(599)
    assert fake.calls == [] and fw_statuses(h, m) == []
    assert triggered(h) == ["Idle"]
    h.advance(2)
    assert fake.calls == [("download", LOCATION, 3, 60)]


def test_a_waiting_update_survives_a_restart(h, fake):
    update(h, in_s=600)
    h.advance(10)
    reboot(h, fake, "1.0.0")
    h.advance(300)
    assert fake.calls == []
    h.advance(300)
    assert fake.calls == [("download", LOCATION, 3, 60)]


def test_a_download_interrupted_by_a_restart_starts_again(h, fake):
    m = h.mark()
    update(h)
    h.advance(0)
    reboot(h, fake, "1.0.0")
    assert len([c for c in fake.calls if c[0] == "download"]) == 2
    assert fw_statuses(h, m) == ["Downloading", "Downloading"]


def test_rollback_reports_installation_failed(h, fake):
    m = h.mark()
    update(h)
    h.advance(0)
    done(h, "download", True, "img")
    done(h, "install", True, {"version": "9.9.9"})
    reboot(h, fake, "1.0.0")            # the new release did not come up: back on the old one
    assert fw_statuses(h, m)[-1] == "InstallationFailed"
    assert triggered(h) == ["Idle"]


def test_activation_that_fails_is_installation_failed(h, fake):
    m = h.mark()
    update(h)
    h.advance(0)
    done(h, "download", True, "img")
    done(h, "install", True, {"version": "9.9.9"})
    done(h, "activate", False, "cannot switch releases/current")
    assert fw_statuses(h, m)[-1] == "InstallationFailed"
    assert h.statuses(1)[-1] == "Available"


def test_a_new_update_replaces_a_waiting_one(h, fake):
    update(h, in_s=600)
    update(h, location="http://example.com/other.tgz", in_s=10)
    h.advance(11)
    assert fake.calls == [("download", "http://example.com/other.tgz", 3, 60)]


def test_nothing_starts_before_the_registration_is_accepted(tmp_path, fake):
    h = Harness(tmp_path / "data", config=FAST, boot_answers=[("Pending", 60)])
    wire(h, fake)
    h.boot()
    h.cp.firmware.request(LOCATION, h.clock.now())
    h.advance(30)
    assert fake.calls == [] and fw_statuses(h) == []
    h.advance(40)       # the next BootNotification is accepted
    assert fake.calls == [("download", LOCATION, 3, 60)]


@pytest.fixture
def h2(tmp_path, fake):
    harness = Harness(tmp_path / "data", config=FAST, profile=StationProfile(number_of_connectors=2))
    wire(harness, fake)
    harness.boot()
    yield harness
    harness.check_clean()


def start_session(h, cid):
    h.plug(cid)
    h.tap(TAG)
    assert h.cp.connectors[cid].in_transaction


def test_installation_waits_for_the_transaction_connectors_unavailable(h2, fake):
    h = h2
    start_session(h, 1)
    m = h.mark()
    update(h)
    h.advance(0)
    done(h, "download", True, "img")
    assert fw_statuses(h, m) == ["Downloading", "Downloaded"]
    assert fake.calls[-1][0] == "download"          # not installing while charging
    assert h.statuses(2, m)[-1] == "Unavailable"
    assert h.statuses(1, m) in ([], ["Charging"]) or h.statuses(1, m)[-1] == "Charging"
    h.plug(2)
    h.tap("AABBCCDD")
    assert not h.cp.connectors[2].in_transaction   # no new session during the update
    h.advance(60)
    assert fake.calls[-1][0] == "download"
    h.unplug(1)                                     # the transaction ends
    h.advance(0)
    assert fake.calls[-1] == ("install",)
    assert fw_statuses(h, m) == ["Downloading", "Downloaded", "Installing"]
    stop = h.payloads("StopTransaction", m)
    assert stop and stop[0]["reason"] == "EVDisconnected"


def test_the_wait_for_transactions_has_a_maximum(h, fake):
    assert h.cp.firmware.max_wait == MAX_WAIT_FOR_TRANSACTIONS == 24 * 3600
    h.cp.firmware.max_wait = 600.0      # the documented maximum, shortened for the test
    start_session(h, 1)
    m = h.mark()
    update(h)
    h.advance(0)
    done(h, "download", True, "img")
    h.advance(590, step=10)
    assert fake.calls[-1][0] == "download" and h.cp.connectors[1].in_transaction
    h.advance(20, step=5)
    assert fake.calls[-1] == ("install",)
    assert h.payloads("StopTransaction", m)[0]["reason"] == "Reboot"


# --- with the firmware's real worker and a loopback HTTP server ---------------------------------
@pytest.fixture
def served(tmp_path):
    src = tmp_path / "src"
    (src / "firmware").mkdir(parents=True)
    (src / "firmware" / "__init__.py").write_text("")
    build_image(str(src), "9.9.9", str(tmp_path / "good.img"))
    good = (tmp_path / "good.img").read_bytes()
    server = FileServer({"/good.img": good, "/bad.img": good[:len(good) // 2]})
    yield server.base
    server.stop()


def run_with_worker(tmp_path, location):
    h = Harness(tmp_path / "data", config=FAST)
    with running_worker() as worker:
        wire(h, FirmwareTransfers(worker, str(tmp_path / "data"), timeout=5))
        h.boot()
        m = h.mark()
        update(h, location=location, retries=1)
        h.advance(0)
        deliver_firmware_results(h, worker.events, 3)     # download, check, activation
        h.check_clean()
        return fw_statuses(h, m)


def test_tc_044_1_real_download_and_image_check(tmp_path, served):
    # A valid image is downloaded, verified, staged and switched in (the restart
    # into it: tests/test_e2e_firmware_update.py); the update awaits that boot.
    assert run_with_worker(tmp_path, served + "/good.img") == [
        "Downloading", "Downloaded", "Installing"]
    from firmware.releases import Releases
    releases = Releases(str(tmp_path / "data" / "releases"))
    assert releases.current() == "9.9.9" and releases.on_trial("9.9.9")


def test_tc_044_2_real_download_404(tmp_path, served):
    assert run_with_worker(tmp_path, served + "/none.img") == ["Downloading", "DownloadFailed"]


def test_tc_044_3_real_truncated_image(tmp_path, served):
    assert run_with_worker(tmp_path, served + "/bad.img") == [
        "Downloading", "Downloaded", "Installing", "InstallationFailed"]


def test_the_main_loop_hands_transfer_results_to_the_engine():
    from firmware.events import TRANSFER, Event
    from firmware.main_loop import Firmware
    from firmware.transfers import TransferResult
    seen = []

    class Stub:
        class cp:
            class firmware:
                transfer_done = staticmethod(lambda *args: seen.append(args))

    handler = getattr(Firmware, Firmware.ON_EVENT[TRANSFER])
    handler(Stub(), Event(TRANSFER, None, TransferResult("download", True, "f", 2)))
    assert seen == [("download", True, "f")]
