"""Update images (firmware/images.py, tools/make_image.py, docs/firmware-images.md):
a valid image verifies; corrupt, truncated, wrong-architecture, path-traversing
and otherwise malformed images are refused with a one-line reason and nothing
is extracted."""

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from firmware.images import (MANIFEST, NOARCH, ImageError, build_image, manifest_checksum,
                             verify_image)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    (src / "firmware").mkdir(parents=True)
    (src / "firmware" / "__init__.py").write_text("x = 1\n")
    (src / "firmware" / "__pycache__").mkdir()
    (src / "firmware" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (src / "ocpp_core").mkdir()
    (src / "ocpp_core" / "__init__.py").write_text("__version__ = '0'\n")
    (src / "setup.cfg").write_text("[metadata]\n")
    return src


@pytest.fixture
def image(source, tmp_path):
    out = str(tmp_path / "image.tar.gz")
    build_image(str(source), "9.9.9", out)
    return out


def refused(path, **kw):
    with pytest.raises(ImageError) as e:
        verify_image(path, **kw)
    reason = str(e.value)
    assert reason and "\n" not in reason
    return reason


def raw_tar(path, members, manifest=None):
    """An image written by hand: members [(name, bytes, type)], manifest first."""
    with tarfile.open(path, "w:gz") as tar:
        if manifest is not None:
            data = json.dumps(manifest).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = data.decode()
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def manifest_for(files, version="9.9.9", architecture=NOARCH):
    import hashlib
    m = {"format": "pi-ocpp-image/1", "version": version, "architecture": architecture,
         "files": {rel: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                   for rel, d in files.items()}}
    m["checksum"] = manifest_checksum(m)
    return m


def test_a_built_image_verifies_and_lists_its_files(image):
    manifest = verify_image(image)
    assert manifest["version"] == "9.9.9"
    assert manifest["architecture"] == NOARCH
    assert sorted(manifest["files"]) == ["firmware/__init__.py", "ocpp_core/__init__.py",
                                         "setup.cfg"]


def test_extract_writes_the_release_only_after_verification(image, tmp_path):
    target = tmp_path / "releases" / "9.9.9"
    verify_image(image, extract_to=str(target))
    assert (target / "firmware" / "__init__.py").read_text() == "x = 1\n"


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_a_truncated_image_is_refused(image, tmp_path, keep):
    data = open(image, "rb").read()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[:int(len(data) * keep)])
    target = tmp_path / "target"
    reason = refused(str(cut), extract_to=str(target))
    assert "unreadable" in reason or "lacks" in reason
    assert not target.exists()


def test_a_corrupt_byte_is_refused(image, tmp_path):
    data = bytearray(open(image, "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    refused(str(bad))


def test_a_file_changed_after_the_manifest_is_refused(tmp_path):
    m = manifest_for({"firmware/a.py": b"good"})
    path = raw_tar(str(tmp_path / "i.tgz"), [("release/firmware/a.py", b"evil", tarfile.REGTYPE)], m)
    assert "checksum mismatch for firmware/a.py" in refused(path)


def test_an_edited_manifest_fails_its_checksum(tmp_path):
    m = manifest_for({"firmware/a.py": b"good"})
    m["version"] = "10.0.0"
    path = raw_tar(str(tmp_path / "i.tgz"), [("release/firmware/a.py", b"good", tarfile.REGTYPE)], m)
    assert "manifest checksum" in refused(path)


def test_random_bytes_and_an_empty_file_are_refused(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(os.urandom(4096))
    assert "unreadable" in refused(str(junk))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    refused(str(empty))
    plain = tmp_path / "plain.gz"
    plain.write_bytes(gzip.compress(b"not a tar at all" * 100))
    refused(str(plain))


def test_wrong_architecture_is_refused(source, tmp_path):
    out = str(tmp_path / "arm.tgz")
    build_image(str(source), "9.9.9", out, architecture="armv7l")
    assert "architecture armv7l" in refused(out, architecture="aarch64")
    assert verify_image(out, architecture="armv7l")["architecture"] == "armv7l"


@pytest.mark.parametrize("name", ["release/../../etc/passwd", "/etc/passwd", "release//x",
                                  "release/./x", "outside.py", "release/a\\..\\b"])
def test_path_traversal_is_refused(tmp_path, name):
    m = manifest_for({"x": b"1"})
    path = raw_tar(str(tmp_path / "i.tgz"), [("release/x", b"1", tarfile.REGTYPE),
                                             (name, b"1", tarfile.REGTYPE)], m)
    assert "unsafe member path" in refused(path, extract_to=str(tmp_path / "t"))
    assert not (tmp_path / "t").exists()


def test_a_manifest_naming_a_traversing_path_is_refused(tmp_path):
    m = manifest_for({"../x": b"1"})
    path = raw_tar(str(tmp_path / "i.tgz"), [], m)
    assert "unsafe path" in refused(path)


def test_links_and_devices_are_refused(tmp_path):
    m = manifest_for({"x": b"1"})
    path = raw_tar(str(tmp_path / "i.tgz"), [("release/x", b"/etc/passwd", tarfile.SYMTYPE)], m)
    assert "not a regular file" in refused(path)


def test_missing_extra_and_duplicate_members_are_refused(tmp_path):
    m = manifest_for({"a": b"1", "b": b"2"})
    path = raw_tar(str(tmp_path / "1.tgz"), [("release/a", b"1", tarfile.REGTYPE)], m)
    assert "lacks 1 listed file" in refused(path)
    path = raw_tar(str(tmp_path / "2.tgz"), [("release/a", b"1", tarfile.REGTYPE),
                                             ("release/b", b"2", tarfile.REGTYPE),
                                             ("release/c", b"3", tarfile.REGTYPE)], m)
    assert "not in the manifest" in refused(path)
    path = raw_tar(str(tmp_path / "3.tgz"), [("release/a", b"1", tarfile.REGTYPE),
                                             ("release/a", b"1", tarfile.REGTYPE),
                                             ("release/b", b"2", tarfile.REGTYPE)], m)
    assert "twice" in refused(path)


def test_no_manifest_first_or_a_bad_manifest_is_refused(tmp_path):
    path = raw_tar(str(tmp_path / "1.tgz"), [("release/a", b"1", tarfile.REGTYPE)])
    assert "first member" in refused(path)
    m = manifest_for({"a": b"1"})
    m["format"] = "zip"
    m["checksum"] = manifest_checksum(m)
    path = raw_tar(str(tmp_path / "2.tgz"), [("release/a", b"1", tarfile.REGTYPE)], m)
    assert "unknown image format" in refused(path)
    m = manifest_for({"a": b"1"}, version="9 9")
    path = raw_tar(str(tmp_path / "3.tgz"), [("release/a", b"1", tarfile.REGTYPE)], m)
    assert "not a valid firmwareVersion" in refused(path)


def test_build_refuses_a_bad_version(source, tmp_path):
    with pytest.raises(ValueError):
        build_image(str(source), "", str(tmp_path / "x"))
    with pytest.raises(ValueError):
        build_image(str(source), "x" * 51, str(tmp_path / "x"))


def test_make_image_command_line_builds_from_this_checkout(tmp_path):
    """The bench contract's exact command line."""
    out = tmp_path / "update.img"
    done = subprocess.run([sys.executable, "-m", "tools.make_image", "--version", "9.9.9",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    manifest = verify_image(str(out))
    assert manifest["version"] == "9.9.9"
    assert "firmware/__main__.py" in manifest["files"]
    assert "ocpp_core/charge_point.py" in manifest["files"]
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in manifest["files"])
    assert not out.with_name("update.img.part").exists()


def test_make_image_bad_version_exits_2_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tools.make_image", "--version", "a b",
                           "--out", str(tmp_path / "x")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("make_image: error:") and done.stderr.count("\n") == 1
