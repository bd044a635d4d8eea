"""`python -m tools.diag rfid | meter | modem`: standalone against the device
emulators (the real drivers on a Modbus meter emulator, a fake AT modem on a pty,
an emulated MFRC522 behind a fake spidev), and through the firmware's
maintenance socket (a small fake server here answering the device requests)."""

import argparse
import io
import json
import os
import shutil
import socket
import tempfile
import threading
import time

import pytest

from tools.diag import device_cmds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _have(module_file):
    return os.path.exists(os.path.join(ROOT, "hal_mocks", module_file))


needs_meter_emulator = pytest.mark.skipif(not _have("modbus_meter.py"),
                                          reason="hal_mocks/modbus_meter.py not written yet")
needs_fake_modem = pytest.mark.skipif(not _have("fake_modem.py"),
                                      reason="hal_mocks/fake_modem.py not written yet")
needs_rfid_emulator = pytest.mark.skipif(not _have("mfrc522_emulator.py"),
                                         reason="hal_mocks/mfrc522_emulator.py not written yet")


# --- helpers ----------------------------------------------------------------------------

def parse(argv):
    """The dispatcher's parent parser as the brief defines it, with our subcommands."""
    p = argparse.ArgumentParser(prog="python -m tools.diag")
    p.add_argument("--json", action="store_true")
    p.add_argument("--socket", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--config", default=None)
    sub = p.add_subparsers(dest="command")
    device_cmds.add_parser(sub)
    return p.parse_args(argv)


def run(argv):
    args = parse(argv)
    out = io.StringIO()
    code = args.func(args, out)
    return code, out.getvalue()


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def short_dir():
    """A directory with a short path (AF_UNIX paths are limited to ~107 bytes)."""
    d = tempfile.mkdtemp(prefix="diag-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def no_firmware(short_dir):
    """--socket at a path where no firmware listens: the command goes direct."""
    return ["--socket", os.path.join(short_dir, "none.sock")]


@pytest.fixture
def world():
    from hal_mocks.sim import SimWorld
    w = SimWorld(meter_timeout=0.2, modem_timeout=0.3)
    yield w
    w.close()


class FakeMaintenance:
    """The firmware's maintenance socket: one JSON line in, one JSON line out per
    connection. answer(request) -> reply dict, or None to say nothing at all."""

    def __init__(self, path, answer):
        self.path = path
        self.answer = answer
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.05)     # accept() wakes up to see stop()
        self._stop = False
        self._held = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(5)
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            request = json.loads(data.decode("utf-8"))
            self.requests.append(request)
            reply = self.answer(request)
            if reply is None:
                self._held.append(conn)     # never answers
                continue
            conn.sendall((json.dumps(reply) + "\n").encode("utf-8"))
            conn.close()

    def stop(self):
        self._stop = True
        self.thread.join(5)
        self.sock.close()
        for c in self._held:
            c.close()


@pytest.fixture
def maintenance(short_dir):
    servers = []

    def start(answer):
        s = FakeMaintenance(os.path.join(short_dir, "maint.sock"), answer)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def write_ini(short_dir, text):
    path = os.path.join(short_dir, "station.ini")
    with open(path, "w") as f:
        f.write(text)
    return path


# --- meter, standalone ---------------------------------------------------------------------

@pytest.fixture
def meter_emulator(world):
    if not _have("modbus_meter.py"):
        pytest.skip("hal_mocks/modbus_meter.py not written yet")
    from hal_mocks.modbus_meter import start_meter_emulator
    emu = start_meter_emulator(world, model="SDM630", address=1, transport="tcp")
    yield emu
    emu.stop()


@needs_meter_emulator
def test_meter_direct_readings(meter_emulator, no_firmware):
    code, text = run(no_firmware + ["meter", "--port", meter_emulator.port, "--model", "SDM630",
                                    "--address", "1", "--count", "2", "--interval", "0.2"])
    assert code == 0, text
    assert "opened directly: the firmware is not running" in text
    assert "meter SDM630, address 1, %s 9600 8N1" % meter_emulator.port in text
    assert text.count("reading ") == 2
    assert "voltage" in text and "230." in text and " V" in text
    assert "energy" in text and "kWh" in text
    assert "frequency" in text and "50.00 Hz" in text
    assert text.rstrip().endswith("OK: 2 readings")


@needs_meter_emulator
def test_meter_json_from_the_station_config(meter_emulator, world, short_dir, no_firmware):
    world.plug(1)
    ini = write_ini(short_dir, "[meter]\nport = %s\nmodel = SDM630\naddress = 1\n"
                               "baudrate = 9600\nparity = N\ntimeout = 0.5\n"
                    % meter_emulator.port)
    code, text = run(no_firmware + ["--json", "--config", ini, "meter", "--count", "2",
                                    "--interval", "0.2"])
    assert code == 0, text
    docs = json_lines(text)
    assert len(docs) == 2                         # one object per reading
    for n, doc in enumerate(docs, 1):
        assert doc["ok"] is True and doc["reading"] == n and doc["source"] == "direct"
        assert len(doc["voltage_v"]) == 3 and all(220 < v < 240 for v in doc["voltage_v"])
        assert len(doc["current_a"]) == 3
        assert doc["energy_wh"] > 0
        assert doc["frequency_hz"] == pytest.approx(50.0)
        assert doc["time"].endswith("Z")


@needs_meter_emulator
def test_meter_offline_direct(meter_emulator, world, no_firmware):
    world.fault("meter", "offline")
    code, text = run(no_firmware + ["meter", "--port", meter_emulator.port, "--count", "1"])
    assert code == 1
    assert "FAIL: meter did not answer at address 1" in text      # the driver's line
    assert "what to do:" in text and "A/B" in text
    assert "FAIL: 1 of 1 readings failed" in text


@needs_meter_emulator
def test_meter_wrong_address_json(meter_emulator, no_firmware):
    code, text = run(no_firmware + ["--json", "meter", "--port", meter_emulator.port,
                                    "--address", "7", "--count", "1"])
    assert code == 1
    (doc,) = json_lines(text)
    assert doc["ok"] is False and "address 7" in doc["error"] and doc["hint"]


def test_meter_missing_port(no_firmware):
    code, text = run(no_firmware + ["meter", "--port", "/dev/ttyUSB-diag-missing", "--count", "1"])
    assert code == 1
    assert "FAIL: meter port /dev/ttyUSB-diag-missing does not exist" in text
    assert "/dev/serial/by-id" in text


def test_meter_bad_setting_is_exit_2(no_firmware):
    code, text = run(no_firmware + ["meter", "--model", "XYZ123", "--count", "1"])
    assert code == 2
    assert "[meter] model must be one of" in text


# --- modem, standalone -------------------------------------------------------------------------

@pytest.fixture
def fake_modem(world):
    if not _have("fake_modem.py"):
        pytest.skip("hal_mocks/fake_modem.py not written yet")
    from hal_mocks.fake_modem import start_fake_modem
    started = []

    def start(**options):
        m = start_fake_modem(world, **options)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


@needs_fake_modem
def test_modem_direct(fake_modem, no_firmware):
    from hal_mocks.sim import SimModem
    modem = fake_modem()
    code, text = run(no_firmware + ["modem", "--port", modem.port])
    assert code == 0, text
    assert "opened directly" in text
    assert "SIM           ready" in text
    assert "-71 dBm (good)" in text
    assert "registered (home)" in text
    assert "Bench Telecom (LTE)" in text
    assert SimModem.ICCID in text and SimModem.IMSI in text and SimModem.IMEI in text
    assert "serving cell" in text
    assert "OK: the modem is online" in text


@needs_fake_modem
def test_modem_without_sim_direct(fake_modem, no_firmware):
    modem = fake_modem(sim_present=False)
    code, text = run(no_firmware + ["modem", "--port", modem.port])
    assert code == 1
    assert "NOT READY (SIM not inserted)" in text
    assert "FAIL: SIM not ready: no SIM card" in text
    assert "insert the SIM" in text


@needs_fake_modem
def test_modem_offline_direct(fake_modem, world, no_firmware):
    modem = fake_modem()
    world.fault("modem", "offline")
    code, text = run(no_firmware + ["--json", "modem", "--port", modem.port, "--timeout", "0.5"])
    assert code == 1
    (doc,) = json_lines(text)
    assert doc["ok"] is False and "modem does not answer" in doc["error"]
    assert "USB" in doc["hint"]


def test_signal_quality_words():
    q = device_cmds.signal_quality
    assert [q(x) for x in (-51, -70, -71, -85, -86, -100, -101, -113, None)] == [
        "excellent", "excellent", "good", "good", "fair", "fair", "poor", "poor", "unknown"]


# --- rfid, standalone ---------------------------------------------------------------------------

@pytest.fixture
def rfid_chip(world):
    if not _have("mfrc522_emulator.py"):
        pytest.skip("hal_mocks/mfrc522_emulator.py not written yet")
    from hal_mocks.mfrc522_emulator import Mfrc522Emulator, fake_spidev_installed
    chip = Mfrc522Emulator(world)
    with fake_spidev_installed(chip):
        yield chip


@needs_rfid_emulator
def test_rfid_direct_reads_a_card(rfid_chip, world, no_firmware):
    timer = threading.Timer(0.3, world.tap, ["04A1B2C3"])
    timer.start()
    try:
        code, text = run(no_firmware + ["rfid", "--timeout", "5"])
    finally:
        timer.cancel()
    assert code == 0, text
    assert "opened directly" in text and "/dev/spidev0.0" in text
    assert "card: 04A1B2C3" in text
    assert "4 bytes" in text


@needs_rfid_emulator
def test_rfid_direct_json_7_byte_uid(rfid_chip, world, no_firmware):
    world.tap("04112233445566")
    code, text = run(no_firmware + ["--json", "rfid", "--timeout", "5"])
    assert code == 0, text
    (doc,) = json_lines(text)
    assert doc == {"device": "rfid", "ok": True, "id_tag": "04112233445566", "source": "direct",
                   "uid_bytes": 7}


@needs_rfid_emulator
def test_rfid_no_card_within_the_timeout(rfid_chip, no_firmware):
    start = time.monotonic()
    code, text = run(no_firmware + ["rfid", "--timeout", "1"])
    assert time.monotonic() - start < 4
    assert code == 1
    assert "FAIL: no card presented within 1 s" in text


@needs_rfid_emulator
def test_rfid_reader_not_answering(rfid_chip, world, no_firmware):
    world.fault("rfid", "offline")
    code, text = run(no_firmware + ["rfid", "--timeout", "2"])
    assert code == 1
    assert "FAIL: RFID reader does not answer (VersionReg 0x00)" in text
    assert "what to do:" in text


@needs_rfid_emulator
def test_rfid_spi_device_missing(rfid_chip, no_firmware, short_dir):
    ini = write_ini(short_dir, "[rfid]\nspi_bus = 1\nspi_device = 0\n")
    code, text = run(no_firmware + ["--config", ini, "rfid", "--timeout", "2"])
    assert code == 1
    assert "no /dev/spidev1.0" in text and "enable SPI" in text


# --- through the maintenance socket -----------------------------------------------------------------
# Answers as firmware/maintenance_handlers.py gives them ("device" request).

READING = {"energy_wh": 1234567.0, "power_w": 7360.0, "current_a": [10.6, 10.7, 10.7],
           "voltage_v": [230.1, 229.8, 231.0], "frequency_hz": 50.02, "temperature_c": None,
           "soc_percent": None, "age_s": 0.4}
STATUS_OK = {"signal_dbm": -67, "registered": True, "operator": "Op", "iccid": "8949020000123456789",
             "imsi": "001010123456789", "imei": "352088110042172", "sim_ready": True,
             "model": "EG25-G", "firmware": "R07", "extra": {"registration": "roaming", "act": 7},
             "age_s": 12.0}
STATUS_NO_SIM = {"signal_dbm": -80, "registered": False, "operator": None, "iccid": None,
                 "imsi": None, "imei": "352088110042172", "sim_ready": False,
                 "model": "EG25-G", "firmware": "R07",
                 "extra": {"sim_state": "SIM not inserted", "registration": "not searching"}}


def check(name, device, result, detail, error_code="NoError", hint=None, connector=None):
    return {"name": name, "device": device, "connector": connector, "result": result,
            "error_code": error_code, "detail": detail, "hint": hint}


def meter_answer(sample=READING, checks=None):
    checks = checks or [check("meter 1", "meter", "pass", "fine", connector=1)]
    return {"ok": True, "device": "meter", "checks": checks,
            "healthy": all(c["result"] != "fail" for c in checks), "connectors": {"1": sample}}


def modem_answer(status, checks=None):
    checks = checks or [check("modem", "modem", "pass", "fine")]
    return {"ok": True, "device": "modem", "checks": checks,
            "healthy": all(c["result"] != "fail" for c in checks), "status": status}


def rfid_answer(card, healthy=True):
    checks = [check("card reader", "rfid", "pass", "answers")] if healthy else [
        check("card reader", "rfid", "fail", "RFID reader does not answer (VersionReg 0x00)",
              "ReaderFailure", "The card reader does not answer: check its cable.")]
    return {"ok": True, "device": "rfid", "checks": checks, "healthy": healthy,
            "last_card": None, "card": card, "waited_s": 0.5 if card else 2.0}


def test_meter_via_the_firmware(maintenance):
    fw = maintenance(lambda r: meter_answer())
    code, text = run(["--socket", fw.path, "meter", "--count", "2", "--interval", "0.2"])
    assert code == 0, text
    assert fw.requests[0] == {"cmd": "device", "name": "meter", "action": "read"}
    assert len(fw.requests) == 2
    assert "meter 1 read by the firmware" in text
    assert "measured 0.4 s before" in text
    assert "230.1 V" in text and "10.60 A" in text and "7.36 kW" in text
    assert "1234.567 kWh" in text and "50.02 Hz" in text


def test_meter_json_via_the_firmware(maintenance):
    fw = maintenance(lambda r: meter_answer())
    code, text = run(["--json", "--socket", fw.path, "meter", "--count", "1"])
    assert code == 0
    (doc,) = json_lines(text)
    assert doc["source"] == "firmware" and doc["ok"] is True
    assert doc["voltage_v"] == READING["voltage_v"] and doc["energy_wh"] == READING["energy_wh"]


def test_meter_offline_via_the_firmware(maintenance):
    error = "meter did not answer at address 1, 9600 8N1 on /dev/ttyUSB0: check RS-485 A/B wiring"
    failing = check("meter 1", "meter", "fail", error, "PowerMeterFailure",
                    "The energy meter does not answer: check its supply.", connector=1)
    fw = maintenance(lambda r: meter_answer(None, [failing]))
    code, text = run(["--socket", fw.path, "meter", "--count", "1"])
    assert code == 1
    assert "FAIL: meter 1: %s (the station reports PowerMeterFailure)" % error in text
    assert "what to do: The energy meter does not answer" in text
    code, text = run(["--socket", fw.path, "--json", "meter", "--count", "1"])
    (doc,) = json_lines(text)
    assert doc["ok"] is False and doc["error_code"] == "PowerMeterFailure"


def test_meter_unknown_connector_via_the_firmware(maintenance):
    fw = maintenance(lambda r: meter_answer())
    code, text = run(["--socket", fw.path, "meter", "--count", "1", "--connector", "2"])
    assert code == 1
    assert "the firmware has no connector 2 (it has 1)" in text


def test_modem_via_the_firmware(maintenance):
    fw = maintenance(lambda r: modem_answer(STATUS_OK))
    code, text = run(["--socket", fw.path, "modem"])
    assert code == 0, text
    assert fw.requests == [{"cmd": "device", "name": "modem", "action": "read"}]
    assert "read by the firmware (maintenance socket), 12 s old" in text
    assert "-67 dBm (excellent)" in text and "registered (roaming)" in text
    assert "Op (LTE)" in text


def test_modem_without_sim_via_the_firmware(maintenance):
    warn = check("modem", "modem", "warn", "NOT registered, SIM NOT ready")
    fw = maintenance(lambda r: modem_answer(STATUS_NO_SIM, [warn]))
    code, text = run(["--socket", fw.path, "--json", "modem"])
    assert code == 1
    (doc,) = json_lines(text)
    assert doc["ok"] is False
    assert [c["check"] for c in doc["checks"] if not c["ok"]] == ["sim", "registration"]
    assert doc["signal_quality"] == "good"
    assert "insert the SIM" in doc["hint"]
    code, text = run(["--socket", fw.path, "modem"])
    assert code == 1
    assert "NOT READY (SIM not inserted)" in text
    assert "FAIL: SIM not ready" in text


def test_modem_not_answering_via_the_firmware(maintenance):
    failing = check("modem", "modem", "fail", "the last 3 status queries failed", "WeakSignal",
                    "The LTE modem does not answer.")
    fw = maintenance(lambda r: modem_answer(None, [failing]))
    code, text = run(["--socket", fw.path, "modem"])
    assert code == 1
    assert "FAIL: modem: the last 3 status queries failed (the station reports WeakSignal)" in text


def test_modem_weak_signal_fails(maintenance):
    fw = maintenance(lambda r: modem_answer(dict(STATUS_OK, signal_dbm=-109)))
    code, text = run(["--socket", fw.path, "modem"])
    assert code == 1
    assert "-109 dBm (poor)" in text and "too weak" in text and "antenna" in text


def test_rfid_via_the_firmware(maintenance):
    fw = maintenance(lambda r: rfid_answer({"id_tag": "04A1B2C3", "at": "2026-01-01T00:00:00Z"}))
    code, text = run(["--socket", fw.path, "rfid"])
    assert code == 0
    assert fw.requests == [{"cmd": "device", "name": "rfid", "action": "wait_card",
                            "timeout": 30.0, "consume": True}]
    assert "card: 04A1B2C3" in text
    assert "the firmware (it did not use this card for charging)" in text


def test_rfid_no_card_via_the_firmware(maintenance):
    fw = maintenance(lambda r: rfid_answer(None))
    code, text = run(["--socket", fw.path, "rfid", "--timeout", "2"])
    assert code == 1
    assert "FAIL: no card presented within 2 s" in text
    assert fw.requests[0]["timeout"] == 2.0


def test_rfid_reader_broken_via_the_firmware(maintenance):
    fw = maintenance(lambda r: rfid_answer(None, healthy=False))
    code, text = run(["--socket", fw.path, "rfid", "--timeout", "2"])
    assert code == 1
    assert ("FAIL: card reader: RFID reader does not answer (VersionReg 0x00) "
            "(the station reports ReaderFailure)") in text


def test_the_briefs_short_answers_are_understood(maintenance):
    """{"reading": ...}, {"status": ...}, {"id_tag": ...} without checks."""
    answers = {"meter": {"ok": True, "reading": READING},
               "modem": {"ok": True, "status": STATUS_OK},
               "rfid": {"ok": True, "id_tag": "04A1B2C3"}}
    fw = maintenance(lambda r: answers[r["name"]])
    assert run(["--socket", fw.path, "meter", "--count", "1"])[0] == 0
    assert run(["--socket", fw.path, "modem"])[0] == 0
    code, text = run(["--socket", fw.path, "rfid"])
    assert code == 0 and "card: 04A1B2C3" in text


def test_a_refused_request(maintenance):
    fw = maintenance(lambda r: {"ok": False, "error": "the firmware is starting: no state "
                                                      "published yet"})
    code, text = run(["--socket", fw.path, "modem"])
    assert code == 1
    assert "FAIL: the firmware is starting: no state published yet" in text


def test_firmware_that_does_not_answer(maintenance, monkeypatch):
    monkeypatch.setattr(device_cmds, "FIRMWARE_TIMEOUT", 0.3)
    fw = maintenance(lambda r: None)
    start = time.monotonic()
    code, text = run(["--socket", fw.path, "rfid", "--timeout", "1"])
    assert time.monotonic() - start < 5
    assert code == 1
    assert "FAIL: the firmware did not answer within 1.3 s" in text


def test_with_the_real_maintenance_server(short_dir):
    """The wire format of firmware/maintenance.py's server (its peer check included)."""
    try:
        from firmware.maintenance import MaintenanceServer
    except ImportError:
        pytest.skip("firmware/maintenance.py is not there")
    seen = []

    def handler(request):
        seen.append(request)
        return meter_answer()
    server = MaintenanceServer(os.path.join(short_dir, "run", "maintenance.sock"), handler).start()
    try:
        code, text = run(["--data-dir", short_dir, "meter", "--count", "1"])
    finally:
        server.stop()
    assert code == 0, text
    assert "meter 1 read by the firmware" in text
    assert seen and seen[0]["cmd"] == "device" and seen[0]["name"] == "meter"


@needs_meter_emulator
def test_stale_socket_file_means_the_firmware_is_not_running(meter_emulator, short_dir):
    path = os.path.join(short_dir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                      # the file stays, nobody listens
    code, text = run(["--socket", path, "meter", "--port", meter_emulator.port, "--count", "1"])
    assert code == 0, text
    assert "opened directly" in text


@needs_meter_emulator
def test_meter_through_the_dispatcher(meter_emulator, no_firmware):
    """python -m tools.diag meter ..., as the technician runs it (--json after the
    subcommand works too)."""
    import subprocess
    import sys
    if not os.path.exists(os.path.join(ROOT, "tools", "diag", "__main__.py")):
        pytest.skip("tools/diag/__main__.py (the dispatcher) is not there yet")
    r = subprocess.run([sys.executable, "-m", "tools.diag"] + no_firmware +
                       ["meter", "--port", meter_emulator.port, "--count", "2",
                        "--interval", "0.2", "--json"],
                       cwd=ROOT, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    docs = json_lines(r.stdout.decode())
    assert [d["reading"] for d in docs] == [1, 2] and all(d["ok"] for d in docs)


# --- end to end: python -m firmware --hal mock and its maintenance socket ----------------------------

def test_against_the_running_firmware(ocpp_csms, firmware, tmp_path):
    """The devices of a running firmware (simulated hardware) through its real
    maintenance socket: meter, modem, a card for enrolment (which must not start
    anything), then the meter going offline."""
    from tests.support.firmware_process import Bench, bench_port_of
    data = str(tmp_path / "data")
    fw = firmware(ocpp_csms.url, data_dir=data, env={"RUNTIME_DIRECTORY": ""})
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    sock = os.path.join(data, "run", "maintenance.sock")
    deadline = time.monotonic() + 3     # it is claimed first thing, before the boot
    while not os.path.exists(sock):
        if time.monotonic() > deadline:
            pytest.skip("this firmware does not open its maintenance socket yet")
        time.sleep(0.05)      # no notification for a socket file appearing

    def until(argv, code_wanted, timeout=20):
        end = time.monotonic() + timeout
        while True:
            code, text = run(["--data-dir", data] + argv)
            if code == code_wanted or time.monotonic() > end:
                return code, text
            time.sleep(0.3)   # the firmware's state is polled, not pushed

    code, text = until(["meter", "--count", "1"], 0)
    assert code == 0, text
    assert "meter 1 read by the firmware" in text and "230." in text and "kWh" in text
    code, text = until(["modem"], 0)
    assert code == 0, text
    assert "-71 dBm (good)" in text and "Bench Telecom" in text

    bench("plug", connector=1)
    timer = threading.Timer(1.0, bench, ["tap"], {"uid": "04A1B2C3"})
    timer.start()
    try:
        code, text = run(["--data-dir", data, "rfid", "--timeout", "10"])
    finally:
        timer.cancel()
    assert code == 0, text
    assert "card: 04A1B2C3" in text
    time.sleep(1)
    assert "Authorize" not in ocpp_csms.actions() and "StartTransaction" not in ocpp_csms.actions()

    code, text = run(["--data-dir", data, "rfid", "--timeout", "1"])
    assert code == 1 and "no card presented within 1 s" in text

    bench("fault", device="meter", mode="offline")
    code, text = until(["meter", "--count", "1"], 1)
    assert code == 1, text
    assert "PowerMeterFailure" in text and "what to do:" in text


# --- settings: the firmware's own rules -------------------------------------------------------------

def test_direct_settings_follow_the_firmwares_rules(monkeypatch):
    from firmware import device_config
    args = parse(["meter", "--model", "NEW1", "--port", "/dev/ttyUSB-diag-missing"])
    with pytest.raises(device_cmds.SettingsProblem, match=r"^\[meter\] model must be one of"):
        device_cmds.meter_settings(args)
    monkeypatch.setattr(device_config, "METER_MODELS",
                        tuple(device_config.METER_MODELS) + ("NEW1",))
    settings = device_cmds.meter_settings(args)          # a model the firmware now knows
    assert settings["model"] == "NEW1"
    assert settings["port"] == "/dev/ttyUSB-diag-missing"   # a missing port: a hardware fault
    with pytest.raises(device_cmds.SettingsProblem,
                       match=r"^\[rfid\] spi_device must be between 0 and 3, not 5$"):
        device_cmds.rfid_settings(parse(["rfid", "--spi-device", "5"]))
    with pytest.raises(device_cmds.SettingsProblem, match=r"^\[modem\] baudrate must be between"):
        device_cmds.modem_settings(parse(["modem", "--port", "/dev/x", "--baudrate", "4000000"]))
