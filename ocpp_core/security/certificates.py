"""Certificates and security profiles of the whitepaper "Improved security for
OCPP 1.6-J" ed. 3: InstallCertificate (M05), GetInstalledCertificateIds (M03),
DeleteCertificate (M04), SignCertificate and CertificateSigned (A02/A03), the
SecurityProfile upgrade rules (A05, 7.6) and the AuthorizationKey change (A01).

The cryptography is the firmware's (interface.SecurityInterface); without it
attached every certificate request is answered with its failure status and
no upgrade beyond profile 1 is possible.

Readings chosen:
- A CertificateSigned that arrives without a pending CSR is Rejected (there is
  no key for it: A02.FR.05 keeps keys on the station, so the chain cannot be ours).
- A05.FR.02: profiles 1 and 2 need a Basic auth password; this station also
  counts the installer's configured password (firmware), not only an
  AuthorizationKey set over OCPP.
- The upgrade itself (disconnect, reconnect with the new profile, fall back when
  that fails: A05.FR.06..08) is the firmware link's; the engine tells it through
  the "config" listeners (SecurityProfile) once the answer has left.
"""

from ocpp_core.log import get_logger
from ocpp_core.rpc import Reply
from ocpp_core.security.interface import CS_ROOT, ROOT_KINDS

log = get_logger("ocpp.security")

RECONFIGURATION = "ReconfigurationOfSecurityParameters"
INVALID_CP_CERTIFICATE = "InvalidChargePointCertificate"


def emit_security_event(cp, event_type, tech_info=None):
    """The one way this profile reports a security event (the listener that sends
    SecurityEventNotification and writes the security log is another module's)."""
    cp.events.emit("security_event", event_type, tech_info)


class SecurityService:
    def __init__(self, cp):
        self.cp = cp
        self.crypto = None
        self.has_password = lambda: bool(cp.config.get("AuthorizationKey"))
        self.csr_pending = False      # a SignCertificate.req is on its way or answered
        if "SecurityProfile" in cp.config:
            cp.config.guard("SecurityProfile", self.upgrade_refusal)
        cp.events.listen("config", self._config_changed)

    def attach(self, crypto, has_password=None):
        """The firmware's SecurityInterface; has_password() -> bool says whether a
        Basic auth password is available (configured or AuthorizationKey)."""
        self.crypto = crypto
        if has_password is not None:
            self.has_password = has_password

    # --- A05: SecurityProfile ----------------------------------------------------------
    def upgrade_refusal(self, new):
        """None when ChangeConfiguration(SecurityProfile=new) may be Accepted,
        else why it is Rejected (A05.FR.01..04)."""
        current = self.cp.config.get("SecurityProfile")
        if new <= current:
            return "only an upgrade is allowed (now %d)" % current      # A05.FR.01, TC_084
        if new in (1, 2) and not self.has_password():
            return "no Basic auth password (AuthorizationKey) for profile %d" % new
        crypto = self.crypto
        if new >= 2 and (crypto is None or not crypto.has_root(CS_ROOT)):
            return "no valid CentralSystemRootCertificate installed"
        if new == 3 and not crypto.has_client_certificate():
            return "no valid charge point certificate installed"
        return None

    def _config_changed(self, key, value):
        # A01.FR.11/12: the change is logged in the security log, never its value.
        if key == "AuthorizationKey":
            emit_security_event(self.cp, RECONFIGURATION, "AuthorizationKey changed")
        elif key == "SecurityProfile":
            emit_security_event(self.cp, RECONFIGURATION, "SecurityProfile set to %d" % value)

    # --- A02/A03: the charge point certificate --------------------------------------------
    def can_sign(self):
        """ExtendedTriggerMessage(SignChargePointCertificate) is Accepted when a CSR
        can be made (A02 prerequisite: CpoName MUST be set)."""
        return self.crypto is not None and bool(self.cp.config.get("CpoName"))

    def request_signing(self):
        """Make a key pair and a CSR, then send SignCertificate.req."""
        cp = self.cp

        def done(csr, reason):
            if csr is None:
                log.error("could not make a certificate signing request: %s", reason)
                return
            self.csr_pending = True

            def answered(payload):
                log.info("SignCertificate: the CSMS answered %s", payload.get("status"))
            cp.rpc.call("SignCertificate", {"csr": csr}, on_result=answered)
        self.crypto.create_csr(cp.config.get("CpoName"), done)

    def certificate_signed(self, chain):
        limit = self.cp.config.get("CertificateSignedMaxChainSize")
        if len(chain) > limit:
            return self._rejected("certificate chain of %d characters; "
                                  "CertificateSignedMaxChainSize is %d" % (len(chain), limit))
        if self.crypto is None:
            return self._rejected("no certificate store on this station")
        if not self.csr_pending:
            return self._rejected("no certificate signing request is pending")
        try:
            ok, reason = self.crypto.accept_signed(chain)
        except Exception as e:   # the store's bug must not become a CALLERROR storm
            log.exception("checking the signed certificate failed")
            ok, reason = False, "internal error: %s" % type(e).__name__
        if not ok:
            return self._rejected(reason)
        self.csr_pending = False
        log.info("new charge point certificate installed; used from the next connection")
        return Reply({"status": "Accepted"},
                     then=lambda: self.cp.events.emit("client_certificate", "installed"))

    def _rejected(self, reason):
        log.warning("CertificateSigned Rejected: %s", reason)
        return Reply({"status": "Rejected"},   # A02.FR.07: discarded, and the event
                     then=lambda: emit_security_event(self.cp, INVALID_CP_CERTIFICATE,
                                                      reason[:255]))


class InstallCertificate:
    action = "InstallCertificate"

    def __init__(self, service):
        self.service = service

    def handle(self, payload):
        s = self.service
        kind = payload["certificateType"]
        if s.crypto is None:
            return {"status": "Failed"}
        status, reason = s.crypto.install_root(kind, payload["certificate"],
                                               s.cp.config.get("CertificateStoreMaxLength"))
        log.info("InstallCertificate %s: %s%s", kind, status, " (%s)" % reason if reason else "")
        if status == "Accepted":
            return Reply({"status": status}, then=lambda: emit_security_event(
                s.cp, RECONFIGURATION, "%s installed" % kind))
        return {"status": status}


class GetInstalledCertificateIds:
    action = "GetInstalledCertificateIds"

    def __init__(self, service):
        self.service = service

    def handle(self, payload):
        crypto = self.service.crypto
        found = crypto.installed(payload["certificateType"]) if crypto is not None else []
        if not found:
            return {"status": "NotFound"}                   # M03.FR.02
        return {"status": "Accepted", "certificateHashData": found}


class DeleteCertificate:
    action = "DeleteCertificate"

    def __init__(self, service):
        self.service = service

    def handle(self, payload):
        s = self.service
        if s.crypto is None:
            return {"status": "NotFound"}
        status, reason = s.crypto.delete(payload["certificateHashData"])
        log.info("DeleteCertificate: %s%s", status, " (%s)" % reason if reason else "")
        if status == "Accepted":
            return Reply({"status": status}, then=lambda: emit_security_event(
                s.cp, RECONFIGURATION, "certificate deleted"))
        return {"status": status}


class CertificateSigned:
    action = "CertificateSigned"

    def __init__(self, service):
        self.service = service

    def handle(self, payload):
        return self.service.certificate_signed(payload["certificateChain"])


__all__ = ("SecurityService", "InstallCertificate", "GetInstalledCertificateIds",
           "DeleteCertificate", "CertificateSigned", "ROOT_KINDS", "emit_security_event")
