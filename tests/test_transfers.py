"""Downloads (firmware/transfers.py) against real servers on loopback:
http.server in a thread, pyftpdlib for FTP (passive mode, user and password in
the URL). Download, 404, auth failure, a server that stalls mid-transfer (the
timeout and the retry work), a server that closes early; the worker posts its
results to the main loop's queue and never blocks the caller."""

import base64
import http.server
import os
import queue
import threading
import time

import pytest

from firmware.events import TRANSFER
from firmware.images import build_image
from firmware.transfers import (FirmwareTransfers, TransferError, TransferWorker, download,
                                fetch, send)

PAYLOAD = os.urandom(300 * 1024)
pytestmark = pytest.mark.filterwarnings("ignore:The async:DeprecationWarning")  # pyftpdlib on 3.11


class Handler(http.server.BaseHTTPRequestHandler):
    hits = {}
    uploads = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path
        Handler.hits[path] = Handler.hits.get(path, 0) + 1
        if path == "/image":
            return self._send(PAYLOAD)
        if path == "/secret":
            good = "Basic " + base64.b64encode(b"op:s3cret").decode()
            if self.headers.get("Authorization") != good:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self._send(PAYLOAD)
        if path == "/flaky" and Handler.hits[path] == 1:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/flaky":
            return self._send(PAYLOAD)
        if path in ("/stall", "/early"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.wfile.flush()
            if path == "/stall":
                time.sleep(1.5)
            self.close_connection = True
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        if not self.path.startswith("/upload/"):
            self.send_response(403)
        else:
            Handler.uploads[self.path] = body
            self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def http_base():
    Handler.hits = {}
    Handler.uploads = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def ftp_base(tmp_path):
    """host:port of a pyftpdlib server; user op, password p@ss:word; its root
    holds fw/image.tgz and an empty diag/ (in tmp_path / "ftp")."""
    pyftpdlib = pytest.importorskip("pyftpdlib")   # noqa: F841 (the test extra installs it)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer
    root = tmp_path / "ftp"
    (root / "fw").mkdir(parents=True)
    (root / "fw" / "image.tgz").write_bytes(PAYLOAD)
    authorizer = DummyAuthorizer()
    authorizer.add_user("op", "p@ss:word", str(root), perm="elrw")
    (root / "diag").mkdir()
    handler = type("H", (FTPHandler,), {"authorizer": authorizer, "permit_foreign_addresses": False,
                                       "auth_failed_timeout": 0.05})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever,
                         kwargs={"timeout": 0.05, "handle_exit": False}, daemon=True)
    t.start()
    yield "127.0.0.1:%d" % server.address[1]
    server.close_all()


def test_http_download(http_base, tmp_path):
    dest = str(tmp_path / "img")
    assert fetch(http_base + "/image", dest) == len(PAYLOAD)
    assert open(dest, "rb").read() == PAYLOAD
    assert not os.path.exists(dest + ".part")


def test_http_404_is_a_failure_with_a_reason(http_base, tmp_path):
    with pytest.raises(TransferError, match="HTTP 404"):
        fetch(http_base + "/missing", str(tmp_path / "img"))
    assert os.listdir(tmp_path) == []


def test_http_basic_auth_from_the_url_and_its_failure(http_base, tmp_path):
    port = http_base.rsplit(":", 1)[1]
    dest = str(tmp_path / "img")
    assert fetch("http://op:s3cret@127.0.0.1:%s/secret" % port, dest) == len(PAYLOAD)
    with pytest.raises(TransferError) as e:
        fetch("http://op:wrong@127.0.0.1:%s/secret" % port, dest)
    assert "HTTP 401" in str(e.value) and "wrong" not in str(e.value)


def test_http_stall_mid_transfer_times_out(http_base, tmp_path):
    started = time.monotonic()
    with pytest.raises(TransferError):
        fetch(http_base + "/stall", str(tmp_path / "img"), timeout=0.3)
    assert time.monotonic() - started < 1.4
    assert os.listdir(tmp_path) == []


def test_http_server_closing_early_is_a_failure(http_base, tmp_path):
    with pytest.raises(TransferError, match="closed after"):
        fetch(http_base + "/early", str(tmp_path / "img"))


def test_retries_and_retry_interval(http_base, tmp_path):
    stopped = threading.Event()
    started = time.monotonic()
    result = download(http_base + "/flaky", str(tmp_path / "img"), 3, 0.2, stopped)
    assert result.ok and result.attempts == 2
    assert time.monotonic() - started >= 0.2
    result = download(http_base + "/missing", str(tmp_path / "img"), 3, 0.05, stopped)
    assert not result.ok and result.attempts == 3 and "404" in result.detail
    assert Handler.hits["/missing"] == 3


def test_retries_zero_still_tries_once(http_base, tmp_path):
    result = download(http_base + "/missing", str(tmp_path / "img"), 0, 0, threading.Event())
    assert not result.ok and result.attempts == 1


def test_unsupported_or_unreachable_locations(tmp_path):
    with pytest.raises(TransferError, match="unsupported"):
        fetch("file:///etc/passwd", str(tmp_path / "img"))
    with pytest.raises(TransferError, match="unsupported"):
        fetch("gopher://x/y", str(tmp_path / "img"))
    with pytest.raises(TransferError):
        fetch("http://127.0.0.1:1/none", str(tmp_path / "img"), timeout=2)


def test_ftp_download_passive_with_user_and_password(ftp_base, tmp_path):
    dest = str(tmp_path / "img")
    url = "ftp://op:p%%40ss%%3Aword@%s/fw/image.tgz" % ftp_base
    assert fetch(url, dest) == len(PAYLOAD)
    assert open(dest, "rb").read() == PAYLOAD


def test_ftp_wrong_password_and_missing_file(ftp_base, tmp_path):
    dest = str(tmp_path / "img")
    with pytest.raises(TransferError) as e:
        fetch("ftp://op:nope@%s/fw/image.tgz" % ftp_base, dest)
    assert "530" in str(e.value) and "nope" not in str(e.value)
    with pytest.raises(TransferError, match="550"):
        fetch("ftp://op:p%%40ss%%3Aword@%s/fw/none.tgz" % ftp_base, dest)
    assert os.listdir(tmp_path) == [] or os.listdir(tmp_path) == ["ftp"]


def test_the_worker_posts_results_and_never_blocks_the_caller(http_base, tmp_path):
    events = queue.Queue()
    worker = TransferWorker(events)
    worker.start()
    try:
        transfers = FirmwareTransfers(worker, str(tmp_path / "data"), timeout=5)
        started = time.monotonic()
        transfers.download(http_base + "/stall", 1, 0)
        transfers.download(http_base + "/image", 1, 0)
        assert time.monotonic() - started < 0.1      # returned at once
        first = events.get(timeout=10)
        assert first.kind == TRANSFER and first.value.op == "download" and not first.value.ok
        second = events.get(timeout=10)
        assert second.value.ok and open(second.value.detail, "rb").read() == PAYLOAD
    finally:
        worker.stop()
        worker.join(5)
    assert not worker.thread.is_alive()


def test_stop_ends_the_wait_between_attempts(http_base, tmp_path):
    events = queue.Queue()
    worker = TransferWorker(events)
    worker.start()
    transfers = FirmwareTransfers(worker, str(tmp_path / "data"))
    transfers.download(http_base + "/missing", 5, 60)
    time.sleep(0.2)
    started = time.monotonic()
    worker.stop()
    worker.join(5)
    assert time.monotonic() - started < 2
    assert events.get(timeout=1).value.detail == "stopped"


def test_install_verifies_and_stages_activate_switches_and_restarts(tmp_path):
    from firmware.releases import Releases
    events = queue.Queue()
    worker = TransferWorker(events)
    worker.start()
    restarts = []
    try:
        transfers = FirmwareTransfers(worker, str(tmp_path / "data"), restart=restarts.append)
        os.makedirs(transfers.dir)
        src = tmp_path / "src"
        (src / "firmware").mkdir(parents=True)
        (src / "firmware" / "__init__.py").write_text("")
        build_image(str(src), "9.9.9", transfers.image)
        with open(transfers.image, "rb") as f:
            good = f.read()
        with open(transfers.image, "wb") as f:
            f.write(good[:100])
        transfers.install()
        result = events.get(timeout=10).value
        assert not result.ok and "unreadable" in result.detail
        releases = Releases(str(tmp_path / "data" / "releases"))
        assert releases.versions() == []
        with open(transfers.image, "wb") as f:
            f.write(good)
        transfers.install()
        result = events.get(timeout=10).value
        assert result.op == "install" and result.ok and result.detail["version"] == "9.9.9"
        assert releases.versions() == ["9.9.9"] and releases.current() is None
        assert not os.path.exists(transfers.image)      # unpacked: not kept twice
        assert restarts == []
        transfers.activate("9.9.9")
        result = events.get(timeout=10).value
        assert (result.op, result.ok) == ("activate", True)
        assert releases.current() == "9.9.9" and releases.on_trial("9.9.9")
        assert restarts == ["firmware"]
        transfers.activate("1.2.3")
        result = events.get(timeout=10).value
        assert (result.op, result.ok) == ("activate", False) and "not staged" in result.detail
        assert restarts == ["firmware"]
    finally:
        worker.stop()
        worker.join(5)


def test_https_download_with_the_ca_bundle_and_refused_without(tls_files, tmp_path):
    import ssl
    cert, key = tls_files
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        url = "https://127.0.0.1:%d/image" % server.server_address[1]
        dest = str(tmp_path / "img")
        assert fetch(url, dest, ca_bundle=cert, timeout=5) == len(PAYLOAD)
        with pytest.raises(TransferError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
            fetch(url, dest + "2", timeout=5)     # not signed by a CA the system trusts
        assert not os.path.exists(dest + "2")
    finally:
        server.shutdown()
        server.server_close()


def test_http_put_upload(http_base, tmp_path):
    bundle = tmp_path / "diag.tar.gz"
    bundle.write_bytes(PAYLOAD)
    assert send(http_base + "/upload/", str(bundle), "CP-1-diag.tar.gz") == len(PAYLOAD)
    assert Handler.uploads == {"/upload/CP-1-diag.tar.gz": PAYLOAD}
    with pytest.raises(TransferError, match="HTTP 403"):
        send(http_base + "/elsewhere", str(bundle), "x")


def test_ftp_stor_upload_passive(ftp_base, tmp_path):
    bundle = tmp_path / "diag.tar.gz"
    bundle.write_bytes(PAYLOAD)
    url = "ftp://op:p%%40ss%%3Aword@%s/diag/" % ftp_base
    assert send(url, str(bundle), "CP-1-diag.tar.gz") == len(PAYLOAD)
    assert (tmp_path / "ftp" / "diag" / "CP-1-diag.tar.gz").read_bytes() == PAYLOAD
    with pytest.raises(TransferError, match="530"):
        send("ftp://op:bad@%s/diag/" % ftp_base, str(bundle), "y")
