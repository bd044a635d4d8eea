"""The OCA whitepaper "Improved security for OCPP 1.6-J" (edition 3): security
profiles, certificates, security events, signed firmware, logs. An extension,
not a feature profile (ocpp_core/profiles.py EXTENSIONS).

Operations register like any profile's (`operations(cp)`), which also makes
the services on cp; the firmware gives them what needs more than the standard
library through attach() and cp.security.attach(...). Security events are
told with cp.events.emit("security_event", type, tech_info_or_None).

- certificates.py: InstallCertificate, GetInstalledCertificateIds,
  DeleteCertificate, CertificateSigned, SignCertificate, the SecurityProfile
  and AuthorizationKey rules (SecurityService, cp.security; the certificate
  work behind interface.SecurityInterface).
- trigger.py: ExtendedTriggerMessage.
- get_log.py: GetLog and LogStatusNotification (LogUploads, cp.log_uploads).
- events.py: SecurityEvents (cp.security_events): every security event is
  logged and sent as SecurityEventNotification (critical ones journaled).
- signed_update.py: SignedUpdateFirmware on Firmware Management's
  FirmwareUpdates (cp.signed_firmware), signatures behind a SignatureInterface.
"""

from ocpp_core.security.certificates import (
    CertificateSigned, DeleteCertificate, GetInstalledCertificateIds, InstallCertificate,
    SecurityService,
)
from ocpp_core.security.events import SecurityEvents, SecurityLogInterface
from ocpp_core.security.get_log import GetLog, LogUploads
from ocpp_core.security.signed_update import (SignatureInterface, SignedFirmware,
                                              SignedUpdateFirmware)
from ocpp_core.security.trigger import ExtendedTriggerMessage

NAME = "Security"

__all__ = ["NAME", "operations", "attach", "SecurityEvents", "SecurityLogInterface",
           "SignatureInterface", "SignedFirmware", "SignedUpdateFirmware"]


def operations(cp):
    if getattr(cp, "security", None) is None:
        cp.security = SecurityService(cp)
    if getattr(cp, "security_events", None) is None:
        cp.security_events = SecurityEvents(cp)
    if getattr(cp, "signed_firmware", None) is None:
        cp.signed_firmware = SignedFirmware(cp, None)
    if getattr(cp, "log_uploads", None) is None:
        cp.log_uploads = LogUploads(cp)     # persisted: an interrupted upload resumes
    service = cp.security
    return [InstallCertificate(service), GetInstalledCertificateIds(service),
            DeleteCertificate(service), CertificateSigned(service),
            ExtendedTriggerMessage(cp, service), GetLog(cp), SignedUpdateFirmware(cp)]


def attach(cp, security_log=None, signatures=None):
    """The firmware's parts: where security events are written, how firmware
    signatures are checked (None: SignedUpdateFirmware is answered Rejected)."""
    cp.security_events.security_log = security_log
    cp.signed_firmware.attach(signatures)
    return cp.security_events
