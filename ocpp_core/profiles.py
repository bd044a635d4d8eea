"""The feature profiles the engine implements: one line each. A profile's NAME
enters SupportedFeatureProfiles and its operations are registered with the
dispatcher; nothing else needs an edit to add one."""

from ocpp_core import (core, firmware_management, local_auth_list, remote_trigger, reservation,
                       smart_charging)

PROFILES = (
    core,
    firmware_management,
    local_auth_list,
    remote_trigger,
    reservation,
    smart_charging,
)
