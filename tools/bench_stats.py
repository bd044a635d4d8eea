"""What the benchmarks share (tools.bench_*): summary statistics, the file system
under a path, a loopback HTTP server."""

import http.server
import math
import os
import threading


def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(math.ceil(q * len(sorted_values))))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(samples_ns, unit_ns):
    """(median, 99th percentile, maximum) of samples in ns, in units of unit_ns
    ns (1e3: microseconds, 1e6: milliseconds); NaN for no samples."""
    s = sorted(samples_ns)
    mx = s[-1] / unit_ns if s else float("nan")
    return percentile(s, 0.5) / unit_ns, percentile(s, 0.99) / unit_ns, mx


def filesystem_of(path):
    """(mount point, type) of the file system holding path, from /proc/mounts;
    ("?", "?") when unknown."""
    path = os.path.realpath(path)
    best = ("?", "?")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1].replace("\\040", " ")
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[0] if best[0] != "?" else ""):
                    best = (mount, parts[2])
    except OSError:
        pass
    return best


def serve_http(handler, **attrs):
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) serving on a daemon thread,
    with attrs set on it first (daemon_threads, what the handler reads). Its URL:
    http_base(); stop_http() ends it."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for name, value in attrs.items():
        setattr(httpd, name, value)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return httpd


def http_base(httpd):
    return "http://127.0.0.1:%d" % httpd.server_address[1]


def stop_http(httpd):
    httpd.shutdown()
    httpd.server_close()
