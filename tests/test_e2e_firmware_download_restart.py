"""UpdateFirmware whose download is cut by kill -9 (updates.py: "an interrupted
download or check starts again (Downloading is sent again)"), end to end: the
firmware subprocess (`--hal mock`), the `ocpp`-package CSMS, an http.server on
loopback that sends half of the image and stalls. After the restart on the same
data dir the download starts again and the update completes; the half image is
never taken for a complete one."""

import http.server
import os
import signal
import threading
import time

import pytest

from tests.test_e2e_firmware_update import fw_statuses, make_image, started, update_firmware


class _StallFirst(http.server.BaseHTTPRequestHandler):
    """GET /fw.img: the first request gets half of the image, then nothing
    (until released); later ones get all of it."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.hits += 1
        body = srv.image
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.hits == 1:
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            srv.half_sent.set()
            srv.release.wait(30)
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def stalling(tmp_path):
    make_image("9.9.9", tmp_path / "fw.img")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StallFirst)
    server.daemon_threads = True
    server.image = (tmp_path / "fw.img").read_bytes()
    server.hits, server.half_sent, server.release = 0, threading.Event(), threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server, "http://127.0.0.1:%d/fw.img" % server.server_address[1]
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def wait_written(path, timeout=10):
    """The partial download on disk holds some of the image (the worker reads
    in CHUNK pieces: the last one it waits for is not written yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return os.path.getsize(path)
        time.sleep(0.01)
    raise AssertionError("%s never written" % path)


def test_kill_9_mid_download_starts_again_and_installs(ocpp_csms, firmware, stalling, tmp_path):
    server, location = stalling
    image_dir = tmp_path / "data" / "firmware"
    fw, releases = started(firmware, ocpp_csms, tmp_path)
    update_firmware(ocpp_csms, location)
    assert fw_statuses(ocpp_csms, "Downloading") == ["Downloading"]
    assert server.half_sent.wait(20)
    assert wait_written(str(image_dir / "update.img.part")) <= len(server.image) // 2
    fw.stop(signal.SIGKILL)
    # What kill -9 left: the half image only as .part, nothing staged.
    assert not (image_dir / "update.img").exists()
    assert releases.versions() == []
    server.release.set()

    fw = firmware(ocpp_csms.url)
    assert ocpp_csms.wait_for("BootNotification", timeout=20)["firmwareVersion"] != "9.9.9"
    assert fw_statuses(ocpp_csms, "Installing") == ["Downloading", "Downloaded", "Installing"]
    assert ocpp_csms.wait_for("BootNotification", timeout=30)["firmwareVersion"] == "9.9.9"
    assert fw_statuses(ocpp_csms, "Installed") == ["Installed"]
    assert server.hits == 2
    fw.wait_log("release 9.9.9 confirmed")
    assert releases.current() == "9.9.9" and releases.complete("9.9.9")
    assert not (image_dir / "update.img.part").exists()
    assert not (image_dir / "update.img").exists()      # unpacked, then removed
