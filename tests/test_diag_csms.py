"""`python -m tools.diag csms` against real servers on 127.0.0.1: a websockets CSMS
with / without ocpp1.6, refusing the password, a TLS one with a self-signed
certificate made here by the openssl CLI; DNS and TCP failures. The password
must never appear in any output."""

import argparse
import base64
import io
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

from tools.diag import csms_check

CP_ID = "CP-DIAG-1"
PASSWORD = "S3cret-Diag-Pa55w0rd"
TOKEN = base64.b64encode(("%s:%s" % (CP_ID, PASSWORD)).encode()).decode()


# --- helpers ----------------------------------------------------------------------------

def parse(argv):
    """The dispatcher's parent parser as the brief defines it, with our subcommand."""
    p = argparse.ArgumentParser(prog="python -m tools.diag")
    p.add_argument("--json", action="store_true")
    p.add_argument("--socket", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--config", default=None)
    sub = p.add_subparsers(dest="command")
    csms_check.add_parser(sub)
    return p.parse_args(argv)


def run(argv, out=None):
    """(exit status, everything written)."""
    args = parse(argv)
    out = out or io.StringIO()
    code = args.func(args, out)
    text = out.getvalue()
    assert PASSWORD not in text, text
    assert TOKEN not in text, text
    return code, text


def run_json(argv):
    code, text = run(["--json"] + argv)
    return code, json.loads(text)


def write_ini(tmp_path, url, password=PASSWORD, ca_bundle=None, data_dir=None):
    lines = ["[station]", "charge_point_id = %s" % CP_ID]
    if data_dir:
        lines.append("data_dir = %s" % data_dir)
    lines += ["[csms]", "url = %s" % url]
    if password is not None:
        lines.append("password = %s" % password)
    if ca_bundle:
        lines.append("ca_bundle = %s" % ca_bundle)
    path = tmp_path / "station.ini"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


class Csms:
    """A websockets server in a thread; records what each client sent."""

    def __init__(self, subprotocols=("ocpp1.6",), password=PASSWORD, ssl_context=None,
                 known_ids=(CP_ID,)):
        self.password = password
        self.known_ids = known_ids
        self.requests = []       # (path, headers)
        self.messages = []       # anything a client sent after the upgrade
        self.closes = []         # close codes seen
        self.server = serve(self._handler, "127.0.0.1", 0,
                            subprotocols=list(subprotocols) if subprotocols else None,
                            process_request=self._check, ssl=ssl_context)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _check(self, conn, request):
        self.requests.append((request.path, request.headers))
        cp_id = request.path.rsplit("/", 1)[-1]
        if not request.path.startswith("/ocpp/") or cp_id not in self.known_ids:
            return conn.respond(404, "no such charge point\n")
        if self.password is not None:
            expected = "Basic " + base64.b64encode(
                ("%s:%s" % (cp_id, self.password)).encode()).decode()
            if request.headers.get("Authorization") != expected:
                return conn.respond(401, "bad credentials\n")
        return None

    def _handler(self, ws):
        try:
            for message in ws:
                self.messages.append(message)
        except ConnectionClosed:
            pass
        if ws.close_code is not None:
            self.closes.append(ws.close_code)

    def url(self, scheme="ws"):
        return "%s://127.0.0.1:%d/ocpp" % (scheme, self.port)

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def csms_factory():
    servers = []

    def start(**kw):
        s = Csms(**kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def make_cert(tmp_path, name="cert", subject_cn="localhost",
              san="DNS:localhost,IP:127.0.0.1", days=30):
    if not shutil.which("openssl"):
        pytest.skip("the openssl CLI is not installed: cannot make a test certificate")
    cert, key = tmp_path / (name + ".pem"), tmp_path / (name + ".key")
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
           "-days", str(days), "-subj", "/CN=%s/O=Diag Test CSMS" % subject_cn]
    if san:
        cmd += ["-addext", "subjectAltName=" + san]
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        pytest.skip("openssl could not make a certificate: %s" % r.stderr.decode()[-200:])
    return str(cert), str(key)


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(predicate, timeout=5):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- the whole path passes -------------------------------------------------------------------

def test_ws_all_steps_pass_with_the_config_file(tmp_path, csms_factory):
    csms = csms_factory()
    ini = write_ini(tmp_path, csms.url())
    code, text = run(["--config", ini, "csms"])
    assert code == 0, text
    assert "basic auth       yes (%d characters, [csms] password)" % len(PASSWORD) in text
    assert "HTTP 101 Switching Protocols, subprotocol ocpp1.6" in text
    assert "closed cleanly; no OCPP message sent" in text
    assert "PASS: the CSMS accepts %s" % CP_ID in text
    # the request the firmware would make
    path, headers = csms.requests[-1]
    assert path == "/ocpp/" + CP_ID
    assert headers.get("Sec-WebSocket-Protocol") == "ocpp1.6"
    assert headers.get("Authorization") == "Basic " + TOKEN
    # no BootNotification (or anything else), and a normal close
    assert wait_until(lambda: csms.closes), "the check did not close the websocket"
    assert csms.messages == []
    assert csms.closes == [1000]


def test_json_report(tmp_path, csms_factory):
    csms = csms_factory()
    ini = write_ini(tmp_path, csms.url())
    code, doc = run_json(["--config", ini, "csms"])
    assert code == 0
    assert doc["ok"] is True and doc["failed_step"] is None
    assert [s["step"] for s in doc["steps"]] == ["dns", "tcp", "tls", "websocket", "close"]
    assert [s["status"] for s in doc["steps"]] == ["skip", "pass", "skip", "pass", "pass"]
    assert doc["target"]["basic_auth"] == {"set": True, "length": len(PASSWORD),
                                           "source": "[csms] password"}
    ws_step = doc["steps"][3]
    assert ws_step["http_status"] == 101 and ws_step["subprotocol"] == "ocpp1.6"
    assert doc["steps"][1]["time_ms"] >= 0


def test_command_line_overrides_the_config(tmp_path, csms_factory):
    csms = csms_factory()
    ini = write_ini(tmp_path, "ws://127.0.0.1:%d/ocpp" % closed_port(), password="wrong-one")
    code, text = run(["--config", ini, "csms", "--csms-url", csms.url(), "--password", PASSWORD])
    assert code == 0, text
    assert "(%d characters, --password)" % len(PASSWORD) in text


def test_authorization_key_set_by_the_csms_replaces_the_configured_password(
        tmp_path, csms_factory):
    from ocpp_core.store import Store
    data_dir = tmp_path / "data"
    Store(str(data_dir)).save("config", {"AuthorizationKey": PASSWORD})
    csms = csms_factory()
    ini = write_ini(tmp_path, csms.url(), password="the-old-password", data_dir=str(data_dir))
    code, text = run(["--config", ini, "csms"])
    assert code == 0, text
    assert "AuthorizationKey set by the CSMS" in text
    assert "the-old-password" not in text


def test_password_from_stdin(tmp_path, csms_factory, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    csms = csms_factory()
    code, text = run(["csms", "--csms-url", csms.url(), "--charge-point-id", CP_ID,
                      "--password", "-"])
    assert code == 0, text
    assert "(%d characters, --password)" % len(PASSWORD) in text


def test_an_unreadable_authorization_key_is_noted(tmp_path, csms_factory, monkeypatch):
    import builtins
    from ocpp_core.store import Store
    data_dir = tmp_path / "data"
    Store(str(data_dir)).save("config", {"AuthorizationKey": "new-key-from-csms"})
    real_open = builtins.open

    def no_access(path, *a, **kw):
        if str(path) == str(data_dir / "config"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)
    monkeypatch.setattr(builtins, "open", no_access)
    csms = csms_factory()
    ini = write_ini(tmp_path, csms.url(), data_dir=str(data_dir))
    code, text = run(["--config", ini, "csms"])
    assert code == 0, text          # the configured password still works here
    assert "note: cannot read %s (permission denied)" % (data_dir / "config") in text


# --- the websocket upgrade fails -----------------------------------------------------------------

def test_wrong_password_is_reported_as_refused(tmp_path, csms_factory):
    csms = csms_factory(password="the-csms-expects-this")
    ini = write_ini(tmp_path, csms.url())
    code, text = run(["--config", ini, "csms"])
    assert code == 1
    assert "FAIL at step 4 (websocket upgrade): the CSMS refused the password for %s" % CP_ID \
        in text
    assert "HTTP 401" in text and "bad credentials" in text   # the server's answer
    code, doc = run_json(["--config", ini, "csms"])
    assert code == 1 and doc["failed_step"] == "websocket"
    assert doc["steps"][3]["http_status"] == 401
    assert doc["steps"][4]["status"] == "not run"
    assert PASSWORD not in json.dumps(doc)


def test_missing_password(tmp_path, csms_factory):
    csms = csms_factory()
    ini = write_ini(tmp_path, csms.url(), password=None)
    code, text = run(["--config", ini, "csms"])
    assert code == 1
    assert "basic auth       no" in text
    assert "requires a password for %s (HTTP 401) and none is set" % CP_ID in text


def test_unknown_charge_point_id_is_a_404(tmp_path, csms_factory):
    csms = csms_factory(known_ids=("CP-OTHER",))
    ini = write_ini(tmp_path, csms.url())
    code, text = run(["--config", ini, "csms"])
    assert code == 1
    assert "unknown path / charge point id" in text and "HTTP 404" in text
    assert "no such charge point" in text


def test_server_without_ocpp16(tmp_path, csms_factory):
    csms = csms_factory(subprotocols=None)
    ini = write_ini(tmp_path, csms.url())
    code, text = run(["--config", ini, "csms"])
    assert code == 1
    assert "the server does not speak OCPP 1.6-J" in text
    assert "(it answered: none)" in text
    assert csms.messages == []


# --- DNS and TCP -----------------------------------------------------------------------------------

def test_dns_failure(tmp_path):
    code, text = run(["csms", "--csms-url", "wss://nonexistent.invalid/ocpp",
                      "--charge-point-id", CP_ID, "--password", PASSWORD, "--timeout", "5"])
    assert code == 1
    assert "FAIL at step 1 (DNS lookup)" in text
    assert "nonexistent.invalid" in text
    assert "2  TCP connect        not run" in text


def test_dns_timeout(monkeypatch):
    release = threading.Event()

    def slow(*a, **kw):
        release.wait(5)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    monkeypatch.setattr(socket, "getaddrinfo", slow)
    start = time.monotonic()
    try:
        code, doc = run_json(["csms", "--csms-url", "ws://csms.example.com/ocpp",
                              "--charge-point-id", CP_ID, "--timeout", "0.3"])
    finally:
        release.set()
    assert time.monotonic() - start < 3
    assert code == 1 and doc["failed_step"] == "dns"
    assert "no answer from the DNS server within 0.3 s" in doc["steps"][0]["summary"]


def test_dns_lists_the_addresses(csms_factory):
    csms = csms_factory()
    code, doc = run_json(["csms", "--csms-url", "ws://localhost:%d/ocpp" % csms.port,
                          "--charge-point-id", CP_ID, "--password", PASSWORD])
    dns = doc["steps"][0]
    assert dns["status"] == "pass"
    assert "127.0.0.1" in dns["addresses"]
    # localhost may resolve to ::1 first, where nothing listens: the check goes on
    assert code == 0, doc


def test_tcp_refused(tmp_path):
    port = closed_port()
    code, text = run(["csms", "--csms-url", "ws://127.0.0.1:%d/ocpp" % port,
                      "--charge-point-id", CP_ID, "--password", PASSWORD])
    assert code == 1
    assert "FAIL at step 2 (TCP connect): connection refused by 127.0.0.1:%d" % port in text
    assert "nothing listens on that port" in text


# --- TLS ---------------------------------------------------------------------------------------------

def test_tls_with_the_ca_bundle_passes_and_shows_the_certificate(tmp_path, csms_factory):
    cert, key = make_cert(tmp_path)
    csms = csms_factory(ssl_context=server_context(cert, key))
    ini = write_ini(tmp_path, csms.url("wss"), ca_bundle=cert)
    code, text = run(["--config", ini, "csms"])
    assert code == 0, text
    assert "CA bundle        %s" % cert in text
    assert "certificate verified (CA bundle %s)" % cert in text
    assert "subject: CN=localhost, O=Diag Test CSMS" in text
    assert "names (SAN): DNS:localhost, IP:127.0.0.1" in text
    assert "(self-signed)" in text
    assert "days left" in text
    assert "host name 127.0.0.1: matches" in text
    assert "note: the CSMS certificate expires in" in text     # 30 days < 30-day warning
    code, doc = run_json(["--config", ini, "csms"])
    tls = doc["steps"][2]
    assert tls["status"] == "pass"
    assert tls["certificate"]["subject_cn"] == "localhost"
    assert tls["certificate"]["hostname_match"] is True
    assert 28 <= tls["certificate"]["days_left"] <= 30


def test_tls_self_signed_without_the_ca_bundle(tmp_path, csms_factory):
    cert, key = make_cert(tmp_path, days=400)
    csms = csms_factory(ssl_context=server_context(cert, key))
    ini = write_ini(tmp_path, csms.url("wss"))
    code, text = run(["--config", ini, "csms"])
    assert code == 1
    assert "CA bundle        the system's CAs" in text
    assert "FAIL at step 3 (TLS handshake): the server presents a self-signed certificate" \
        in text
    assert "subject: CN=localhost" in text       # shown although not trusted
    assert "valid until:" in text and "days left" in text
    assert "4  websocket upgrade  not run" in text
    assert csms.messages == []


def test_tls_wrong_host(tmp_path, csms_factory):
    cert, key = make_cert(tmp_path, subject_cn="csms.example.org", san="DNS:csms.example.org",
                          days=400)
    csms = csms_factory(ssl_context=server_context(cert, key))
    ini = write_ini(tmp_path, csms.url("wss"), ca_bundle=cert)
    code, doc = run_json(["--config", ini, "csms"])
    assert code == 1 and doc["failed_step"] == "tls"
    tls = doc["steps"][2]
    assert "the certificate is for DNS:csms.example.org, not for 127.0.0.1" in tls["summary"]
    assert tls["certificate"]["hostname_match"] is False
    code, text = run(["--config", ini, "csms"])
    assert "host name 127.0.0.1: DOES NOT MATCH" in text


def test_wss_to_a_plain_port(tmp_path, csms_factory):
    csms = csms_factory()
    code, text = run(["csms", "--csms-url", csms.url("wss"), "--charge-point-id", CP_ID,
                      "--password", PASSWORD, "--timeout", "3"])
    assert code == 1
    assert "FAIL at step 3 (TLS handshake)" in text
    assert "does not speak TLS" in text or "closed the connection during the TLS" in text


def test_expired_and_not_yet_valid_are_explained():
    class VerifyError(ssl.SSLCertVerificationError):
        pass
    e = VerifyError()
    e.verify_code, e.verify_message = 10, "certificate has expired"
    cert = {"not_after": "2020-01-01 00:00 UTC", "not_before": "2019-01-01 00:00 UTC",
            "self_signed": False, "issuer": "CN=Some CA", "names": []}
    summary, hint = csms_check._explain_verify_error(e, cert, "csms.example.com", None)
    assert "expired on 2020-01-01" in summary
    assert "clock" in hint
    e.verify_code, e.verify_message = 9, "certificate is not yet valid"
    summary, hint = csms_check._explain_verify_error(e, cert, "csms.example.com", None)
    assert "not valid yet" in summary and "clock is wrong" in hint
    e.verify_code, e.verify_message = 20, "unable to get local issuer certificate"
    summary, hint = csms_check._explain_verify_error(e, cert, "csms.example.com", "/x.pem")
    assert "not trusted by the CA bundle /x.pem" in summary


def test_certificate_parser(tmp_path):
    cert, _ = make_cert(tmp_path, subject_cn="*.example.net", san="DNS:*.example.net,DNS:x.org",
                        days=100)
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    info = csms_check.parse_certificate(der)
    assert info["subject_cn"] == "*.example.net"
    assert info["san_dns"] == ["*.example.net", "x.org"]
    assert info["self_signed"] is True
    assert 98 <= info["days_left"] <= 100
    assert csms_check.hostname_matches(info, "csms.example.net")
    assert csms_check.hostname_matches(info, "X.ORG")
    assert not csms_check.hostname_matches(info, "a.b.example.net")
    assert not csms_check.hostname_matches(info, "example.net")


# --- settings, progress --------------------------------------------------------------------------------

def test_no_url_is_a_settings_error():
    code, text = run(["csms", "--charge-point-id", CP_ID, "--password", PASSWORD])
    assert code == 2
    assert "no CSMS URL" in text


def test_a_bad_url_never_echoes_the_password():
    code, text = run(["csms", "--csms-url", "ws://user:%s@host/ocpp" % PASSWORD,
                      "--charge-point-id", CP_ID])
    assert code == 2
    assert "must not contain credentials" in text


def test_progress_on_a_terminal(tmp_path, csms_factory, monkeypatch, capsys):
    from tools.diag import render
    monkeypatch.setattr(render, "_stderr_tty", lambda: True)
    csms = csms_factory()
    ini = write_ini(tmp_path, csms.url())
    code, text = run(["--config", ini, "csms"])
    assert code == 0
    err = capsys.readouterr().err
    assert "\r\033[K2  connecting to 127.0.0.1:%d" % csms.port in err
    assert "4  websocket upgrade ws://127.0.0.1" in err
    assert "\r" not in text          # the report itself has no progress in it
    assert PASSWORD not in err


def test_through_the_dispatcher(tmp_path, csms_factory):
    """python -m tools.diag csms, as the technician runs it."""
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(root, "tools", "diag", "__main__.py")):
        pytest.skip("tools/diag/__main__.py (the dispatcher) is not there yet")
    csms = csms_factory()
    ini = write_ini(tmp_path, csms.url())
    r = subprocess.run([sys.executable, "-m", "tools.diag", "--config", ini, "csms", "--json"],
                       cwd=root, capture_output=True, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert json.loads(out)["ok"] is True
    assert PASSWORD not in out + r.stderr.decode()
    csms.password = "another-one"
    r = subprocess.run([sys.executable, "-m", "tools.diag", "--config", ini, "csms"],
                       cwd=root, capture_output=True, timeout=60)
    assert r.returncode == 1
    assert "the CSMS refused the password for %s" % CP_ID in r.stdout.decode()
    assert PASSWORD not in r.stdout.decode() + r.stderr.decode()
