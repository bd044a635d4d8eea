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
