"""Output for people and for scripts: aligned tables on a terminal, JSON with
--json. Every function writes to the `out` text stream it is given (the
subcommand's `out`, normally sys.stdout); progress goes to stderr, and only
when stderr is a terminal, so that neither a pipe nor --json gets it."""

import json
import sys
import time

RESULT_WORDS = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skipped": "skip"}


def emit_json(obj, out):
    out.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def cell(value):
    if value is None:
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, float):
        return ("%.3f" % value).rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) or "-"
    return " ".join(str(value).split())


def table(rows, columns, out, indent="  "):
    """rows: dicts (or sequences); columns: [(key or index, header)]. The last
    column is not padded, so long text does not push the others apart."""
    if not rows:
        out.write(indent + "(none)\n")
        return
    texts = [[cell(r[k] if isinstance(r, dict) and k in r else
                   (r[k] if not isinstance(r, dict) else None)) for k, _ in columns]
             for r in rows]
    headers = [h for _, h in columns]
    widths = [max([len(headers[i])] + [len(t[i]) for t in texts]) for i in range(len(columns))]

    def line(parts):
        padded = [p.ljust(widths[i]) for i, p in enumerate(parts[:-1])] + [parts[-1]]
        return (indent + "  ".join(padded)).rstrip() + "\n"
    out.write(line(headers))
    for t in texts:
        out.write(line(t))


def pairs(items, out, indent="  "):
    """Aligned "name  value" lines; items: [(name, value)]."""
    items = [(k, v) for k, v in items if v is not None]
    if not items:
        return
    width = max(len(k) for k, _ in items)
    for k, v in items:
        out.write("%s%s  %s\n" % (indent, k.ljust(width), cell(v) if not isinstance(v, str) else v))


def heading(text, out):
    out.write("\n%s\n" % text)


def ago(seconds):
    """'12 s', '5 min', '3.2 h', '4 d' (a duration in words)."""
    if seconds is None:
        return "?"
    seconds = float(seconds)
    if seconds < 90:
        return "%.0f s" % seconds
    if seconds < 5400:
        return "%.0f min" % (seconds / 60)
    if seconds < 172800:
        return "%.1f h" % (seconds / 3600)
    return "%.0f d" % (seconds / 86400)


def local_time(iso):
    """An RFC 3339 time from the firmware shown as local 'YYYY-mm-dd HH:MM:SS'."""
    if not iso:
        return "-"
    try:
        from ocpp_core.timestamps import parse_rfc3339
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(parse_rfc3339(iso)))
    except Exception:
        return str(iso)


def _stderr_tty():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """One line on stderr, rewritten in place; silent unless stderr is a terminal."""

    def __init__(self, enabled=None):
        self.enabled = _stderr_tty() if enabled is None else enabled
        self._shown = False

    def __call__(self, text):
        if not self.enabled:
            return
        sys.stderr.write("\r\033[K" + text)
        sys.stderr.flush()
        self._shown = True

    def done(self):
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._shown = False


def result_word(result):
    return RESULT_WORDS.get(result, str(result))
