"""The journal's file format: segments of CRC-framed records (ocpp_core/journal.py).

A segment is one file `journal/<10-digit generation>.log`. It is a sequence of
frames, each one record:

    b"OJ"  magic (2 bytes): where a frame starts (found again after damage)
    n      payload length, 4 bytes big-endian
    crc    CRC-32 (IEEE, as zlib) of the 4 length bytes and the payload, 4 bytes
    payload  n bytes of UTF-8 JSON: a list of operations, applied together

A frame is whole or it does not count: a torn last frame (a power cut in the
middle of an append) fails its length or CRC check and is dropped. A damaged
frame in the middle (a flipped bit) is skipped: the reader looks for the next
magic whose frame checks out, and says how many bytes it skipped.

Every segment begins with a snapshot frame (the whole live state, written by
compaction); a segment whose first frame does not check out is a compaction
that did not finish, and the previous segment is still the truth.

Standard library only: portable to MicroPython (binascii.crc32 exists there;
the Store's portable CRC is used where it does not).
"""

import json

from ocpp_core.store import checksum

MAGIC = b"OJ"
HEADER = 10               # magic + length + crc
MAX_PAYLOAD = 64 * 1024 * 1024
FOLDER = "journal/"
SUFFIX = ".log"


def segment_name(generation):
    return "%s%010d%s" % (FOLDER, generation, SUFFIX)


def generation_of(name):
    """The generation of a segment's store name, or None for another file."""
    if not name.startswith(FOLDER) or not name.endswith(SUFFIX):
        return None
    digits = name[len(FOLDER):len(name) - len(SUFFIX)]
    if not digits or not all(c in "0123456789" for c in digits):
        return None
    return int(digits)


def frame(ops):
    """The bytes of one record holding the list of operations ops."""
    body = json.dumps(ops, separators=(",", ":")).encode("utf-8")
    size = len(body).to_bytes(4, "big")
    return MAGIC + size + checksum(size + body).to_bytes(4, "big") + body


def _frame_at(data, pos):
    """(payload, end) of a valid frame starting at pos, or None."""
    if data[pos:pos + 2] != MAGIC or pos + HEADER > len(data):
        return None
    size_bytes = data[pos + 2:pos + 6]
    size = int.from_bytes(size_bytes, "big")
    end = pos + HEADER + size
    if size > MAX_PAYLOAD or end > len(data):
        return None
    body = data[pos + HEADER:end]
    if checksum(size_bytes + body) != int.from_bytes(data[pos + 6:pos + 10], "big"):
        return None
    try:
        ops = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeError):
        return None
    if not isinstance(ops, list):
        return None
    return ops, end


def read_frames(data):
    """(records, skipped, torn): the operation lists of every valid frame in
    order; the bytes skipped in the middle (damage followed by valid frames);
    the bytes dropped at the end (a torn or damaged tail)."""
    records = []
    pos = 0
    skipped = 0
    n = len(data)
    while pos < n:
        got = _frame_at(data, pos)
        if got is not None:
            records.append(got[0])
            pos = got[1]
            continue
        nxt = pos + 1
        while True:
            nxt = data.find(MAGIC, nxt)
            if nxt < 0 or _frame_at(data, nxt) is not None:
                break
            nxt += 1
        if nxt < 0:
            return records, skipped, n - pos
        skipped += nxt - pos
        pos = nxt
    return records, skipped, 0
