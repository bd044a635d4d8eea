"""The station survives its SD card (issue 18): `python -m firmware --hal mock` as
a subprocess against the `ocpp` CSMS, the data dir failing through the Store's
fault seam (PI_OCPP_STORE_FAULTS names a control file: firmware/store_faults.py),
so that no root is needed; one test on a real, small tmpfs where root may mount.

What the CSMS must see: StatusNotification connector 0 errorCode OtherError with
info naming the problem and a vendorErrorCode when it starts, NoError when it
clears; every StopTransaction; nothing promised that a reboot would lose."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from ocpp_core.store import Store
from tests.support.firmware_process import Bench, bench_port_of

TAG = "04A1B2C3"
CP = "CP-TEST-1"


class Faults:
    """The control file the firmware's store seam reads (at most every 0.2 s)."""

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "store-faults")
        self.set("none")

    def set(self, word):
        with open(self.path + ".new", "w") as f:
            f.write(word + "\n")
        os.replace(self.path + ".new", self.path)

    @property
    def env(self):
        return {"PI_OCPP_STORE_FAULTS": self.path}


def _journal_of(data):
    """The journal of a stopped firmware's data dir, as its next start reads it."""
    from ocpp_core.clock import Clock
    from ocpp_core.journal import Journal
    return Journal(Store(data), Clock(), {}.get)


def _start(ocpp_csms, firmware, faults, data, **kw):
    fw = firmware(ocpp_csms.url, data_dir=data, env=faults.env, **kw)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    bench.wait(lambda s: s["ocpp"]["registration"] == "Accepted", what="Accepted")
    return fw, bench


def _status0(ocpp_csms, error_code, timeout=15, after=""):
    """The next StatusNotification of connector 0 with error_code, stamped after `after`."""
    return ocpp_csms.wait_for("StatusNotification", timeout, predicate=lambda p:
                              p["connectorId"] == 0 and p["errorCode"] == error_code
                              and p["timestamp"] > after)


def _charging(ocpp_csms, bench):
    bench("plug", connector=1)
    bench("tap", uid=TAG)
    start = ocpp_csms.wait_for("StartTransaction")
    ocpp_csms.wait_for("StatusNotification", predicate=lambda p:
                       p["connectorId"] == 1 and p["status"] == "Charging")
    return start


def _storage_warnings(fw):
    return [line for line in fw.log().splitlines()
            if "WARNING" in line and "ocpp.store" in line and "data dir" in line]


def _no_traceback(fw):
    assert "Traceback" not in fw.log(), fw.log()[-3000:]


def _min_status_duration_zero(ocpp_csms):
    assert ocpp_csms.call(CP, "ChangeConfiguration", {"key": "MinimumStatusDuration",
                                                      "value": "0"}) == {"status": "Accepted"}


def test_disk_full_during_a_transaction(ocpp_csms, firmware, tmp_path):
    faults = Faults(tmp_path)
    data = str(tmp_path / "data")
    fw, bench = _start(ocpp_csms, firmware, faults, data)
    _min_status_duration_zero(ocpp_csms)
    _charging(ocpp_csms, bench)
    faults.set("ENOSPC")
    t0 = time.monotonic()
    # The next durable write fails (a queued MeterValues or the throttled meter
    # reading, at most 10 s apart during a transaction): reported at once.
    report = _status0(ocpp_csms, "OtherError", timeout=20)
    took = time.monotonic() - t0
    assert report["status"] == "Available"        # a warning: charging goes on
    assert report["info"] == "data dir full" and report["vendorErrorCode"] == "DataDirFull"
    print("disk full: reported %.1f s after the fault" % took)
    s = bench.status()["connectors"]["1"]
    assert s["ocpp_status"] == "Charging" and s["contactor"] is True
    # What cannot be persisted is not promised.
    assert ocpp_csms.call(CP, "ChangeConfiguration", {"key": "HeartbeatInterval",
                                                      "value": "123"}) == {"status": "Rejected"}
    bench("tap", uid=TAG)                          # the driver stops: the stop is sent
    stop = ocpp_csms.wait_for("StopTransaction")
    assert stop["transactionId"] == 1 and stop["reason"] == "Local"
    bench.wait(lambda s: s["ocpp"]["queued_messages"] == 0, what="journal delivered")
    assert fw.proc.poll() is None
    faults.set("none")                             # space is back
    t1 = time.monotonic()
    cleared = _status0(ocpp_csms, "NoError", after=report["timestamp"])
    print("disk full: cleared %.1f s after recovery" % (time.monotonic() - t1))
    assert "vendorErrorCode" not in cleared and "info" not in cleared
    warnings = _storage_warnings(fw)                # one WARNING line per change
    assert len(warnings) == 2, warnings
    assert "data dir full" in warnings[0] and "is writable again" in warnings[1]
    # A power cut after recovery loses nothing: the stop is on disk as delivered.
    fw.stop(signal.SIGKILL)
    _no_traceback(fw)
    journal = _journal_of(data)
    rec = journal.get("00000001")
    assert rec["stop"]["reason"] == "Local" and rec["stop_delivered"] is True
    assert journal.pending_count() == 0
    fw2 = firmware(ocpp_csms.url, data_dir=data, env=faults.env)
    ocpp_csms.wait_for("BootNotification")
    Bench(bench_port_of(fw2)).wait(lambda s: s["ocpp"]["registration"] == "Accepted",
                                   what="Accepted again")
    assert ocpp_csms.actions().count("StopTransaction") == 1   # stopped exactly once
    assert "PowerLoss" not in fw2.log()


def test_read_only_at_boot_serves_online_sessions_and_refuses_offline_ones(
        ocpp_csms, firmware, tmp_path):
    faults = Faults(tmp_path)
    data = str(tmp_path / "data")
    # A first boot on a healthy card: the station is known to the CSMS.
    fw, bench = _start(ocpp_csms, firmware, faults, data)
    fw.stop(signal.SIGTERM)
    faults.set("EROFS")
    fw = firmware(ocpp_csms.url, data_dir=data, env=faults.env)
    ocpp_csms.wait_for("BootNotification")
    report = _status0(ocpp_csms, "OtherError")
    assert report["info"] == "data dir read-only"
    assert report["vendorErrorCode"] == "DataDirReadOnly"
    bench = Bench(bench_port_of(fw))
    start = _charging(ocpp_csms, bench)           # online: the session works
    assert start["connectorId"] == 1
    bench("tap", uid=TAG)
    assert ocpp_csms.wait_for("StopTransaction")["reason"] == "Local"
    assert len(_storage_warnings(fw)) == 1
    fw.stop(signal.SIGTERM)
    _no_traceback(fw)
    # Offline (a CSMS that never completes the handshake): no session starts.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        fw = firmware("ws://127.0.0.1:%d/ocpp" % silent.getsockname()[1], data_dir=data,
                      env=faults.env)
        bench = Bench(bench_port_of(fw))
        bench("unplug", connector=1)
        bench("plug", connector=1)
        bench("tap", uid=TAG)
        fw.wait_log("card %s ignored: the data dir is failing (read-only) and the station "
                    "is offline" % TAG)
        s = bench.status()["connectors"]["1"]
        assert s["contactor"] is False and s["transaction_id"] is None
        assert fw.proc.poll() is None
        _no_traceback(fw)
    finally:
        silent.close()


def test_read_only_during_a_transaction(ocpp_csms, firmware, tmp_path):
    faults = Faults(tmp_path)
    fw, bench = _start(ocpp_csms, firmware, faults, str(tmp_path / "data"))
    _min_status_duration_zero(ocpp_csms)
    _charging(ocpp_csms, bench)
    faults.set("EROFS")
    report = _status0(ocpp_csms, "OtherError", timeout=20)
    assert report["info"] == "data dir read-only"
    assert ocpp_csms.call(CP, "RemoteStopTransaction", {"transactionId": 1}) == \
        {"status": "Accepted"}
    stop = ocpp_csms.wait_for("StopTransaction")
    assert stop["transactionId"] == 1 and stop["reason"] == "Remote"
    assert fw.proc.poll() is None
    faults.set("none")
    _status0(ocpp_csms, "NoError", after=report["timestamp"])
    bench.wait(lambda s: s["ocpp"]["queued_messages"] == 0, what="journal delivered")
    assert ocpp_csms.actions().count("StopTransaction") == 1
    _no_traceback(fw)


def test_an_io_error_on_a_single_write(ocpp_csms, firmware, tmp_path):
    faults = Faults(tmp_path)
    fw, bench = _start(ocpp_csms, firmware, faults, str(tmp_path / "data"))
    _min_status_duration_zero(ocpp_csms)
    _charging(ocpp_csms, bench)
    faults.set("EIO once")
    # The next write is this one: it fails, so the change is not Accepted.
    assert ocpp_csms.call(CP, "ChangeConfiguration", {"key": "HeartbeatInterval",
                                                      "value": "123"}) == {"status": "Rejected"}
    report = _status0(ocpp_csms, "OtherError")
    assert report["info"] == "data dir I/O error" and report["vendorErrorCode"] == "DataDirIOError"
    _status0(ocpp_csms, "NoError", after=report["timestamp"])   # the next write or probe
    s = bench.status()["connectors"]["1"]
    assert s["ocpp_status"] == "Charging" and s["contactor"] is True
    assert ocpp_csms.call(CP, "ChangeConfiguration", {"key": "HeartbeatInterval",
                                                      "value": "123"}) == {"status": "Accepted"}
    _no_traceback(fw)


def _can_mount():
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = "/tmp/pi-ocpp-mount-probe-%d" % os.getpid()
    os.makedirs(probe, exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", probe], capture_output=True)
        return ok
    finally:
        os.rmdir(probe)


@pytest.mark.skipif(not _can_mount(), reason="needs root and a working mount")
def test_a_real_tmpfs_filled_during_a_transaction(ocpp_csms, firmware, tmp_path):
    data = str(tmp_path / "tmpfs")
    os.makedirs(data)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", data], check=True)
    try:
        faults = Faults(tmp_path)      # the seam stays "none": the file system is real
        fw, bench = _start(ocpp_csms, firmware, faults, data)
        _min_status_duration_zero(ocpp_csms)
        _charging(ocpp_csms, bench)
        filler = os.path.join(data, "filler")
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 1024)
            except OSError:
                pass      # full
        report = _status0(ocpp_csms, "OtherError", timeout=25)
        assert report["info"] == "data dir full"
        bench("tap", uid=TAG)
        assert ocpp_csms.wait_for("StopTransaction")["transactionId"] == 1
        os.unlink(filler)
        _status0(ocpp_csms, "NoError", after=report["timestamp"])
        bench.wait(lambda s: s["ocpp"]["queued_messages"] == 0, what="journal delivered")
        fw.stop(signal.SIGKILL)
        _no_traceback(fw)
        assert _journal_of(data).get("00000001")["stop_delivered"] is True
    finally:
        subprocess.run(["umount", "-l", data], capture_output=True)


def _diag(data, *argv):
    import io
    from tools.diag import __main__ as diag_cli
    out = io.StringIO()
    code = diag_cli.main(["--data-dir", data] + list(argv), out=out)
    return code, out.getvalue()


def test_diag_status_and_selftest_show_the_data_dir(ocpp_csms, firmware, tmp_path):
    faults = Faults(tmp_path)
    data = str(tmp_path / "data")
    fw, bench = _start(ocpp_csms, firmware, faults, data)
    _min_status_duration_zero(ocpp_csms)
    code, text = _diag(data, "selftest")
    assert "data dir" in text and "writable" in text
    faults.set("EROFS")
    assert ocpp_csms.call(CP, "ChangeConfiguration", {"key": "HeartbeatInterval",
                                                      "value": "123"}) == {"status": "Rejected"}
    code, text = _diag(data, "selftest")
    assert code != 0 and "READ-ONLY" in text, text
    code, text = _diag(data, "status")
    assert code != 0 and "READ-ONLY" in text, text
    faults.set("none")
    report = _status0(ocpp_csms, "OtherError")
    _status0(ocpp_csms, "NoError", after=report["timestamp"])
    bench.wait(lambda s: True, what="published")
    code, text = _diag(data, "selftest")
    assert "READ-ONLY" not in text, text


def test_a_data_dir_that_is_a_file_exits_with_one_line(tmp_path):
    import sys
    from tests.support.firmware_process import ROOT
    path = tmp_path / "not-a-dir"
    path.write_text("x")
    p = subprocess.run([sys.executable, "-m", "firmware", "--hal", "mock", "--csms-url",
                        "ws://127.0.0.1:1/ocpp", "--charge-point-id", CP, "--data-dir",
                        str(path), "--bench-port", "0"], cwd=ROOT, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert "data directory" in p.stderr


@pytest.mark.skipif(not _can_mount(), reason="needs root and a working mount")
def test_a_really_read_only_data_dir_at_boot(ocpp_csms, firmware, tmp_path):
    data = str(tmp_path / "ro")
    os.makedirs(data)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", data], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro", data], check=True)
        fw = firmware(ocpp_csms.url, data_dir=data)
        ocpp_csms.wait_for("BootNotification")
        report = _status0(ocpp_csms, "OtherError")
        assert report["info"] == "data dir read-only"
        bench = Bench(bench_port_of(fw))
        assert _charging(ocpp_csms, bench)["connectorId"] == 1
        # The maintenance socket could not go into <data>/run: it is found elsewhere.
        code, text = _diag(data, "status")
        assert "READ-ONLY" in text, text
        bench("tap", uid=TAG)
        assert ocpp_csms.wait_for("StopTransaction")["reason"] == "Local"
        fw.stop(signal.SIGTERM)
        _no_traceback(fw)
    finally:
        subprocess.run(["umount", "-l", data], capture_output=True)
