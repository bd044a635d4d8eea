"""ocpp_core.store: atomic, durable, self-checking JSON files."""

import logging
import os
import stat

import pytest

from ocpp_core import store as store_mod
from ocpp_core.store import Store

OBJ = {"key": "00000001", "wh": 1234, "tag": "ÄBC", "list": [1, 2.5, None, True]}


@pytest.fixture
def st(tmp_path):
    return Store(str(tmp_path / "data"))


def path_of(st, name):
    return os.path.join(st.directory, *name.split("/"))


def store_errors(caplog):
    return [r for r in caplog.records if r.name == "ocpp.store" and r.levelno >= logging.WARNING]


# --- basics --------------------------------------------------------------------------

def test_roundtrip_missing_and_default(st):
    assert st.load("a") is None
    assert st.load("a", default={"x": 1}) == {"x": 1}
    st.save("a", OBJ)
    assert st.load("a") == OBJ
    st.save("a", [1, 2])
    assert st.load("a") == [1, 2]


def test_subfolders_names_and_delete(st):
    st.save("queue/0000000002", {"n": 2})
    st.save("queue/0000000001", {"n": 1})
    st.save("tx/00000001", {"t": 1})
    st.save("deep/er/x", 1)
    st.save("top", 0)
    assert st.names("queue/") == ["queue/0000000001", "queue/0000000002"]
    assert st.names("tx/") == ["tx/00000001"]
    assert st.names() == ["deep/er/x", "queue/0000000001", "queue/0000000002", "top",
                          "tx/00000001"]
    assert st.names("nothing/") == []
    assert st.exists("tx/00000001")
    assert st.delete("queue/0000000001") is True
    assert st.delete("queue/0000000001") is False
    assert st.names("queue/") == ["queue/0000000002"]
    assert not os.path.exists(path_of(st, "queue/0000000001"))


def test_move(st):
    st.save("queue/0000000007", {"n": 7})
    st.move("queue/0000000007", "setaside/0000000007")
    assert st.names("queue/") == []
    assert st.load("setaside/0000000007") == {"n": 7}


@pytest.mark.parametrize("name", ["", "/abs", "a//b", "../x", "a/../b", ".hidden", "x.tmp",
                                  "x.corrupt", "a/.b"])
def test_bad_names_refused(st, name):
    with pytest.raises(ValueError):
        st.save(name, 1)


def test_file_format_has_header_with_crc_and_length(st):
    st.save("f", {"a": 1})
    with open(path_of(st, "f"), "rb") as f:
        data = f.read()
    header, body = data.split(b"\n", 1)
    magic, crc, length = header.split(b" ")
    assert magic == b"OCPPSTORE1"
    assert int(length) == len(body) and body == b'{"a":1}'
    assert int(crc, 16) == store_mod.checksum(body)


def test_portable_crc_matches_binascii():
    import binascii
    for data in (b"", b"a", b"123456789", bytes(range(256)) * 3):
        assert store_mod._crc32_portable(data) == binascii.crc32(data) & 0xFFFFFFFF


# --- atomicity ------------------------------------------------------------------------------

def test_failed_write_leaves_old_content_and_no_temp(st, monkeypatch):
    st.save("f", {"v": 1})

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", boom)
    with pytest.raises(OSError):
        st.save("f", {"v": 2})
    monkeypatch.undo()
    assert st.load("f") == {"v": 1}
    assert os.listdir(st.directory) == ["f"]


def test_leftover_temp_files_cleaned_at_construction(tmp_path, caplog):
    data = str(tmp_path / "data")
    st = Store(data)
    st.save("queue/0000000001", {"n": 1})
    st.save("top", 1)
    # a save interrupted by a crash: a partial temp file next to the real one
    good = store_mod.encode({"n": 2})
    for name in ("queue/0000000001.tmp", "queue/0000000002.tmp", "top.tmp"):
        with open(os.path.join(data, name), "wb") as f:
            f.write(good[:len(good) // 2])
    assert st.names() == ["queue/0000000001", "top"]  # never listed
    with caplog.at_level(logging.INFO, logger="ocpp.store"):
        st2 = Store(data)
    assert sorted(os.listdir(os.path.join(data, "queue"))) == ["0000000001"]
    assert sorted(os.listdir(data)) == ["queue", "top"]
    assert st2.load("queue/0000000001") == {"n": 1}
    assert any("3 temp file" in r.getMessage() for r in caplog.records)


# --- corruption ---------------------------------------------------------------------------------

def corrupt_cases():
    good = store_mod.encode(OBJ)
    cases = {
        "empty": b"",
        "truncated_half": good[:len(good) // 2],
        "truncated_last_byte": good[:-1],
        "header_only": good[:good.index(b"\n") + 1],
        "extra_byte": good + b" ",
        "garbage": bytes(range(256)),
        "zeros": b"\0" * 512,  # what a lost block often reads back as
        "plain_json": b'{"a": 1}',
        "wrong_magic": good.replace(b"OCPPSTORE1", b"OCPPSTORE9", 1),
        "bad_crc_hex": b"OCPPSTORE1 zzzzzzzz 2\n{}",
        "not_json": (lambda body: ("OCPPSTORE1 %08x %d\n" % (store_mod.checksum(body), len(body)))
                     .encode() + body)(b"{nope"),
        "not_utf8": (lambda body: ("OCPPSTORE1 %08x %d\n" % (store_mod.checksum(body), len(body)))
                     .encode() + body)(b'"\xff\xfe"'),
    }
    return cases


@pytest.mark.parametrize("case", sorted(corrupt_cases()))
def test_corrupt_file_detected_logged_once_and_moved_aside(st, caplog, case):
    st.save("tx/00000001", OBJ)
    with open(path_of(st, "tx/00000001"), "wb") as f:
        f.write(corrupt_cases()[case])
    with caplog.at_level(logging.INFO, logger="ocpp.store"):
        assert st.load("tx/00000001", default="D") == "D"
        assert st.load("tx/00000001", default="D") == "D"  # now simply missing: no 2nd line
    lines = store_errors(caplog)
    assert len(lines) == 1
    msg = lines[0].getMessage()
    assert msg.startswith("file tx/00000001 is corrupt (")
    assert msg.endswith("; moved aside to tx/00000001.corrupt")
    assert os.path.exists(path_of(st, "tx/00000001.corrupt"))
    assert st.names() == []
    assert st.corrupt_names() == ["tx/00000001.corrupt"]


def test_every_flipped_byte_is_detected(st, caplog):
    good = store_mod.encode(OBJ)
    for i in range(len(good)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(good)
            bad[i] ^= mask
            with open(path_of(st, "f"), "wb") as f:
                f.write(bytes(bad))
            assert st.load("f", default="D") == "D", "flip of byte %d (^%02x) missed" % (i, mask)
            for name in os.listdir(st.directory):
                os.unlink(os.path.join(st.directory, name))


def test_second_corrupt_copy_does_not_overwrite_first(st, caplog):
    for _ in range(3):
        with open(path_of(st, "f"), "wb") as f:
            f.write(b"junk")
        assert st.load("f") is None
    assert st.corrupt_names() == ["f.1.corrupt", "f.2.corrupt", "f.corrupt"]


def test_load_never_raises_even_when_it_cannot_move_aside(st, caplog, monkeypatch):
    with open(path_of(st, "f"), "wb") as f:
        f.write(b"junk")

    def refuse(src, dst):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "rename", refuse)
    assert st.load("f", default=0) == 0
    lines = store_errors(caplog)
    assert len(lines) == 1 and "could not move it aside" in lines[0].getMessage()


def test_folder_is_not_a_corrupt_file(st):
    st.save("tx/00000001", 1)
    assert st.load("tx") is None
    assert os.path.isdir(path_of(st, "tx"))


# --- durability: fsync of the file before the rename, of the folder after ------------------

class SyscallSpy:
    def __init__(self, monkeypatch):
        self.events = []
        real_fsync, real_rename, real_unlink = os.fsync, os.rename, os.unlink

        def fsync(fd):
            kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
            self.events.append(("fsync", kind))
            return real_fsync(fd)

        def rename(a, b):
            self.events.append(("rename", os.path.basename(a), os.path.basename(b)))
            return real_rename(a, b)

        def unlink(p):
            self.events.append(("unlink", os.path.basename(p)))
            return real_unlink(p)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "rename", rename)
        monkeypatch.setattr(os, "unlink", unlink)


def test_save_fsyncs_file_then_renames_then_fsyncs_folder(st, monkeypatch):
    st.save("queue/0000000001", {"n": 0})  # folder exists from here on
    spy = SyscallSpy(monkeypatch)
    before = st.fsync_count
    st.save("queue/0000000001", {"n": 1})
    assert spy.events == [("fsync", "file"), ("rename", "0000000001.tmp", "0000000001"),
                          ("fsync", "dir")]
    assert st.fsync_count - before == 2


def test_new_folder_is_fsynced_in_its_parent(st, monkeypatch):
    spy = SyscallSpy(monkeypatch)
    st.save("a/b/c", 1)
    kinds = [e for e in spy.events if e[0] == "fsync"]
    # a created (fsync data dir), b created (fsync a), the file, then folder b
    assert kinds == [("fsync", "dir"), ("fsync", "dir"), ("fsync", "file"), ("fsync", "dir")]
    spy.events[:] = []
    st.save("a/b/d", 2)
    assert [e for e in spy.events if e[0] == "fsync"] == [("fsync", "file"), ("fsync", "dir")]


def test_delete_and_move_fsync_folders(st, monkeypatch):
    st.save("queue/0000000001", 1)
    st.save("setaside/0000000000", 0)
    spy = SyscallSpy(monkeypatch)
    st.move("queue/0000000001", "setaside/0000000001")
    assert spy.events == [("rename", "0000000001", "0000000001"), ("fsync", "dir"),
                          ("fsync", "dir")]
    spy.events[:] = []
    before = st.fsync_count
    st.delete("setaside/0000000001")
    assert spy.events == [("unlink", "0000000001"), ("fsync", "dir")]
    assert st.fsync_count - before == 1


def test_works_without_fsync(st, monkeypatch):
    """A port without os.fsync (MicroPython): saves still work, nothing counted."""
    before = st.fsync_count
    monkeypatch.delattr(os, "fsync")
    st.save("x", 1)
    assert st.load("x") == 1
    assert st.fsync_count == before


def test_append_is_one_fsync_and_a_new_file_also_fsyncs_its_folder(tmp_path):
    st = Store(str(tmp_path / "d"))
    st.append("journal/0000000000.log", b"")       # the folder exists from here on
    before = st.fsync_count
    st.append("journal/0000000001.log", b"abc")
    assert st.fsync_count - before == 2            # the file, and the folder (new file)
    st.append("journal/0000000001.log", b"def")
    assert st.fsync_count - before == 3            # then one per append
    assert st.read_bytes("journal/0000000001.log") == b"abcdef"
    assert st.read_bytes("journal/nothing") is None
    assert st.delete("journal/0000000001.log") is True


def test_a_failed_append_raises_and_sets_the_problem(tmp_path):
    import errno as _errno

    class Full:
        def check(self, op, path):
            raise OSError(_errno.ENOSPC, "full", path)

    st = Store(str(tmp_path / "d"))
    st.append("journal/x.log", b"ok")
    st.faults = Full()
    with pytest.raises(OSError):
        st.append("journal/x.log", b"more")
    assert st.problem == "full"
    st.faults = None
    st.append("journal/x.log", b"!")
    assert st.problem is None and st.read_bytes("journal/x.log") == b"ok!"
