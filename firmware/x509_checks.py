"""X.509 checks shared by the certificate store (firmware/certificates.py) and
the signed firmware checks (firmware/firmware_signature.py).

`cryptography` is imported lazily, when the first certificate is touched, so a
station that never uses the security extension does not pay its memory.
"""

import datetime


def x509():
    from cryptography import x509 as module   # lazy: see the module docstring
    return module


def parse_pem_chain(text):
    """The certificates of a PEM text (str, or the bytes of a PEM file), in order;
    ValueError(one line) when it holds none or is malformed."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")   # a non-ASCII byte: malformed below
    if not isinstance(text, str) or "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError("no PEM certificate")
    try:
        certs = x509().load_pem_x509_certificates(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as e:
        raise ValueError("malformed PEM certificate (%s)" % " ".join(str(e).split())[:80])
    if not certs:
        raise ValueError("no PEM certificate")
    return certs


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def _utc(cert, name):
    """not_valid_before/after as an aware datetime (cryptography 41 lacks *_utc)."""
    value = getattr(cert, name + "_utc", None)
    if value is None:
        value = getattr(cert, name).replace(tzinfo=datetime.timezone.utc)
    return value


def not_before(cert):
    return _utc(cert, "not_valid_before")


def not_after(cert):
    return _utc(cert, "not_valid_after")


def in_validity(cert, now=None):
    """now: an aware datetime, the current time when None."""
    now = now or utc_now()
    return not_before(cert) <= now <= not_after(cert)


def is_ca(cert, unmarked=False):
    """What cert's basicConstraints says; `unmarked` for a certificate without
    the extension (the store takes such a v1 certificate as a root)."""
    module = x509()
    try:
        return cert.extensions.get_extension_for_class(module.BasicConstraints).value.ca
    except module.ExtensionNotFound:
        return unmarked


def issued_by(cert, issuer):
    """cert's signature verifies with issuer's key and the names chain."""
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:  # ValueError, TypeError, InvalidSignature, unsupported key types
        return False
