"""python -m tools.diag [--socket PATH | --data-dir DIR | --config FILE] [--json] SUBCOMMAND

Each subcommand is a module with add_parser(subparsers) and run(args, out) ->
exit status (a parser may instead set_defaults(func=f), f(args, out)). A module
that cannot be imported leaves its subcommands in place, answering "not
available in this build" with exit status 2.
"""

import argparse
import importlib
import sys

from tools.diag import client
from tools.diag.client import DiagError

# (module, the subcommands it adds)
MODULES = (
    ("tools.diag.status", ("status",)),
    ("tools.diag.selftest", ("selftest",)),
    ("tools.diag.config", ("config",)),
    ("tools.diag.journal", ("journal",)),
    ("tools.diag.security_log", ("security-log",)),
    ("tools.diag.trace", ("trace",)),
    ("tools.diag.bundle", ("bundle",)),
    ("tools.diag.csms_check", ("csms",)),
    ("tools.diag.device_cmds", ("rfid", "meter", "modem")),
)

_COMMON = (
    (("--socket",), dict(metavar="PATH", help="the firmware's maintenance socket")),
    (("--data-dir",), dict(metavar="DIR", help="the firmware's data directory (its socket "
                                               "is DIR/run/maintenance.sock)")),
    (("--config",), dict(metavar="FILE", help="the station config (INI): its data_dir, and "
                                              "what the csms/device checks need")),
    (("--json",), dict(action="store_true", help="machine-readable output")),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, no usage dump.
        self.exit(2, "%s: error: %s (see --help)\n" % (self.prog, message))


def _unavailable(names, reason):
    def run(args, out):
        sys.stderr.write("%s: not available in this build (%s)\n" % (args.command, reason))
        return 2
    return run


def build_parser():
    p = _Parser(prog="python -m tools.diag",
                description="Find the faulty part of a charge point: ask the running "
                            "firmware, test its devices, collect a support bundle.",
                epilog="Exit status: 0 every check passed, 1 something failed, 2 the "
                       "diagnosis could not run (e.g. the firmware is not running).")
    for flags, kw in _COMMON:
        p.add_argument(*flags, **kw)
    sub = p.add_subparsers(dest="command", metavar="SUBCOMMAND")
    owners = {}
    for module_name, names in MODULES:
        before = set(sub.choices)
        try:
            module = importlib.import_module(module_name)
            module.add_parser(sub)
        except ImportError as e:
            reason = " ".join(str(e).split()) or type(e).__name__
            for name in names:
                if name in sub.choices:
                    continue
                q = sub.add_parser(name, help="(not available in this build)", add_help=False)
                q.set_defaults(func=_unavailable(names, reason), placeholder=True)
            continue
        for name in set(sub.choices) - before:
            owners[name] = module
    # The common options are accepted after the subcommand too.
    for name, q in sub.choices.items():
        for flags, kw in _COMMON:
            kw = dict(kw, default=argparse.SUPPRESS)
            try:
                q.add_argument(*flags, **kw)
            except argparse.ArgumentError:
                pass      # the subcommand has its own meaning for it
    return p, owners


def main(argv=None, out=None):
    out = out or sys.stdout
    parser, owners = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "placeholder", False):
        parser.error("unrecognized arguments: %s" % " ".join(unknown))
    if not args.command:
        parser.print_help(out)
        return 2
    if not getattr(args, "socket", None):
        # Resolved once for every subcommand (the device ones read args.socket).
        try:
            args.socket = client.resolve(args)
        except DiagError:
            pass      # an unreadable --config: the subcommand says so itself
    func = getattr(args, "func", None)
    if func is None:
        func = owners[args.command].run
    try:
        return int(func(args, out) or 0)
    except DiagError as e:
        if getattr(args, "json", False):
            import json
            out.write(json.dumps({"ok": False, "error": str(e)}) + "\n")
        sys.stderr.write("diag: %s\n" % e)
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
