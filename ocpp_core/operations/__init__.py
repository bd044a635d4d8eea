"""CSMS-initiated operations, one module each (as MicroOcpp does).

Each module has handle(cp, payload) -> dict | rpc.Reply | rpc.Deferred, and
answers first: whatever the operation changes happens after its CALLRESULT.
"""

from ocpp_core.operations import (change_availability, change_configuration, clear_cache,
                                  data_transfer, get_configuration, remote_start_transaction,
                                  remote_stop_transaction, reset, unlock_connector)

CORE = {
    "ChangeAvailability": change_availability,
    "ChangeConfiguration": change_configuration,
    "ClearCache": clear_cache,
    "DataTransfer": data_transfer,
    "GetConfiguration": get_configuration,
    "RemoteStartTransaction": remote_start_transaction,
    "RemoteStopTransaction": remote_stop_transaction,
    "Reset": reset,
    "UnlockConnector": unlock_connector,
}


def register(cp):
    for action, module in CORE.items():
        cp.rpc.on(action, _bind(module.handle, cp))


def _bind(handle, cp):
    return lambda payload: handle(cp, payload)
