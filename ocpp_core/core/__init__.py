"""The Core profile (OCPP 1.6 section 3), one module per part:

    registration.py   BootNotification, Heartbeat (and the 4.2 rules that follow)
    status.py         StatusNotification
    authorization.py  Authorize, ClearCache, who may stop whose transaction
    transactions.py   StartTransaction, StopTransaction, RemoteStart/StopTransaction
    meter_values.py   MeterValues and the sampling schedules
    availability.py   ChangeAvailability, Reset, UnlockConnector
    configuration.py  GetConfiguration, ChangeConfiguration
    data_transfer.py  DataTransfer

A profile is a module with NAME and operations(cp): the handlers of the calls
the CSMS may send, each an object with `action` and `handle(payload)`.
ocpp_core/profiles.py lists the profiles the engine implements.
"""

from ocpp_core.core.authorization import ClearCache
from ocpp_core.core.availability import ChangeAvailability, Reset, UnlockConnector
from ocpp_core.core.configuration import ChangeConfiguration, GetConfiguration
from ocpp_core.core.data_transfer import DataTransfer
from ocpp_core.core.transactions import RemoteStartTransaction, RemoteStopTransaction

NAME = "Core"
OPERATIONS = (ChangeAvailability, ChangeConfiguration, ClearCache, DataTransfer,
              GetConfiguration, RemoteStartTransaction, RemoteStopTransaction, Reset,
              UnlockConnector)


def operations(cp):
    return [op(cp) for op in OPERATIONS]
