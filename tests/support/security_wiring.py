"""The security extension's firmware parts on the in-process Harness, as the
firmware gives them (firmware/security_wiring.py): the security log and the
signature checks attached to the engine's services."""

from ocpp_core import security


def secure(h, security_log=None, signatures=None):
    return security.attach(h.cp, security_log, signatures)


class MemoryLog:
    """A SecurityLogInterface that keeps the records."""

    def __init__(self):
        self.records = []

    def append(self, record):
        self.records.append(dict(record))

    def types(self):
        return [r["type"] for r in self.records]
