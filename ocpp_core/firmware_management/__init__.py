"""The Firmware Management profile (OCPP 1.6 sections 4.4, 4.5, 5.9, 5.19):
UpdateFirmware and FirmwareStatusNotification, GetDiagnostics and
DiagnosticsStatusNotification.

- FirmwareUpdates (updates.py): the service the façade constructs
  (cp.firmware) and ticks; it answers events.ask("firmware_status") for
  TriggerMessage. The firmware does the transfers through a TransferInterface.
  The update is persisted ("firmware_update"): a restart resumes it (a cut
  download starts again), the restart into the new release is settled after
  the next BootNotification Accepted (Installed or InstallationFailed).
- DiagnosticsUploads (diagnostics.py): cp.diagnostics (made by operations(cp)); the
  firmware builds and uploads the bundle through an UploadInterface; it
  answers events.ask("diagnostics_status"). Its UploadSlot is shared with
  GetLog (ocpp_core/security/get_log.py, the Security extension). The running
  upload is persisted ("diagnostics_upload", "log_upload"): one a restart
  cut short is resumed or reported failed after the next BootNotification
  Accepted (resume_uploads, ticked by the façade).
- Registered in ocpp_core/profiles.py; behind the interfaces in the firmware:
  firmware/transfers.py (downloads, uploads' transport, the worker),
  firmware/releases.py + firmware/launcher.py (the A/B install),
  firmware/diagnostics.py + firmware/diag_bundle.py (what is uploaded).
"""

from ocpp_core.firmware_management.diagnostics import (DiagnosticsUploads, GetDiagnostics,
                                                       UploadInterface)
from ocpp_core.firmware_management.updates import (FirmwareUpdates, TransferInterface,
                                                   UpdateFirmware)

NAME = "FirmwareManagement"

__all__ = ["DiagnosticsUploads", "GetDiagnostics", "UploadInterface", "FirmwareUpdates",
           "TransferInterface", "UpdateFirmware", "NAME", "operations"]


def operations(cp):
    cp.diagnostics = DiagnosticsUploads(cp)     # persisted: an interrupted upload resumes
    return [UpdateFirmware(cp), GetDiagnostics(cp)]
