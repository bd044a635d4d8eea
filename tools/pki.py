"""A test PKI for the bench and the tests, made with `cryptography`: CAs, server
certificates, CSR signing, and TLS server contexts on loopback (never for a
real CSMS: the keys are made on the fly and not protected). Keys are EC P-256
(fast) unless asked."""

import datetime
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def _name(cn, org="Test CPO"):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def new_key(kind="ec"):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class Ca:
    """A root (or, with parent, an intermediate) CA."""

    def __init__(self, cn="Test Root", parent=None, not_before=None, not_after=None, ca=True):
        self.key = new_key()
        self.name = _name(cn)
        issuer_name = parent.name if parent else self.name
        signer = parent.key if parent else self.key
        builder = (x509.CertificateBuilder().subject_name(self.name).issuer_name(issuer_name)
                   .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or NOW - DAY)
                   .not_valid_after(not_after or NOW + 30 * DAY)
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        self.cert = builder.sign(signer, hashes.SHA256())
        self.pem = pem(self.cert)

    def issue(self, subject, public_key, not_before=None, not_after=None, san=None,
              client=False):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.name)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or NOW - DAY)
                   .not_valid_after(not_after or NOW + 10 * DAY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in san]), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def server(self, host="localhost", san=None):
        """(certificate, key) for a TLS server; the host in the CN only (A00.FR.510)."""
        key = new_key()
        return self.issue(_name(host), key.public_key(), san=san), key

    def sign_csr(self, csr_pem, **kwargs):
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        return self.issue(csr.subject, csr.public_key(), **kwargs)


def server_context(tmp_path, ca, host="localhost", client_ca=None, client_optional=False,
                   **tls):
    """An ssl server context with a certificate of `ca` for `host`; with client_ca
    it requires (client_optional: accepts) a client certificate issued by it."""
    cert, key = ca.server(host)
    cert_file, key_file = tmp_path / ("srv-%s.pem" % id(cert)), tmp_path / ("srv-%s.key" % id(key))
    cert_file.write_text(pem(cert))
    key_file.write_text(key_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_file), str(key_file))
    for name, value in tls.items():
        setattr(context, name, value)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_OPTIONAL if client_optional else ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.pem)
    return context
