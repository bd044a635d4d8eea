"""SignedUpdateFirmware and SignedFirmwareStatusNotification (OCA "Improved
security for OCPP 1.6-J", edition 3, the secure firmware update use case).

The download and installation are Firmware Management's (cp.firmware, a
FirmwareUpdates): a signed update is the same update with a "signed" part, whose
statuses go out as SignedFirmwareStatusNotification with the request's
requestId. What the security extension adds:

1. On the request, the signing certificate is checked against the installed
   ManufacturerRootCertificate(s) (SignatureInterface.check_certificate, by the
   firmware: the engine does no cryptography). Invalid: the .conf says
   InvalidCertificate, the security event InvalidFirmwareSigningCertificate is
   raised, nothing is downloaded.
2. Once downloaded, the signature (base64, in the request) is checked against
   the certificate over the image file's bytes (SignatureInterface.verify, on a
   worker: its result comes back as cp.firmware.transfer_done("signature", ok,
   detail)). Invalid: InvalidSignature, the event InvalidFirmwareSignature,
   nothing installed. Valid: SignatureVerified, then the installation as for
   UpdateFirmware (Installing, InstallRebooting, Installed).

Readings chosen where the whitepaper leaves room:
- .conf status: Accepted; AcceptedCanceled when it replaces an update that has
  not started installing (whitepaper: "accepted this firmware update request,
  but in doing so has canceled an ongoing firmware update"); Rejected while an
  installation is under way (it cannot be stopped), or when the station has no
  way to check signatures. RevokedCertificate is never answered: the station
  has no revocation list.
- retrieveDateTime in the future: DownloadScheduled at once, Downloading when
  it is due. installDateTime in the future: InstallScheduled after
  SignatureVerified, the installation when it is due (connectors are held
  Unavailable only from then on).
- retries / retryInterval: as UpdateFirmware's (updates.py).
"""

from ocpp_core.log import get_logger
from ocpp_core.rpc import Reply
from ocpp_core.timestamps import parse_rfc3339

log = get_logger("ocpp.security")

STATUS = "SignedFirmwareStatusNotification"


class SignatureInterface:
    """The firmware's cryptography for signed updates."""

    def check_certificate(self, certificate_pem):
        """None when the certificate (PEM) chains to an installed
        ManufacturerRootCertificate and is valid now; else one line saying why.
        Quick (no file is read but the roots): called on the engine's thread."""
        raise NotImplementedError

    def verify(self, certificate_pem, signature_b64):
        """Check the downloaded image against the signature; returns at once,
        the result -> cp.firmware.transfer_done("signature", ok, detail)."""
        raise NotImplementedError


class SignedFirmware:
    """Gives cp.firmware its signature checks and answers what a triggered
    SignedFirmwareStatusNotification reports (events.ask("signed_firmware_status"))."""

    def __init__(self, cp, signatures=None):
        self.cp = cp
        self.attach(signatures)
        cp.events.listen("signed_firmware_status", self.status_payload)

    def attach(self, signatures):
        """The firmware's SignatureInterface (None: no signed update can run)."""
        self.signatures = signatures
        self.cp.firmware.signatures = signatures

    def status_payload(self):
        """Whitepaper: Idle when no signed update is under way (then without a
        requestId), else the last status with its requestId."""
        u = self.cp.firmware.update
        status = self.cp.firmware.status()
        if u is None or "signed" not in u or status == "Idle":
            return {"status": "Idle"}
        return {"status": status, "requestId": u["signed"]["request_id"]}


class SignedUpdateFirmware:
    action = "SignedUpdateFirmware"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        cp = self.cp
        fw = payload["firmware"]
        signatures = getattr(cp.firmware, "signatures", None)
        if signatures is None or cp.firmware.transfers is None:
            log.warning("SignedUpdateFirmware rejected: no signature checks on this station")
            return {"status": "Rejected"}
        if cp.firmware.installing():
            log.warning("SignedUpdateFirmware rejected: an installation is under way")
            return {"status": "Rejected"}
        try:
            retrieve = parse_rfc3339(fw["retrieveDateTime"])
            install = parse_rfc3339(fw["installDateTime"]) if "installDateTime" in fw else None
        except ValueError:      # the validator checked the format; a date out of range
            return {"status": "Rejected"}
        why = signatures.check_certificate(fw["signingCertificate"])
        if why is not None:
            log.warning("SignedUpdateFirmware: signing certificate refused: %s", why)
            return Reply({"status": "InvalidCertificate"}, then=lambda: cp.events.emit(
                "security_event", "InvalidFirmwareSigningCertificate", why))
        status = "AcceptedCanceled" if cp.firmware.update is not None else "Accepted"
        signed = {"request_id": payload["requestId"], "certificate": fw["signingCertificate"],
                  "signature": fw["signature"], "install_date": install}

        def start():
            cp.firmware.request(fw["location"], retrieve, payload.get("retries"),
                                payload.get("retryInterval"), signed=signed)
            if retrieve > cp.clock.now():
                cp.rpc.call(STATUS, {"status": "DownloadScheduled",
                                     "requestId": payload["requestId"]})
        return Reply({"status": status}, then=start)
