"""The control pilot over OpenEVSE RAPI: IEC 61851 arithmetic, framing, the
driver against scripted peers and against the emulated board on real
pseudo-terminals."""

import functools
import time

import pytest
import serial

from drivers import pilot_math
from drivers.hal import DeviceError
from drivers.pilot_rapi import (RapiPilot, RapiRefused, additive_checksum, encode, iec_state,
                                parse_frame, xor_checksum)
from hal_mocks.pty_device import PtyDevice
from hal_mocks.rapi_board import start_rapi_board
from tests.support.device_fixtures import closing_factory

TIMEOUT = 0.3     # the driver's reply timeout in these tests


def frame(body):
    """A board's frame with its XOR checksum, as bytes."""
    return ("%s^%02X\r" % (body, xor_checksum(body))).encode("ascii")


def offered(world, cid=1):
    return world.snapshot()["connectors"][cid]["offered_a"]


def ev(world, cid=1):
    return world.snapshot()["connectors"][cid]["ev_state"]


@pytest.fixture
def board(world, closing):
    return closing_factory(closing, functools.partial(start_rapi_board, world, 1))


@pytest.fixture
def pilot(closing):
    return closing_factory(closing, RapiPilot, timeout=TIMEOUT)


class ScriptedPeer(PtyDevice):
    """A peer on a pty that answers each command line with script[code](frame) bytes."""

    def __init__(self, script):
        PtyDevice.__init__(self, "scripted-peer")
        self.script = script
        self.lines = []
        self._buf = bytearray()

    def received(self, data):
        self._buf += data
        while b"\r" in self._buf:
            end = self._buf.index(b"\r")
            line = bytes(self._buf[:end]).decode("ascii")
            del self._buf[:end + 1]
            self.lines.append(line)
            f = parse_frame(line)
            answer = self.script.get(f.code)
            self.send(answer(f) if answer else frame("$NK"))


@pytest.fixture
def peer(closing):
    return closing_factory(closing, lambda script: ScriptedPeer(script).start())


# --- IEC 61851 arithmetic ---------------------------------------------------------------------
@pytest.mark.parametrize("amps, duty", [(6, 10.0), (16, 26.67), (32, 53.33), (51, 85.0),
                                        (63, 89.2), (80, 96.0), (10, 16.67), (0, 100.0)])
def test_duty_cycle_for_current(amps, duty):
    assert pilot_math.duty_cycle_for_current(amps) == duty


@pytest.mark.parametrize("amps", [5.9, 1, -6, 80.1, 100, float("nan"), "16", None, True])
def test_duty_cycle_refuses_what_a_pilot_cannot_offer(amps):
    with pytest.raises(ValueError):
        pilot_math.duty_cycle_for_current(amps)


@pytest.mark.parametrize("duty, amps", [(10, 6.0), (26.67, 16.0), (53.33, 32.0), (85, 51.0),
                                        (89.2, 63.0), (96, 80.0), (50, 30.0),
                                        (5, None), (9.9, None), (96.1, None), (100, None),
                                        (0, None)])
def test_current_for_duty_cycle(duty, amps):
    assert pilot_math.current_for_duty_cycle(duty) == amps


def test_duty_cycle_round_trip_over_the_whole_range():
    for tenths in range(60, 801):
        amps = tenths / 10.0
        read = pilot_math.current_for_duty_cycle(pilot_math.duty_cycle_for_current(amps))
        if 51 < amps <= 52.5:
            assert read == 51.0           # no duty cycle means 51..52.5 A: never more
        else:
            assert read == pytest.approx(amps, abs=0.01)


def test_gap_between_the_two_ranges():
    assert pilot_math.duty_cycle_for_current(52) == 85.0
    assert pilot_math.duty_cycle_for_current(52.5) == 85.0
    assert pilot_math.duty_cycle_for_current(53) == 85.2
    assert pilot_math.current_for_duty_cycle(85.2) == 53.0


@pytest.mark.parametrize("volts, state", [(12, "A"), (11.2, "A"), (9, "B"), (8.1, "B"),
                                          (6, "C"), (5.2, "C"), (3, "D"), (2.0, "D"),
                                          (0, "E"), (-0.8, "E"), (-12, "F"), (-11.0, "F"),
                                          (14.5, None), (-6, None), (-14, None)])
def test_state_for_pilot_voltage(volts, state):
    assert pilot_math.state_for_pilot_voltage(volts) == state


# --- framing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, checksum", [("$GS", 0x30), ("$GV", 0x35), ("$F0 1", 0x43),
                                            ("$G0", 0x53), ("$GC", 0x20), ("$GE", 0x26)])
def test_xor_checksum_matches_the_rapi_documentation(text, checksum):
    assert xor_checksum(text) == checksum


@pytest.mark.parametrize("text, checksum", [("$FD", 0xAE), ("$FE", 0xAF), ("$FR", 0xBC),
                                            ("$FS", 0xBD), ("$S0 0", 0xF7)])
def test_additive_checksum_matches_the_rapi_documentation(text, checksum):
    assert additive_checksum(text) == checksum


def test_encode():
    assert encode("GS") == b"$GS^30\r"
    assert encode("FE") == b"$FE^%02X\r" % xor_checksum("$FE")
    assert encode("SC", 16, "V") == ("$SC 16 V^%02X\r" % xor_checksum("$SC 16 V")).encode()
    assert encode("GS", seq=0x1A) == ("$GS :1A^%02X\r" % xor_checksum("$GS :1A")).encode()


def test_parse_frame_forms():
    f = parse_frame(frame("$OK 3 120 3 0200").decode().strip())
    assert (f.code, f.args, f.seq, f.checksum) == ("OK", ["3", "120", "3", "0200"], None, "xor")
    f = parse_frame("$FD*AE")
    assert (f.code, f.args, f.checksum) == ("FD", [], "sum")
    f = parse_frame("$OK 5.0.1 3.0.1")                      # v1 replies carry no checksum
    assert (f.code, f.args, f.checksum) == ("OK", ["5.0.1", "3.0.1"], None)
    f = parse_frame(frame("$OK fe 0 2 0 :2A").decode())      # sequence id
    assert (f.code, f.args, f.seq) == ("OK", ["fe", "0", "2", "0"], 0x2A)
    f = parse_frame("\x00\xffnoise" + frame("$ST 3").decode())
    assert (f.code, f.args) == ("ST", ["3"])


@pytest.mark.parametrize("line", ["$GS^31", "$FD*AF", "$OK 1^", "$OK^ZZ", "no frame", "$",
                                  "$OK 1 :zz^%02X" % xor_checksum("$OK 1 :zz")])
def test_parse_frame_rejects_bad_frames(line):
    with pytest.raises(ValueError):
        parse_frame(line)


@pytest.mark.parametrize("evse, pilot, state", [
    (1, None, "A"), (2, None, "B"), (3, 3, "C"), (4, 4, "D"),
    (5, 2, "F"), (6, 3, "F"), (7, 0, "F"), (8, 1, "F"), (9, None, "F"), (11, None, "F"),
    (0xFE, 1, "A"), (0xFE, 2, "B"), (0xFF, 2, "B"), (0xFE, 3, "C"), (0, 1, "A"),
    (0xFE, None, None), (0xFF, 0, None), (0, None, None)])
def test_rapi_state_to_iec_state(evse, pilot, state):
    assert iec_state(evse, pilot) == state


# --- the driver against scripted peers ---------------------------------------------------------
def test_replies_are_found_among_async_messages_noise_and_corrupted_frames(peer, pilot):
    def gs(f):
        return (frame("$ST 3") + frame("$WF 2") + b"line noise\r" +
                frame("$OK 1 0 1 0")[:-4] + b"^00\r" +        # corrupted: must be ignored
                frame("$AT 3 3 16 0") + b"\n" + frame("$OK 3 42 3 0200"))
    p = peer({"GV": lambda f: frame("$OK 4.8.0 2.0.1"), "GS": gs,
              "FE": lambda f: frame("$OK"), "SC": lambda f: frame("$OK " + f.args[0])})
    driver = pilot(p.port)
    driver.set_offered_current(16)
    assert driver.ev_state() == "C"
    assert driver.async_state == (3, 3)          # from $AT: evse and pilot state
    assert driver.async_messages == 3            # $ST, $WF, $AT
    assert driver.bad_frames == 1
    assert driver.offered_amps == 16
    assert [parse_frame(l).code for l in p.lines] == ["GV", "SC", "FE", "GS"]
    assert driver.firmware_version == "4.8.0"


def test_a_loop_that_only_echoes_is_no_answer():
    # The echo of our own command ($FF E 1 echo mode) must never pass for a reply.
    loop = serial.serial_for_url("loop://", timeout=0.01)
    driver = RapiPilot("loop://", timeout=0.2, serial=loop)
    try:
        started = time.monotonic()
        with pytest.raises(DeviceError, match="does not answer on loop:// at 115200 baud"):
            driver.ev_state()
        assert 0.2 <= time.monotonic() - started < 1.0
    finally:
        driver.close()
        loop.close()
    assert loop.timeout == 0.01


def test_nk_names_the_command_and_the_offer_is_retried(peer, pilot):
    refuse = {"FE": True}
    p = peer({"GV": lambda f: frame("$OK 4.8.0 2.0.1"),
              "SC": lambda f: frame("$OK " + f.args[0]),
              "FE": lambda f: frame("$NK") if refuse["FE"] else frame("$OK"),
              "GS": lambda f: frame("$OK fe 0 2 0")})
    driver = pilot(p.port)
    with pytest.raises(RapiRefused, match=r"pilot board refused \$FE \(answered \$NK\)") as e:
        driver.set_offered_current(20)
    assert isinstance(e.value, DeviceError) and e.value.command == "$FE"
    refuse["FE"] = False
    assert driver.ev_state() == "B"      # and the offer went through this time
    codes = [" ".join([parse_frame(l).code] + parse_frame(l).args) for l in p.lines]
    assert codes == ["GV", "SC 20 V", "FE", "GS", "SC 20 V", "FE", "GS"]


def test_stale_reply_with_another_sequence_id_is_ignored(peer, pilot):
    def seq(f):
        return " :%02X" % f.seq if f.seq is not None else ""

    def gs(f):
        # a late reply to some earlier command first, then the reply to this one
        return frame("$OK 1 0 1 0 :7F") + frame("$OK fe 0 2 0" + seq(f))
    p = peer({"GV": lambda f: frame("$OK 8.2.2 5.0.1" + seq(f)),
              "FS": lambda f: frame("$OK" + seq(f)), "GS": gs})
    driver = pilot(p.port)
    assert driver.ev_state() == "B"
    assert driver.version() == ("8.2.2", "5.0.1")
    sent = [parse_frame(l) for l in p.lines]
    assert sent[0].seq is None and all(f.seq for f in sent[1:])


# --- the driver against the emulated board ------------------------------------------------------
def test_plug_offer_charge_stop(world, board, pilot):
    b = board(enabled=False)
    driver = pilot(b.port)
    assert driver.ev_state() == "A"
    world.plug(1)
    assert driver.ev_state() == "B"
    driver.set_offered_current(16)
    assert offered(world) == 16.0
    assert ev(world) == "C"                       # the simulated EV follows the offer
    assert driver.ev_state() == "C"
    assert driver.duty_cycle == 26.67
    assert b.wait_async(1)                        # $ST 3: charging
    driver.ev_state()
    assert driver.async_state == (3, None)
    driver.set_offered_current(0)
    assert offered(world) == 0.0
    assert driver.ev_state() == "B"
    assert not b.enabled
    assert "SC 16 V" in b.commands and b.commands[-2:] == ["FS", "GS"]
    world.unplug(1)
    assert driver.ev_state() == "A"


def test_board_faults_and_forced_states(world, board, pilot):
    b = board()
    driver = pilot(b.port)
    world.plug(1)
    driver.set_offered_current(32)
    world.ev(1, "D")
    assert driver.ev_state() == "D"
    world.ev(1, "E")
    assert driver.ev_state() == "F"               # RAPI reports a pilot fault, not E
    world.ev(1, "F")
    assert driver.ev_state() == "F"


def test_offline_board_is_a_device_error_within_the_timeout_and_recovers(world, board, pilot):
    b = board()
    driver = pilot(b.port)
    world.plug(1)
    assert driver.ev_state() == "B"
    world.fault("pilot", "offline")
    started = time.monotonic()
    with pytest.raises(DeviceError) as e:
        driver.ev_state()
    elapsed = time.monotonic() - started
    assert TIMEOUT <= elapsed < TIMEOUT + 0.5
    assert str(e.value) == ("pilot board does not answer on %s at 115200 baud: check the "
                            "UART wiring" % b.port)
    with pytest.raises(DeviceError, match="does not answer"):
        driver.set_offered_current(16)
    assert offered(world) == 0.0
    world.fault("pilot", "none")
    assert driver.ev_state() == "C"               # the wanted offer is applied again
    assert offered(world) == 16.0 and ev(world) == "C"


def test_board_that_boots_offering_is_stopped_at_the_first_poll(world, board, pilot):
    world.plug(1)
    b = board(enabled=True, capacity=32)
    assert b.wait_ready() and offered(world) == 32.0
    driver = pilot(b.port)
    assert driver.ev_state() == "B"               # not C: it was put to sleep, then re-read
    assert offered(world) == 0.0 and not b.enabled


def test_board_restart_is_corrected(world, board, pilot):
    b = board(enabled=False, capacity=32)
    driver = pilot(b.port)
    world.plug(1)
    driver.set_offered_current(16)
    assert offered(world) == 16.0
    assert b.wait_async(1) and b.async_sent == ["$ST 3"]
    sent = len(b.async_sent)
    b.reboot()                                    # volatile 16 A lost: it boots at 32 A
    assert b.wait_ready() and b.wait_async(sent + 1)
    assert b.async_sent[sent] == "$AB 00 8.2.2" and offered(world) == 32.0
    assert driver.ev_state() == "C"
    assert offered(world) == 16.0 and b.capacity == 16
    driver.set_offered_current(0)
    b.reboot()
    assert b.wait_ready()
    assert driver.ev_state() == "B"
    assert offered(world) == 0.0 and not b.enabled


def test_capacity_clamped_by_the_board(world, board, pilot):
    b = board(max_current=16)
    driver = pilot(b.port)
    world.plug(1)
    driver.set_offered_current(32)                # less than asked: accepted
    assert driver.offered_amps == 16 and offered(world) == 16.0


def test_board_that_would_offer_more_than_asked_is_put_to_sleep(world, board, pilot):
    b = board(min_current=10)
    driver = pilot(b.port)
    world.plug(1)
    with pytest.raises(DeviceError, match="cannot offer 6 A: it offers at least 10 A"):
        driver.set_offered_current(6)
    assert offered(world) == 0.0 and not b.enabled


def test_offer_rounding_and_limits(world, board, pilot):
    b = board()
    driver = pilot(b.port)
    world.plug(1)
    driver.set_offered_current(10.7)
    assert b.commands[-2:] == ["SC 10 V", "FE"] and offered(world) == 10.0
    driver.set_offered_current(4.5)               # below 6 A: no PWM offer at all
    assert b.commands[-1] == "FS" and offered(world) == 0.0
    for bad in (-1, 80.5, float("nan"), "16"):
        with pytest.raises(ValueError):
            driver.set_offered_current(bad)


def test_at_notifications_and_sequence_ids(world, board, pilot):
    b = board(enabled=False, async_format="AT")
    driver = pilot(b.port)
    assert driver.ev_state() == "A"
    world.plug(1)
    assert b.wait_async(1)
    assert driver.ev_state() == "B"
    assert driver.async_state == (0xFE, 2)        # asleep, EV connected
    assert all(s is not None for s in b.seqs[1:])  # RAPI 5: every command after $GV
    assert len(set(b.seqs[1:])) == len(b.seqs) - 1


def test_no_sequence_ids_for_an_old_board(world, board, pilot):
    b = board(protocol="2.0.0")
    driver = pilot(b.port)
    driver.ev_state()
    assert b.seqs and all(s is None for s in b.seqs)


def test_old_firmware_without_pilot_state_uses_g0(world, board, pilot):
    b = board(enabled=False, report_pilot=False)
    driver = pilot(b.port)
    assert driver.ev_state() == "A"
    world.plug(1)
    assert driver.ev_state() == "B"
    assert b.commands[-2:] == ["GS", "G0"]


def test_board_checks_checksums_and_echoes_sequence_ids(world, board):
    b = board()
    with serial.Serial(b.port, 115200, timeout=2) as port:
        for sent, expected in ((b"$GS^31\r", "NK"), (b"$GS^30\r", "OK"), (b"$GS*BE\r", "OK"),
                               (b"$GS*BF\r", "NK"), (b"$XX^%02X\r" % xor_checksum("$XX"), "NK")):
            port.write(sent)
            f = parse_frame(port.read_until(b"\r").decode())
            assert f.code == expected, sent
        port.write(encode("GV", seq=0x42))
        f = parse_frame(port.read_until(b"\r").decode())
        assert (f.code, f.args, f.seq) == ("OK", ["8.2.2", "5.0.1"], 0x42)
    world.fault("pilot", "offline")
    with serial.Serial(b.port, 115200, timeout=0.2) as port:
        port.write(b"$GS^30\r")
        assert port.read_until(b"\r") == b""


def test_missing_port_and_vanishing_board(world, board, pilot, tmp_path):
    missing = pilot(str(tmp_path / "ttyNOPE"))
    with pytest.raises(DeviceError, match="cannot be opened"):
        missing.ev_state()
    b = board()
    driver = pilot(b.port)
    assert driver.ev_state() == "A"
    b.stop()                                      # the board's side of the line is gone
    with pytest.raises(DeviceError, match="pilot board"):
        driver.ev_state()
