"""Benchmark: the real firmware (python -m firmware --hal mock) against a CSMS.

    python -m tools.bench_firmware [--calls 1000] [--sessions 20] [--boots 5]
                                   [--idle-seconds 10] [--charge-seconds 5]

The firmware runs as a subprocess with simulated hardware; the CSMS is a
minimal websockets server in this process that answers every charge point
CALL at once and timestamps frames itself (time.perf_counter_ns): a CALL is
timed from just before the CSMS sends it to the moment the CSMS has received
the answer, so the figures include both websocket stacks and the loopback.

Figures, each next to its target:
  - CSMS CALL -> CALLRESULT over a mix of GetConfiguration (all keys, and two
    keys), ChangeConfiguration of a harmless key (LightIntensity) and
    DataTransfer: with the simulated meter healthy, and again with the meter
    timing out on every read (bench fault meter offline: each read blocks 1 s
    then fails);
  - RemoteStartTransaction (EV plugged in) -> StartTransaction received, over
    repeated sessions (remote start, StartTransaction, remote stop,
    StopTransaction), MinimumStatusDuration set to 0 first;
  - start-up (process spawn) -> BootNotification received, fresh data dirs;
  - resident memory (VmRSS) after boot and after the charging sessions;
  - CPU while idle after boot (utime+stime from /proc/PID/stat), % of one core.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from hal_mocks.bench import bench_request
from tools.bench_stats import summary
from tools.loopback_csms import LoopbackServer, accepting_answer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CP_ID = "CP-BENCH-PERF"
ID_TAG = "04A1B2C3"
WARMUP_CALLS = 20
WAIT = 15.0                     # s; the longest any single expected event may take

TARGET_CALL_P99_MS = 20.0
TARGET_CALL_MAX_MS = 100.0
TARGET_REMOTE_START_MS = 500.0
TARGET_BOOT_MS = 1000.0
TARGET_RSS_MIB = 30.0
TARGET_IDLE_CPU_PCT = 1.0

now_ns = time.perf_counter_ns


def stats_ms(samples_ns):
    """(p50, p99, max) in milliseconds."""
    return summary(samples_ns, 1e6)


# --- the CSMS ---------------------------------------------------------------------------------

class MiniCsms:
    """One-charge-point OCPP-J central system that timestamps what it sends and gets.

    The connection's own thread reads every frame: charge point CALLs are
    answered at once and recorded (receive time, action, payload, answer);
    CALLRESULT/CALLERROR frames complete the call() waiting for them."""

    def __init__(self):
        self._cond = threading.Condition()
        self.received = []       # (t_ns, action, payload, answer)
        self._results = {}       # message id -> (t_ns, frame)
        self._conn = None
        self._connections = 0
        self._threads = []
        self._next_tx = 1
        self._next_id = 0
        self._server = None
        self.port = None

    def start(self):
        self._server = LoopbackServer(self._serve, "csms-accept")
        self.port = self._server.start().port
        return self

    @property
    def url(self):
        return self._server.url

    def stop(self):
        if self._server is None:
            return
        self._server.stop()
        with self._cond:
            conn = self._conn
        if conn is not None:
            conn.close()
        for t in list(self._threads):
            t.join(5)
        self._server = None

    # --- the connection thread ------------------------------------------------------------
    def _serve(self, ws):
        from websockets.exceptions import ConnectionClosed
        with self._cond:
            self._conn = ws
            self._connections += 1
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(threading.current_thread())
            self._cond.notify_all()
        try:
            for message in ws:
                t = now_ns()
                try:
                    msg = json.loads(message)
                except ValueError:
                    continue
                if msg[0] == 2:
                    answer = self._answer(msg[2], msg[3])
                    if answer is None:
                        ws.send(json.dumps([4, msg[1], "NotImplemented", "not in this CSMS", {}]))
                    else:
                        ws.send(json.dumps([3, msg[1], answer]))
                    with self._cond:
                        self.received.append((t, msg[2], msg[3], answer))
                        self._cond.notify_all()
                elif msg[0] in (3, 4):
                    with self._cond:
                        self._results[msg[1]] = (t, msg)
                        self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if self._conn is ws:
                    self._conn = None
                self._cond.notify_all()

    def _answer(self, action, payload):
        return accepting_answer(action, payload, self._new_transaction)

    def _new_transaction(self):
        with self._cond:
            tx, self._next_tx = self._next_tx, self._next_tx + 1
        return tx

    # --- the programmatic side ------------------------------------------------------------
    def mark(self):
        with self._cond:
            return len(self.received)

    def wait_call(self, action, since=0, timeout=WAIT, predicate=None, alive=None):
        """(t_ns, payload, answer) of the first `action` CALL received at index >= since."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self.received):
                    t, a, payload, answer = self.received[i]
                    i += 1
                    if a == action and (predicate is None or predicate(payload)):
                        return t, payload, answer
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (alive is not None and not alive()):
                    raise TimeoutError("no %s from the charge point within %g s"
                                       % (action, timeout))
                self._cond.wait(min(remaining, 0.2))

    def wait_connected(self, count, timeout=WAIT, alive=None):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._connections < count or self._conn is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (alive is not None and not alive()):
                    raise TimeoutError("the charge point did not connect within %g s" % timeout)
                self._cond.wait(min(remaining, 0.2))

    @property
    def connections(self):
        with self._cond:
            return self._connections

    def call(self, action, payload, timeout=WAIT):
        """Send a CALL; returns (t_sent_ns, t_answer_ns, frame) once answered."""
        with self._cond:
            self._next_id += 1
            msg_id = "perf-%d" % self._next_id
            conn = self._conn
        if conn is None:
            raise ConnectionError("no charge point connected")
        text = json.dumps([2, msg_id, action, payload])
        t0 = now_ns()
        conn.send(text)
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._results:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no answer to %s within %g s" % (action, timeout))
                self._cond.wait(remaining)
            t1, frame = self._results.pop(msg_id)
        return t0, t1, frame


# --- the firmware process --------------------------------------------------------------------

class FirmwareProcess:
    def __init__(self, csms_url, data_dir, log_path, hal="mock"):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("JOURNAL_STREAM", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware", "--hal", hal, "--csms-url", csms_url,
             "--charge-point-id", CP_ID, "--data-dir", data_dir, "--bench-port", "0"],
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._bench_port = None

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, chars=2000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-chars:]
        except OSError:
            return ""

    def bench_port(self, timeout=WAIT):
        if self._bench_port is None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.alive():
                m = re.search(r"bench control on 127\.0\.0\.1:(\d+)", self.log_tail(100000))
                if m:
                    self._bench_port = int(m.group(1))
                    break
                time.sleep(0.02)
            else:
                raise RuntimeError("no bench port in the firmware log:\n" + self.log_tail())
        return self._bench_port

    def bench(self, cmd, **args):
        args["cmd"] = cmd
        reply = bench_request(self.bench_port(), args)
        if reply.get("ok") is not True:
            raise RuntimeError("bench refused %r: %r" % (args, reply))
        return reply

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS for pid %d" % self.pid)

    def cpu_ticks(self):
        """utime + stime of the whole process (all threads), in clock ticks."""
        with open("/proc/%d/stat" % self.pid) as f:
            data = f.read()
        fields = data[data.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])     # fields 14 and 15 of stat(5)

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


# --- the benchmark -----------------------------------------------------------------------------

MIX = (
    ("GetConfiguration (all keys)", "GetConfiguration", lambda i: {}),
    ("GetConfiguration (2 keys)", "GetConfiguration",
     lambda i: {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]}),
    ("ChangeConfiguration LightIntensity", "ChangeConfiguration",
     lambda i: {"key": "LightIntensity", "value": str(40 + (i // len(MIX)) % 2)}),
    ("DataTransfer", "DataTransfer",
     lambda i: {"vendorId": "com.example.bench", "messageId": "ping", "data": "x" * 32}),
)


class Bench:
    def __init__(self, args):
        self.args = args
        self.scratch = tempfile.mkdtemp(prefix="bench-firmware-")
        self.csms = MiniCsms()
        self.fw = None
        self.rows = []          # (figure, value text, target text, ok or None)
        self.details = []       # lines printed before the table

    def close(self):
        try:
            if self.fw is not None:
                self.fw.kill()
        finally:
            try:
                self.csms.stop()
            finally:
                if self.args.keep:
                    print("scratch folder kept: %s" % self.scratch)
                else:
                    shutil.rmtree(self.scratch, ignore_errors=True)

    def _spawn(self, name):
        data = os.path.join(self.scratch, name)
        os.makedirs(data)
        return FirmwareProcess(self.csms.url, data, os.path.join(self.scratch, name + ".log"),
                               hal=self.args.hal)

    def _fail(self, what, e):
        tail = self.fw.log_tail() if self.fw is not None else ""
        raise RuntimeError("%s: %s\n--- firmware log (tail) ---\n%s" % (what, e, tail))

    def row(self, figure, value, target, ok):
        self.rows.append((figure, value, target, ok))

    # --- start-up ------------------------------------------------------------------------------
    def boots(self, n):
        times = []
        for i in range(n):
            mark = self.csms.mark()
            t0 = now_ns()
            self.fw = self._spawn("boot-%d" % i)
            try:
                t, _, _ = self.csms.wait_call("BootNotification", since=mark, alive=self.fw.alive)
            except TimeoutError as e:
                self._fail("start-up %d" % i, e)
            times.append(t - t0)
            self.fw.kill()
            self.fw = None
            shutil.rmtree(os.path.join(self.scratch, "boot-%d" % i), ignore_errors=True)
        p50, _, mx = stats_ms(times)
        self.details.append("start-up -> BootNotification over %d fresh starts: min %.0f ms, "
                            "p50 %.0f ms, max %.0f ms" % (n, min(times) / 1e6, p50, mx))
        self.row("start-up -> BootNotification, max of %d" % n, "%.0f ms" % mx,
                 "< %.0f ms" % TARGET_BOOT_MS, mx < TARGET_BOOT_MS)

    # --- the long-running instance ---------------------------------------------------------------
    def start_main(self):
        mark = self.csms.mark()
        self.fw = self._spawn("main")
        try:
            self.csms.wait_call("BootNotification", since=mark, alive=self.fw.alive)
            for cid in (0, 1):
                self.csms.wait_call("StatusNotification", since=mark, alive=self.fw.alive,
                                    predicate=lambda p, cid=cid: p["connectorId"] == cid)
        except TimeoutError as e:
            self._fail("boot", e)
        self.fw.bench_port()
        time.sleep(1.0)           # let the start-up settle (first meter reads, indicator)

    def idle_cpu(self, seconds):
        hz = os.sysconf("SC_CLK_TCK")
        mark = self.csms.mark()
        t0, c0 = time.monotonic(), self.fw.cpu_ticks()
        time.sleep(seconds)
        t1, c1 = time.monotonic(), self.fw.cpu_ticks()
        pct = (c1 - c0) / float(hz) / (t1 - t0) * 100.0
        frames = self.csms.mark() - mark
        self.details.append("idle: %d clock ticks (1/%d s) of CPU in %.1f s; %d CALL(s) from the "
                            "charge point meanwhile" % (c1 - c0, hz, t1 - t0, frames))
        self.row("CPU idle after boot, %.0f s" % (t1 - t0), "%.2f %%" % pct,
                 "< %.0f %%" % TARGET_IDLE_CPU_PCT, pct < TARGET_IDLE_CPU_PCT)

    def rss(self, label):
        mib = self.fw.rss_kib() / 1024.0
        self.row("VmRSS %s" % label, "%.1f MiB" % mib, "< %.0f MiB" % TARGET_RSS_MIB,
                 mib < TARGET_RSS_MIB)

    def configure(self, key, value):
        _, _, frame = self.csms.call("ChangeConfiguration", {"key": key, "value": value})
        if frame[0] != 3 or frame[2].get("status") != "Accepted":
            raise RuntimeError("ChangeConfiguration %s=%s: %r" % (key, value, frame))

    def call_mix(self, n, label):
        per_kind = {name: [] for name, _, _ in MIX}
        errors = 0
        total = []
        for i in range(-WARMUP_CALLS, n):
            name, action, payload = MIX[i % len(MIX)]
            try:
                t0, t1, frame = self.csms.call(action, payload(i))
            except (TimeoutError, ConnectionError) as e:
                self._fail("%s call %d (%s)" % (label, i, action), e)
            if frame[0] != 3:
                errors += 1
            if i >= 0:
                total.append(t1 - t0)
                per_kind[name].append(t1 - t0)
        p50, p99, mx = stats_ms(total)
        self.details.append("CSMS CALL -> CALLRESULT, %s: %d calls (after %d warm-up), "
                            "%d CALLERROR" % (label, len(total), WARMUP_CALLS, errors))
        for name, _, _ in MIX:
            a, b, c = stats_ms(per_kind[name])
            self.details.append("    %-36s n=%-5d p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms"
                                % (name, len(per_kind[name]), a, b, c))
        self.row("CSMS CALL -> CALLRESULT, %s, p50" % label, "%.2f ms" % p50, "", None)
        self.row("CSMS CALL -> CALLRESULT, %s, p99" % label, "%.2f ms" % p99,
                 "< %.0f ms" % TARGET_CALL_P99_MS, p99 < TARGET_CALL_P99_MS)
        self.row("CSMS CALL -> CALLRESULT, %s, max" % label, "%.2f ms" % mx,
                 "< %.0f ms" % TARGET_CALL_MAX_MS, mx < TARGET_CALL_MAX_MS and errors == 0)

    def sessions(self, n, charge_seconds):
        self.configure("MinimumStatusDuration", "0")
        mark = self.csms.mark()
        self.fw.bench("plug", connector=1)
        try:      # the pilot is polled: wait until the engine has seen the EV
            self.csms.wait_call("StatusNotification", since=mark, alive=self.fw.alive,
                                predicate=lambda p: p["connectorId"] == 1
                                and p["status"] == "Preparing")
        except TimeoutError as e:
            self._fail("plug", e)
        times = []
        for i in range(n):
            mark = self.csms.mark()
            try:
                t0, _, frame = self.csms.call("RemoteStartTransaction",
                                              {"connectorId": 1, "idTag": ID_TAG})
                if frame[0] != 3 or frame[2].get("status") != "Accepted":
                    raise RuntimeError("RemoteStartTransaction answered %r" % (frame,))
                t, _, answer = self.csms.wait_call("StartTransaction", since=mark,
                                                   alive=self.fw.alive)
                times.append(t - t0)
                if i == n - 1 and charge_seconds > 0:
                    time.sleep(charge_seconds)     # let energy flow in the last session
                _, _, frame = self.csms.call("RemoteStopTransaction",
                                             {"transactionId": answer["transactionId"]})
                if frame[0] != 3 or frame[2].get("status") != "Accepted":
                    raise RuntimeError("RemoteStopTransaction answered %r" % (frame,))
                self.csms.wait_call("StopTransaction", since=mark, alive=self.fw.alive)
            except (TimeoutError, ConnectionError) as e:
                self._fail("session %d" % i, e)
        status = self.fw.bench("status")
        energy = status.get("connectors", {}).get("1", {}).get("energy_wh")
        p50, _, mx = stats_ms(times)
        self.details.append("RemoteStartTransaction -> StartTransaction over %d sessions: p50 "
                            "%.1f ms, max %.1f ms (meter now %s Wh)" % (n, p50, mx, energy))
        self.row("RemoteStart -> StartTransaction, max of %d" % n, "%.1f ms" % mx,
                 "< %.0f ms" % TARGET_REMOTE_START_MS, mx < TARGET_REMOTE_START_MS)
        self.fw.bench("unplug", connector=1)

    def meter_offline(self):
        mark = self.csms.mark()
        t0 = time.monotonic()
        self.fw.bench("fault", device="meter", mode="offline")
        try:
            self.csms.wait_call("StatusNotification", since=mark, alive=self.fw.alive,
                                predicate=lambda p: p.get("errorCode") == "PowerMeterFailure")
        except TimeoutError as e:
            self._fail("meter offline", e)
        self.details.append("meter offline: PowerMeterFailure reported %.1f s after the fault was "
                            "injected; from then on every meter read blocks 1 s and fails"
                            % (time.monotonic() - t0))

    def run(self):
        a = self.args
        self.csms.start()
        self.boots(a.boots)
        self.start_main()
        self.rss("after boot")
        self.idle_cpu(a.idle_seconds)
        self.call_mix(a.calls, "meter healthy")
        self.sessions(a.sessions, a.charge_seconds)
        self.rss("after %d charging session%s" % (a.sessions, "" if a.sessions == 1 else "s"))
        self.meter_offline()
        self.call_mix(a.calls, "meter offline")
        self.fw.bench("fault", device="meter", mode="none")

    def report(self, seconds):
        print("firmware: python -m firmware --hal %s (pid %s), Python %s, %d CPU(s)"
              % (self.args.hal, self.fw.pid if self.fw else "-", sys.version.split()[0],
                 os.cpu_count() or 0))
        print("CSMS: in process, websockets; latency = CALL sent -> CALLRESULT received "
              "by the CSMS")
        print()
        for line in self.details:
            print(line)
        print()
        width = max(len(r[0]) for r in self.rows)
        print("%-*s  %12s  %10s  %s" % (width, "figure", "value", "target", "result"))
        for figure, value, target, ok in self.rows:
            verdict = "" if ok is None else ("PASS" if ok else "MISS")
            print("%-*s  %12s  %10s  %s" % (width, figure, value, target, verdict))
        judged = [r for r in self.rows if r[3] is not None]
        print()
        print("targets met: %d of %d; run time %.1f s"
              % (sum(1 for r in judged if r[3]), len(judged), seconds))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hal", choices=("mock", "emulated"), default="mock",
                   help="simulated devices, or the real drivers over bus emulations that run "
                        "in the same process (their memory and CPU count too)")
    p.add_argument("--calls", type=int, default=1000,
                   help="CSMS calls per meter condition (default 1000)")
    p.add_argument("--sessions", type=int, default=20,
                   help="remote start/stop sessions (default 20)")
    p.add_argument("--boots", type=int, default=5, help="start-up measurements (default 5)")
    p.add_argument("--idle-seconds", type=float, default=10.0,
                   help="idle period for the CPU figure (default 10)")
    p.add_argument("--charge-seconds", type=float, default=5.0,
                   help="how long the last session charges (default 5)")
    p.add_argument("--keep", action="store_true",
                   help="keep the scratch folder (data dirs, firmware logs) for inspection")
    args = p.parse_args(argv)
    if args.calls < 1 or args.sessions < 1 or args.boots < 1 or args.idle_seconds <= 0:
        p.error("--calls, --sessions and --boots must be >= 1, --idle-seconds > 0")
    t0 = time.monotonic()
    bench = Bench(args)
    try:
        bench.run()
        bench.report(time.monotonic() - t0)
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
