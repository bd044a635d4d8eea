"""Reading a data dir written by the first journal (one file per record and per
queued message), once, so that ocpp_core/journal.py can carry it forward into
its log. Nothing here writes: the journal writes the log, then deletes these
files (a crash in between reads them again and the log wins).

    tx/<key>          one transaction record (8-digit key)
    queue/<seq>       one queued message (10-digit seq), strictly FIFO
    setaside/<seq>    a message given up on; setaside/tx/<key> an unusable record

Files the Store found corrupt were already moved aside by it (<name>.corrupt)
and stay there for the technician; their names still count for the numbering
(keys and sequence numbers are never reused).
"""

from ocpp_core.log import get_logger

log = get_logger("ocpp.journal")

TX = "tx/"
QUEUE = "queue/"
ASIDE = "setaside/"
ASIDE_TX = "setaside/tx/"


def _digits(text):
    return isinstance(text, str) and text != "" and all(c in "0123456789" for c in text)


def files(store):
    """Every file of the old layout still there (what to delete afterwards)."""
    return store.names(TX) + store.names(QUEUE) + store.names(ASIDE)


def read(store, record_ok, entry_ok):
    """The old layout's content: {"tx": {key: rec}, "queue": [entry...] (FIFO),
    "aside": [entry...], "aside_count": n, "top_key": k, "top_seq": s}."""
    out = {"tx": {}, "queue": [], "aside": [], "aside_count": 0, "top_key": 0, "top_seq": 0}
    top_key = top_seq = 0
    for name in store.names(TX):
        key = name[len(TX):]
        if not _digits(key):
            continue
        top_key = max(top_key, int(key))
        rec = store.load(name)
        if rec is None:
            continue  # corrupt: the Store logged it and moved it aside
        if not record_ok(rec, key):
            log.error("transaction record %s is unusable; set aside", name)
            out["aside_count"] += 1
            continue
        out["tx"][key] = rec
    for name in store.corrupt_names(TX) + store.names(ASIDE_TX):
        head = name.rpartition("/")[2].split(".")[0]
        if _digits(head):
            top_key = max(top_key, int(head))
    for name in store.names(ASIDE):
        tail = name[len(ASIDE):]
        if _digits(tail):
            top_seq = max(top_seq, int(tail))
            out["aside_count"] += 1
            entry = store.load(name)
            if isinstance(entry, dict):
                out["aside"].append(entry)
    for name in store.corrupt_names(QUEUE):
        head = name.rpartition("/")[2].split(".")[0]
        if _digits(head):
            top_seq = max(top_seq, int(head))
    for name in store.names(QUEUE):
        tail = name[len(QUEUE):]
        if not _digits(tail):
            log.warning("ignored a stray file in the queue: %s", name)
            continue
        seq = int(tail)
        top_seq = max(top_seq, seq)
        entry = store.load(name)
        if entry is None:
            continue
        if not entry_ok(entry, seq):
            log.error("queued message %s is unusable; set aside", name)
            out["aside"].append(entry if isinstance(entry, dict) else {"seq": seq})
            out["aside_count"] += 1
            continue
        key = entry.get("key")
        if _digits(key):
            top_key = max(top_key, int(key))
        out["queue"].append(entry)
    out["top_key"] = top_key
    out["top_seq"] = top_seq
    return out
