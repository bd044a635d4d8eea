"""Security profiles 2 and 3 on real TLS (firmware/link.py): a websockets CSMS
with an `ssl` server socket on loopback, port 0, and a test CA made here.
OCTT TC_086 (server certificate), TC_087 (client certificate), TC_078 (invalid
Central System certificate: the event), A05 (upgrade and fall back)."""

import base64
import ssl

import pytest

from firmware.certificates import CertificateStore
from firmware.link import TRIAL_ATTEMPTS, build_url, profile_context
from tools import pki
from tests.test_link import (  # noqa: F401 - fixtures
    CP_ID, PASSWORD, links, next_event, no_proxy_env, password_never_logged, servers, wait_for,
)


def wss(port):
    return build_url("wss://localhost:%d/ocpp" % port, CP_ID)


def contexts(store):
    """The firmware's tls_context for a store (as firmware/security_wiring.py builds it)."""
    return lambda profile: profile_context(store, profile)


@pytest.fixture
def store(tmp_path):
    return CertificateStore(str(tmp_path / "certs"), CP_ID, key_type="ec256")


@pytest.fixture
def ca():
    return pki.Ca("CSMS Root")


def tls_server(servers, tmp_path, ca, **kwargs):
    return servers(subprotocols=["ocpp1.6"], ssl=pki.server_context(tmp_path, ca, **kwargs))


def test_tc_086_profile_2_verifies_the_server_against_the_installed_root(
        servers, links, store, ca, tmp_path):
    assert store.install_root("CentralSystemRootCertificate", ca.pem, 20)[0] == "Accepted"
    csms = tls_server(servers, tmp_path, ca)
    link, events = links(wss(csms.port), security_profile=2, tls_context=contexts(store))
    link.start()
    assert next_event(events) == ("up", None)
    path, headers = csms.requests.get(timeout=5)
    token = base64.b64encode(("%s:%s" % (CP_ID, PASSWORD)).encode()).decode()
    assert headers["Authorization"] == "Basic " + token                 # basic auth over TLS
    server_side = csms.connections.get(timeout=5)
    assert server_side.socket.version() in ("TLSv1.2", "TLSv1.3")
    assert link.tls_chain and len(link.tls_chain) == 2                  # leaf and our root


@pytest.mark.parametrize("make_server", [
    lambda tmp_path, ca: pki.server_context(tmp_path, pki.Ca("Another Root")),   # other CA
    lambda tmp_path, ca: pki.server_context(tmp_path, ca, host="csms.example"),  # other host
])
def test_tc_078_a_bad_server_certificate_is_refused_with_the_event(
        servers, links, store, ca, tmp_path, make_server):
    store.install_root("CentralSystemRootCertificate", ca.pem, 20)
    csms = servers(subprotocols=["ocpp1.6"], ssl=make_server(tmp_path, ca))
    link, events = links(wss(csms.port), security_profile=2, tls_context=contexts(store))
    link.start()
    seen = [next_event(events) for _ in range(3)]
    kinds = [e[0] for e in seen]
    assert kinds.count("security") == 1                  # once per kind until the link is up
    event_type, tech_info = [e[1] for e in seen if e[0] == "security"][0]
    assert event_type == "InvalidCentralSystemCertificate" and tech_info
    assert "up" not in kinds
    assert any(e[0] == "down" and "TLS certificate" in e[1] for e in seen)


def test_system_cas_are_not_trusted_and_no_root_means_no_connection(servers, links, store,
                                                                     tmp_path, ca):
    csms = tls_server(servers, tmp_path, ca)
    link, events = links(wss(csms.port), security_profile=2, tls_context=contexts(store))
    link.start()
    kind, reason = next_event(events)
    assert kind == "down" and "no CentralSystemRootCertificate installed" in reason


def test_tls_below_1_2_is_refused(servers, links, store, ca, tmp_path):
    store.install_root("CentralSystemRootCertificate", ca.pem, 20)
    try:
        context = pki.server_context(tmp_path, ca, minimum_version=ssl.TLSVersion.TLSv1,
                                     maximum_version=ssl.TLSVersion.TLSv1_1)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")      # OpenSSL 3 refuses TLS 1.1 above 0
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot serve TLS 1.1")
    csms = servers(subprotocols=["ocpp1.6"], ssl=context)
    link, events = links(wss(csms.port), security_profile=2, tls_context=contexts(store))
    link.start()
    seen = [next_event(events) for _ in range(2)]
    assert "up" not in [e[0] for e in seen]
    security = [e[1] for e in seen if e[0] == "security"]
    assert [s[0] for s in security] == ["InvalidTLSVersion"], seen        # A00.FR.315


def client_certificate(store, ca):
    """The CSR -> signed -> installed round trip of the store."""
    got = []
    store.create_csr("Test CPO", lambda csr, why: got.append(csr))
    cert = ca.sign_csr(got[0])
    assert store.accept_signed(pki.pem(cert)) == (True, None)
    return cert


def test_tc_087_profile_3_presents_the_charge_point_certificate(servers, links, store, ca,
                                                                tmp_path):
    store.install_root("CentralSystemRootCertificate", ca.pem, 20)
    cert = client_certificate(store, ca)
    csms = servers(subprotocols=["ocpp1.6"],
                   ssl=pki.server_context(tmp_path, ca, client_ca=ca))
    link, events = links(wss(csms.port), security_profile=3, tls_context=contexts(store))
    link.start()
    assert next_event(events) == ("up", None)
    path, headers = csms.requests.get(timeout=5)
    assert "Authorization" not in headers                 # the certificate is the credential
    peer = csms.connections.get(timeout=5).socket.getpeercert()
    subject = dict(x[0] for x in peer["subject"])
    assert subject["commonName"] == CP_ID
    assert int(peer["serialNumber"], 16) == cert.serial_number


def test_profile_3_without_a_client_certificate_does_not_connect(servers, links, store, ca,
                                                                 tmp_path):
    store.install_root("CentralSystemRootCertificate", ca.pem, 20)
    csms = servers(subprotocols=["ocpp1.6"],
                   ssl=pki.server_context(tmp_path, ca, client_ca=ca))
    link, events = links(wss(csms.port), security_profile=3, tls_context=contexts(store))
    link.start()
    kind, reason = next_event(events)
    assert kind == "down" and "no valid charge point certificate" in reason


def test_a05_upgrade_1_to_2_falls_back_when_the_new_profile_cannot_connect(
        servers, links, store, ca, tmp_path):
    plain = servers(subprotocols=["ocpp1.6"])
    bad = servers(subprotocols=["ocpp1.6"],
                  ssl=pki.server_context(tmp_path, pki.Ca("Rogue Root")))
    store.install_root("CentralSystemRootCertificate", ca.pem, 20)
    link, events = links(build_url(plain.url, CP_ID), security_profile=1,
                         tls_url=wss(bad.port), tls_context=contexts(store))
    link.start()
    assert next_event(events) == ("up", None)
    link.upgrade(2)
    link.reconnect()
    seen = []
    while not seen or seen[-1][0] != "fallback":
        seen.append(next_event(events))
    kinds = [e[0] for e in seen]
    assert kinds.count("down") == TRIAL_ATTEMPTS + 1      # the old connection, then the trials
    assert ("security", ("InvalidCentralSystemCertificate",)) == (
        seen[kinds.index("security")][0], seen[kinds.index("security")][1][:1])
    tried, previous, reason = seen[-1][1]
    assert (tried, previous) == (2, 1) and "TLS certificate" in reason
    assert wait_for(events, "up") == ("up", None)         # back on profile 1
    assert link.security_profile == 1
    plain.connections.get(timeout=5)
    plain.connections.get(timeout=5)                      # the second ws:// connection


def test_upgrade_2_to_3_then_a_new_certificate_on_the_next_connection(
        servers, links, store, ca, tmp_path):
    store.install_root("CentralSystemRootCertificate", ca.pem, 20)
    csms = servers(subprotocols=["ocpp1.6"], ssl=pki.server_context(
        tmp_path, ca, client_ca=ca, client_optional=True))     # one port for profiles 2 and 3
    first = client_certificate(store, ca)
    link, events = links(wss(csms.port), security_profile=2, tls_context=contexts(store))
    link.start()
    assert next_event(events) == ("up", None)
    assert "Authorization" in csms.requests.get(timeout=5)[1]
    link.upgrade(3)
    link.reconnect()
    assert wait_for(events, "up") == ("up", None)
    csms.connections.get(timeout=5)
    peer = csms.connections.get(timeout=5).socket.getpeercert()
    assert int(peer["serialNumber"], 16) == first.serial_number
    assert "Authorization" not in csms.requests.get(timeout=5)[1]
    second = client_certificate(store, ca)                # TC_074: renewed
    link.reconnect()
    assert wait_for(events, "up") == ("up", None)
    peer = csms.connections.get(timeout=5).socket.getpeercert()
    assert int(peer["serialNumber"], 16) == second.serial_number
    link.upgrade(2)                                       # never down (A00.FR.005)
    assert link.security_profile == 3
