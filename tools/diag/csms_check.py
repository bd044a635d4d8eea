"""`python -m tools.diag csms`: the path from this station to its central system,
one step at a time, stopping at the first step that breaks.

    1 DNS            the CSMS host name resolves (addresses listed)
    2 TCP            a TCP connection to host:port opens (time in ms)
    3 TLS            wss:// only: the handshake, the certificate (subject, SAN,
                     issuer, expiry, days left, host name match), verified
                     against [csms] ca_bundle or the system CAs
    4 websocket      the upgrade to <url>/<charge-point-id> with subprotocol
                     ocpp1.6 and the basic-auth header: HTTP status, subprotocol
    5 close          the connection is closed politely right after the upgrade

No OCPP message is sent: a BootNotification from here would register a second
instance next to the firmware. The CSMS may drop the firmware's own connection
for a moment when this check connects with the same id; the firmware
reconnects by itself.

Settings come from the station config ([csms] url, password, ca_bundle;
[station] charge_point_id), like the firmware's; an AuthorizationKey the CSMS
has set (kept in the data dir) replaces the configured password, as in the
firmware. --csms-url, --charge-point-id and --password override them. The
upgrade request is the firmware's own (firmware/link.py: request_headers,
tls_options, subprotocol_accepted); certificates are read by tools/diag/x509.py.

The password never appears in the output, the JSON or an error message: only
"basic auth: yes (N characters)".

Exit status: 0 every step passed, 1 a step failed, 2 the settings are unusable.
"""

import argparse
import datetime
import ipaddress
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

from firmware.link import (SUBPROTOCOL, build_url, effective_password, is_hex_password,
                           password_secrets, request_headers, subprotocol_accepted,
                           tls_options)
from ocpp_core.redact import mask_secrets
from tools.diag import render
from tools.diag.x509 import hostname_matches, parse_certificate

DEFAULT_TIMEOUT = 10.0
EXPIRY_WARNING_DAYS = 30
BODY_SHOWN = 200

STEPS = (
    ("dns", "DNS lookup"),
    ("tcp", "TCP connect"),
    ("tls", "TLS handshake"),
    ("websocket", "websocket upgrade"),
    ("close", "close"),
)


# --- the subcommand ----------------------------------------------------------------

def add_parser(subparsers):
    p = subparsers.add_parser(
        "csms", help="check the path to the central system step by step",
        description="Check DNS, TCP, TLS and the OCPP websocket upgrade to the CSMS, "
                    "stopping at the first broken step. Settings come from the station "
                    "config ([csms] url, password, ca_bundle; [station] charge_point_id); "
                    "no OCPP message is sent.")
    p.add_argument("--csms-url", help="override [csms] url (ws://... or wss://...)")
    p.add_argument("--charge-point-id", help="override [station] charge_point_id")
    p.add_argument("--password", help="override the basic-auth password (never printed); "
                                      "'-' reads it from stdin, out of sight of ps")
    p.add_argument("--ca-bundle", help="override [csms] ca_bundle (PEM file)")
    p.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT,
                   help="seconds allowed for each step (default %g)" % DEFAULT_TIMEOUT)
    p.set_defaults(func=run_csms)
    return p


def _positive(text):
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not 0 < x <= 600:
        raise argparse.ArgumentTypeError("must be between 0 and 600 seconds")
    return x


def run_csms(args, out):
    """Run the check; write the report to `out`; return the exit status."""
    as_json = bool(getattr(args, "json", False))
    report = Report(out, as_json)
    try:
        target = _target(args)
    except SettingsError as e:
        report.secrets = e.secrets
        return report.settings_error(str(e))
    report.secrets = _secret_forms(target)
    try:
        Check(target, getattr(args, "timeout", None) or DEFAULT_TIMEOUT, report).run()
    except KeyboardInterrupt:
        report.interrupted()
        return 130
    except Exception as e:  # a bug here must not print a traceback with locals
        report.internal_error("%s: %s" % (type(e).__name__, e))
        return 1
    return report.finish()


# --- settings ------------------------------------------------------------------------

class SettingsError(Exception):
    def __init__(self, text, secrets=()):
        Exception.__init__(self, text)
        self.secrets = secrets


class Target:
    def __init__(self):
        self.csms_url = None
        self.charge_point_id = None
        self.url = None                # <csms-url>/<id>
        self.scheme = None
        self.host = None
        self.port = None
        self.password = None
        self.password_source = None
        self.ca_bundle = None
        self.config_file = None
        self.key_problem = None        # why a key the CSMS set could not be read

    def summary(self):
        return {
            "config_file": self.config_file,
            "csms_url": self.csms_url,
            "charge_point_id": self.charge_point_id,
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "basic_auth": ({"set": True, "length": len(self.password),
                            "source": self.password_source}
                           if self.password else {"set": False}),
            "ca_bundle": self.ca_bundle if self.scheme == "wss" else None,
        }


def _target(args):
    """The connection settings, as the firmware would use them."""
    from firmware.station_config import ConfigError, load

    password_flag = getattr(args, "password", None)
    if password_flag == "-":
        password_flag = sys.stdin.readline().rstrip("\r\n")
    secrets = (password_flag,) if password_flag else ()
    # The data dir is not needed here: pass a scratch one so that load() neither
    # creates nor checks the firmware's (which may belong to another user).
    flags = argparse.Namespace(
        config=getattr(args, "config", None), hal=None,
        csms_url=getattr(args, "csms_url", None),
        charge_point_id=getattr(args, "charge_point_id", None),
        password=password_flag, data_dir=tempfile.gettempdir(),
        bench_port=None, log_level=None)
    try:
        cfg = load(flags)
    except ConfigError as e:
        raise SettingsError(str(e), secrets)
    t = Target()
    t.config_file = cfg.source
    t.csms_url = cfg.csms_url
    t.charge_point_id = cfg.charge_point_id
    t.url = build_url(cfg.csms_url, cfg.charge_point_id)
    parts = urlsplit(t.url)
    t.scheme = parts.scheme.lower()
    t.host = parts.hostname
    t.port = parts.port or (443 if t.scheme == "wss" else 80)
    key, where = None, None
    if password_flag is None:       # --password here overrides even the CSMS's key
        key, where, t.key_problem = _stored_authorization_key(args, cfg.source)
    t.password = effective_password(cfg.password, key) or None
    if password_flag:
        t.password_source = "--password"
    elif key:
        t.password_source = "AuthorizationKey set by the CSMS (%s)" % where
    elif t.password:
        t.password_source = "[csms] password"
    t.ca_bundle = getattr(args, "ca_bundle", None) or cfg.ca_bundle
    if t.ca_bundle and not os.path.isfile(t.ca_bundle):
        raise SettingsError("CA bundle %s is not a file" % t.ca_bundle,
                            secrets + ((t.password,) if t.password else ()))
    return t


def _stored_authorization_key(args, config_file):
    """The AuthorizationKey the CSMS set (the firmware keeps it in its data dir
    and prefers it to the configured password), read without changing anything."""
    data_dir = getattr(args, "data_dir", None)
    if not data_dir and config_file:
        from firmware.station_config import ConfigError, read_ini
        try:
            ini = read_ini(config_file)
            data_dir = ini.get("station", "data_dir", fallback="").strip() or None
        except ConfigError:
            data_dir = None
    if not data_dir:
        return None, None, None
    from ocpp_core.config import STORE_NAME
    from ocpp_core.store import Corrupt, decode
    path = os.path.join(data_dir, STORE_NAME)
    try:
        with open(path, "rb") as f:
            stored = decode(f.read())
    except PermissionError:
        return None, None, ("cannot read %s (permission denied): if the CSMS changed the "
                            "password (AuthorizationKey), this check uses the old one; run it "
                            "as the firmware's user or with sudo" % path)
    except (OSError, Corrupt):
        return None, None, None
    key = stored.get("AuthorizationKey") if isinstance(stored, dict) else None
    if isinstance(key, str) and key:
        return key, path, None
    return None, None, None


def _secret_forms(target):
    """Every form the password could take in text: itself, decoded, the header values."""
    if not target.password:
        return ()
    return password_secrets(target.charge_point_id, target.password)


def _one_line(text, limit=BODY_SHOWN):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --- the report -------------------------------------------------------------------------

class Report:
    """Collects the steps; writes progress while they run and the result at the end.
    Everything written goes through mask_secrets() (ocpp_core/redact.py)."""

    def __init__(self, out, as_json):
        self.out = out
        self.as_json = as_json
        self.secrets = ()
        self.target = None
        self.steps = []            # dicts, in order
        self.failure = None        # (step name, summary, hint)
        self.notes = []
        self._progress = render.Progress()   # stderr, only when it is a terminal

    def _write(self, text):
        self._progress.done()
        self.out.write(mask_secrets(text, self.secrets))

    def _flush(self):
        flush = getattr(self.out, "flush", None)
        if flush is not None:
            flush()

    def progress(self, text):
        self._progress(mask_secrets(text, self.secrets))

    def _clear_progress(self):
        self._progress.done()

    def begin(self, target):
        self.target = target
        if self.as_json:
            return
        t = target
        lines = ["CSMS check: %s" % t.url]
        rows = [("config file", t.config_file or "(none: command-line settings)"),
                ("charge point id", t.charge_point_id),
                ("basic auth", "yes (%d characters, %s)" % (len(t.password), t.password_source)
                 if t.password else "no")]
        if t.scheme == "wss":
            rows.append(("CA bundle", t.ca_bundle or "the system's CAs"))
        width = max(len(k) for k, _ in rows)
        lines += ["  %-*s  %s" % (width, k, v) for k, v in rows]
        self._write("\n".join(lines) + "\n\n")
        self._flush()

    def step(self, name, status, ms=None, summary="", details=(), data=None):
        """status: "pass", "fail", "skip" (not applicable) or "not run"."""
        self._clear_progress()
        entry = {"step": name, "status": status, "ok": status in ("pass", "skip"),
                 "time_ms": None if ms is None else round(ms, 1),
                 "summary": summary, "details": list(details)}
        if data:
            entry.update(data)
        self.steps.append(entry)
        if self.as_json:
            return
        label = dict(STEPS).get(name, name)
        mark = {"pass": "OK", "fail": "FAIL", "skip": "n/a", "not run": "not run"}[status]
        timing = "" if ms is None else "%.0f ms" % ms
        n = len(self.steps)
        text = ("%d  %-17s  %-7s  %8s  %s" % (n, label, mark, timing, summary)).rstrip() + "\n"
        for d in details:
            text += "%s%s\n" % (" " * 41, d)
        self._write(text)
        self._flush()

    def fail(self, name, ms, summary, hint, details=(), data=None):
        self.step(name, "fail", ms, summary, details, data)
        self.failure = (name, summary, hint)

    def note(self, text):
        self.notes.append(text)

    def finish(self):
        self._clear_progress()
        ok = self.failure is None
        if self.as_json:
            doc = {"command": "csms", "ok": ok, "target": self.target.summary(),
                   "steps": self.steps, "notes": self.notes,
                   "failed_step": self.failure[0] if self.failure else None,
                   "hint": self.failure[2] if self.failure else None}
            self._write(json.dumps(doc, indent=2) + "\n")
            return 0 if ok else 1
        text = "\n"
        for n in self.notes:
            text += "note: %s\n" % n
        if ok:
            text += "PASS: the CSMS accepts %s at %s\n" % (self.target.charge_point_id,
                                                           self.target.url)
        else:
            name, summary, hint = self.failure
            label = dict(STEPS).get(name, name)
            text += "FAIL at step %d (%s): %s\n" % (
                [s for s, _ in STEPS].index(name) + 1, label, summary)
            if hint:
                text += "  what to do: %s\n" % hint
        self._write(text)
        return 0 if ok else 1

    def settings_error(self, text):
        self._clear_progress()
        if self.as_json:
            self._write(json.dumps({"command": "csms", "ok": False, "failed_step": "settings",
                                    "error": text, "steps": []}, indent=2) + "\n")
        else:
            self._write("FAIL: cannot check the CSMS: %s\n" % text)
        return 2

    def internal_error(self, text):
        self._clear_progress()
        text = _one_line(text)
        if self.as_json:
            self._write(json.dumps({"command": "csms", "ok": False, "error": text,
                                    "steps": self.steps}, indent=2) + "\n")
        else:
            self._write("FAIL: the check itself failed: %s\n" % text)

    def interrupted(self):
        self._clear_progress()
        if self.as_json:
            self._write(json.dumps({"command": "csms", "ok": False, "error": "interrupted",
                                    "steps": self.steps}, indent=2) + "\n")
        else:
            self._write("interrupted\n")


# --- the steps ------------------------------------------------------------------------------

class StepFailed(Exception):
    def __init__(self, summary, hint, details=(), data=None):
        Exception.__init__(self, summary)
        self.summary = summary
        self.hint = hint
        self.details = details
        self.data = data


def _ms(start):
    return (time.monotonic() - start) * 1000.0


class Check:
    def __init__(self, target, timeout, report):
        self.t = target
        self.timeout = float(timeout)
        self.report = report
        self.addresses = []      # (family, sockaddr) from DNS
        self.sock = None         # the connected TCP socket, for the TLS step
        self.tcp_address = None

    def run(self):
        r = self.report
        r.begin(self.t)
        if self.t.key_problem:
            r.note(self.t.key_problem)
        if self.t.scheme == "ws" and self.t.password:
            r.note("ws:// sends the basic-auth password unencrypted: security profile 1 "
                   "belongs on a private APN/VPN only; use wss:// otherwise")
        plan = [("dns", self.dns), ("tcp", self.tcp), ("tls", self.tls),
                ("websocket", self.upgrade), ("close", None)]
        try:
            for i, (name, fn) in enumerate(plan):
                if fn is None:
                    continue   # the close is reported by the upgrade step
                start = time.monotonic()
                try:
                    fn(start)
                except StepFailed as e:
                    r.fail(name, _ms(start), e.summary, e.hint, e.details, e.data)
                    for later, _ in plan[i + 1:]:
                        r.step(later, "not run")
                    return
        finally:
            if self.sock is not None:
                try:
                    self.sock.close()
                except OSError:
                    pass

    # --- 1 DNS -------------------------------------------------------------------------------
    def dns(self, start):
        host, port = self.t.host, self.t.port
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None:
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            sockaddr = (host, port, 0, 0) if ip.version == 6 else (host, port)
            self.addresses = [(family, sockaddr)]
            self.report.step("dns", "skip", None, "%s is an IP address: no lookup needed" % host,
                             data={"addresses": [host]})
            return
        self.report.progress("1  resolving %s (timeout %g s) ..." % (host, self.timeout))
        result = {}

        def lookup():
            try:
                result["infos"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
            except Exception as e:   # gaierror, UnicodeError for a bad name
                result["error"] = e

        # getaddrinfo() has no timeout of its own: run it on a thread and stop waiting.
        worker = threading.Thread(target=lookup, name="diag-dns", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise StepFailed(
                "no answer from the DNS server within %g s for %s" % (self.timeout, host),
                "check the network link (modem registered? data connection up?) and the DNS "
                "servers in /etc/resolv.conf; try: getent hosts %s" % host)
        error = result.get("error")
        if error is not None:
            raise StepFailed(*_explain_dns_error(host, error))
        seen = []
        for family, _type, _proto, _canon, sockaddr in result["infos"]:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            if all(sockaddr[0] != s[1][0] for s in seen):
                seen.append((family, sockaddr))
        if not seen:
            raise StepFailed("%s resolved to no IPv4/IPv6 address" % host,
                             "check the host name in [csms] url")
        self.addresses = seen
        shown = [s[1][0] for s in seen]
        self.report.step("dns", "pass", _ms(start), "%s -> %s" % (host, ", ".join(shown)),
                         data={"addresses": shown})

    # --- 2 TCP -------------------------------------------------------------------------------
    def tcp(self, start):
        port = self.t.port
        tried = []
        last = None
        for family, sockaddr in self.addresses:
            where = _where(sockaddr[0], port)
            self.report.progress("2  connecting to %s (timeout %g s) ..." % (where, self.timeout))
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            t0 = time.monotonic()
            try:
                sock.connect(sockaddr[:2] if family == socket.AF_INET else sockaddr)
            except (OSError, socket.timeout) as e:
                sock.close()
                last = _explain_tcp_error(where, e, self.timeout)
                tried.append("%s: %s" % (where, last[0]))
                continue
            ms = _ms(t0)
            self.sock = sock
            self.tcp_address = sockaddr[0]
            details = ["failed first: " + x for x in tried]
            self.report.step("tcp", "pass", ms, "connected to %s" % where, details,
                             data={"address": sockaddr[0], "port": port})
            return
        summary, hint = last
        if len(tried) > 1:
            raise StepFailed("no address of %s accepted the connection" % self.t.host, hint,
                             tried)
        raise StepFailed(summary, hint)

    # --- 3 TLS -------------------------------------------------------------------------------
    def tls(self, start):
        if self.t.scheme != "wss":
            self.sock.close()
            self.sock = None
            self.report.step("tls", "skip", None, "ws:// URL: no TLS")
            return
        host = self.t.host
        where = _where(self.tcp_address, self.t.port)
        bundle = self.t.ca_bundle
        self.report.progress("3  TLS handshake with %s (timeout %g s) ..." % (where, self.timeout))
        try:
            ctx = ssl.create_default_context(cafile=bundle) if bundle \
                else ssl.create_default_context()
        except (OSError, ssl.SSLError) as e:
            raise StepFailed("the CA bundle %s cannot be loaded: %s"
                             % (bundle, getattr(e, "strerror", None) or e),
                             "set [csms] ca_bundle to a PEM file of CA certificates")
        sock, self.sock = self.sock, None
        t0 = time.monotonic()
        try:
            tls = ctx.wrap_socket(sock, server_hostname=host)
        except ssl.SSLCertVerificationError as e:
            sock.close()
            ms = _ms(t0)
            cert = self._fetch_unverified_cert()
            details = _cert_lines(cert, host) if cert else [
                "(the certificate could not be fetched again for display)"]
            summary, hint = _explain_verify_error(e, cert, host, bundle)
            raise StepFailed(summary, hint, details,
                             data={"certificate": _cert_json(cert, host)})
        except (ssl.SSLError, OSError, socket.timeout) as e:
            sock.close()
            raise StepFailed(*_explain_tls_error(where, e, self.timeout))
        ms = _ms(t0)
        try:
            der = tls.getpeercert(binary_form=True)
            version = tls.version()
            cipher = (tls.cipher() or ("?",))[0]
        finally:
            tls.close()
        cert = _parse_cert_safely(der)
        details = ["protocol: %s, cipher: %s" % (version, cipher)]
        if cert is not None:
            details += _cert_lines(cert, host)
            days = cert.get("days_left")
            if days is not None and days < EXPIRY_WARNING_DAYS:
                self.report.note("the CSMS certificate expires in %d days (%s): tell the CSMS "
                                 "operator" % (days, cert["not_after"]))
        self.report.step("tls", "pass", ms, "certificate verified (%s)"
                         % ("CA bundle " + bundle if bundle else "system CAs"), details,
                         data={"tls_version": version, "certificate": _cert_json(cert, host)})

    def _fetch_unverified_cert(self):
        """The server's certificate without verifying it: only to show it."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            family = socket.AF_INET6 if ":" in (self.tcp_address or "") else socket.AF_INET
            raw = socket.socket(family, socket.SOCK_STREAM)
            raw.settimeout(self.timeout)
            raw.connect((self.tcp_address, self.t.port))
            with ctx.wrap_socket(raw, server_hostname=self.t.host) as tls:
                return _parse_cert_safely(tls.getpeercert(binary_form=True))
        except (OSError, ssl.SSLError, socket.timeout):
            return None

    # --- 4 websocket, 5 close ------------------------------------------------------------------
    def upgrade(self, start):
        import websocket
        t = self.t
        self.report.progress("4  websocket upgrade %s (timeout %g s) ..." % (t.url, self.timeout))
        # The same request as the firmware's link: a hex key decoded first, then as
        # written when the CSMS refuses that (firmware/link.py, basic_auth_password).
        as_written = False
        while True:
            headers = request_headers(t.charge_point_id, t.password, as_written)
            ws = websocket.WebSocket(sslopt=tls_options(t.scheme == "wss", t.ca_bundle))
            t0 = time.monotonic()
            try:
                ws.connect(t.url, header=headers, timeout=self.timeout)
                break
            except websocket.WebSocketBadStatusException as e:
                ws.shutdown()
                if e.status_code in (401, 403) and is_hex_password(t.password) \
                        and not as_written:
                    as_written = True
                    continue
                raise StepFailed(*_explain_bad_status(e, t))
            except Exception as e:   # timeouts, resets, TLS (unlikely after step 3)
                ws.shutdown()
                raise StepFailed("the websocket upgrade failed: %s" % _describe_exception(e),
                                 "the TCP and TLS steps passed, so the server answered but "
                                 "broke the HTTP upgrade: check the URL path and any proxy "
                                 "in front of the CSMS")
        ms = _ms(t0)
        status = ws.getstatus()
        answered = (ws.headers or {}).get("sec-websocket-protocol")
        server = (ws.headers or {}).get("server")
        details = ["HTTP %s, subprotocol: %s" % (status, answered if answered else "none")]
        if server:
            details.append("server: %s" % _one_line(server, 80))
        data = {"http_status": status, "subprotocol": answered}
        if as_written:
            details.append("the CSMS took the hex AuthorizationKey as written, not decoded "
                           "(the firmware falls back to that too)")
            data["hex_key_as_written"] = True
        if not subprotocol_accepted(answered):
            try:
                ws.close(status=1002, reason=b"ocpp1.6 required", timeout=min(2.0, self.timeout))
            except Exception:
                pass
            ws.shutdown()
            raise StepFailed(
                "the server does not speak OCPP 1.6-J: it accepted the websocket but not "
                "subprotocol %s (it answered: %s)" % (SUBPROTOCOL,
                                                     repr(answered) if answered else "none"),
                "check the path in [csms] url: this endpoint is probably for another OCPP "
                "version (e.g. 2.0.1) or not an OCPP endpoint at all",
                details, data)
        self.report.step("websocket", "pass", ms,
                         "HTTP %s Switching Protocols, subprotocol %s" % (status, answered),
                         details[1:], data)
        # 5: close politely, right away; no BootNotification (see the module doc).
        self.report.progress("5  closing (timeout %g s) ..." % self.timeout)
        t1 = time.monotonic()
        try:
            ws.close(status=websocket.STATUS_NORMAL, reason=b"diagnostic check",
                     timeout=self.timeout)
        except Exception as e:
            ws.shutdown()
            self.report.step("close", "pass", _ms(t1),
                             "closed (the server did not finish the close handshake: %s)"
                             % _describe_exception(e))
        else:
            self.report.step("close", "pass", _ms(t1),
                             "closed cleanly; no OCPP message sent (the firmware is the "
                             "registered instance)")
        ws.shutdown()


# --- explanations ------------------------------------------------------------------------------

def _where(address, port):
    return "[%s]:%d" % (address, port) if ":" in address else "%s:%d" % (address, port)


def _describe_exception(e):
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return _one_line(text, 160)


def _explain_dns_error(host, e):
    code = getattr(e, "errno", None)
    if isinstance(e, UnicodeError):
        return ("%s is not a valid host name" % host, "check the host in [csms] url")
    if code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)):
        return ("%s does not exist (DNS: %s)" % (host, e.strerror or e),
                "check the spelling of the host in [csms] url; if it is right, the "
                "station's DNS server does not know it (private APN? split DNS?)")
    if code == getattr(socket, "EAI_AGAIN", None):
        return ("no DNS server answered for %s (%s)" % (host, e.strerror or e),
                "the network is down or has no DNS: check the modem (python -m tools.diag "
                "modem), the default route (ip route) and /etc/resolv.conf")
    if code == getattr(socket, "EAI_FAIL", None):
        return ("the DNS server failed to answer for %s (%s)" % (host, e.strerror or e),
                "try again; check /etc/resolv.conf")
    return ("cannot resolve %s: %s" % (host, getattr(e, "strerror", None) or e),
            "check the network link and /etc/resolv.conf")


def _explain_tcp_error(where, e, timeout):
    import errno
    code = getattr(e, "errno", None)
    if isinstance(e, socket.timeout) or code == errno.ETIMEDOUT:
        return ("no answer from %s within %g s" % (where, timeout),
                "the packets are dropped: the host is down, a firewall blocks the port, or "
                "the mobile network/APN does not route to it")
    if code == errno.ECONNREFUSED:
        return ("connection refused by %s: the host answered but nothing listens on that "
                "port" % where,
                "check the port in [csms] url (wss:// usually 443); otherwise the CSMS "
                "service is down: call its operator")
    if code == errno.ENETUNREACH:
        return ("network unreachable for %s: this station has no route there" % where,
                "no network link or no default route: check the modem (python -m tools.diag "
                "modem) and `ip route`")
    if code == errno.EHOSTUNREACH:
        return ("host unreachable: %s" % where,
                "a router reported the host down or unreachable: check the network, then "
                "call the CSMS operator")
    if code == errno.ECONNRESET:
        return ("%s reset the connection" % where, "a firewall rejects the connection")
    return ("cannot connect to %s: %s" % (where, _describe_exception(e)),
            "check the network link")


# OpenSSL X509_V_ERR_* codes
_V_NOT_YET_VALID = 9
_V_EXPIRED = 10
_V_SELF_SIGNED = 18
_V_SELF_SIGNED_IN_CHAIN = 19
_V_UNKNOWN_ISSUER = (2, 20, 21)
_V_REVOKED = 23
_V_HOSTNAME = (62, 64)


def _explain_verify_error(e, cert, host, bundle):
    """(summary, hint) for a certificate the station does not trust."""
    code = getattr(e, "verify_code", None)
    message = getattr(e, "verify_message", None) or getattr(e, "reason", None) or str(e)
    cas = "the CA bundle %s" % bundle if bundle else "the system's CAs"
    now = datetime.datetime.now(datetime.timezone.utc)
    clock = "this station's clock says %s UTC" % now.strftime("%Y-%m-%d %H:%M")
    if code == _V_SELF_SIGNED or (code in _V_UNKNOWN_ISSUER and cert and cert.get("self_signed")):
        return ("the server presents a self-signed certificate (%s)" % message,
                "if this CSMS really uses a self-signed certificate, put it in a PEM file "
                "and set [csms] ca_bundle to it; otherwise something intercepts the "
                "connection")
    if code == _V_SELF_SIGNED_IN_CHAIN or code in _V_UNKNOWN_ISSUER:
        issuer = cert.get("issuer") if cert else None
        return ("the certificate's issuer%s is not trusted by %s (%s)"
                % (" (%s)" % issuer if issuer else "", cas, message),
                "set [csms] ca_bundle to the CSMS operator's CA certificate (PEM); if the "
                "server sends no intermediate certificates, the operator must fix that")
    if code == _V_EXPIRED:
        when = cert.get("not_after") if cert else None
        return ("the certificate expired%s (%s)" % (" on " + when if when else "", message),
                "the CSMS operator must renew it; but first check the clock: %s (a Pi has "
                "no battery clock: is NTP synchronised? timedatectl)" % clock)
    if code == _V_NOT_YET_VALID:
        when = cert.get("not_before") if cert else None
        return ("the certificate is not valid yet%s (%s)"
                % (" (from " + when + ")" if when else "", message),
                "almost always this station's clock is wrong: %s; check NTP "
                "(timedatectl)" % clock)
    if code in _V_HOSTNAME:
        names = ", ".join(cert.get("names") or []) if cert else ""
        return ("the certificate is for %s, not for %s (%s)"
                % (names or "other names", host, message),
                "use the host name the certificate is for in [csms] url, or ask the "
                "operator for a certificate that covers %s" % host)
    if code == _V_REVOKED:
        return ("the certificate has been revoked (%s)" % message,
                "the CSMS operator must replace it")
    return ("certificate verification failed: %s" % message,
            "check [csms] ca_bundle and this station's clock (%s)" % clock)


def _explain_tls_error(where, e, timeout):
    reason = getattr(e, "reason", None) or ""
    if isinstance(e, socket.timeout) or "timed out" in str(e):
        return ("no TLS answer from %s within %g s" % (where, timeout),
                "the port accepts TCP but does not answer TLS: is it a ws:// port? try the "
                "URL with ws://, or check the port")
    if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL",
                  "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"):
        return ("%s does not speak TLS (%s)" % (where, reason),
                "the port is a plain ws:// port: use ws:// in [csms] url, or the TLS port")
    if reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL",
                  "NO_PROTOCOLS_AVAILABLE"):
        return ("no common TLS version with %s (%s)" % (where, reason),
                "the server wants an old TLS version this station refuses; the CSMS "
                "operator must enable TLS 1.2 or newer")
    if reason in ("SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_HANDSHAKE_FAILURE",
                  "NO_SHARED_CIPHER"):
        return ("the TLS handshake with %s failed (%s)" % (where, reason),
                "no common cipher, or the server demands a client certificate "
                "(security profile 3 is not supported)")
    if reason in ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE"):
        return ("%s demands a client certificate (%s)" % (where, reason),
                "security profile 3 (client certificates) is not supported: ask the CSMS "
                "operator for profile 2 (basic auth over TLS)")
    if isinstance(e, (ConnectionResetError, ssl.SSLEOFError)) or "EOF" in str(e):
        return ("%s closed the connection during the TLS handshake" % where,
                "the port may be a plain ws:// port (then use ws:// in [csms] url), or the "
                "server refused the handshake (SNI, firewall): call the CSMS operator")
    return ("the TLS handshake with %s failed: %s" % (where, _describe_exception(e)),
            "call the CSMS operator with this line")


def _explain_bad_status(e, t):
    status = e.status_code
    body = e.resp_body or b""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    body = _one_line(body)
    message = getattr(e, "status_message", None) or ""
    answer = "HTTP %s %s" % (status, message)
    answer = answer.strip() + (": " + body if body else "")
    details = ["server answered: " + answer]
    data = {"http_status": status, "server_answer": answer}
    if status in (401, 403):
        if t.password:
            return ("the CSMS refused the password for %s (HTTP %d)" % (t.charge_point_id, status),
                    "the password (%d characters, %s) is not the one the CSMS has for %s: "
                    "check [csms] password, or ask the operator to reset the AuthorizationKey"
                    % (len(t.password), t.password_source, t.charge_point_id),
                    details, data)
        return ("the CSMS requires a password for %s (HTTP %d) and none is set"
                % (t.charge_point_id, status),
                "set [csms] password to the AuthorizationKey the operator gave you",
                details, data)
    if status == 404:
        return ("unknown path / charge point id: the CSMS has nothing at %s (HTTP 404)" % t.url,
                "check the path in [csms] url and that the operator registered the charge "
                "point id %s (exact spelling, case)" % t.charge_point_id,
                details, data)
    if status == 400 and "subprotocol" in body.lower():
        return ("the server does not speak OCPP 1.6-J: it refused subprotocol %s (HTTP 400)"
                % SUBPROTOCOL,
                "check the path in [csms] url: this endpoint may be for another OCPP version",
                details, data)
    if status in (301, 302, 307, 308):
        location = (e.resp_headers or {}).get("location")
        return ("the server redirects (HTTP %d%s); OCPP stations do not follow redirects"
                % (status, " to " + location if location else ""),
                "put the redirect's target in [csms] url", details, data)
    if status in (502, 503, 504):
        return ("the CSMS is unavailable behind its proxy (HTTP %d)" % status,
                "the CSMS service is down or overloaded: call its operator", details, data)
    return ("the CSMS rejected the websocket upgrade (%s)" % answer,
            "call the CSMS operator with this line", details, data)


def _parse_cert_safely(der):
    """The certificate's fields, or None: a certificate this reader cannot
    decode is not shown, and the check goes on."""
    if not der:
        return None
    try:
        return parse_certificate(der)
    except (ValueError, IndexError, UnicodeError):
        return None


def _cert_lines(cert, host):
    if cert is None:
        return ["(the certificate could not be decoded)"]
    lines = ["subject: %s" % cert["subject"],
             "names (SAN): %s" % (", ".join(cert["names"]) or "none"),
             "issuer: %s%s" % (cert["issuer"], " (self-signed)" if cert["self_signed"] else "")]
    days = cert["days_left"]
    if days < 0:
        left = "EXPIRED %d days ago" % -days
    else:
        left = "%d days left" % days
    lines.append("valid until: %s (%s)" % (cert["not_after"], left))
    lines.append("host name %s: %s" % (host, "matches" if hostname_matches(cert, host)
                                        else "DOES NOT MATCH"))
    return lines


def _cert_json(cert, host):
    if cert is None:
        return None
    doc = dict(cert)
    doc["hostname_match"] = hostname_matches(cert, host)
    return doc
