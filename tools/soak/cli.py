"""Command line of the soak benchmark. Exit status 0 when every invariant held and
the run did everything asked, 1 otherwise, 2 when it could not run."""

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile

from tools.soak import report
from tools.soak.checker import TX_ACTIONS, check
from tools.soak.chaos import KILL_INSTANTS, Soak


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m tools.soak",
                                description="Soak the firmware: power cuts, link drops, "
                                            "hostile frames; judge the CSMS's log.")
    p.add_argument("--hal", choices=("mock", "emulated"), default="mock",
                   help="the firmware's HAL (emulated: real drivers over bus emulations)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop starting new steps after this many seconds")
    p.add_argument("--kills", type=int, default=200, help="kill -9 of the firmware (200)")
    p.add_argument("--drops", type=int, default=100, help="link drops (100)")
    p.add_argument("--fuzz", type=int, default=10000, help="hostile frames (10000)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--tolerate-ack-window", action="store_true",
                   help="do not fail on a transaction message re-sent after a kill that came "
                        "within 0.5 s of its CALLRESULT, before the station's next CALL (it may "
                        "have died before writing the answer down; issue 15's known journal "
                        "duplicate); they are still counted and listed")
    p.add_argument("--instants", default=None, metavar="NAME,NAME",
                   help="kill only at these instants (default: all, in turn): "
                        + ", ".join(KILL_INSTANTS))
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    p.add_argument("--scratch", default=None, help="scratch folder (default: a temp dir)")
    args = p.parse_args(argv)
    for name in ("kills", "drops", "fuzz"):
        if getattr(args, name) < 0:
            p.error("--%s must not be negative" % name)
    if args.instants is not None:
        names = [n.strip() for n in args.instants.split(",") if n.strip()]
        unknown = [n for n in names if n not in KILL_INSTANTS]
        if unknown or not names:
            p.error("--instants: unknown instant %r; choose among: %s"
                    % (", ".join(unknown), ", ".join(KILL_INSTANTS)))
        args.instants = names
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    scratch = args.scratch or tempfile.mkdtemp(prefix="soak-")
    os.makedirs(scratch, exist_ok=True)
    if os.listdir(scratch):
        print("soak: error: %s is not empty (a soak starts from a fresh data dir)" % scratch,
              file=sys.stderr)
        return 2
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else \
        (lambda line: print(line, flush=True))
    say("soak: seed %d, hal %s, %d kills, %d drops, %d frames; logs in %s"
        % (args.seed, args.hal, args.kills, args.drops, args.fuzz, scratch))
    soak = Soak(random.Random(args.seed), scratch, args.kills, args.drops, args.fuzz,
                hal=args.hal, max_seconds=args.max_seconds, say=say,
                instants=args.instants or KILL_INSTANTS)
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)   # the firmware must not outlive us
    except ValueError:          # not the main thread
        previous = None
    try:
        soak.run()
    except RuntimeError as e:
        say("soak: error: %s" % e)
        return 2
    except KeyboardInterrupt:
        say("soak: interrupted after %.0f s; logs in %s" % (soak.elapsed(), scratch))
        return 130
    finally:
        soak.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    tolerate = TX_ACTIONS if args.tolerate_ack_window else ()
    verdict = check(soak.csms.log, soak.station.sent_calls(), tolerate=tolerate)
    f = report.figures(soak.figures(), verdict)
    with open(os.path.join(scratch, "csms-log.json"), "w") as out:
        json.dump(soak.csms.log, out)
    complete = f["completed"] and all(f[k] == soak.asked[k] for k in ("kills", "drops", "frames"))
    if args.json:
        doc = report.as_json(verdict, f)
        doc["last_line"] = report.last_line(verdict, f)
        doc["complete"] = complete
        print(json.dumps(doc, indent=1))
    else:
        for line in report.table(verdict, f):
            print(line)
        print(report.last_line(verdict, f))
    if not args.keep and not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if verdict.failed == 0 and complete else 1
