"""SignedUpdateFirmware (OCA security whitepaper, edition 3, secure firmware
update): OCTT TC_080_CS (Secure Firmware Update) and TC_081_CS (Invalid
Signature), an invalid signing certificate, on the engine in process with the
firmware's real transfer worker, its real signature checks (firmware/
firmware_signature.py) against a test PKI made here with `cryptography`, and a
loopback HTTP server. Also tools.make_image --signing-key."""

import base64
import datetime
import glob
import os
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from firmware.certificates import CertificateStore
from firmware.firmware_signature import (MANUFACTURER_ROOTS, FirmwareSignatures, SignatureError,
                                         check_chain, load_certificates, sign_file,
                                         verify_file)
from firmware.images import build_image
from firmware.releases import Releases
from firmware.transfers import FirmwareTransfers
from ocpp_core.security.signed_update import SignatureInterface
from ocpp_core.timestamps import format_utc
from tests.support.core_harness import FAST, Harness
from tests.support.file_server import FileServer
from tests.support.security_wiring import MemoryLog, secure
from tests.support.firmware_transfers import (FakeTransfers, deliver_firmware_results,
                                              running_worker)
from tests.support.firmware_transfers import firmware_done as done

SFW = "SignedFirmwareStatusNotification"
SEN = "SecurityEventNotification"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- a test PKI ---------------------------------------------------------------------------------
def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(subject, key, issuer=None, issuer_key=None, ca=False, days=(-1, 30),
              constraints=True):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject))
               .issuer_name(_name(issuer or subject))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days[0]))
               .not_valid_after(now + datetime.timedelta(days=days[1])))
    if constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                        critical=True)
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


class Pki:
    def __init__(self):
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = make_cert("Test Manufacturer Root", self.root_key, ca=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = make_cert("Firmware Signing", self.key, "Test Manufacturer Root",
                              self.root_key)
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_cert = make_cert("Firmware Signing RSA", self.rsa_key,
                                  "Test Manufacturer Root", self.root_key)
        other_key = ec.generate_private_key(ec.SECP256R1())
        self.other_root = make_cert("Another Root", other_key, ca=True)
        self.other_signer_key = ec.generate_private_key(ec.SECP256R1())
        self.other_cert = make_cert("Firmware Signing", self.other_signer_key, "Another Root",
                                    other_key)
        self.expired_cert = make_cert("Firmware Signing", self.key, "Test Manufacturer Root",
                                      self.root_key, days=(-30, -1))

    def install_root(self, data_dir):
        """As InstallCertificate(ManufacturerRootCertificate) does it."""
        store = CertificateStore(os.path.join(str(data_dir), "certs"), "CP-TEST-1")
        assert store.install_root("ManufacturerRootCertificate", pem(self.root), 20)[0] == \
            "Accepted"
        assert glob.glob(os.path.join(str(data_dir), MANUFACTURER_ROOTS))


@pytest.fixture(scope="module")
def pki():
    return Pki()


# --- the signature checks alone --------------------------------------------------------------
def test_a_root_without_basic_constraints_is_a_trust_anchor_as_the_store_says(tmp_path, pki):
    """The store installs a v1 root (no basicConstraints); the signature check
    accepts what chains to it, and still refuses a root marked "not a CA"."""
    v1_key = ec.generate_private_key(ec.SECP256R1())
    v1_root = make_cert("V1 Root", v1_key, constraints=False)
    signer = make_cert("Firmware Signing", pki.key, "V1 Root", v1_key)
    store = CertificateStore(str(tmp_path / "certs"), "CP-TEST-1")
    assert store.install_root("ManufacturerRootCertificate", pem(v1_root), 20)[0] == "Accepted"
    assert check_chain(pem(signer), [v1_root]).subject == signer.subject
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    not_ca = make_cert("Not A CA", leaf_key, ca=False)
    with pytest.raises(SignatureError, match="not a CA"):
        check_chain(pem(make_cert("Firmware Signing", pki.key, "Not A CA", leaf_key)), [not_ca])


def test_check_chain(pki):
    assert check_chain(pem(pki.cert), [pki.root]).subject == pki.cert.subject
    for bad, why in ((pem(pki.other_cert), "not issued by an installed"),
                     (pem(pki.expired_cert), "not valid now"),
                     ("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
                      "unreadable"),
                     ("", "unreadable")):
        with pytest.raises(Exception) as e:
            check_chain(bad, [pki.root])
        assert why in str(e.value)
    with pytest.raises(Exception, match="no ManufacturerRootCertificate"):
        check_chain(pem(pki.cert), [])


def test_ecdsa_and_rsa_signatures_over_the_file(tmp_path, pki):
    f = tmp_path / "img"
    f.write_bytes(os.urandom(100000))
    for key, cert in ((pki.key, pki.cert), (pki.rsa_key, pki.rsa_cert)):
        sig = sign_file(str(f), key)
        assert verify_file(str(f), cert, sig) is None
        with pytest.raises(Exception, match="does not match"):
            verify_file(str(f), pki.cert if cert is pki.rsa_cert else pki.rsa_cert, sig)
    with pytest.raises(Exception, match="not base64"):
        verify_file(str(f), pki.cert, "%%%")


# --- the engine with fake checks: the status sequence and requestId ----------------------------
class FakeSignatures(SignatureInterface):
    def __init__(self):
        self.certificate_problem = None
        self.calls = []

    def check_certificate(self, certificate_pem):
        return self.certificate_problem

    def verify(self, certificate_pem, signature_b64):
        self.calls.append(("verify", signature_b64))


def engine(tmp_path, version="1.0.0"):
    h = Harness(tmp_path / "data", config=FAST)
    h.fake, h.sigs, h.log = FakeTransfers(), FakeSignatures(), MemoryLog()
    wire(h, version)
    return h


def wire(h, version):
    h.cp.registration.boot_payload["firmwareVersion"] = version
    h.cp.firmware.attach(h.fake)
    secure(h, h.log, h.sigs)


def signed_request(h, location="http://fw.example.com/9.9.9.img", request_id=42, in_s=0,
                   **firmware):
    fw = {"location": location, "retrieveDateTime": format_utc(h.clock.now() + in_s),
          "signingCertificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
          "signature": "c2lnbmF0dXJl"}
    fw.update(firmware)
    return h.call("SignedUpdateFirmware", {"requestId": request_id, "firmware": fw,
                                           "retries": 1})


def statuses(h, since=0):
    return [p["status"] for p in h.payloads(SFW, since)]


def test_tc_080_signed_update_to_installed_with_request_id(tmp_path):
    h = engine(tmp_path)
    h.boot()
    m = h.mark()
    assert signed_request(h) == {"status": "Accepted"}
    h.advance(0)
    done(h, "download", True, "img")
    assert h.sigs.calls == [("verify", "c2lnbmF0dXJl")] and h.fake.calls[-1][0] == "download"
    done(h, "signature", True)
    done(h, "install", True, {"version": "9.9.9"})
    assert h.fake.calls[-1] == ("activate", "9.9.9")
    h.power_cut()
    h.power_on()                # the firmware restarted into the new release
    wire(h, "9.9.9")
    h.boot()
    assert statuses(h, m) == ["Downloading", "Downloaded", "SignatureVerified", "Installing",
                              "InstallRebooting", "Installed"]
    assert {p["requestId"] for p in h.payloads(SFW, m)} == {42}
    assert h.payloads("FirmwareStatusNotification", m) == []
    assert [p["type"] for p in h.payloads(SEN, m)] == ["FirmwareUpdated"]
    assert h.cp.events.ask("signed_firmware_status") == {"status": "Idle"}
    h.check_clean()


def test_tc_081_invalid_signature_installs_nothing(tmp_path):
    h = engine(tmp_path)
    h.boot()
    m = h.mark()
    signed_request(h)
    h.advance(0)
    done(h, "download", True, "img")
    done(h, "signature", False, "the image does not match its signature (SHA-256, ECDSA)")
    assert statuses(h, m) == ["Downloading", "Downloaded", "InvalidSignature"]
    assert ("install",) not in h.fake.calls
    [event] = h.payloads(SEN, m)
    assert event["type"] == "InvalidFirmwareSignature" and "does not match" in event["techInfo"]
    assert h.statuses(1)[-1] == "Available" and h.cp.firmware.update is None
    h.check_clean()


def test_an_invalid_signing_certificate_is_answered_invalid_certificate(tmp_path):
    h = engine(tmp_path)
    h.boot()
    h.sigs.certificate_problem = "signing certificate CN=x is not issued by an installed root"
    m = h.mark()
    assert signed_request(h) == {"status": "InvalidCertificate"}
    h.advance(5)
    assert h.fake.calls == [] and h.cp.firmware.update is None and statuses(h, m) == []
    [event] = h.payloads(SEN, m)
    assert event["type"] == "InvalidFirmwareSigningCertificate"
    h.check_clean()


def test_scheduled_download_and_install_and_accepted_canceled(tmp_path):
    h = engine(tmp_path)
    h.boot()
    m = h.mark()
    assert signed_request(h, in_s=600, request_id=1) == {"status": "Accepted"}
    assert statuses(h, m) == ["DownloadScheduled"]
    later = format_utc(h.clock.now() + 3600)
    assert signed_request(h, request_id=2, installDateTime=later) == \
        {"status": "AcceptedCanceled"}
    h.advance(0)
    done(h, "download", True, "img")
    done(h, "signature", True)
    assert statuses(h, m)[-1] == "InstallScheduled" and ("install",) not in h.fake.calls
    assert h.statuses(1)[-1] == "Available"        # not held before the install time
    h.advance(3600, step=60)
    assert h.fake.calls[-1] == ("install",)
    assert [p["requestId"] for p in h.payloads(SFW, m)] == [1, 2, 2, 2, 2, 2]
    h.check_clean()


def test_a_restart_while_verifying_checks_the_signature_again(tmp_path):
    h = engine(tmp_path)
    h.boot()
    signed_request(h)
    h.advance(0)
    done(h, "download", True, "img")
    h.power_cut()
    h.power_on()
    wire(h, "1.0.0")
    m = h.mark()
    h.boot()
    assert len(h.sigs.calls) == 2       # the new run asks for the check again
    done(h, "signature", True)
    assert statuses(h, m) == ["SignatureVerified", "Installing"]
    h.check_clean()


def test_rejected_without_signature_checks(tmp_path):
    h = Harness(tmp_path / "data", config=FAST)
    h.cp.firmware.attach(FakeTransfers())
    secure(h, MemoryLog(), None)
    h.boot()
    assert signed_request(h) == {"status": "Rejected"}
    h.check_clean()


# --- end to end: the real worker, real checks, a loopback HTTP server --------------------------
@pytest.fixture
def served(tmp_path, pki):
    src = tmp_path / "src"
    (src / "firmware").mkdir(parents=True)
    (src / "firmware" / "__init__.py").write_text("# release 9.9.9\n")
    image = tmp_path / "good.img"
    build_image(str(src), "9.9.9", str(image))
    good = image.read_bytes()
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    server = FileServer({"/good.img": good, "/flipped.img": bytes(flipped)})
    yield server.base, sign_file(str(image), pki.key)
    server.stop()


def run_signed(tmp_path, pki, location, signature, certificate):
    data = str(tmp_path / "data")
    h = Harness(data, config=FAST)
    pki.install_root(data)
    with running_worker() as worker:
        transfers = FirmwareTransfers(worker, data, timeout=5)
        h.cp.firmware.attach(transfers)
        secure(h, MemoryLog(), FirmwareSignatures(worker, data, transfers.image))
        h.boot()
        m = h.mark()
        answer = h.call("SignedUpdateFirmware", {"requestId": 7, "retries": 1, "firmware": {
            "location": location, "retrieveDateTime": format_utc(h.clock.now()),
            "signingCertificate": certificate, "signature": signature}})
        h.advance(0)
        # download, signature, image check, activation
        deliver_firmware_results(h, worker.events, 4)
        h.check_clean()
        return answer["status"], statuses(h, m), [p["type"] for p in h.payloads(SEN, m)], h


def test_tc_080_real_download_signature_verified(tmp_path, pki, served):
    # The real worker stages the verified image and switches releases/current to
    # it (on trial); the restart into it is the main loop's (no restart here:
    # the end to end update is tests/test_e2e_firmware_update.py).
    url, sig = served
    status, seen, events, h = run_signed(tmp_path, pki, url + "/good.img", sig, pem(pki.cert))
    assert status == "Accepted"
    assert seen == ["Downloading", "Downloaded", "SignatureVerified", "Installing",
                    "InstallRebooting"]
    assert events == []
    releases = Releases(str(tmp_path / "data" / "releases"))
    assert releases.current() == "9.9.9" and releases.on_trial("9.9.9")


def test_tc_081_real_flipped_byte_is_invalid_signature(tmp_path, pki, served):
    url, sig = served
    status, seen, events, h = run_signed(tmp_path, pki, url + "/flipped.img", sig,
                                         pem(pki.cert))
    assert status == "Accepted"
    assert seen == ["Downloading", "Downloaded", "InvalidSignature"]
    assert events == ["InvalidFirmwareSignature"]
    assert not os.path.exists(os.path.join(str(tmp_path / "data"), "releases"))


def test_real_signing_certificate_of_another_ca_is_invalid_certificate(tmp_path, pki, served):
    url, _ = served
    other_sig = sign_file(str(tmp_path / "good.img"), pki.other_signer_key)
    status, seen, events, h = run_signed(tmp_path, pki, url + "/good.img", other_sig,
                                         pem(pki.other_cert))
    assert (status, seen, events) == ("InvalidCertificate", [],
                                      ["InvalidFirmwareSigningCertificate"])
    assert not os.path.exists(os.path.join(str(tmp_path / "data"), "firmware", "update.img"))


def test_real_expired_signing_certificate_is_invalid_certificate(tmp_path, pki, served):
    url, sig = served
    status, seen, events, h = run_signed(tmp_path, pki, url + "/good.img", sig,
                                         pem(pki.expired_cert))
    assert (status, events) == ("InvalidCertificate", ["InvalidFirmwareSigningCertificate"])


# --- tools.make_image --signing-key ---------------------------------------------------------
def _write_key(path, key):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def test_make_image_writes_the_signature_file(tmp_path, pki):
    key, cert, out = tmp_path / "key.pem", tmp_path / "cert.pem", tmp_path / "fw.img"
    _write_key(key, pki.key)
    cert.write_text(pem(pki.cert))
    r = subprocess.run([sys.executable, "-m", "tools.make_image", "--version", "9.9.9",
                        "--out", str(out), "--signing-key", str(key), "--signing-cert",
                        str(cert)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "PRIVATE KEY" not in r.stdout + r.stderr
    sig = (tmp_path / "fw.img.sig").read_text().strip()
    base64.b64decode(sig, validate=True)
    leaf = load_certificates(pem(pki.cert))[0]
    assert verify_file(str(out), leaf, sig) is None
    # A key that is not the certificate's: refused, no image, no signature.
    _write_key(key, pki.other_signer_key)
    (tmp_path / "fw.img.sig").unlink()
    r = subprocess.run([sys.executable, "-m", "tools.make_image", "--version", "9.9.9",
                        "--out", str(tmp_path / "x.img"), "--signing-key", str(key),
                        "--signing-cert", str(cert)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "does not belong" in r.stderr
    assert "PRIVATE KEY" not in r.stdout + r.stderr
    assert not (tmp_path / "x.img").exists() and not (tmp_path / "x.img.sig").exists()


# --- the real firmware subprocess -----------------------------------------------------------
def test_tc_080_and_tc_081_on_the_running_firmware(tmp_path, pki, served, ocpp_csms, firmware):
    url, sig = served
    data = str(tmp_path / "data")
    pki.install_root(data)
    firmware(ocpp_csms.url, data_dir=data)
    ocpp_csms.wait_for("BootNotification")

    def update(request_id, image, certificate=pem(pki.cert)):
        return ocpp_csms.call("CP-TEST-1", "SignedUpdateFirmware", {
            "requestId": request_id, "retries": 1, "firmware": {
                "location": url + image, "retrieveDateTime": format_utc(0),
                "signingCertificate": certificate, "signature": sig}})

    def statuses_until(request_id, last):
        seen = []
        while not seen or seen[-1] != last:
            p = ocpp_csms.wait_for(SFW, 15, lambda p: p.get("requestId") == request_id)
            seen.append(p["status"])
        return seen

    assert update(1, "/flipped.img") == {"status": "Accepted"}
    assert statuses_until(1, "InvalidSignature") == ["Downloading", "Downloaded",
                                                     "InvalidSignature"]
    assert ocpp_csms.wait_for(SEN, predicate=lambda p:
                              p["type"] == "InvalidFirmwareSignature")["techInfo"]
    assert update(2, "/good.img", pem(pki.other_cert)) == {"status": "InvalidCertificate"}
    ocpp_csms.wait_for(SEN, predicate=lambda p: p["type"] == "InvalidFirmwareSigningCertificate")
    assert update(3, "/good.img") == {"status": "Accepted"}
    # Up to the installation: the one-file test release cannot start, so its trial
    # ends in InstallationFailed (the A/B install: tests/test_e2e_firmware_update.py).
    assert statuses_until(3, "InstallationFailed") == [
        "Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting",
        "InstallationFailed"]


def test_the_firmware_loads_cryptography_only_for_a_signed_update():
    code = ("import sys, firmware.main_loop, firmware.firmware_signature, tools.make_image; "
            "print('cryptography' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.strip() == "False", r.stderr
