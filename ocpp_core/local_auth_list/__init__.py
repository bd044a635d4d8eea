"""The Local Auth List Management profile (OCPP 1.6 sections 3.5.3, 5.10,
5.15, 9.2): the CSMS reads the version of the Local Authorization List and
replaces (Full) or amends (Differential) it.

The list itself, its checks and its storage are ocpp_core.auth.LocalList; the
rules that use it (precedence over the cache, LocalPreAuthorize,
LocalAuthorizeOffline, expiry, parentIdTag groups, LocalListConflict) are
ocpp_core.auth.Authorizer and ocpp_core.core.authorization. This module is the
exchange with the CSMS.

Readings of the specification (each one tested in tests/test_octt_local_list.py):

- GetLocalListVersion (5.10): the version of the list, 0 while it is empty.
  -1 ("does not support Local Authorization Lists") is never answered here: a
  station with this profile supports them, whatever LocalAuthListEnabled says.
- LocalAuthListEnabled false does not make SendLocalList NotSupported: the
  list is still stored, updated and versioned (Accepted), it is only not used
  for authorization. 9.2 makes the key "whether the Local Authorization List
  is enabled", not whether it is supported (that is SupportedFeatureProfiles,
  3.5.3), and UpdateStatus NotSupported means "update of Local Authorization
  List is not supported by Charge Point". Keeping the list current while it is
  disabled means that enabling it again does not use a stale list, and the
  version the CSMS reads (5.10) stays the truth about what the station holds.
  So NotSupported is never answered by this profile either.
- A Differential with a listVersion equal to or lower than the current one is
  VersionMismatch (UpdateStatus: "version number in the request for a
  differential update is less or equal then version number of current list");
  a Full update may carry any version >= 0 (it replaces the list, 5.15).
- Failed: more entries in one message than SendLocalListMaxLength (9.2), a
  resulting list longer than LocalAuthListMaxLength (9.2), a Full entry without
  idTagInfo (3.5.3: a Full list is the new list; deleting needs a
  Differential), a negative listVersion, a non-empty list with version 0
  (5.10 reserves 0 for "empty"), a list that cannot be saved, or any other
  failure while updating. A failed update changes nothing: neither the entries
  nor the version (5.15: "the Central System SHOULD retry sending the full
  Local Authorization List", which needs the old list intact).
- Schema violations (a listVersion that is not an integer, an unknown
  updateType, an idTag over 20 characters...) never reach this code: the
  validator answers them with the CALLERROR the framing rules require.
- After every accepted update a LocalListConflict fault on connector 0 is
  cleared: the CSMS has just told the station what its list is.

Standard library only (portable to MicroPython).
"""

from ocpp_core.core.authorization import local_list_updated
from ocpp_core.log import get_logger

log = get_logger("ocpp.local_list")

NAME = "LocalAuthListManagement"

ACCEPTED = "Accepted"
FAILED = "Failed"


def _limit(cp, key):
    try:
        value = cp.config.get(key)
    except KeyError:
        return None
    return value if type(value) is int else None


class GetLocalListVersion:
    """GetLocalListVersion (5.10)."""
    action = "GetLocalListVersion"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        return {"listVersion": self.cp.auth.local_list.version}


class SendLocalList:
    """SendLocalList (5.15): Full or Differential, all or nothing."""
    action = "SendLocalList"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        cp = self.cp
        local_list = cp.auth.local_list
        entries = payload.get("localAuthorizationList")
        try:
            status = local_list.apply(payload.get("updateType"), payload.get("listVersion"),
                                      entries,
                                      max_length=_limit(cp, "LocalAuthListMaxLength"),
                                      max_message=_limit(cp, "SendLocalListMaxLength"))
        except Exception:
            # LocalList.apply changes nothing before its save succeeded: the old
            # list and version are still those in memory and on disk.
            log.exception("SendLocalList could not be applied")
            status = FAILED
        log.info("SendLocalList %s version %s with %d entries: %s", payload.get("updateType"),
                 payload.get("listVersion"), len(entries or ()), status)
        if status == ACCEPTED:
            local_list_updated(cp)
        return {"status": status}


OPERATIONS = (GetLocalListVersion, SendLocalList)


def operations(cp):
    return [op(cp) for op in OPERATIONS]
