"""The firmware under soak: one subprocess per life (a kill -9 ends a life, the
restart on the same data dir begins the next), each life's log in a file of its
own, and the bench socket of the current life.

The process is tools.bench_firmware.FirmwareProcess (`python -m firmware --hal
mock|emulated ... --bench-port 0`); a Reset re-executes it in place (same pid,
same log), with a new bench port, so the port is read from the log each time.
"""

import json
import os
import re
import time

from hal_mocks.bench import bench_request
from tools.bench_firmware import FirmwareProcess

_PORT = re.compile(r"bench control on 127\.0\.0\.1:(\d+)")
_TRACE_OUT = " ocpp.trace: >> "
TRACEBACK = "Traceback (most recent call last)"


class Station:
    def __init__(self, csms_url, data_dir, log_dir, hal="mock"):
        self.csms_url = csms_url
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.hal = hal
        self.fw = None
        self.lives = []          # log path of every life
        self.killed = True       # no process yet: nothing unexpected about that

    # --- lives ------------------------------------------------------------------------------
    def spawn(self):
        path = os.path.join(self.log_dir, "life-%03d.log" % (len(self.lives) + 1))
        self.lives.append(path)
        self.fw = FirmwareProcess(self.csms_url, self.data_dir, path, hal=self.hal)
        self.killed = False
        return self.fw.pid

    def kill(self):
        if self.fw is not None:
            self.killed = True
            self.fw.kill()

    def alive(self):
        return self.fw is not None and self.fw.alive()

    def unexpected_exit(self):
        """The exit code when the process ended without our kill, else None."""
        if self.fw is None or self.killed or self.fw.alive():
            return None
        self.killed = True          # reported once
        return self.fw.proc.returncode

    def log_text(self, path=None):
        try:
            with open(path or self.lives[-1], "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, IndexError):
            return ""

    # --- the bench socket ---------------------------------------------------------------------
    def bench_port(self):
        """The bench port of the current life, or None while it has none yet."""
        ports = _PORT.findall(self.log_text())
        return int(ports[-1]) if ports else None

    def bench(self, cmd, **args):
        """One bench request; None when the bench does not answer (dead or restarting)."""
        port = self.bench_port()
        if port is None or not self.alive():
            return None
        args["cmd"] = cmd
        try:
            return bench_request(port, args, timeout=3)
        except (OSError, ValueError):
            return None

    def status(self):
        reply = self.bench("status")
        return reply if reply and reply.get("ok") else None

    def wait_status(self, predicate, timeout):
        """The first bench status that satisfies predicate, or None at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status()
            if s is not None and predicate(s):
                return s
            if not self.alive():
                return None
            time.sleep(0.05)      # the bench has no push notifications
        return None

    # --- what the logs say ----------------------------------------------------------------------
    def sent_calls(self):
        """[(action, payload)] of every CALL the station's trace shows it sent, all lives."""
        out = []
        for path in self.lives:
            for line in self.log_text(path).splitlines():
                at = line.find(_TRACE_OUT)
                if at < 0:
                    continue
                try:
                    msg = json.loads(line[at + len(_TRACE_OUT):])
                except ValueError:
                    continue
                if isinstance(msg, list) and len(msg) == 4 and msg[0] == 2:
                    out.append((msg[2], msg[3]))
        return out

    def tracebacks(self):
        """[(life log, the traceback's last line)]."""
        found = []
        for path in self.lives:
            lines = self.log_text(path).splitlines()
            for i, line in enumerate(lines):
                if TRACEBACK in line:
                    end = i + 1
                    while end < len(lines) and (lines[end].startswith(" ") or not lines[end]):
                        end += 1
                    last = lines[end] if end < len(lines) else lines[-1]
                    found.append((os.path.basename(path), last.strip()[:200]))
        return found
