"""The security extension end to end, in process: the real main loop (mock HAL),
link, engine and certificate store against two CSMS built on the `ocpp` package,
one on ws:// (profile 1) and one on wss:// with a test CA (profiles 2 and 3).

OCTT TC_083 (upgrade), TC_084 (downgrade Rejected), TC_075_2 (install the CSMS
root), TC_074 (CSR -> CertificateSigned, the next connection uses it), TC_087."""

import logging
import threading

import pytest

from firmware.hal_factory import build_mock
from firmware.main_loop import Firmware
from firmware.station_config import StationConfig
from tools import pki
from tests.support.ocpp_csms import OcppCsms

CP_ID = "CP-SEC-E2E"
PASSWORD = "0123456789abcdef0123"


@pytest.fixture
def csms_pair(tmp_path):
    ca = pki.Ca("CPO Root")
    plain = OcppCsms(password=PASSWORD).start()
    tls = OcppCsms(password=PASSWORD, ssl=pki.server_context(
        tmp_path, ca, client_ca=ca, client_optional=True)).start()
    yield ca, plain, tls
    for c in (plain, tls):
        c.stop()
        assert not c.violations, c.violations


@pytest.fixture
def start_station(tmp_path, csms_pair):
    ca, plain, tls = csms_pair
    running = []

    def start():
        cfg = StationConfig()
        cfg.csms_url = plain.url
        cfg.tls_url = tls.url
        cfg.charge_point_id = CP_ID
        cfg.password = PASSWORD
        cfg.data_dir = str(tmp_path / "data")
        cfg.security_profile = 1
        loop = Firmware(cfg, build_mock(cfg))
        loop.link.settings.backoff_initial = loop.link.settings.backoff_max = 0.1
        seen = []
        loop.cp.events.listen("security_event", lambda t, info: seen.append((t, info)))
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        running.append((loop, thread))
        return loop, seen

    yield start
    for loop, thread in running:
        loop.stop()
        thread.join(10)
        assert not thread.is_alive()


@pytest.fixture
def station(start_station):
    return start_station()


def change(csms, key, value):
    return csms.call(CP_ID, "ChangeConfiguration", {"key": key, "value": value})["status"]


def test_upgrade_1_2_3_with_certificates_and_a_refused_downgrade(station, csms_pair, caplog):
    caplog.set_level(logging.DEBUG)
    loop, events = station
    ca, plain, tls = csms_pair
    plain.wait_for("BootNotification")
    assert plain.connections[-1][2] is not None            # profile 1: basic auth on ws://

    # TC_083 without the root: Rejected, still on ws://
    assert change(plain, "SecurityProfile", "2") == "Rejected"
    # TC_075_2, then the upgrade: the station moves to wss:// with the installed root
    assert plain.call(CP_ID, "InstallCertificate", {
        "certificateType": "CentralSystemRootCertificate", "certificate": ca.pem}) == {
        "status": "Accepted"}
    assert change(plain, "SecurityProfile", "2") == "Accepted"
    cp_id, subprotocol, authorization = tls.wait_connections(1)
    assert (cp_id, subprotocol) == (CP_ID, "ocpp1.6") and authorization   # basic auth over TLS
    assert tls.peer_certificates[-1] is None                 # no client certificate yet

    # TC_074: a certificate for the station, through a CSR made on it
    assert change(tls, "CpoName", "Test CPO") == "Accepted"
    assert tls.call(CP_ID, "ExtendedTriggerMessage",
                    {"requestedMessage": "SignChargePointCertificate"}) == {"status": "Accepted"}
    csr = tls.wait_for("SignCertificate", timeout=30)["csr"]
    cert = ca.sign_csr(csr)
    assert tls.call(CP_ID, "CertificateSigned", {"certificateChain": pki.pem(cert)}) == {
        "status": "Accepted"}

    # TC_083 again: profile 3, the client certificate is the credential (TC_087)
    assert change(tls, "SecurityProfile", "3") == "Accepted"
    cp_id, subprotocol, authorization = tls.wait_connections(2)
    assert authorization is None
    peer = tls.peer_certificates[-1]
    assert int(peer["serialNumber"], 16) == cert.serial_number
    # TC_084: no way down
    assert change(tls, "SecurityProfile", "2") == "Rejected"
    conf = tls.call(CP_ID, "GetConfiguration", {"key": ["SecurityProfile"]})
    assert conf["configurationKey"][0]["value"] == "3"
    assert [e for e in events if e[0] == "ReconfigurationOfSecurityParameters"]
    assert loop.link.security_profile == 3
    assert loop.store.load("security_trial", None) is None    # the upgrade is final
    # no secret in any log line or trace of the whole run
    key_lines = [line for line in open(loop.certificates.key_path).read().splitlines()
                 if line and not line.startswith("-----")]
    # (a line of an RSA key that holds only the public modulus may equal a CSR line)
    key_lines = [line for line in key_lines if line not in csr]
    assert key_lines
    for secret in key_lines + [PASSWORD]:
        assert secret not in caplog.text
    assert "PRIVATE KEY" not in caplog.text


def test_a_failed_upgrade_falls_back_and_reports_it(station, csms_pair):
    loop, events = station
    ca, plain, tls = csms_pair
    plain.wait_for("BootNotification")
    rogue = pki.Ca("Rogue Root")         # trusted by the station, not the CSMS's issuer
    assert plain.call(CP_ID, "InstallCertificate", {
        "certificateType": "CentralSystemRootCertificate", "certificate": rogue.pem}) == {
        "status": "Accepted"}
    assert change(plain, "SecurityProfile", "2") == "Accepted"
    plain.wait_connections(2, timeout=30)          # back on ws:// after the failed trials
    assert not tls.connections
    types = [e[0] for e in events]
    assert "InvalidCentralSystemCertificate" in types
    assert any(t == "ReconfigurationOfSecurityParameters" and "back to 1" in (info or "")
               for t, info in events)
    conf = plain.call(CP_ID, "GetConfiguration", {"key": ["SecurityProfile"]})
    assert conf["configurationKey"][0]["value"] == "1"


def test_a_restart_during_the_upgrade_keeps_the_way_back(start_station, csms_pair, tmp_path):
    """TC_083 resets the station right after the upgrade: if the new profile then
    cannot connect, the station still falls back (the trial is persisted)."""
    ca, plain, tls = csms_pair
    from ocpp_core.store import Store
    from firmware.certificates import CertificateStore
    data = tmp_path / "data"
    data.mkdir()
    CertificateStore(str(data / "certs"), CP_ID).install_root(
        "CentralSystemRootCertificate", pki.Ca("Rogue Root").pem, 20)
    store = Store(str(data))
    store.save("config", {"SecurityProfile": "2"})
    store.save("security_trial", {"previous": 1})
    loop, events = start_station()
    plain.wait_connections(1, timeout=30)          # fell back to ws://
    assert not tls.connections
    plain.wait_for("BootNotification")
    conf = plain.call(CP_ID, "GetConfiguration", {"key": ["SecurityProfile"]})
    assert conf["configurationKey"][0]["value"] == "1"
    assert "InvalidCentralSystemCertificate" in [e[0] for e in events]
