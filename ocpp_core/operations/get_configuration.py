"""GetConfiguration (OCPP 1.6 5.8)."""


def handle(cp, payload):
    return cp.config.get_configuration(payload)
