"""`security-log show [--limit N]` and `security-log clear --yes`: the running
firmware's security log (DIR/logs/security.log, the OCA security whitepaper's
log of security events, what GetLog SecurityLog uploads).

show   the newest N events, oldest first: time, type, critical, techInfo (the
       firmware masks every secret it knows in techInfo before answering).
clear  empties the log; the firmware then raises SecurityLogWasCleared, a
       critical security event: the CSMS is told (SecurityEventNotification,
       queued like a transaction message) and it is the new log's first line.
       Asks for --yes: the events cannot be recovered.
Exit status 0, 1 the firmware refused (e.g. the log could not be cleared),
2 firmware not running, or clear without --yes.
"""

import sys

from tools.diag import client, render

TIMEOUT = 10.0
SHOWN = 50


def add_parser(subparsers):
    p = subparsers.add_parser(
        "security-log", help="show or clear the station's security log",
        description="Show the newest security events, or clear the security log (the CSMS "
                    "is told with the critical event SecurityLogWasCleared).")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    show = actions.add_parser("show", help="the newest security events (default %d)" % SHOWN)
    show.add_argument("--limit", type=int, default=SHOWN,
                      help="at most this many events (1..10000, default %d)" % SHOWN)
    clear = actions.add_parser("clear", help="empty the security log (raises "
                                             "SecurityLogWasCleared)")
    clear.add_argument("--yes", action="store_true",
                       help="really clear it: the events cannot be recovered")
    for q in (show, clear):
        q.add_argument("--timeout", type=float, default=TIMEOUT,
                       help="seconds to wait for the firmware (default %g)" % TIMEOUT)
    return p


def run(args, out):
    if args.action == "clear" and not args.yes:
        sys.stderr.write("security-log clear: the events cannot be recovered; "
                         "add --yes to clear the log\n")
        return 2
    # A refusal (Refused) is printed by tools.diag's main: exit status 1.
    with client.connect(args, timeout=args.timeout) as c:
        if args.action == "clear":
            answer = c.call("security_log_clear", wait=args.timeout)
        else:
            answer = c.call("security_log_show", wait=args.timeout,
                            limit=max(1, min(10000, args.limit)))
    answer.pop("id", None)
    if getattr(args, "json", False):
        render.emit_json(answer, out)
    elif args.action == "clear":
        out.write("security log cleared; SecurityLogWasCleared is queued for the CSMS\n")
    else:
        show(answer, out)
    return 0


def show(answer, out):
    records, total = answer.get("records") or [], answer.get("total", 0)
    out.write("Security log %s: %d event(s)%s\n"
              % (answer.get("path", ""), total,
                 ", the newest %d shown (oldest first)" % len(records)
                 if len(records) < total else ""))
    render.table([{"at": render.local_time(r.get("timestamp")), "type": r.get("type"),
                   "critical": "critical" if r.get("critical") else "",
                   "info": r.get("techInfo")} for r in records],
                 [("at", "time"), ("type", "event"), ("critical", ""), ("info", "techInfo")],
                 out)
