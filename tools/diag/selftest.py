"""`selftest [--actuate]`: every device of the running firmware, pass or fail,
with the OCPP errorCode it reports (or would) and what to check.

Without --actuate nothing moves. Every device is read afresh for the
self-test, on its own worker thread in the firmware (firmware/maintenance_probes.py),
not judged on its last cached value: a device that does not answer within its
timeout fails with its OCPP errorCode and a hint. Each check states the age of
what it judged (column "age"). The verdicts are tools/diag/checks.py's. With
--actuate each contactor (and cable lock) is closed and opened once and its
feedback read back - only while no EV is connected and no transaction runs
(else "skipped: EV connected").
The cable carries mains voltage for about half a second during the cycle.

Exit status: 0 no check failed (warn and skip do not fail), 1 a check failed,
2 the firmware is not running.
"""

from tools.diag import checks, client, render

TIMEOUT = 15.0
ACTUATE_TIMEOUT = 40.0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "selftest", help="test every device: pass/fail, errorCode, what to check",
        description="Test every device through the running firmware: card reader, modem, "
                    "meters, pilots, contactors, locks, plus the CSMS link, registration, "
                    "clock and journal. Nothing moves unless --actuate is given.")
    p.add_argument("--actuate", action="store_true",
                   help="also cycle each contactor and cable lock (only with no EV connected "
                        "and no transaction; mains on the cable for ~0.5 s)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds to wait for the firmware (default %g, %g with --actuate)"
                        % (TIMEOUT, ACTUATE_TIMEOUT))
    return p


def request(c, actuate, timeout=None):
    """The self-test's result: the firmware's facts, judged here."""
    timeout = timeout or (ACTUATE_TIMEOUT if actuate else TIMEOUT)
    return checks.selftest_result(c.call("selftest", wait=timeout, actuate=bool(actuate)))


def run(args, out):
    progress = render.Progress(False if getattr(args, "json", False) else None)
    timeout = args.timeout or (ACTUATE_TIMEOUT if args.actuate else TIMEOUT)
    with client.connect(args, timeout=timeout) as c:
        progress("self-test: %s..." % ("cycling contactors and locks" if args.actuate
                                       else "asking the firmware"))
        try:
            result = request(c, args.actuate, timeout)
        finally:
            progress.done()
    checks = result.get("checks") or []
    failed = [ch for ch in checks if ch.get("result") == "fail"]
    if getattr(args, "json", False):
        render.emit_json(result, out)
    else:
        show(result, out)
    return 1 if failed else 0


def show(result, out):
    checks = result.get("checks") or []
    out.write("Self-test%s\n" % ("" if result.get("actuate") else
                                 " (nothing actuated; --actuate cycles contactors and locks)"))
    render.table([{"name": ch.get("name"), "result": render.result_word(ch.get("result")),
                   "code": ch.get("error_code") if ch.get("error_code") != "NoError" else None,
                   "age": None if ch.get("age_s") is None else "%.1f s" % ch["age_s"],
                   "detail": ch.get("detail")} for ch in checks],
                 [("name", "check"), ("result", "result"), ("code", "errorCode"),
                  ("age", "age"), ("detail", "detail")], out)
    failed = [ch for ch in checks if ch.get("result") in ("fail", "warn") and ch.get("hint")]
    if failed:
        render.heading("What to check", out)
        for ch in failed:
            out.write("  %s: %s\n" % (ch.get("name"), ch.get("hint")))
    n_fail = sum(1 for ch in checks if ch.get("result") == "fail")
    out.write("\n%s\n" % ("All %d checks passed." % len(checks) if not n_fail else
                          "%d of %d checks FAILED." % (n_fail, len(checks))))
