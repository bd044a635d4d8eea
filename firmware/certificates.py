"""The station's certificate store and its cryptography (whitepaper "Improved
security for OCPP 1.6-J" ed. 3), behind ocpp_core.security.interface.

Files, all owner-only (directory 0700, files 0600), written atomically:

    <dir>/roots/CentralSystemRootCertificate-<sha256 of the DER, 16 hex>.pem
    <dir>/roots/ManufacturerRootCertificate-<...>.pem
    <dir>/cp.pem        the charge point certificate (chain, leaf first)
    <dir>/cp.key        its private key (PKCS#8 PEM, unencrypted: the station
                        must reconnect unattended; the file is the protection)
    <dir>/cp.pem.old, cp.key.old    the previous pair (A02.FR.10: kept as fallback)
    <dir>/pending.key   the key of the CSR sent last, until its certificate arrives

The private keys never leave the directory: nothing here logs, returns or
sends them (A02.FR.05); the TLS context reads cp.key by path.

`cryptography` is imported lazily (firmware/x509_checks.py), when the first
certificate is touched, so a station that never uses the security extension
does not pay its memory.

Readings chosen:
- Hash data (6.1, ed. 3): issuerNameHash over the DER of the certificate's
  issuer name; issuerKeyHash over the issuer's public key bits (the BIT STRING
  value of subjectPublicKey, RFC 6960); serialNumber upper-case hex without
  leading zeroes. For a root the issuer is itself; for an installed certificate
  whose issuer is not on the station its own key is used (nothing better is known).
- InstallCertificate Rejected: not exactly one PEM certificate, expired, a
  basicConstraints extension saying it is not a CA, or the store full
  (CertificateStoreMaxLength counts both kinds). The same certificate installed
  again is Accepted without a second copy.
- CertificateSigned: the leaf's key must be the pending CSR's; every
  certificate of the chain must be in its validity period and directly issued by
  the next one; the last one must be issued by (or be) an installed
  CentralSystemRootCertificate (the CPO hierarchy, A02.FR.06); RSA keys of at
  least 2048 bits, EC keys of at least 224 (A00.FR.502/503).
- "The CentralSystemRootCertificate currently in use" (M04.FR.06): a root that
  anchors the chain of the current TLS connection (the link reports it).
"""

import hashlib
import logging
import os
import threading

from firmware.x509_checks import (in_validity, is_ca, issued_by, not_after, parse_pem_chain,
                                  utc_now)
from firmware.x509_checks import x509 as _x509
from ocpp_core.security.interface import CS_ROOT, MF_ROOT, ROOT_KINDS, SecurityInterface

log = logging.getLogger("ocpp.certificates")

HASHES = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}
KEY_TYPES = ("rsa2048", "ec256")


# --- pure helpers ----------------------------------------------------------------

def _der_length(data, i):
    first = data[i]
    if first < 0x80:
        return first, i + 1
    n = first & 0x7F
    return int.from_bytes(data[i + 1:i + 1 + n], "big"), i + 1 + n


def public_key_bits(cert):
    """The value of the subjectPublicKey BIT STRING (without its unused-bits
    byte): what RFC 6960 hashes as the issuer key."""
    from cryptography.hazmat.primitives import serialization
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    # SEQUENCE { SEQUENCE algorithm, BIT STRING subjectPublicKey }
    _, i = _der_length(spki, 1)             # inside the outer SEQUENCE
    alg_len, j = _der_length(spki, i + 1)    # the algorithm SEQUENCE
    i = j + alg_len
    if spki[i] != 0x03:
        raise ValueError("SubjectPublicKeyInfo without a BIT STRING")
    bits_len, j = _der_length(spki, i + 1)
    return spki[j + 1:j + bits_len]


def serial_hex(cert):
    return "%X" % cert.serial_number


def hash_data(cert, issuer, algorithm="SHA256"):
    """CertificateHashDataType of cert, issuer being its issuer's certificate."""
    h = HASHES[algorithm]
    return {"hashAlgorithm": algorithm,
            "issuerNameHash": h(cert.issuer.public_bytes()).hexdigest(),
            "issuerKeyHash": h(public_key_bits(issuer)).hexdigest(),
            "serialNumber": serial_hex(cert)}


def same_hash_data(a, b):
    """CiString comparison (case-insensitive); serials without leading zeroes."""
    def norm(d):
        return (d["hashAlgorithm"], d["issuerNameHash"].lower(), d["issuerKeyHash"].lower(),
                d["serialNumber"].upper().lstrip("0") or "0")
    return norm(a) == norm(b)


def _key_problem(cert):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return "RSA key of %d bits (2048 at least)" % key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 224:
        return "EC key of %d bits (224 at least)" % key.curve.key_size
    return None


def _der(cert):
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.DER)


def _pem(cert):
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _spki(key):
    from cryptography.hazmat.primitives import serialization
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def write_private(path, data):
    """Write data (bytes) to path atomically, owner-only, durable."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def make_key(key_type):
    if key_type == "ec256":
        from cryptography.hazmat.primitives.asymmetric import ec
        return ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_csr(key, common_name, organization):
    """PKCS#10 (RFC 2986), SHA-256 signature (SHA256withRSA for RSA keys: what
    the OCTT expects), PEM with CRLF line ends (OCTT, see docs/octt-cases.md)."""
    x509 = _x509()
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)) \
        .sign(key, hashes.SHA256())
    pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return pem.replace("\r\n", "\n").replace("\n", "\r\n")


# --- the store --------------------------------------------------------------------

class CertificateStore(SecurityInterface):
    """identity: the charge point id (the CSR's CN, A00.FR.511). run(fn) runs a
    slow job off the main loop and deliver(fn) brings its result back onto it
    (both synchronous by default, for tests). tls_chain() -> the DER certificates
    of the current TLS connection's chain, or None."""

    def __init__(self, directory, identity, key_type="rsa2048", run=None, deliver=None,
                 tls_chain=None):
        if key_type not in KEY_TYPES:
            raise ValueError("key type must be one of %s" % ", ".join(KEY_TYPES))
        self.dir = directory
        self.roots_dir = os.path.join(directory, "roots")
        self.identity = identity
        self.key_type = key_type
        self._run = run or (lambda fn: fn())
        self._deliver = deliver or (lambda fn: fn())
        self.tls_chain = tls_chain or (lambda: None)
        self._lock = threading.Lock()   # the CSR worker and the main loop
        for d in (directory, self.roots_dir):
            try:
                os.makedirs(d, mode=0o700, exist_ok=True)
                os.chmod(d, 0o700)
            except OSError as e:   # a read-only data dir: installs will answer Failed
                log.warning("certificate directory %s: %s", d, e.strerror or e)

    @property
    def cert_path(self):
        return os.path.join(self.dir, "cp.pem")

    @property
    def key_path(self):
        return os.path.join(self.dir, "cp.key")

    @property
    def pending_key_path(self):
        return os.path.join(self.dir, "pending.key")

    # --- roots ------------------------------------------------------------------------
    def _roots(self, kind=None):
        """[(kind, path, certificate)] of the installed roots, unreadable ones skipped."""
        found = []
        try:
            names = sorted(os.listdir(self.roots_dir))
        except OSError:
            return found
        for name in names:
            k = name.split("-", 1)[0]
            if not name.endswith(".pem") or k not in ROOT_KINDS or (kind and k != kind):
                continue
            path = os.path.join(self.roots_dir, name)
            try:
                with open(path, encoding="ascii") as f:
                    found.append((k, path, parse_pem_chain(f.read())[0]))
            except (OSError, ValueError) as e:
                log.warning("ignored unreadable root certificate %s: %s", name, e)
        return found

    def install_root(self, kind, pem, max_count):
        if kind not in ROOT_KINDS:
            return "Rejected", "unknown certificate type"
        try:
            certs = parse_pem_chain(pem)
        except ValueError as e:
            return "Rejected", str(e)
        if len(certs) != 1:
            return "Rejected", "%d certificates where one is expected" % len(certs)
        cert = certs[0]
        if not in_validity(cert):
            return "Rejected", "outside its validity period"
        if not is_ca(cert, unmarked=True):   # a v1 root: nothing says otherwise
            return "Rejected", "not a CA certificate"
        der = _der(cert)
        roots = self._roots()
        for k, _, c in roots:
            if k == kind and _der(c) == der:
                return "Accepted", "already installed"
        if len(roots) >= max_count:
            return "Rejected", "the store is full (CertificateStoreMaxLength %d)" % max_count
        name = "%s-%s.pem" % (kind, hashlib.sha256(der).hexdigest()[:16])
        try:
            write_private(os.path.join(self.roots_dir, name), _pem(cert).encode("ascii"))
        except OSError as e:
            return "Failed", "cannot store it: %s" % (e.strerror or e)
        log.info("installed %s %s (serial %s)", kind, cert.subject.rfc4514_string()[:80],
                 serial_hex(cert))
        return "Accepted", None

    def _issuer_of(self, cert, roots):
        if cert.issuer == cert.subject:
            return cert
        for _, _, c in roots:
            if c.subject == cert.issuer and issued_by(cert, c):
                return c
        return cert

    def installed(self, kind):
        roots = self._roots()
        return [hash_data(c, self._issuer_of(c, roots)) for k, _, c in roots if k == kind]

    def delete(self, wanted):
        algorithm = wanted.get("hashAlgorithm")
        if algorithm not in HASHES:
            return "NotFound", "unknown hash algorithm"
        client = self._client_chain()
        roots = self._roots()
        if client:
            leaf = client[0]
            issuer = client[1] if len(client) > 1 else self._issuer_of(leaf, roots)
            if same_hash_data(hash_data(leaf, issuer, algorithm), wanted):
                return "Failed", "the charge point certificate cannot be deleted (M04.FR.05)"
        for kind, path, cert in roots:
            if not same_hash_data(hash_data(cert, self._issuer_of(cert, roots), algorithm),
                                  wanted):
                continue
            if kind == CS_ROOT and self.root_in_use(cert):
                return "Failed", "this root validates the current CSMS connection (M04.FR.06)"
            try:
                os.remove(path)
            except OSError as e:
                return "Failed", "cannot remove it: %s" % (e.strerror or e)
            log.info("deleted %s serial %s", kind, serial_hex(cert))
            return "Accepted", None
        return "NotFound", None

    def root_in_use(self, root):
        chain = self.tls_chain()
        if not chain:
            return False
        x509 = _x509()
        root_der = _der(root)
        for der in chain:
            if der == root_der:
                return True
            try:
                if issued_by(x509.load_der_x509_certificate(der), root):
                    return True
            except ValueError:
                continue
        return False

    def has_root(self, kind=CS_ROOT):
        return any(in_validity(c) for _, _, c in self._roots(kind))

    def ca_data(self):
        """The PEM text of the valid CentralSystemRootCertificates ("" when none):
        the only trust anchors of a profile 2/3 connection."""
        return "".join(_pem(c) for _, _, c in self._roots(CS_ROOT) if in_validity(c))

    # --- the charge point certificate -------------------------------------------------------
    def _client_chain(self):
        try:
            with open(self.cert_path, encoding="ascii") as f:
                return parse_pem_chain(f.read())
        except (OSError, ValueError):
            return None

    def has_client_certificate(self):
        chain = self._client_chain()
        return bool(chain) and in_validity(chain[0]) and os.path.isfile(self.key_path)

    def client_files(self):
        """(certificate chain path, key path) when a valid pair is installed."""
        return (self.cert_path, self.key_path) if self.has_client_certificate() else None

    def create_csr(self, organization, done):
        def job():
            try:
                key = make_key(self.key_type)
                csr = make_csr(key, self.identity, organization)
                from cryptography.hazmat.primitives import serialization
                data = key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
                with self._lock:
                    write_private(self.pending_key_path, data)
                result = (csr, None)
            except Exception as e:
                result = (None, "%s: %s" % (type(e).__name__, e))
            self._deliver(lambda: done(*result))
        self._run(job)

    def _pending_key(self):
        from cryptography.hazmat.primitives import serialization
        try:
            with open(self.pending_key_path, "rb") as f:
                return serialization.load_pem_private_key(f.read(), password=None)
        except (OSError, ValueError, TypeError):
            return None

    def accept_signed(self, chain_pem):
        try:
            chain = parse_pem_chain(chain_pem)
        except ValueError as e:
            return False, str(e)
        key = self._pending_key()
        if key is None:
            return False, "no pending certificate signing request"
        leaf = chain[0]
        if _spki(leaf.public_key()) != _spki(key.public_key()):
            return False, "the certificate is not for the key of the last CSR"
        problem = _key_problem(leaf)
        if problem:
            return False, problem
        now = utc_now()
        for c in chain:
            if not in_validity(c, now):
                return False, "certificate serial %s is outside its validity period" % (
                    serial_hex(c))
        for c, issuer in zip(chain, chain[1:]):
            if not issued_by(c, issuer):
                return False, "certificate serial %s is not issued by the next in the chain" % (
                    serial_hex(c))
        top = chain[-1]
        roots = [c for _, _, c in self._roots(CS_ROOT) if in_validity(c, now)]
        if not any(_der(top) == _der(r) or issued_by(top, r) for r in roots):
            return False, "not issued under an installed CentralSystemRootCertificate"
        text = "".join(_pem(c) for c in chain if not any(_der(c) == _der(r) for r in roots))
        with self._lock:
            try:
                for name in ("cp.pem", "cp.key"):
                    path = os.path.join(self.dir, name)
                    if os.path.exists(path):
                        os.replace(path, path + ".old")
                write_private(self.cert_path, text.encode("ascii"))
                os.replace(self.pending_key_path, self.key_path)
            except OSError as e:
                return False, "cannot store it: %s" % (e.strerror or e)
        log.info("charge point certificate installed: %s, serial %s, valid until %s",
                 leaf.subject.rfc4514_string()[:80], serial_hex(leaf),
                 not_after(leaf).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return True, None


def background():
    """run() for CertificateStore: a daemon thread per job (a CSR now and then)."""
    def run(fn):
        threading.Thread(target=fn, name="csr", daemon=True).start()
    return run


__all__ = ("CertificateStore", "CS_ROOT", "MF_ROOT", "hash_data", "parse_pem_chain",
           "background")
