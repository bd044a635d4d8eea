"""The Firmware Management profile (OCPP 1.6 sections 4.4, 4.5, 5.9, 5.19):
UpdateFirmware and FirmwareStatusNotification, GetDiagnostics and
DiagnosticsStatusNotification.

- FirmwareUpdates (updates.py): the service the façade constructs
  (cp.firmware) and ticks; it answers events.ask("firmware_status") for
  TriggerMessage. The firmware does the transfers through a TransferInterface.
- DiagnosticsUploads (diagnostics.py): cp.diagnostics (uploads_of(cp)); the
  firmware builds and uploads the bundle through an UploadInterface; it
  answers events.ask("diagnostics_status").
- Registered in ocpp_core/profiles.py; the firmware's A/B install behind the
  TransferInterface is firmware/transfers.py + firmware/releases.py.
"""

from ocpp_core.firmware_management.diagnostics import (DiagnosticsUploads, GetDiagnostics,
                                                       UploadInterface)
from ocpp_core.firmware_management.updates import (FirmwareUpdates, TransferInterface,
                                                   UpdateFirmware)

NAME = "FirmwareManagement"

__all__ = ["DiagnosticsUploads", "GetDiagnostics", "UploadInterface", "FirmwareUpdates",
           "TransferInterface", "UpdateFirmware", "NAME", "operations"]


def operations(cp):
    return [UpdateFirmware(cp), GetDiagnostics(cp)]
