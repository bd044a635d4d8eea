"""The websocket link from the charge point to the CSMS (OCPP 1.6-J).

The link owns the network side only; the OCPP engine stays single-threaded.
Two daemon threads do the work:

- the link thread connects, reads, sends pings, notices a dead link and
  reconnects with exponential back-off;
- the writer thread drains the outbox, so a stalled TCP send never blocks the
  main loop (send() only queues).

The main loop learns what happened from the events queue it was given:
LinkEvent("up", None), LinkEvent("frame", text) and LinkEvent("down", reason),
in that order for each connection; no frame is reported outside an up/down pair.

The handshake's pieces are public (request_headers, tls_options,
subprotocol_accepted, effective_password) so that `tools.diag csms` makes
exactly the firmware's request.

Security: the basic-auth password (the AuthorizationKey) is never logged and is
scrubbed, in every form it is sent in, from every reason string; settings print
without it. A password of 32..40 hex digits is sent as the bytes it represents
(basic_auth_password: the reading of whitepaper 7.2 and the OCTT's TC_085_CS).

Security profiles (whitepaper "Improved security for OCPP 1.6-J" ed. 3, 2.1-2.5):
with settings.security_profile None the link is what it always was (the URL's
scheme decides, ca_bundle or the system CAs verify wss://). With a profile:
  0, 1  the configured URL, Basic auth when a password is set (0 is "no profile
        configured yet": the station behaves as before the extension);
  2     wss:// (tls_url, else the URL with its scheme made wss), Basic auth, the
        server verified against the context tls_context(2) returns: the installed
        CentralSystemRootCertificates, TLS 1.2 at least, the whitepaper's cipher
        suites, the host name checked (client_context below);
  3     as 2 without Basic auth and with the charge point certificate as the
        client certificate (tls_context(3)).
upgrade(profile) tries a higher profile: the first TRIAL_ATTEMPTS failed
connections in a row give up on it, put the previous profile back and report
LinkEvent("fallback", (tried, previous, reason)) (A05.FR.08). A TLS failure
worth a security event is reported as LinkEvent("security", (type, techInfo)),
once per kind until the link is up again.
"""

import base64
import dataclasses
import logging
import queue
import random
import selectors
import socket
import ssl
import struct
import threading
import time
from typing import Optional
from urllib.parse import quote, urlsplit, urlunsplit

import websocket

from firmware.events import DOWN, FALLBACK, FRAME, SECURITY, UP, LinkEvent
from ocpp_core.redact import mask_secrets

log = logging.getLogger("ocpp.link")

SUBPROTOCOL = "ocpp1.6"
POLL_INTERVAL = 0.25      # longest the link thread waits before checking stop/pings
CLOSE_WAIT = 0.5          # how long a polite close waits for the CSMS's close frame
STOP_JOIN = 2.0           # stop() gives the threads this long in all
MAX_REASON = 200

TRIAL_ATTEMPTS = 3        # failed connections with a new profile before falling back

# TLS 1.2 suites of A00.FR.318 (both pairs; ECDHE first: forward secrecy) in
# OpenSSL's names. TLS 1.3 suites are OpenSSL's fixed AEAD set, all acceptable.
TLS12_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384"))

INVALID_CS_CERTIFICATE = "InvalidCentralSystemCertificate"
INVALID_TLS_VERSION = "InvalidTLSVersion"
INVALID_TLS_CIPHER = "InvalidTLSCipherSuite"

_RECONNECT = object()   # outbox marker: drop after the frames queued before it
_PING = object()          # outbox item: send a websocket ping


# --- URLs ----------------------------------------------------------------------

def validate_csms_url(url):
    """Raise ValueError (one line) unless url is a usable ws:// or wss:// URL."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("CSMS URL is empty")
    if any(c.isspace() for c in url):
        raise ValueError("CSMS URL must not contain spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("CSMS URL is malformed or has an invalid port") from None
    if parts.scheme.lower() not in ("ws", "wss"):
        raise ValueError("CSMS URL must start with ws:// or wss:// (got %r)"
                         % (parts.scheme + ":" if parts.scheme else url[:40]))
    if parts.username is not None or parts.password is not None:
        # Don't echo the URL: it would carry the credentials.
        raise ValueError("CSMS URL must not contain credentials; set the AuthorizationKey instead")
    if not parts.hostname:
        raise ValueError("CSMS URL has no host: %r" % url)
    if parts.fragment:
        raise ValueError("CSMS URL must not contain a #fragment")


def build_url(csms_url, charge_point_id):
    """<csms-url>/<charge-point-id>, the id percent-encoded (OCPP-J 3.1.1)."""
    validate_csms_url(csms_url)
    if not isinstance(charge_point_id, str) or not charge_point_id:
        raise ValueError("charge point id is empty")
    parts = urlsplit(csms_url)
    path = parts.path.rstrip("/") + "/" + quote(charge_point_id, safe="")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


# --- the handshake ---------------------------------------------------------------

def effective_password(configured, authorization_key):
    """The basic-auth password the firmware uses: an AuthorizationKey the CSMS
    set (OCPP configuration, kept in the data dir) replaces the configured one
    (--password, else [csms] password)."""
    return authorization_key or configured


# How the configured password becomes the Basic auth password. The security
# whitepaper ed. 3 (7.2 AuthorizationKey, A00.FR.205) defines the key as "minimal
# length: 16 bytes ... Hexadecimal represented (20 bytes maximum, represented as a
# string of up to 40 hexadecimal digits)"; the OCTT's TC_085_CS expects the header
# "Basic base64(<ChargePointId>:<configured password, non hex representation>)"
# and TC_073_CS has the CSMS send "the hex encoded representation" in
# ChangeConfiguration. Reading chosen (as the OCTT test case document, SteVe's
# fix of its issue 1895 and ocpp-cp-simulator's of its issue 260; EVerest
# libocpp's isHexNotation decodes any even-length hex string):
#   32..40 hexadecimal digits, an even number -> the 16..20 bytes they represent;
#   anything else (16..20 characters above all) -> the text itself, UTF-8.
# Compatibility (stations and CSMSs that used a 32..40 digit key as written, as
# this firmware did before): when the CSMS refuses the decoded form with HTTP
# 401/403 the link tries the key as written, and keeps whichever was accepted
# (CsmsLink._attempt). OCPP 2.0.1's BasicAuthPassword is the same 16..40 range.
HEX_PASSWORD_MIN, HEX_PASSWORD_MAX = 32, 40
_HEX = frozenset("0123456789abcdefABCDEF")


def is_hex_password(password):
    """True when the whitepaper's hexadecimal representation is read."""
    return (isinstance(password, str) and HEX_PASSWORD_MIN <= len(password) <= HEX_PASSWORD_MAX
            and len(password) % 2 == 0 and all(c in _HEX for c in password))


def basic_auth_password(password, as_written=False):
    """The bytes after "<id>:" in the Basic credentials (see the reading above);
    as_written: the key's text even when it is hexadecimal (the fall back)."""
    if isinstance(password, bytes):
        return password
    if is_hex_password(password) and not as_written:
        return bytes.fromhex(password)
    return password.encode("utf-8")


def basic_auth_token(charge_point_id, password, as_written=False):
    """The credentials of the Authorization header: base64 of "<id>:<password>"."""
    userpass = charge_point_id.encode("utf-8") + b":" + basic_auth_password(password, as_written)
    return base64.b64encode(userpass).decode("ascii")


def password_secrets(charge_point_id, password):
    """Every form of the password that must never appear in a log line."""
    if not password:
        return ()
    out = [password]
    for as_written in (False, True):
        raw = basic_auth_password(password, as_written)
        text = raw.decode("utf-8", "replace")
        out += [basic_auth_token(charge_point_id, password, as_written),
                "%s:%s" % (charge_point_id, text), text]
    return tuple(dict.fromkeys(s for s in out if s))


def request_headers(charge_point_id, password, as_written=False):
    """The upgrade request's extra headers. The subprotocol goes in as a plain
    header (the same request as subprotocols=["ocpp1.6"]) so that the caller
    sees what the CSMS answered instead of websocket-client refusing it."""
    headers = ["Sec-WebSocket-Protocol: " + SUBPROTOCOL]
    if password:
        headers.append("Authorization: Basic "
                       + basic_auth_token(charge_point_id, password, as_written))
    return headers


def tls_options(secure, ca_bundle):
    """websocket-client's sslopt: the server's certificate verified (against
    ca_bundle, else the system CAs) for wss://; None for ws://."""
    if not secure:
        return None
    options = {"cert_reqs": ssl.CERT_REQUIRED}
    if ca_bundle:
        options["ca_certs"] = ca_bundle
    return options


def client_context(ca_data, client_files=None, system_cas=False):
    """The TLS context of a profile 2/3 connection: only ca_data (PEM text of the
    installed CentralSystemRootCertificates) is trusted, plus the system CAs when
    the station config says so; TLS 1.2 or newer (A00.FR.312), the whitepaper's
    suites (A00.FR.318), no compression (Python's default), host name checked
    against the certificate (A00.FR.308/412: the subjectAltName, else the CN).
    client_files (cert chain path, key path): profile 3's certificate.
    ValueError (one line) when there is nothing to trust or no client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.options |= ssl.OP_NO_COMPRESSION
    if system_cas:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if ca_data:
        context.load_verify_locations(cadata=ca_data)
    elif not system_cas:
        raise ValueError("no CentralSystemRootCertificate installed")
    if client_files is not None:
        context.load_cert_chain(*client_files)
    return context


def profile_context(store, profile, system_cas=False):
    """client_context for a profile from a certificate store (firmware/certificates.py):
    its CentralSystemRootCertificates, and for profile 3 its charge point certificate.
    Made afresh for every connection, so that what was installed since is used."""
    client = None
    if profile >= 3:
        client = store.client_files()
        if client is None:
            raise ValueError("no valid charge point certificate installed")
    return client_context(store.ca_data(), client, system_cas=system_cas)


def tls_failure_event(e):
    """(security event type, techInfo) for a failed TLS handshake, or None when
    the failure says nothing about the CSMS's security (A00.FR.309/315/322)."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return INVALID_CS_CERTIFICATE, _one_line(e.verify_message or e.reason or e)[:255]
    if isinstance(e, ssl.SSLError):
        reason = (e.reason or "").upper()
        if "VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
            return INVALID_TLS_VERSION, reason[:255]
        if "CIPHER" in reason:
            return INVALID_TLS_CIPHER, reason[:255]
    return None


def profile_url(url, profile, tls_url=None):
    """The URL a profile connects to: profile 2/3 use tls_url, else url made wss://."""
    if profile is None or profile < 2:
        return url
    if tls_url:
        return tls_url
    parts = urlsplit(url)
    return urlunsplit(("wss",) + tuple(parts[1:]))


def subprotocol_accepted(answered):
    """Did the CSMS agree to ocpp1.6 (its Sec-WebSocket-Protocol header, or None)?"""
    return answered is not None and answered.strip().lower() == SUBPROTOCOL


# --- back-off --------------------------------------------------------------------

def next_backoff(previous, initial, cap):
    """The next nominal delay: initial first, then doubling up to cap."""
    if previous is None or previous <= 0:
        return min(initial, cap)
    return min(previous * 2.0, cap)


def jittered(delay, rng=random):
    """A random delay between half and all of the nominal one."""
    return rng.uniform(delay / 2.0, delay)


# --- settings ----------------------------------------------------------------------

@dataclasses.dataclass
class LinkSettings:
    url: str                                  # full URL, see build_url()
    charge_point_id: str
    password: Optional[str] = dataclasses.field(default=None, repr=False)
    ca_bundle: Optional[str] = None           # wss:// only; system CAs when None
    ping_interval: float = 60                 # seconds; 0 disables pings
    connect_timeout: float = 10
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    security_profile: Optional[int] = None    # None: as before the security extension
    tls_url: Optional[str] = None             # full URL for profiles 2/3 (see profile_url)
    tls_context: Optional[object] = None      # fn(profile) -> ssl.SSLContext, profiles 2/3


# --- helpers -------------------------------------------------------------------------

def _one_line(text, secrets=()):
    # Our own credentials: masked however short they are.
    text = mask_secrets(" ".join(str(text).split()), secrets, shortest=1)
    if len(text) > MAX_REASON:
        text = text[:MAX_REASON - 3] + "..."
    return text


def _seconds(s):
    return "%g" % round(s, 1)


def _shutdown_socket(ws):
    """Wake any thread blocked on ws (recv or send) without closing the fd."""
    sock = getattr(ws, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass


class _Conn:
    """One live connection; outbox items refer to it so that nothing queued for
    an old connection is sent on a new one."""

    def __init__(self, ws):
        self.ws = ws
        self.lock = threading.Lock()
        self.closed = False
        self.drop_reason = None
        self.graceful = False

    def drop(self, reason, graceful):
        """Ask the link thread to end this connection (first reason wins)."""
        with self.lock:
            if self.closed or self.drop_reason is not None:
                return
            self.drop_reason = reason
            self.graceful = graceful
        if not graceful:
            _shutdown_socket(self.ws)


def _verified_chain(ws):
    """The DER certificates of the verified chain (leaf first) of a TLS
    connection; the leaf alone where Python cannot tell more."""
    sock = getattr(ws, "sock", None)
    try:
        chain = sock._sslobj.get_verified_chain()
        return [c.public_bytes(1) for c in chain]     # 1: _ssl.ENCODING_DER
    except Exception:
        try:
            leaf = sock.getpeercert(binary_form=True)
            return [leaf] if leaf else None
        except Exception:
            return None


# --- the link -------------------------------------------------------------------------

class CsmsLink:
    def __init__(self, settings, events, rng=None):
        validate_csms_url(settings.url)
        self.settings = settings
        self.events = events
        self._rng = rng or random.Random()
        self._password = settings.password
        self._as_written = False      # a hex password sent as written (the CSMS wanted it)
        self._ping_interval = float(settings.ping_interval or 0)
        self._stop = threading.Event()
        self._outbox = queue.Queue()
        self._conn = None
        self._connecting = None
        self._threads = []
        self._started = False
        self._connected = False
        self._connected_since = None
        self._last_error = None
        self._attempts = 0
        self._profile = settings.security_profile
        self._trial = None            # {"previous": p, "failures": n} while upgrading
        self._reported = set()        # security event types told since the link was up
        self.tls_chain = None         # DER certificates of the current TLS chain
        self._aim(self._profile)

    def _aim(self, profile):
        self._url = profile_url(self.settings.url, profile, self.settings.tls_url)
        parts = urlsplit(self._url)
        self._secure = parts.scheme.lower() == "wss"
        self._where = "%s:%d" % (parts.hostname, parts.port or (443 if self._secure else 80))
        self._host = parts.hostname

    @property
    def security_profile(self):
        return self._profile

    @property
    def trial(self):
        """The profile being tried and the one to fall back to, or None."""
        t = self._trial
        return None if t is None else (self._profile, t["previous"])

    def set_profile(self, profile):
        """The profile to connect with (start-up: no fall back from it)."""
        self._trial = None
        self._profile = profile
        self._aim(profile)

    def upgrade(self, profile):
        """Use a higher security profile from the next connection on; it falls back
        to the present one if it cannot connect (see the module docstring)."""
        if self._profile is not None and profile <= self._profile:
            return
        self._trial = {"previous": self._profile, "failures": 0}
        self._profile = profile
        self._aim(profile)

    def __repr__(self):
        return "<CsmsLink %s %s>" % (self._url, "up" if self._connected else "down")

    # --- read-only state -------------------------------------------------------
    @property
    def connected(self):
        return self._connected

    @property
    def connected_since(self):
        return self._connected_since

    @property
    def last_error(self):
        return self._last_error

    @property
    def attempts(self):
        """Connection attempts since the link was last up (0 while it is up)."""
        return self._attempts

    # --- control ---------------------------------------------------------------------
    def start(self):
        if self._started:
            raise RuntimeError("the link was already started")
        self._started = True
        for name, target in (("csms-link", self._run), ("csms-writer", self._write)):
            t = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self):
        """Close the connection and end the threads; idempotent, about 2 s at most."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._outbox.put(None)
        deadline = time.monotonic() + STOP_JOIN
        link_thread = self._threads[0] if self._threads else None
        if link_thread is not None:
            link_thread.join(STOP_JOIN * 0.6)
            if link_thread.is_alive():
                # Stuck behind a stalled send or inside a handshake: force it.
                conn, ws = self._conn, self._connecting
                if conn is not None:
                    _shutdown_socket(conn.ws)
                if ws is not None:
                    _shutdown_socket(ws)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("link thread %s did not stop in time", t.name)

    def send(self, text):
        """Queue a text frame; False when not connected. Never blocks."""
        conn = self._conn
        if conn is None or not self._connected or conn.closed or conn.drop_reason:
            return False
        self._outbox.put((conn, text))
        return True

    def set_password(self, password):
        """Used from the next connection on (decoded first when hexadecimal)."""
        if password != self._password:
            self._as_written = False
        self._password = password

    def set_ping_interval(self, seconds):
        """Used from the next ping on; 0 disables pings."""
        self._ping_interval = max(0.0, float(seconds or 0))

    def reconnect(self):
        """Drop the current connection once what was already handed to send() has
        gone out (the answer to the ChangeConfiguration that asked for this one);
        it comes back after the normal back-off."""
        conn = self._conn
        if conn is not None:
            self._outbox.put((conn, _RECONNECT))

    # --- internals -------------------------------------------------------------------
    def _secrets(self):
        return password_secrets(self.settings.charge_point_id, self._password)

    def _down(self, reason):
        self._last_error = reason
        self.events.put(LinkEvent(DOWN, reason))

    def _run(self):
        nominal = None
        while not self._stop.is_set():
            try:
                was_up, reason, level = self._attempt()
            except Exception as e:  # never let the link thread die
                was_up, level = False, logging.ERROR
                reason = _one_line("link failure: %s: %s" % (type(e).__name__, e),
                                   self._secrets())
                self._down(reason)
            if self._stop.is_set():
                break
            if was_up:
                nominal = None
            nominal = next_backoff(nominal, self.settings.backoff_initial,
                                   self.settings.backoff_max)
            delay = jittered(nominal, self._rng)
            log.log(level, "%s; retry in %s s", reason, "%.1f" % delay if delay >= 1 else "%.2f" % delay)
            self._stop.wait(delay)
        log.info("link stopped")

    def _sslopt(self, profile):
        s = self.settings
        if profile is not None and profile >= 2:
            if s.tls_context is None:
                raise ValueError("no TLS context for security profile %d" % profile)
            return {"context": s.tls_context(profile)}
        return tls_options(self._secure, s.ca_bundle)

    def _attempt(self):
        """One connection: returns (was_up, reason, log level)."""
        s = self.settings
        self._attempts += 1
        profile = self._profile
        url = self._url
        password = self._password if profile is None or profile < 3 else None
        as_written = self._as_written
        headers = request_headers(s.charge_point_id, password, as_written)
        if password:
            how = ("basic auth, the hex key as written" if as_written and is_hex_password(password)
                   else "basic auth")
        else:
            how = "no auth" if profile != 3 else "client certificate"
        log.info("connecting to %s (attempt %d, %s%s)", url, self._attempts, how,
                 "" if profile is None else ", security profile %d" % profile)
        try:
            sslopt = self._sslopt(profile)
        except (ValueError, OSError, ssl.SSLError) as e:
            reason = _one_line("cannot set up TLS: %s" % (getattr(e, "strerror", None) or e),
                               self._secrets())
            self._down(reason)
            self._failed(reason)
            return False, reason, logging.ERROR

        # websocket-client checks UTF-8 in pure Python (about 0.5 s per MiB on a PC, seconds
        # on a Pi: a 1 MiB frame held up every answer behind it); bytes.decode below does the
        # same check in C.
        ws = websocket.WebSocket(sslopt=sslopt, enable_multithread=True,
                                 skip_utf8_validation=True)
        self._connecting = ws
        try:
            ws.connect(url, header=headers, timeout=s.connect_timeout)
        except Exception as e:
            ws.shutdown()
            reason, level = self._describe_connect_error(e, bool(password))
            reason = _one_line(reason, self._secrets())
            self._down(reason)
            if getattr(e, "status_code", None) in (401, 403) and is_hex_password(password):
                # The other reading of a hexadecimal key next time (see basic_auth_password).
                self._as_written = not as_written
                log.warning("the CSMS refused the %s; the next attempt sends it %s",
                            "hex AuthorizationKey as written" if as_written
                            else "decoded hex AuthorizationKey",
                            "decoded" if as_written else "as written (its hex digits)")
            if getattr(e, "status_code", None) in (401, 403):   # security whitepaper event
                self.events.put(LinkEvent(SECURITY, ("FailedToAuthenticateAtCentralSystem",
                                                     "HTTP %d on the websocket upgrade"
                                                     % e.status_code)))
            event = tls_failure_event(e) if self._secure else None
            if event is not None and event[0] not in self._reported:
                self._reported.add(event[0])
                self.events.put(LinkEvent(SECURITY, event))
            self._failed(reason)
            return False, reason, level
        finally:
            self._connecting = None

        if self._stop.is_set():
            ws.shutdown()
            return False, "link stopped", logging.INFO

        answered = (ws.headers or {}).get("sec-websocket-protocol")
        if not subprotocol_accepted(answered):
            reason = _one_line("CSMS did not accept subprotocol %s (it answered: %s)"
                               % (SUBPROTOCOL, repr(answered.strip()) if answered else "none"),
                               self._secrets())
            try:
                ws.close(status=1002, reason=b"ocpp1.6 required", timeout=CLOSE_WAIT)
            except Exception:
                pass
            ws.shutdown()
            self._down(reason)
            return False, reason, logging.ERROR

        conn = _Conn(ws)
        self.tls_chain = _verified_chain(ws) if self._secure else None
        self._conn = conn
        self._attempts = 0
        self._trial = None            # the new profile works: no way back (A05.FR.09)
        self._reported = set()
        self._connected_since = time.time()
        self._connected = True
        log.info("connected to %s (subprotocol %s%s)", url, SUBPROTOCOL,
                 ", %s" % ws.sock.version() if self._secure else "")
        self.events.put(LinkEvent(UP, None))
        try:
            reason, graceful = self._serve(conn)
        except Exception as e:
            reason, graceful = "link failure: %s: %s" % (type(e).__name__, e), False
        reason = _one_line(reason, self._secrets())
        with conn.lock:
            conn.closed = True
        self.tls_chain = None
        self._connected = False
        self._connected_since = None
        self._conn = None
        if graceful:
            try:
                ws.close(status=websocket.STATUS_NORMAL, timeout=CLOSE_WAIT)
            except Exception:
                pass
        ws.shutdown()
        self._down(reason)
        requested = self._stop.is_set() or (conn.drop_reason is not None and conn.graceful)
        return True, reason, logging.INFO if requested else logging.WARNING

    def _failed(self, reason):
        """A connection attempt failed: after TRIAL_ATTEMPTS with a new profile, the
        previous one is put back (A05.FR.08)."""
        trial = self._trial
        if trial is None:
            return
        trial["failures"] += 1
        if trial["failures"] < TRIAL_ATTEMPTS:
            return
        tried, previous = self._profile, trial["previous"]
        self._trial = None
        self._profile = previous
        self._aim(previous)
        log.error("security profile %s does not connect (%s): back to profile %s",
                  tried, reason, previous)
        self.events.put(LinkEvent(FALLBACK, (tried, previous, reason)))

    def _serve(self, conn):
        """Read until the connection ends; returns (reason, close politely?)."""
        ws = conn.ws
        sel = selectors.DefaultSelector()
        try:
            sel.register(ws.sock, selectors.EVENT_READ)
            alive_at = time.monotonic()   # last time anything arrived (or pings began)
            last_ping = None
            while True:
                if self._stop.is_set():
                    return "link stopped", True
                if conn.drop_reason is not None:
                    return conn.drop_reason, conn.graceful
                now = time.monotonic()
                timeout = POLL_INTERVAL
                interval = self._ping_interval
                if interval > 0:
                    if last_ping is None:            # pings (re)start: first one in `interval`
                        alive_at = max(alive_at, now)
                        last_ping = now
                    limit = 2 * interval
                    if now - alive_at >= limit:
                        return "no answer to websocket pings for %s s" % _seconds(limit), False
                    if now - last_ping >= interval:
                        last_ping = now
                        self._outbox.put((conn, _PING))
                    timeout = min(timeout, last_ping + interval - now, alive_at + limit - now)
                else:
                    last_ping = None
                if not self._readable(ws, sel, max(0.0, timeout)):
                    continue
                try:
                    opcode, data = ws.recv_data(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    continue   # a frame arrived in part; the rest is read next time
                except websocket.WebSocketConnectionClosedException:
                    return conn.drop_reason or "connection lost: the CSMS closed the TCP connection", False
                except (OSError, websocket.WebSocketException) as e:
                    return conn.drop_reason or "connection lost: %s" % (
                        getattr(e, "strerror", None) or e or type(e).__name__), False
                alive_at = time.monotonic()
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    if isinstance(data, bytes):
                        try:
                            data = data.decode("utf-8")
                        except UnicodeError:   # RFC 6455 8.1: fail the connection
                            return "connection lost: the CSMS sent a text frame that is " \
                                   "not UTF-8", False
                    self.events.put(LinkEvent(FRAME, data))
                elif opcode == websocket.ABNF.OPCODE_BINARY:
                    log.warning("ignored a binary websocket message (%d bytes); OCPP-J is text",
                                len(data))
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    # websocket-client has already answered the close frame.
                    return self._describe_close(data), False
        finally:
            sel.close()

    @staticmethod
    def _readable(ws, sel, timeout):
        sock = ws.sock
        if sock is None:
            return True   # recv will report the closed socket
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True   # decrypted bytes waiting that select() can't see
        return bool(sel.select(timeout))

    @staticmethod
    def _describe_close(data):
        if len(data) >= 2:
            code = struct.unpack("!H", data[:2])[0]
            text = data[2:].decode("utf-8", "replace").strip()
            return "CSMS closed the connection (code %d%s)" % (code, ": " + text if text else "")
        return "CSMS closed the connection"

    def _describe_connect_error(self, e, with_password):
        """A readable one-line reason for a failed attempt, and its log level."""
        where, timeout = self._where, self.settings.connect_timeout
        if isinstance(e, websocket.WebSocketBadStatusException):
            status = e.status_code
            if status in (401, 403):
                if with_password:
                    return "CSMS refused the credentials (HTTP %d)" % status, logging.ERROR
                return ("CSMS requires credentials (HTTP %d) but no AuthorizationKey is set"
                        % status, logging.ERROR)
            body = e.resp_body or b""
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            body = " ".join(body.split())[:100]
            if status == 400 and "subprotocol" in body.lower():
                return ("CSMS did not accept subprotocol %s (HTTP 400: %s)" % (SUBPROTOCOL, body),
                        logging.ERROR)
            detail = "HTTP %s %s" % (status, e.status_message or "")
            return ("CSMS rejected the websocket upgrade (%s%s)"
                    % (detail.strip(), ": " + body if body else ""), logging.WARNING)
        if isinstance(e, websocket.WebSocketAddressException):
            cause = e.args[0] if e.args else e
            return ("cannot resolve the CSMS host %s (%s)"
                    % (self._host, getattr(cause, "strerror", None) or cause), logging.WARNING)
        if isinstance(e, (websocket.WebSocketTimeoutException, socket.timeout, TimeoutError)):
            return "no answer from %s within %s s" % (where, _seconds(timeout)), logging.WARNING
        if isinstance(e, ConnectionRefusedError):
            return "connection refused by %s" % where, logging.WARNING
        if isinstance(e, ssl.SSLCertVerificationError):
            return ("TLS certificate of %s rejected: %s"
                    % (where, e.verify_message or e.reason or e), logging.ERROR)
        if isinstance(e, ssl.SSLError):
            return "TLS handshake with %s failed: %s" % (where, e.reason or e), logging.WARNING
        if isinstance(e, websocket.WebSocketConnectionClosedException):
            return ("%s closed the connection during the websocket handshake" % where,
                    logging.WARNING)
        if isinstance(e, websocket.WebSocketProxyException):
            return "proxy error: %s" % e, logging.WARNING
        if isinstance(e, websocket.WebSocketException):
            return "websocket handshake with %s failed: %s" % (where, e), logging.WARNING
        if isinstance(e, OSError):
            return ("cannot connect to %s: %s" % (where, e.strerror or e), logging.WARNING)
        return "cannot connect to %s: %s: %s" % (where, type(e).__name__, e), logging.WARNING

    # --- writer thread ----------------------------------------------------------------
    def _write(self):
        while True:
            item = self._outbox.get()
            if item is None:
                return
            conn, payload = item
            if conn.closed or conn.drop_reason is not None or conn is not self._conn:
                continue   # queued for a connection that has gone
            if payload is _RECONNECT:
                conn.drop("reconnect requested", graceful=True)
                continue
            try:
                if payload is _PING:
                    conn.ws.ping()
                else:
                    conn.ws.send(payload)
            except websocket.WebSocketTimeoutException:
                conn.drop("sending to the CSMS stalled for %s s"
                          % _seconds(self.settings.connect_timeout), graceful=False)
            except Exception as e:
                conn.drop(_one_line("sending failed: %s" % (getattr(e, "strerror", None) or e),
                                    self._secrets()), graceful=False)
