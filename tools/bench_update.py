"""Benchmark: a firmware update (UpdateFirmware, the A/B install) of the real
firmware (python -m firmware --hal mock) against a CSMS on loopback.

    python -m tools.bench_update [--size-mib 20] [--rate-mib 4] [--idle-calls 200]

An image of this checkout padded to --size-mib MiB of incompressible bytes is
served by http.server on 127.0.0.1 (port 0). Two updates run one after the other:

  1. full speed: download throughput on loopback (Downloading -> Downloaded as
     the CSMS receives them), main-loop latency (CSMS CALL -> CALLRESULT,
     GetConfiguration of two keys, back to back) during the download, and the
     time from Installing (the verification and unpacking start) and from the
     switch to the new BootNotification, then to Installed;
  2. the server throttled to --rate-mib MiB/s, so the download lasts seconds:
     the same latency figures over that longer window.

Before them, the same calls on the idle station give the baseline. The CSMS
and the firmware share the machine's cores: the figures include both stacks.
"""

import argparse
import http.server
import os
import shutil
import sys
import tempfile
import threading
import time

from firmware.images import build_image, copy_release
from ocpp_core.timestamps import format_utc
from tools.bench_firmware import ROOT, FirmwareProcess, MiniCsms, stats_ms
from tools.bench_stats import http_base, serve_http, stop_http

FW = "FirmwareStatusNotification"
CALL = ("GetConfiguration", {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]})


def make_image(scratch, version, size_mib):
    src = os.path.join(scratch, "src-" + version)
    files = copy_release(ROOT, src)
    pad = "tools/padding.bin"       # incompressible: the image is as large as asked
    with open(os.path.join(src, pad), "wb") as f:
        f.write(os.urandom(size_mib * 1024 * 1024))
    out = os.path.join(scratch, "fw-%s.img" % version)
    build_image(src, version, out, files=files + [pad])
    shutil.rmtree(src)
    return out


class _Files(http.server.BaseHTTPRequestHandler):
    files = {}
    rate = None         # bytes/s, None: as fast as the loopback goes

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.files.get(self.path)
        if path is None:
            self.send_error(404)
            return
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = 64 * 1024
        started = time.monotonic()
        sent = 0
        with open(path, "rb") as f:
            while True:
                data = f.read(chunk)
                if not data:
                    break
                self.wfile.write(data)
                sent += len(data)
                if self.rate:
                    ahead = sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)


def calls_until(csms, stop, samples):
    """CSMS CALLs back to back until stop() is true: their latencies (ns) in samples."""
    while not stop():
        t0, t1, frame = csms.call(*CALL)
        if frame[0] != 3:
            raise RuntimeError("CALLERROR %r" % frame)
        samples.append(t1 - t0)


def one_update(csms, fw, location, version):
    """UpdateFirmware to location; -> figures dict."""
    mark = csms.mark()
    t_req, _, frame = csms.call("UpdateFirmware",
                                {"location": location, "retrieveDate": format_utc(time.time())})
    assert frame[0] == 3, frame
    t_dl, _, _ = csms.wait_call(FW, mark, predicate=lambda p: p["status"] == "Downloading",
                                alive=fw.alive)
    samples = []
    done = threading.Event()

    def downloaded():
        return done.is_set()
    watcher = threading.Thread(target=lambda: (csms.wait_call(
        FW, mark, timeout=600, predicate=lambda p: p["status"] != "Downloading",
        alive=fw.alive), done.set()), daemon=True)
    watcher.start()
    calls_until(csms, downloaded, samples)
    watcher.join()
    t_end, payload, _ = csms.wait_call(FW, mark, predicate=lambda p: p["status"] != "Downloading")
    if payload["status"] != "Downloaded":
        raise RuntimeError("download ended %s" % payload["status"])
    t_inst, _, _ = csms.wait_call(FW, mark, predicate=lambda p: p["status"] == "Installing",
                                  alive=fw.alive)
    t_boot, boot, _ = csms.wait_call("BootNotification", mark, timeout=120, alive=fw.alive)
    if boot.get("firmwareVersion") != version:
        raise RuntimeError("booted %s, not %s" % (boot.get("firmwareVersion"), version))
    t_done, payload, _ = csms.wait_call(FW, mark, predicate=lambda p: p["status"] in (
        "Installed", "InstallationFailed"), alive=fw.alive)
    if payload["status"] != "Installed":
        raise RuntimeError("installation ended %s" % payload["status"])
    return {"download_s": (t_end - t_dl) / 1e9, "samples": samples,
            "install_to_boot_s": (t_boot - t_inst) / 1e9,
            "boot_to_installed_s": (t_done - t_boot) / 1e9}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.bench_update")
    p.add_argument("--size-mib", type=int, default=20)
    p.add_argument("--rate-mib", type=float, default=4.0,
                   help="MiB/s of the throttled second download")
    p.add_argument("--idle-calls", type=int, default=200)
    args = p.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="bench-update-")
    csms = MiniCsms().start()
    server = serve_http(_Files)
    base = http_base(server)
    fw = None
    try:
        t = time.monotonic()
        images = {v: make_image(scratch, v, args.size_mib) for v in ("9.9.1", "9.9.2")}
        size = os.path.getsize(images["9.9.1"])
        print("images: %.1f MiB each, built in %.1f s" % (size / 2 ** 20, time.monotonic() - t))
        _Files.files = {"/" + os.path.basename(v): v for v in images.values()}
        fw = FirmwareProcess(csms.url, os.path.join(scratch, "data"),
                             os.path.join(scratch, "firmware.log"))
        csms.wait_call("BootNotification", alive=fw.alive)
        csms.wait_connected(1, alive=fw.alive)
        time.sleep(0.5)         # the boot's StatusNotifications are out
        idle = []
        for _ in range(args.idle_calls):
            t0, t1, _ = csms.call(*CALL)
            idle.append(t1 - t0)
        _Files.rate = None
        fast = one_update(csms, fw, base + "/fw-9.9.1.img", "9.9.1")
        _Files.rate = args.rate_mib * 2 ** 20
        slow = one_update(csms, fw, base + "/fw-9.9.2.img", "9.9.2")
        rows = [("idle station", idle), ("during a full-speed download", fast["samples"]),
                ("during a %.0f MiB/s download" % args.rate_mib, slow["samples"])]
        print("\nmain-loop latency, CSMS CALL -> CALLRESULT (GetConfiguration, 2 keys):")
        for name, samples in rows:
            p50, p99, mx = stats_ms(samples)
            print("  %-32s n=%-5d p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms"
                  % (name, len(samples), p50, p99, mx))
        print("\ndownload on loopback (Downloading -> Downloaded, %.1f MiB):" % (size / 2 ** 20))
        print("  full speed   %6.2f s  %7.1f MiB/s" % (fast["download_s"],
                                                      size / 2 ** 20 / fast["download_s"]))
        print("  throttled    %6.2f s  %7.1f MiB/s" % (slow["download_s"],
                                                      size / 2 ** 20 / slow["download_s"]))
        print("\ninstall (verify + unpack + fsync + switch + restart):")
        for name, r in (("update 1", fast), ("update 2", slow)):
            print("  %s: Installing -> new BootNotification %.2f s, then Installed %.2f s later"
                  % (name, r["install_to_boot_s"], r["boot_to_installed_s"]))
        return 0
    except (RuntimeError, TimeoutError, AssertionError) as e:
        print("bench_update: error: %s" % e, file=sys.stderr)
        if fw is not None:
            print(fw.log_tail(), file=sys.stderr)
        return 1
    finally:
        if fw is not None:
            fw.kill()
        stop_http(server)
        csms.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
