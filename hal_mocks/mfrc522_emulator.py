"""An emulated MFRC522 behind a fake `spidev`, driven by the bench's SimWorld.

`python -m firmware --hal emulated` runs the real driver (drivers.rfid_mfrc522)
against this chip model, so the bench control socket works as with --hal mock:
the cards come from the same simulated world.

    world = SimWorld(...)
    reader = Mfrc522Reader(spi=FakeSpiDev(world))       # or emulated_reader(world)

The chip model (Mfrc522Emulator), from the NXP data sheet:
- SPI framing: address byte (addr << 1) & 0x7E, bit 7 = read. A read frame is
  address, address, ..., 0x00 and returns X, value, value, ...; a write frame is
  address, data, data, ... all to that one register (the FIFO, typically).
- Register file with the data sheet's reset values; FIFODataReg/FIFOLevelReg
  (64 bytes, FlushBuffer, BufferOvfl), ComIrqReg/DivIrqReg with Set1/Set2
  semantics, ErrorReg, ControlReg RxLastBits, CollReg, CRCResultReg, VersionReg.
- Commands: Idle, CalcCRC (preset from ModeReg; every byte written to the FIFO
  while it runs is added), Transceive (sends the FIFO when BitFramingReg StartSend
  is set, TxLastBits honoured), SoftReset (registers to reset values, antenna
  off; CommandReg reads PowerDown for `reset_busy_reads` reads). Others: treated
  as Idle, and recorded in `unsupported_commands`.
- After a Transceive: TxIRq, then RxIRq with the answer in the FIFO, or TimerIRq
  when no card answers - but only if the timer is set up (TModeReg TAuto and a
  TReload); after a reset nothing ever comes, as on the real chip. The answer
  becomes visible after `reply_delay_reads` reads of ComIrqReg.
- No field (TxControlReg Tx1RFEn/Tx2RFEn off, RcvOff, soft power-down): no card
  answers, and cards lose power (back to IDLE).
- Not modelled: TxCRCEn/RxCRCEn (the driver computes CRC_A itself), RxAlign,
  bit-oriented anticollision (NVB other than 0x20/0x70), MIFARE authentication,
  water-level alerts, the IRQ pin.

The cards (ISO/IEC 14443-3 type A state machine): REQA answered in IDLE, WUPA in
IDLE or HALT, with ATQA 0x0004/0x0044/0x0084 (4/7/10-byte UID); ANTICOLL and
SELECT on cascade levels 1-3 with cascade tag 0x88 and BCC; SAK 0x04 (UID not
complete) on the levels before the last, `final_sak` (0x08, MIFARE Classic 1K)
on the last; HLTA (with a correct CRC_A) puts a card in HALT; any unexpected
frame sends it back to IDLE (HALT if it was woken from HALT). Two cards with
different UIDs answering ANTICOLL collide (CollErr).

The world: at each REQA/WUPA frame with the field empty, the emulator takes one
tap from SimRfid(world).poll(); the card is then in the field for `tap_frames`
REQA/WUPA frames (one per driver poll, so 3 frames = 0.6 s at the firmware's
0.2 s poll), and the field stays empty for at least `gap_frames` frames before
the next tap. A tapped UID of 8, 14 or 20 hex characters is a 4-, 7- or 10-byte
UID; a shorter hex UID is padded on the left with zeros to 8 characters, a
longer one (9-13 or 15-19 characters) keeps its last 8 characters (so the idTag
the firmware reports differs: the bench tester asked for an impossible UID); a
UID with non-hex characters cannot exist on a card and is ignored (counted in
`ignored_taps`). world.fault("rfid", "offline") = the chip is absent: every
read returns `absent_value` (0x00: MISO pulled low, so VersionReg 0x00), writes
are lost, and when the fault clears the chip comes back from a power-on reset.

Tests use present()/remove()/inject_error()/power_cycle() directly, and
fake_spidev_installed() to put a fake `spidev` module into sys.modules.
"""

import collections
import contextlib
import sys
import threading
import types

from drivers.hal import DeviceError
from hal_mocks.sim import SimRfid

# Registers (data sheet section 9), independent of the driver's table on purpose:
# a wrong address in the driver must not be mirrored here.
COMMAND, COM_IEN, DIV_IEN, COM_IRQ, DIV_IRQ, ERROR, STATUS1, STATUS2 = range(1, 9)
FIFO_DATA, FIFO_LEVEL, WATER_LEVEL, CONTROL, BIT_FRAMING, COLL = range(9, 15)
MODE, TX_MODE, RX_MODE, TX_CONTROL, TX_ASK = range(0x11, 0x16)
CRC_RESULT_H, CRC_RESULT_L = 0x21, 0x22
T_MODE, T_PRESCALER, T_RELOAD_H, T_RELOAD_L = 0x2A, 0x2B, 0x2C, 0x2D
VERSION = 0x37

RESET_VALUES = {
    COMMAND: 0x20, COM_IEN: 0x80, COM_IRQ: 0x14, STATUS1: 0x21, WATER_LEVEL: 0x08,
    CONTROL: 0x10, COLL: 0x80, MODE: 0x3F, TX_CONTROL: 0x80, 0x16: 0x10, 0x17: 0x84,
    0x18: 0x84, 0x19: 0x4D, 0x1C: 0x62, 0x1F: 0xEB, CRC_RESULT_H: 0xFF,
    CRC_RESULT_L: 0xFF, 0x24: 0x26, 0x26: 0x48, 0x27: 0x88, 0x28: 0x20, 0x29: 0x20,
}
READ_ONLY = {COM_IRQ, DIV_IRQ, ERROR, STATUS1, STATUS2, FIFO_DATA, FIFO_LEVEL, COLL,
             CRC_RESULT_H, CRC_RESULT_L, 0x2E, 0x2F, VERSION}

CMD_IDLE, CMD_CALC_CRC, CMD_TRANSCEIVE, CMD_SOFT_RESET = 0x00, 0x03, 0x0C, 0x0F
POWER_DOWN, RCV_OFF = 0x10, 0x20
TX_IRQ, RX_IRQ, IDLE_IRQ, ERR_IRQ, TIMER_IRQ = 0x40, 0x20, 0x10, 0x02, 0x01
CRC_IRQ = 0x04
BUFFER_OVFL, COLL_ERR, CRC_ERR = 0x10, 0x08, 0x04
FIFO_SIZE = 64
CRC_PRESETS = (0x0000, 0x6363, 0xA671, 0xFFFF)     # ModeReg CRCPreset[1:0]

REQA, WUPA, HLTA = 0x26, 0x52, 0x50
CT = 0x88
SEL = (0x93, 0x95, 0x97)
ATQA_BY_LENGTH = {4: b"\x04\x00", 7: b"\x44\x00", 10: b"\x84\x00"}
SAK_CASCADE = 0x04

MAX_SPI_HZ = 10000000
SPIDEV_DEFAULT_HZ = 125000000      # what a fresh /dev/spidev reports on a Pi


class SpiProtocolError(AssertionError):
    """The host broke the MFRC522's SPI framing (a driver bug)."""


def crc16(data, preset=0x6363):
    """The chip's CRC coprocessor, bit by bit (reflected 0x1021 = 0x8408); returns
    the 16-bit value (CRC_A: preset 0x6363; sent low byte first)."""
    crc = preset
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def _crc_bytes(data):
    crc = crc16(data)
    return bytes((crc & 0xFF, crc >> 8))


def _xor(data):
    x = 0
    for byte in data:
        x ^= byte
    return x


def uid_bytes_for_tap(uid):
    """The UID bytes of a card tapped on the bench, or None (see the module doc)."""
    text = uid.strip()
    try:
        int(text, 16)
    except ValueError:
        return None
    if len(text) not in (8, 14, 20):
        text = text.zfill(8) if len(text) < 8 else text[-8:]
    return bytes.fromhex(text)


class Card:
    """One ISO 14443 A card (PICC) in the field."""

    def __init__(self, uid, frames=None, final_sak=0x08, bad_bcc=False):
        if isinstance(uid, str):
            uid = bytes.fromhex(uid)
        uid = bytes(uid)
        if len(uid) not in ATQA_BY_LENGTH:
            raise ValueError("a card UID has 4, 7 or 10 bytes, not %d" % len(uid))
        self.uid = uid
        self.frames = frames          # REQA/WUPA frames left in the field; None = until removed
        self.final_sak = final_sak
        self.bad_bcc = bad_bcc
        if len(uid) == 4:
            self.levels = [uid]
        elif len(uid) == 7:
            self.levels = [bytes((CT,)) + uid[:3], uid[3:]]
        else:
            self.levels = [bytes((CT,)) + uid[:3], bytes((CT,)) + uid[3:6], uid[6:]]
        self.state = "idle"
        self.level = 0
        self.woken = False            # READY/ACTIVE reached by WUPA from HALT

    def power_off(self):
        self.state = "idle"
        self.level = 0
        self.woken = False

    def _bcc(self, level):
        value = _xor(self.levels[level])
        return value ^ 0xFF if self.bad_bcc else value

    def _unexpected(self):
        self.state = "halt" if self.woken else "idle"
        self.level = 0
        return None

    def receive(self, frame, last_bits):
        """The card's answer to a frame (bytes), or None when it stays silent."""
        if last_bits == 7 and len(frame) == 1:      # short frame
            command = frame[0]
            if (command == REQA and self.state == "idle") or \
                    (command == WUPA and self.state in ("idle", "halt")):
                self.woken = self.state == "halt"
                self.state = "ready"
                self.level = 0
                return ATQA_BY_LENGTH[len(self.uid)]
            if command in (REQA, WUPA) and self.state != "halt":
                return self._unexpected()
            return None
        if last_bits != 0:
            return None if self.state in ("idle", "halt") else self._unexpected()
        if self.state == "ready" and frame and frame[0] == SEL[self.level]:
            part = self.levels[self.level]
            if frame[1:] == b"\x20":
                return part + bytes((self._bcc(self.level),))
            if len(frame) == 9 and frame[1] == 0x70 and _crc_bytes(frame[:7]) == frame[7:] \
                    and frame[2:6] == part and frame[6] == self._bcc(self.level):
                if self.level == len(self.levels) - 1:
                    self.state = "active"
                    sak = self.final_sak
                else:
                    self.level += 1
                    sak = SAK_CASCADE
                return bytes((sak,)) + _crc_bytes(bytes((sak,)))
            return self._unexpected()
        if self.state == "active" and frame == bytes((HLTA, 0)) + _crc_bytes(bytes((HLTA, 0))):
            self.state = "halt"
            self.woken = False
            return None
        if self.state in ("idle", "halt"):
            return None
        return self._unexpected()


class Mfrc522Emulator:
    """The chip and its RF field. world: a hal_mocks.sim.SimWorld (cards are
    tapped through it, faults injected through it) or None (tests place cards
    with present()). Thread-safe: the driver's thread and the test/bench threads."""

    def __init__(self, world=None, version=0x92, tap_frames=3, gap_frames=3, absent_value=0x00,
                 reset_busy_reads=0, reply_delay_reads=0):
        self.world = world
        self._rfid = SimRfid(world) if world is not None else None
        self.version = version
        self.tap_frames = tap_frames
        self.gap_frames = gap_frames
        self.absent_value = absent_value
        self.reset_busy_reads = reset_busy_reads
        self.reply_delay_reads = reply_delay_reads
        self.unplugged = False        # a test's way to pull the chip off the bus
        self.cards = []
        self.frames = 0               # REQA/WUPA frames sent
        self.sent = collections.deque(maxlen=200)  # (frame bytes, TxLastBits) as sent
        self.unsupported_commands = []
        self.ignored_taps = []
        self.spi_transfers = 0
        self._lock = threading.RLock()
        self._gap = 0
        self._was_absent = False
        self._injected_error = 0
        self._power_on_reset()

    # --- the physical side ------------------------------------------------------------------
    def present(self, uid, frames=None, final_sak=0x08, bad_bcc=False):
        """Put a card in the field (uid: hex string or bytes, 4/7/10 bytes) for
        `frames` REQA/WUPA frames, or until remove() when None."""
        card = Card(uid, frames, final_sak, bad_bcc)
        with self._lock:
            self.cards.append(card)
        return card

    def remove(self, card=None):
        """Take a card (default: all of them) out of the field."""
        with self._lock:
            if card is None:
                del self.cards[:]
            elif card in self.cards:
                self.cards.remove(card)

    def inject_error(self, error_bits):
        """The next answer a card gives arrives with these ErrorReg bits (noise)."""
        with self._lock:
            self._injected_error = error_bits

    def power_cycle(self):
        """The chip browns out and comes back with its reset values (antenna off,
        timer not set up): the driver finds out only by what it reads."""
        with self._lock:
            self._power_on_reset()

    @property
    def absent(self):
        if self.unplugged:
            return True
        if self.world is None:
            return False
        return self.world.fault_mode("rfid") == "offline"

    @property
    def antenna_on(self):
        return bool(self.regs[TX_CONTROL] & 0x03)

    # --- the chip -------------------------------------------------------------------------
    def _power_on_reset(self):
        self.regs = bytearray(64)
        for reg, value in RESET_VALUES.items():
            self.regs[reg] = value
        self.regs[VERSION] = self.version
        self.fifo = bytearray()
        self._command = CMD_IDLE
        self._busy_reads = 0
        self._pending_irq = 0
        self._delay = 0
        self._field_off()

    def _field_off(self):
        for card in self.cards:
            card.power_off()

    def transfer(self, mosi):
        """One SPI frame (chip select low .. high): MISO bytes for the MOSI bytes."""
        mosi = [int(b) for b in mosi]
        with self._lock:
            self.spi_transfers += 1
            if not mosi:
                return []
            if self.absent:
                self._was_absent = True
                return [self.absent_value] * len(mosi)
            if self._was_absent:            # power came back: a power-on reset
                self._was_absent = False
                self._power_on_reset()
            first = mosi[0]
            if first & 0x01:
                raise SpiProtocolError("SPI address byte 0x%02X has bit 0 set" % first)
            if not first & 0x80:
                reg = first >> 1
                for value in mosi[1:]:
                    self._write(reg, value)
                return [0] * len(mosi)
            miso = [0]
            for i, address in enumerate(mosi[:-1]):
                if not address & 0x80 or address & 0x01:
                    raise SpiProtocolError("byte %d of a read frame is 0x%02X, not a read "
                                           "address" % (i, address))
                miso.append(self._read((address >> 1) & 0x3F))
            if mosi[-1] != 0:
                raise SpiProtocolError("a read frame must end with 0x00, not 0x%02X" % mosi[-1])
            return miso

    def _read(self, reg):
        if reg == FIFO_DATA:
            return self.fifo.pop(0) if self.fifo else 0
        if reg == FIFO_LEVEL:
            return len(self.fifo)
        if reg == COMMAND:
            if self._busy_reads > 0:
                self._busy_reads -= 1
                return RCV_OFF | POWER_DOWN | CMD_SOFT_RESET
            return (self.regs[COMMAND] & 0x30) | self._command
        if reg == COM_IRQ and self._pending_irq:
            if self._delay > 0:
                self._delay -= 1
            else:
                self.regs[COM_IRQ] |= self._pending_irq
                self._pending_irq = 0
        return self.regs[reg]

    def _write(self, reg, value):
        if reg == COMMAND:
            self.regs[COMMAND] = value & 0x30
            self._start_command(value & 0x0F)
        elif reg in (COM_IRQ, DIV_IRQ):
            marked = value & 0x7F
            if value & 0x80:
                self.regs[reg] |= marked
            else:
                self.regs[reg] &= ~marked & 0xFF
        elif reg == FIFO_DATA:
            if len(self.fifo) >= FIFO_SIZE:
                self.regs[ERROR] |= BUFFER_OVFL
                self.regs[COM_IRQ] |= ERR_IRQ
            else:
                self.fifo.append(value)
            if self._command == CMD_CALC_CRC:
                self._calc_crc()
        elif reg == FIFO_LEVEL:
            if value & 0x80:
                del self.fifo[:]
                self.regs[ERROR] &= ~BUFFER_OVFL & 0xFF
        elif reg == BIT_FRAMING:
            self.regs[BIT_FRAMING] = value
            if value & 0x80 and self._command == CMD_TRANSCEIVE:
                self._transceive()
        elif reg == TX_CONTROL:
            self.regs[TX_CONTROL] = value
            if not value & 0x03:
                self._field_off()
        elif reg not in READ_ONLY and reg != 0:
            self.regs[reg] = value

    def _start_command(self, command):
        self._command = command
        if command == CMD_SOFT_RESET:
            self._power_on_reset()
            self._busy_reads = self.reset_busy_reads
        elif command == CMD_CALC_CRC:
            self.regs[ERROR] = 0
            self._crc = CRC_PRESETS[self.regs[MODE] & 0x03]
            self._calc_crc()
        elif command == CMD_TRANSCEIVE:
            if self.regs[BIT_FRAMING] & 0x80:     # StartSend left set: sends at once
                self._transceive()
        elif command != CMD_IDLE:
            self.unsupported_commands.append(command)
            self._command = CMD_IDLE
            self.regs[COM_IRQ] |= IDLE_IRQ

    def _calc_crc(self):
        data = bytes(self.fifo)
        del self.fifo[:]
        self._crc = crc16(data, self._crc)
        self.regs[CRC_RESULT_H] = self._crc >> 8
        self.regs[CRC_RESULT_L] = self._crc & 0xFF
        self.regs[DIV_IRQ] |= CRC_IRQ

    def _timer_set_up(self):
        reload = (self.regs[T_RELOAD_H] << 8) | self.regs[T_RELOAD_L]
        return bool(self.regs[T_MODE] & 0x80) and reload > 0

    def _transceive(self):
        frame = bytes(self.fifo)
        del self.fifo[:]
        last_bits = self.regs[BIT_FRAMING] & 0x07
        self.sent.append((frame, last_bits))
        self.regs[ERROR] = 0
        self.regs[CONTROL] &= 0xF8
        self.regs[COLL] = 0x80
        irq = TX_IRQ
        if last_bits == 7 and len(frame) == 1 and frame[0] in (REQA, WUPA):
            self._next_frame()
        field = self.antenna_on and not self.regs[COMMAND] & (RCV_OFF | POWER_DOWN)
        answers = []
        if field:
            for card in self.cards:
                answer = card.receive(frame, last_bits)
                if answer is not None:
                    answers.append(answer)
        else:
            self._field_off()
        if not answers:
            if self._timer_set_up():
                irq |= TIMER_IRQ
        else:
            irq |= RX_IRQ
            received = answers[0]
            if any(a != received for a in answers[1:]):
                received = self._collide(answers)
            if self._injected_error:
                self.regs[ERROR] |= self._injected_error
                self._injected_error = 0
            if self.regs[ERROR]:
                irq |= ERR_IRQ
            self.fifo.extend(received)
        self._pending_irq = irq
        self._delay = self.reply_delay_reads

    def _collide(self, answers):
        """Several cards answered differently: the bits OR on the air; CollReg holds
        the first differing bit (1-based, 0 = 32; CollPosNotValid beyond 32)."""
        length = max(len(a) for a in answers)
        received = bytearray(length)
        first = None
        for bit in range(length * 8):
            values = set((a[bit // 8] >> (bit % 8)) & 1 if bit // 8 < len(a) else 0
                         for a in answers)
            if 1 in values:
                received[bit // 8] |= 1 << (bit % 8)
            if first is None and len(values) > 1:
                first = bit + 1
        self.regs[ERROR] |= COLL_ERR
        self.regs[COLL] = (first & 0x1F) if first <= 32 else 0x20
        return bytes(received)

    def _next_frame(self):
        """A REQA/WUPA: the field changes between two of them (one per driver poll)."""
        self.frames += 1
        for card in list(self.cards):
            if card.frames is None:
                continue
            if card.frames <= 0:
                self.cards.remove(card)
                self._gap = self.gap_frames
            else:
                card.frames -= 1
        if self.cards or self._rfid is None:
            return
        if self._gap > 0:
            self._gap -= 1
            return
        try:
            uid = self._rfid.poll()
        except DeviceError:
            return
        if uid is None:
            return
        uid_bytes = uid_bytes_for_tap(uid)
        if uid_bytes is None:
            self.ignored_taps.append(uid)
            return
        self.cards.append(Card(uid_bytes, frames=self.tap_frames - 1))


class FakeSpiDev:
    """A spidev.SpiDev look-alike wired to an Mfrc522Emulator. FakeSpiDev(world)
    makes its own chip (FakeSpiDev(world).chip); FakeSpiDev(chip=...) shares one.
    Only the (bus, device) pairs in `devices` exist; the others raise
    FileNotFoundError like a missing /dev/spidevB.D. SPI mode other than 0 or a
    clock above 10 MHz garbles every byte (reads 0xFF, writes lost); a fresh
    open() reports 125 MHz like the Pi's kernel driver, so a driver must set it."""

    def __init__(self, world=None, chip=None, devices=((0, 0),)):
        self.chip = chip if chip is not None else Mfrc522Emulator(world)
        self.devices = set(devices)
        self.opened = None
        self.mode = 0
        self.max_speed_hz = 0
        self.bits_per_word = 8
        self.lsbfirst = False
        self.cshigh = False
        self.transfers = 0

    def open(self, bus, device):
        if (bus, device) not in self.devices:
            raise FileNotFoundError(2, "No such file or directory")
        self.opened = (bus, device)
        self.mode = 0
        self.max_speed_hz = SPIDEV_DEFAULT_HZ

    def close(self):
        self.opened = None

    def xfer2(self, values, speed_hz=0, delay_usecs=0, bits_per_word=0):
        if self.opened is None:
            raise OSError(9, "Bad file descriptor")
        self.transfers += 1
        speed = speed_hz or self.max_speed_hz
        if self.mode != 0 or speed > MAX_SPI_HZ or self.lsbfirst or self.cshigh:
            return [0xFF] * len(values)
        return self.chip.transfer(values)


def fake_spidev_module(chip, devices=((0, 0),)):
    """A module that stands for `spidev`: SpiDev() talks to `chip`; every SpiDev
    made is in module.instances."""
    module = types.ModuleType("spidev")
    module.instances = []

    class SpiDev(FakeSpiDev):
        def __init__(self, bus=None, device=None):
            FakeSpiDev.__init__(self, chip=chip, devices=devices)
            module.instances.append(self)
            if bus is not None:
                self.open(bus, device)

    module.SpiDev = SpiDev
    return module


@contextlib.contextmanager
def fake_spidev_installed(chip, devices=((0, 0),)):
    """sys.modules["spidev"] = fake_spidev_module(chip) for the block, then put
    back whatever was there (or nothing)."""
    module = fake_spidev_module(chip, devices)
    missing = object()
    saved = sys.modules.get("spidev", missing)
    sys.modules["spidev"] = module
    try:
        yield module
    finally:
        if saved is missing:
            sys.modules.pop("spidev", None)
        else:
            sys.modules["spidev"] = saved


def emulated_reader(world, **kwargs):
    """An Mfrc522Reader on a FakeSpiDev on an emulated chip driven by `world`
    (kwargs go to Mfrc522Reader); the chip is reader.emulator."""
    from drivers.rfid_mfrc522 import Mfrc522Reader
    spi = FakeSpiDev(world)
    reader = Mfrc522Reader(spi=spi, **kwargs)
    reader.emulator = spi.chip
    return reader
