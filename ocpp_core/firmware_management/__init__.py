"""The Firmware Management profile (OCPP 1.6 sections 4.4, 4.5, 5.9, 5.19):
UpdateFirmware and FirmwareStatusNotification so far (GetDiagnostics and
DiagnosticsStatusNotification are not there yet).

- FirmwareUpdates (updates.py): the service the façade constructs
  (cp.firmware) and ticks; it answers events.ask("firmware_status") for
  TriggerMessage. The firmware does the transfers through a TransferInterface.
- Registered in ocpp_core/profiles.py; the firmware's A/B install behind the
  TransferInterface is firmware/transfers.py + firmware/releases.py.
"""

from ocpp_core.firmware_management.updates import (FirmwareUpdates, TransferInterface,
                                                   UpdateFirmware)

NAME = "FirmwareManagement"

__all__ = ["FirmwareUpdates", "TransferInterface", "UpdateFirmware", "NAME", "operations"]


def operations(cp):
    return [UpdateFirmware(cp)]
