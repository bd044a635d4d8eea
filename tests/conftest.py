import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def world():
    """A simulated world whose meter and modem time out quickly (a test module
    may define its own `world` with other settings)."""
    from hal_mocks.sim import SimWorld
    w = SimWorld(meter_timeout=0.05, modem_timeout=0.05)
    yield w
    w.close()


@pytest.fixture
def closing():
    """Register things to close/stop at the end, last first."""
    items = []
    yield items.append
    for item in reversed(items):
        (getattr(item, "close", None) or item.stop)()


@pytest.fixture
def ocpp_csms():
    """A CSMS built on the `ocpp` package; fails the test on any schema violation."""
    from tests.ocpp_csms import OcppCsms
    csms = OcppCsms().start()
    yield csms
    csms.stop()
    assert not csms.violations, "messages that broke the official schemas: %r" % csms.violations


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


@pytest.fixture
def firmware(tmp_path):
    """Factory: firmware(csms_url, cp_id='CP-TEST-1', extra=[...]) -> FirmwareProcess."""
    started = []

    def start(csms_url, charge_point_id="CP-TEST-1", extra=(), data_dir=None, env=None,
              hal="mock"):
        data = data_dir or str(tmp_path / "data")
        args = ["--hal", hal, "--csms-url", csms_url, "--charge-point-id", charge_point_id,
                "--data-dir", data, "--bench-port", "0"] + list(extra)
        fw = FirmwareProcess(args, str(tmp_path / ("firmware-%d.log" % len(started))), env)
        started.append(fw)
        return fw

    yield start
    for fw in started:
        fw.stop(signal.SIGKILL)


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


@pytest.fixture
def raw_csms():
    s = RawCsms()
    yield s
    s.stop()
