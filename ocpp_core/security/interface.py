"""What the Security profile asks of the firmware: the certificate store and the
cryptography behind it (ocpp_core stays standard-library only; firmware/certificates.py
implements this with the `cryptography` package).

Every method returns at once except create_csr(), which may generate a key pair
(seconds on a Raspberry Pi for RSA-2048) and therefore answers through `done`,
on the engine's thread (the firmware posts it to the main loop).

Kinds of root certificate are the whitepaper's CertificateUseEnumType values.
Hash data are dicts as CertificateHashDataType (hashAlgorithm, issuerNameHash,
issuerKeyHash, serialNumber).
"""

CS_ROOT = "CentralSystemRootCertificate"
MF_ROOT = "ManufacturerRootCertificate"
ROOT_KINDS = (CS_ROOT, MF_ROOT)


class SecurityInterface:
    def install_root(self, kind, pem, max_count):
        """Install a root certificate: "Accepted", "Rejected" (malformed, not a
        CA, expired, or max_count roots already installed) or "Failed" (valid
        but could not be stored); (status, reason) with a one-line reason."""
        raise NotImplementedError

    def installed(self, kind):
        """Hash data (SHA256) of every installed root of this kind."""
        raise NotImplementedError

    def delete(self, hash_data):
        """"Accepted", "Failed" (the charge point certificate, the root in use
        for the CSMS connection, or the file could not be removed) or
        "NotFound"; (status, reason)."""
        raise NotImplementedError

    def create_csr(self, organization, done):
        """Make a new key pair on the station and a CSR (PEM) for it, subject
        CN = the station's identity, O = organization; the key stays on the
        station. done(csr_pem, None) or done(None, reason)."""
        raise NotImplementedError

    def accept_signed(self, chain_pem):
        """Check a CertificateSigned chain (the key of the pending CSR, validity,
        issued under an installed CentralSystemRootCertificate) and install it
        as the charge point certificate: (True, None) or (False, reason)."""
        raise NotImplementedError

    def has_root(self, kind=CS_ROOT):
        """A valid (unexpired) root of this kind is installed."""
        raise NotImplementedError

    def has_client_certificate(self):
        """A valid charge point certificate (and its key) is installed."""
        raise NotImplementedError
