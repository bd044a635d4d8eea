"""An emulated OpenEVSE pilot board speaking RAPI on a pseudo-terminal.

    board = start_rapi_board(world, cid=1)
    pilot = RapiPilot(board.port)       # the pty's slave side, e.g. /dev/pts/7
    ...
    pilot.close(); board.stop()

The board's physics is the simulated world's SimPilot(world, cid): it reads the
EV state from it and writes the offered current to it, so the bench socket
(plug, unplug, ev, fault) drives the board exactly as it drives the simulated
pilot, and `--hal emulated` runs the real RapiPilot driver against it.

It answers $GS, $SC, $FE, $FS, $FD, $GV and $G0 (XOR '^' or additive '*'
checksums verified; a wrong checksum is answered $NK; no checksum is accepted,
as the real board does "for testing"), echoes sequence ids (RAPI 3+), sends an
asynchronous "$ST state" (or "$AT evse pilot amps vflags" with
async_format="AT") whenever its state changes, and with
world.fault("pilot", "offline") it stops answering (what it receives is lost).

Like a real board it offers its current capacity only while enabled; $SC
without "V" also changes the capacity it boots with (its EEPROM), and
reboot() restarts it: volatile capacity lost, enabled again, "$AB 00 fw" sent.
`commands` lists every command it received (without checksum and sequence
id), `seqs` their sequence ids, `async_sent` the asynchronous messages sent.

The pseudo-terminal plumbing is hal_mocks.pty_device's PtyDevice.
"""

import os
import threading
import time

from drivers.hal import DeviceError
from hal_mocks.pty_device import PtyDevice
from hal_mocks.sim import SimPilot

MAX_LINE = 512


def xor_checksum(text):
    value = 0
    for ch in text.encode("ascii", "replace"):
        value ^= ch
    return value


class RapiBoard(PtyDevice):
    """See the module docstring; start_rapi_board() makes and starts one."""

    def __init__(self, world, cid=1, enabled=True, capacity=32, min_current=6, max_current=80,
                 firmware="8.2.2", protocol="5.0.1", async_format="ST", report_pilot=True):
        if async_format not in ("ST", "AT"):
            raise ValueError("async_format must be ST or AT")
        PtyDevice.__init__(self, "rapi-board%d" % cid)
        self.pilot = SimPilot(world, cid)
        self.world = world
        self.cid = cid
        self.min_current = min_current
        self.max_current = max_current
        self.firmware = firmware
        self.protocol = protocol
        self.async_format = async_format
        self.report_pilot = report_pilot          # False: an old firmware's 2-field $GS
        self._lock = threading.Condition()
        self.eeprom_capacity = capacity
        self.capacity = capacity
        self.enabled = enabled
        self.disabled = False                     # $FD (255) rather than $FS (254)
        self.commands = []
        self.seqs = []                            # the sequence id of each command, or None
        self.async_sent = []
        self._buf = bytearray()
        self._reported = None
        self._charging_since = None
        self._elapsed = 0
        self._pending_boot = False
        self._ready = threading.Event()

    # --- what tests and the bench may call (any thread) ------------------------------------
    def reboot(self):
        """Restart the board: volatile settings lost, enabled, "$AB 00 fw" sent."""
        with self._lock:
            self.capacity = self.eeprom_capacity
            self.enabled = True
            self.disabled = False
            self._pending_boot = True
            self._ready.clear()
        os.write(self._wake_w, b"r")

    def wait_ready(self, timeout=5.0):
        """Wait until the board is up (it has applied its boot settings to the world)."""
        return self._ready.wait(timeout)

    def wait_async(self, count=1, timeout=5.0):
        """Wait until `count` asynchronous messages were sent; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.async_sent) >= count, timeout)

    def wait_commands(self, predicate, timeout=5.0):
        """Wait until predicate(commands) holds; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(list(self.commands)), timeout)

    # --- the world ---------------------------------------------------------------------------
    def _ev(self):
        """The world's EV state, or None when the board is offline."""
        try:
            return self.pilot.ev_state()
        except DeviceError:
            return None

    def _offer(self):
        """Drive the world's offered current from the board's settings."""
        try:
            self.pilot.set_offered_current(float(self.capacity) if self.enabled else 0.0)
        except DeviceError:
            pass

    def _states(self, ev):
        pilot = {"A": 1, "B": 2, "C": 3, "D": 4}.get(ev, 0)
        if pilot == 0:
            return 0x05, pilot       # E/F on the pilot: the board's diode check fails
        if not self.enabled:
            return (0xFF if self.disabled else 0xFE), pilot
        return pilot, pilot

    # --- the protocol ------------------------------------------------------------------------
    def tick(self):
        ev = self._ev()
        if ev is None:
            return
        with self._lock:
            booting = self._pending_boot
            if booting:
                self._pending_boot = False
                self._reported = None
            evse, pilot = self._states(ev)
            if evse == 3 and self._charging_since is None:
                self._charging_since = time.monotonic()
            elif evse != 3 and self._charging_since is not None:
                self._elapsed = int(time.monotonic() - self._charging_since)
                self._charging_since = None
            if self._reported is None:
                self._offer()                        # power-on: offer if booted enabled
                self._reported = (evse, pilot)       # the state at power-on is not news
                if booting:
                    self._emit_locked("$AB 00 %s" % self.firmware)
                self._ready.set()
            elif (evse, pilot) != self._reported:
                before, self._reported = self._reported, (evse, pilot)
                if self.async_format == "AT":
                    self._emit_locked("$AT %x %x %d %x" % (evse, pilot, self.capacity, 0))
                elif evse != before[0]:
                    self._emit_locked("$ST %x" % evse)      # $ST: EVSE state changes only

    def _emit_locked(self, body):
        self.send(("%s^%02X\r" % (body, xor_checksum(body))).encode("ascii"))
        self.async_sent.append(body)
        self._lock.notify_all()

    def received(self, data):
        self._buf += data
        while True:
            ends = [i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0]
            if not ends:
                if len(self._buf) > MAX_LINE:
                    del self._buf[:]
                return
            end = min(ends)
            line = bytes(self._buf[:end]).decode("ascii", "replace").strip()
            del self._buf[:end + 1]
            if "$" in line:
                self._line(line[line.rfind("$"):])

    def _line(self, text):
        if self._ev() is None:
            return                     # offline: the command is lost
        body, ok = text, True
        for mark in ("^", "*"):
            pos = text.rfind(mark)
            if pos > 0:
                body, given = text[:pos], text[pos + 1:]
                if mark == "^":
                    expected = xor_checksum(body)
                else:
                    expected = sum(body.encode("ascii", "replace")) & 0xFF
                ok = len(given) == 2 and given.upper() == "%02X" % expected
                break
        tokens = body[1:].split()
        seq = None
        if len(tokens) > 1 and tokens[-1].startswith(":"):
            seq = tokens.pop()
        with self._lock:
            if not ok or not tokens:
                self._reply(False, [], seq)
                return
            self.commands.append(" ".join(tokens))
            self.seqs.append(seq)
            self._lock.notify_all()
            self._dispatch(tokens[0].upper(), tokens[1:], seq)

    def _reply(self, ok, args, seq):
        body = " ".join(["$OK" if ok else "$NK"] + [str(a) for a in args] + ([seq] if seq else []))
        self.send(("%s^%02X\r" % (body, xor_checksum(body))).encode("ascii"))

    def _dispatch(self, code, args, seq):
        if code == "GS":
            ev = self._ev()
            evse, pilot = self._states(ev)
            elapsed = self._elapsed
            if self._charging_since is not None:
                elapsed = int(time.monotonic() - self._charging_since)
            fields = ["%x" % evse, str(elapsed)]
            if self.report_pilot:
                fields += ["%x" % pilot, "%04x" % 0]
            self._reply(True, fields, seq)
        elif code == "G0":
            ev = self._ev()
            self._reply(True, ["0" if ev == "A" else "1" if ev in ("B", "C", "D") else "2"], seq)
        elif code == "GV":
            self._reply(True, [self.firmware, self.protocol], seq)
        elif code == "SC":
            try:
                amps = int(args[0])
            except (IndexError, ValueError):
                self._reply(False, [], seq)
                return
            clamped = max(self.min_current, min(self.max_current, amps))
            self.capacity = clamped
            if not (len(args) > 1 and args[1].upper() == "V"):
                self.eeprom_capacity = clamped
            self._offer()
            self._reply(clamped == amps, [clamped], seq)
        elif code == "FE":
            self.enabled, self.disabled = True, False
            self._offer()
            self._reply(True, [], seq)
        elif code in ("FS", "FD"):
            self.enabled, self.disabled = False, code == "FD"
            self._offer()
            self._reply(True, [], seq)
        else:
            self._reply(False, [], seq)


def start_rapi_board(world, cid=1, **options):
    """Start an emulated OpenEVSE board for connector `cid` of `world`; the handle
    has .port (the pty path for pyserial) and .stop(). Options: see RapiBoard."""
    return RapiBoard(world, cid, **options).start()
