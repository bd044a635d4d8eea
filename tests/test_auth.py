"""ocpp_core.auth: cache, local list and the local authorization decision
(OCPP 1.6 section 3.5)."""

import json

import pytest

from ocpp_core import auth
from ocpp_core.auth import AuthCache, Authorizer, LocalList, authorization_decision, \
    effective_status, same_group
from ocpp_core.catalogue import ACTIONS
from ocpp_core.timestamps import parse_rfc3339
from ocpp_core.validation import validate

NOW = parse_rfc3339("2026-03-01T12:00:00Z")
FUTURE = "2026-03-02T00:00:00Z"
PAST = "2026-03-01T11:59:59Z"


class FakeStore:
    """In-memory stand-in for ocpp_core.store.Store; stores JSON text, as the
    real one does, so non-JSON state fails here too."""

    def __init__(self):
        self.data = {}
        self.saves = 0
        self.fail = False

    def save(self, name, obj):
        if self.fail:
            raise OSError("disk full")
        self.data[name] = json.dumps(obj)
        self.saves += 1

    def load(self, name, default=None):
        text = self.data.get(name)
        return default if text is None else json.loads(text)

    def delete(self, name):
        self.data.pop(name, None)


class FakeClock:
    def __init__(self, now=NOW):
        self.t = now

    def now(self):
        return self.t


def make(config=None, now=NOW):
    """An Authorizer over a fresh store. config: the keys the station has."""
    store = FakeStore()
    cfg = dict(config or {})

    def config_get(key):
        return cfg[key]  # KeyError for a key the station does not have

    cache = AuthCache(store)
    local = LocalList(store)
    return Authorizer(config_get, cache, local, FakeClock(now)), cache, local, store, cfg


# --- effective_status -----------------------------------------------------------------

def test_effective_status():
    assert effective_status({"status": "Accepted"}, NOW) == "Accepted"
    assert effective_status({"status": "Accepted", "expiryDate": FUTURE}, NOW) == "Accepted"
    assert effective_status({"status": "Accepted", "expiryDate": PAST}, NOW) == "Expired"
    # at the expiry instant the entry is no longer valid
    assert effective_status({"status": "Accepted", "expiryDate": "2026-03-01T12:00:00Z"},
                            NOW) == "Expired"
    # other offsets parse
    assert effective_status({"status": "Accepted", "expiryDate": "2026-03-01T13:30:00+01:00"},
                            NOW) == "Accepted"
    # non-Accepted statuses are kept as they are
    assert effective_status({"status": "Blocked", "expiryDate": PAST}, NOW) == "Blocked"
    assert effective_status({"status": "Invalid"}, NOW) == "Invalid"
    assert effective_status(None, NOW) is None
    # no "now": the date cannot be checked
    assert effective_status({"status": "Accepted", "expiryDate": PAST}, None) == "Accepted"


def test_unparsable_expiry_counts_as_expired():
    assert effective_status({"status": "Accepted", "expiryDate": "tomorrow"}, NOW) == "Expired"
    assert effective_status({"status": "Accepted", "expiryDate": "2026-02-30T00:00:00Z"},
                            NOW) == "Expired"


# --- the pure decision ------------------------------------------------------------------

VALID = {"status": "Accepted", "expiryDate": FUTURE, "parentIdTag": "GROUP1"}
DATE_EXPIRED = {"status": "Accepted", "expiryDate": PAST}


@pytest.mark.parametrize("pre", [False, True])
@pytest.mark.parametrize("offline", [False, True])
@pytest.mark.parametrize("unknown", [False, True])
def test_online_asks_unless_local_pre_authorize_with_valid_entry(pre, offline, unknown):
    # online, the offline flags play no part
    expected = ("accepted", VALID) if pre else ("ask", None)
    assert authorization_decision(VALID, True, pre, offline, unknown, NOW) == expected
    for entry in (None, DATE_EXPIRED, {"status": "Blocked"}, {"status": "Invalid"},
                  {"status": "Expired"}, {"status": "ConcurrentTx"}):
        assert authorization_decision(entry, True, pre, offline, unknown, NOW) == ("ask", None)


@pytest.mark.parametrize("pre", [False, True])
def test_offline_decisions(pre):
    d = authorization_decision
    # valid entry, LocalAuthorizeOffline
    assert d(VALID, False, pre, True, False, NOW) == ("accepted", VALID)
    assert d(VALID, False, pre, True, True, NOW) == ("accepted", VALID)
    # valid entry without LocalAuthorizeOffline: treated like an unknown tag
    assert d(VALID, False, pre, False, False, NOW) == ("rejected", {"status": "Invalid"})
    assert d(VALID, False, pre, False, True, NOW) == ("accepted", VALID)
    # known but invalid: rejected whatever the flags
    for offline in (False, True):
        for unknown in (False, True):
            assert d({"status": "Blocked"}, False, pre, offline, unknown, NOW) == \
                ("rejected", {"status": "Blocked"})
            assert d({"status": "Invalid"}, False, pre, offline, unknown, NOW) == \
                ("rejected", {"status": "Invalid"})
            assert d({"status": "Expired"}, False, pre, offline, unknown, NOW) == \
                ("rejected", {"status": "Expired"})
            assert d(DATE_EXPIRED, False, pre, offline, unknown, NOW) == \
                ("rejected", {"status": "Expired", "expiryDate": PAST})
            # unknown tag: AllowOfflineTxForUnknownId decides
            assert d(None, False, pre, offline, unknown, NOW) == \
                (("accepted", {"status": "Accepted"}) if unknown
                 else ("rejected", {"status": "Invalid"}))


def test_decision_returns_copies():
    entry = {"status": "Accepted"}
    verdict, info = authorization_decision(entry, False, False, True, False, NOW)
    info["status"] = "Blocked"
    assert entry == {"status": "Accepted"}


# --- Authorizer: list/cache precedence and configuration --------------------------------

ALL_ON = {"AuthorizationCacheEnabled": True, "LocalAuthListEnabled": True,
          "LocalPreAuthorize": True, "LocalAuthorizeOffline": True,
          "AllowOfflineTxForUnknownId": False}


def test_missing_keys_count_as_false():
    a, cache, local, _, _ = make({})
    cache.update("TAG1", {"status": "Accepted"})
    assert local.apply("Full", 1, [{"idTag": "TAG2", "idTagInfo": {"status": "Accepted"}}]) \
        == "Accepted"
    # nothing enabled: both unknown; online ask, offline reject
    assert a.decide("TAG1", True) == ("ask", None)
    assert a.decide("TAG2", True) == ("ask", None)
    assert a.decide("TAG1", False) == ("rejected", {"status": "Invalid"})
    assert a.decide("TAG2", False) == ("rejected", {"status": "Invalid"})
    # and learning does nothing to the cache without AuthorizationCacheEnabled
    a.learn("TAG3", {"status": "Accepted"})
    assert len(cache) == 1


def test_string_config_values_are_understood():
    a, cache, _, _, cfg = make({"AuthorizationCacheEnabled": "true", "LocalPreAuthorize": "True"})
    cache.update("TAG1", {"status": "Accepted"})
    assert a.decide("TAG1", True) == ("accepted", {"status": "Accepted"})
    cfg["LocalPreAuthorize"] = "false"
    assert a.decide("TAG1", True) == ("ask", None)


def test_cache_entry_used_online_and_offline():
    a, cache, _, _, cfg = make(ALL_ON)
    a.learn("CARD1", {"status": "Accepted", "expiryDate": FUTURE})
    assert a.decide("CARD1", True) == ("accepted", {"status": "Accepted", "expiryDate": FUTURE})
    assert a.decide("CARD1", False) == ("accepted", {"status": "Accepted", "expiryDate": FUTURE})
    cfg["LocalPreAuthorize"] = False
    assert a.decide("CARD1", True) == ("ask", None)
    cfg["LocalAuthorizeOffline"] = False
    assert a.decide("CARD1", False) == ("rejected", {"status": "Invalid"})
    cfg["AllowOfflineTxForUnknownId"] = True
    assert a.decide("CARD1", False)[0] == "accepted"
    # cache disabled: the entry is not consulted
    cfg.update(ALL_ON, AuthorizationCacheEnabled=False)
    assert a.decide("CARD1", True) == ("ask", None)
    assert a.decide("CARD1", False) == ("rejected", {"status": "Invalid"})


def test_cache_entry_expires_by_date():
    a, cache, _, _, _ = make(ALL_ON)
    a.learn("CARD1", {"status": "Accepted", "expiryDate": FUTURE})
    a.clock.t = parse_rfc3339(FUTURE)
    assert a.decide("CARD1", True) == ("ask", None)  # re-checked online
    assert a.decide("CARD1", False) == ("rejected", {"status": "Expired", "expiryDate": FUTURE})


def test_blocked_cache_entry():
    a, _, _, _, cfg = make(dict(ALL_ON, AllowOfflineTxForUnknownId=True))
    a.learn("CARD1", {"status": "Blocked"})
    assert a.decide("CARD1", True) == ("ask", None)
    assert a.decide("CARD1", False) == ("rejected", {"status": "Blocked"})
    # an unknown card is let through offline, a blocked one is not
    assert a.decide("OTHER", False) == ("accepted", {"status": "Accepted"})


def test_local_list_has_precedence_over_cache():
    a, cache, local, _, cfg = make(ALL_ON)
    cache.update("CARD1", {"status": "Accepted"})
    local.apply("Full", 1, [{"idTag": "CARD1", "idTagInfo": {"status": "Blocked"}}])
    assert a.lookup("CARD1") == ("list", {"status": "Blocked"})
    assert a.decide("CARD1", True) == ("ask", None)
    assert a.decide("CARD1", False) == ("rejected", {"status": "Blocked"})
    # list disabled: the cache answers
    cfg["LocalAuthListEnabled"] = False
    assert a.lookup("CARD1") == ("cache", {"status": "Accepted"})
    assert a.decide("CARD1", False) == ("accepted", {"status": "Accepted"})


def test_local_list_entry_decisions():
    a, _, local, _, cfg = make(ALL_ON)
    local.apply("Full", 3, [
        {"idTag": "OK", "idTagInfo": {"status": "Accepted", "parentIdTag": "G"}},
        {"idTag": "OLD", "idTagInfo": {"status": "Accepted", "expiryDate": PAST}},
        {"idTag": "BAD", "idTagInfo": {"status": "Invalid"}},
    ])
    assert a.decide("OK", True) == ("accepted", {"status": "Accepted", "parentIdTag": "G"})
    assert a.decide("ok", False) == ("accepted", {"status": "Accepted", "parentIdTag": "G"})
    assert a.decide("OLD", True) == ("ask", None)
    assert a.decide("OLD", False) == ("rejected", {"status": "Expired", "expiryDate": PAST})
    assert a.decide("BAD", True) == ("ask", None)
    assert a.decide("BAD", False) == ("rejected", {"status": "Invalid"})
    cfg["LocalPreAuthorize"] = False
    assert a.decide("OK", True) == ("ask", None)


def test_lookup_is_case_insensitive():
    a, cache, _, _, _ = make(ALL_ON)
    a.learn("04a1b2c3", {"status": "Accepted"})
    assert "04A1B2C3" in cache
    assert a.decide("04A1B2C3", False) == ("accepted", {"status": "Accepted"})


# --- learning -----------------------------------------------------------------------------

def test_learn_caches_every_answer_but_concurrent_tx():
    a, cache, _, _, _ = make(ALL_ON)
    assert a.learn("CARD1", {"status": "Accepted", "parentIdTag": "G"}) is False
    assert cache.get("CARD1") == {"status": "Accepted", "parentIdTag": "G"}
    a.learn("CARD1", {"status": "ConcurrentTx"})
    assert cache.get("CARD1") == {"status": "Accepted", "parentIdTag": "G"}
    a.learn("CARD1", {"status": "Blocked"})
    assert cache.get("CARD1") == {"status": "Blocked"}
    a.learn("CARD2", {"status": "ConcurrentTx"})
    assert cache.get("CARD2") is None
    a.learn("CARD3", None)  # StopTransaction.conf without idTagInfo
    assert len(cache) == 1


def test_learn_never_caches_listed_tags_and_reports_conflicts():
    a, cache, local, _, _ = make(ALL_ON)
    local.apply("Full", 1, [{"idTag": "LISTED", "idTagInfo": {"status": "Accepted"}}])
    cache.update("listed", {"status": "Accepted"})  # stale, from before the list
    assert a.learn("LISTED", {"status": "Accepted"}) is False
    assert "LISTED" not in cache
    assert a.learn("LISTED", {"status": "Blocked"}) is True      # LocalListConflict
    assert a.learn("LISTED", {"status": "ConcurrentTx"}) is False
    assert len(cache) == 0
    assert local.get("LISTED") == {"status": "Accepted"}          # the list is not touched


def test_learn_survives_a_failing_store():
    a, cache, _, store, _ = make(ALL_ON)
    store.fail = True
    assert a.learn("CARD1", {"status": "Accepted"}) is False
    assert cache.get("CARD1") == {"status": "Accepted"}


# --- AuthCache ----------------------------------------------------------------------------

def test_cache_persists_across_recreation():
    store = FakeStore()
    cache = AuthCache(store)
    cache.update("A", {"status": "Accepted", "expiryDate": FUTURE, "parentIdTag": "P"})
    cache.update("B", {"status": "Blocked"})
    again = AuthCache(store)
    assert len(again) == 2
    assert again.get("a") == {"status": "Accepted", "expiryDate": FUTURE, "parentIdTag": "P"}
    assert again.get("B") == {"status": "Blocked"}
    assert again.get("C") is None


def test_cache_returns_copies_and_rejects_non_info():
    cache = AuthCache(FakeStore())
    cache.update("A", {"status": "Accepted"})
    cache.get("A")["status"] = "Blocked"
    assert cache.get("A") == {"status": "Accepted"}
    with pytest.raises(ValueError):
        cache.update("A", {"expiryDate": FUTURE})


def test_cache_lru_eviction():
    store = FakeStore()
    cache = AuthCache(store, capacity=3)
    for tag in ("A", "B", "C"):
        cache.update(tag, {"status": "Accepted"})
    cache.get("A")                       # A is now more recent than B
    cache.update("D", {"status": "Accepted"})
    assert len(cache) == 3
    assert "B" not in cache
    assert all(t in cache for t in ("A", "C", "D"))
    # the use order survives re-creation
    again = AuthCache(store, capacity=3)
    again.update("E", {"status": "Accepted"})
    assert sorted(again._entries) == ["A", "D", "E"]


def test_cache_evicts_invalid_and_expired_first():
    cache = AuthCache(FakeStore(), capacity=3)
    cache.update("OLD", {"status": "Accepted"})
    cache.update("BLOCKED", {"status": "Blocked"})
    cache.update("NEW", {"status": "Accepted"})
    cache.update("X", {"status": "Accepted"}, NOW)
    assert sorted(cache._entries) == ["NEW", "OLD", "X"]      # BLOCKED went, not OLD
    # without a "now" the date is not looked at: plain LRU (OLD)
    cache.update("LATE", {"status": "Accepted", "expiryDate": PAST})
    assert sorted(cache._entries) == ["LATE", "NEW", "X"]
    # with it, LATE is expired and goes before the older valid NEW
    cache.update("Y", {"status": "Accepted"}, NOW)
    assert sorted(cache._entries) == ["NEW", "X", "Y"]
    # the entry just written is never the victim, even if it is the only invalid one
    cache.update("Z", {"status": "Blocked"}, NOW)
    assert sorted(cache._entries) == ["X", "Y", "Z"]


def test_cache_capacity_shrunk_on_reload():
    store = FakeStore()
    cache = AuthCache(store, capacity=5)
    for tag in "ABCDE":
        cache.update(tag, {"status": "Accepted"})
    small = AuthCache(store, capacity=2)
    assert sorted(small._entries) == ["D", "E"]


def test_clear_cache():
    store = FakeStore()
    cache = AuthCache(store)
    cache.update("A", {"status": "Accepted"})
    cache.clear()
    assert len(cache) == 0 and cache.get("A") is None
    assert len(AuthCache(store)) == 0


def test_cache_ignores_damaged_store_data():
    store = FakeStore()
    store.save("auth_cache", {"tick": "x", "entries": [["A", {"status": "Accepted"}, 1],
                                                       ["B", {"nostatus": 1}, 2], "junk",
                                                       [1, {"status": "Accepted"}, 3]]})
    cache = AuthCache(store)
    assert len(cache) == 1 and cache.get("A") == {"status": "Accepted"}
    store.save("auth_cache", ["not", "a", "dict"])
    assert len(AuthCache(store)) == 0


# --- LocalList ----------------------------------------------------------------------------

def entries(*pairs):
    out = []
    for tag, status in pairs:
        item = {"idTag": tag}
        if status is not None:
            item["idTagInfo"] = {"status": status}
        out.append(item)
    return out


def test_local_list_full_replaces_and_persists():
    store = FakeStore()
    local = LocalList(store)
    assert local.version == 0 and len(local) == 0
    assert local.apply("Full", 5, entries(("A", "Accepted"), ("B", "Blocked"))) == "Accepted"
    assert local.version == 5 and len(local) == 2
    assert local.apply("Full", 6, entries(("C", "Accepted"))) == "Accepted"
    assert local.get("A") is None and local.get("c") == {"status": "Accepted"}
    again = LocalList(store)
    assert again.version == 6 and again.get("C") == {"status": "Accepted"} and len(again) == 1


def test_local_list_full_may_go_back_in_version_and_empty_reports_zero():
    local = LocalList(FakeStore())
    local.apply("Full", 9, entries(("A", "Accepted")))
    assert local.apply("Full", 2, entries(("A", "Accepted"))) == "Accepted"
    assert local.version == 2
    assert local.apply("Full", 7, None) == "Accepted"   # an empty Full list clears it
    assert len(local) == 0 and local.version == 0


def test_local_list_differential():
    local = LocalList(FakeStore())
    local.apply("Full", 1, entries(("A", "Accepted"), ("B", "Accepted")))
    assert local.apply("Differential", 2,
                       entries(("B", "Blocked"), ("C", "Accepted"), ("A", None), ("Z", None))) \
        == "Accepted"
    assert local.version == 2
    assert local.get("A") is None
    assert local.get("B") == {"status": "Blocked"}
    assert local.get("C") == {"status": "Accepted"}
    assert len(local) == 2


def test_local_list_version_mismatch():
    local = LocalList(FakeStore())
    assert local.apply("Differential", 0, entries(("A", "Accepted"))) == "VersionMismatch"
    local.apply("Full", 4, entries(("A", "Accepted")))
    assert local.apply("Differential", 4, entries(("B", "Accepted"))) == "VersionMismatch"
    assert local.apply("Differential", 3, entries(("B", "Accepted"))) == "VersionMismatch"
    assert local.get("B") is None and local.version == 4


def test_local_list_failed():
    local = LocalList(FakeStore())
    local.apply("Full", 1, entries(("A", "Accepted"), ("B", "Accepted")))
    # too many for the list
    assert local.apply("Full", 2, entries(("A", "Accepted"), ("B", "Accepted"), ("C", "Accepted")),
                       max_length=2) == "Failed"
    assert local.apply("Differential", 2, entries(("C", "Accepted")), max_length=2) == "Failed"
    # a differential that stays within the limit is fine
    assert local.apply("Differential", 2, entries(("C", "Accepted"), ("A", None)),
                       max_length=2) == "Accepted"
    # Full entries need idTagInfo; malformed entries, bad type or version fail
    assert local.apply("Full", 3, entries(("A", None))) == "Failed"
    assert local.apply("Full", 3, [{"idTagInfo": {"status": "Accepted"}}]) == "Failed"
    assert local.apply("Full", 3, [{"idTag": "A", "idTagInfo": {}}]) == "Failed"
    assert local.apply("Sideways", 3, []) == "Failed"
    assert local.apply("Full", -1, []) == "Failed"
    assert local.version == 2 and sorted(local._entries) == ["B", "C"]


def test_local_list_unsaved_update_is_not_applied():
    store = FakeStore()
    local = LocalList(store)
    local.apply("Full", 1, entries(("A", "Accepted")))
    store.fail = True
    assert local.apply("Full", 2, entries(("B", "Accepted"))) == "Failed"
    assert local.version == 1 and local.get("A") == {"status": "Accepted"}


def test_send_local_list_payloads_validate():
    # the shapes apply() consumes are those of the official SendLocalList.req
    payload = {"listVersion": 3, "updateType": "Differential",
               "localAuthorizationList": entries(("A", "Accepted"), ("B", None))}
    validate(ACTIONS["SendLocalList"][2], payload)
    local = LocalList(FakeStore())
    local.apply("Full", 2, entries(("B", "Accepted")))
    assert local.apply(payload["updateType"], payload["listVersion"],
                       payload["localAuthorizationList"]) == "Accepted"
    assert local.get("A") == {"status": "Accepted"} and local.get("B") is None


# --- groups -------------------------------------------------------------------------------

def test_same_group():
    g1 = {"status": "Accepted", "parentIdTag": "FLEET1"}
    assert same_group("CARD1", None, "card1", None)                  # same tag, any case
    assert same_group("CARD1", g1, "CARD2", {"status": "Accepted", "parentIdTag": "fleet1"})
    assert not same_group("CARD1", g1, "CARD2", {"status": "Accepted", "parentIdTag": "FLEET2"})
    assert not same_group("CARD1", g1, "CARD2", {"status": "Accepted"})
    assert not same_group("CARD1", {"status": "Accepted"}, "CARD2", {"status": "Accepted"})
    assert not same_group("CARD1", {"status": "Accepted", "parentIdTag": ""},
                          "CARD2", {"status": "Accepted", "parentIdTag": ""})
    assert Authorizer.same_group("A", g1, "B", g1) is True
    assert auth.normalize_tag("aBc") == "ABC"


# --- Local Auth List Management: limits per message, version 0, listed() -------------------

def test_local_list_message_limit_counts_the_message_entries():
    local = LocalList(FakeStore())
    three = entries(("A", "Accepted"), ("A", "Blocked"), ("B", "Accepted"))
    # duplicates still count: the limit is on the message (9.2 SendLocalListMaxLength)
    assert local.apply("Full", 1, three, max_message=2) == "Failed"
    assert local.apply("Differential", 1, three, max_message=2) == "Failed"
    assert len(local) == 0 and local.version == 0
    assert local.apply("Full", 1, three, max_message=3, max_length=2) == "Accepted"
    assert local.get("A") == {"status": "Blocked"}      # the last one wins


def test_local_list_version_mismatch_before_the_limits():
    local = LocalList(FakeStore())
    local.apply("Full", 4, entries(("A", "Accepted")))
    assert local.apply("Differential", 3, entries(("B", "Accepted"), ("C", "Accepted")),
                       max_message=1) == "VersionMismatch"


def test_local_list_non_empty_with_version_zero_fails():
    local = LocalList(FakeStore())
    assert local.apply("Full", 0, entries(("A", "Accepted"))) == "Failed"
    assert local.apply("Full", 0, []) == "Accepted" and local.version == 0


def test_listed_sees_the_enabled_list_only_and_leaves_the_cache_alone():
    a, cache, local, _, cfg = make(ALL_ON)
    cache.update("CACHED", {"status": "Accepted"})
    local.apply("Full", 1, [{"idTag": "LISTED", "idTagInfo": {"status": "Accepted",
                                                              "parentIdTag": "G"}}])
    assert a.listed("listed") == {"status": "Accepted", "parentIdTag": "G"}
    assert a.listed("CACHED") is None
    cfg["LocalAuthListEnabled"] = False
    assert a.listed("LISTED") is None
