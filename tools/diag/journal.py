"""`journal [--export FILE]`: the transaction journal of the running firmware:
messages waiting for the CSMS (oldest first; the first goes next), messages set
aside after the CSMS refused them, and the recent transactions.

--export FILE writes everything as JSON (for the operator's back office).
Exit status 0, 1 when the export cannot be written, 2 firmware not running.
"""

import json
import os

from tools.diag import client, render

TIMEOUT = 15.0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "journal", help="queued and set-aside transaction messages, recent transactions",
        description="Show the transaction journal: messages waiting for the CSMS, messages "
                    "set aside, recent transactions. --export writes it all as JSON.")
    p.add_argument("--export", metavar="FILE", help="write the journal as JSON to FILE")
    p.add_argument("--limit", type=int, default=100,
                   help="at most this many queued and set-aside messages (default 100)")
    p.add_argument("--timeout", type=float, default=TIMEOUT,
                   help="seconds to wait for the firmware (default %g)" % TIMEOUT)
    return p


def fetch(c, limit=100, timeout=TIMEOUT):
    answer = c.call("journal", wait=timeout, limit=limit)
    answer.pop("ok", None)
    answer.pop("id", None)
    return answer


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, default=str)
        f.write("\n")
    os.replace(tmp, path)


def run(args, out):
    limit = max(1, min(10000, args.limit))
    with client.connect(args, timeout=args.timeout) as c:
        journal = fetch(c, limit, args.timeout)
    as_json = getattr(args, "json", False)
    if args.export:
        try:
            write_json(args.export, journal)
        except OSError as e:
            raise client.DiagError("cannot write %s: %s" % (args.export, e.strerror or e))
    if as_json:
        render.emit_json(dict(journal, exported_to=args.export), out)
        return 0
    show(journal, out)
    if args.export:
        out.write("\njournal written to %s\n" % args.export)
    return 0


def _stop(rec):
    return rec.get("stop") or {}


def show(j, out):
    out.write("Queued messages: %d%s\n" % (j.get("pending_count", 0),
                                          " (the first is sent next)" if j.get("pending_count")
                                          else ""))
    render.table([{"seq": e.get("seq"), "action": e.get("action"), "key": e.get("key"),
                   "tx": e.get("transaction_id"), "attempts": e.get("attempts"),
                   "connector": e.get("connector_id")} for e in j.get("pending") or []],
                 [("seq", "seq"), ("action", "action"), ("key", "tx key"),
                  ("tx", "transactionId"), ("attempts", "attempts"),
                  ("connector", "connector")], out)
    render.heading("Set aside (refused by the CSMS or unusable): %d"
                   % j.get("set_aside_count", 0), out)
    render.table([{"name": e.get("name"),
                   "action": (e.get("content") or {}).get("action")
                   if isinstance(e.get("content"), dict) else None,
                   "key": (e.get("content") or {}).get("key")
                   if isinstance(e.get("content"), dict) else None,
                   "attempts": (e.get("content") or {}).get("attempts")
                   if isinstance(e.get("content"), dict) else None}
                  for e in j.get("set_aside") or []],
                 [("name", "file"), ("action", "action"), ("key", "tx key"),
                  ("attempts", "attempts")], out)
    render.heading("Recent transactions (newest first)", out)
    render.table([{"key": t.get("key"), "tx": t.get("transaction_id"),
                   "connector": t.get("connector_id"), "tag": t.get("id_tag"),
                   "start": render.local_time(t.get("start")), "ms": t.get("meter_start"),
                   "stop": render.local_time(_stop(t).get("at")) if t.get("stop") else None,
                   "me": _stop(t).get("meter_stop"), "reason": _stop(t).get("reason"),
                   "state": "set aside" if t.get("set_aside") else
                   ("delivered" if t.get("stop_delivered") else
                    ("running" if not t.get("stop") else "stop queued"))}
                  for t in j.get("transactions") or []],
                 [("key", "key"), ("tx", "txId"), ("connector", "conn"), ("tag", "idTag"),
                  ("start", "started"), ("ms", "meterStart"), ("stop", "stopped"),
                  ("me", "meterStop"), ("reason", "reason"), ("state", "state")], out)
    if j.get("corrupt_files"):
        render.heading("Corrupt files moved aside: %d" % len(j["corrupt_files"]), out)
        for name in j["corrupt_files"]:
            out.write("  %s\n" % name)
