"""What the soak found, pinned down: each test reproduces one finding in isolation."""

import logging

from firmware import main_loop
from ocpp_core.framing import MAX_FRAME_CHARS


def test_a_frame_over_the_limit_is_traced_by_its_head_only(caplog):
    # The soak's 1 MiB hostile frames were written to the log in full, one line each:
    # a CSMS could write megabytes per frame to the SD card. The frame is refused
    # (FormationViolation) anyway; its head and its size are what a technician needs.
    frame = '[2,"fz-1","DataTransfer",{"vendorId":"soak","data":"' + "A" * (1 << 20) + '"}]'
    with caplog.at_level(logging.INFO, logger="ocpp.trace"):
        main_loop._trace("rx", frame)
        main_loop._trace("rx", frame[:MAX_FRAME_CHARS])
    big, at_limit = [r.getMessage() for r in caplog.records]
    assert big.startswith('<< [2,"fz-1","DataTransfer"')
    assert big.endswith("... (%d characters, over the %d limit)" % (len(frame), MAX_FRAME_CHARS))
    assert len(big) < 400
    assert at_limit == "<< " + frame[:MAX_FRAME_CHARS]      # a frame within the limit: whole


def test_a_megabyte_frame_arrives_whole_and_a_text_frame_not_utf8_fails_the_connection():
    # The soak's 1 MiB frames were answered up to 4.5 s late (every answer behind them
    # too): websocket-client checked UTF-8 in pure Python. The link now lets bytes.decode
    # do it; a text frame that is not UTF-8 still fails the connection (RFC 6455 8.1).
    import queue
    import random
    import threading

    from websockets.sync.server import serve

    from firmware.link import CsmsLink, LinkSettings

    big = '[2,"fz-1","DataTransfer",{"vendorId":"soak","data":"%s"}]' % ("\u00e9" * (1 << 19))
    first = threading.Event()

    def handler(conn):
        if not first.is_set():
            first.set()
            conn.send(big)
            conn.send(b'[2,"fz-2","Heartbeat",{"\xff\xfe":1}]', text=True)
        for _ in conn:
            pass

    server = serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"], max_size=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    events = queue.Queue()
    link = CsmsLink(LinkSettings(url="ws://127.0.0.1:%d/ocpp/CP" % server.socket.getsockname()[1],
                                 charge_point_id="CP", password=None, backoff_initial=0.05,
                                 backoff_max=0.1, connect_timeout=2),
                    events, rng=random.Random(1))
    try:
        link.start()
        assert events.get(timeout=5) == ("up", None)
        assert events.get(timeout=5) == ("frame", big)
        assert events.get(timeout=5) == \
            ("down", "connection lost: the CSMS sent a text frame that is not UTF-8")
        assert events.get(timeout=5) == ("up", None)          # and it connects again
    finally:
        link.stop()
        server.shutdown()
        thread.join(5)
