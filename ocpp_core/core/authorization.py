"""Authorization (OCPP 1.6 sections 3.5, 4.1, 5.4): Authorize.req and its
answer, ClearCache, and who may stop whose transaction.

The decision rules themselves (cache, local list, offline behaviour) are the
model in ocpp_core/auth.py; this module is the exchange with the CSMS.
"""

from ocpp_core.auth import is_valid, same_group


class Authorize:
    """Authorize.req: decide locally when the rules allow, else ask the CSMS.
    done(accepted, idTagInfo) is called exactly once."""
    action = "Authorize"

    def __init__(self, cp):
        self.cp = cp

    def __call__(self, id_tag, done):
        cp = self.cp
        verdict, info = cp.auth.decide(id_tag, cp.online)
        if verdict != "ask":
            done(verdict == "accepted", info)
            return

        def on_result(payload):
            info = payload["idTagInfo"]
            learn(cp, id_tag, info)
            done(is_valid(info, cp.clock.now()), info)

        def on_error(code, description, details):
            # No answer: decide as if offline (LocalAuthorizeOffline etc.).
            verdict, info = cp.auth.decide(id_tag, False)
            done(verdict == "accepted", info)

        cp.rpc.call(self.action, {"idTag": id_tag}, on_result=on_result, on_error=on_error)


class ClearCache:
    """ClearCache (5.4): empties the authorization cache (not the local list)."""
    action = "ClearCache"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        if self.cp.auth.cache.clear() is False:     # not persisted: a reboot would undo it
            return {"status": "Rejected"}
        return {"status": "Accepted"}


def learn(cp, id_tag, id_tag_info):
    """Take in an idTagInfo the CSMS answered (Authorize, Start- and
    StopTransaction). When it disagrees with the Local Authorization List, the
    station reports errorCode LocalListConflict on connector 0 (3.5.3, 7.6; a
    warning: charging goes on, the CSMS's answer is the one used) until the
    list is next updated successfully (local_list_updated). Without the Local
    Auth List Management profile the list is not consulted
    (LocalAuthListEnabled is absent) and never conflicts."""
    if cp.auth.learn(id_tag, id_tag_info):
        cp.fault(0, "LocalListConflict", "CSMS and local list disagree on %s" % id_tag)


def local_list_updated(cp):
    """A SendLocalList was accepted: the CSMS has just said what the list is,
    so a LocalListConflict on connector 0 is over (it is raised again by the
    next answer that disagrees with the new list)."""
    cp.fault_cleared(0, "LocalListConflict")


def _group_info(cp, id_tag, info):
    """info, completed with the parentIdTag the (enabled) Local Authorization
    List gives id_tag when info has none: a CSMS answer without parentIdTag
    does not take a listed card out of its group (the list's entries are
    idTagInfo, parentIdTag included: 5.15, AuthorizationData)."""
    if info is not None and info.get("parentIdTag"):
        return info
    listed = cp.auth.listed(id_tag)
    if listed is None or not listed.get("parentIdTag"):
        return info
    out = dict(info) if info is not None else {"status": listed["status"]}
    out["parentIdTag"] = listed["parentIdTag"]
    return out


def transaction_stopped_by(cp, id_tag, info=None):
    """The connector whose running transaction this idTag may stop, or None.

    The same card always may (IdToken is case-insensitive). Another card of the
    same parentIdTag group may only while it is valid itself: info is its
    idTagInfo as decided (4.10: the stop is authorized like a start), and a
    Blocked or Expired card of the group does not end somebody else's session.
    """
    valid = info is not None and is_valid(info, cp.clock.now())
    if valid:
        info = _group_info(cp, id_tag, info)
    for c in cp.connectors.values():
        if not c.in_transaction:
            continue
        record = cp.journal.get(c.tx_key)
        if record is None:
            continue
        started_info = record.get("id_tag_info") or c.tx_auth_info
        if same_group(record["id_tag"], None, id_tag, None):
            return c
        if valid and same_group(record["id_tag"], _group_info(cp, record["id_tag"], started_info),
                                id_tag, info):
            return c
    return None
