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
- Firmware update (5.19): no session starts while a downloaded image waits to
  be installed (ocpp_core/firmware_management: FirmwareUpdates.refusal).
- Reservation (3.11): no session on a reserved connector except for the
  reserved idTag or one with the reservation's parentIdTag; a connector-0
  reservation keeps one connector Available for its idTag
  (ocpp_core/reservation, Reservations.blocking). Every start passes the idTag
  and its idTagInfo; a start that does not know for whom it is (id_tag None)
  is refused on a reserved connector. LOOKUP_PENDING as id_tag_info: the
  idTag's parentIdTag is still to be looked up (before Authorize); only a
  reservation that the parent alone can decide lets it through, and the start
  asks again with the idTagInfo once it is known.
- Storage: while the data dir fails (ocpp_core/store.py problem), a session
  starts only online: its StartTransaction goes out at once from memory, so
  nothing is promised that a power cut would lose. Offline it is refused.
- Energy also needs a transaction, the EV connected, the cable locked where
  there is a lock, and the EVSE not withholding it (e.g. MaxEnergyOnInvalidId).
"""

from ocpp_core import connector as conn

LOOKUP_PENDING = object()   # as id_tag_info: not known yet (see above); compared with `is`


def session_refusal(cp, c=None, id_tag=None, id_tag_info=None):
    """Why no new session may start now (on connector c, when given; for id_tag
    with id_tag_info, when given), as a short phrase for the log; None when it
    may."""
    reg = cp.registration
    if not reg.admits_sessions:
        return "the CSMS has not accepted the station (registration %s)" % reg.status
    if cp.reset_pending is not None:
        return "a reset is under way"
    if station_unsafe(cp):
        return "the station is faulted"
    if not cp.station_operative:
        return "the station is Inoperative"
    firmware = getattr(cp, "firmware", None)
    if firmware is not None and firmware.refusal() is not None:
        return firmware.refusal()       # 5.19: an installation waits for no new session
    storage = getattr(cp.store, "problem", None)
    if storage is not None and not cp.online:
        return ("the data dir is failing (%s) and the station is offline: the session "
                "could not be kept" % storage)
    if c is None:
        return None
    if not c.operative:
        return "connector %d is Inoperative" % c.id
    if c.unsafe_fault():
        return "connector %d is faulted" % c.id
    if c.in_transaction:
        return "connector %d is in a transaction" % c.id
    reservations = getattr(cp, "reservations", None)
    if reservations is not None and reservations.items:
        pending = id_tag_info is LOOKUP_PENDING
        res = reservations.blocking(c, id_tag, None if pending else id_tag_info,
                                    lookup_pending=pending)
        if res is not None:
            return "connector %d is reserved for another idTag (reservation %d%s)" % (
                c.id, res["id"], "" if res["connector_id"] else ", connector 0")
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
