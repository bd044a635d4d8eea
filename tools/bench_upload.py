"""Benchmark: the main loop's responsiveness during a diagnostics upload.

    python -m tools.bench_upload [--calls 1000] [--rate 4096]

The real firmware (python -m firmware --hal mock, tools.bench_firmware's
FirmwareProcess and MiniCsms) is asked for GetDiagnostics with a location on
an HTTP server in this process that reads the PUT body at --rate bytes/s, so
the upload lasts seconds; meanwhile the CSMS times its CALLs (the
tools.bench_firmware mix: GetConfiguration, ChangeConfiguration, DataTransfer)
from just before it sends each one to the CALLRESULT. A new GetDiagnostics is
sent whenever the previous upload ends, so every measured call overlaps an
upload. The same calls without an upload first, as the baseline.
"""

import argparse
import http.server
import os
import shutil
import sys
import tempfile
import threading
import time

from tools.bench_firmware import (MIX, TARGET_CALL_P99_MS, WARMUP_CALLS, FirmwareProcess,
                                  MiniCsms, stats_ms)
from tools.bench_stats import http_base, serve_http, stop_http

DIAG = "DiagnosticsStatusNotification"


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_PUT(self):
        left = int(self.headers.get("Content-Length", 0))
        step = max(1, self.server.rate // 16)
        got = 0
        while left > 0:
            chunk = self.rfile.read(min(left, step))
            if not chunk:
                break
            left -= len(chunk)
            got += len(chunk)
            time.sleep(len(chunk) / float(self.server.rate))
        with self.server.lock:
            self.server.uploads.append(got)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


def slow_server(rate):
    return serve_http(_SlowHandler, daemon_threads=True, rate=rate, uploads=[],
                      lock=threading.Lock())


def timed_calls(csms, n, between=None):
    """n timed CALLs of the mix (after the warm-up); between() runs before each."""
    samples = []
    for i in range(-WARMUP_CALLS, n):
        if between is not None:
            between()
        name, action, payload = MIX[i % len(MIX)]
        t0, t1, frame = csms.call(action, payload(i))
        if frame[0] != 3:
            raise RuntimeError("%s answered %r" % (action, frame))
        if i >= 0:
            samples.append(t1 - t0)
    return samples


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=1000, help="timed CALLs per phase (default 1000)")
    p.add_argument("--rate", type=int, default=4096,
                   help="bytes/s the upload server reads (default 4096)")
    args = p.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="bench-upload-")
    csms = MiniCsms().start()
    server = slow_server(args.rate)
    fw = None
    try:
        data = os.path.join(scratch, "data")
        os.makedirs(data)
        mark = csms.mark()
        fw = FirmwareProcess(csms.url, data, os.path.join(scratch, "fw.log"))
        csms.wait_call("BootNotification", since=mark, alive=fw.alive)
        csms.wait_call("StatusNotification", since=mark, alive=fw.alive,
                       predicate=lambda q: q["connectorId"] == 1)
        time.sleep(1.0)         # the start-up settles
        baseline = timed_calls(csms, args.calls)
        location = http_base(server) + "/diag/"
        state = {"mark": csms.mark(), "asked": 0, "ended": 0}
        t_start = time.monotonic()

        def upload_ended():
            try:
                csms.wait_call(DIAG, since=state["mark"], timeout=0,
                               predicate=lambda q: q["status"] != "Uploading")
                return True
            except TimeoutError:
                return False

        def keep_uploading():
            """A new GetDiagnostics whenever the previous upload has ended."""
            if state["asked"] > state["ended"] and upload_ended():
                state["ended"] += 1
            if state["asked"] == state["ended"]:
                state["mark"] = csms.mark()
                csms.call("GetDiagnostics", {"location": location})
                csms.wait_call(DIAG, since=state["mark"], alive=fw.alive,
                               predicate=lambda q: q["status"] == "Uploading")
                state["asked"] += 1
        during = timed_calls(csms, args.calls, keep_uploading)
        elapsed = time.monotonic() - t_start
        csms.wait_call(DIAG, since=state["mark"], timeout=120, alive=fw.alive,
                       predicate=lambda q: q["status"] != "Uploading")
        with server.lock:
            sizes = list(server.uploads)
    finally:
        if fw is not None:
            fw.kill()
        csms.stop()
        stop_http(server)
        shutil.rmtree(scratch, ignore_errors=True)
    b50, b99, bmax = stats_ms(baseline)
    d50, d99, dmax = stats_ms(during)
    size = sum(sizes) // max(1, len(sizes))
    print("diagnostics uploads to a server reading %d B/s: %d upload(s) of about %d bytes "
          "(%.1f s each) during %.1f s of calls" % (args.rate, len(sizes), size,
                                                   size / float(args.rate), elapsed))
    print("%-52s %8s %8s %8s" % ("CSMS CALL -> CALLRESULT (ms)", "p50", "p99", "max"))
    print("%-52s %8.2f %8.2f %8.2f" % ("no upload, %d calls" % len(baseline), b50, b99, bmax))
    print("%-52s %8.2f %8.2f %8.2f" % ("during a diagnostics upload, %d calls" % len(during),
                                       d50, d99, dmax))
    ok = d99 < TARGET_CALL_P99_MS
    print("target p99 during the upload < %.0f ms: %s" % (TARGET_CALL_P99_MS,
                                                         "met" if ok else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
