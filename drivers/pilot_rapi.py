"""The control pilot through an OpenEVSE board, over its RAPI serial protocol.

The OpenEVSE controller generates the pilot PWM, reads the pilot back and runs
its own safety checks (GFCI, ground, stuck relay, diode check); this driver
tells it what to offer and asks it what it sees.

Framing (RAPI, as documented in the board's rapi_proc.h):

    command   $CC arg arg ...^XK<CR>      XK: XOR of every character before '^'
    legacy    $CC arg arg ...*CK<CR>      CK: 8-bit sum of every character before '*'
    reply     $OK args^XK<CR>  or  $NK args^XK<CR>  (no checksum before RAPI v2)
    seq id    $CC args :SS^XK<CR> -> $OK args :SS^XK<CR>  (RAPI v3+, echoed back)
    async     $ST state / $AT evse pilot amps vflags / $AB postcode fwrev / $WF / $AN

We always send the XOR form and accept all three on receipt; a frame whose
checksum does not match is dropped (and counted). Asynchronous notifications
may arrive at any time, also between a command and its reply: they are
parsed (the state of $ST/$AT is kept in `async_state`) and never taken for a
reply. Sequence ids are used when the board reports RAPI protocol 3 or later
in $GV (sequence_ids=None, the default), so that a late reply to a command
that timed out cannot be taken for the reply to the next one.

Commands used:
    $GV            version (once after opening, and after the board restarted)
    $GS            state: "$OK evsestate elapsed pilotstate vflags" (hex, dec, hex, hex)
    $SC amps V     current capacity, volatile (V): no EEPROM write per change
    $FE            enable: the board offers the capacity (PWM) once an EV is there
    $FS            sleep: the board stops offering

Not offering = $FS (sleep), not $FD (disable): asleep, the board keeps the
pilot at +12 V DC, which is exactly IEC 61851 "not offering" (state A/B1), and
keeps measuring the pilot, so $GS still says whether an EV is connected.
$FD is the board's out-of-service mode; we leave it to a technician.

State mapping (ev_state()), RAPI EVSE state -> IEC 61851:
    1 A (not connected)  2 B (connected)  3 C (charging)  4 D (vent required)
    5..253 board faults (5 diode check failed, 6 GFCI, 7 no ground, 8 stuck
           relay, 9 GFI self-test, 10 over temperature, 11 over current, ...)  -> F
    254 (sleeping), 255 (disabled): the board offers nothing; the EV's
           presence comes from $GS's pilotstate (1..4 -> A..D), and on firmware
           whose $GS has no pilotstate from $G0 (0 -> A, 1 -> B)
    0 (starting): the same, else DeviceError("... is starting up")
RAPI cannot tell IEC state E (0 V) from other pilot faults: it is reported F.

The board is made to follow what was last asked of it (`set_offered_current`),
checked on every ev_state() poll: a board that restarted ($AB, or found awake
while it should sleep, or asleep while it should offer) is put back at once.
Until the firmware asks for an offer, the wanted state is "not offering": a
board that boots enabled with an EV connected stops offering at the first poll.

Offers: RAPI takes whole amps, so the offer is rounded down (never more than
asked). 0 < amps < 6 cannot be signalled by PWM (IEC 61851): the board sleeps.
Above 80 A: ValueError. A board whose maximum is lower answers "$NK max" to
$SC: it then offers its maximum (less than asked, so safe), noted in
`offered_amps` and logged; a board that would offer more than asked (its
minimum above the request) is put to sleep and DeviceError raised. Any other
$NK raises RapiRefused, a DeviceError naming the command ("pilot board refused
$FE (answered $NK)"); the offer is then tried again at the next poll.

Limits: without sequence ids (RAPI < 3) a reply that arrives after its
timeout could pass for the reply to the next command (what is waiting is
drained before each command, which makes this rare). The OpenEVSE board
closes its own relay in state C while enabled: wire it in series with the
station's contactor (or as the contactor), never around it.

Threading: the firmware calls a device only from its own worker thread; a
lock makes the driver safe anyway. The serial port is opened on first use
(and again after an I/O error), so a board that is missing at start-up is a
device fault that clears by itself, not a start-up crash.
"""

import logging
import math
import threading
import time

from drivers import pilot_math
from drivers.hal import ControlPilot, DeviceError
from drivers.serial_lines import LineSerial

log = logging.getLogger("drivers.pilot_rapi")

MAX_LINE = 256              # a RAPI frame is < 40 characters; longer is noise

EVSE_STARTING = 0x00
EVSE_SLEEPING = 0xFE
EVSE_DISABLED = 0xFF
RAPI_STATE_NAMES = {
    0x00: "starting", 0x01: "A not connected", 0x02: "B connected", 0x03: "C charging",
    0x04: "D vent required", 0x05: "diode check failed", 0x06: "GFCI fault",
    0x07: "no ground", 0x08: "stuck relay", 0x09: "GFI self-test failed",
    0x0A: "over temperature", 0x0B: "over current", 0xFE: "sleeping", 0xFF: "disabled",
}
_IEC_OF_RAPI = {1: "A", 2: "B", 3: "C", 4: "D"}
_AWAKE = (1, 2, 3, 4)
_NOT_OFFERING = (EVSE_STARTING, EVSE_SLEEPING, EVSE_DISABLED)
ASYNC_CODES = ("ST", "AT", "AB", "AN", "WF")


# --- framing ------------------------------------------------------------------------------
def xor_checksum(text):
    """RAPI checksum '^': XOR of the characters (from '$' up to the '^')."""
    value = 0
    for ch in text.encode("ascii"):
        value ^= ch
    return value


def additive_checksum(text):
    """Legacy RAPI checksum '*': 8-bit sum of the characters before the '*'."""
    return sum(text.encode("ascii")) & 0xFF


def encode(code, *args, seq=None):
    """The bytes of a command: encode("SC", 16, "V") -> b"$SC 16 V^23\\r"."""
    body = "$" + code + "".join(" " + str(a) for a in args)
    if seq is not None:
        body += " :%02X" % seq
    return ("%s^%02X\r" % (body, xor_checksum(body))).encode("ascii")


class Frame:
    """One received RAPI frame: code ("OK", "NK", "ST", ...), args, seq id or None,
    checksum kind ("xor", "sum" or None)."""

    def __init__(self, code, args, seq=None, checksum=None):
        self.code = code
        self.args = args
        self.seq = seq
        self.checksum = checksum

    def __repr__(self):
        return "Frame(%r, %r, seq=%r)" % (self.code, self.args, self.seq)


def parse_frame(line):
    """A Frame from one line of text (anything before its last '$' is noise).
    ValueError when there is no frame or its checksum is wrong."""
    start = line.rfind("$")
    if start < 0:
        raise ValueError("no RAPI frame in %r" % (line,))
    text = line[start:].strip()
    checksum = None
    for mark, kind, fn in (("^", "xor", xor_checksum), ("*", "sum", additive_checksum)):
        pos = text.rfind(mark)
        if pos > 0:
            given = text[pos + 1:]
            body = text[:pos]
            try:
                expected = int(given, 16)
            except ValueError:
                raise ValueError("bad checksum field in %r" % (text,))
            if len(given) != 2 or fn(body) != expected:
                raise ValueError("checksum mismatch in %r" % (text,))
            text, checksum = body, kind
            break
    tokens = text[1:].split()
    if not tokens or len(tokens[0]) != 2:
        raise ValueError("no RAPI command in %r" % (line,))
    seq = None
    if len(tokens) > 1 and tokens[-1].startswith(":"):
        try:
            seq = int(tokens[-1][1:], 16)
        except ValueError:
            raise ValueError("bad sequence id in %r" % (text,))
        tokens = tokens[:-1]
    return Frame(tokens[0].upper(), tokens[1:], seq, checksum)


def iec_state(evse_state, pilot_state=None):
    """The IEC 61851 state for a RAPI EVSE state (and the pilot state $GS/$AT
    report), or None when the board offers nothing and reports no pilot state."""
    if evse_state in _IEC_OF_RAPI:
        return _IEC_OF_RAPI[evse_state]
    if evse_state in _NOT_OFFERING:
        return _IEC_OF_RAPI.get(pilot_state)
    return "F"


def state_name(evse_state):
    return RAPI_STATE_NAMES.get(evse_state, "error 0x%02X" % evse_state)


class RapiRefused(DeviceError):
    """The board answered $NK; .command is what was sent ("$SC"), .reply the
    arguments of the $NK."""

    def __init__(self, message, command, reply):
        DeviceError.__init__(self, message)
        self.command = command
        self.reply = reply


# --- the driver ---------------------------------------------------------------------------
class RapiPilot(ControlPilot):
    """ControlPilot on an OpenEVSE board at `port` (e.g. /dev/ttyAMA0, 115200 8N1).

    timeout: seconds to wait for each reply. serial: an open pyserial-like object
    to use instead of opening `port` (its read timeout is set to 50 ms; the
    driver does not close it). sequence_ids: None = when $GV says RAPI >= 3."""

    def __init__(self, port, baudrate=115200, timeout=1.0, serial=None, sequence_ids=None):
        self.port = port
        self.baudrate = baudrate
        self.timeout = float(timeout)
        # A frame ends its line (noise may come before it): an over-long line keeps its end.
        self._serial = LineSerial(
            port, baudrate, self.timeout, serial, name="pilot board", max_line=MAX_LINE,
            keep_last=True, open_hint="check the [pilot] port and that the UART is enabled",
            failure_hint="check the connection to the board")
        self._lock = threading.RLock()
        self._seq_wanted = sequence_ids
        self._use_seq = bool(sequence_ids)
        self._seq = 0
        self._handshake_done = False
        self._wanted = 0               # whole amps the firmware wants offered; 0 = not offering
        self._reapply = True           # put the board in the wanted state at the next poll
        self.offered_amps = 0          # what the board was last told to offer (after clamping)
        self.firmware_version = None
        self.protocol_version = None
        self.board_state = None        # the last RAPI EVSE state seen
        self.async_state = None        # (evse_state, pilot_state or None) of the last $ST/$AT
        self.async_messages = 0
        self.bad_frames = 0

    # --- public API -------------------------------------------------------------------------
    def ev_state(self):
        with self._lock:
            evse, pilot = self._get_state()
            if self._reconcile(evse):
                evse, pilot = self._get_state()
            state = iec_state(evse, pilot)
            if state is None:
                state = self._connect_state(evse)
            return state

    def set_offered_current(self, amps):
        if type(amps) not in (int, float) or amps != amps or amps < 0 or amps == math.inf:
            raise ValueError("offered current must be a number of amps >= 0, not %r" % (amps,))
        if amps > pilot_math.MAX_CURRENT_A:
            raise ValueError("a pilot cannot offer more than %d A, not %s A"
                             % (pilot_math.MAX_CURRENT_A, amps))
        if 0 < amps < pilot_math.MIN_CURRENT_A:
            log.info("%s A is below the %d A a pilot can offer: not offering", amps,
                     pilot_math.MIN_CURRENT_A)
        wanted = int(math.floor(amps)) if amps >= pilot_math.MIN_CURRENT_A else 0
        with self._lock:
            self._wanted = wanted
            self._apply()

    @property
    def duty_cycle(self):
        """The duty cycle (%) the board signals for what it was told to offer."""
        return pilot_math.duty_cycle_for_current(self.offered_amps)

    def version(self):
        """(firmware version, RAPI protocol version or None) from $GV."""
        with self._lock:
            args = self._command("GV")
            self.firmware_version = args[0] if args else None
            self.protocol_version = args[1] if len(args) > 1 else None
            if self._seq_wanted is None:
                self._use_seq = _major(self.protocol_version) >= 3
            return self.firmware_version, self.protocol_version

    def close(self):
        with self._lock:
            self._serial.close()

    # --- board state ------------------------------------------------------------------------
    def _get_state(self):
        args = self._command("GS")
        try:
            evse = int(args[0], 16)
            pilot = int(args[2], 16) if len(args) > 2 else None
        except (IndexError, ValueError):
            raise DeviceError("pilot board on %s answered $GS with nonsense (%s): "
                              "is it an OpenEVSE board?" % (self.port, " ".join(args)))
        if evse != self.board_state:
            log.info("pilot board: %s", state_name(evse))
            self.board_state = evse
        return evse, pilot

    def _connect_state(self, evse):
        """The board offers nothing and $GS tells nothing of the pilot: ask $G0."""
        if evse == EVSE_STARTING:
            raise DeviceError("pilot board on %s is starting up" % self.port)
        try:
            args = self._command("G0")
        except RapiRefused:
            raise DeviceError("pilot board on %s is %s and does not report the pilot state: "
                              "update its firmware" % (self.port, state_name(evse)))
        if args and args[0] == "0":
            return "A"
        if args and args[0] == "1":
            return "B"
        raise DeviceError("pilot board on %s is %s and cannot tell whether an EV is connected"
                          % (self.port, state_name(evse)))

    def _reconcile(self, evse):
        """Put the board back in the wanted state; True if a command was sent."""
        if evse == EVSE_STARTING:
            return False          # let it finish booting
        awake = evse in _AWAKE
        sleeping = evse in (EVSE_SLEEPING, EVSE_DISABLED)
        if not (self._reapply or (self._wanted and sleeping) or (not self._wanted and awake)):
            return False
        if not self._reapply:
            log.warning("pilot board is %s but should %s: correcting", state_name(evse),
                        "offer %d A" % self._wanted if self._wanted else "not offer")
        self._apply()
        return True

    def _apply(self):
        self._reapply = True          # until it went through
        if self._wanted:
            self._set_capacity(self._wanted)
            self._command("FE")
        else:
            self._command("FS")
            self.offered_amps = 0
        self._reapply = False

    def _set_capacity(self, amps):
        try:
            args = self._command("SC", amps, "V")
            self.offered_amps = _int_or(args[0] if args else None, amps)
            return
        except RapiRefused as e:
            actual = _int_or(e.reply[0] if e.reply else None, None)
            if actual is None:
                raise
        if actual < amps:
            log.warning("pilot board offers at most %d A: offering %d A instead of %d A",
                        actual, actual, amps)
            self.offered_amps = actual
            return
        self._command("FS")
        self.offered_amps = 0
        raise DeviceError("pilot board cannot offer %d A: it offers at least %d A (check its "
                          "minimum current setting)" % (amps, actual))

    # --- transactions -----------------------------------------------------------------------
    def _command(self, code, *args):
        """Send one command; the reply's arguments. RapiRefused on $NK, DeviceError
        when nothing (valid) comes back within the timeout."""
        if self._serial.ensure_open():
            # A fresh connection: make sure the board does what we want.
            self._handshake_done = False
            self._reapply = True
        if not self._handshake_done:
            self._handshake_done = True      # first, so that GV itself does not recurse
            try:
                self.version()
            except DeviceError:
                self._handshake_done = False
                raise
            log.info("pilot board on %s: firmware %s, RAPI %s", self.port,
                     self.firmware_version, self.protocol_version)
        self._drain()
        seq = None
        if self._use_seq:
            self._seq = self._seq % 255 + 1        # 1..255: 0 is reserved
            seq = self._seq
        frame = encode(code, *args, seq=seq)
        sent = frame.decode("ascii").strip()
        self._serial.write(frame)
        deadline = time.monotonic() + self.timeout
        bad_before = self.bad_frames
        while True:
            line = self._serial.read_line(deadline)
            if line is None:
                if self.bad_frames > bad_before:
                    raise DeviceError("pilot board on %s answers with corrupted frames (bad "
                                      "checksum): check the baud rate (%d) and the UART wiring"
                                      % (self.port, self.baudrate))
                raise DeviceError("pilot board does not answer on %s at %d baud: check the "
                                  "UART wiring" % (self.port, self.baudrate))
            f = self._parse(line)
            if f is None:
                continue
            if f.code in ("OK", "NK"):
                if f.seq is not None and f.seq != seq:
                    log.debug("pilot board: stale reply %r ignored", line)
                    continue
                if f.code == "NK":
                    answer = " ".join(["$NK"] + f.args)
                    raise RapiRefused("pilot board refused %s (answered %s)"
                                      % (_strip_checksum(sent), answer), "$" + code, f.args)
                return f.args
            if f.code in ASYNC_CODES:
                self._on_async(f)
            # else: the echo of our own command ($FF E 1), or something unknown

    def _parse(self, line):
        try:
            return parse_frame(line)
        except ValueError as e:
            if "$" in line:
                self.bad_frames += 1
                log.debug("pilot board: %s", e)
            return None

    def _on_async(self, f):
        self.async_messages += 1
        try:
            if f.code == "ST" and f.args:
                self.async_state = (int(f.args[0], 16), None)
            elif f.code == "AT" and len(f.args) >= 2:
                self.async_state = (int(f.args[0], 16), int(f.args[1], 16))
            elif f.code == "AB":
                postcode = f.args[0] if f.args else "?"
                log.warning("pilot board restarted (post code %s, firmware %s)", postcode,
                            f.args[1] if len(f.args) > 1 else "?")
                self._reapply = True
                self._handshake_done = False
                return
            else:
                return
        except ValueError:
            log.debug("pilot board: unreadable $%s %s", f.code, " ".join(f.args))
            return
        log.debug("pilot board: now %s", state_name(self.async_state[0]))

    def _drain(self):
        """Handle what arrived between commands (asynchronous notifications)."""
        for line in self._serial.drain():
            f = self._parse(line)
            if f is not None and f.code in ASYNC_CODES:
                self._on_async(f)


def _major(version):
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def _int_or(text, default):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def _strip_checksum(sent):
    pos = sent.rfind("^")
    return sent[:pos] if pos > 0 else sent
