"""The maintenance socket's requests that touch the engine: run on the main
loop's thread (firmware/maintenance_handlers.py brings them there).

    config_get {"keys": [...]} optional -> rows [{key, value, readonly, profile,
               write_only}]; write-only values (AuthorizationKey) are "<hidden>".
    config_set {"key", "value"} -> {"status": Accepted|Rejected|RebootRequired|
               NotSupported}, validated and applied exactly as ChangeConfiguration.
    journal    {"limit": 100} -> pending (queued messages, oldest first),
               set_aside, transactions (newest first), with counts.
    security_log_clear -> {"cleared": true}: the security log emptied, then the
               critical SecurityLogWasCleared event (journaled: the CSMS gets its
               SecurityEventNotification, after a power cut too; it is the new
               log's first line).
    security_log_show {"limit": 50} -> "records" (the newest, oldest first:
               timestamp, type, techInfo masked again, critical), "total", "path".
               Answered on the server's thread: it reads the file under the log's
               own lock and never touches the engine.
"""

import logging

from ocpp_core.catalogue import ACTIONS
from ocpp_core.config import HIDDEN
from ocpp_core.validation import first_violation

log = logging.getLogger("firmware.maintenance")

JOURNAL_LIMIT = 100
TX_SHOWN = 20
SECURITY_LOG_SHOWN = 50
CLEARED = "SecurityLogWasCleared"


def config_get(fw, request):
    keys = request.get("keys")
    if keys is not None and (not isinstance(keys, list)
                             or not all(isinstance(k, str) for k in keys)):
        return {"ok": False, "error": '"keys" must be a list of key names'}
    config = fw.cp.config
    rows, unknown = [], []
    wanted = set(keys) if keys else None
    for key, value, readonly, profile in config.describe():
        if wanted is not None and key not in wanted:
            continue
        write_only = bool(getattr(config.definition(key), "write_only", False))
        if write_only:
            value = HIDDEN if value else ""     # never the value itself
        rows.append({"key": key, "value": value, "readonly": readonly, "profile": profile,
                     "write_only": write_only})
    if wanted is not None:
        unknown = sorted(wanted - set(r["key"] for r in rows))
    return {"ok": True, "configuration": rows, "unknown": unknown,
            "pending_reboot": config.pending_reboot()}


def config_set(fw, request):
    payload = {"key": request.get("key"), "value": request.get("value")}
    bad = first_violation(ACTIONS["ChangeConfiguration"][2], payload)
    if bad is not None:
        return {"ok": False, "error": "not a valid ChangeConfiguration: %s" % bad.description()}
    cp = fw.cp
    # As after a CSMS's ChangeConfiguration: the change's effects (a new
    # password: a reconnect) take place once the answer is made.
    release = cp.events.hold()
    try:
        answer = cp.config.change_configuration(payload)
        log.info("ChangeConfiguration of %s from the maintenance socket: %s", payload["key"],
                 answer["status"])
        response = {"ok": True, "key": payload["key"], "status": answer["status"]}
        if answer["status"] == "Rejected":
            response["reason"] = _rejection_reason(cp.config, payload["key"], payload["value"])
    finally:
        release()
    return response


def _rejection_reason(config, key, text):
    """Why a value was rejected, in words (the value itself is never repeated)."""
    try:
        d = config.definition(key)
    except KeyError:
        return None
    if d.readonly:
        return "%s is read-only" % key
    try:
        why = config.why_invalid(key, text)
    except Exception:
        why = None
    if why:
        return why.replace(text, "<value>") if d.write_only else why
    return "the value is not valid for this key, or it could not be stored"


def _plain(obj, clock):
    """JSON-ready copy with the journal's stamps as RFC 3339 strings."""
    if isinstance(obj, dict):
        if set(obj) == {"w", "m", "b", "v"}:
            try:
                return clock.resolve_iso(obj)
            except Exception:
                return None
        return dict((k, _plain(v, clock)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return [_plain(v, clock) for v in obj]
    return obj


def _tx_view(rec, clock):
    view = dict((k, v) for k, v in rec.items() if k != "samples")
    view["stop_samples"] = len(rec.get("samples") or ())
    return _plain(view, clock)


def journal(fw, request):
    limit = request.get("limit", JOURNAL_LIMIT)
    if type(limit) is not int or not 1 <= limit <= 10000:
        return {"ok": False, "error": '"limit" must be a whole number from 1 to 10000'}
    cp = fw.cp
    journal, store, clock = cp.journal, cp.store, cp.clock
    pending = []
    for entry in journal.queued()[:limit]:
        view = _plain(entry, clock)
        rec = journal.get(entry.get("key")) if entry.get("key") else None
        view["transaction_id"] = rec["transaction_id"] if rec else None
        pending.append(view)
    set_aside = []
    for entry in journal.set_aside_entries()[-limit:]:
        set_aside.append({"name": "seq %s" % entry.get("seq"), "content": _plain(entry, clock)})
    corrupt = store.corrupt_names("")
    return {"ok": True,
            "pending_count": journal.pending_count(), "pending": pending,
            "in_flight": journal.in_flight,
            "set_aside_count": journal.set_aside_count(), "set_aside": set_aside,
            "transactions": [_tx_view(r, clock) for r in journal.recent(TX_SHOWN)],
            "corrupt_files": corrupt[:limit]}


def _security_log(fw):
    return getattr(fw, "security_log", None)


def security_log_clear(fw, request):
    security_log = _security_log(fw)
    if security_log is None:
        return {"ok": False, "error": "this firmware keeps no security log"}
    if not security_log.clear():
        return {"ok": False, "error": "the security log could not be cleared "
                                      "(the firmware log says why)"}
    log.warning("security log cleared from the maintenance socket")
    # Whitepaper ed. 3, appendix "Security Events": SecurityLogWasCleared is
    # critical; the engine journals it before emit() returns.
    fw.cp.events.emit("security_event", CLEARED, "cleared by a technician (maintenance socket)")
    return {"ok": True, "cleared": True}


def security_log_show(fw, request):
    limit = request.get("limit", SECURITY_LOG_SHOWN)
    if type(limit) is not int or not 1 <= limit <= 10000:
        return {"ok": False, "error": '"limit" must be a whole number from 1 to 10000'}
    security_log = _security_log(fw)
    if security_log is None:
        return {"ok": False, "error": "this firmware keeps no security log"}
    records, total = security_log.recent(limit)
    return {"ok": True, "records": records, "total": total, "path": security_log.path}
