"""The firmware as a subprocess, the bench socket as a tester drives it, and a
bare websocket CSMS that sends any text at all."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FirmwareProcess:
    """`python -m firmware` as a subprocess, its log in a file."""

    def __init__(self, args, log_path, env=None):
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")
        full_env = dict(os.environ, PYTHONUNBUFFERED="1")
        full_env.pop("JOURNAL_STREAM", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "firmware"] + args, cwd=ROOT,
                                     stdout=self._log, stderr=subprocess.STDOUT, env=full_env)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)  # a log file has no change notification worth the complexity
        raise AssertionError("%r not in the firmware log:\n%s" % (text, self.log()[-3000:]))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def bench_port_of(fw, timeout=10):
    """The bench port the firmware bound (it was started with --bench-port 0)."""
    import re
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"bench control on 127\.0\.0\.1:(\d+)", fw.log())
        if m:
            return int(m.group(1))
        if fw.proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError("no bench port in the firmware log:\n" + fw.log()[-2000:])


class Bench:
    """The bench control socket, as a tester drives it."""

    def __init__(self, port):
        self.port = port

    def __call__(self, cmd, **args):
        from hal_mocks.bench import bench_request
        args["cmd"] = cmd
        reply = bench_request(self.port, args)
        assert reply.get("ok") is True, reply
        return reply

    def status(self):
        return self("status")

    def wait(self, predicate, timeout=10, what="bench condition"):
        deadline = time.monotonic() + timeout
        while True:
            s = self.status()
            if predicate(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError("%s not reached; status: %r" % (what, s))
            time.sleep(0.05)   # the bench protocol has no push notifications


class RawCsms:
    """A bare websocket server that lets the test send any text at all."""

    def __init__(self):
        from websockets.sync.server import serve
        self.inbox = queue.Queue()
        self.conn = None
        self.connected = threading.Event()
        self.server = serve(self._handle, "127.0.0.1", 0, subprotocols=["ocpp1.6"])
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, conn):
        self.conn = conn
        self.connected.set()
        try:
            for text in conn:
                self.inbox.put(json.loads(text))
        except Exception:
            pass

    def next(self, timeout=5):
        return self.inbox.get(timeout=timeout)

    def send(self, text):
        self.conn.send(text)

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


def mock_station_config(data_dir, charge_point_id="CP-TEST-1"):
    """The station config `python -m firmware --hal mock` would load (no INI),
    for tests that build the Firmware object in process."""
    import argparse

    from firmware.station_config import load
    return load(argparse.Namespace(config=None, hal="mock", csms_url="ws://127.0.0.1:9/ocpp",
                                   charge_point_id=charge_point_id, password=None,
                                   data_dir=str(data_dir), bench_port="0", log_level=None))
