"""ExtendedTriggerMessage (whitepaper ed. 3, 5.5/5.6 and 6.16): TriggerMessage's
rules for the messages both have (ocpp_core.remote_trigger.trigger_shared), plus

- SignChargePointCertificate: a new key pair and SignCertificate.req (A02),
  Rejected while no CSR can be made (no certificate store, or CpoName unset:
  A02's prerequisite "CpoName MUST be set");
- FirmwareStatusNotification: SignedFirmwareStatusNotification.req with what the
  signed-update service answers to events.ask("signed_firmware_status") (a
  payload dict), Idle without one (L01.FR.28/29 are that service's);
- LogStatusNotification: LogStatusNotification.req with events.ask("log_status")
  (a payload dict), Idle without one.
NotImplemented is never answered: every value of MessageTriggerEnumType is.
"""

from ocpp_core.remote_trigger import accept, trigger_shared

SIGN = "SignChargePointCertificate"
FIRMWARE = "FirmwareStatusNotification"
LOG = "LogStatusNotification"


class ExtendedTriggerMessage:
    action = "ExtendedTriggerMessage"

    def __init__(self, cp, service):
        self.cp = cp
        self.service = service

    def handle(self, payload):
        cp = self.cp
        message = payload["requestedMessage"]
        answer = trigger_shared(cp, message, payload.get("connectorId"))
        if answer is not None:
            return answer
        if message == SIGN:
            if not self.service.can_sign():
                return {"status": "Rejected"}
            return accept(self.service.request_signing)
        if message == FIRMWARE:
            return accept(lambda: cp.rpc.call("SignedFirmwareStatusNotification", dict(
                cp.events.ask("signed_firmware_status") or {"status": "Idle"})))
        return accept(lambda: cp.rpc.call(LOG, dict(
            cp.events.ask("log_status") or {"status": "Idle"})))
