"""The diagnostics bundle: one .tar.gz for the support team, with no secret in
it. Made by `python -m tools.diag bundle` (the technician, over the
maintenance socket) and by the firmware itself for GetDiagnostics and GetLog
DiagnosticsLog (firmware/diagnostics.py), from the same parts:

    versions.json           Python, OS, board, every installed package
    station.ini             the station config file, secrets redacted
    status.json             the firmware's state (as `status --json`)
    ocpp-configuration.json the OCPP keys (write-only values hidden)
    journal.json            queued / set-aside messages, recent transactions
    logs.txt                journalctl -u pi-ocpp for the time range (if available)
    firmware.log            the firmware's recent log lines (uploads: in the time range)
    ocpp-trace.txt          the recent OCPP frames (uploads: in the time range)
    README.txt              what is here, what was skipped and why

Secrets: in station.ini every option whose name says password, secret, key or
token is replaced by <redacted>, user information in URLs too; every value
redacted that way (and every secret the caller names: the basic-auth
password, the AuthorizationKey) is then scrubbed from every file, and so is
any PEM private key block.
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

from ocpp_core.redact import mask_private_keys, mask_secrets, mask_url_userinfo

UNIT = "pi-ocpp"
JOURNALCTL_TIMEOUT = 30.0
LOG_TAIL_BYTES = 5 * 1024 * 1024
REDACTED = "<redacted>"
KEY_REDACTED = "<redacted private key>"
SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "credential", "passphrase")
_OPTION = re.compile(r"^(\s*)([^=:\s;#\[][^=:]*?)(\s*[=:]\s*)(.*?)\s*$")


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
    text = mask_private_keys(text, KEY_REDACTED)
    return redact_urls(mask_secrets(text, [s for s in secrets if s], REDACTED))


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


def journal_logs(unit, since, until=None):
    """(text, None) or (None, why not). since/until as journalctl takes them
    ("24 hours ago", "@<epoch s>")."""
    exe = shutil.which("journalctl")
    if exe is None:
        return None, "journalctl is not installed"
    command = [exe, "-u", unit, "--since", since, "--no-pager", "-o", "short-iso", "-q"]
    if until is not None:
        command += ["--until", until]
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=JOURNALCTL_TIMEOUT)
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


def in_range(stamped, start=None, stop=None):
    """The texts of (epoch s, text) pairs whose time is within [start, stop]
    (either bound may be None)."""
    return [text for t, text in stamped
            if (start is None or t >= start) and (stop is None or t <= stop)]


class Bundle:
    def __init__(self):
        self.files = {}       # name -> text
        self.skipped = []     # (what, why)
        self.secrets = []

    def add_json(self, name, obj):
        self.files[name] = json.dumps(obj, indent=2, default=str) + "\n"

    def write(self, path, top, made_by="`python -m tools.diag bundle`"):
        readme = ["Diagnostic bundle of a pi-ocpp charge point, made %s UTC by "
                  "%s." % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), made_by),
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


def add_station_ini(b, path):
    """The station config file, secrets redacted (their values join b.secrets)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text, secrets = redact_ini(f.read())
    except OSError as e:
        b.skipped.append(("station.ini", "%s: %s" % (path, e.strerror or e)))
        return False
    b.secrets.extend(secrets)
    b.files["station.ini"] = "; %s\n%s" % (path, text)
    return True
