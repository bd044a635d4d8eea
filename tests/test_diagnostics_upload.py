"""The firmware's uploads for GetDiagnostics and GetLog (firmware/diagnostics.py,
firmware/transfers.py send) against real servers on loopback: http.server with
PUT and POST multipart, an HTTPS server with a test CA, pyftpdlib (STOR,
passive). Upload, auth failure, 404, 405 -> POST, a server that stalls
mid-transfer (timeout, then the retry works), a server that closes early; the
bundle honours the time range and holds no secret."""

import io
import json
import logging
import os
import tarfile
import time

import pytest

from firmware.diagnostics import DiagnosticsUploader, RecentLog, classify, security_lines
from firmware.events import TRANSFER
from firmware.transfers import TransferError, send
from tests.support.firmware_transfers import running_worker
from tests.support.upload_servers import UploadServer, multipart_file
from tests.test_transfers import ftp_base  # noqa: F401 (the pyftpdlib fixture)

pytestmark = pytest.mark.filterwarnings("ignore:The async:DeprecationWarning")  # pyftpdlib

PASSWORD = "Basic-Pass-4242"
AUTH_KEY = "Auth-Key-0F0F0F"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEG\n-----END PRIVATE KEY-----"
NOW = time.time()


@pytest.fixture
def worker():
    with running_worker() as w:
        yield w


def recent_log():
    """A RecentLog with lines an hour ago, now, and secrets in them."""
    r = RecentLog()
    for created, name, text in ((NOW - 3600, "firmware", "old line"),
                                (NOW, "firmware", "password is %s" % PASSWORD),
                                (NOW, "ocpp.trace", '>> [2,"1","Heartbeat",{}]'),
                                (NOW, "firmware", "key " + PEM_KEY.replace("\n", " "))):
        record = logging.LogRecord(name, logging.INFO, __file__, 1, text, (), None)
        record.created = created
        r.emit(record)
    return r


def uploader(worker, tmp_path, **kw):
    ini = tmp_path / "station.ini"
    ini.write_text("[csms]\nurl = wss://cp:%s@csms.example/ocpp\npassword = %s\n"
                   % (PASSWORD, PASSWORD))
    kw.setdefault("timeout", 5)
    return DiagnosticsUploader(
        worker, str(tmp_path / "data"), "CP-UP-1",
        snapshot=lambda: {"status.json": {"link": "up", "note": "key %s" % AUTH_KEY},
                          "ocpp-configuration.json": {"pem": PEM_KEY}},
        secrets=lambda: [PASSWORD, AUTH_KEY], config_file=str(ini), recent=recent_log(), **kw)


def run(up, location, kind="DiagnosticsLog", op="diagnostics", start=None, stop=None,
        attempts=1, interval=0, name="CP-UP-1-diagnostics-20261203T100000Z.tar.gz", tag=1):
    up.upload(op, {"tag": tag, "kind": kind, "location": location, "name": name,
                   "start": start, "stop": stop, "attempts": attempts, "interval": interval})
    return final(up.worker.events, op)


def final(events, op, timeout=30):
    """The upload's result, after the attempts it announced (ok None), 1, 2, ..."""
    n = 0
    while True:
        event = events.get(timeout=timeout)
        assert event.kind == TRANSFER and event.value.op == op
        if event.value.ok is not None:
            return event.value
        n += 1
        assert event.value.detail["attempt"] == n and event.value.attempts == n


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                for m in tar.getmembers() if m.isfile()}


def test_http_put_bundle_with_no_secret_and_the_time_range(worker, tmp_path, upload_server):
    up = uploader(worker, tmp_path)
    r = run(up, upload_server.base + "/put/", start=NOW - 60, stop=NOW + 60)
    assert r.ok and r.detail == {"tag": 1} and r.attempts == 1
    files = members(upload_server.stored["/put/CP-UP-1-diagnostics-20261203T100000Z.tar.gz"])
    assert {"README.txt", "versions.json", "status.json", "ocpp-configuration.json",
            "station.ini", "firmware.log", "ocpp-trace.txt"} <= set(files)
    for name, text in files.items():
        for secret in (PASSWORD, AUTH_KEY, "MIGHAgEAMBMGByqGSM49AgEG"):
            assert secret not in text, (name, secret)
    assert "old line" not in files["firmware.log"]           # before startTime
    assert "password is <redacted>" in files["firmware.log"]
    assert "Heartbeat" in files["ocpp-trace.txt"] and "Heartbeat" not in files["firmware.log"]
    assert "password = <redacted>" in files["station.ini"]
    assert json.loads(files["status.json"])["link"] == "up"
    assert os.listdir(str(tmp_path / "data" / "diagnostics")) == []   # nothing left behind


def test_without_a_range_every_line_is_there(worker, tmp_path, upload_server):
    up = uploader(worker, tmp_path)
    assert run(up, upload_server.base + "/put/").ok
    files = members(next(iter(upload_server.stored.values())))
    assert "old line" in files["firmware.log"]


def test_a_server_that_refuses_put_gets_post_multipart(worker, tmp_path, upload_server):
    up = uploader(worker, tmp_path)
    assert run(up, upload_server.base + "/form/").ok
    path = "/form/CP-UP-1-diagnostics-20261203T100000Z.tar.gz"
    assert upload_server.hits[path] == 1        # one PUT, answered 405, then the POST
    filename, content = multipart_file(upload_server.stored[path], upload_server.forms[path])
    assert filename == "CP-UP-1-diagnostics-20261203T100000Z.tar.gz"
    assert "README.txt" in members(content)


def test_auth_failure_is_permission_denied_and_basic_auth_works(worker, tmp_path, upload_server):
    up = uploader(worker, tmp_path)
    r = run(up, upload_server.base + "/auth/")
    assert not r.ok and r.detail["failure"] == "PermissionDenied"
    assert r.detail["reason"].startswith("HTTP 401")
    host = upload_server.base.split("//", 1)[1]
    assert run(up, "http://op:s3cret@%s/auth/" % host).ok


def test_404_is_an_upload_failure_after_every_attempt(worker, tmp_path, upload_server):
    up = uploader(worker, tmp_path)
    r = run(up, upload_server.base + "/nowhere/", attempts=2, interval=0.05)
    assert not r.ok and r.attempts == 2
    assert r.detail["failure"] == "UploadFailure" and "HTTP 404" in r.detail["reason"]


def test_a_stalled_server_times_out_then_the_retry_works(worker, tmp_path, upload_server):
    up = uploader(worker, tmp_path, timeout=0.5)
    r = run(up, upload_server.base + "/stall/x.tar.gz", attempts=2, interval=0.05, name="x.tar.gz")
    assert r.ok and r.attempts == 2
    assert upload_server.hits["/stall/x.tar.gz"] == 2


def test_a_server_that_closes_early_fails_the_upload(worker, tmp_path, upload_server):
    up = uploader(worker, tmp_path, timeout=2)
    r = run(up, upload_server.base + "/early/x.tar.gz", attempts=2, interval=0.05, name="x.tar.gz")
    assert not r.ok and r.attempts == 2 and r.detail["failure"] == "UploadFailure"
    assert upload_server.hits["/early/x.tar.gz"] == 2


def test_https_with_the_ca_bundle_and_refused_without(worker, tmp_path, tls_files):
    s = UploadServer(tls_files)
    try:
        up = uploader(worker, tmp_path, ca_bundle=tls_files[0])
        assert run(up, s.base + "/put/").ok
        bare = uploader(worker, tmp_path)
        r = run(bare, s.base + "/put/", tag=2)
        assert not r.ok and "certificate" in r.detail["reason"].lower()
    finally:
        s.stop()


def test_ftp_stor_passive_and_wrong_password(worker, tmp_path, ftp_base):  # noqa: F811
    up = uploader(worker, tmp_path)
    url = "ftp://op:p%%40ss%%3Aword@%s/diag/" % ftp_base
    assert run(up, url).ok
    stored = tmp_path / "ftp" / "diag" / "CP-UP-1-diagnostics-20261203T100000Z.tar.gz"
    assert "README.txt" in members(stored.read_bytes())
    r = run(up, "ftp://op:bad@%s/diag/" % ftp_base)
    assert not r.ok and r.detail["failure"] == "PermissionDenied"
    assert "bad" not in r.detail["reason"]


def test_security_log_between_the_timestamps_rotated_file_first(worker, tmp_path, upload_server):
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    (logs / "security.log.1").write_text(
        '{"timestamp": "2026-12-01T10:00:00Z", "type": "StartupOfTheDevice"}\n'
        '{"timestamp": "2026-12-02T10:00:00Z", "type": "ResetOrReboot"}\n')
    (logs / "security.log").write_text(
        '{"timestamp": "2026-12-03T10:00:00Z", "type": "SettingSystemTime", "techInfo": "%s"}\n'
        'not json\n' % PASSWORD)
    up = uploader(worker, tmp_path)
    from ocpp_core.timestamps import parse_rfc3339
    r = run(up, upload_server.base + "/put/", kind="SecurityLog", op="log", name="s.log",
            start=parse_rfc3339("2026-12-02T00:00:00Z"))
    assert r.ok
    lines = upload_server.stored["/put/s.log"].decode().splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["ResetOrReboot", "SettingSystemTime"]
    assert json.loads(lines[1])["techInfo"] == "<redacted>"
    assert len(security_lines(str(tmp_path / "data"))) == 4      # no range: every line


def test_an_absent_security_log_is_an_empty_upload(worker, tmp_path, upload_server):
    up = uploader(worker, tmp_path)
    assert run(up, upload_server.base + "/put/", kind="SecurityLog", op="log", name="s.log").ok
    assert upload_server.stored["/put/s.log"] == b""


def test_a_cancelled_upload_stops_before_its_next_attempt(worker, tmp_path, upload_server):
    up = uploader(worker, tmp_path)
    up.upload("diagnostics", {"tag": 7, "kind": "DiagnosticsLog", "name": "c.tar.gz",
                              "location": upload_server.base + "/nowhere/", "start": None,
                              "stop": None, "attempts": 5, "interval": 30})
    deadline = time.monotonic() + 10
    while upload_server.hits.get("/nowhere/c.tar.gz") != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    up.cancel("diagnostics", 7)
    r = final(worker.events, "diagnostics", timeout=5)
    assert not r.ok and r.detail == {"tag": 7, "reason": "cancelled"} and r.attempts == 1


def test_failure_classes():
    assert classify("HTTP 403 Forbidden") == "PermissionDenied"
    assert classify("FTP 530 Login incorrect.") == "PermissionDenied"
    assert classify("HTTP 405 Method Not Allowed") == "NotSupportedOperation"
    assert classify("FTP 502 Command not implemented") == "NotSupportedOperation"
    assert classify("unsupported location x (http, https or ftp)") == "BadMessage"
    assert classify("timed out (no data for the timeout)") == "UploadFailure"


def test_send_refuses_an_unsupported_scheme(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    with pytest.raises(TransferError, match="unsupported location"):
        send("sftp://host/x", str(f), "x")


def test_the_recent_log_is_bounded_in_lines_and_characters():
    r = RecentLog(limit=5, max_chars=1000)
    for i in range(50):
        r.emit(logging.LogRecord("firmware", logging.INFO, __file__, 1, "line %d %s",
                                 (i, "x" * 300), None))
    lines = r.stamped(False)
    assert 1 <= len(lines) <= 3 and lines[-1][1].endswith("x" * 300)
    assert "line 49" in lines[-1][1] and r.chars <= 1000
