"""The OCPP 1.6 security extension (OCA "Improved security for OCPP 1.6-J",
edition 3), profile name "Security".

- SecurityEvents (events.py): the security-event service (cp.security_events):
  every cp.events.emit("security_event", type, techInfo) is logged and sent
  as SecurityEventNotification (critical ones journaled).
- SignedUpdateFirmware (signed_update.py) on Firmware Management's
  FirmwareUpdates, the cryptography behind a SignatureInterface (firmware/).
- Not yet in ocpp_core/profiles.py (the lead registers it). Until then the
  firmware (firmware/main_loop.py) attaches the services and registers the
  operations itself; attach() is that wiring, in one place.
"""

from ocpp_core.security.events import SecurityEvents, SecurityLogInterface
from ocpp_core.security.signed_update import (SignatureInterface, SignedFirmware,
                                              SignedUpdateFirmware)

NAME = "Security"

__all__ = ["NAME", "operations", "attach", "SecurityEvents", "SecurityLogInterface",
           "SignatureInterface", "SignedFirmware", "SignedUpdateFirmware"]


def operations(cp):
    return [SignedUpdateFirmware(cp)]


def attach(cp, security_log=None, signatures=None):
    """Construct the services on cp (cp.security_events, cp.signed_firmware).
    signatures None: SignedUpdateFirmware is answered Rejected."""
    cp.security_events = SecurityEvents(cp, security_log)
    cp.signed_firmware = SignedFirmware(cp, signatures) if signatures is not None else None
    return cp.security_events
