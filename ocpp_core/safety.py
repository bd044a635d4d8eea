"""When a session may start and when energy may flow: the one place for both.

Every path that starts a transaction (a card, a plug-in after a card, a remote
start, a lock that confirms late) asks session_refusal(); every output the
engine drives asks may_deliver_energy(). A rule added here holds everywhere.

- Registration (OCPP 1.6 4.2): no session while the CSMS has not accepted the
  station and it is connected, and none while its last word was Pending or
  Rejected (Registration.admits_sessions); no energy while Pending or Rejected.
- Availability (5.2): no session on an Inoperative connector or station.
- Faults: no session and no energy with an unsafe fault on the connector or the
  station.
- Reset: nothing starts and no energy flows once a Reset was accepted.
- Energy also needs a transaction, the EV connected, the cable locked where
  there is a lock, and the EVSE not withholding it (e.g. MaxEnergyOnInvalidId).
"""

from ocpp_core import connector as conn


def session_refusal(cp, c=None):
    """Why no new session may start now (on connector c, when given), as a short
    phrase for the log; None when it may."""
    reg = cp.registration
    if not reg.admits_sessions:
        return "the CSMS has not accepted the station (registration %s)" % reg.status
    if cp.reset_pending is not None:
        return "a reset is under way"
    if station_unsafe(cp):
        return "the station is faulted"
    if not cp.station_operative:
        return "the station is Inoperative"
    if c is None:
        return None
    if not c.operative:
        return "connector %d is Inoperative" % c.id
    if c.unsafe_fault():
        return "connector %d is faulted" % c.id
    if c.in_transaction:
        return "connector %d is in a transaction" % c.id
    return None


def may_deliver_energy(cp, c):
    """True when connector c may offer current to its EV now."""
    return (c.in_transaction and c.plugged and not c.suspended_evse
            and not c.unsafe_fault() and not station_unsafe(cp)
            and (not cp.profile.has_lock or c.locked)
            and cp.reset_pending is None
            and not cp.registration.withholds_energy)


def station_unsafe(cp):
    for code in conn.UNSAFE_FAULTS:
        if code in cp.station_faults:
            return True
    return False
