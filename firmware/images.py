"""Update images (FirmwareManagement): build one from a checkout, verify one
before anything is installed. The format is documented in docs/firmware-images.md.

    build_image(source_dir, version, out, architecture="noarch") -> manifest
    verify_image(path, architecture=None) -> manifest, or raises ImageError

verify_image reads the whole image once and checks everything an install would
rely on; ImageError's message is one line that says why an image is refused
(it becomes the log line of an InstallationFailed).
"""

import hashlib
import io
import json
import os
import platform
import re
import shutil
import tarfile
import zlib

FORMAT = "pi-ocpp-image/1"
MANIFEST = "manifest.json"
PAYLOAD = "release/"            # every file of the release is under this folder
NOARCH = "noarch"               # pure Python: any machine
# What a release holds, relative to the checkout's root.
RELEASE_PACKAGES = ("ocpp_core", "firmware", "drivers", "hal_mocks", "tools")
RELEASE_FILES = ("setup.cfg", "pyproject.toml", "README.md")
SKIPPED_DIRS = ("__pycache__",)
SKIPPED_SUFFIXES = (".pyc", ".pyo")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,49}$")   # firmwareVersion: CiString50


class ImageError(Exception):
    """The image may not be installed; str(e) is one line saying why."""


def machine():
    """The architecture this station runs on (platform.machine(), e.g. aarch64)."""
    return platform.machine() or "unknown"


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def manifest_checksum(manifest):
    """The sha256 of the manifest without its own "checksum" field, in canonical JSON."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8"))


# --- building -----------------------------------------------------------------------------
def release_files(source_dir):
    """The files of a release in source_dir: relative paths, sorted."""
    found = []
    for name in RELEASE_FILES:
        if os.path.isfile(os.path.join(source_dir, name)):
            found.append(name)
    for package in RELEASE_PACKAGES:
        top = os.path.join(source_dir, package)
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
            for f in files:
                if f.endswith(SKIPPED_SUFFIXES) or f.startswith("."):
                    continue
                path = os.path.join(root, f)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                found.append(os.path.relpath(path, source_dir).replace(os.sep, "/"))
    return sorted(found)


def copy_release(source_dir, dest_dir):
    """Copy the release files of source_dir into dest_dir (a tree to build an
    image from) -> their relative paths."""
    files = release_files(source_dir)
    for rel in files:
        dest = os.path.join(dest_dir, *rel.split("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(source_dir, rel), dest)
    return files


def build_image(source_dir, version, out, architecture=NOARCH, files=None):
    """Write the update image of source_dir's release, as `version`, to out
    (written beside it and renamed: never a half-written image). -> manifest."""
    if not VERSION_RE.match(version or ""):
        raise ValueError("version %r: 1-50 characters of letters, digits and . + _ -" % version)
    contents = []
    for rel in (files if files is not None else release_files(source_dir)):
        with open(os.path.join(source_dir, rel), "rb") as f:
            contents.append((rel, f.read()))
    manifest = {
        "format": FORMAT,
        "version": version,
        "architecture": architecture,
        "files": {rel: {"sha256": _sha256(data), "size": len(data)} for rel, data in contents},
    }
    manifest["checksum"] = manifest_checksum(manifest)
    raw = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    tmp = out + ".part"
    with tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MANIFEST, raw)
        for rel, data in contents:
            _add(tar, PAYLOAD + rel, data)
    os.replace(tmp, out)
    return manifest


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0              # reproducible: the same checkout gives the same files
    tar.addfile(info, io.BytesIO(data))


# --- verifying ----------------------------------------------------------------------------
def _safe_relative(name):
    """True for a relative path with no '..', no empty or '.' part, no backslash."""
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    parts = name.split("/")
    return all(p not in ("", ".", "..") for p in parts)


def _check_manifest(manifest, architecture):
    if not isinstance(manifest, dict):
        raise ImageError("manifest is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise ImageError("unknown image format %r (expected %s)" % (manifest.get("format"), FORMAT))
    if manifest.get("checksum") != manifest_checksum(manifest):
        raise ImageError("manifest checksum does not match its content")
    version = manifest.get("version")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise ImageError("manifest version %r is not a valid firmwareVersion" % (version,))
    arch = manifest.get("architecture")
    if not isinstance(arch, str):
        raise ImageError("manifest has no architecture")
    here = architecture or machine()
    if arch != NOARCH and arch != here:
        raise ImageError("image is for architecture %s, this station is %s" % (arch, here))
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ImageError("manifest lists no files")
    for rel, entry in files.items():
        if not _safe_relative(rel):
            raise ImageError("manifest names an unsafe path %r" % rel)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not isinstance(entry.get("size"), int):
            raise ImageError("manifest entry for %s has no sha256 and size" % rel)


def verify_image(path, architecture=None, extract_to=None):
    """Check the image at path: readable to its end (gzip CRC, tar structure),
    a valid manifest first, every member a regular file under release/ at a safe
    path, listed in the manifest with its size and sha256, and nothing listed
    missing. architecture: the station's (default machine()). With extract_to
    (a directory that must not exist yet), the checked files are written there
    only once everything is verified. -> the manifest."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise ImageError("the first member is not %s" % MANIFEST)
            if first.size > MAX_MANIFEST_BYTES:
                raise ImageError("manifest too large (%d bytes)" % first.size)
            try:
                manifest = json.loads(tar.extractfile(first).read().decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise ImageError("manifest is not valid JSON: %s" % e)
            _check_manifest(manifest, architecture)
            files = manifest["files"]
            seen = {}
            for member in tar:
                if member is first:
                    continue        # iterating a tarfile starts again at its first member
                name = member.name
                if not name.startswith(PAYLOAD) or not _safe_relative(name):
                    raise ImageError("unsafe member path %r" % name)
                if not member.isfile():
                    raise ImageError("member %s is not a regular file" % name)
                rel = name[len(PAYLOAD):]
                if rel in seen:
                    raise ImageError("member %s appears twice" % name)
                entry = files.get(rel)
                if entry is None:
                    raise ImageError("member %s is not in the manifest" % name)
                data = tar.extractfile(member).read()
                if len(data) != entry["size"] or _sha256(data) != entry["sha256"]:
                    raise ImageError("checksum mismatch for %s" % rel)
                seen[rel] = data if extract_to is not None else None
            while tar.fileobj.read(1 << 16):
                pass        # to the gzip trailer: its CRC and length cover every byte
            missing = sorted(set(files) - set(seen))
            if missing:
                raise ImageError("image lacks %d listed file(s), first %s" % (len(missing),
                                                                              missing[0]))
    except ImageError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageError("image unreadable (corrupt or truncated): %s" % reason)
    if extract_to is not None:
        _extract(seen, extract_to)
    return manifest


def _extract(contents, target):
    os.makedirs(target)
    for rel, data in sorted(contents.items()):
        dest = os.path.join(target, *rel.split("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data)
