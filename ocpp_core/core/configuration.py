"""GetConfiguration and ChangeConfiguration (OCPP 1.6 sections 5.3, 5.8, 9.1).

The keys, their rules and their persistence are ocpp_core/config.py's. A change
is validated and stored before the answer; its effects (a new heartbeat or
ping interval, a new password and the reconnect it needs) are told to the
"config" listeners only once the answer is on its way.
"""

from ocpp_core.rpc import Reply


class GetConfiguration:
    action = "GetConfiguration"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        return self.cp.config.get_configuration(payload)


class ChangeConfiguration:
    """Accepted / Rejected / RebootRequired / NotSupported."""
    action = "ChangeConfiguration"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        release = self.cp.events.hold()
        try:
            answer = self.cp.config.change_configuration(payload)
        except Exception:
            release()
            raise
        return Reply(answer, then=release)
