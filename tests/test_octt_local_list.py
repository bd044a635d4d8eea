"""The OCA test tool's Local Auth List Management cases for a Charge Point
(docs/octt-cases.md: TC_008_1/2, TC_042_1/2, TC_043, TC_043_1..3), in process
on the virtual clock, with the exact messages and their order; then the rules
of OCPP 1.6 3.5.3, 5.10, 5.15 and 9.2 that the cases do not reach: bad input,
limits, offline use of the list, LocalListConflict, parentIdTag groups and
persistence across power cuts (kill -9 included).

The readings of the specification are those documented in
ocpp_core/local_auth_list/__init__.py and ocpp_core/auth.py.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from ocpp_core.auth import LocalList
from ocpp_core.store import Store
from tests.support.core_harness import FAST, booted, Harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CARD = "04A1B2C3"


def entry(tag, status="Accepted", **extra):
    info = {"status": status}
    info.update(extra)
    return {"idTag": tag, "idTagInfo": info}


def delete(tag):
    return {"idTag": tag}


def send(h, update_type, version, entries=None):
    payload = {"listVersion": version, "updateType": update_type}
    if entries is not None:
        payload["localAuthorizationList"] = entries
    return h.call("SendLocalList", payload)


def version(h):
    answer = h.call("GetLocalListVersion", {})
    return answer["listVersion"]


def actions(h, since):
    return [a for a, _ in h.sent(since=since)]


def change(h, key, value):
    assert h.call("ChangeConfiguration", {"key": key, "value": value}) == {"status": "Accepted"}


def station_error_codes(h, since=0):
    return [p["errorCode"] for p in h.payloads("StatusNotification", since)
            if p["connectorId"] == 0]


# ----------------------------------------------------------------------------- the cases
def test_tc_008_1_start_transaction_with_id_in_local_list(h):
    booted(h)
    change(h, "LocalPreAuthorize", "true")
    assert version(h) == 0
    assert send(h, "Full", 1, [entry(CARD)]) == {"status": "Accepted"}
    assert version(h) == 1
    m = h.mark()
    h.tap(CARD)
    assert actions(h, m) == ["StatusNotification"], "no Authorize.req for a listed card"
    assert h.statuses(1, since=m) == ["Preparing"]
    h.plug(1)
    assert actions(h, m) == ["StatusNotification", "StartTransaction", "StatusNotification"]
    start = h.payloads("StartTransaction")[-1]
    assert start["idTag"] == CARD and start["connectorId"] == 1
    assert h.statuses(1)[-1] == "Charging"
    assert h.station.contactor[1] is True


def test_tc_008_2_remote_start_with_id_in_local_list(h):
    booted(h)
    change(h, "LocalPreAuthorize", "true")
    assert h.call("GetConfiguration", {"key": ["AuthorizeRemoteTxRequests"]})[
        "configurationKey"][0]["value"] == "true"
    assert version(h) == 0
    assert send(h, "Full", 1, [entry(CARD)]) == {"status": "Accepted"}
    m = h.mark()
    assert h.call("RemoteStartTransaction", {"connectorId": 1, "idTag": CARD}) == \
        {"status": "Accepted"}
    assert actions(h, m) == ["StatusNotification"], "the list authorizes the remote start"
    assert h.statuses(1, since=m) == ["Preparing"]
    h.plug(1)
    assert actions(h, m) == ["StatusNotification", "StartTransaction", "StatusNotification"]
    assert h.payloads("StartTransaction")[-1]["idTag"] == CARD
    assert h.statuses(1)[-1] == "Charging"


def test_tc_042_1_get_local_list_version_never_answers_not_supported(h):
    """TC_042_1 is the case for a station without Local Authorization List
    (5.10: listVersion -1). This station supports it, so -1 is never the answer,
    not even with LocalAuthListEnabled false: the list is then kept (and its
    version reported), only not used."""
    booted(h)
    profiles = h.call("GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
    assert "LocalAuthListManagement" in profiles["configurationKey"][0]["value"].split(",")
    change(h, "LocalAuthListEnabled", "false")
    assert version(h) == 0
    assert send(h, "Full", 4, [entry(CARD)]) == {"status": "Accepted"}
    assert version(h) == 4


def test_tc_042_2_get_local_list_version_empty(h):
    booted(h)
    m = h.mark()
    assert h.call("GetLocalListVersion", {}) == {"listVersion": 0}
    assert actions(h, m) == [], "a GetLocalListVersion makes the station send nothing"
    # a Full update with an empty list empties it: version 0 again (5.10)
    assert send(h, "Full", 3, [entry(CARD)]) == {"status": "Accepted"}
    assert send(h, "Full", 4, []) == {"status": "Accepted"}
    assert version(h) == 0


def test_tc_043_send_local_list_full_and_differential(h):
    booted(h)
    assert send(h, "Full", 1, [entry("AAAA0001"), entry("BBBB0002"),
                               entry("CCCC0003", "Blocked")]) == {"status": "Accepted"}
    assert version(h) == 1
    # Differential: add, update, delete (an entry without idTagInfo), delete of an unknown tag
    assert send(h, "Differential", 2, [entry("DDDD0004"), entry("AAAA0001", "Blocked"),
                                       delete("BBBB0002"), delete("ZZZZ9999")]) == \
        {"status": "Accepted"}
    assert version(h) == 2
    local = h.cp.auth.local_list
    assert local.get("AAAA0001") == {"status": "Blocked"}
    assert local.get("BBBB0002") is None
    assert local.get("CCCC0003") == {"status": "Blocked"}
    assert local.get("DDDD0004") == {"status": "Accepted"}
    assert len(local) == 3
    # a Full update replaces everything, and may go back in version
    assert send(h, "Full", 1, [entry("EEEE0005")]) == {"status": "Accepted"}
    assert version(h) == 1 and len(local) == 1 and local.get("DDDD0004") is None


def test_tc_043_1_send_local_list_while_disabled_is_kept_not_used(h):
    """TC_043_1 (NotSupported) is for a station without the profile. Here
    LocalAuthListEnabled false does not make SendLocalList NotSupported: the
    update is Accepted and stored, and the list is not used until enabled."""
    booted(h)
    change(h, "LocalAuthListEnabled", "false")
    change(h, "AllowOfflineTxForUnknownId", "false")
    assert send(h, "Full", 1, [entry(CARD)]) == {"status": "Accepted"}
    assert send(h, "Differential", 2, [entry("BBBB0002")]) == {"status": "Accepted"}
    assert version(h) == 2
    h.disconnect()
    h.tap(CARD)
    assert h.cp.connectors[1].authorization is None, "a disabled list authorizes nothing"
    h.connect()
    change(h, "LocalAuthListEnabled", "true")
    h.disconnect()
    h.tap(CARD)
    assert h.cp.connectors[1].authorization["id_tag"] == CARD, \
        "enabled again: the kept list is used"


def test_tc_043_2_send_local_list_version_mismatch(h):
    booted(h)
    assert send(h, "Full", 5, [entry("AAAA0001")]) == {"status": "Accepted"}
    m = h.mark()
    assert send(h, "Differential", 5, [entry("BBBB0002")]) == {"status": "VersionMismatch"}
    assert send(h, "Differential", 4, [entry("BBBB0002")]) == {"status": "VersionMismatch"}
    assert version(h) == 5
    assert h.cp.auth.local_list.get("BBBB0002") is None
    assert actions(h, m) == []
    # the CSMS retries with a Full update (5.15)
    assert send(h, "Full", 5, [entry("AAAA0001"), entry("BBBB0002")]) == {"status": "Accepted"}
    assert len(h.cp.auth.local_list) == 2
    # a Differential on an empty list (version 0) needs a version above 0
    assert send(h, "Full", 6, []) == {"status": "Accepted"}
    assert send(h, "Differential", 0, [entry("AAAA0001")]) == {"status": "VersionMismatch"}
    assert send(h, "Differential", 1, [entry("AAAA0001")]) == {"status": "Accepted"}


def test_tc_043_3_send_local_list_failed(h):
    booted(h)
    assert send(h, "Full", 1, [entry("AAAA0001")]) == {"status": "Accepted"}
    limit = h.cp.config.get("SendLocalListMaxLength")
    too_many = [entry("T%05d" % i) for i in range(limit + 1)]
    assert send(h, "Full", 2, too_many) == {"status": "Failed"}
    assert send(h, "Differential", 2, too_many) == {"status": "Failed"}
    assert version(h) == 1
    assert h.cp.auth.local_list.get("AAAA0001") == {"status": "Accepted"}
    assert len(h.cp.auth.local_list) == 1
    # exactly the limit is fine
    assert send(h, "Full", 2, too_many[:limit]) == {"status": "Accepted"}
    assert len(h.cp.auth.local_list) == limit


# ----------------------------------------------------------------------------- bad input
def test_ten_thousand_entries_fail_and_change_nothing(h):
    """10,000 entries do not fit in one frame (ocpp_core.framing.MAX_FRAME_CHARS,
    64 KiB; a full message of SendLocalListMaxLength entries is ~15 KB): the
    framing layer answers FormationViolation before the payload is parsed.
    1,000 entries fit in a frame and get the spec's answer, Failed (9.2
    SendLocalListMaxLength)."""
    booted(h)
    assert send(h, "Full", 1, [entry(CARD)]) == {"status": "Accepted"}
    fsyncs_before = h.store.fsync_count
    huge = [entry("H%07d" % i) for i in range(10000)]
    assert send(h, "Full", 2, huge) == ("error", "FormationViolation")
    assert send(h, "Differential", 2, huge) == ("error", "FormationViolation")
    big = [entry("B%03d" % i) for i in range(1000)]
    assert send(h, "Full", 2, big) == {"status": "Failed"}
    assert send(h, "Differential", 2, big) == {"status": "Failed"}
    assert h.store.fsync_count == fsyncs_before, "nothing written"
    assert version(h) == 1 and len(h.cp.auth.local_list) == 1


def test_negative_version_fails(h):
    booted(h)
    assert send(h, "Full", 3, [entry(CARD)]) == {"status": "Accepted"}
    assert send(h, "Full", -5, [entry("AAAA0001")]) == {"status": "Failed"}
    assert send(h, "Differential", -5, [entry("AAAA0001")]) == {"status": "Failed"}
    assert send(h, "Full", -5, []) == {"status": "Failed"}
    assert version(h) == 3 and h.cp.auth.local_list.get("AAAA0001") is None


def test_bad_content_fails_and_changes_nothing(h):
    booted(h)
    assert send(h, "Full", 3, [entry(CARD)]) == {"status": "Accepted"}
    # a Full update cannot delete: every entry needs its idTagInfo
    assert send(h, "Full", 4, [entry("AAAA0001"), delete("BBBB0002")]) == {"status": "Failed"}
    # version 0 means "empty" (5.10): a non-empty list cannot carry it
    assert send(h, "Full", 0, [entry("AAAA0001")]) == {"status": "Failed"}
    assert version(h) == 3 and len(h.cp.auth.local_list) == 1


@pytest.mark.parametrize("payload", [
    {"listVersion": "4", "updateType": "Full"},
    {"listVersion": 4.5, "updateType": "Full"},
    {"listVersion": 4, "updateType": "Sideways"},
    {"listVersion": 4},
    {"updateType": "Full"},
    {"listVersion": 4, "updateType": "Full", "localAuthorizationList": [{"idTag": "X" * 21,
                                                                          "idTagInfo": {
                                                                              "status": "Accepted"}}]},
    {"listVersion": 4, "updateType": "Full",
     "localAuthorizationList": [{"idTag": "A", "idTagInfo": {"status": "Maybe"}}]},
    {"listVersion": 4, "updateType": "Full",
     "localAuthorizationList": [{"idTag": "A", "idTagInfo": {"status": "Accepted",
                                                             "expiryDate": "tomorrow"}}]},
    {"listVersion": 4, "updateType": "Full", "localAuthorizationList": {"idTag": "A"}},
])
def test_schema_violations_are_call_errors(h, payload):
    booted(h)
    assert send(h, "Full", 3, [entry(CARD)]) == {"status": "Accepted"}
    # our CSMS endpoint refuses to send an invalid CALL: put the frame on the wire by hand
    h.cp.rpc.receive(json.dumps([2, "bad-1", "SendLocalList", payload]))
    answers = [json.loads(t) for d, t in h._wire if d == "to_csms"]
    # the answer, then the InvalidMessages security event (a CALL of its own)
    assert [m[2] for m in answers if m[0] == 2] == ["SecurityEventNotification"], answers
    answers = [m for m in answers if m[0] != 2]
    h._wire = [(d, t) for d, t in h._wire if d != "to_csms" or json.loads(t)[1] != "bad-1"]
    assert len(answers) == 1 and answers[0][:2] == [4, "bad-1"], answers
    answer = ("error", answers[0][2])
    assert answer[1] in ("TypeConstraintViolation", "PropertyConstraintViolation",
                         "OccurenceConstraintViolation", "OccurrenceConstraintViolation",
                         "FormationViolation"), answer
    assert version(h) == 3 and h.cp.auth.local_list.get(CARD) == {"status": "Accepted"}


def test_local_auth_list_max_length_in_total(h):
    booted(h)
    total = h.cp.config.get("LocalAuthListMaxLength")
    per_message = h.cp.config.get("SendLocalListMaxLength")
    tags = ["L%06d" % i for i in range(total + 1)]
    chunks = [tags[i:i + per_message] for i in range(0, total, per_message)]
    assert send(h, "Full", 1, [entry(t) for t in chunks[0]]) == {"status": "Accepted"}
    for n, chunk in enumerate(chunks[1:], start=2):
        assert send(h, "Differential", n, [entry(t) for t in chunk]) == {"status": "Accepted"}
    assert len(h.cp.auth.local_list) == total
    last = len(chunks)
    assert send(h, "Differential", last + 1, [entry(tags[total])]) == {"status": "Failed"}
    assert len(h.cp.auth.local_list) == total and version(h) == last
    # an update (not an addition) and a delete-and-add stay within the limit
    assert send(h, "Differential", last + 1, [entry(tags[0], "Blocked")]) == \
        {"status": "Accepted"}
    assert send(h, "Differential", last + 2, [delete(tags[1]), entry(tags[total])]) == \
        {"status": "Accepted"}
    assert len(h.cp.auth.local_list) == total


def test_limits_are_read_only(h):
    booted(h)
    for key in ("LocalAuthListMaxLength", "SendLocalListMaxLength"):
        assert h.call("ChangeConfiguration", {"key": key, "value": "5000"}) == \
            {"status": "Rejected"}


# ----------------------------------------------------------------------------- using the list
def test_offline_list_entries(h):
    booted(h)
    assert send(h, "Full", 1, [entry("GOOD0001"), entry("BLOCKED1", "Blocked"),
                               entry("INVALID1", "Invalid"),
                               entry("OLD00001", expiryDate="2026-11-24T09:59:59Z"),
                               entry("FRESH001", expiryDate="2026-11-25T10:00:00Z")]) == \
        {"status": "Accepted"}
    h.disconnect()
    # AllowOfflineTxForUnknownId is true (the default): a known-bad card is still refused
    for tag in ("BLOCKED1", "INVALID1", "OLD00001"):
        h.tap(tag)
        assert h.cp.connectors[1].authorization is None, tag
    h.tap("FRESH001")
    assert h.cp.connectors[1].authorization["id_tag"] == "FRESH001"
    h.advance(61)    # ConnectionTimeOut
    h.tap("GOOD0001")
    h.plug(1)
    assert h.station.contactor[1] is True
    m = h.mark()
    h.connect()
    h.advance(0.5)
    sent = actions(h, m)
    assert sent.count("StartTransaction") == 1
    assert [p["idTag"] for p in h.payloads("StartTransaction")] == ["GOOD0001"]
    assert h.statuses(1)[-1] == "Charging"


def test_local_authorize_offline_false_lets_the_unknown_id_rule_decide(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, LocalAuthorizeOffline=False,
                                            AllowOfflineTxForUnknownId=False))
    booted(h)
    assert send(h, "Full", 1, [entry(CARD)]) == {"status": "Accepted"}
    h.disconnect()
    h.tap(CARD)
    assert h.cp.connectors[1].authorization is None
    h.connect()
    change(h, "AllowOfflineTxForUnknownId", "true")
    h.disconnect()
    h.tap(CARD)
    assert h.cp.connectors[1].authorization["id_tag"] == CARD
    h.check_clean()


def test_online_invalid_entries_are_asked_even_with_local_pre_authorize(h):
    booted(h)
    change(h, "LocalPreAuthorize", "true")
    h.id_tags = {"BLOCKED1": {"status": "Blocked"}}
    assert send(h, "Full", 1, [entry("BLOCKED1", "Blocked")]) == {"status": "Accepted"}
    m = h.mark()
    h.tap("BLOCKED1")
    assert actions(h, m) == ["Authorize"]
    assert h.cp.connectors[1].authorization is None
    assert station_error_codes(h, m) == [], "the CSMS agrees with the list: no conflict"


def test_list_has_precedence_over_the_cache(tmp_path):
    h = Harness(tmp_path / "d", config=dict(FAST, AuthorizationCacheEnabled=True,
                                            AllowOfflineTxForUnknownId=False))
    booted(h)
    h.tap(CARD)                    # cached Accepted from the Authorize.conf
    h.advance(61)
    assert CARD in h.cp.auth.cache
    assert send(h, "Full", 1, [entry(CARD, "Blocked")]) == {"status": "Accepted"}
    h.disconnect()
    h.tap(CARD)
    assert h.cp.connectors[1].authorization is None, "the list's Blocked wins over the cache"
    h.check_clean()


def test_local_list_conflict_reported_and_cleared_by_the_next_update(h):
    booted(h)
    assert send(h, "Full", 1, [entry(CARD)]) == {"status": "Accepted"}
    h.id_tags = {CARD: {"status": "Blocked"}}
    m = h.mark()
    h.tap(CARD)
    assert actions(h, m) == ["Authorize", "StatusNotification"]
    sn = h.payloads("StatusNotification", m)[-1]
    assert (sn["connectorId"], sn["errorCode"], sn["status"]) == \
        (0, "LocalListConflict", "Available")
    assert h.cp.connectors[1].authorization is None, "the CSMS's answer is the one used"
    # a refused update does not clear it
    m = h.mark()
    assert send(h, "Differential", 1, [entry(CARD, "Blocked")]) == {"status": "VersionMismatch"}
    assert actions(h, m) == []
    # the next successful update does
    assert send(h, "Differential", 2, [entry(CARD, "Blocked")]) == {"status": "Accepted"}
    assert actions(h, m) == ["StatusNotification"]
    sn = h.payloads("StatusNotification", m)[-1]
    assert (sn["connectorId"], sn["errorCode"], sn["status"]) == (0, "NoError", "Available")


def test_parent_id_tag_from_the_list_stops_the_group_s_transaction(h):
    """TC_069 with the group known from the list only: the CSMS's answers
    carry no parentIdTag."""
    booted(h)
    assert send(h, "Full", 1, [entry("AAAA0001", parentIdTag="FLEET"),
                               entry("BBBB0002", parentIdTag="fleet"),
                               entry("CCCC0003", parentIdTag="OTHER"),
                               entry("DDDD0004", "Blocked", parentIdTag="FLEET")]) == \
        {"status": "Accepted"}
    h.plug(1)
    h.tap("AAAA0001")
    assert h.statuses(1)[-1] == "Charging"
    h.tap("CCCC0003")
    assert h.payloads("StopTransaction") == [], "another group"
    h.id_tags = {"DDDD0004": {"status": "Blocked"}}
    h.tap("DDDD0004")
    assert h.payloads("StopTransaction") == [], "a blocked card of the group"
    m = h.mark()
    h.tap("BBBB0002")
    assert actions(h, m) == ["Authorize", "StopTransaction", "StatusNotification"]
    stop = h.payloads("StopTransaction")[-1]
    assert stop["idTag"] == "BBBB0002" and stop["reason"] == "Local"


def test_parent_id_tag_from_the_list_offline(h):
    booted(h)
    assert send(h, "Full", 1, [entry("AAAA0001", parentIdTag="FLEET"),
                               entry("BBBB0002", parentIdTag="FLEET")]) == {"status": "Accepted"}
    h.disconnect()
    h.plug(1)
    h.tap("AAAA0001")
    assert h.station.contactor[1] is True
    h.tap("BBBB0002")
    assert h.station.contactor[1] is False
    m = h.mark()
    h.connect()
    h.advance(1)
    assert [a for a in actions(h, m) if a != "StatusNotification"] == \
        ["StartTransaction", "StopTransaction"]
    assert h.payloads("StopTransaction")[-1]["idTag"] == "BBBB0002"


# ----------------------------------------------------------------------------- persistence
def test_the_list_survives_a_power_cut(h):
    booted(h)
    assert send(h, "Full", 7, [entry(CARD, parentIdTag="P")]) == {"status": "Accepted"}
    h.power_cut()
    h.power_on()
    booted(h)
    assert version(h) == 7
    assert h.cp.auth.local_list.get(CARD) == {"status": "Accepted", "parentIdTag": "P"}


def test_a_failing_save_leaves_the_old_list(h, monkeypatch):
    booted(h)
    assert send(h, "Full", 1, [entry(CARD)]) == {"status": "Accepted"}
    real_rename = os.rename

    def failing_rename(src, dst):
        if dst.endswith("local_list"):
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)
    monkeypatch.setattr(os, "rename", failing_rename)
    assert send(h, "Full", 2, [entry("AAAA0001")]) == {"status": "Failed"}
    assert send(h, "Differential", 2, [entry("AAAA0001")]) == {"status": "Failed"}
    assert version(h) == 1 and h.cp.auth.local_list.get("AAAA0001") is None
    monkeypatch.setattr(os, "rename", real_rename)
    h.power_cut()
    h.power_on()
    booted(h)
    assert version(h) == 1 and h.cp.auth.local_list.get(CARD) == {"status": "Accepted"}
    assert h.cp.auth.local_list.get("AAAA0001") is None
    assert not [n for n in os.listdir(h.data_dir) if n.endswith(".tmp")]


def test_an_unexpected_error_while_saving_is_failed_not_a_crash(h, monkeypatch):
    booted(h)
    assert send(h, "Full", 1, [entry(CARD)]) == {"status": "Accepted"}

    def broken(name, obj):
        raise RuntimeError("driver bug")
    monkeypatch.setattr(h.cp.store, "save", broken)
    assert send(h, "Full", 2, [entry("AAAA0001")]) == {"status": "Failed"}
    assert version(h) == 1 and h.cp.auth.local_list.get(CARD) == {"status": "Accepted"}


KILL_WORKER = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from ocpp_core.auth import LocalList
from ocpp_core.store import Store
data, window = sys.argv[2], sys.argv[3]
store = Store(data)
local = LocalList(store)
real_rename, real_fsync = os.rename, os.fsync
state = {"renamed": False}
def rename(src, dst):
    if window == "before_rename":
        os.kill(os.getpid(), signal.SIGKILL)
    real_rename(src, dst)
    state["renamed"] = True
def fsync(fd):
    if window == "mid_write":
        os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)
    if window == "after_rename" and state["renamed"]:
        os.kill(os.getpid(), signal.SIGKILL)
os.rename, os.fsync = rename, fsync
entries = [{"idTag": "NEW%05d" % i, "idTagInfo": {"status": "Accepted"}} for i in range(100)]
local.apply("Full", 2, entries)
sys.exit(3)   # not killed: the window was not hit
"""


@pytest.mark.parametrize("window,expected_version", [
    ("mid_write", 1), ("before_rename", 1), ("after_rename", 2)])
def test_kill_9_in_the_middle_of_an_update_gives_the_old_or_the_new_list(
        tmp_path, window, expected_version):
    data = str(tmp_path / "data")
    old = LocalList(Store(data))
    assert old.apply("Full", 1, [{"idTag": "OLD%05d" % i, "idTagInfo": {"status": "Accepted"}}
                                 for i in range(50)]) == "Accepted"
    proc = subprocess.run([sys.executable, "-c", KILL_WORKER, ROOT, data, window], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    store = Store(data)   # a restart: leftover temp files are removed
    again = LocalList(store)
    assert again.version == expected_version
    prefix = "OLD" if expected_version == 1 else "NEW"
    assert len(again) == (50 if expected_version == 1 else 100)
    assert all(key.startswith(prefix) for key in again._entries), "never a mix"
    assert store.corrupt_names() == []
    assert not [n for n in os.listdir(data) if n.endswith(".tmp")]
