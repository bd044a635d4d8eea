"""The generated catalogue: complete, up to date, and true to OCPP 1.6 Edition 2."""

import json
import os

import pytest

from ocpp_core.catalogue import ACTIONS
from tools import gen_catalogue

# OCPP 1.6 Edition 2, section 3 (feature profiles) and the per-message sections
# (who sends the .req). Written out by hand so that the catalogue is checked
# against the specification, not against the generator's own table.
CP, CS, BOTH = "cp", "cs", "both"
EXPECTED = {
    # Core
    "Authorize": ("Core", CP),
    "BootNotification": ("Core", CP),
    "ChangeAvailability": ("Core", CS),
    "ChangeConfiguration": ("Core", CS),
    "ClearCache": ("Core", CS),
    "DataTransfer": ("Core", BOTH),
    "GetConfiguration": ("Core", CS),
    "Heartbeat": ("Core", CP),
    "MeterValues": ("Core", CP),
    "RemoteStartTransaction": ("Core", CS),
    "RemoteStopTransaction": ("Core", CS),
    "Reset": ("Core", CS),
    "StartTransaction": ("Core", CP),
    "StatusNotification": ("Core", CP),
    "StopTransaction": ("Core", CP),
    "UnlockConnector": ("Core", CS),
    # Firmware Management
    "GetDiagnostics": ("FirmwareManagement", CS),
    "DiagnosticsStatusNotification": ("FirmwareManagement", CP),
    "FirmwareStatusNotification": ("FirmwareManagement", CP),
    "UpdateFirmware": ("FirmwareManagement", CS),
    # Local Auth List Management
    "GetLocalListVersion": ("LocalAuthListManagement", CS),
    "SendLocalList": ("LocalAuthListManagement", CS),
    # Reservation
    "CancelReservation": ("Reservation", CS),
    "ReserveNow": ("Reservation", CS),
    # Smart Charging
    "ClearChargingProfile": ("SmartCharging", CS),
    "GetCompositeSchedule": ("SmartCharging", CS),
    "SetChargingProfile": ("SmartCharging", CS),
    # Remote Trigger
    "TriggerMessage": ("RemoteTrigger", CS),
}

# The 1.6 security extension (white paper "Improved security for OCPP 1.6-J",
# edition 3): not part of OCPP 1.6 Edition 2 itself; the catalogue files them
# under the profile name "Security". Who sends each CALL: whitepaper section 6.
SECURITY_EXTENSION = {
    "CertificateSigned": CS, "DeleteCertificate": CS, "ExtendedTriggerMessage": CS,
    "GetInstalledCertificateIds": CS, "GetLog": CS, "InstallCertificate": CS,
    "LogStatusNotification": CP, "SecurityEventNotification": CP, "SignCertificate": CP,
    "SignedFirmwareStatusNotification": CP, "SignedUpdateFirmware": CS,
}

SCHEMA_DIR = gen_catalogue.default_schema_dir()


def test_the_28_actions_of_ocpp16_and_the_11_of_the_security_extension():
    assert len(EXPECTED) == 28 and len(SECURITY_EXTENSION) == 11
    assert set(ACTIONS) == set(EXPECTED) | set(SECURITY_EXTENSION)


@pytest.mark.parametrize("action", sorted(SECURITY_EXTENSION))
def test_security_extension_profile_and_direction(action):
    profile, sender, request, response = ACTIONS[action]
    assert (profile, sender) == ("Security", SECURITY_EXTENSION[action])
    assert request[0] == "o" and response[0] == "o"


def test_security_definitions_are_resolved_inline():
    """$ref into "definitions" (whitepaper schemas) becomes the referenced node:
    the hash data of GetInstalledCertificateIds.conf is a checked object."""
    _, _, _, response = ACTIONS["GetInstalledCertificateIds"]
    items = response[1]["certificateHashData"]
    assert items[0] == "a" and items[2] == 1
    fields = items[1][1]
    assert fields["serialNumber"] == ("s", 40, None, None)
    assert fields["hashAlgorithm"][2] == ("SHA256", "SHA384", "SHA512")


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_profile_and_direction(action):
    profile, sender, request, response = ACTIONS[action]
    assert (profile, sender) == EXPECTED[action]
    # Every 1.6 payload is a JSON object, request and response alike.
    assert request[0] == "o" and response[0] == "o"


def test_profiles_match_the_specification_counts():
    counts = {}
    for profile, _, _, _ in ACTIONS.values():
        counts[profile] = counts.get(profile, 0) + 1
    assert counts == {"Core": 16, "FirmwareManagement": 4, "LocalAuthListManagement": 2,
                      "Reservation": 2, "SmartCharging": 3, "RemoteTrigger": 1,
                      "Security": 11}


def test_generator_table_matches_catalogue():
    assert {a: (p, s) for a, p, s in gen_catalogue.ACTIONS} == \
        {a: (v[0], v[1]) for a, v in ACTIONS.items()}


def test_generated_catalogue_is_up_to_date(capsys):
    assert gen_catalogue.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_schema_files_exist(action):
    for suffix in ("", "Response"):
        path = os.path.join(SCHEMA_DIR, action + suffix + ".json")
        assert os.path.isfile(path), path
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
        assert schema.get("type") == "object"


def test_no_unexpected_schemas():
    """Every 1.6 schema the package ships is in the catalogue, and nothing else
    (so a new schema cannot slip by unnoticed)."""
    names = set()
    for fn in os.listdir(SCHEMA_DIR):
        if fn.endswith(".json"):
            base = fn[:-5]
            names.add(base[:-len("Response")] if base.endswith("Response") else base)
    assert names == set(ACTIONS)
