"""Bad flags and bad config files: non-zero exit and one clear line, never a traceback."""

import os
import subprocess
import sys

import pytest

from tests.support.firmware_process import ROOT


def run_firmware(args, timeout=20):
    p = subprocess.run([sys.executable, "-m", "firmware"] + args, cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def base_args(tmp_path, **over):
    flags = {"--hal": "mock", "--csms-url": "ws://127.0.0.1:9/ocpp",
             "--charge-point-id": "CP-1", "--data-dir": str(tmp_path / "d"), "--bench-port": "0"}
    flags.update(over)
    out = []
    for k, v in flags.items():
        if v is not None:
            out += [k, v]
    return out


def assert_one_line_error(code, out, err, *words):
    assert code != 0
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("firmware: error:"), err
    assert "Traceback" not in err + out
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("flag,value,words", [
    ("--hal", "gpio", ("unknown HAL", "gpio")),
    ("--csms-url", "http://example/ocpp", ("ws://",)),
    ("--csms-url", "ws://", ("host",)),
    ("--charge-point-id", "CP 1", ("charge point id",)),
    ("--bench-port", "70000", ("bench port",)),
    ("--bench-port", "seven", ("bench port",)),
    ("--password", "a:b", ("password",)),
])
def test_bad_flag_value_exits_with_one_line(tmp_path, flag, value, words):
    code, out, err = run_firmware(base_args(tmp_path, **{flag: value}))
    assert_one_line_error(code, out, err, *words)


def test_unknown_flag_exits_with_one_line(tmp_path):
    code, out, err = run_firmware(base_args(tmp_path) + ["--frobnicate"])
    assert_one_line_error(code, out, err, "--frobnicate")


def test_missing_csms_url(tmp_path):
    code, out, err = run_firmware(base_args(tmp_path, **{"--csms-url": None}))
    assert_one_line_error(code, out, err, "CSMS URL")


def test_broken_config_file(tmp_path):
    ini = tmp_path / "station.ini"
    ini.write_text("[station\ncharge_point_id = X\n")
    code, out, err = run_firmware(base_args(tmp_path) + ["--config", str(ini)])
    assert_one_line_error(code, out, err, "malformed", str(ini))


def test_missing_config_file(tmp_path):
    code, out, err = run_firmware(base_args(tmp_path) + ["--config", str(tmp_path / "nope.ini")])
    assert_one_line_error(code, out, err, "does not exist")


def test_config_value_too_long_for_boot_notification(tmp_path):
    ini = tmp_path / "station.ini"
    ini.write_text("[station]\nvendor = %s\n" % ("V" * 21))
    code, out, err = run_firmware(base_args(tmp_path) + ["--config", str(ini)])
    assert_one_line_error(code, out, err, "vendor", "20")


def test_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out, err = run_firmware(base_args(tmp_path, **{"--data-dir": str(blocker / "sub")}))
    assert_one_line_error(code, out, err, "data directory")


def test_flags_override_config_file(tmp_path):
    from argparse import Namespace

    from firmware.station_config import load
    ini = tmp_path / "station.ini"
    ini.write_text("[station]\ncharge_point_id = FROM-INI\nvendor = ACME\n"
                   "data_dir = %s\n[csms]\nurl = ws://10.0.0.1/ocpp\npassword = s3cret\n"
                   "[bench]\nport = 7711\n" % (tmp_path / "d"))
    ns = Namespace(config=str(ini), hal=None, csms_url="ws://127.0.0.1:9000/ocpp",
                   charge_point_id=None, password=None, data_dir=None, bench_port=None,
                   log_level=None)
    cfg = load(ns)
    assert cfg.csms_url == "ws://127.0.0.1:9000/ocpp"      # flag wins
    assert cfg.charge_point_id == "FROM-INI"                # ini fills the rest
    assert cfg.password == "s3cret"
    assert cfg.bench_port == 7711
    assert cfg.boot_notification()["chargePointVendor"] == "ACME"
    assert "s3cret" not in repr(cfg)


def test_pi_hal_names_a_missing_serial_port(tmp_path):
    ini = tmp_path / "station.ini"
    ini.write_text("[meter]\nport = /dev/ttyNOPE9\n")
    code, out, err = run_firmware(base_args(tmp_path, **{"--hal": "pi"}) + ["--config", str(ini)])
    assert_one_line_error(code, out, err, "[meter] port", "/dev/ttyNOPE9", "does not exist")


def test_pi_hal_names_a_missing_spi_device(tmp_path):
    ini = tmp_path / "station.ini"
    ini.write_text("[meter]\nport = socket://127.0.0.1:1\n[pilot]\nport = socket://127.0.0.1:1\n"
                   "[modem]\nport = socket://127.0.0.1:1\n[rfid]\nspi_bus = 5\nspi_device = 3\n")
    code, out, err = run_firmware(base_args(tmp_path, **{"--hal": "pi"}) + ["--config", str(ini)])
    assert_one_line_error(code, out, err, "[rfid]", "/dev/spidev5.3")


@pytest.mark.parametrize("section,option,value,words", [
    ("meter", "baudrate", "9601", ("[meter] baudrate",)),
    ("meter", "model", "XYZ1", ("[meter] model", "SDM630")),
    ("gpio", "contactor_pin", "40", ("[gpio] contactor_pin",)),
    ("gpio", "led_red_pin", "17", ("led_red_pin", "17")),          # same pin as the contactor
])
def test_pi_hal_bad_device_setting(tmp_path, section, option, value, words):
    ini = tmp_path / "station.ini"
    ports = "".join("[%s]\nport = socket://127.0.0.1:1\n" % s for s in ("pilot", "modem")
                    if s != section)
    body = "[meter]\nport = socket://127.0.0.1:1\n" if section != "meter" else ""
    ini.write_text(ports + body + "[%s]\n%s = %s\n%s" % (
        section, option, value, "port = socket://127.0.0.1:1\n" if section == "meter" else ""))
    code, out, err = run_firmware(base_args(tmp_path, **{"--hal": "pi"}) + ["--config", str(ini)])
    assert_one_line_error(code, out, err, *words)


def test_example_station_config_is_valid(tmp_path, monkeypatch):
    """tools/deploy/station.example.ini documents every setting; it must load."""
    from argparse import Namespace

    from firmware import device_config
    from firmware.station_config import load
    example = os.path.join(ROOT, "tools", "deploy", "station.example.ini")
    ns = Namespace(config=example, hal=None, csms_url=None, charge_point_id=None, password=None,
                   data_dir=str(tmp_path / "d"), bench_port=None, log_level=None)
    cfg = load(ns)
    assert cfg.hal == "pi" and cfg.fixed_cable is True and cfg.connectors == 1
    assert cfg.csms_url.startswith("wss://")
    monkeypatch.setattr(device_config, "_exists", lambda path: True)
    meter = device_config.meter_settings(device_config.Section("meter", cfg.device_sections["meter"]))
    assert meter == {"port": "/dev/ttyUSB0", "model": "SDM630", "address": 1, "baudrate": 9600,
                     "parity": "N", "stopbits": 1, "timeout": 0.5}
    gpio = device_config.Section("gpio", cfg.device_sections["gpio"])
    assert device_config.pins_in_use(gpio) == {17: "contactor_pin", 27: "contactor_feedback_pin",
                                               5: "led_red_pin", 6: "led_green_pin",
                                               13: "led_blue_pin"}


def test_install_script_is_valid_bash():
    script = os.path.join(ROOT, "tools", "deploy", "install-pi.sh")
    p = subprocess.run(["bash", "-n", script], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["bash", script, "--dry-run"], capture_output=True, text=True)
    assert "+ systemctl enable pi-ocpp.service" in p.stdout
