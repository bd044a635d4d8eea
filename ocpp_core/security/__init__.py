"""The OCA whitepaper "Improved security for OCPP 1.6-J" (edition 3): security
profiles, certificates, security events, signed firmware, logs.

Operations register like any profile's (`operations(cp)`); the certificate
work is done by the firmware behind interface.SecurityInterface, attached with
cp.security.attach(...). Security events are told with
cp.events.emit("security_event", type, tech_info_or_None).

- certificates.py: InstallCertificate, GetInstalledCertificateIds,
  DeleteCertificate, CertificateSigned, SignCertificate, the SecurityProfile
  and AuthorizationKey rules (SecurityService, cp.security).
- trigger.py: ExtendedTriggerMessage.
- get_log.py: GetLog and LogStatusNotification (LogUploads, cp.log_uploads).
"""

from ocpp_core.security.certificates import (
    CertificateSigned, DeleteCertificate, GetInstalledCertificateIds, InstallCertificate,
    SecurityService,
)
from ocpp_core.security.get_log import GetLog
from ocpp_core.security.trigger import ExtendedTriggerMessage

NAME = "Security"


def operations(cp):
    service = getattr(cp, "security", None)
    if service is None:
        service = cp.security = SecurityService(cp)
    return [InstallCertificate(service), GetInstalledCertificateIds(service),
            DeleteCertificate(service), CertificateSigned(service),
            ExtendedTriggerMessage(cp, service), GetLog(cp)]
