"""The feature profiles the engine implements: one line each. A profile's NAME
enters SupportedFeatureProfiles and its operations are registered with the
dispatcher; nothing else needs an edit to add one.

EXTENSIONS are registered the same way (operations, and the configuration keys
of their NAME) but are not feature profiles of OCPP 1.6: the OCA's security
whitepaper adds messages and keys, and SupportedFeatureProfiles keeps listing
the six profile names of section 3.5 (config.py).
"""

from ocpp_core import (core, firmware_management, local_auth_list, remote_trigger, reservation,
                       security, smart_charging)

PROFILES = (
    core,
    firmware_management,
    local_auth_list,
    remote_trigger,
    reservation,
    smart_charging,
)

EXTENSIONS = (
    security,
)
