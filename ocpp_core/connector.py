"""A connector's state, and its OCPP status derived from that state.

The status is never stored and edited by hand: derive_status() computes it
from facts (EV state, transaction, availability, faults), so the state machine
of OCPP 1.6 section 4.9 cannot drift out of step with reality.
"""

AVAILABLE = "Available"
PREPARING = "Preparing"
CHARGING = "Charging"
SUSPENDED_EV = "SuspendedEV"
SUSPENDED_EVSE = "SuspendedEVSE"
FINISHING = "Finishing"
RESERVED = "Reserved"
UNAVAILABLE = "Unavailable"
FAULTED = "Faulted"

NO_ERROR = "NoError"

# Faults after which charging is not safe (or not billable): the contactor
# opens, the transaction ends and the connector reports Faulted.
UNSAFE_FAULTS = ("PowerSwitchFailure", "ConnectorLockFailure", "GroundFailure",
                 "OverCurrentFailure", "OverVoltage", "UnderVoltage", "HighTemperature",
                 "EVCommunicationError", "PowerMeterFailure", "InternalError", "OtherError")
# Reported with the current status ("a warning"); charging goes on.
WARNING_FAULTS = ("ReaderFailure", "WeakSignal", "ResetFailure", "LocalListConflict")

# When several faults are active, the one reported first (most severe first).
_FAULT_ORDER = UNSAFE_FAULTS + WARNING_FAULTS

EV_STATES = ("A", "B", "C", "D", "E", "F")


def reported_error(faults):
    """(errorCode, info) that a StatusNotification reports for these active
    faults ({errorCode: info or None}): the most severe known code first, else
    the first unknown code in name order, else NoError. info is cut to
    CiString50. The one rule for connectors, connector 0 and the diagnostics."""
    code = NO_ERROR
    for known in _FAULT_ORDER:
        if known in faults:
            code = known
            break
    else:
        for other in sorted(faults):
            code = other
            break
    info = faults.get(code) if code != NO_ERROR else None
    return code, (info[:50] if info else None)


def reported_station_error(station_faults, storage=None):
    """(errorCode, info, vendorErrorCode) for connector 0. storage: None, or
    (info, vendorErrorCode) of a failing data dir: reported as a warning-level
    OtherError (it is not in station_faults, so it never stops charging), after
    the unsafe faults and before the other warnings."""
    code, info = reported_error(station_faults)
    if storage is not None and code not in UNSAFE_FAULTS:
        return "OtherError", storage[0][:50], (storage[1] or None) and storage[1][:50]
    return code, info, None


class Connector:
    def __init__(self, connector_id):
        self.id = connector_id
        self.ev_state = "A"            # IEC 61851 pilot state
        self.ev_known = False          # a first pilot reading has arrived since start-up
        self.operative = True          # ChangeAvailability (persisted)
        self.scheduled = None          # "Operative"/"Inoperative" waiting for the transaction to end
        self.faults = {}               # errorCode -> info (None or text)
        self.tx_key = None             # journal key of the running transaction
        self.authorization = None      # {"id_tag", "info", "since"} waiting for a plug-in
        self.finishing = False         # a transaction ended; the EV is still connected
        self.suspended_evse = False    # the EVSE withholds energy (e.g. MaxEnergyOnInvalidId)
        self.offered_a = 0.0           # what the pilot offers now
        self.contactor_closed = False  # what we commanded
        self.locked = False            # lock feedback (socket outlets only)
        self.lock_pending_since = None
        self.unlock_request = None     # {"answer": rpc.Deferred, "deadline"} of an UnlockConnector
        self.invalid_id = False        # the CSMS refused the idTag after the start
        self.tx_auth_info = None       # idTagInfo the transaction was authorized with
        self.sample = None             # the last MeterSample
        self.next_sample_due = None    # monotonic time of the next periodic sample
        self.reservation = None        # the reservation this connector is held for (set by
                                       # ocpp_core/reservation Reservations.sync)

    @property
    def plugged(self):
        return self.ev_state != "A"

    @property
    def in_transaction(self):
        return self.tx_key is not None

    def unsafe_fault(self):
        for code in UNSAFE_FAULTS:
            if code in self.faults:
                return code
        return None

    def error_code(self):
        return reported_error(self.faults)[0]

    def error_info(self):
        return reported_error(self.faults)[1]


def derive_status(c, station_operative=True):
    """The OCPP status of connector `c` (connectors 1..n)."""
    if c.unsafe_fault():
        return FAULTED
    if c.in_transaction:
        if not c.plugged:
            return SUSPENDED_EV   # the transaction survives a disconnect (TC_005_3)
        if c.suspended_evse or c.offered_a <= 0:
            return SUSPENDED_EVSE
        if c.ev_state in ("C", "D"):
            return CHARGING
        return SUSPENDED_EV   # offered, but the EV does not draw (state B)
    if not (c.operative and station_operative):
        return UNAVAILABLE
    if c.finishing and c.plugged:
        return FINISHING
    if c.authorization is not None:
        return PREPARING
    # Reserved (4.9) until the reservation ends (A5/E1), its identity is
    # presented (E2: an authorization, Preparing above), or the connector becomes
    # Unavailable/Faulted (E8/E9). Reading: an EV plugged in without the reserved
    # idTag does not leave Reserved (row E has no transition for it; the
    # connector is still kept for the reservation and refuses other idTags); when
    # the reserved idTag is presented with the EV already connected, the
    # transaction starts at once and the status goes from Reserved to Charging.
    if c.reservation is not None:
        return RESERVED
    if c.plugged:
        return PREPARING
    return AVAILABLE


def derive_station_status(station_operative, station_faults):
    """Connector 0: the charge point as a whole."""
    for code in UNSAFE_FAULTS:
        if code in station_faults:
            return FAULTED
    return AVAILABLE if station_operative else UNAVAILABLE
