"""`bundle`: one .tar.gz for the support team, with no secret in it.

    pi-ocpp-diag-<charge point>-<UTC time>/
        README.txt              what is here, what was skipped and why
        versions.json           Python, OS, board, every installed package
        station.ini             the station config file, secrets redacted
        status.json             the firmware's state (as `status --json`)
        ocpp-configuration.json the OCPP keys (write-only values hidden)
        journal.json            queued / set-aside messages, recent transactions
        selftest.json           the self-test, without actuation
        logs.txt                journalctl -u pi-ocpp --since ... (if available)
        firmware.log            the tail of --log-file FILE (if given)

The parts and their redaction are firmware/diag_bundle.py's (the firmware
uploads the same bundle for GetDiagnostics). Secrets: in station.ini every
option whose name says password, secret, key or token is replaced by
<redacted>, user information in URLs too; every value redacted that way is
then also scrubbed from every other file, and so is any PEM private key. The firmware
never sends the AuthorizationKey or the basic-auth password over its socket.

With the firmware not running, the bundle still holds what can be had without
it (versions, config file, logs) and the exit status is 2; otherwise 0, or 1
when a part could not be collected. The path is printed last.
"""

import os
import re
import sys
import time

from firmware.diag_bundle import (LOG_TAIL_BYTES, REDACTED, SECRET_WORDS,  # noqa: F401 (API)
                                  Bundle, add_station_ini, journal_logs, log_tail, redact_ini,
                                  redact_urls, scrub, versions)
from tools.diag import client, render, selftest

UNIT = "pi-ocpp"
SINCE = "24 hours ago"


def add_parser(subparsers):
    p = subparsers.add_parser(
        "bundle", help="collect everything support needs in one .tar.gz (no secrets)",
        description="Collect versions, the station config (secrets redacted), the OCPP "
                    "configuration, the journal, the self-test and recent logs into one "
                    ".tar.gz and print its path.")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="the archive to write (default ./pi-ocpp-diag-<id>-<time>.tar.gz)")
    p.add_argument("--since", default=SINCE,
                   help='logs since this time, as journalctl takes it (default "%s")' % SINCE)
    p.add_argument("--unit", default=UNIT, help="the systemd unit (default %s)" % UNIT)
    p.add_argument("--log-file", metavar="FILE", help="also include the tail of this log file")
    p.add_argument("--timeout", type=float, default=15.0,
                   help="seconds allowed for each request to the firmware (default 15)")
    return p


def _config_file(args, status):
    path = getattr(args, "config", None)
    if path:
        return path
    return ((status or {}).get("station") or {}).get("config_file")


def run(args, out):
    progress = render.Progress(False if getattr(args, "json", False) else None)
    b = Bundle()
    status = None
    not_running = None
    failed = []
    try:
        progress("bundle: versions...")
        b.add_json("versions.json", versions())
        progress("bundle: asking the firmware...")
        try:
            with client.connect(args, timeout=args.timeout) as c:
                for name, cmd, ask in (
                        ("status.json", "status", lambda: c.call("status", wait=args.timeout)),
                        ("ocpp-configuration.json", "config_get",
                         lambda: c.call("config_get", wait=args.timeout)),
                        ("journal.json", "journal",
                         lambda: c.call("journal", wait=args.timeout, limit=1000)),
                        ("selftest.json", "selftest",
                         lambda: selftest.request(c, False, args.timeout))):
                    progress("bundle: %s..." % cmd)
                    try:
                        answer = ask()
                    except (client.Refused, client.NoAnswer) as e:
                        b.skipped.append((name, str(e)))
                        failed.append(name)
                        continue
                    answer.pop("ok", None)
                    if cmd == "status":
                        status = answer
                    b.add_json(name, answer)
        except (client.FirmwareNotRunning, client.NoAccess) as e:
            not_running = str(e)
            for name in ("status.json", "ocpp-configuration.json", "journal.json",
                         "selftest.json"):
                b.skipped.append((name, str(e)))
        progress("bundle: station config...")
        config_path = _config_file(args, status)
        if config_path:
            if not add_station_ini(b, config_path):
                failed.append("station.ini")
        else:
            b.skipped.append(("station.ini", "no config file (the firmware was started with "
                                             "flags only; --config FILE names one)"))
        progress("bundle: logs...")
        text, why = journal_logs(args.unit, args.since)
        if text is not None:
            b.files["logs.txt"] = text
        else:
            b.skipped.append(("logs.txt", why))
        if args.log_file:
            try:
                b.files["firmware.log"] = log_tail(args.log_file)
            except OSError as e:
                b.skipped.append(("firmware.log", "%s: %s" % (args.log_file, e.strerror or e)))
                failed.append("firmware.log")
        cp_id = ((status or {}).get("station") or {}).get("charge_point_id") or "station"
        cp_id = re.sub(r"[^A-Za-z0-9._-]", "_", cp_id)[:48]
        top = "pi-ocpp-diag-%s-%s" % (cp_id, time.strftime("%Y%m%d-%H%M%S", time.gmtime()))
        path = args.output or os.path.abspath(top + ".tar.gz")
        progress("bundle: writing %s..." % path)
        try:
            b.write(path, top)
        except OSError as e:
            raise client.DiagError("cannot write %s: %s" % (path, e.strerror or e))
    finally:
        progress.done()
    if getattr(args, "json", False):
        render.emit_json({"ok": not_running is None and not failed, "path": path,
                          "files": sorted(b.files), "skipped": [
                              {"file": f, "why": w} for f, w in b.skipped]}, out)
    else:
        if not_running:
            sys.stderr.write("diag: %s; the bundle has no firmware state\n" % not_running)
        for f, why in b.skipped:
            out.write("not included: %s (%s)\n" % (f, why))
        out.write("%s\n" % path)
    if not_running:
        return 2
    return 1 if failed else 0
