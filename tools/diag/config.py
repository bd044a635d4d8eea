"""`config`: the OCPP configuration of the running firmware.

    config [show] [KEY ...]    every key (or those named): value, read-only or not
    config set KEY VALUE       change a key exactly as a CSMS's ChangeConfiguration
                               would (same validation); VALUE "-" reads it from
                               stdin (hidden on a terminal), so that a password
                               does not end up in the shell history

Write-only keys (AuthorizationKey) are shown as "(set)" or "(not set)", never
their value; the station's basic-auth password is not part of the OCPP
configuration and is never asked for.

Exit status: show 0 (1 when a named key is unknown); set 0 for Accepted or
RebootRequired, 1 for Rejected or NotSupported; 2 firmware not running.
"""

import sys

from tools.diag import client, render

TIMEOUT = 10.0
OK_STATUSES = ("Accepted", "RebootRequired")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "config", help="show or change the OCPP configuration",
        description="Show the OCPP configuration keys of the running firmware, or change "
                    "one (validated exactly as a ChangeConfiguration from the CSMS).")
    p.add_argument("--timeout", type=float, default=TIMEOUT,
                   help="seconds to wait for the firmware (default %g)" % TIMEOUT)
    sub = p.add_subparsers(dest="config_action", metavar="ACTION")
    show = sub.add_parser("show", help="list keys (all, or those named)")
    show.add_argument("keys", nargs="*", metavar="KEY")
    setp = sub.add_parser("set", help="change a key: config set KEY VALUE")
    setp.add_argument("key", metavar="KEY")
    setp.add_argument("value", metavar="VALUE", help='the new value; "-" reads it from stdin')
    return p


def _read_value():
    if sys.stdin.isatty():
        import getpass
        return getpass.getpass("value: ")
    return sys.stdin.readline().rstrip("\r\n")


def run(args, out):
    action = getattr(args, "config_action", None) or "show"
    as_json = getattr(args, "json", False)
    with client.connect(args, timeout=args.timeout) as c:
        if action == "set":
            value = _read_value() if args.value == "-" else args.value
            answer = c.call("config_set", wait=args.timeout, key=args.key, value=value)
            if as_json:
                render.emit_json({"ok": True, "key": answer.get("key"),
                                  "status": answer.get("status"),
                                  "reason": answer.get("reason")}, out)
            else:
                status = answer.get("status")
                note = {"RebootRequired": " (in effect after a restart)",
                        "Rejected": " (%s)" % (answer.get("reason") or "the value is not valid "
                                               "for this key"),
                        "NotSupported": " (no such key on this station)"}.get(status, "")
                out.write("%s: %s%s\n" % (args.key, status, note))
            return 0 if answer.get("status") in OK_STATUSES else 1
        keys = list(getattr(args, "keys", None) or [])
        fields = {"keys": keys} if keys else {}
        answer = c.call("config_get", wait=args.timeout, **fields)
    rows = answer.get("configuration") or []
    unknown = answer.get("unknown") or []
    if as_json:
        render.emit_json({"ok": True, "configuration": rows, "unknown": unknown,
                          "pending_reboot": answer.get("pending_reboot") or []}, out)
    else:
        shown = []
        for r in rows:
            value = r.get("value")
            if r.get("write_only"):
                value = "(set)" if value else "(not set)"
            shown.append({"key": r.get("key"), "access": "read-only" if r.get("readonly")
                          else ("write-only" if r.get("write_only") else "read-write"),
                          "value": value if value != "" else '""'})
        render.table(shown, [("key", "key"), ("access", "access"), ("value", "value")], out)
        if answer.get("pending_reboot"):
            out.write("\nchanged, in effect after a restart: %s\n"
                      % ", ".join(answer["pending_reboot"]))
        for key in unknown:
            out.write("%s: no such key on this station\n" % key)
    return 1 if unknown else 0
