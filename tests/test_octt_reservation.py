"""The OCA test tool's Reservation cases for a Charge Point (docs/octt-cases.md,
OCPP 1.6 sections 3.11, 5.1, 5.13, status Reserved of 4.9), one test per case
id, in process on a virtual clock; then bad input, persistence and the readings
of the spec that ocpp_core/reservation documents.
"""


import pytest

from ocpp_core.station import StationProfile
from ocpp_core.timestamps import format_utc
from tests.support.core_harness import FAST, booted, Harness

TAG = "04A1B2C3"
OTHER = "DEADBEEF"


def at(h, seconds):
    """An expiryDate `seconds` after the station's (virtual) now."""
    return format_utc(h.time.wall() + seconds)


def reserve(h, connector_id=1, id_tag=TAG, reservation_id=1, seconds=3600, parent=None):
    payload = {"connectorId": connector_id, "expiryDate": at(h, seconds), "idTag": id_tag,
               "reservationId": reservation_id}
    if parent is not None:
        payload["parentIdTag"] = parent
    return h.call("ReserveNow", payload)


def besides_invalid_messages(h, since):
    """What was sent, less the InvalidMessages security event a malformed CALL
    raises (whitepaper; ocpp_core/security/events.py): asserted to be there."""
    events = [p["type"] for p in h.payloads("SecurityEventNotification", since)]
    assert events == ["InvalidMessages"], events
    return [(a, p) for a, p in h.sent(since=since) if a != "SecurityEventNotification"]


def actions(h, since):
    return [a for a, _ in h.sent(since=since)]



def reboot(h):
    h.power_cut()
    h.power_on()
    h.boot()


# ----------------------------------------------------------------------------- TC_046
def test_tc_046_1_reserve_connector_local_start(h):
    booted(h)
    m = h.mark()
    assert reserve(h, reservation_id=7) == {"status": "Accepted"}
    assert actions(h, m) == ["StatusNotification"]
    assert h.statuses(1, since=m) == ["Reserved"]
    m = h.mark()
    h.tap(TAG)
    assert actions(h, m) == ["Authorize", "StatusNotification"]
    assert h.statuses(1, since=m) == ["Preparing"]
    h.plug(1)
    assert actions(h, m)[2:] == ["StartTransaction", "StatusNotification"]
    start = h.payloads("StartTransaction")[-1]
    assert start["idTag"] == TAG and start["connectorId"] == 1 and start["reservationId"] == 7
    assert h.statuses(1)[-1] == "Charging"
    assert h.cp.reservations.items == {}, "the reservation ends when its transaction starts"
    # the transaction ends: Available again, not Reserved
    h.tap(TAG)
    h.unplug(1)
    assert h.statuses(1)[-2:] == ["Finishing", "Available"]


def test_tc_046_2_reserve_connector_remote_start(h):
    booted(h)
    assert reserve(h, reservation_id=8) == {"status": "Accepted"}
    m = h.mark()
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG}) == \
        {"status": "Accepted"}
    assert actions(h, m) == ["Authorize", "StatusNotification"]
    assert h.statuses(1, since=m) == ["Preparing"]
    h.plug(1)
    assert actions(h, m)[2:] == ["StartTransaction", "StatusNotification"]
    assert h.payloads("StartTransaction")[-1]["reservationId"] == 8
    assert h.statuses(1)[-1] == "Charging"


def test_tc_046_remote_start_for_another_idtag_is_rejected(h):
    booted(h)
    reserve(h)
    m = h.mark()
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": OTHER}) == \
        {"status": "Rejected"}
    assert h.call("RemoteStartTransaction", {"idTag": OTHER}) == {"status": "Rejected"}
    assert h.sent(since=m) == []
    h.call("ChangeConfiguration", {"key": "AuthorizeRemoteTxRequests", "value": "false"})
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": OTHER}) == \
        {"status": "Rejected"}
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG}) == \
        {"status": "Accepted"}
    h.plug(1)
    assert h.payloads("StartTransaction")[-1]["reservationId"] == 1


def test_another_card_is_refused_and_the_reserved_card_charges(h):
    booted(h)
    reserve(h, reservation_id=3)
    h.plug(1)
    assert h.statuses(1)[-1] == "Reserved", "an EV plugged in does not end or hide it"
    m = h.mark()
    h.tap(OTHER)
    assert h.sent(since=m) == [], "no Authorize: without a parentIdTag only the idTag counts"
    assert h.station.offered.get(1, 0) == 0 and not h.cp.connector(1).in_transaction
    h.tap(TAG)
    assert actions(h, m) == ["Authorize", "StartTransaction", "StatusNotification"]
    assert h.statuses(1, since=m) == ["Charging"]
    assert h.payloads("StartTransaction")[-1]["reservationId"] == 3


# ----------------------------------------------------------------------------- TC_047
def test_tc_047_reservation_expires(h):
    booted(h)
    assert reserve(h, seconds=30) == {"status": "Accepted"}
    m = h.mark()
    h.advance(29)
    assert h.sent(since=m, action="StatusNotification") == []
    h.advance(1.5)
    sn = h.payloads("StatusNotification", since=m)
    assert [(p["connectorId"], p["status"]) for p in sn] == [(1, "Available")]
    assert h.cp.reservations.items == {}
    # the expired reservation holds nothing any more
    h.plug(1)
    h.tap(OTHER)
    assert "reservationId" not in h.payloads("StartTransaction")[-1]
    assert h.statuses(1)[-1] == "Charging"


# ----------------------------------------------------------------------------- TC_048
def test_tc_048_1_reserve_connector_faulted(h):
    booted(h)
    h.cp.fault(1, "GroundFailure")
    h.pump()
    assert h.statuses(1)[-1] == "Faulted"
    m = h.mark()
    assert reserve(h) == {"status": "Faulted"}
    assert h.sent(since=m) == [] and h.cp.reservations.items == {}


def test_tc_048_2_reserve_connector_occupied(h):
    booted(h)
    h.plug(1)
    assert h.statuses(1)[-1] == "Preparing"
    assert reserve(h) == {"status": "Occupied"}, "Preparing is not Available (reading)"
    h.tap(TAG)
    assert h.statuses(1)[-1] == "Charging"
    m = h.mark()
    assert reserve(h) == {"status": "Occupied"}
    assert h.sent(since=m) == [] and h.cp.reservations.items == {}
    h.tap(TAG)
    assert h.statuses(1)[-1] == "Finishing"
    assert reserve(h) == {"status": "Occupied"}


def test_tc_048_3_reserve_connector_unavailable(h):
    booted(h)
    assert h.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) == \
        {"status": "Accepted"}
    m = h.mark()
    assert reserve(h) == {"status": "Unavailable"}
    assert h.sent(since=m) == [] and h.cp.reservations.items == {}


def test_tc_048_4_reserve_connector_rejected(h):
    booted(h)
    h.cp.reservations.accepting = False     # the station configured not to accept them
    m = h.mark()
    assert reserve(h) == {"status": "Rejected"}
    assert h.sent(since=m) == [] and h.cp.reservations.items == {}


# ----------------------------------------------------------------------------- TC_049
def test_tc_049_reserve_charge_point_connector_zero(h):
    booted(h)
    m = h.mark()
    assert reserve(h, connector_id=0, reservation_id=11) == {"status": "Accepted"}
    assert [(p["connectorId"], p["status"]) for p in h.payloads("StatusNotification", m)] == \
        [(1, "Reserved")], "with one connector, that connector is kept: Reserved"
    h.tap(OTHER)
    assert not h.cp.connector(1).authorization
    m = h.mark()
    h.tap(TAG)
    h.plug(1)
    assert actions(h, m) == ["Authorize", "StatusNotification", "StartTransaction",
                             "StatusNotification"]
    assert h.statuses(1, since=m) == ["Preparing", "Charging"]
    start = h.payloads("StartTransaction")[-1]
    assert start["connectorId"] == 1 and start["reservationId"] == 11


# ----------------------------------------------------------------------------- TC_050
def test_tc_050_1_reserve_charge_point_faulted(h):
    booted(h)
    h.cp.fault(1, "GroundFailure")
    h.pump()
    assert reserve(h, connector_id=0) == {"status": "Faulted"}
    h.cp.fault(0, "InternalError")
    h.pump()
    assert reserve(h, connector_id=0) == {"status": "Faulted"}
    assert h.cp.reservations.items == {}


def test_tc_050_2_reserve_charge_point_occupied(h):
    booted(h)
    h.plug(1)
    h.tap(TAG)
    assert h.statuses(1)[-1] == "Charging"
    assert reserve(h, connector_id=0) == {"status": "Occupied"}
    assert h.cp.reservations.items == {}


def test_tc_050_3_reserve_charge_point_unavailable(h):
    booted(h)
    assert h.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}) == \
        {"status": "Accepted"}
    assert reserve(h, connector_id=0) == {"status": "Unavailable"}
    assert h.cp.reservations.items == {}


def test_tc_050_4_reserve_charge_point_rejected(h, monkeypatch):
    booted(h)
    h.cp.reservations.accepting = False
    assert reserve(h, connector_id=0) == {"status": "Rejected"}
    h.cp.reservations.accepting = True
    # ReserveConnectorZeroSupported false (3.11): Rejected; a connector itself still may be.
    monkeypatch.setattr(h.cp.reservations, "zero_supported", lambda: False)
    assert reserve(h, connector_id=0) == {"status": "Rejected"}
    assert h.cp.reservations.items == {}
    assert reserve(h, connector_id=1) == {"status": "Accepted"}


# ----------------------------------------------------------------------------- TC_051/052
def test_tc_051_cancel_reservation(h):
    booted(h)
    reserve(h, reservation_id=5)
    assert h.statuses(1)[-1] == "Reserved"
    m = h.mark()
    assert h.call("CancelReservation", {"reservationId": 5}) == {"status": "Accepted"}
    assert actions(h, m) == ["StatusNotification"]
    assert h.statuses(1, since=m) == ["Available"]
    h.plug(1)
    h.tap(OTHER)
    assert h.statuses(1)[-1] == "Charging"
    assert "reservationId" not in h.payloads("StartTransaction")[-1]


def test_tc_052_cancel_reservation_rejected(h):
    booted(h)
    reserve(h, reservation_id=5)
    m = h.mark()
    assert h.call("CancelReservation", {"reservationId": 6}) == {"status": "Rejected"}
    assert h.sent(since=m) == []
    assert list(h.cp.reservations.items) == [5] and h.statuses(1)[-1] == "Reserved"


# ----------------------------------------------------------------------------- TC_053
def test_tc_053_1_reserved_connector_parent_idtag_local_start(h):
    booted(h)
    h.id_tags[OTHER] = {"status": "Accepted", "parentIdTag": "PARENT-1"}
    h.id_tags["STRANGER"] = {"status": "Accepted", "parentIdTag": "PARENT-2"}
    assert reserve(h, reservation_id=9, parent="PARENT-1") == {"status": "Accepted"}
    m = h.mark()
    h.tap("STRANGER")      # the group is learnt from Authorize.conf (3.11): not this one
    assert actions(h, m) == ["Authorize"]
    assert h.cp.connector(1).authorization is None and h.statuses(1)[-1] == "Reserved"
    m = h.mark()
    h.tap(OTHER)
    assert actions(h, m) == ["Authorize", "StatusNotification"]
    h.plug(1)
    assert actions(h, m)[2:] == ["StartTransaction", "StatusNotification"]
    start = h.payloads("StartTransaction")[-1]
    assert start["idTag"] == OTHER and start["reservationId"] == 9
    assert h.statuses(1)[-1] == "Charging"


def test_tc_053_2_reserved_connector_parent_idtag_remote_start(h):
    booted(h)
    h.id_tags[OTHER] = {"status": "Accepted", "parentIdTag": "PARENT-1"}
    reserve(h, reservation_id=10, parent="PARENT-1")
    m = h.mark()
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": OTHER}) == \
        {"status": "Accepted"}
    assert actions(h, m) == ["Authorize", "StatusNotification"]
    h.plug(1)
    start = h.payloads("StartTransaction")[-1]
    assert start["idTag"] == OTHER and start["reservationId"] == 10


def test_tc_053_2_parent_lookup_even_without_authorize_remote_tx_requests(h):
    """3.11: a parent not known locally SHALL be asked for with Authorize.req."""
    booted(h)
    h.call("ChangeConfiguration", {"key": "AuthorizeRemoteTxRequests", "value": "false"})
    h.id_tags[OTHER] = {"status": "Accepted", "parentIdTag": "PARENT-2"}
    reserve(h, reservation_id=10, parent="PARENT-1")
    m = h.mark()
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": OTHER}) == \
        {"status": "Accepted"}
    assert actions(h, m) == ["Authorize"], "another group: the start is dropped"
    assert h.cp.connector(1).authorization is None and h.statuses(1)[-1] == "Reserved"


def test_parent_from_the_cache_decides_without_authorize(h):
    booted(h)
    h.call("ChangeConfiguration", {"key": "AuthorizationCacheEnabled", "value": "true"})
    h.call("ChangeConfiguration", {"key": "AuthorizeRemoteTxRequests", "value": "false"})
    h.id_tags[OTHER] = {"status": "Accepted", "parentIdTag": "PARENT-2"}
    h.tap(OTHER)          # learnt into the cache
    h.tap(OTHER)
    h.advance(61)         # ConnectionTimeOut: the authorization lapses
    reserve(h, reservation_id=4, parent="PARENT-1")
    m = h.mark()
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": OTHER}) == \
        {"status": "Rejected"}, "the cached parentIdTag is another group"
    assert h.sent(since=m) == []


# ----------------------------------------------------------------------------- more of 3.11
def test_same_reservation_id_replaces_the_reservation(h):
    booted(h)
    reserve(h, reservation_id=1, id_tag=OTHER)
    assert reserve(h, reservation_id=1, id_tag=TAG) == {"status": "Accepted"}
    assert list(h.cp.reservations.items) == [1]
    assert reserve(h, reservation_id=2, id_tag=TAG) == {"status": "Occupied"}, \
        "reserved for the same or another idTag"
    h.plug(1)
    h.tap(OTHER)
    assert not h.cp.connector(1).in_transaction, "the replaced reservation's idTag is out"
    h.tap(TAG)
    assert h.payloads("StartTransaction")[-1]["reservationId"] == 1


def test_reserved_idtag_authorization_times_out_back_to_reserved(h):
    booted(h)
    reserve(h)
    h.tap(TAG)
    assert h.statuses(1)[-1] == "Preparing"
    h.advance(61)
    assert h.statuses(1)[-1] == "Reserved"
    assert list(h.cp.reservations.items) == [1]


@pytest.mark.parametrize("how", ["fault", "inoperative", "station inoperative"])
def test_faulted_or_unavailable_connector_ends_the_reservation(h, how):
    booted(h)
    reserve(h)
    m = h.mark()
    if how == "fault":
        h.cp.fault(1, "GroundFailure")
        h.pump()
        h.cp.fault_cleared(1, "GroundFailure")
        h.pump()
        assert h.statuses(1, since=m) == ["Faulted", "Available"]
    else:
        cid = 1 if how == "inoperative" else 0
        h.call("ChangeAvailability", {"connectorId": cid, "type": "Inoperative"})
        h.call("ChangeAvailability", {"connectorId": cid, "type": "Operative"})
        assert h.statuses(1, since=m) == ["Unavailable", "Available"]
    assert h.cp.reservations.items == {}


def test_a_warning_does_not_end_the_reservation(h):
    booted(h)
    reserve(h)
    h.cp.fault(0, "ReaderFailure")
    h.pump()
    assert list(h.cp.reservations.items) == [1]


def test_connector_zero_keeps_one_connector_free_on_two_connectors(tmp_path):
    h = Harness(tmp_path / "d", profile=StationProfile(number_of_connectors=2), config=FAST)
    booted(h)
    m = h.mark()
    assert reserve(h, connector_id=0, reservation_id=20) == {"status": "Accepted"}
    assert h.sent(since=m) == [], "two connectors free: none shows Reserved yet"
    h.plug(1)
    h.tap(OTHER)                  # another idTag takes connector 1 ...
    assert h.statuses(1)[-1] == "Charging"
    assert h.statuses(2)[-1] == "Reserved", "... the last free one is kept"
    h.plug(2)
    m = h.mark()
    h.tap("CAFE0001")             # ... and nobody else gets it
    assert not h.cp.connector(2).in_transaction
    assert h.call("RemoteStartTransaction", {"connectorId": 2, "idTag": "CAFE0001"}) == \
        {"status": "Rejected"}
    assert reserve(h, connector_id=2, reservation_id=21) == {"status": "Occupied"}
    assert reserve(h, connector_id=0, reservation_id=22) == {"status": "Occupied"}
    h.tap(TAG)
    start = h.payloads("StartTransaction")[-1]
    assert start["connectorId"] == 2 and start["reservationId"] == 20
    assert h.cp.reservations.items == {}
    h.check_clean()


def test_reservation_for_connector_two_does_not_hold_connector_one(tmp_path):
    """Reading of 3.11: only the reserved connector refuses other idTags, and a
    card of the reservation's group elsewhere does not end it."""
    h = Harness(tmp_path / "d", profile=StationProfile(number_of_connectors=2), config=FAST)
    booted(h)
    h.id_tags[OTHER] = {"status": "Accepted", "parentIdTag": "P"}
    reserve(h, connector_id=2, reservation_id=30, id_tag=TAG, parent="P")
    h.plug(1)
    h.tap(OTHER)
    start = h.payloads("StartTransaction")[-1]
    assert start["connectorId"] == 1 and "reservationId" not in start
    assert list(h.cp.reservations.items) == [30] and h.statuses(2)[-1] == "Reserved"
    h.check_clean()


def test_late_lock_start_carries_the_reservation(tmp_path):
    h = Harness(tmp_path / "d", profile=StationProfile(fixed_cable=False), config=FAST)
    booted(h)
    reserve(h, reservation_id=40)
    h.station.lock_works = False
    h.plug(1)
    h.tap(TAG)
    assert h.cp.connector(1).lock_pending_since is not None
    assert h.sent("StartTransaction") == []
    h.station.lock_works = True
    h.cp.lock_feedback(1, True)          # the lock confirms late
    h.pump()
    assert h.payloads("StartTransaction")[-1]["reservationId"] == 40
    h.check_clean()


# ----------------------------------------------------------------------------- bad input
def test_expiry_date_in_the_past_is_rejected_and_changes_nothing(h):
    booted(h)
    assert reserve(h, seconds=-1) == {"status": "Rejected"}
    assert reserve(h, seconds=0) == {"status": "Rejected"}
    assert h.cp.reservations.items == {}
    reserve(h, reservation_id=1, id_tag=TAG)
    m = h.mark()
    assert reserve(h, reservation_id=1, id_tag=OTHER, seconds=-60) == {"status": "Rejected"}
    assert h.cp.reservations.items[1]["id_tag"] == TAG, "nothing half-applied"
    assert h.sent(since=m) == []


@pytest.mark.parametrize("date", ["2026-11-24T12:00:00", "2026-11-24 12:00:00Z", "tomorrow",
                                  "2026-02-30T12:00:00Z"])
def test_expiry_date_without_zone_or_malformed_is_a_property_violation(h, date):
    booted(h)
    m = h.mark()
    answer = h.raw_call("ReserveNow", {"connectorId": 1, "expiryDate": date, "idTag": TAG,
                                        "reservationId": 1})
    assert answer[0] == 4 and answer[2] == "PropertyConstraintViolation"
    assert h.cp.reservations.items == {} and besides_invalid_messages(h, m) == []


@pytest.mark.parametrize("action, payload, code", [
    ("ReserveNow", {"connectorId": 1, "expiryDate": "2027-01-01T00:00:00Z",
                    "reservationId": 1}, "OccurenceConstraintViolation"),
    ("ReserveNow", {"connectorId": 1, "expiryDate": "2027-01-01T00:00:00Z", "idTag": TAG,
                    "reservationId": "1"}, "TypeConstraintViolation"),
    ("ReserveNow", {"connectorId": 1, "expiryDate": "2027-01-01T00:00:00Z", "idTag": "X" * 21,
                    "reservationId": 1}, "PropertyConstraintViolation"),
    ("ReserveNow", {"connectorId": 1, "expiryDate": "2027-01-01T00:00:00Z", "idTag": TAG,
                    "reservationId": 1, "extra": 1}, "FormationViolation"),
    ("CancelReservation", {}, "OccurenceConstraintViolation"),
    ("CancelReservation", {"reservationId": 1.5}, "TypeConstraintViolation"),
])
def test_malformed_calls_get_their_callerror_and_change_nothing(h, action, payload, code):
    booted(h)
    reserve(h, reservation_id=1, id_tag=OTHER)
    m = h.mark()
    answer = h.raw_call(action, payload)
    assert answer[0] == 4 and answer[2] == code, answer
    assert h.cp.reservations.items[1]["id_tag"] == OTHER and besides_invalid_messages(h, m) == []


def test_remote_start_without_connector_goes_to_the_reserved_connector(tmp_path):
    h = Harness(tmp_path / "d", profile=StationProfile(number_of_connectors=2), config=FAST)
    booted(h)
    reserve(h, connector_id=2, reservation_id=50)
    assert h.call("RemoteStartTransaction", {"idTag": TAG}) == {"status": "Accepted"}
    h.plug(2)
    start = h.payloads("StartTransaction")[-1]
    assert start["connectorId"] == 2 and start["reservationId"] == 50
    assert h.call("RemoteStartTransaction", {"idTag": OTHER}) == {"status": "Accepted"}
    h.plug(1)
    assert h.payloads("StartTransaction")[-1]["connectorId"] == 1
    h.check_clean()


def test_unknown_connector_is_rejected(h):
    booted(h)
    assert reserve(h, connector_id=2) == {"status": "Rejected"}
    assert h.cp.reservations.items == {}


def test_disk_full_answers_rejected_and_keeps_nothing(h, monkeypatch):
    booted(h)

    def full(name, obj):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(h.cp.store, "save", full)
    assert reserve(h) == {"status": "Rejected"}
    assert h.cp.reservations.items == {} and h.statuses(1)[-1] == "Available"


def test_garbage_in_the_store_is_ignored(tmp_path):
    h = Harness(tmp_path / "d", config=FAST)
    h.power_cut()
    h.store.save("reservations", {"items": [{"id": "x"}, 5, {"id": 1, "connector_id": 9,
                                                          "id_tag": "A", "expiry": 1.0}]})
    h.power_on()
    assert h.cp.reservations.items == {}
    h.power_cut()
    h.store.save("reservations", [1, 2])
    h.power_on()
    booted(h)
    assert h.statuses(1)[-1] == "Available"
    h.check_clean()


# ----------------------------------------------------------------------------- persistence
def test_reservation_survives_a_power_cut(h):
    booted(h)
    reserve(h, reservation_id=12, seconds=600)
    m = h.mark()
    reboot(h)
    sn = h.payloads("StatusNotification", since=m)
    assert [(p["connectorId"], p["status"]) for p in sn] == [(0, "Available"), (1, "Reserved")]
    h.plug(1)
    h.tap(OTHER)
    assert not h.cp.connector(1).in_transaction
    h.tap(TAG)
    assert h.payloads("StartTransaction")[-1]["reservationId"] == 12


def test_reservation_expires_on_time_after_a_restart(h):
    booted(h)
    reserve(h, seconds=100)
    h.advance(40)
    reboot(h)
    assert h.statuses(1)[-1] == "Reserved"
    m = h.mark()
    h.advance(59)
    assert h.sent("StatusNotification", since=m) == []
    h.advance(1.5)
    assert h.statuses(1, since=m) == ["Available"]


def test_reservation_survives_reset(h):
    booted(h)
    reserve(h, reservation_id=13)
    assert h.call("Reset", {"type": "Soft"}) == {"status": "Accepted"}
    h.advance(0.1)
    assert h.station.restarts == ["Soft"]
    reboot(h)
    assert list(h.cp.reservations.items) == [13] and h.statuses(1)[-1] == "Reserved"


def test_clock_unset_at_boot_expires_once_boot_notification_sets_it(h):
    """Reading: with an untrusted clock (1970) nothing expires; the answer to
    BootNotification sets the clock and the reservation that ended meanwhile
    is gone before the statuses are reported (Available, never a stale Reserved)."""
    booted(h)
    reserve(h, seconds=100)
    h.power_cut()
    h.advance(200)
    true_wall = h.time.wall()
    h.time.wall_offset = 1000.0 - h.time.mono      # the Pi's clock: 1970 after boot
    h.responders["BootNotification"] = lambda p: {
        "status": "Accepted", "interval": 300,
        "currentTime": format_utc(true_wall + (h.time.mono - mono0))}
    mono0 = h.time.mono
    h.power_on()
    h.advance(10)                                  # offline, clock unset: still reserved
    assert list(h.cp.reservations.items) == [1]
    assert h.cp.status.status_of(1) == "Reserved"
    m = h.mark()
    h.boot()
    sn = h.payloads("StatusNotification", since=m)
    assert [(p["connectorId"], p["status"]) for p in sn] == [(0, "Available"), (1, "Available")]
    assert h.cp.reservations.items == {}


# ----------------------------------------------------------------------------- the profile
def test_profile_is_declared_with_its_key(h):
    booted(h)
    answer = h.call("GetConfiguration", {"key": ["SupportedFeatureProfiles",
                                                 "ReserveConnectorZeroSupported"]})
    keys = {k["key"]: k for k in answer["configurationKey"]}
    assert "Reservation" in keys["SupportedFeatureProfiles"]["value"].split(",")
    assert keys["ReserveConnectorZeroSupported"] == {
        "key": "ReserveConnectorZeroSupported", "readonly": True, "value": "true"}
