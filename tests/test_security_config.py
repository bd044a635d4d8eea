"""The [security] section of the station config (firmware/station_config.py)."""

from types import SimpleNamespace

import pytest

from firmware.station_config import ConfigError, load


def loaded(tmp_path, section):
    ini = tmp_path / "station.ini"
    ini.write_text("[station]\ncharge_point_id = CP-1\ndata_dir = %s\n[csms]\n"
                   "url = ws://127.0.0.1:9/ocpp\n[security]\n%s\n" % (tmp_path / "d", section))
    flags = SimpleNamespace(config=str(ini), hal=None, csms_url=None, charge_point_id=None,
                            password=None, data_dir=None, bench_port=None, log_level=None)
    return load(flags)


def test_defaults(tmp_path):
    cfg = loaded(tmp_path, "")
    assert (cfg.security_profile, cfg.tls_url, cfg.trust_system_cas, cfg.csr_key_type) == (
        0, None, False, "rsa2048")


def test_all_settings(tmp_path):
    cfg = loaded(tmp_path, "profile = 2\ntls_url = wss://csms.example:8443/ocpp\n"
                           "trust_system_cas = yes\ncsr_key = ec256")
    assert (cfg.security_profile, cfg.tls_url, cfg.trust_system_cas, cfg.csr_key_type) == (
        2, "wss://csms.example:8443/ocpp", True, "ec256")


@pytest.mark.parametrize("section, words", [
    ("profile = 4", "[security] profile"),
    ("profile = two", "[security] profile"),
    ("tls_url = ws://csms.example/ocpp", "must start with wss://"),
    ("tls_url = wss://user:pw@csms.example/ocpp", "[security] tls_url"),
    ("trust_system_cas = maybe", "trust_system_cas"),
    ("csr_key = dsa", "csr_key"),
])
def test_bad_settings_are_one_line_errors(tmp_path, section, words):
    with pytest.raises(ConfigError) as e:
        loaded(tmp_path, section)
    assert words in str(e.value) and "\n" not in str(e.value)
    assert "pw" not in str(e.value)
