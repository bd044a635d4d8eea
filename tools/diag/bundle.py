"""`bundle`: one .tar.gz for the support team, with no secret in it.

    pi-ocpp-diag-<charge point>-<UTC time>/
        README.txt              what is here, what was skipped and why
        versions.json           Python, OS, board, every installed package
        station.ini             the station config file, secrets redacted
        status.json             the firmware's state (as `status --json`)
        ocpp-configuration.json the OCPP keys (write-only values hidden)
        journal.json            queued / set-aside messages, recent transactions
        selftest.json           the self-test, without actuation
        logs.txt                journalctl -u pi-ocpp --since ... (if available)
        firmware.log            the tail of --log-file FILE (if given)

Secrets: in station.ini every option whose name says password, secret, key or
token is replaced by <redacted>, user information in URLs too; every value
redacted that way is then also scrubbed from every other file. The firmware
never sends the AuthorizationKey or the basic-auth password over its socket.

With the firmware not running, the bundle still holds what can be had without
it (versions, config file, logs) and the exit status is 2; otherwise 0, or 1
when a part could not be collected. The path is printed last.
"""

import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time

from ocpp_core.redact import mask_secrets, mask_url_userinfo
from tools.diag import client, render, selftest

UNIT = "pi-ocpp"
SINCE = "24 hours ago"
JOURNALCTL_TIMEOUT = 30.0
LOG_TAIL_BYTES = 5 * 1024 * 1024
REDACTED = "<redacted>"
SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "credential", "passphrase")
_OPTION = re.compile(r"^(\s*)([^=:\s;#\[][^=:]*?)(\s*[=:]\s*)(.*?)\s*$")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "bundle", help="collect everything support needs in one .tar.gz (no secrets)",
        description="Collect versions, the station config (secrets redacted), the OCPP "
                    "configuration, the journal, the self-test and recent logs into one "
                    ".tar.gz and print its path.")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="the archive to write (default ./pi-ocpp-diag-<id>-<time>.tar.gz)")
    p.add_argument("--since", default=SINCE,
                   help='logs since this time, as journalctl takes it (default "%s")' % SINCE)
    p.add_argument("--unit", default=UNIT, help="the systemd unit (default %s)" % UNIT)
    p.add_argument("--log-file", metavar="FILE", help="also include the tail of this log file")
    p.add_argument("--timeout", type=float, default=15.0,
                   help="seconds allowed for each request to the firmware (default 15)")
    return p


# --- redaction -------------------------------------------------------------------------------

def _secret_name(name):
    name = name.strip().lower()
    return any(word in name for word in SECRET_WORDS)


def redact_urls(text):
    return mask_url_userinfo(text, REDACTED)


def redact_ini(text):
    """(redacted text, the secret values found). Comments and layout are kept; a
    multi-line value of a secret option is redacted whole."""
    out, secrets = [], []
    in_secret = False
    for line in text.splitlines():
        stripped = line.strip()
        if in_secret and line[:1] in (" ", "\t") and stripped and \
                not stripped.startswith(("#", ";")):
            secrets.append(stripped)
            continue                      # continuation of a secret value: dropped
        in_secret = False
        m = _OPTION.match(line)
        if m and not stripped.startswith(("#", ";", "[")) and _secret_name(m.group(2)):
            value = m.group(4)
            if value:
                secrets.append(value)
                line = m.group(1) + m.group(2) + m.group(3) + REDACTED
            in_secret = True
        out.append(redact_urls(line))
    return "\n".join(out) + "\n", secrets


def scrub(text, secrets):
    return redact_urls(mask_secrets(text, secrets, REDACTED))


# --- collection ------------------------------------------------------------------------------

def versions():
    info = {"python": sys.version, "executable": sys.executable,
            "platform": platform.platform(), "machine": platform.machine()}
    try:
        from ocpp_core import __version__
        info["firmware_package"] = __version__
    except ImportError:
        pass
    for path, key in (("/proc/device-tree/model", "board"), ("/etc/os-release", "os_release")):
        try:
            with open(path, "rb") as f:
                info[key] = f.read(4096).decode("utf-8", "replace").strip("\x00\n")
        except OSError:
            pass
    try:
        from importlib import metadata
        packages = {}
        for dist in metadata.distributions():
            name = dist.metadata["Name"]
            if name:
                packages[name] = dist.version
        info["packages"] = dict(sorted(packages.items(), key=lambda kv: kv[0].lower()))
    except Exception as e:    # a broken installation must not stop the bundle
        info["packages_error"] = str(e)
    return info


def journal_logs(unit, since):
    """(text, None) or (None, why not)."""
    exe = shutil.which("journalctl")
    if exe is None:
        return None, "journalctl is not installed"
    try:
        done = subprocess.run([exe, "-u", unit, "--since", since, "--no-pager", "-o",
                               "short-iso", "-q"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=JOURNALCTL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "journalctl took longer than %g s" % JOURNALCTL_TIMEOUT
    except OSError as e:
        return None, "journalctl failed: %s" % (e.strerror or e)
    text = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        why = " ".join(done.stderr.decode("utf-8", "replace").split())[:200]
        return None, "journalctl -u %s failed (%s)" % (unit, why or "exit %d" % done.returncode)
    if not text.strip() or text.strip() == "-- No entries --":
        return None, "no journal entries for unit %s since %s" % (unit, since)
    return text, None


def log_tail(path):
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - LOG_TAIL_BYTES))
        data = f.read()
    return data.decode("utf-8", "replace")


class Bundle:
    def __init__(self):
        self.files = {}       # name -> text
        self.skipped = []     # (what, why)
        self.secrets = []

    def add_json(self, name, obj):
        self.files[name] = json.dumps(obj, indent=2, default=str) + "\n"

    def write(self, path, top):
        readme = ["Diagnostic bundle of a pi-ocpp charge point, made %s UTC by "
                  "`python -m tools.diag bundle`." % time.strftime("%Y-%m-%d %H:%M:%S",
                                                                     time.gmtime()),
                  "Secrets (passwords, keys) were redacted.", "", "Files:"]
        readme += ["  %s" % n for n in sorted(self.files)]
        if self.skipped:
            readme += ["", "Not included:"] + ["  %s: %s" % s for s in self.skipped]
        self.files["README.txt"] = "\n".join(readme) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                for name in sorted(self.files):
                    data = scrub(self.files[name], self.secrets).encode("utf-8")
                    member = tarfile.TarInfo("%s/%s" % (top, name))
                    member.size = len(data)
                    member.mtime = int(time.time())
                    member.mode = 0o600
                    tar.addfile(member, io.BytesIO(data))


def _config_file(args, status):
    path = getattr(args, "config", None)
    if path:
        return path
    return ((status or {}).get("station") or {}).get("config_file")


def run(args, out):
    progress = render.Progress(False if getattr(args, "json", False) else None)
    b = Bundle()
    status = None
    not_running = None
    failed = []
    try:
        progress("bundle: versions...")
        b.add_json("versions.json", versions())
        progress("bundle: asking the firmware...")
        try:
            with client.connect(args, timeout=args.timeout) as c:
                for name, cmd, ask in (
                        ("status.json", "status", lambda: c.call("status", wait=args.timeout)),
                        ("ocpp-configuration.json", "config_get",
                         lambda: c.call("config_get", wait=args.timeout)),
                        ("journal.json", "journal",
                         lambda: c.call("journal", wait=args.timeout, limit=1000)),
                        ("selftest.json", "selftest",
                         lambda: selftest.request(c, False, args.timeout))):
                    progress("bundle: %s..." % cmd)
                    try:
                        answer = ask()
                    except (client.Refused, client.NoAnswer) as e:
                        b.skipped.append((name, str(e)))
                        failed.append(name)
                        continue
                    answer.pop("ok", None)
                    if cmd == "status":
                        status = answer
                    b.add_json(name, answer)
        except (client.FirmwareNotRunning, client.NoAccess) as e:
            not_running = str(e)
            for name in ("status.json", "ocpp-configuration.json", "journal.json",
                         "selftest.json"):
                b.skipped.append((name, str(e)))
        progress("bundle: station config...")
        config_path = _config_file(args, status)
        if config_path:
            try:
                with open(config_path, encoding="utf-8", errors="replace") as f:
                    text, secrets = redact_ini(f.read())
                b.secrets.extend(secrets)
                b.files["station.ini"] = "; %s\n%s" % (config_path, text)
            except OSError as e:
                b.skipped.append(("station.ini", "%s: %s" % (config_path, e.strerror or e)))
                failed.append("station.ini")
        else:
            b.skipped.append(("station.ini", "no config file (the firmware was started with "
                                             "flags only; --config FILE names one)"))
        progress("bundle: logs...")
        text, why = journal_logs(args.unit, args.since)
        if text is not None:
            b.files["logs.txt"] = text
        else:
            b.skipped.append(("logs.txt", why))
        if args.log_file:
            try:
                b.files["firmware.log"] = log_tail(args.log_file)
            except OSError as e:
                b.skipped.append(("firmware.log", "%s: %s" % (args.log_file, e.strerror or e)))
                failed.append("firmware.log")
        cp_id = ((status or {}).get("station") or {}).get("charge_point_id") or "station"
        cp_id = re.sub(r"[^A-Za-z0-9._-]", "_", cp_id)[:48]
        top = "pi-ocpp-diag-%s-%s" % (cp_id, time.strftime("%Y%m%d-%H%M%S", time.gmtime()))
        path = args.output or os.path.abspath(top + ".tar.gz")
        progress("bundle: writing %s..." % path)
        try:
            b.write(path, top)
        except OSError as e:
            raise client.DiagError("cannot write %s: %s" % (path, e.strerror or e))
    finally:
        progress.done()
    if getattr(args, "json", False):
        render.emit_json({"ok": not_running is None and not failed, "path": path,
                          "files": sorted(b.files), "skipped": [
                              {"file": f, "why": w} for f, w in b.skipped]}, out)
    else:
        if not_running:
            sys.stderr.write("diag: %s; the bundle has no firmware state\n" % not_running)
        for f, why in b.skipped:
            out.write("not included: %s (%s)\n" % (f, why))
        out.write("%s\n" % path)
    if not_running:
        return 2
    return 1 if failed else 0
