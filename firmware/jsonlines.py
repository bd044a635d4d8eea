"""JSON lines on a stream socket, as the maintenance socket (firmware.maintenance)
and the bench socket (hal_mocks.bench_server) speak them: one request object per
line in, one response object per line out. A bad request is answered
{"ok": false, "error": "<one line>"} and the connection stays usable.

Here: cutting what arrives into request lines (an over-long one is answered as
soon as it is known and the rest of it skipped), and reading one line into a
request. What a server does with a request, and how it writes its answer,
stays with the server.
"""

import json

RECV_SIZE = 65536            # bytes asked of one recv()


def one_line(text):
    """str(text) on one line, runs of white space folded; "error" when empty."""
    return " ".join(str(text).split()) or "error"


def too_long(limit):
    """The answer to a request line over `limit` bytes."""
    return {"ok": False, "error": "request longer than %d bytes" % limit}


def request_lines(conn, limit, crlf=False, serving=None):
    """The lines that arrive on the socket `conn` (bytes, without their LF), in
    order, until the peer closes the connection, recv() fails (a timeout too)
    or serving() - asked before each recv() - is false.

    A line over `limit` bytes is given as None, once, as soon as it is known
    (answer it with too_long(limit)), and the rest of it is skipped. crlf: the
    CRs that end a line do not count towards the limit."""
    buf = b""
    discarding = False       # inside an over-long line, already answered
    slack = 1 if crlf else 0    # a CR that may be followed by the LF
    while serving is None or serving():
        try:
            data = conn.recv(RECV_SIZE)
        except OSError:
            return
        if not data:
            return
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            if discarding:
                discarding = False
                continue
            size = len(line.rstrip(b"\r")) if crlf else len(line)
            yield None if size > limit else line
        if discarding:
            buf = b""
        elif len(buf) > limit + slack:
            # No newline in sight: answer now and skip the rest of the line.
            discarding = True
            buf = b""
            yield None


def parse_request(line):
    """One request line (bytes or str) -> (request, None), or (None, the error
    response) when it is not UTF-8, empty, not JSON (nested too deeply included)
    or not a JSON object. Never raises: a bad line costs the client one error
    line, never its connection."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            return None, {"ok": False, "error": "the request is not UTF-8 text"}
    text = line.strip()
    if not text:
        return None, {"ok": False, "error": 'empty request: send one JSON object per line, '
                                            'like {"cmd": "status"}'}
    try:
        request = json.loads(text)
    except ValueError as e:
        return None, {"ok": False, "error": "invalid JSON: %s" % one_line(e)}
    except RecursionError:
        return None, {"ok": False, "error": "invalid JSON: nested too deeply"}
    if not isinstance(request, dict):
        return None, {"ok": False, "error": 'the request must be a JSON object, like '
                                            '{"cmd": "status"}'}
    return request, None
