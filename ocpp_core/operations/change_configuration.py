"""ChangeConfiguration (OCPP 1.6 5.3): Accepted / Rejected / RebootRequired /
NotSupported, decided and applied by config.Configuration."""

from ocpp_core.rpc import Reply


def handle(cp, payload):
    # Validate and persist now; the side effects (a new ping interval, a new
    # password and reconnect) run after the answer is on its way.
    effects = []
    cp.deferred_effects = effects
    try:
        answer = cp.config.change_configuration(payload)
    finally:
        cp.deferred_effects = None
    return Reply(answer, then=lambda: [effect() for effect in effects])
