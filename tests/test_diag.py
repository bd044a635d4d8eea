"""`python -m tools.diag` and the firmware's maintenance socket: every subcommand
against `python -m firmware --hal mock` (a subprocess, with a CSMS on the `ocpp`
package), the failure paths a technician meets (meter offline, no card reader,
firmware not running), and the socket's own defences (permissions, other users,
malformed requests, slow trace readers)."""

import io
import json
import os
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import pytest

from firmware import maintenance, maintenance_handlers
from firmware.maintenance import MaintenanceError, MaintenanceServer, socket_path
from tests.support.firmware_process import ROOT, Bench, bench_port_of
from tools.diag import __main__ as diag_cli
from tools.diag.client import MaintenanceClient

CP_ID = "CP-TEST-1"


# --- helpers ------------------------------------------------------------------------------

def diag(data_dir, *argv):
    """Run the tool in process: (exit status, stdout text)."""
    out = io.StringIO()
    code = diag_cli.main(["--data-dir", data_dir] + list(argv), out=out)
    return code, out.getvalue()


def diag_json(data_dir, *argv):
    code, text = diag(data_dir, "--json", *argv)
    return code, json.loads(text)


def ask(data_dir, cmd, client_timeout=20, **fields):
    with MaintenanceClient(socket_path(data_dir, environ={}), client_timeout) as c:
        return c.request(cmd, wait=client_timeout, **fields)


def set_authorization_key(ocpp_csms, data, value, monkeypatch):
    """`config set AuthorizationKey -` (the value on stdin); the firmware then
    reconnects with it: wait for the new connection."""
    before = len(ocpp_csms.connections)
    monkeypatch.setattr(sys, "stdin", io.StringIO(value + "\n"))
    assert diag(data, "config", "set", "AuthorizationKey", "-") == \
        (0, "AuthorizationKey: Accepted\n")
    wait_until(lambda: len(ocpp_csms.connections) > before and CP_ID in ocpp_csms._cps,
               what="the firmware reconnected with the new key")


def wait_until(fn, timeout=15, what="condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s not reached within %s s (last: %r)" % (what, timeout, value))
        time.sleep(interval)   # the maintenance socket has no change notifications


def start(ocpp_csms, firmware, tmp_path, extra=(), hal="mock"):
    """The firmware up, registered, its connector Available; (fw, bench, data dir)."""
    fw = firmware(ocpp_csms.url, extra=list(extra), env={"RUNTIME_DIRECTORY": ""}, hal=hal)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    data = str(tmp_path / "data")

    def ready():
        try:
            s = ask(data, "status")
        except Exception as e:     # not listening yet
            return "no answer: %s" % e
        # nothing queued: the start-up's security event (critical, journaled) delivered
        return s.get("ok") and s["registration"] == "Accepted" and \
            s["connectors"]["1"]["ocpp_status"] == "Available" and \
            s["connectors"]["1"]["meter"] is not None and s["modem"] is not None and \
            s["messages"]["queued"] == 0 and s
    wait_until(ready, what="the firmware ready on its maintenance socket")
    return fw, bench, data


def check(result, name):
    (found,) = [c for c in result["checks"] if c["name"] == name]
    return found


def no_traceback(fw):
    assert "Traceback" not in fw.log(), fw.log()[-3000:]


# --- the socket -----------------------------------------------------------------------------

def test_socket_is_private_and_status_answers(ocpp_csms, firmware, tmp_path):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path)
    path = socket_path(data, environ={})
    assert path == os.path.join(data, "run", "maintenance.sock")
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(os.path.dirname(path)).st_mode) == 0o700

    code, text = diag(data, "status")
    assert code == 0, text
    for words in (CP_ID, "Accepted", "Available", "connected since", "set by the CSMS",
                  "0 queued, 0 set aside", "Bench Telecom", "Problems\n  none"):
        assert words in text, text
    code, s = diag_json(data, "status")
    assert code == 0
    assert s["station"]["charge_point_id"] == CP_ID
    assert s["station"]["firmware_version"] and s["station"]["csms_url"] == ocpp_csms.url
    assert s["link"]["connected"] is True and s["link"]["for_s"] >= 0
    assert s["clock"] == dict(s["clock"], valid=True, source="csms")
    assert s["main_loop"]["responding"] is True
    c1 = s["connectors"]["1"]
    assert (c1["ocpp_status"], c1["error_code"]) == ("Available", "NoError")
    assert c1["transaction"] is None
    assert c1["meter"]["energy_wh"] >= 1000 and c1["meter"]["age_s"] < 5
    assert s["modem"]["signal_dbm"] == -71 and s["messages"]["queued"] == 0
    assert s["problems"] == []
    no_traceback(fw)


def test_firmware_not_running_is_one_line_and_exit_2(tmp_path):
    data = str(tmp_path / "nothing-here")
    for argv in (["status"], ["selftest"], ["config"], ["journal"], ["trace", "--count", "1"]):
        p = subprocess.run([sys.executable, "-m", "tools.diag", "--data-dir", data] + argv,
                           cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (argv, p.stdout, p.stderr)
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        assert lines == ["diag: the firmware is not running (no maintenance socket at %s)"
                         % os.path.join(data, "run", "maintenance.sock")], p.stderr
        assert "Traceback" not in p.stdout + p.stderr


def test_stale_socket_says_not_running(tmp_path, capsys):
    data = tempfile.mkdtemp(prefix="diag-", dir="/tmp")
    try:
        path = socket_path(data, environ={})
        os.makedirs(os.path.dirname(path))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()                       # the file stays, nobody listens: a crashed firmware
        code, _ = diag(data, "status")
        assert code == 2
        assert "the firmware is not running (nothing listens on the maintenance socket at %s)" \
            % path in capsys.readouterr().err
    finally:
        import shutil
        shutil.rmtree(data, ignore_errors=True)


def test_malformed_requests_do_no_harm(ocpp_csms, firmware, tmp_path):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(socket_path(data, environ={}))
    reader = s.makefile("rb")

    def send(raw):
        s.sendall(raw)
        return json.loads(reader.readline())

    bad = [b"not json\n", b"[1, 2, 3]\n", b'"status"\n', b"{}\n", b'{"cmd": 7}\n',
           b'{"cmd": "format-disk"}\n', b"\xff\xfe\n", b"\n", b'{"cmd": "config_set"}\n',
           b'{"cmd": "config_set", "key": "HeartbeatInterval", "value": 5}\n',
           b'{"cmd": "journal", "limit": "all"}\n', b'{"cmd": "selftest", "actuate": "yes"}\n',
           b'{"cmd": "device", "name": "toaster"}\n', b"[" * 30000 + b"\n"]
    for raw in bad:
        r = send(raw)
        assert r["ok"] is False and r["error"] and "\n" not in r["error"], (raw, r)
    assert "unknown command" in send(b'{"cmd": "format-disk"}\n')["error"]
    r = send(b'{"cmd": "trace", "last": -1}\n')     # refused, and that connection ends
    assert r["ok"] is False and "last" in r["error"]
    s.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(socket_path(data, environ={}))
    reader = s.makefile("rb")
    r = send(b"x" * (70 * 1024) + b"\n")                   # over 64 KiB
    assert r == {"ok": False, "error": "request longer than 65536 bytes"}
    r = send(b'{"cmd": "status", "id": 42}\n')               # the connection still works
    assert r["ok"] is True and r["id"] == 42 and r["registration"] == "Accepted"
    s.close()
    # ... and so does the firmware, towards its CSMS
    answer = ocpp_csms.call(CP_ID, "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["value"] == "300"
    assert ask(data, "status")["connectors"]["1"]["ocpp_status"] == "Available"
    no_traceback(fw)


def test_other_users_are_refused(tmp_path, monkeypatch, caplog):
    d = tempfile.mkdtemp(prefix="mnt-", dir="/tmp")
    calls = []
    server = MaintenanceServer(os.path.join(d, "run", "m.sock"),
                               lambda r: calls.append(r) or {"ok": True})
    server.start()
    try:
        with MaintenanceClient(server.path, 5) as c:       # our own uid: served
            assert c.request("status") == {"ok": True}
        seen = []

        def as_if_another_user(peer_uid, own_uid):
            seen.append((peer_uid, own_uid))
            return False
        monkeypatch.setattr(maintenance, "peer_allowed", as_if_another_user)
        caplog.set_level("WARNING", logger="firmware.maintenance")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(server.path)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break                      # closed by the server
            data += chunk
        s.close()
        reply = json.loads(data.splitlines()[0])
        assert reply["ok"] is False and "permission denied" in reply["error"]
        assert len(data.splitlines()) == 1
        assert seen == [(os.geteuid(), os.geteuid())]     # SO_PEERCRED gave our uid
        assert len(calls) == 1                            # the refused request never ran
        assert any("refused" in r.getMessage() and "uid %d" % os.geteuid() in r.getMessage()
                   for r in caplog.records), caplog.text
    finally:
        server.stop()
        import shutil
        shutil.rmtree(d, ignore_errors=True)
    assert not os.path.exists(server.path)


def test_peer_rule():
    assert maintenance.peer_allowed(1000, 1000)
    assert maintenance.peer_allowed(0, 1000)           # root
    assert not maintenance.peer_allowed(1001, 1000)
    assert not maintenance.peer_allowed(1000, 0)       # a user may not reach root's firmware


def test_socket_setup_stale_running_too_long_not_a_socket(tmp_path):
    d = tempfile.mkdtemp(prefix="mnt-", dir="/tmp")
    try:
        run_dir = os.path.join(d, "run")
        os.makedirs(run_dir, mode=0o755)
        os.chmod(run_dir, 0o755)
        path = os.path.join(run_dir, "m.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()                                      # left by a crashed run
        first = MaintenanceServer(path, lambda r: {"ok": True}).start()
        try:
            assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700
            assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
            with pytest.raises(MaintenanceError, match="another firmware is running"):
                MaintenanceServer(path, lambda r: {"ok": True}).start()
            with MaintenanceClient(path, 5) as c:          # the first one is untouched
                assert c.request("status") == {"ok": True}
        finally:
            first.stop()
        assert not os.path.exists(path)
        with open(path, "w") as f:
            f.write("not a socket")
        with pytest.raises(MaintenanceError, match="not a socket"):
            MaintenanceServer(path, lambda r: {"ok": True}).start()
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)
    long_dir = "/tmp/" + "d" * 100
    with pytest.raises(MaintenanceError) as e:
        MaintenanceServer(socket_path(long_dir, environ={}), None).start()
    assert "AF_UNIX allows at most 107" in str(e.value) and "\n" not in str(e.value)
    assert socket_path("/var/lib/x", environ={"RUNTIME_DIRECTORY": "/run/pi-ocpp:/run/b"}) == \
        "/run/pi-ocpp/maintenance.sock"


def test_firmware_with_a_too_long_socket_path_exits_with_one_line(tmp_path):
    data = str(tmp_path / ("d" * 120))
    p = subprocess.run([sys.executable, "-m", "firmware", "--hal", "mock", "--csms-url",
                        "ws://127.0.0.1:9/ocpp", "--charge-point-id", "CP-1", "--data-dir", data,
                        "--bench-port", "0"], cwd=ROOT, capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, RUNTIME_DIRECTORY=""))
    assert p.returncode == 2
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("firmware: error: the maintenance socket path"), p.stderr
    assert "AF_UNIX" in lines[-1] and "Traceback" not in p.stderr


def test_slow_trace_reader_never_blocks_the_publisher():
    d = tempfile.mkdtemp(prefix="mnt-", dir="/tmp")
    server = MaintenanceServer(os.path.join(d, "m.sock"), lambda r: {"ok": True},
                               trace_queue=50).start()
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(server.path)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b'{"cmd": "trace"}\n')
        reader = s.makefile("rb")
        assert json.loads(reader.readline()) == {"ok": True, "trace": "started"}
        frame = '[2,"x","DataTransfer",{"vendorId":"V","data":"%s"}]' % ("z" * 2000)
        worst = 0.0
        t0 = time.monotonic()
        for _ in range(5000):          # ~10 MB; the reader reads nothing meanwhile
            t = time.monotonic()
            server.publish_trace("tx", frame)
            worst = max(worst, time.monotonic() - t)
        # A publisher that blocked on the full socket would wait for the reader,
        # who reads nothing: forever. The bounds only absorb scheduling noise on
        # a loaded 2-core CI machine (0.05 s per call failed there once).
        assert time.monotonic() - t0 < 10 and worst < 1.0, (time.monotonic() - t0, worst)
        dropped = 0
        received = 0
        deadline = time.monotonic() + 10
        while not dropped and time.monotonic() < deadline:
            line = reader.readline()
            assert line, "the server closed the trace (%d frames received)" % received
            item = json.loads(line)
            if "dropped" in item:
                dropped = item["dropped"]
            else:
                received += 1
        assert dropped > 0 and received + dropped <= 5000
        s.close()
    finally:
        server.stop()
        import shutil
        shutil.rmtree(d, ignore_errors=True)


# --- selftest ----------------------------------------------------------------------------------

def test_selftest_passes_then_finds_the_offline_meter(ocpp_csms, firmware, tmp_path):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path)
    code, text = diag(data, "selftest")
    assert code == 0, text
    assert "All " in text and "checks passed" in text
    code, result = diag_json(data, "selftest")
    assert code == 0 and result["passed"] is True and result["actuate"] is False
    names = [c["name"] for c in result["checks"]]
    for name in ("main loop", "CSMS link", "registration", "clock", "card reader", "modem",
                 "meter 1", "pilot 1", "contactor 1", "journal"):
        assert name in names, names
    assert "lock 1" not in names          # the reference station has a fixed cable

    bench("fault", device="meter", mode="offline")

    def meter_failing():
        code, result = diag_json(data, "selftest")
        return check(result, "meter 1")["result"] == "fail" and (code, result)
    code, result = wait_until(meter_failing, what="the meter check failing")
    assert code == 1 and result["passed"] is False
    meter = check(result, "meter 1")
    assert meter["error_code"] == "PowerMeterFailure"
    assert "RS-485" in meter["hint"] and meter["detail"]
    assert check(result, "card reader")["result"] == "pass"
    code, text = diag(data, "selftest")
    assert code == 1
    assert "PowerMeterFailure" in text and "FAIL" in text and "What to check" in text
    # the engine reported it too, and status lists it among the faults
    ocpp_csms.wait_for("StatusNotification", predicate=lambda p: p["connectorId"] == 1 and
                       p["errorCode"] == "PowerMeterFailure")
    code, s = diag_json(data, "status")
    assert code == 1
    assert s["connectors"]["1"]["error_code"] == "PowerMeterFailure"
    assert any(f["error_code"] == "PowerMeterFailure" and f["event"] == "raised"
               for f in s["faults"])
    assert any(p["what"] == "connector 1" and "PowerMeterFailure" in p["detail"]
               for p in s["problems"]), s["problems"]
    reply = ask(data, "device", name="meter", action="read")
    assert reply["ok"] is False and reply["error_code"] == "PowerMeterFailure"
    # it recovers, and the fault log says so
    bench("fault", device="meter", mode="none")
    wait_until(lambda: diag_json(data, "selftest")[0] == 0, what="the meter passing again")
    faults = ask(data, "status")["faults"]
    assert faults[0]["event"] == "cleared" and faults[0]["error_code"] == "PowerMeterFailure"
    no_traceback(fw)


def test_selftest_finds_the_missing_card_reader(ocpp_csms, firmware, tmp_path):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path)
    bench("fault", device="rfid", mode="offline")

    def reader_failing():
        code, result = diag_json(data, "selftest")
        return check(result, "card reader")["result"] == "fail" and (code, result)
    code, result = wait_until(reader_failing, what="the card reader check failing")
    assert code == 1
    reader = check(result, "card reader")
    assert reader["error_code"] == "ReaderFailure" and "SPI" in reader["hint"]
    assert check(result, "meter 1")["result"] == "pass"
    reply = ask(data, "device", name="rfid", action="wait_card", timeout=1)
    assert reply["ok"] is False and reply["error_code"] == "ReaderFailure"
    no_traceback(fw)


def test_selftest_actuate_cycles_the_contactor_only_without_an_ev(ocpp_csms, firmware, tmp_path):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path)
    code, result = diag_json(data, "selftest", "--actuate")
    assert code == 0, result
    contactor = check(result, "contactor 1")
    assert contactor["result"] == "pass" and "cycled" in contactor["detail"]
    assert "cycling the contactor of connector 1" in fw.log()

    bench("fault", device="contactor", mode="stuck")         # never closes
    code, result = diag_json(data, "selftest", "--actuate")
    assert code == 1
    contactor = check(result, "contactor 1")
    assert contactor["result"] == "fail" and contactor["error_code"] == "PowerSwitchFailure"
    assert "did not close" in contactor["detail"] and contactor["hint"]
    bench("fault", device="contactor", mode="none")

    bench("plug", connector=1)
    wait_until(lambda: ask(data, "status")["connectors"]["1"]["ev_state"] == "B",
               what="the EV seen")
    code, result = diag_json(data, "selftest", "--actuate")
    assert code == 0
    contactor = check(result, "contactor 1")
    assert contactor["result"] == "skipped" and "skipped: EV connected" in contactor["detail"]
    assert bench.status()["connectors"]["1"]["contactor"] is False
    no_traceback(fw)


def test_selftest_actuate_cycles_the_lock_of_a_socket_outlet(ocpp_csms, firmware, tmp_path):
    ini = tmp_path / "station.ini"
    ini.write_text("[station]\nfixed_cable = no\n")
    fw, bench, data = start(ocpp_csms, firmware, tmp_path, extra=["--config", str(ini)])
    code, result = diag_json(data, "selftest", "--actuate")
    assert code == 0, result
    lock = check(result, "lock 1")
    assert lock["result"] == "pass" and "engaged and released" in lock["detail"]
    assert bench.status()["connectors"]["1"]["locked"] is False      # left as it was
    bench("fault", device="lock", mode="stuck")
    code, result = diag_json(data, "selftest", "--actuate")
    assert code == 1
    lock = check(result, "lock 1")
    assert lock["error_code"] == "ConnectorLockFailure" and "did not engage" in lock["detail"]
    no_traceback(fw)


# --- config -------------------------------------------------------------------------------------

def test_config_show_and_set(ocpp_csms, firmware, tmp_path, monkeypatch):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path)
    code, text = diag(data, "config")
    assert code == 0
    assert "HeartbeatInterval" in text and "read-write  300" in text
    assert "NumberOfConnectors" in text and "read-only" in text

    code, text = diag(data, "config", "set", "HeartbeatInterval", "120")
    assert (code, text) == (0, "HeartbeatInterval: Accepted\n")
    answer = ocpp_csms.call(CP_ID, "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer["configurationKey"][0]["value"] == "120"     # as if the CSMS had set it
    code, text = diag(data, "config", "set", "HeartbeatInterval", "soon")
    assert code == 1 and text.startswith("HeartbeatInterval: Rejected (")
    code, text = diag(data, "config", "set", "NumberOfConnectors", "2")
    assert code == 1 and "read-only" in text
    code, text = diag(data, "config", "set", "NoSuchKey", "1")
    assert code == 1 and "NotSupported" in text
    code, text = diag(data, "config", "set", "HeartbeatInterval", "9" * 501)
    assert code == 1                                            # over CiString500

    secret = "Tech-Secret-4711"
    monkeypatch.setattr(sys, "stdin", io.StringIO(secret + "\n"))
    code, text = diag(data, "config", "set", "AuthorizationKey", "-")
    assert (code, text) == (0, "AuthorizationKey: Accepted\n")
    code, text = diag(data, "config", "show", "AuthorizationKey", "HeartbeatInterval")
    assert code == 0 and "(set)" in text and "120" in text and secret not in text
    code, doc = diag_json(data, "config")
    (row,) = [r for r in doc["configuration"] if r["key"] == "AuthorizationKey"]
    assert row["value"] == "<hidden>" and row["write_only"] is True
    assert secret not in json.dumps(doc) and secret not in fw.log()
    code, text = diag(data, "config", "show", "Bogus")
    assert code == 1 and "Bogus: no such key" in text
    no_traceback(fw)


# --- journal ------------------------------------------------------------------------------------

def test_status_and_journal_during_and_after_a_transaction(ocpp_csms, firmware, tmp_path):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path)
    bench("plug", connector=1)
    bench("tap", uid="04A1B2C3")
    ocpp_csms.wait_for("StartTransaction")

    def charging():
        s = ask(data, "status")
        tx = s["connectors"]["1"]["transaction"]
        return tx and tx["transaction_id"] == 1 and (tx["energy_wh"] or 0) > 0 and s
    s = wait_until(charging, what="a transaction with energy")
    tx = s["connectors"]["1"]["transaction"]
    assert tx["id_tag"] == "04A1B2C3" and tx["meter_start"] >= 1000
    code, text = diag(data, "status")
    assert code == 0 and "04A1B2C3" in text and "Charging" in text
    bench("tap", uid="04A1B2C3")
    ocpp_csms.wait_for("StopTransaction")
    wait_until(lambda: ask(data, "journal")["transactions"][0]["stop_delivered"],
               what="the stop delivered")
    export = str(tmp_path / "journal.json")
    code, text = diag(data, "journal", "--export", export)
    assert code == 0, text
    assert "Recent transactions" in text and "04A1B2C3" in text and "delivered" in text
    assert "journal written to %s" % export in text
    with open(export) as f:
        doc = json.load(f)
    (rec,) = doc["transactions"]
    assert rec["transaction_id"] == 1 and rec["stop"]["reason"] == "Local"
    assert rec["start"].endswith("Z") and rec["stop"]["at"].endswith("Z")
    assert doc["pending_count"] == 0 and doc["set_aside_count"] == 0
    code, doc = diag_json(data, "journal")
    assert code == 0 and doc["transactions"][0]["key"] == rec["key"]
    no_traceback(fw)


# --- trace -------------------------------------------------------------------------------------

def test_trace_shows_frames_with_the_authorization_key_masked(ocpp_csms, firmware, tmp_path):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path)
    # A value the station refuses (':' is not allowed), so that the firmware does
    # not drop its link to use it: the frame carries it all the same.
    secret = "Csms:Secret-8642"
    for as_json in (False, True):
        cmd = [sys.executable, "-m", "tools.diag", "--data-dir", data] + \
            (["--json"] if as_json else []) + ["trace", "--seconds", "4"]
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            assert "following the OCPP traffic" in p.stderr.readline()
            answer = ocpp_csms.call(CP_ID, "ChangeConfiguration",
                                    {"key": "AuthorizationKey", "value": secret})
            assert answer == {"status": "Rejected"}
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, err
        assert "ChangeConfiguration" in out and "AuthorizationKey" in out
        assert secret not in out + err
        if as_json:
            frames = [json.loads(line) for line in out.splitlines()]
            (call,) = [f for f in frames if "ChangeConfiguration" in f["frame"]]
            assert call["dir"] == "rx"
            assert json.loads(call["frame"])[3] == {"key": "AuthorizationKey", "value": "***"}
        else:
            line = [l for l in out.splitlines() if "ChangeConfiguration" in l][0]
            assert "CP<<CSMS  CALL" in line and '"value": "***"' in line
            assert any("RESULT  ChangeConfiguration" in l and "Rejected" in l
                       for l in out.splitlines()), out
    assert secret not in fw.log()
    no_traceback(fw)


# --- devices (the requests tools/diag/device_cmds.py makes) -------------------------------------

def test_device_requests_and_a_card_taken_by_the_tool(ocpp_csms, firmware, tmp_path):
    fw, bench, data = start(ocpp_csms, firmware, tmp_path)
    meter = ask(data, "device", name="meter", action="read", timeout=10)
    assert meter["ok"] is True and meter["reading"]["energy_wh"] >= 1000
    assert meter["reading"]["voltage_v"][0] > 200
    modem = ask(data, "device", name="modem", action="read", timeout=10)
    assert modem["ok"] is True and modem["status"]["signal_dbm"] == -71
    nothing = ask(data, "device", name="rfid", action="wait_card", timeout=0.5)
    assert nothing["ok"] is True and nothing["id_tag"] is None

    bench("plug", connector=1)
    result = {}
    waiter = threading.Thread(target=lambda: result.update(
        ask(data, "device", name="rfid", action="wait_card", timeout=10)))
    waiter.start()
    time.sleep(0.5)           # the wait is registered (nothing to poll for it)
    bench("tap", uid="04A1B2C3")
    waiter.join(15)
    assert result["ok"] is True and result["id_tag"] == "04A1B2C3"
    assert "read by the maintenance tool" in fw.log()
    time.sleep(1)
    assert "Authorize" not in ocpp_csms.actions()        # the card started nothing
    assert "StartTransaction" not in ocpp_csms.actions()
    assert ask(data, "device", name="rfid", action="read")["last_card"]["id_tag"] == "04A1B2C3"
    no_traceback(fw)


# --- bundle -------------------------------------------------------------------------------------

def test_bundle_has_the_expected_files_and_no_secret(ocpp_csms, firmware, tmp_path, monkeypatch):
    secrets = ("Flag-Secret-9876", "Ini-Secret-5678", "Csms-Key-13579-ab")
    ini = tmp_path / "station.ini"
    ini.write_text("[station]\nvendor = OpenPiCharge\n\n[csms]\nurl = %s\npassword = %s\n"
                   % (ocpp_csms.url, secrets[1]))
    fw, bench, data = start(ocpp_csms, firmware, tmp_path,
                            extra=["--config", str(ini), "--password", secrets[0]])
    set_authorization_key(ocpp_csms, data, secrets[2], monkeypatch)
    bench("plug", connector=1)                # something in the journal
    bench("tap", uid="04A1B2C3")
    ocpp_csms.wait_for("StartTransaction")
    target = str(tmp_path / "support.tar.gz")
    code, text = diag(data, "bundle", "--output", target, "--log-file", fw.log_path)
    assert code == 0, text
    assert text.splitlines()[-1] == target
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    with tarfile.open(target) as tar:
        members = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode("utf-8")
                   for m in tar.getmembers() if m.isfile()}
    expected = {"README.txt", "versions.json", "station.ini", "status.json",
                "ocpp-configuration.json", "journal.json", "selftest.json", "firmware.log"}
    assert expected <= set(members), sorted(members)
    for name, content in members.items():
        for secret in secrets:
            assert secret not in content, (name, secret)
    assert "password = <redacted>" in members["station.ini"]
    assert "vendor = OpenPiCharge" in members["station.ini"]
    versions = json.loads(members["versions.json"])
    assert versions["python"] and "pytest" in {k.lower() for k in versions["packages"]}
    status = json.loads(members["status.json"])
    assert status["station"]["charge_point_id"] == CP_ID
    assert json.loads(members["selftest.json"])["actuate"] is False
    assert json.loads(members["journal.json"])["transactions"][0]["id_tag"] == "04A1B2C3"
    config = json.loads(members["ocpp-configuration.json"])["configuration"]
    assert [r["value"] for r in config if r["key"] == "AuthorizationKey"] == ["<hidden>"]
    assert "charge point" in members["firmware.log"] or "CP-TEST-1" in members["firmware.log"]
    no_traceback(fw)


def test_the_bundle_uploaded_for_get_diagnostics_has_no_secret(ocpp_csms, firmware, tmp_path,
                                                              monkeypatch):
    """The same bundle, made by the firmware for GetDiagnostics and uploaded:
    no basic-auth password (flag or INI), no AuthorizationKey, no private key."""
    from tests.support.upload_servers import UploadServer
    secrets = ("Flag-Secret-2468", "Ini-Secret-1357", "Csms-Key-97531-cd", "MIGHAgEAMBMGBy")
    ini = tmp_path / "station.ini"
    ini.write_text("[station]\nvendor = OpenPiCharge\n\n[csms]\nurl = %s\npassword = %s\n"
                   "; -----BEGIN PRIVATE KEY-----\n; %s\n; -----END PRIVATE KEY-----\n"
                   % (ocpp_csms.url, secrets[1], secrets[3]))
    fw, bench, data = start(ocpp_csms, firmware, tmp_path,
                            extra=["--config", str(ini), "--password", secrets[0]])
    set_authorization_key(ocpp_csms, data, secrets[2], monkeypatch)
    ocpp_csms.call(CP_ID, "GetConfiguration", {"key": ["AuthorizationKey"]})   # in the trace
    server = UploadServer()
    try:
        answer = ocpp_csms.call(CP_ID, "GetDiagnostics", {"location": server.base + "/put/"})
        assert ocpp_csms.wait_for("DiagnosticsStatusNotification",
                                  predicate=lambda p: p["status"] != "Uploading",
                                  timeout=30) == {"status": "Uploaded"}
        data_bytes = server.stored["/put/" + answer["fileName"]]
    finally:
        server.stop()
    with tarfile.open(fileobj=io.BytesIO(data_bytes)) as tar:
        members = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode("utf-8")
                   for m in tar.getmembers() if m.isfile()}
    assert {"station.ini", "status.json", "ocpp-configuration.json", "journal.json",
            "firmware.log", "ocpp-trace.txt"} <= set(members), sorted(members)
    for name, content in members.items():
        for secret in secrets:
            assert secret not in content, (name, secret)
    assert "password = <redacted>" in members["station.ini"]
    assert "AuthorizationKey" in members["ocpp-trace.txt"]     # the key's frame, masked
    config = json.loads(members["ocpp-configuration.json"])["configuration"]
    assert [r["value"] for r in config if r["key"] == "AuthorizationKey"] == ["<hidden>"]
    no_traceback(fw)


def test_bundle_without_the_firmware(tmp_path, capsys):
    target = str(tmp_path / "b.tar.gz")
    code, text = diag(str(tmp_path / "none"), "bundle", "--output", target)
    assert code == 2
    assert text.splitlines()[-1] == target
    assert "the firmware is not running" in capsys.readouterr().err
    with tarfile.open(target) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers()}
    assert {"README.txt", "versions.json"} <= names and "status.json" not in names


def test_redaction_of_the_station_config():
    from tools.diag.bundle import redact_ini, scrub
    text, secrets = redact_ini("[csms]\nurl = wss://cp:pw1234@csms.example/ocpp\n"
                               "password = hunter22\n; password = old-one\n"
                               "Authorization_Key: abcd1234\n  continued-secret\n"
                               "ca_bundle = /etc/ssl/ca.pem\n")
    assert "hunter22" not in text and "abcd1234" not in text and "continued-secret" not in text
    assert "pw1234" not in text and "wss://<redacted>@csms.example/ocpp" in text
    assert "; password = old-one" in text and "ca_bundle = /etc/ssl/ca.pem" in text
    assert scrub("log: hunter22 and abcd1234", secrets) == "log: <redacted> and <redacted>"


# --- the bridge and the dispatcher, in process --------------------------------------------------

class _StuckFirmware:
    """A firmware whose main loop never takes its events."""

    def __init__(self):
        import queue
        self.events = queue.Queue()
        self.maintenance = maintenance_handlers.Maintenance()
        self.maintenance.state = {"registration": "Accepted",
                                  "published": {"_mono": time.monotonic()}}


def test_a_stuck_main_loop_is_reported_not_waited_for(monkeypatch):
    fw = _StuckFirmware()
    bridge = maintenance_handlers.MaintenanceBridge(fw, timeout=0.3, ping_timeout=0.2)
    t0 = time.monotonic()
    status = bridge.handle({"cmd": "status"})
    assert status["ok"] is True and status["registration"] == "Accepted"
    assert status["main_loop"]["responding"] is False and "stuck" in status["main_loop"]["error"]
    answer = bridge.handle({"cmd": "config_set", "key": "HeartbeatInterval", "value": "60"})
    assert answer["ok"] is False and "did not answer" in answer["error"]
    assert time.monotonic() - t0 < 3
    # the main loop, waking up later, does not apply what its asker gave up on
    ran = []
    monkeypatch.setattr(maintenance_handlers, "handle_on_main_thread",
                        lambda f, r: ran.append(r) or {"ok": True})
    assert fw.events.qsize() == 2
    while not fw.events.empty():
        kind, _cid, value = fw.events.get_nowait()
        assert kind == "maint"
        maintenance_handlers.dispatch(fw, value)
    assert ran == []


def test_a_subcommand_missing_from_the_build(monkeypatch, capsys):
    monkeypatch.setattr(diag_cli, "MODULES", diag_cli.MODULES + (("tools.diag.no_such", ("x1",)),))
    assert diag_cli.main(["x1", "--whatever"], out=io.StringIO()) == 2
    assert "x1: not available in this build" in capsys.readouterr().err


class _PublishedFirmware(_StuckFirmware):
    """A stuck main loop that did publish a state (as tests/test_diag_checks.py writes it)."""

    def __init__(self, state):
        _StuckFirmware.__init__(self)
        self.maintenance.state = state


def test_device_answers_are_facts_and_a_failing_device_is_refused():
    from tests.test_diag_checks import station_state
    state = station_state()
    bridge = maintenance_handlers.MaintenanceBridge(_PublishedFirmware(state), timeout=0.05,
                                                    ping_timeout=0.05)
    meter = bridge.handle({"cmd": "device", "name": "meter"})
    assert meter["ok"] is True and meter["connector"] == 1
    assert meter["reading"] == state["connectors"]["1"]["meter"]
    assert meter["state"]["registration"] == "Accepted" and "checks" not in meter
    assert bridge.handle({"cmd": "device", "name": "modem"})["status"]["signal_dbm"] == -71
    assert "no connector 2" in bridge.handle({"cmd": "device", "name": "meter",
                                              "connector": 2})["error"]

    state["connectors"]["1"]["faults"]["PowerMeterFailure"] = "meter offline"
    state["workers"]["rfid"]["failures"] = 1           # the fault is not raised yet
    meter = bridge.handle({"cmd": "device", "name": "meter"})
    assert (meter["ok"], meter["error_code"], meter["error"]) == (
        False, "PowerMeterFailure", "meter1 (PowerMeterFailure): meter offline")
    t0 = time.monotonic()
    rfid = bridge.handle({"cmd": "device", "name": "rfid", "action": "wait_card", "timeout": 30})
    assert time.monotonic() - t0 < 3                    # refused at once, no wait for a card
    assert (rfid["ok"], rfid["error_code"]) == (False, "ReaderFailure")
    assert rfid["error"] == "rfid (ReaderFailure): its last 1 poll(s) failed"


def test_selftest_answers_the_facts_tools_diag_judges():
    from tests.test_diag_checks import station_state
    from tools.diag.checks import selftest_result
    bridge = maintenance_handlers.MaintenanceBridge(_PublishedFirmware(station_state()),
                                                    timeout=0.05, ping_timeout=0.05)
    answer = bridge.handle({"cmd": "selftest"})
    assert answer["ok"] is True and answer["actuate"] is False and answer["actuated"] == []
    assert answer["main_loop"]["responding"] is False and "checks" not in answer
    assert answer["state"]["connectors"]["1"]["ev_state"] == "A"
    answer = bridge.handle({"cmd": "selftest", "actuate": True})
    assert answer["actuated"] == [
        {"device": kind, "connector": 1, "skipped": "skipped: the main loop does not answer"}
        for kind in ("contactor", "lock")]
    result = selftest_result(answer)
    assert check(result, "contactor 1")["result"] == "skipped"
    assert check(result, "main loop")["result"] == "fail" and result["passed"] is False
