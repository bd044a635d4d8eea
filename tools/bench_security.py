"""Figures of the security extension (docs/security.md):

- the resident memory the `cryptography` import adds to a fresh interpreter
  (VmRSS before and after, what firmware/certificates.py imports lazily);
- the time to connect the firmware link (firmware/link.py: TCP, TLS, websocket
  upgrade) to a CSMS on loopback for each security profile: 1 (ws:// + Basic
  auth), 2 (wss:// + Basic auth, server verified against an installed root),
  3 (wss:// + client certificate);
- the time to make a CSR (key pair and signature) for each key type.

    python -m tools.bench_security [--n 20]
"""

import argparse
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

_IMPORT_PROBE = r"""
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
import ssl, firmware.certificates as c
before = rss()
c._x509()
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives import serialization
print(before, rss())
"""


def import_memory():
    out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(
                             __file__)))).stdout.split()
    return int(out[0]), int(out[1])


def _connect_times(n, profile, url, store, tmp):
    from firmware.link import CsmsLink, LinkSettings, profile_context
    times = []
    for _ in range(n):
        events = queue.Queue()
        link = CsmsLink(LinkSettings(url=url, charge_point_id="CP-BENCH",
                                     password="0123456789abcdef0123", security_profile=profile,
                                     tls_context=lambda p: profile_context(store, p)), events)
        start = time.perf_counter()
        link.start()
        kind = events.get(timeout=10)[0]
        times.append(time.perf_counter() - start)
        link.stop()
        if kind != "up":
            raise RuntimeError("profile %d did not connect" % profile)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="connections per profile")
    args = parser.parse_args(argv)
    from websockets.sync.server import serve

    from firmware.certificates import CertificateStore, make_csr, make_key
    from tools import pki

    before, after = import_memory()
    print("cryptography import: VmRSS %d kB -> %d kB (+%d kB)" % (before, after, after - before))

    with tempfile.TemporaryDirectory() as tmp:
        ca = pki.Ca("Bench Root")
        store = CertificateStore(os.path.join(tmp, "certs"), "CP-BENCH", key_type="ec256")
        store.install_root("CentralSystemRootCertificate", ca.pem, 20)
        got = []
        store.create_csr("Bench CPO", lambda csr, why: got.append(csr))
        store.accept_signed(pki.pem(ca.sign_csr(got[0])))

        def handler(connection):
            for _ in connection:
                pass
        contexts = {1: None,
                    2: pki.server_context(__import__("pathlib").Path(tmp), ca),
                    3: pki.server_context(__import__("pathlib").Path(tmp), ca, client_ca=ca)}
        print("link connect time on loopback, %d connections each (ms): median  p90  max"
              % args.n)
        for profile in (1, 2, 3):
            server = serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"],
                           ssl=contexts[profile])
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            port = server.socket.getsockname()[1]
            scheme, host = ("ws", "127.0.0.1") if profile == 1 else ("wss", "localhost")
            url = "%s://%s:%d/ocpp/CP-BENCH" % (scheme, host, port)
            try:
                t = sorted(x * 1000 for x in _connect_times(args.n, profile, url, store, tmp))
            finally:
                server.shutdown()
                thread.join(5)
            p90 = t[min(len(t) - 1, int(round(0.9 * (len(t) - 1))))]
            print("  profile %d  %7.1f %7.1f %7.1f" % (profile, statistics.median(t), p90, t[-1]))
        for key_type in ("ec256", "rsa2048"):
            start = time.perf_counter()
            make_csr(make_key(key_type), "CP-BENCH", "Bench CPO")
            print("CSR with a new %s key: %.0f ms" % (key_type, (time.perf_counter() - start)
                                                       * 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
