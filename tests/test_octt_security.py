"""The security extension's certificates and profiles (ocpp_core/security/ with the
real firmware/certificates.py store), OCTT TC_073..TC_087 where they apply to
the engine, in process on the harness."""

import logging
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from firmware.certificates import CertificateStore
from ocpp_core import security
from tools import pki
from tests.support.core_harness import FAST, Harness, official_schema

CP_ID = "CP-SEC-1"
KEY = "0123456789ABCDEF0123456789ABCDEF"   # 32 hex digits: a 16-byte key


@pytest.fixture
def events():
    return []


@pytest.fixture
def tls_chain():
    return {"chain": None}


@pytest.fixture
def h(tmp_path, events, tls_chain):
    harness = Harness(tmp_path / "data", config=dict(FAST, CpoName="Test CPO"))
    for action in ("SignCertificate", "SignedFirmwareStatusNotification",
                   "LogStatusNotification"):
        harness.csms.on(action, harness._csms_handler(action))
    harness.responders["SignCertificate"] = lambda payload: {"status": "Accepted"}
    harness.store_dir = str(tmp_path / "data" / "certs")
    harness.crypto = CertificateStore(harness.store_dir, CP_ID, key_type="ec256",
                                      tls_chain=lambda: tls_chain["chain"])
    harness.cp.security.attach(harness.crypto)
    harness.cp.events.listen("security_event", lambda t, info: events.append((t, info)))
    harness.boot()
    yield harness
    harness.check_clean()


def install(h, pem, kind="CentralSystemRootCertificate"):
    return h.call("InstallCertificate", {"certificateType": kind, "certificate": pem})["status"]


def ids(h, kind="CentralSystemRootCertificate"):
    return h.call("GetInstalledCertificateIds", {"certificateType": kind})


def ocsp_hash_data(cert, issuer):
    """The hash data as cryptography's OCSP request computes them (RFC 6960)."""
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    return {"hashAlgorithm": "SHA256", "issuerNameHash": req.issuer_name_hash.hex(),
            "issuerKeyHash": req.issuer_key_hash.hex(), "serialNumber": "%X" % req.serial_number}


def sign_round(h, ca, **issue):
    """ExtendedTriggerMessage(SignChargePointCertificate) -> the CSR -> signed by ca."""
    m = h.mark()
    assert h.call("ExtendedTriggerMessage",
                  {"requestedMessage": "SignChargePointCertificate"}) == {"status": "Accepted"}
    csr = h.payloads("SignCertificate", since=m)[0]["csr"]
    return csr, ca.sign_csr(csr, **issue)


# --- configuration keys ------------------------------------------------------------------

def test_security_keys_and_their_access(h):
    conf = {e["key"]: e for e in h.call("GetConfiguration", {})["configurationKey"]}
    assert conf["SecurityProfile"] == {"key": "SecurityProfile", "readonly": False, "value": "0"}
    assert conf["CertificateSignedMaxChainSize"]["readonly"] is True
    assert conf["CertificateStoreMaxLength"]["readonly"] is True
    assert conf["AdditionalRootCertificateCheck"] == {
        "key": "AdditionalRootCertificateCheck", "readonly": True, "value": "false"}
    assert conf["CpoName"]["readonly"] is False
    # an extension, not a feature profile (OCPP 1.6 9.1.31; ocpp_core/profiles.py)
    assert "Security" not in conf["SupportedFeatureProfiles"]["value"].split(",")


@pytest.mark.parametrize("value, status", [
    ("x" * 15, "Rejected"), ("x" * 16, "Accepted"), (KEY, "Accepted"), ("A" * 40, "Accepted"),
    ("A" * 41, "Rejected"), ("has:colon-0123456789", "Rejected")])
def test_authorization_key_length_rules(h, value, status):
    assert h.call("ChangeConfiguration", {"key": "AuthorizationKey", "value": value}) == {
        "status": status}


def test_tc_073_authorization_key_is_write_only_and_logged_without_its_value(h, events, caplog):
    caplog.set_level(logging.DEBUG)
    assert h.call("ChangeConfiguration", {"key": "AuthorizationKey", "value": KEY}) == {
        "status": "Accepted"}
    got = h.call("GetConfiguration", {"key": ["AuthorizationKey"]})["configurationKey"]
    assert got == [{"key": "AuthorizationKey", "readonly": False}]
    assert events == [("ReconfigurationOfSecurityParameters", "AuthorizationKey changed")]
    assert KEY not in caplog.text


# --- TC_083 / TC_084: the security profile ------------------------------------------------------

def change_profile(h, value):
    return h.call("ChangeConfiguration", {"key": "SecurityProfile", "value": str(value)})["status"]


def test_tc_083_upgrade_needs_its_prerequisites(h, events):
    ca = pki.Ca()
    assert change_profile(h, 1) == "Rejected"          # A05.FR.02: no password
    h.call("ChangeConfiguration", {"key": "AuthorizationKey", "value": KEY})
    assert change_profile(h, 1) == "Accepted"
    assert change_profile(h, 2) == "Rejected"          # A05.FR.03: no CS root
    assert install(h, ca.pem) == "Accepted"
    assert change_profile(h, 2) == "Accepted"
    assert change_profile(h, 3) == "Rejected"          # A05.FR.04: no CP certificate
    csr, cert = sign_round(h, ca)
    assert h.call("CertificateSigned", {"certificateChain": pki.pem(cert)}) == {
        "status": "Accepted"}
    assert change_profile(h, 3) == "Accepted"
    assert h.cp.config.get("SecurityProfile") == 3
    assert ("ReconfigurationOfSecurityParameters", "SecurityProfile set to 3") in events


@pytest.mark.parametrize("value", [0, 1, 2])
def test_tc_084_downgrade_or_same_profile_is_rejected(h, value):
    h.cp.config.set("SecurityProfile", 2)
    assert change_profile(h, value) == "Rejected"
    assert h.cp.config.get("SecurityProfile") == 2


# --- TC_075 / TC_076: roots ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["CentralSystemRootCertificate",       # TC_075_2
                                  "ManufacturerRootCertificate"])       # TC_075_1
def test_tc_075_install_root_and_its_hash_data(h, kind):
    ca = pki.Ca()
    other = "ManufacturerRootCertificate" if kind != "ManufacturerRootCertificate" else \
        "CentralSystemRootCertificate"
    assert ids(h, kind) == {"status": "NotFound"}
    assert install(h, ca.pem, kind) == "Accepted"
    assert install(h, ca.pem, kind) == "Accepted"        # the same again: one copy
    assert ids(h, kind) == {"status": "Accepted",
                            "certificateHashData": [ocsp_hash_data(ca.cert, ca.cert)]}
    assert ids(h, other) == {"status": "NotFound"}
    for name in os.listdir(os.path.join(h.store_dir, "roots")):
        mode = os.stat(os.path.join(h.store_dir, "roots", name)).st_mode
        assert stat.S_IMODE(mode) == 0o600


def test_hash_data_of_a_sub_ca_uses_its_installed_issuer(h):
    root = pki.Ca("Root")
    sub = pki.Ca("Sub CA", parent=root)
    assert install(h, root.pem) == install(h, sub.pem) == "Accepted"
    found = ids(h)["certificateHashData"]
    assert ocsp_hash_data(sub.cert, root.cert) in found
    assert ocsp_hash_data(root.cert, root.cert) in found


@pytest.mark.parametrize("make, why", [
    (lambda: "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
     "malformed PEM"),
    (lambda: "hello", "no PEM"),
    (lambda: pki.Ca(not_after=pki.NOW - pki.DAY, not_before=pki.NOW - 3 * pki.DAY).pem,
     "expired"),
    (lambda: pki.Ca(ca=False).pem, "not a CA"),
    (lambda: pki.Ca().pem + pki.Ca().pem, "two certificates"),
])
def test_install_bad_input_is_rejected_and_nothing_installed(h, make, why):
    assert install(h, make()) == "Rejected", why
    assert ids(h) == {"status": "NotFound"}


def test_install_rejected_when_the_store_is_full(h):
    limit = h.cp.config.get("CertificateStoreMaxLength")
    for i in range(limit):
        assert install(h, pki.Ca("Root %d" % i).pem,
                       "ManufacturerRootCertificate" if i % 2 else
                       "CentralSystemRootCertificate") == "Accepted"
    assert install(h, pki.Ca("one too many").pem) == "Rejected"      # M05.FR.03
    assert len(ids(h)["certificateHashData"]) == (limit + 1) // 2


def test_install_failed_when_the_store_cannot_write(h):
    roots = os.path.join(h.store_dir, "roots")
    os.rmdir(roots)
    open(roots, "w").close()          # a file where the directory should be: ENOTDIR
    assert install(h, pki.Ca().pem) == "Failed"                       # M05.FR.04


def test_tc_076_delete_certificate(h):
    ca, keep = pki.Ca("to delete"), pki.Ca("to keep")
    install(h, ca.pem)
    install(h, keep.pem)
    data = ocsp_hash_data(ca.cert, ca.cert)
    # CiString: any case; the serial without leading zeroes, as sent with them too
    asked = dict(data, issuerNameHash=data["issuerNameHash"].upper(),
                 serialNumber=data["serialNumber"].lower())
    assert h.call("DeleteCertificate", {"certificateHashData": asked}) == {"status": "Accepted"}
    assert ids(h)["certificateHashData"] == [ocsp_hash_data(keep.cert, keep.cert)]
    assert h.call("DeleteCertificate", {"certificateHashData": data}) == {"status": "NotFound"}


def test_delete_the_root_in_use_fails_and_the_cp_certificate_cannot_be_deleted(h, tls_chain):
    ca = pki.Ca()
    install(h, ca.pem)
    server, _ = ca.server()
    from cryptography.hazmat.primitives import serialization
    tls_chain["chain"] = [server.public_bytes(serialization.Encoding.DER)]
    data = ocsp_hash_data(ca.cert, ca.cert)
    assert h.call("DeleteCertificate", {"certificateHashData": data}) == {"status": "Failed"}
    csr, cert = sign_round(h, ca)
    assert h.call("CertificateSigned", {"certificateChain": pki.pem(cert)})["status"] == "Accepted"
    mine = ocsp_hash_data(cert, ca.cert)
    assert h.call("DeleteCertificate", {"certificateHashData": mine}) == {"status": "Failed"}
    tls_chain["chain"] = None                        # not connected with it any more
    assert h.call("DeleteCertificate", {"certificateHashData": data}) == {"status": "Accepted"}


# --- TC_074 / TC_077: the charge point certificate -----------------------------------------------

def test_sign_charge_point_certificate_needs_cpo_name(h):
    h.call("ChangeConfiguration", {"key": "CpoName", "value": ""})
    assert h.call("ExtendedTriggerMessage",
                  {"requestedMessage": "SignChargePointCertificate"}) == {"status": "Rejected"}


def test_tc_074_csr_and_certificate_signed_round_trip(h, events, caplog):
    caplog.set_level(logging.DEBUG)
    ca = pki.Ca()
    install(h, ca.pem)
    csr_pem, cert = sign_round(h, ca)
    assert "\r\n" in csr_pem                                       # OCTT: CRLF PEM
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CP_ID
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Test CPO"
    assert not h.crypto.has_client_certificate()
    assert h.call("CertificateSigned", {"certificateChain": pki.pem(cert)}) == {
        "status": "Accepted"}
    assert h.crypto.has_client_certificate()
    cert_path, key_path = h.crypto.client_files()
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert not os.path.exists(h.crypto.pending_key_path)
    key_text = open(key_path).read()
    assert "PRIVATE KEY" in key_text
    assert key_text.split("\n")[1] not in caplog.text            # the key is never logged
    assert not [e for e in events if e[0] == "InvalidChargePointCertificate"]
    # the same chain again: no CSR pending any more
    assert h.call("CertificateSigned", {"certificateChain": pki.pem(cert)}) == {
        "status": "Rejected"}


def test_rsa_csr_is_sha256_with_rsa(h, tmp_path):
    store = CertificateStore(str(tmp_path / "rsa"), CP_ID)        # the default key type
    got = []
    store.create_csr("Test CPO", lambda csr, why: got.append(csr))
    csr = x509.load_pem_x509_csr(got[0].encode())
    assert isinstance(csr.public_key(), rsa.RSAPublicKey) and csr.public_key().key_size == 2048
    assert csr.signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.11"


def _signed_by_other_ca(h, ca):
    return sign_round(h, pki.Ca("Another CA"))[1]


def _expired(h, ca):
    return sign_round(h, ca, not_before=pki.NOW - 3 * pki.DAY,
                      not_after=pki.NOW - pki.DAY)[1]


def _other_key(h, ca):
    sign_round(h, ca)
    return ca.issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CP_ID)]),
                    pki.new_key().public_key())


@pytest.mark.parametrize("make, why", [
    (_signed_by_other_ca, "not issued under"),                          # TC_077
    (_expired, "validity"),
    (_other_key, "not for the key"),
])
def test_tc_077_invalid_certificate_signed_is_rejected_with_the_event(h, events, make, why):
    ca = pki.Ca()
    install(h, ca.pem)
    cert = make(h, ca)
    assert h.call("CertificateSigned", {"certificateChain": pki.pem(cert)}) == {
        "status": "Rejected"}
    assert [e[0] for e in events if e[0] != "ReconfigurationOfSecurityParameters"] == [
        "InvalidChargePointCertificate"]
    assert why in events[-1][1]
    assert not h.crypto.has_client_certificate()


def test_certificate_signed_malformed_or_too_long(h, events):
    ca = pki.Ca()
    install(h, ca.pem)
    csr, cert = sign_round(h, ca)
    bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert h.call("CertificateSigned", {"certificateChain": bad}) == {"status": "Rejected"}
    chain = pki.pem(cert) + ca.pem
    h.cp.config._values["CertificateSignedMaxChainSize"] = len(chain) - 1   # read-only key
    assert h.call("CertificateSigned", {"certificateChain": chain}) == {"status": "Rejected"}
    assert "CertificateSignedMaxChainSize" in events[-1][1]
    h.cp.config._values["CertificateSignedMaxChainSize"] = 10000
    assert h.call("CertificateSigned", {"certificateChain": chain}) == {"status": "Accepted"}


def test_chain_with_an_intermediate(h):
    root = pki.Ca("Root")
    sub = pki.Ca("Sub CA", parent=root)
    install(h, root.pem)
    csr, cert = sign_round(h, sub)
    assert h.call("CertificateSigned", {"certificateChain": pki.pem(cert)}) == {
        "status": "Rejected"}                           # the sub CA is missing
    csr, cert = sign_round(h, sub)
    assert h.call("CertificateSigned", {"certificateChain": pki.pem(cert) + sub.pem}) == {
        "status": "Accepted"}


# --- ExtendedTriggerMessage: the other requestedMessage values -----------------------------------

@pytest.mark.parametrize("message, sent", [
    ("BootNotification", "BootNotification"), ("Heartbeat", "Heartbeat"),
    ("StatusNotification", "StatusNotification"), ("MeterValues", "MeterValues"),
    ("FirmwareStatusNotification", "SignedFirmwareStatusNotification"),
    ("LogStatusNotification", "LogStatusNotification")])
def test_extended_trigger_message(h, message, sent):
    m = h.mark()
    assert h.call("ExtendedTriggerMessage", {"requestedMessage": message}) == {
        "status": "Accepted"}
    assert sent in [a for a, _ in h.sent(since=m)]
    if sent in ("SignedFirmwareStatusNotification", "LogStatusNotification"):
        assert h.payloads(sent, since=m) == [{"status": "Idle"}]


def test_extended_trigger_unknown_connector_is_rejected(h):
    assert h.call("ExtendedTriggerMessage", {"requestedMessage": "StatusNotification",
                                             "connectorId": 9}) == {"status": "Rejected"}


def test_schemas_of_the_answers_are_the_official_ones(h):
    # h.call validates every answer against the official *Response schema
    official_schema("ExtendedTriggerMessageResponse")
    official_schema("CertificateSignedResponse")
