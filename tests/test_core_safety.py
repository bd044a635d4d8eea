"""The safety rules of ocpp_core/safety.py and registration.py in process, on a
virtual clock (issue 17): the cases the end-to-end tests do not reach."""

import itertools

import pytest

from ocpp_core.auth import authorization_decision
from ocpp_core.station import StationProfile
from tests.support.core_harness import FAST, Harness

TAG = "04A1B2C3"


def charging(h, tag=TAG):
    h.boot()
    h.plug(1)
    h.tap(tag)
    assert h.statuses(1)[-1] == "Charging"
    return h


# --- parentIdTag stop (4.10) --------------------------------------------------------------
@pytest.mark.parametrize("status", ["Blocked", "Expired", "Invalid"])
def test_a_group_card_that_is_not_valid_does_not_stop_the_transaction(h, status):
    h.id_tags = {"AAAA0001": {"status": "Accepted", "parentIdTag": "FLEET"},
                 "BBBB0002": {"status": status, "parentIdTag": "FLEET"}}
    charging(h, "AAAA0001")
    h.tap("BBBB0002")
    assert h.payloads("Authorize")[-1]["idTag"] == "BBBB0002"
    assert h.payloads("StopTransaction") == []
    assert h.statuses(1)[-1] == "Charging"
    assert h.station.contactor[1] is True


def test_the_same_card_stops_its_transaction_without_asking(h):
    charging(h)
    m = h.mark()
    h.tap(TAG.lower())          # IdToken is case-insensitive
    assert [a for a, _ in h.sent(since=m)][0] == "StopTransaction"


# --- LocalAuthorizeOffline false (3.5) ------------------------------------------------------
def test_an_unknown_card_is_never_let_in_where_a_known_valid_one_is_refused():
    """Section 3.5 reading: with LocalAuthorizeOffline false a valid local entry
    does not authorize by itself offline; the card is then treated as unknown, so
    AllowOfflineTxForUnknownId decides for both. The other reading (a known card
    refused outright) would let an unknown card in where the known one is not."""
    valid = {"status": "Accepted"}
    for pre, lao, unknown_ok in itertools.product([False, True], repeat=3):
        known = authorization_decision(valid, False, pre, lao, unknown_ok, 0)[0]
        unknown = authorization_decision(None, False, pre, lao, unknown_ok, 0)[0]
        if unknown == "accepted":
            assert known == "accepted", (pre, lao, unknown_ok)
        blocked = authorization_decision({"status": "Blocked"}, False, pre, lao, unknown_ok, 0)
        assert blocked[0] == "rejected", "3.5.4: a known id that is not valid is refused"


def test_offline_with_local_authorize_offline_false_follows_the_unknown_rule(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, AuthorizationCacheEnabled=True,
                                            LocalAuthorizeOffline=False,
                                            AllowOfflineTxForUnknownId=False))
    h.boot()
    h.tap(TAG)                           # learnt as Accepted
    h.advance(61)
    h.disconnect()
    h.plug(1)
    h.tap(TAG)
    assert h.station.contactor.get(1) is not True, "a cached card alone does not authorize"
    h.cp.config.set("AllowOfflineTxForUnknownId", True)
    h.tap(TAG)
    assert h.station.contactor[1] is True


# --- registration ---------------------------------------------------------------------------
def test_boot_not_yet_answered_is_not_offline(tmp_path):
    """Connected, BootNotification unanswered: the offline rules do not decide."""
    h = Harness(tmp_path / "d", config=FAST)
    h.unanswered.add("BootNotification")
    h.connect()
    h.plug(1)
    h.tap(TAG)
    assert h.sent("Authorize") == [] and h.sent("StartTransaction") == []
    assert h.station.contactor.get(1) is not True
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG}) == \
        {"status": "Rejected"}


def test_pending_withholds_energy_from_an_offline_transaction(tmp_path):
    h = Harness(tmp_path / "d", config=FAST, boot_answers=[("Pending", 30)])
    h.plug(1)
    h.tap(TAG)                           # never connected: offline rules
    assert h.station.contactor[1] is True
    h.connect()                          # the CSMS says Pending
    assert h.station.contactor[1] is False
    assert h.station.offered.get(1, 0) == 0
    h.advance(31)                        # then Accepted: the transaction goes on
    assert h.cp.registration.status == "Accepted"
    assert h.station.contactor[1] is True
    assert len(h.payloads("StartTransaction")) == 1
    h.check_clean()


def test_a_rejected_station_restarted_offline_does_not_charge(tmp_path):
    h = Harness(tmp_path / "d", config=FAST, boot_answers=[("Rejected", 600)])
    h.connect()
    assert h.cp.registration.status == "Rejected"
    h.power_cut()
    h.power_on()                         # no network this time
    h.plug(1)
    h.tap(TAG)
    assert h.station.contactor.get(1) is not True
    h.connect()                          # the CSMS accepts it now
    h.advance(0)
    h.tap(TAG)
    assert h.station.contactor[1] is True
    h.power_cut()
    h.power_on()                         # accepted once: offline charging is back
    h.unplug(1)
    h.plug(1)
    h.tap("04FFFFFF")
    assert h.station.contactor[1] is True
    h.check_clean()


# --- availability (5.2) -----------------------------------------------------------------------
def test_remote_start_first_then_inoperative_drops_the_authorization(h):
    h.boot()
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": TAG}) == \
        {"status": "Accepted"}
    assert h.statuses(1)[-1] == "Preparing"
    assert h.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}) == \
        {"status": "Accepted"}
    h.plug(1)
    assert h.sent("StartTransaction") == []
    assert h.statuses(1)[-1] == "Unavailable" and h.station.contactor.get(1) is not True


def test_socket_outlet_waiting_for_its_lock_does_not_start_when_made_inoperative(tmp_path):
    h = Harness(tmp_path / "d", profile=StationProfile(fixed_cable=False), config=FAST)
    h.station.lock_works = False
    h.boot()
    h.plug(1)
    h.tap(TAG)                           # the start waits for the lock
    assert h.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) == \
        {"status": "Accepted"}
    h.cp.lock_feedback(1, True)          # the lock confirms late
    h.pump()
    assert h.sent("StartTransaction") == []
    assert h.station.contactor.get(1) is not True


def test_station_scheduled_inoperative_on_two_connectors(tmp_path):
    h = Harness(tmp_path / "d", profile=StationProfile(number_of_connectors=2), config=FAST)
    charging(h)
    assert h.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}) == \
        {"status": "Scheduled"}
    h.advance(0)
    # The idle connector changes at once, connector 0 waits for the transaction.
    assert h.statuses(2)[-1] == "Unavailable"
    assert h.statuses(0)[-1] == "Available"
    assert h.statuses(1)[-1] == "Charging"
    h.plug(2)
    h.tap("04FFFFFF")
    assert [p["connectorId"] for p in h.payloads("StartTransaction")] == [1]
    h.tap(TAG)                           # ends the transaction on connector 1
    h.advance(0)
    assert h.statuses(0)[-1] == "Unavailable" and h.statuses(1)[-1] == "Unavailable"
    assert h.call("ChangeAvailability", {"connectorId": 0, "type": "Operative"}) == \
        {"status": "Accepted"}
    h.advance(0)
    assert h.statuses(0)[-1] == "Available"
    h.check_clean()


# --- the answers of the CSMS are learnt in one place ------------------------------------------
def test_a_conflict_with_the_local_list_is_reported_on_connector_0():
    from ocpp_core.core.authorization import learn

    class FakeAuth:
        def __init__(self, conflict):
            self.conflict = conflict

        def learn(self, tag, info):
            return self.conflict

    class FakeCp:
        def __init__(self, conflict):
            self.auth = FakeAuth(conflict)
            self.faults = []

        def fault(self, cid, code, info=None):
            self.faults.append((cid, code))

    agreeing, conflicting = FakeCp(False), FakeCp(True)
    learn(agreeing, TAG, {"status": "Accepted"})
    learn(conflicting, TAG, {"status": "Blocked"})
    assert agreeing.faults == []
    assert conflicting.faults == [(0, "LocalListConflict")]


@pytest.mark.parametrize("why", ["invalid", "pending"])
def test_every_refused_card_is_told_to_the_listeners(tmp_path, why):
    boot = [("Pending", 300)] if why == "pending" else None
    h = Harness(tmp_path / "d", config=FAST, boot_answers=boot)
    h.id_tags = {"BADCARD1": {"status": "Invalid"}}
    h.connect()
    heard = []
    h.cp.events.listen("card_refused", lambda tag, reason: heard.append((tag, reason)))
    h.tap("BADCARD1")
    h.advance(0)
    assert [tag for tag, _ in heard] == ["BADCARD1"]
    assert ("Invalid" if why == "invalid" else "registration Pending") in heard[0][1]
    h.check_clean()
