"""Tests for firmware.link: real sockets on 127.0.0.1, a real websockets CSMS."""

import base64
import hashlib
import logging
import queue
import random
import socket
import ssl
import threading
import time

import pytest
from websockets.sync.server import serve

from firmware.link import (
    CsmsLink, LinkSettings, build_url, jittered, next_backoff, validate_csms_url,
)

CP_ID = "CP 1/é"
CP_PATH = "/ocpp/CP%201%2F%C3%A9"
PASSWORD = "Pa55-w0rd_0123456789"
TOKEN = base64.b64encode(("%s:%s" % (CP_ID, PASSWORD)).encode()).decode()
WAIT = 5.0


# --- helpers -------------------------------------------------------------------------

def next_event(events, timeout=WAIT):
    try:
        return events.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError("no link event within %s s" % timeout) from None


def wait_for(events, kind, timeout=WAIT):
    """The next event of this kind, skipping others (only "down"s may be skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        ev = next_event(events, max(0.01, deadline - time.monotonic()))
        if ev[0] == kind:
            return ev
        assert ev[0] == "down", "unexpected event %r while waiting for %s" % (ev, kind)


class Csms:
    """A websockets CSMS on 127.0.0.1, port 0, in a thread."""

    def __init__(self, **kwargs):
        self.requests = queue.Queue()       # (path, headers) of every upgrade request
        self.connections = queue.Queue()    # server-side connections, as they open
        self.received = queue.Queue()       # text frames from the charge point
        self._all = []
        user_process_request = kwargs.pop("process_request", None)

        def process_request(connection, request):
            self.requests.put((request.path, request.headers))
            if user_process_request:
                return user_process_request(connection, request)
            return None

        self.server = serve(self._handler, "127.0.0.1", 0,
                            process_request=process_request, **kwargs)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "ws://127.0.0.1:%d/ocpp" % self.port

    def _handler(self, connection):
        self._all.append(connection)
        self.connections.put(connection)
        for message in connection:
            self.received.put(message)

    def close(self):
        self.server.shutdown()
        for c in self._all:
            c.close()
        self.thread.join(2)


class SilentCsms:
    """Answers the websocket upgrade correctly (ocpp1.6), then never reads again."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.accepted = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "ws://127.0.0.1:%d/ocpp" % self.port

    def _run(self):
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted.append(sock)
            sock.settimeout(2)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                request += chunk
            key = ""
            for line in request.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                          "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n" % accept).encode())
            # ... and from now on: silence.

    def close(self):
        self._stop.set()
        self.thread.join(2)
        self.listener.close()
        for s in self.accepted:
            s.close()


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "WEBSOCKET_CLIENT_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def password_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    text = caplog.text
    assert PASSWORD not in text
    assert TOKEN not in text


@pytest.fixture
def servers():
    made = []

    def make(kind=Csms, **kwargs):
        s = kind(**kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def links():
    made = []

    def make(url, **kwargs):
        events = queue.Queue()
        settings = dict(url=url, charge_point_id=CP_ID, password=PASSWORD,
                        backoff_initial=0.05, backoff_max=0.1, connect_timeout=2)
        settings.update(kwargs)
        link = CsmsLink(LinkSettings(**settings), events, rng=random.Random(1))
        made.append(link)
        return link, events

    yield make
    for link in made:
        link.stop()
        for t in link._threads:
            assert not t.is_alive()


def assert_no_secret(reason):
    assert PASSWORD not in reason and TOKEN not in reason


# --- pure functions ---------------------------------------------------------------------

def test_build_url_encodes_the_id_and_tolerates_a_trailing_slash():
    assert build_url("ws://csms.example:8180/ocpp", "CP001") == "ws://csms.example:8180/ocpp/CP001"
    assert build_url("ws://csms.example:8180/ocpp/", "CP001") == "ws://csms.example:8180/ocpp/CP001"
    assert build_url("wss://csms.example/", "CP 1/é") == "wss://csms.example/CP%201%2F%C3%A9"
    assert build_url("wss://csms.example", "a?b#c") == "wss://csms.example/a%3Fb%23c"
    with pytest.raises(ValueError):
        build_url("ws://csms.example", "")


@pytest.mark.parametrize("url", ["ws://h/ocpp", "wss://h:8443/x/y", "WSS://h", "ws://[::1]:9000/"])
def test_validate_accepts(url):
    validate_csms_url(url)


@pytest.mark.parametrize("url, words", [
    ("http://h/ocpp", "ws:// or wss://"),
    ("h/ocpp", "ws:// or wss://"),
    ("", "empty"),
    ("ws:///ocpp", "no host"),
    ("ws://h:99999/", "port"),
    ("ws://h/a b", "spaces"),
    ("ws://user:" + PASSWORD + "@h/", "credentials"),
])
def test_validate_rejects_with_one_line(url, words):
    with pytest.raises(ValueError) as info:
        validate_csms_url(url)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert PASSWORD not in message


def test_backoff_doubles_up_to_the_cap():
    seq, d = [], None
    for _ in range(9):
        d = next_backoff(d, 1.0, 60.0)
        seq.append(d)
    assert seq == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert next_backoff(None, 5.0, 3.0) == 3.0


def test_jitter_stays_between_half_and_full_delay():
    rng = random.Random(7)
    values = [jittered(4.0, rng) for _ in range(200)]
    assert all(2.0 <= v <= 4.0 for v in values)
    assert max(values) - min(values) > 1.0          # it does vary
    assert jittered(4.0, random.Random(3)) == jittered(4.0, random.Random(3))


def test_settings_repr_hides_the_password():
    s = LinkSettings(url="ws://h/ocpp/CP1", charge_point_id="CP1", password=PASSWORD)
    assert PASSWORD not in repr(s)


# --- against a real CSMS ---------------------------------------------------------------

def test_connects_with_ocpp16_path_and_basic_auth_and_frames_flow(servers, links):
    csms = servers(subprotocols=["ocpp1.6"])
    link, events = links(build_url(csms.url, CP_ID))
    assert not link.send("too early")
    link.start()
    assert next_event(events) == ("up", None)
    assert link.connected and link.connected_since is not None and link.attempts == 0

    path, headers = csms.requests.get(timeout=WAIT)
    assert path == CP_PATH
    assert headers["Authorization"] == "Basic " + TOKEN
    server_side = csms.connections.get(timeout=WAIT)
    assert server_side.subprotocol == "ocpp1.6"

    assert link.send('[2,"1","Heartbeat",{}]')
    assert csms.received.get(timeout=WAIT) == '[2,"1","Heartbeat",{}]'
    server_side.send('[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]')
    assert next_event(events) == ("frame", '[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]')

    started = time.monotonic()
    link.stop()
    assert time.monotonic() - started < 1.0
    link.stop()                                   # idempotent
    assert next_event(events) == ("down", "link stopped")
    assert not link.connected and not link.send("late")
    assert events.empty()


def test_no_password_means_no_authorization_header(servers, links):
    csms = servers(subprotocols=["ocpp1.6"])
    link, events = links(build_url(csms.url, "CP1"), charge_point_id="CP1", password=None)
    link.start()
    assert next_event(events) == ("up", None)
    _, headers = csms.requests.get(timeout=WAIT)
    assert "Authorization" not in headers


def test_server_without_subprotocol_is_refused_and_retried(servers, links, caplog):
    csms = servers()                              # accepts, but names no subprotocol
    link, events = links(build_url(csms.url, CP_ID))
    link.start()
    for _ in range(3):
        kind, reason = next_event(events)
        assert kind == "down"
        assert reason == "CSMS did not accept subprotocol ocpp1.6 (it answered: none)"
    assert link.attempts >= 3 and not link.connected
    assert link.last_error == reason
    assert link._threads[0].is_alive()
    assert any(r.name == "ocpp.link" and r.levelno >= logging.WARNING and "ocpp1.6" in r.getMessage()
               for r in caplog.records)


def test_server_rejecting_the_subprotocol_with_400(servers, links):
    csms = servers(subprotocols=["ocpp2.0.1"])
    link, events = links(build_url(csms.url, CP_ID))
    link.start()
    kind, reason = next_event(events)
    assert kind == "down"
    assert reason.startswith("CSMS did not accept subprotocol ocpp1.6 (HTTP 400")
    assert next_event(events)[0] == "down"        # still retrying


def test_server_answering_another_subprotocol(servers, links):
    csms = servers(subprotocols=["ocpp2.0.1"],
                   select_subprotocol=lambda connection, offered: "ocpp2.0.1")
    link, events = links(build_url(csms.url, CP_ID))
    link.start()
    assert next_event(events) == (
        "down", "CSMS did not accept subprotocol ocpp1.6 (it answered: 'ocpp2.0.1')")


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials(servers, links, status):
    csms = servers(subprotocols=["ocpp1.6"],
                   process_request=lambda connection, request: connection.respond(
                       status, "no (%s)\n" % request.headers.get("Authorization")))
    link, events = links(build_url(csms.url, CP_ID))
    link.start()
    kind, reason = next_event(events)
    assert (kind, reason) == ("down", "CSMS refused the credentials (HTTP %d)" % status)
    assert next_event(events) == ("security", ("FailedToAuthenticateAtCentralSystem",
                                               "HTTP %d on the websocket upgrade" % status))
    assert next_event(events)[0] == "down"


def test_other_http_status_is_readable(servers, links):
    csms = servers(subprotocols=["ocpp1.6"],
                   process_request=lambda connection, request: connection.respond(404, "no such CP\n"))
    link, events = links(build_url(csms.url, CP_ID))
    link.start()
    kind, reason = next_event(events)
    assert kind == "down" and "HTTP 404" in reason and "\n" not in reason


def test_server_close_then_reconnect_and_reconnect_request(servers, links):
    csms = servers(subprotocols=["ocpp1.6"])
    link, events = links(build_url(csms.url, CP_ID))
    link.start()
    assert next_event(events) == ("up", None)
    first = csms.connections.get(timeout=WAIT)
    csms.requests.get(timeout=WAIT)

    first.close(code=1001, reason="maintenance")
    kind, reason = next_event(events)
    assert kind == "down" and reason == "CSMS closed the connection (code 1001: maintenance)"
    assert next_event(events) == ("up", None)
    csms.connections.get(timeout=WAIT)
    csms.requests.get(timeout=WAIT)

    # A new password is used from the next connection on.
    link.set_password("n3w-" + PASSWORD)
    link.reconnect()
    assert next_event(events) == ("down", "reconnect requested")
    assert next_event(events) == ("up", None)
    _, headers = csms.requests.get(timeout=WAIT)
    new_token = base64.b64encode(("%s:n3w-%s" % (CP_ID, PASSWORD)).encode()).decode()
    assert headers["Authorization"] == "Basic " + new_token


def test_pongs_keep_the_link_alive(servers, links):
    csms = servers(subprotocols=["ocpp1.6"])
    link, events = links(build_url(csms.url, CP_ID), ping_interval=0.1)
    link.start()
    assert next_event(events) == ("up", None)
    with pytest.raises(queue.Empty):               # 5 ping intervals of nothing but pongs
        events.get(timeout=0.5)
    assert link.connected


def test_silent_server_is_detected_within_two_ping_intervals(servers, links):
    csms = servers(SilentCsms)
    link, events = links(build_url(csms.url, CP_ID), ping_interval=0.2)
    link.start()
    assert next_event(events) == ("up", None)
    up_at = time.monotonic()
    kind, reason = next_event(events, timeout=2)
    elapsed = time.monotonic() - up_at
    assert (kind, reason) == ("down", "no answer to websocket pings for 0.4 s")
    assert 0.3 <= elapsed < 1.5
    assert not link.connected and not link.send("x")
    assert next_event(events) == ("up", None)     # and it comes back


def test_connection_refused_is_readable_and_stop_is_prompt_in_backoff(links):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))                # bound, not listening: connect is refused
    port = blocker.getsockname()[1]
    try:
        link, events = links("ws://127.0.0.1:%d/ocpp/CP1" % port,
                             backoff_initial=30, backoff_max=60)
        link.start()
        assert next_event(events) == ("down", "connection refused by 127.0.0.1:%d" % port)
        assert not link.send("x")
        started = time.monotonic()
        link.stop()
        assert time.monotonic() - started < 0.5
        assert not any(t.is_alive() for t in link._threads)
    finally:
        blocker.close()


def test_unknown_host_is_readable(links):
    link, events = links("ws://no-such-host.invalid/ocpp/CP1")
    link.start()
    kind, reason = next_event(events)
    assert kind == "down" and reason.startswith("cannot resolve the CSMS host no-such-host.invalid")
    assert "\n" not in reason


def test_reasons_never_carry_the_password(servers, links):
    # A hostile CSMS echoing the Authorization header in its error body.
    csms = servers(process_request=lambda connection, request: connection.respond(
        400, "bad %s %s" % (request.headers.get("Authorization"), PASSWORD)))
    link, events = links(build_url(csms.url, CP_ID))
    link.start()
    kind, reason = next_event(events)
    assert kind == "down" and "HTTP 400" in reason
    assert_no_secret(reason)
    assert_no_secret(link.last_error)


# --- wss:// ------------------------------------------------------------------------------



def test_wss_with_ca_bundle(servers, links, tls_files):
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    csms = servers(subprotocols=["ocpp1.6"], ssl=context)
    url = build_url("wss://127.0.0.1:%d/ocpp" % csms.port, CP_ID)

    link, events = links(url, ca_bundle=cert)
    link.start()
    assert next_event(events) == ("up", None)
    link.stop()

    untrusted, events2 = links(url)               # system CAs don't know this certificate
    untrusted.start()
    kind, reason = next_event(events2)
    assert kind == "down" and reason.startswith("TLS certificate of 127.0.0.1:%d rejected" % csms.port)


# --- the handshake's pieces (shared with tools.diag csms) --------------------------------------

def test_request_headers_carry_the_subprotocol_and_basic_auth():
    from firmware.link import basic_auth_token, request_headers
    assert basic_auth_token(CP_ID, PASSWORD) == TOKEN
    assert request_headers(CP_ID, PASSWORD) == ["Sec-WebSocket-Protocol: ocpp1.6",
                                                "Authorization: Basic " + TOKEN]
    assert request_headers(CP_ID, None) == ["Sec-WebSocket-Protocol: ocpp1.6"]
    assert request_headers(CP_ID, "") == ["Sec-WebSocket-Protocol: ocpp1.6"]


def test_tls_options_verify_the_server_for_wss_only():
    from firmware.link import tls_options
    assert tls_options(False, "/etc/ssl/ca.pem") is None
    assert tls_options(True, None) == {"cert_reqs": ssl.CERT_REQUIRED}
    assert tls_options(True, "/etc/ssl/ca.pem") == {"cert_reqs": ssl.CERT_REQUIRED,
                                                    "ca_certs": "/etc/ssl/ca.pem"}


@pytest.mark.parametrize("answered, accepted", [
    ("ocpp1.6", True), (" OCPP1.6 ", True), ("ocpp2.0.1", False), ("", False), (None, False),
])
def test_subprotocol_accepted(answered, accepted):
    from firmware.link import subprotocol_accepted
    assert subprotocol_accepted(answered) is accepted


def test_an_authorization_key_replaces_the_configured_password():
    from firmware.link import effective_password
    assert effective_password("from-the-ini", "set-by-the-csms") == "set-by-the-csms"
    assert effective_password("from-the-ini", None) == "from-the-ini"
    assert effective_password("from-the-ini", "") == "from-the-ini"
    assert effective_password(None, None) is None


def test_link_events_are_named(servers, links):
    from firmware.events import LinkEvent
    csms = servers(subprotocols=["ocpp1.6"])
    link, events = links(build_url(csms.url, CP_ID))
    link.start()
    up = next_event(events)
    assert type(up) is LinkEvent and (up.kind, up.connector, up.value) == ("up", None, None)
    link.stop()
    down = next_event(events)
    assert type(down) is LinkEvent and (down.kind, down.value) == ("down", "link stopped")
