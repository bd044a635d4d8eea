"""The MFRC522 driver against the emulated chip (hal_mocks.mfrc522_emulator)."""

import logging
import os
import queue
import subprocess
import sys

import pytest

from drivers.hal import DeviceError
from drivers.rfid_mfrc522 import CARD, ERROR, NO_CARD, Mfrc522Reader, bcc, crc_a
from hal_mocks.mfrc522_emulator import (FakeSpiDev, Mfrc522Emulator, SpiProtocolError, crc16,
                                        emulated_reader, fake_spidev_installed, uid_bytes_for_tap)
from hal_mocks.sim import SimWorld

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFLINE_MESSAGE = "RFID reader does not answer (VersionReg 0x00): check SPI wiring and 3.3 V"


class FakeTime:
    """clock() and sleep() for the driver: sleeping advances the clock at once."""

    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def world():
    w = SimWorld()
    yield w
    w.close()


@pytest.fixture
def chip():
    return Mfrc522Emulator()


@pytest.fixture
def reader(chip):
    r = Mfrc522Reader(spi=FakeSpiDev(chip=chip))
    yield r
    r.close()


def polls(reader, n):
    return [reader.poll() for _ in range(n)]


# --- import and construction ------------------------------------------------------------------

def test_import_and_construction_do_not_touch_hardware_libraries():
    code = ("import sys; from drivers.rfid_mfrc522 import Mfrc522Reader; "
            "r = Mfrc522Reader(bus=0, device=1, reset_pin=25); "
            "print(sorted(m for m in ('spidev', 'RPi', 'RPi.GPIO') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_spidev_is_imported_on_the_first_poll_and_configured(chip):
    saved = sys.modules.pop("spidev", None)
    try:
        reader = Mfrc522Reader(max_speed_hz=2000000)
        assert "spidev" not in sys.modules
        with fake_spidev_installed(chip) as module:
            assert module.instances == []
            assert reader.poll() is None
            [spi] = module.instances
            assert spi.opened == (0, 0)
            assert spi.mode == 0 and spi.max_speed_hz == 2000000
            reader.close()
            assert spi.opened is None
            assert chip.antenna_on is False
        assert "spidev" not in sys.modules       # the fake is gone again
    finally:
        if saved is not None:
            sys.modules["spidev"] = saved


def test_missing_spi_device_is_a_readable_device_error(chip):
    reader = Mfrc522Reader(bus=0, device=1, spi=FakeSpiDev(chip=chip))
    with pytest.raises(DeviceError) as e:
        reader.poll()
    assert str(e.value) == ("RFID reader: no /dev/spidev0.1: enable SPI (raspi-config, "
                            "Interface Options, SPI) or fix the bus/device")


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="max_speed_hz"):
        Mfrc522Reader(max_speed_hz=20000000)
    with pytest.raises(ValueError, match="absent_polls"):
        Mfrc522Reader(absent_polls=0)


# --- CRC_A and BCC -------------------------------------------------------------------------------

@pytest.mark.parametrize("data, crc", [
    (b"\x00\x00", b"\xA0\x1E"),          # ISO/IEC 14443-3 annex B
    (b"\x12\x34", b"\x26\xCF"),          # ISO/IEC 14443-3 annex B
    (b"\x50\x00", b"\x57\xCD"),          # HLTA
    (b"\xE0\x50", b"\xBC\xA5"),          # RATS
])
def test_crc_a_known_vectors(data, crc, reader):
    assert crc_a(data) == crc
    assert crc16(data) == crc[0] | crc[1] << 8           # the emulator's own bit-wise CRC
    assert reader.chip_crc(data) == crc                  # CalcCRC on the (emulated) chip


def test_bcc():
    assert bcc(b"\x88\x04\xA1\xB2") == 0x88 ^ 0x04 ^ 0xA1 ^ 0xB2
    assert bcc(b"\x00\x00\x00\x00") == 0


# --- UIDs ---------------------------------------------------------------------------------------

def test_4_byte_uid_is_8_hex_characters(chip, reader):
    chip.present("04A1B2C3")
    uid = reader.poll()
    assert uid == "04A1B2C3"
    assert reader.chip == "MFRC522 v2.0"
    frames = [f for f, bits in chip.sent]
    assert frames[0] == b"\x26" and chip.sent[0][1] == 7      # REQA, a 7-bit short frame
    assert frames[1] == b"\x93\x20"                           # ANTICOLL cascade level 1
    select = b"\x93\x70\x04\xA1\xB2\xC3" + bytes((0x04 ^ 0xA1 ^ 0xB2 ^ 0xC3,))
    assert frames[2] == select + crc_a(select)
    assert frames[3] == b"\x50\x00\x57\xCD"                   # HLTA
    assert chip.cards[0].state == "halt"


def test_7_byte_uid_is_14_hex_characters_without_cascade_tag_or_bcc(chip, reader):
    chip.present("04112233445566")
    uid = reader.poll()
    assert uid == "04112233445566"
    assert "88" not in uid
    frames = [f for f, bits in chip.sent]
    assert frames[1] == b"\x93\x20"
    assert frames[2][:6] == b"\x93\x70\x88\x04\x11\x22"       # CT + 3 bytes at level 1
    assert frames[3] == b"\x95\x20"                           # cascade level 2
    assert frames[4][:6] == b"\x95\x70\x33\x44\x55\x66"
    assert frames[5] == b"\x50\x00\x57\xCD"


def test_10_byte_uid_is_20_hex_characters(chip, reader):
    chip.present("0102030405060708090A")
    assert reader.poll() == "0102030405060708090A"
    assert [f[0] for f, bits in chip.sent if f[1:2] == b"\x20"] == [0x93, 0x95, 0x97]


def test_a_4_byte_uid_starting_with_88_is_read_whole(chip, reader):
    chip.present("88A1B2C3")          # SAK says complete: 0x88 is then part of the UID
    assert reader.poll() == "88A1B2C3"


def test_bad_bcc_is_no_card(chip, reader):
    chip.present("04A1B2C3", bad_bcc=True)
    assert polls(reader, 6) == [None] * 6
    assert chip.cards[0].state in ("idle", "ready")           # never selected


def test_collision_is_no_card(chip, reader):
    a = chip.present("04A1B2C3")
    chip.present("04A1B2C2")
    assert reader.poll() is None
    assert chip.regs[0x0E] & 0x1F == 25                       # CollReg: bit 25 differs
    assert polls(reader, 3) == [None] * 3
    chip.remove(a)
    assert [u for u in polls(reader, 3) if u] == ["04A1B2C2"]


@pytest.mark.parametrize("error_bits", [0x02, 0x04, 0x01])   # parity, CRC, protocol
def test_communication_error_is_no_card_this_time(chip, reader, error_bits):
    chip.present("04A1B2C3")
    chip.inject_error(error_bits)
    assert reader.read_uid() == (ERROR, None)
    # The card is left in READY and ignores the next REQA (ISO 14443-3), then answers.
    assert [u for u in polls(reader, 3) if u] == ["04A1B2C3"]


def test_no_card_is_a_timeout(chip, reader):
    assert reader.read_uid() == (NO_CARD, None)
    chip.present("04A1B2C3")
    assert reader.read_uid() == (CARD, "04A1B2C3")


# --- debounce -----------------------------------------------------------------------------------

def test_card_held_in_the_field_is_reported_once(chip, reader):
    card = chip.present("04A1B2C3")
    assert polls(reader, 20) == ["04A1B2C3"] + [None] * 19
    chip.remove(card)
    assert polls(reader, 2) == [None, None]                  # away for absent_polls polls
    chip.present("04A1B2C3")
    assert polls(reader, 5) == ["04A1B2C3"] + [None] * 4     # a new presentation


def test_a_card_away_for_less_than_absent_polls_is_the_same_presentation(chip, reader):
    card = chip.present("04A1B2C3")
    assert reader.poll() == "04A1B2C3"
    chip.remove(card)
    assert reader.poll() is None                              # one poll away: a flicker
    chip.present("04A1B2C3")
    assert polls(reader, 5) == [None] * 5


def test_a_halted_card_still_counts_as_present(chip, reader):
    chip.present("04A1B2C3")
    reader.poll()
    assert chip.cards[0].state == "halt"
    reader.poll()
    assert chip.sent[-4][0] == b"\x52"                        # WUPA wakes the halted card


def test_another_card_is_reported_at_once(chip, reader):
    a = chip.present("04A1B2C3")
    assert reader.poll() == "04A1B2C3"
    chip.remove(a)
    chip.present("04112233445566")
    assert polls(reader, 3) == ["04112233445566", None, None]


def test_chip_reset_does_not_report_a_resting_card_again(chip, reader):
    chip.present("04A1B2C3")
    assert reader.poll() == "04A1B2C3"
    reader.open()                      # soft reset: the antenna goes off, the card resets
    assert polls(reader, 5) == [None] * 5


# --- taps from the simulated world ---------------------------------------------------------------

def test_one_tap_is_one_presentation(world):
    reader = emulated_reader(world)
    try:
        world.tap("04a1b2c3")
        assert [u for u in polls(reader, 20) if u] == ["04A1B2C3"]
        assert world.snapshot()["queued_taps"] == 0
        world.tap("04A1B2C3")
        world.tap("04A1B2C3")          # tapped twice: two presentations
        world.tap("04112233445566")
        assert [u for u in polls(reader, 40) if u] == ["04A1B2C3", "04A1B2C3", "04112233445566"]
    finally:
        reader.close()


@pytest.mark.parametrize("tapped, expected", [
    ("04A1B2C3", "04A1B2C3"), ("AA", "000000AA"), ("0102030405", "02030405"),
    ("0102030405060708090A", "0102030405060708090A"),
])
def test_tapped_uid_lengths(world, tapped, expected):
    reader = emulated_reader(world)
    try:
        world.tap(tapped)
        assert [u for u in polls(reader, 6) if u] == [expected]
    finally:
        reader.close()


def test_non_hex_tap_is_ignored(world):
    assert uid_bytes_for_tap("TESTCARD") is None
    reader = emulated_reader(world)
    try:
        world.tap("TESTCARD")
        assert polls(reader, 4) == [None] * 4
        assert reader.emulator.ignored_taps == ["TESTCARD"]
    finally:
        reader.close()


# --- chip absent, VersionReg ---------------------------------------------------------------------

def test_chip_absent_is_a_device_error_and_recovers(world):
    reader = emulated_reader(world)
    try:
        assert reader.poll() is None
        world.fault("rfid", "offline")
        for _ in range(2):             # while working, then at re-initialisation
            with pytest.raises(DeviceError) as e:
                reader.poll()
            assert str(e.value) == OFFLINE_MESSAGE
        world.fault("rfid", "none")    # the chip is back, from a power-on reset
        assert reader.poll() is None
        assert reader.emulator.antenna_on
        world.tap("04A1B2C3")
        assert [u for u in polls(reader, 3) if u] == ["04A1B2C3"]
    finally:
        reader.close()


def test_chip_absent_with_miso_floating_high():
    chip = Mfrc522Emulator(absent_value=0xFF)
    chip.unplugged = True
    reader = Mfrc522Reader(spi=FakeSpiDev(chip=chip))
    with pytest.raises(DeviceError, match=r"VersionReg 0xFF\): check SPI wiring and 3.3 V"):
        reader.poll()
    # soft reset, CommandReg, VersionReg: no waiting for a PowerDown bit that reads 1
    assert reader.last_poll_transfers == 3


@pytest.mark.parametrize("version, name", [
    (0x91, "MFRC522 v1.0"), (0x92, "MFRC522 v2.0"), (0x88, "FM17522 (MFRC522 clone)"),
])
def test_known_versions(version, name):
    reader = Mfrc522Reader(spi=FakeSpiDev(chip=Mfrc522Emulator(version=version)))
    reader.poll()
    assert (reader.version, reader.chip) == (version, name)


@pytest.mark.parametrize("version", [0x00, 0xFF])
def test_versions_of_no_chip(version):
    reader = Mfrc522Reader(spi=FakeSpiDev(chip=Mfrc522Emulator(version=version)))
    with pytest.raises(DeviceError) as e:
        reader.poll()
    assert str(e.value) == ("RFID reader does not answer (VersionReg 0x%02X): check SPI wiring "
                            "and 3.3 V" % version)


def test_unknown_version_is_tried_with_a_warning(caplog):
    chip = Mfrc522Emulator(version=0x12)
    reader = Mfrc522Reader(spi=FakeSpiDev(chip=chip))
    chip.present("04A1B2C3")
    with caplog.at_level(logging.WARNING, logger="drivers.rfid_mfrc522"):
        assert reader.poll() == "04A1B2C3"
    assert reader.chip == "unknown chip (VersionReg 0x12)"
    assert "unknown VersionReg 0x12" in caplog.text


def test_spi_clock_left_at_the_kernel_default_reads_ff():
    class StuckClockSpi(FakeSpiDev):  # as if the driver never set max_speed_hz
        def __setattr__(self, name, value):
            if name == "max_speed_hz" and getattr(self, "opened", None) \
                    and value != 125000000:    # only open() sets it
                return
            FakeSpiDev.__setattr__(self, name, value)

    reader = Mfrc522Reader(spi=StuckClockSpi(chip=Mfrc522Emulator()))
    with pytest.raises(DeviceError, match="VersionReg 0xFF"):
        reader.poll()


def test_register_writes_that_do_not_land_are_reported(chip):
    class DeafSpi(FakeSpiDev):
        def xfer2(self, values, *args):
            if values[0] == 0x2B << 1:    # a write to TPrescalerReg is lost
                return [0] * len(values)
            return FakeSpiDev.xfer2(self, values, *args)

    reader = Mfrc522Reader(spi=DeafSpi(chip=chip))
    with pytest.raises(DeviceError, match="ignores register writes .*check the MOSI wire"):
        reader.poll()


def test_overheated_chip_is_a_device_error(chip, reader):
    reader.poll()
    chip.present("04A1B2C3")
    chip.inject_error(0x40)
    with pytest.raises(DeviceError, match="overheated"):
        reader.poll()
    assert [u for u in polls(reader, 3) if u] == ["04A1B2C3"]


def test_spi_os_error_is_a_device_error(chip, reader):
    reader.poll()
    reader._spi.close()                # as if the device file went away
    with pytest.raises(DeviceError, match="SPI transfer on /dev/spidev0.0 failed"):
        reader.poll()
    chip.present("04A1B2C3")
    assert reader.poll() == "04A1B2C3"        # reopened and re-initialised


# --- waiting on the chip -----------------------------------------------------------------------

def test_driver_waits_for_reset_and_for_the_answer():
    t = FakeTime()
    chip = Mfrc522Emulator(reset_busy_reads=3, reply_delay_reads=2)
    reader = Mfrc522Reader(spi=FakeSpiDev(chip=chip), clock=t.clock, sleep=t.sleep)
    chip.present("04A1B2C3")
    assert reader.poll() == "04A1B2C3"
    assert t.slept.count(0.001) == 3            # PowerDown read as 1 three times
    assert len([s for s in t.slept if s == 0.0005]) == 2 * 4   # 2 extra status reads x 4 frames


def test_chip_that_lost_its_setup_is_reinitialised():
    t = FakeTime()
    chip = Mfrc522Emulator()
    reader = Mfrc522Reader(spi=FakeSpiDev(chip=chip), clock=t.clock, sleep=t.sleep)
    assert reader.poll() is None
    chip.power_cycle()                 # brown-out: timer not set up, antenna off
    chip.present("04A1B2C3")
    with pytest.raises(DeviceError, match="stopped working .*re-initialising"):
        reader.poll()
    assert reader.poll() == "04A1B2C3"


def test_reset_pin_is_pulsed_and_only_it_released(chip):
    class FakeGpio:
        BCM, BOARD, OUT, LOW, HIGH = 11, 10, 0, 0, 1

        def __init__(self, mode=None):
            self.mode = mode
            self.calls = []

        def getmode(self):
            return self.mode

        def setmode(self, mode):
            self.mode = mode

        def setup(self, pin, direction, initial):
            self.calls.append(("setup", pin, direction, initial))

        def output(self, pin, value):
            self.calls.append(("output", pin, value))

        def cleanup(self, *args):
            self.calls.append(("cleanup",) + args)

    t = FakeTime()
    gpio = FakeGpio()
    reader = Mfrc522Reader(reset_pin=25, spi=FakeSpiDev(chip=chip), gpio=gpio, clock=t.clock,
                           sleep=t.sleep)
    reader.poll()
    assert gpio.mode == gpio.BCM
    assert gpio.calls == [("setup", 25, 0, 1), ("output", 25, 0), ("output", 25, 1)]
    reader.close()
    assert gpio.calls[-1] == ("cleanup", [25])

    board = FakeGpio(mode=FakeGpio.BOARD)
    reader = Mfrc522Reader(reset_pin=25, spi=FakeSpiDev(chip=chip), gpio=board, sleep=t.sleep)
    with pytest.raises(DeviceError, match="not BCM"):
        reader.poll()
    reader.close()
    assert board.calls == []


def test_reset_pin_through_the_gpio_bus(chip):
    class FakeBus:                     # the GpioBus interface the driver uses
        def __init__(self):
            self.owners = {17: "contactor_coil_pin"}
            self.calls = []

        def claim(self, settings):
            for name, pin in settings.items():
                if pin in self.owners:
                    raise ValueError("%s: GPIO%d is already used by %s"
                                     % (name, pin, self.owners[pin]))
                self.owners[pin] = name

        def setup_output(self, pin, level):
            self.calls.append(("setup_output", pin, level))

        def write(self, pin, level):
            self.calls.append(("write", pin, level))

        def release(self, pins):
            self.calls.append(("release", pins))

    t = FakeTime()
    bus = FakeBus()
    with pytest.raises(ValueError, match="GPIO17 is already used by contactor_coil_pin"):
        Mfrc522Reader(reset_pin=17, gpio_bus=bus)
    reader = Mfrc522Reader(reset_pin=25, spi=FakeSpiDev(chip=chip), gpio_bus=bus, clock=t.clock,
                           sleep=t.sleep)
    assert bus.owners[25] == "rfid_reset_pin" and bus.calls == []   # nothing driven yet
    chip.present("04A1B2C3")
    assert reader.poll() == "04A1B2C3"
    assert bus.calls == [("setup_output", 25, True), ("write", 25, False), ("write", 25, True)]
    reader.close()
    assert bus.calls[-1] == ("release", [25])


# --- cost ---------------------------------------------------------------------------------------

def test_empty_poll_is_cheap(chip, reader, capsys):
    reader.poll()                      # the first poll also initialises the chip
    empty = [reader.poll() or reader.last_poll_transfers for _ in range(5)]
    chip.present("04112233445566")
    reader.poll()
    with_card = reader.last_poll_transfers
    with capsys.disabled():
        print("\nMFRC522: SPI transfers per empty poll: %d; per poll reading a 7-byte UID: %d"
              % (empty[0], with_card))
    assert empty == [8] * 5
    assert with_card == 8 * 6 + 5      # 6 exchanges (+1 FIFO read each when answered)


# --- the emulator itself --------------------------------------------------------------------------

def test_emulator_rejects_broken_spi_frames(chip):
    with pytest.raises(SpiProtocolError, match="bit 0"):
        chip.transfer([0x03, 0x00])
    with pytest.raises(SpiProtocolError, match="end with 0x00"):
        chip.transfer([0x80 | (0x37 << 1), 0x80 | (0x37 << 1)])
    assert chip.transfer([0x80 | (0x37 << 1), 0]) == [0, 0x92]


def test_emulator_crc_preset_and_streaming(chip):
    spi = FakeSpiDev(chip=chip)
    spi.open(0, 0)
    spi.max_speed_hz = 1000000
    spi.xfer2([0x11 << 1, 0x3C])              # ModeReg CRCPreset 00 = 0x0000
    spi.xfer2([0x09 << 1, 0x12])              # FIFO
    spi.xfer2([0x01 << 1, 0x03])              # CalcCRC
    spi.xfer2([0x09 << 1, 0x34])              # a later byte is added to the running CRC
    high, low = spi.xfer2([0x80 | 0x21 << 1, 0x80 | 0x22 << 1, 0])[1:]
    assert high << 8 | low == crc16(b"\x12\x34", 0x0000)
    assert spi.xfer2([0x80 | 0x05 << 1, 0])[1] & 0x04     # CRCIRq


def test_emulator_fifo_overflow_and_unknown_command(chip):
    spi = FakeSpiDev(chip=chip)
    spi.open(0, 0)
    spi.max_speed_hz = 1000000
    spi.xfer2([0x09 << 1] + [0xAA] * 65)
    level, error = spi.xfer2([0x80 | 0x0A << 1, 0x80 | 0x06 << 1, 0])[1:]
    assert (level, error & 0x10) == (64, 0x10)
    spi.xfer2([0x0A << 1, 0x80])              # FlushBuffer clears BufferOvfl
    assert spi.xfer2([0x80 | 0x0A << 1, 0x80 | 0x06 << 1, 0])[1:] == [0, 0]
    spi.xfer2([0x01 << 1, 0x0E])              # MFAuthent: not modelled
    assert chip.unsupported_commands == [0x0E]


def test_fake_spidev_behaves_like_a_device_file(chip):
    spi = FakeSpiDev(chip=chip)
    with pytest.raises(OSError):
        spi.xfer2([0x80 | 0x37 << 1, 0])
    spi.open(0, 0)
    assert spi.max_speed_hz == 125000000      # too fast for the chip until set
    assert spi.xfer2([0x80 | 0x37 << 1, 0]) == [0xFF, 0xFF]
    spi.max_speed_hz = 4000000
    assert spi.xfer2([0x80 | 0x37 << 1, 0]) == [0, 0x92]
    spi.mode = 3
    assert spi.xfer2([0x80 | 0x37 << 1, 0]) == [0xFF, 0xFF]


# --- with the firmware's device worker (the --hal emulated path) ---------------------------------

def test_rfid_worker_on_the_emulated_reader(world):
    from firmware.devices import RfidWorker
    events = queue.Queue()
    reader = emulated_reader(world)
    worker = RfidWorker(events, reader, interval=0.005)
    worker.start()
    try:
        world.tap("04112233445566")
        assert events.get(timeout=5) == ("card", None, "04112233445566")
        world.fault("rfid", "offline")
        kind, cid, (code, info) = events.get(timeout=5)
        assert (kind, cid, code) == ("fault", 0, "ReaderFailure")
        assert info == OFFLINE_MESSAGE[:50]
        world.fault("rfid", "none")
        assert events.get(timeout=5) == ("fault_cleared", 0, "ReaderFailure")
        world.tap("04A1B2C3")
        assert events.get(timeout=5) == ("card", None, "04A1B2C3")
    finally:
        worker.stop()
        worker.join(5)
        reader.close()
    assert events.empty()
