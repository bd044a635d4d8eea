"""Signed firmware checks (SignedUpdateFirmware, OCA security whitepaper):
the engine's ocpp_core.security.SignatureInterface, with `cryptography`
(imported lazily: a station that never sees a signed update never loads it);
the X.509 checks are the certificate store's (firmware/x509_checks.py).

- The signing certificate (PEM, the request's signingCertificate; a chain may
  follow it) must chain to one of the ManufacturerRootCertificates that
  InstallCertificate put in the certificate store (firmware/certificates.py:
  DIR/certs/roots/ManufacturerRootCertificate-*.pem, MANUFACTURER_ROOTS), every
  certificate of the chain valid now, each issuer a CA.
- The signature (base64, the request's signature) is checked with the
  certificate's public key over the bytes of the downloaded image file:
  RSA PKCS#1 v1.5 or ECDSA, with SHA-256 (the whitepaper's "RSA or ECDSA,
  SHA256"). The file is hashed in chunks on the transfer worker, never on the
  main loop.
"""

import base64
import binascii
import datetime
import glob
import os
import time

from firmware.transfers import TransferResult
from firmware.x509_checks import (in_validity, is_ca, issued_by, not_after, not_before,
                                  parse_pem_chain)

# Where InstallCertificate(ManufacturerRootCertificate) keeps the roots, under DIR
# (firmware/certificates.py names each <kind>-<hash>.pem in certs/roots).
MANUFACTURER_ROOTS = os.path.join("certs", "roots", "ManufacturerRootCertificate-*.pem")
CHUNK = 256 * 1024


class SignatureError(Exception):
    """str(e): one line for the log and the security event's techInfo."""


def load_certificates(pem_text):
    """The certificates of a PEM text, in order; SignatureError if none parse."""
    try:
        return parse_pem_chain(pem_text)
    except ValueError as e:
        raise SignatureError("signing certificate unreadable (%s)" % e)


def load_roots(pattern):
    """The certificates of the PEM files matching the glob pattern."""
    roots = []
    for path in sorted(glob.glob(pattern)):
        try:
            with open(path, "rb") as f:
                roots.extend(load_certificates(f.read()))
        except (OSError, SignatureError):
            continue        # an unreadable root is no root
    return roots


def check_chain(pem_text, roots, now=None):
    """The leaf certificate when pem_text chains to one of roots; else SignatureError."""
    now = datetime.datetime.fromtimestamp(time.time() if now is None else now,
                                          datetime.timezone.utc)
    chain = load_certificates(pem_text)
    if not roots:
        raise SignatureError("no ManufacturerRootCertificate installed")
    for cert in chain:
        if not in_validity(cert, now):
            raise SignatureError("certificate %s is not valid now (%s to %s)" % (
                cert.subject.rfc4514_string()[:60], not_before(cert).date(),
                not_after(cert).date()))
    current = chain[0]
    intermediates = chain[1:]
    for _ in range(len(chain) + 1):
        for root in roots:
            if issued_by(current, root):
                # an installed root is a trust anchor: as the store accepted it
                # (a v1 root without basicConstraints), only "not a CA" refuses it
                if not (in_validity(root, now) and is_ca(root, unmarked=True)):
                    raise SignatureError("manufacturer root %s is expired or not a CA"
                                         % root.subject.rfc4514_string()[:60])
                return chain[0]
        step = next((c for c in intermediates if is_ca(c) and issued_by(current, c)), None)
        if step is None:
            break
        intermediates.remove(step)
        current = step
    raise SignatureError("signing certificate %s is not issued by an installed "
                         "ManufacturerRootCertificate" % chain[0].subject.rfc4514_string()[:60])


def _file_digest(path):
    from cryptography.hazmat.primitives import hashes
    h = hashes.Hash(hashes.SHA256())
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return h.finalize()


def verify_file(path, certificate, signature_b64):
    """None when signature_b64 is the certificate's signature of the file; else
    SignatureError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    try:
        signature = base64.b64decode("".join(signature_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("signature is not base64")
    try:
        digest = _file_digest(path)
    except OSError as e:
        raise SignatureError("image unreadable: %s" % (e.strerror or e))
    key = certificate.public_key()
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
        else:
            raise SignatureError("signing key type %s not supported (RSA or ECDSA)"
                                 % type(key).__name__)
    except InvalidSignature:
        raise SignatureError("the image does not match its signature (SHA-256, %s)"
                             % ("RSA" if isinstance(key, rsa.RSAPublicKey) else "ECDSA"))


def sign_file(path, key):
    """The base64 signature of the file with a private key (tools.make_image)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    digest = _file_digest(path)
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(digest, padding.PKCS1v15(), prehashed)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(digest, ec.ECDSA(prehashed))
    else:
        raise SignatureError("signing key type %s not supported (RSA or ECDSA)"
                             % type(key).__name__)
    return base64.b64encode(signature).decode("ascii")


class FirmwareSignatures:
    """The engine's SignatureInterface: certificate checks on the caller's
    thread (a few parsed certificates), the image check on the transfer worker."""

    def __init__(self, worker, data_dir, image_path, clock=time.time):
        self.worker = worker
        self.roots = os.path.join(data_dir, MANUFACTURER_ROOTS)
        self.image_path = image_path
        self.clock = clock

    def check_certificate(self, certificate_pem):
        try:
            check_chain(certificate_pem, load_roots(self.roots), self.clock())
        except SignatureError as e:
            return str(e)
        return None

    def verify(self, certificate_pem, signature_b64):
        self.worker.submit(lambda stopped: self._verify(certificate_pem, signature_b64))

    def _verify(self, certificate_pem, signature_b64):
        try:
            leaf = check_chain(certificate_pem, load_roots(self.roots), self.clock())
            verify_file(self.image_path, leaf, signature_b64)
        except SignatureError as e:
            return TransferResult("signature", False, str(e), 1)
        return TransferResult("signature", True, None, 1)
