"""MFRC522 RFID reader (ISO/IEC 14443 A, 13.56 MHz) on the Raspberry Pi's SPI bus.

Why our own small reader on `spidev` rather than the `mfrc522` package from
PyPI: we only need the card's UID (REQA/WUPA, anticollision, SELECT, HLTA),
about 150 lines, and that package gets the charger-relevant parts wrong:
SimpleMFRC522.read_id() folds the BCC check byte into the number and cannot
read 7-byte UIDs; Close_MFRC522() calls GPIO.cleanup() with no pin list, which
would release every pin of the process, the contactor coil included; its
default reset pin (BCM numbering) is the UART RX pin; and installing it pulls
in RPi.GPIO over rpi-lgpio (the RPi.GPIO API that works on every Pi, the Pi 5
included). This driver uses spidev's open/xfer2 only, touches only its own
reset pin, and reports UIDs without cascade tag or BCC.

The idTag is the UID in upper-case hex: 8 characters for a 4-byte UID, 14 for
a 7-byte one (20 for the rare 10-byte one). One tap is one presentation: a card
left on the reader is reported once, and again only after it has been away
for `absent_polls` consecutive polls (while a card is remembered the reader
sends WUPA, which also wakes a card it has halted, so a card resting on the
reader is seen as present, not as gone).

Communication errors on a poll (timeout, parity/CRC/protocol error, bad BCC,
two cards colliding) mean "no card this time". Every status read carries the
VersionReg too, at no extra transfer: a chip that stops answering (0x00 or
0xFF) raises DeviceError, and the next poll re-initialises it.

Register facts below are from the NXP MFRC522 data sheet (rev. 3.9); frame
formats from ISO/IEC 14443-3.
"""

import logging
import time

from drivers.hal import DeviceError, RfidReader

log = logging.getLogger("drivers.rfid_mfrc522")

# --- registers -------------------------------------------------------------------------
COMMAND_REG = 0x01
COM_IRQ_REG = 0x04
DIV_IRQ_REG = 0x05
ERROR_REG = 0x06
FIFO_DATA_REG = 0x09
FIFO_LEVEL_REG = 0x0A
CONTROL_REG = 0x0C
BIT_FRAMING_REG = 0x0D
MODE_REG = 0x11
TX_CONTROL_REG = 0x14
TX_ASK_REG = 0x15
CRC_RESULT_REG_H = 0x21
CRC_RESULT_REG_L = 0x22
T_MODE_REG = 0x2A
T_PRESCALER_REG = 0x2B
T_RELOAD_REG_H = 0x2C
T_RELOAD_REG_L = 0x2D
VERSION_REG = 0x37

# --- CommandReg commands and bits ----------------------------------------------------------
CMD_IDLE = 0x00
CMD_CALC_CRC = 0x03
CMD_TRANSCEIVE = 0x0C
CMD_SOFT_RESET = 0x0F
POWER_DOWN = 0x10

# --- ComIrqReg / DivIrqReg / ErrorReg / FIFOLevelReg / BitFramingReg bits ------------------
IRQ_RX = 0x20
IRQ_IDLE = 0x10
IRQ_ERR = 0x02
IRQ_TIMER = 0x01
IRQ_CLEAR_ALL = 0x7F          # Set1 = 0: clear every marked bit
DIV_IRQ_CRC = 0x04
ERR_TEMP = 0x40
ERR_BUFFER_OVFL = 0x10
ERR_COLL = 0x08
ERR_CRC = 0x04
ERR_PARITY = 0x02
ERR_PROTOCOL = 0x01
ERR_COMMUNICATION = ERR_BUFFER_OVFL | ERR_COLL | ERR_CRC | ERR_PARITY | ERR_PROTOCOL
FIFO_FLUSH = 0x80
START_SEND = 0x80

# --- configuration written at init ----------------------------------------------------------
# Timer: TAuto (starts at the end of each transmission, stops on the first bits
# received); TPrescaler 0x0A9 -> 13.56 MHz / (2 * 169 + 1) = 40 kHz, 25 us a tick;
# TReload 40 -> about 1 ms without an answer = no card. The frame delay time of
# REQA/ANTICOLL/SELECT is fixed by ISO 14443-3 at about 90 us, so 1 ms is ten times that.
T_MODE = 0x80
T_PRESCALER = 0xA9
T_RELOAD = 40
TX_ASK_FORCE_100 = 0x40       # TxASKReg: force 100 % ASK modulation (ISO 14443 A)
MODE_CRC_6363 = 0x3D          # ModeReg: TxWaitRF, MFIN active high, CRC preset 0x6363
TX_CONTROL_ANTENNA_ON = 0x83  # TxControlReg: reset value 0x80 + Tx1RFEn + Tx2RFEn
TX_CONTROL_ANTENNA_OFF = 0x80

# --- ISO/IEC 14443-3 type A ------------------------------------------------------------------
PICC_REQA = 0x26
PICC_WUPA = 0x52
PICC_HLTA = 0x50
CASCADE_TAG = 0x88
SELECT_CODES = (0x93, 0x95, 0x97)     # cascade levels 1, 2, 3
NVB_ANTICOLL = 0x20                   # 2 bytes sent, nothing of the UID
NVB_SELECT = 0x70                     # 7 bytes sent: the whole UID CLn + BCC
SAK_UID_NOT_COMPLETE = 0x04

VERSIONS = {
    0x91: "MFRC522 v1.0",
    0x92: "MFRC522 v2.0",
    0x88: "FM17522 (MFRC522 clone)",
}

# --- timing -----------------------------------------------------------------------------
RESET_TIMEOUT = 0.15          # s; a soft reset takes well under this (oscillator start-up)
EXCHANGE_TIMEOUT = 0.05       # s; the chip's own timer answers after ~1 ms
STATUS_POLL_INTERVAL = 0.0005 # s between two reads of ComIrqReg while waiting
HARD_RESET_PULSE = 0.001      # s low on NRSTPD (the data sheet asks for 100 ns)
HARD_RESET_SETTLE = 0.05      # s for the oscillator after NRSTPD goes high
MAX_SPI_HZ = 10000000         # the MFRC522's SPI limit

# outcomes of one read attempt
CARD, NO_CARD, ERROR = "card", "no card", "error"


def crc_a(data):
    """CRC_A of ISO/IEC 14443-3 (polynomial x^16 + x^12 + x^5 + 1, preset 0x6363,
    LSB first), as the two bytes sent after the data: low byte first."""
    crc = 0x6363
    for byte in bytes(data):
        ch = (byte ^ crc) & 0xFF
        ch = (ch ^ (ch << 4)) & 0xFF
        crc = ((crc >> 8) ^ (ch << 8) ^ (ch << 3) ^ (ch >> 4)) & 0xFFFF
    return bytes((crc & 0xFF, crc >> 8))


def bcc(uid_part):
    """The check byte of one cascade level: the XOR of its four UID bytes."""
    x = 0
    for byte in uid_part:
        x ^= byte
    return x


def _address(reg):
    return (reg << 1) & 0x7E


def _read_address(reg):
    return 0x80 | _address(reg)


class Mfrc522Reader(RfidReader):
    """drivers.hal.RfidReader on an MFRC522 at /dev/spidev<bus>.<device>.

    reset_pin: the BCM number of the GPIO wired to the chip's NRSTPD (RST) pin,
    or None when RST is tied to 3.3 V. It is driven through gpio_bus when given
    (a drivers.gpio_devices.GpioBus: claim/setup_output/write/release, so the
    pin is checked against the other devices' pins and released alone), else
    through the RPi.GPIO API directly (`gpio`, or imported on first use).
    spi: an injected spidev.SpiDev-like object (unopened); by default
    spidev.SpiDev(), imported on first use. Nothing touches the hardware before
    the first poll() (or open()); claiming the pin on gpio_bus is done at once
    (ValueError when another device has it).

    transfers counts every SPI transfer (one chip-select frame), and
    last_poll_transfers those of the last poll."""

    def __init__(self, bus=0, device=0, max_speed_hz=1000000, reset_pin=None, absent_polls=2,
                 spi=None, gpio=None, gpio_bus=None, clock=time.monotonic, sleep=time.sleep):
        if type(max_speed_hz) is not int or not 0 < max_speed_hz <= MAX_SPI_HZ:
            raise ValueError("max_speed_hz must be 1..%d (the MFRC522's SPI limit), not %r"
                             % (MAX_SPI_HZ, max_speed_hz))
        if type(absent_polls) is not int or absent_polls < 1:
            raise ValueError("absent_polls must be an integer >= 1, not %r" % (absent_polls,))
        self.bus = bus
        self.device = device
        self.max_speed_hz = max_speed_hz
        self.reset_pin = reset_pin
        self.absent_polls = absent_polls
        self.clock = clock
        self.sleep = sleep
        self._spi = spi
        self._spi_open = False
        self._gpio = gpio
        self._gpio_bus = gpio_bus
        self._gpio_ready = False
        if gpio_bus is not None and reset_pin is not None:
            gpio_bus.claim({"rfid_reset_pin": reset_pin})
        self._ready = False
        self.version = None          # VersionReg of the chip found
        self.chip = None             # its name
        self.transfers = 0
        self.last_poll_transfers = 0
        self._last_uid = None        # the card reported last, while it may still be there
        self._absent = 0             # consecutive polls without it

    @property
    def device_path(self):
        return "/dev/spidev%s.%s" % (self.bus, self.device)

    # --- RfidReader ----------------------------------------------------------------------
    def poll(self):
        start = self.transfers
        try:
            return self._poll()
        finally:
            self.last_poll_transfers = self.transfers - start

    def _poll(self):
        if not self._ready:
            self.open()
        try:
            outcome, uid = self.read_uid(wake=self._last_uid is not None)
        except DeviceError:
            self._ready = False          # re-initialise on the next poll
            raise
        if outcome == CARD:
            self._absent = 0
            if uid != self._last_uid:
                self._last_uid = uid
                log.debug("card %s presented", uid)
                return uid
        elif outcome == NO_CARD and self._last_uid is not None:
            self._absent += 1
            if self._absent >= self.absent_polls:
                self._last_uid = None
        # ERROR: we do not know whether the card is there: the debounce stays as it is
        return None

    # --- start-up ------------------------------------------------------------------------
    def open(self):
        """Open the SPI device, reset the chip, check VersionReg and configure it.
        DeviceError if any of that fails (poll() calls it when needed)."""
        self._ready = False
        self._open_spi()
        if self.reset_pin is not None:
            self._hard_reset()
        self._write(COMMAND_REG, CMD_SOFT_RESET)
        deadline = self.clock() + RESET_TIMEOUT
        while True:
            value = self._read(COMMAND_REG)[0]
            # PowerDown reads 1 until the chip is ready; reserved bits 7-6 read 0, so a
            # value with them set is no MFRC522 talking: let the VersionReg check say so.
            if not value & POWER_DOWN or value & 0xC0 or self.clock() > deadline:
                break
            self.sleep(0.001)
        version = self._read(VERSION_REG)[0]
        self._check_version(version)
        self.version = version
        self.chip = VERSIONS.get(version, "unknown chip (VersionReg 0x%02X)" % version)
        if version not in VERSIONS:
            log.warning("RFID reader: unknown VersionReg 0x%02X on %s; trying it as an MFRC522",
                        version, self.device_path)
        self._write(T_MODE_REG, T_MODE)
        self._write(T_PRESCALER_REG, T_PRESCALER)
        self._write(T_RELOAD_REG_H, T_RELOAD >> 8)
        self._write(T_RELOAD_REG_L, T_RELOAD & 0xFF)
        self._write(TX_ASK_REG, TX_ASK_FORCE_100)
        self._write(MODE_REG, MODE_CRC_6363)
        self._write(TX_CONTROL_REG, TX_CONTROL_ANTENNA_ON)
        prescaler, reload_l = self._read(T_PRESCALER_REG, T_RELOAD_REG_L)
        if (prescaler, reload_l) != (T_PRESCALER, T_RELOAD & 0xFF):
            raise DeviceError("RFID reader ignores register writes (TPrescalerReg 0x%02X, "
                              "expected 0x%02X): check the MOSI wire" % (prescaler, T_PRESCALER))
        self._ready = True
        log.info("RFID reader: %s on %s", self.chip, self.device_path)

    def _open_spi(self):
        if self._spi_open:
            return
        if self._spi is None:
            try:
                import spidev
            except ImportError:
                raise DeviceError("RFID reader: python module spidev missing "
                                  "(install python3-spidev or pip install spidev)")
            self._spi = spidev.SpiDev()
        try:
            self._spi.open(self.bus, self.device)
        except FileNotFoundError:
            raise DeviceError("RFID reader: no %s: enable SPI (raspi-config, Interface "
                              "Options, SPI) or fix the bus/device" % self.device_path)
        except PermissionError:
            raise DeviceError("RFID reader: no permission on %s: add the user to the spi group"
                              % self.device_path)
        except OSError as e:
            raise DeviceError("RFID reader: cannot open %s (%s)"
                              % (self.device_path, e.strerror or e))
        self._spi_open = True
        self._spi.max_speed_hz = self.max_speed_hz
        self._spi.mode = 0

    def _hard_reset(self):
        """Pulse NRSTPD low: a full reset of a chip that may be wedged."""
        pin = self.reset_pin
        if self._gpio_bus is not None:
            if not self._gpio_ready:
                self._gpio_bus.setup_output(pin, True)
                self._gpio_ready = True
            self._gpio_bus.write(pin, False)
            self.sleep(HARD_RESET_PULSE)
            self._gpio_bus.write(pin, True)
            self.sleep(HARD_RESET_SETTLE)
            return
        try:
            if self._gpio is None:
                try:
                    import RPi.GPIO as gpio
                except ImportError:
                    raise DeviceError("RFID reader: RPi.GPIO missing for reset pin BCM %s "
                                      "(install rpi-lgpio)" % pin)
                self._gpio = gpio
            gpio = self._gpio
            if not self._gpio_ready:
                mode = gpio.getmode()
                if mode is None:
                    gpio.setmode(gpio.BCM)
                elif mode != gpio.BCM:
                    raise DeviceError("RFID reader: GPIO numbering is not BCM; reset_pin %s "
                                      "is a BCM number" % pin)
                gpio.setup(pin, gpio.OUT, initial=gpio.HIGH)
                self._gpio_ready = True
            gpio.output(pin, gpio.LOW)
            self.sleep(HARD_RESET_PULSE)
            gpio.output(pin, gpio.HIGH)
        except DeviceError:
            raise
        except Exception as e:         # RuntimeError, lgpio.error: not a Pi, pin busy
            raise DeviceError("RFID reader: cannot drive reset pin BCM %s (%s)" % (pin, e))
        self.sleep(HARD_RESET_SETTLE)

    @staticmethod
    def _check_version(version):
        if version in (0x00, 0xFF):
            raise DeviceError("RFID reader does not answer (VersionReg 0x%02X): "
                              "check SPI wiring and 3.3 V" % version)

    def close(self):
        """Antenna off, SPI closed, our reset pin (only it) released. Best effort."""
        self._ready = False
        if self._spi is not None and self._spi_open:
            try:
                self._spi.xfer2([_address(TX_CONTROL_REG), TX_CONTROL_ANTENNA_OFF])
            except Exception:
                pass
            try:
                self._spi.close()
            except Exception:
                pass
            self._spi_open = False
        if self._gpio_bus is not None and self.reset_pin is not None:
            try:
                self._gpio_bus.release([self.reset_pin])   # cleanup of this pin only
            except Exception:
                pass
            self._gpio_ready = False
        elif self._gpio_ready:
            try:
                self._gpio.cleanup([self.reset_pin])
            except Exception:
                pass
            self._gpio_ready = False

    # --- SPI access ------------------------------------------------------------------------
    def _xfer(self, mosi):
        self.transfers += 1
        try:
            miso = self._spi.xfer2(mosi)
        except OSError as e:
            try:                       # reopened by the next open()
                self._spi.close()
            except Exception:
                pass
            self._spi_open = False
            raise DeviceError("RFID reader: SPI transfer on %s failed (%s)"
                              % (self.device_path, e.strerror or e))
        if len(miso) != len(mosi):
            raise DeviceError("RFID reader: SPI transfer returned %d bytes for %d"
                              % (len(miso), len(mosi)))
        return miso

    def _write(self, reg, *values):
        """Write values to one register (all of them to FIFODataReg: one transfer)."""
        self._xfer([_address(reg)] + list(values))

    def _read(self, *regs):
        """Read several registers in one transfer."""
        return self._xfer([_read_address(r) for r in regs] + [0])[1:]

    # --- ISO 14443 A -------------------------------------------------------------------------
    def _transceive(self, data, tx_last_bits=0):
        """Send one frame, wait for the answer. Returns (outcome, received bytes):
        CARD (an answer), NO_CARD (the chip's timer ran out) or ERROR."""
        self._write(COMMAND_REG, CMD_IDLE)             # end the previous Transceive
        self._write(COM_IRQ_REG, IRQ_CLEAR_ALL)
        self._write(FIFO_LEVEL_REG, FIFO_FLUSH)
        self._write(FIFO_DATA_REG, *data)
        self._write(BIT_FRAMING_REG, tx_last_bits)      # StartSend off before the command
        self._write(COMMAND_REG, CMD_TRANSCEIVE)
        self._write(BIT_FRAMING_REG, START_SEND | tx_last_bits)
        deadline = self.clock() + EXCHANGE_TIMEOUT
        while True:
            irq, error, level, control, version = self._read(
                COM_IRQ_REG, ERROR_REG, FIFO_LEVEL_REG, CONTROL_REG, VERSION_REG)
            if version != self.version:
                self._check_version(version)
                raise DeviceError("RFID reader answers garbage (VersionReg 0x%02X, was 0x%02X): "
                                  "check SPI wiring" % (version, self.version))
            if irq & (IRQ_RX | IRQ_IDLE | IRQ_ERR | IRQ_TIMER):
                break
            if self.clock() > deadline:
                raise DeviceError("RFID reader stopped working (no answer nor timer within "
                                  "%d ms); re-initialising" % (EXCHANGE_TIMEOUT * 1000))
            self.sleep(STATUS_POLL_INTERVAL)
        if error & ERR_TEMP:
            raise DeviceError("RFID reader overheated (ErrorReg TempErr): antenna switched off")
        if error & ERR_COMMUNICATION:
            return ERROR, b""
        if not irq & IRQ_RX:
            return (NO_CARD if irq & IRQ_TIMER else ERROR), b""
        level &= 0x7F
        received = bytes(self._xfer([_read_address(FIFO_DATA_REG)] * level + [0])[1:]) \
            if level else b""
        if control & 0x07:             # RxLastBits: we only expect whole bytes
            return ERROR, received
        return CARD, received

    def read_uid(self, wake=False):
        """One attempt to read a card, without debounce: (CARD, idTag), (NO_CARD, None)
        or (ERROR, None). wake: WUPA (also answered by a halted card) instead of REQA."""
        if not self._ready:
            self.open()
        outcome, atqa = self._transceive([PICC_WUPA if wake else PICC_REQA], 7)
        if outcome != CARD:
            return outcome, None
        if len(atqa) != 2:
            return ERROR, None
        uid = bytearray()
        for select in SELECT_CODES:
            outcome, part = self._transceive([select, NVB_ANTICOLL])
            if outcome != CARD or len(part) != 5 or bcc(part[:4]) != part[4]:
                return ERROR, None
            frame = bytes((select, NVB_SELECT)) + part
            outcome, answer = self._transceive(frame + crc_a(frame))
            if outcome != CARD or len(answer) != 3 or crc_a(answer[:1]) != answer[1:]:
                return ERROR, None
            if not answer[0] & SAK_UID_NOT_COMPLETE:
                uid += part[:4]
                break
            if part[0] != CASCADE_TAG:
                return ERROR, None
            uid += part[1:4]
        else:
            return ERROR, None         # still "not complete" after cascade level 3
        halt = bytes((PICC_HLTA, 0x00))
        self._transceive(halt + crc_a(halt))   # a halted card does not answer: no check
        return CARD, "".join("%02X" % b for b in uid)

    def chip_crc(self, data):
        """CRC_A of data computed by the chip's CRC coprocessor (CalcCRC, preset
        0x6363 from ModeReg), low byte first like crc_a(). A diagnostic: the
        reader itself computes CRC_A in software (no SPI transfers)."""
        if not self._ready:
            self.open()
        self._write(COMMAND_REG, CMD_IDLE)
        self._write(DIV_IRQ_REG, DIV_IRQ_CRC)          # Set2 = 0: clear CRCIRq
        self._write(FIFO_LEVEL_REG, FIFO_FLUSH)
        self._write(FIFO_DATA_REG, *bytes(data))
        self._write(COMMAND_REG, CMD_CALC_CRC)
        deadline = self.clock() + EXCHANGE_TIMEOUT
        while not self._read(DIV_IRQ_REG)[0] & DIV_IRQ_CRC:
            if self.clock() > deadline:
                raise DeviceError("RFID reader CRC coprocessor did not finish")
            self.sleep(STATUS_POLL_INTERVAL)
        high, low = self._read(CRC_RESULT_REG_H, CRC_RESULT_REG_L)
        self._write(COMMAND_REG, CMD_IDLE)
        return bytes((low, high))
