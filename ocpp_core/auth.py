"""Authorization of idTags: the Authorization Cache, the Local Authorization
List and the decision whether a presented idTag may charge (OCPP 1.6 sections
3.5 "Local Authorization & Offline Behaviour", 5.4 ClearCache, 5.10
GetLocalListVersion, 5.15 SendLocalList).

Decisions taken where the specification leaves room (each one tested):

- idTags are compared case-insensitively: IdToken (section 7.28) "is a case
  insensitive string". Lookups, stored keys and group checks use the upper-case
  form of the tag (normalize_tag); the tag as read is what goes on the wire.
- An expiryDate that cannot be parsed counts as passed (fail safe): a date
  that cannot be read cannot prove the entry is still valid. Online that only
  costs an Authorize.req; offline the card is refused. Incoming messages are
  schema-checked, so only a damaged file can hold such a date.
- An entry is expired from its expiryDate on (now >= expiryDate). Only an
  "Accepted" entry turns into "Expired"; Blocked/Invalid/ConcurrentTx stay as
  they are (they are not valid either way).
- Config keys that are absent (config_get raises KeyError) count as False.
- LocalAuthorizeOffline false: offline, a valid local entry does not
  authorize by itself; the tag is then treated like an unknown one, so
  AllowOfflineTxForUnknownId decides. An invalid entry is rejected either way
  (3.5.4: known ids that are not Accepted MUST be rejected).
- A rejected tag for which no usable entry exists is reported with
  {"status": "Invalid"} ("Identifier is unknown. Not allowed for charging").
- The cache learns every idTagInfo the central system answers (3.5.1:
  "successfully" means a response was received), Blocked and Invalid
  included, except "ConcurrentTx": that says the tag is busy in another
  transaction, not what the card is worth, so the previous entry is kept.
- Tags in the (enabled) Local Authorization List are never cached (3.5.3) and
  a stale cache entry for them is dropped; learn() reports when the central
  system's answer disagrees with the list, so the caller can send a
  StatusNotification with errorCode LocalListConflict.
- Cache eviction beyond capacity: first the least recently used entry that
  is not valid (not Accepted, or past its expiryDate), then the least recently
  used valid one. The entry just written is never the victim: the newest word
  of the central system is the most relevant (and an evicted Blocked entry
  would let the card through offline with AllowOfflineTxForUnknownId).
  A lookup counts as a use; the use order is saved with the next write (a
  lookup alone does not write to flash).
- GetLocalListVersion: an empty list reports version 0 (5.10: "0 (zero) SHALL
  be used to indicate that the local authorization list is empty"), and a
  Differential update is compared with that reported version.
- SendLocalList: a Full entry without idTagInfo, a negative version or a
  malformed entry -> "Failed"; more entries in the message than
  SendLocalListMaxLength (9.2: "maximum number of identifications that can be
  send in a single SendLocalList.req") -> "Failed"; a resulting list longer
  than LocalAuthListMaxLength (9.2: the most "that can be stored") ->
  "Failed"; a non-empty list with version 0 -> "Failed" (5.10 reserves 0 for
  the empty list: GetLocalListVersion would misreport it); a Differential
  whose version is not above the current one -> "VersionMismatch" (UpdateStatus
  VersionMismatch: "version number in the request for a differential update is
  less or equal then version number of current list"), checked before the
  lengths. A Full update may go back in version (it replaces the list).
  Duplicate idTags in one message: the last one wins. Every check is made on a
  copy before anything is written: a failed update leaves the old list and
  version untouched. A list that cannot be saved is not applied ("Failed").
- The list is one file written by Store.save (temp file, fsync, rename): after
  a crash in the middle of an update the station holds the old list or the new
  one, never a mix, and the version always belongs to its entries.

Standard library only (portable to MicroPython): plain classes and dicts.
"""

from ocpp_core.timestamps import parse_rfc3339

ACCEPTED = "Accepted"
EXPIRED = "Expired"
INVALID = "Invalid"
CONCURRENT_TX = "ConcurrentTx"
STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")

CACHE_STORE_NAME = "auth_cache"
LIST_STORE_NAME = "local_list"

FULL = "Full"
DIFFERENTIAL = "Differential"


def normalize_tag(id_tag):
    """The key under which an idTag is stored and compared (case-insensitive)."""
    return id_tag.upper()


def _clean_info(info):
    """A copy of an idTagInfo holding only its three fields, or None if it is
    not one (no string status)."""
    if type(info) is not dict or type(info.get("status")) is not str:
        return None
    out = {"status": info["status"]}
    for name in ("expiryDate", "parentIdTag"):
        value = info.get(name)
        if type(value) is str:
            out[name] = value
    return out


def expiry_passed(id_tag_info, now_epoch):
    """True when the entry's expiryDate is at or before now_epoch. No date or
    no now -> False; an unparsable date -> True (see the module docstring)."""
    expiry = id_tag_info.get("expiryDate")
    if expiry is None or now_epoch is None:
        return False
    try:
        return now_epoch >= parse_rfc3339(expiry)
    except ValueError:
        return True


def effective_status(id_tag_info, now_epoch):
    """The status an idTagInfo has at now_epoch: "Expired" for an Accepted
    entry whose expiryDate has passed, else its own status (None for None)."""
    if id_tag_info is None:
        return None
    status = id_tag_info.get("status")
    if status == ACCEPTED and expiry_passed(id_tag_info, now_epoch):
        return EXPIRED
    return status


def is_valid(id_tag_info, now_epoch):
    return effective_status(id_tag_info, now_epoch) == ACCEPTED


def authorization_decision(entry, online, local_pre_authorize, local_authorize_offline,
                           allow_offline_unknown, now_epoch):
    """The pure core of Authorizer.decide.

    entry: the idTagInfo known locally for the tag (local list before cache),
    or None. Returns ("accepted", info), ("rejected", info) or ("ask", None);
    info is a fresh dict.
    """
    status = effective_status(entry, now_epoch)
    valid = status == ACCEPTED
    if online:
        if valid and local_pre_authorize:
            return "accepted", dict(entry)
        return "ask", None  # unknown, invalid or expired: the central system decides
    if entry is not None:
        if not valid:
            info = dict(entry)
            info["status"] = status
            return "rejected", info
        if local_authorize_offline:
            return "accepted", dict(entry)
    # Offline and not authorized by a local entry: the unknown-id rule (3.5.4).
    if allow_offline_unknown:
        return "accepted", (dict(entry) if entry is not None else {"status": ACCEPTED})
    return "rejected", {"status": INVALID}


def same_group(tag_a, info_a, tag_b, info_b):
    """True when tag_b may act for tag_a (e.g. stop its transaction): the same
    tag (case-insensitive), or both with the same non-empty parentIdTag."""
    if tag_a is not None and tag_b is not None and normalize_tag(tag_a) == normalize_tag(tag_b):
        return True
    parent_a = info_a.get("parentIdTag") if info_a else None
    parent_b = info_b.get("parentIdTag") if info_b else None
    return bool(parent_a) and bool(parent_b) and normalize_tag(parent_a) == normalize_tag(parent_b)


class AuthCache:
    """idTag -> idTagInfo learnt from the central system, persisted as
    "auth_cache": {"tick": n, "entries": [[TAG, idTagInfo, last_use], ...]}."""

    def __init__(self, store, capacity=1000):
        if capacity < 1:
            raise ValueError("an authorization cache holds at least one entry")
        self._store = store
        self.capacity = capacity
        self._entries = {}   # normalized tag -> idTagInfo
        self._used = {}      # normalized tag -> tick of the last use
        self._tick = 0
        self._load()

    def _load(self):
        data = self._store.load(CACHE_STORE_NAME, None)
        if type(data) is not dict or type(data.get("entries")) is not list:
            return
        tick = data.get("tick")
        self._tick = tick if type(tick) is int else 0
        for row in data["entries"]:
            if type(row) is not list or len(row) != 3 or type(row[0]) is not str \
                    or type(row[2]) is not int:
                continue
            info = _clean_info(row[1])
            if info is None:
                continue
            self._entries[row[0]] = info
            self._used[row[0]] = row[2]
            if row[2] > self._tick:
                self._tick = row[2]
        while len(self._entries) > self.capacity:
            self._evict(None, None)

    def _save(self):
        rows = [[key, self._entries[key], self._used[key]] for key in self._entries]
        rows.sort(key=lambda row: row[2])
        try:
            self._store.save(CACHE_STORE_NAME, {"tick": self._tick, "entries": rows})
        except OSError:     # a failing data dir (the store reports it): a cache may lag
            return False
        return True

    def _touch(self, key):
        self._tick += 1
        self._used[key] = self._tick

    def _evict(self, keep, now_epoch):
        victim = None
        victim_valid = True
        for key in self._entries:
            if key == keep:
                continue
            valid = is_valid(self._entries[key], now_epoch)
            if victim is None or (victim_valid and not valid) or \
                    (valid == victim_valid and self._used[key] < self._used[victim]):
                victim, victim_valid = key, valid
        del self._entries[victim]
        del self._used[victim]

    def get(self, id_tag):
        """A copy of the cached idTagInfo, or None. Counts as a use (LRU)."""
        key = normalize_tag(id_tag)
        info = self._entries.get(key)
        if info is None:
            return None
        self._touch(key)
        return dict(info)

    def __contains__(self, id_tag):
        return normalize_tag(id_tag) in self._entries

    def update(self, id_tag, id_tag_info, now_epoch=None):
        """Store the central system's idTagInfo for id_tag and save. now_epoch,
        when given, lets eviction see entries that expired by date."""
        info = _clean_info(id_tag_info)
        if info is None:
            raise ValueError("not an idTagInfo: %r" % (id_tag_info,))
        key = normalize_tag(id_tag)
        unchanged = self._entries.get(key) == info
        self._entries[key] = info
        self._touch(key)
        if unchanged:
            return      # the usage order is saved with the next real change: no flash write
        while len(self._entries) > self.capacity:
            self._evict(key, now_epoch)
        self._save()

    def discard(self, id_tag):
        """Remove id_tag if cached (saved only when something was removed)."""
        key = normalize_tag(id_tag)
        if key in self._entries:
            del self._entries[key]
            del self._used[key]
            self._save()

    def clear(self):
        """ClearCache.req: forget every entry (persisted)."""
        self._entries = {}
        self._used = {}
        self._tick = 0
        return self._save()

    def __len__(self):
        return len(self._entries)


def _parse_list_entries(entries):
    """SendLocalList's localAuthorizationList -> [(TAG, idTagInfo or None)],
    or None when an entry is malformed."""
    out = []
    for item in entries or ():
        if type(item) is not dict or type(item.get("idTag")) is not str:
            return None
        if "idTagInfo" in item:
            info = _clean_info(item["idTagInfo"])
            if info is None:
                return None
        else:
            info = None
        out.append((normalize_tag(item["idTag"]), info))
    return out


class LocalList:
    """The Local Authorization List, managed by the central system only;
    persisted as "local_list": {"version": n, "entries": {TAG: idTagInfo}}."""

    def __init__(self, store):
        self._store = store
        self._version = 0
        self._entries = {}
        data = store.load(LIST_STORE_NAME, None)
        if type(data) is dict and type(data.get("version")) is int \
                and type(data.get("entries")) is dict:
            for key, value in data["entries"].items():
                info = _clean_info(value)
                if type(key) is str and info is not None:
                    self._entries[key] = info
            self._version = data["version"]

    @property
    def version(self):
        """GetLocalListVersion.conf listVersion: 0 while the list is empty."""
        return self._version if self._entries else 0

    def get(self, id_tag):
        info = self._entries.get(normalize_tag(id_tag))
        return dict(info) if info is not None else None

    def __contains__(self, id_tag):
        return normalize_tag(id_tag) in self._entries

    def __len__(self):
        return len(self._entries)

    def apply(self, update_type, version, entries, max_length=None, max_message=None):
        """SendLocalList.req -> SendLocalList.conf status: "Accepted",
        "Failed" or "VersionMismatch". entries: the localAuthorizationList
        (list of {"idTag", "idTagInfo"?}) or None. max_length: the most
        entries the list may hold (LocalAuthListMaxLength), None = no limit.
        max_message: the most entries one message may carry
        (SendLocalListMaxLength), None = no limit."""
        if update_type not in (FULL, DIFFERENTIAL) or type(version) is not int or version < 0:
            return "Failed"
        if entries is not None and type(entries) is not list:
            return "Failed"
        if update_type == DIFFERENTIAL and version <= self.version:
            return "VersionMismatch"
        if max_message is not None and entries is not None and len(entries) > max_message:
            return "Failed"
        parsed = _parse_list_entries(entries)
        if parsed is None:
            return "Failed"
        if update_type == FULL:
            new_entries = {}
            for key, info in parsed:
                if info is None:  # idTagInfo is required in a Full update
                    return "Failed"
                new_entries[key] = info
        else:
            new_entries = dict(self._entries)
            for key, info in parsed:
                if info is None:
                    new_entries.pop(key, None)
                else:
                    new_entries[key] = info
        if max_length is not None and len(new_entries) > max_length:
            return "Failed"
        if new_entries and version == 0:
            return "Failed"
        try:
            self._store.save(LIST_STORE_NAME, {"version": version, "entries": new_entries})
        except OSError:
            return "Failed"
        self._entries = new_entries
        self._version = version
        return "Accepted"


def _truthy(value):
    if type(value) is str:
        return value.strip().lower() == "true"
    return bool(value)


class Authorizer:
    """Decides locally what can be decided locally; learns from the central
    system's answers. config_get(key) returns typed configuration values and
    raises KeyError for a key the station does not have."""

    def __init__(self, config_get, cache, local_list, clock):
        self._config_get = config_get
        self.cache = cache
        self.local_list = local_list
        self.clock = clock

    def _flag(self, key):
        try:
            return _truthy(self._config_get(key))
        except KeyError:
            return False

    def lookup(self, id_tag):
        """(source, idTagInfo) with source "list", "cache" or None: the local
        list (if enabled) before the cache (if enabled), 3.5.3."""
        if self.local_list is not None and self._flag("LocalAuthListEnabled"):
            info = self.local_list.get(id_tag)
            if info is not None:
                return "list", info
        if self.cache is not None and self._flag("AuthorizationCacheEnabled"):
            info = self.cache.get(id_tag)
            if info is not None:
                return "cache", info
        return None, None

    def listed(self, id_tag):
        """The Local Authorization List's idTagInfo for id_tag while the list
        is enabled, else None (the cache is not consulted, nor touched)."""
        if self.local_list is not None and self._flag("LocalAuthListEnabled"):
            return self.local_list.get(id_tag)
        return None

    def decide(self, id_tag, online):
        """("accepted", idTagInfo) | ("rejected", idTagInfo) | ("ask", None),
        "ask" meaning: send Authorize.req and let the central system decide."""
        _, entry = self.lookup(id_tag)
        return authorization_decision(
            entry, online,
            self._flag("LocalPreAuthorize"),
            self._flag("LocalAuthorizeOffline"),
            self._flag("AllowOfflineTxForUnknownId"),
            self.clock.now())

    def learn(self, id_tag, id_tag_info):
        """Take in the idTagInfo of an Authorize.conf, StartTransaction.conf or
        StopTransaction.conf. Returns True when it conflicts with the local list
        (the caller reports LocalListConflict), else False."""
        info = _clean_info(id_tag_info)
        if info is None:
            return False
        now = self.clock.now()
        cache_on = self.cache is not None and self._flag("AuthorizationCacheEnabled")
        if self.local_list is not None and self._flag("LocalAuthListEnabled"):
            listed = self.local_list.get(id_tag)
            if listed is not None:
                if self.cache is not None:
                    try:
                        self.cache.discard(id_tag)
                    except OSError:
                        pass
                return info["status"] != CONCURRENT_TX and \
                    effective_status(info, now) != effective_status(listed, now)
        if cache_on and info["status"] != CONCURRENT_TX:
            try:
                self.cache.update(id_tag, info, now)
            except OSError:
                pass  # the cache is an optimisation: a failed write must not stop charging
        return False

    same_group = staticmethod(same_group)
