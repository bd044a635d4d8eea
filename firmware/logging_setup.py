"""Logging a technician can read: on a console with local time, under systemd
with syslog priority prefixes that journald understands (no double timestamps)."""

import logging
import os
import sys

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    def format(self, record):
        text = logging.Formatter.format(self, record)
        prio = _PRIORITY.get(record.levelno, 6)
        # One journal entry per line; continuation lines keep the priority.
        return "\n".join("<%d>%s" % (prio, line) for line in text.splitlines())


def setup(level="INFO", stream=None):
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        fmt = logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s",
                                "%H:%M:%S")
        handler.setFormatter(fmt)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
