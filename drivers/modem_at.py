"""An LTE modem's health over its AT command port (3GPP TS 27.007 commands).

The operating system owns the data link (ModemManager/NetworkManager, QMI,
PPP); this driver only asks the modem how it is, on its AT port - on a
Quectel EG25-G/EC25 over USB that is /dev/ttyUSB2 (ttyUSB0 DM, 1 NMEA,
2 AT, 3 PPP/AT); the baud rate does not matter on USB.

status() sends, each time:
    ATE0, AT+CMEE=1    echo off (a modem that restarted echoes again), numeric errors
    AT+CPIN?           SIM: "+CPIN: READY" -> sim_ready; "+CME ERROR: 10" = no SIM
    AT+CSQ             "+CSQ: rssi,ber": dBm = -113 + 2 x rssi (0..31), 99 = unknown
    AT+CEREG?          LTE registration, then AT+CREG? when not registered there:
                       "+CEREG: n,stat[,...]", stat 1 = home, 5 = roaming -> registered
    AT+COPS?           '+COPS: 0,0,"Operator",7' (no operator when not registered)
    ICCID              AT+QCCID (Quectel), AT+CICCID (SIMCom), AT+ICCID, AT+CCID
                       (u-blox, 27.007 style), in turn: the first that answers OK with
                       18 to 22 digits (a trailing F pad stripped); the one that worked
                       is tried first next time
    AT+CIMI, AT+CGSN   IMSI, IMEI
    AT+CGMI, AT+CGMM, AT+CGMR   manufacturer, model, firmware (kept until a reset)
    AT+QENG="servingcell"       on a Quectel only: the serving cell, as extra info

Unsolicited result codes (RING, RDY, +CREG: 1, +CEREG: 5,"1A2B",..., +QIND: ...,
POWERED DOWN) may arrive at any time, also between a command and its answer.
Information lines are taken by their prefix (+CSQ:), bare answers (+CIMI)
only when they have the expected form, and the answer to AT+CEREG? is told
from the URC "+CEREG: stat[,"tac",...]" by its second field, a bare number
(<n>,<stat>). Everything else is kept in `urcs` (the last 50) and logged.

A command answered ERROR or +CME ERROR leaves its field None (no SIM:
sim_ready False, iccid None); a command without any final result code within
`timeout` raises DeviceError("modem does not answer on <port>: ..."), and the
rest of that status() is skipped. Extras the ModemStatus fields have no room
for are in a dict `extra` set on the returned instance: manufacturer,
sim_state, registration ("home", "roaming", "searching", ...), act (the
access technology number of +COPS, 7 = LTE), serving_cell (Quectel), urcs
(those seen during this status()).

reset(): AT+CFUN=1,1 (the modem restarts). When it does not answer or refuses
and a power_cycle callable was given (a GPIO pulse on the modem's power or
reset line, from the GPIO driver: GPIO stays out of this module), that is
called instead. The port is closed after a reset - a USB modem re-enumerates,
and an open descriptor would pin the old device node - and reopened by the
next status().
"""

import collections
import logging
import re
import threading
import time

from drivers.hal import DeviceError, Modem, ModemStatus
from drivers.serial_lines import LineSerial

log = logging.getLogger("drivers.modem_at")

MAX_LINE = 1024
MAX_URCS = 50
ICCID_COMMANDS = ("AT+QCCID", "AT+CICCID", "AT+ICCID", "AT+CCID")
REGISTERED = {1: "home", 5: "roaming"}
REGISTRATION_NAMES = {0: "not searching", 1: "home", 2: "searching", 3: "denied",
                      4: "unknown", 5: "roaming"}
CME_ERRORS = {10: "SIM not inserted", 11: "SIM PIN required", 12: "SIM PUK required",
              13: "SIM failure", 14: "SIM busy", 15: "SIM wrong", 16: "incorrect password"}
FINAL_OK = "OK"
_BARE_URCS = ("RING", "RDY", "APP RDY", "POWERED DOWN", "NORMAL POWER DOWN", "NO CARRIER",
              "SMS READY", "CALL READY", "SMS DONE", "PB DONE", "UNDER-VOLTAGE POWER DOWN",
              "UNDER-VOLTAGE WARNING", "OVER-VOLTAGE POWER DOWN", "OVER-VOLTAGE WARNING")
_RESTART_URCS = ("RDY", "APP RDY")
_PREFIX = re.compile(r"^[+^#]?[A-Za-z][A-Za-z0-9]*:\s*")
_COPS = re.compile(r'^\+COPS:\s*\d+\s*,\s*\d+\s*,\s*"([^"]*)"(?:\s*,\s*(\d+))?')
_CSQ = re.compile(r"^\+CSQ:\s*(\d+)\s*,\s*(\d+)")


def csq_to_dbm(rssi):
    """+CSQ rssi -> dBm: 0 -> -113 (or less), 1 -> -111, 2..30 -> -109..-53,
    31 -> -51 (or more); 99 (not known) or anything else -> None."""
    if type(rssi) is not int or not 0 <= rssi <= 31:
        return None
    return -113 + 2 * rssi


def normalize_iccid(text):
    """The ICCID digits in an answer ("+QCCID: 8949...F", '"8949..."'), a
    trailing F pad stripped and a nibble-swapped raw read ("98...") put right;
    None if it is not 18 to 22 digits."""
    text = _PREFIX.sub("", text.strip()).strip().strip('"').strip().upper()
    text = text.rstrip("F")
    if len(text) % 2 == 0 and text.startswith("98") and text.isdigit():
        swapped = "".join(text[i + 1] + text[i] for i in range(0, len(text), 2)).rstrip("F")
        if swapped.startswith("89"):
            text = swapped
    if text.isdigit() and 18 <= len(text) <= 22:
        return text
    return None


def looks_like_urc(line):
    """True for a line that is (or may be) an unsolicited result code."""
    upper = line.strip().upper()
    return upper[:1] in ("+", "^", "#", "$") or upper in _BARE_URCS


def is_final(line):
    upper = line.strip().upper()
    return upper in ("OK", "ERROR") or upper.startswith("+CME ERROR") or \
        upper.startswith("+CMS ERROR")


def registration_stat(line, prefix):
    """<stat> of the answer to AT+CEREG? / AT+CREG? ("+CEREG: <n>,<stat>[,...]"),
    or None for anything else, such as the URC "+CEREG: <stat>[,"tac",...]"."""
    if not line.upper().startswith(prefix.upper() + ":"):
        return None
    fields = [f.strip() for f in line[len(prefix) + 1:].split(",")]
    if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
        return int(fields[1])
    return None


def cme_code(final):
    m = re.match(r"^\+CME ERROR:\s*(\d+)", final.strip(), re.I)
    return int(m.group(1)) if m else None


class AtModem(Modem):
    """Modem on the AT port `port` (e.g. /dev/ttyUSB2).

    timeout: seconds for each command's final result code. serial: an open
    pyserial-like object to use instead of opening `port` (its read timeout is
    set to 50 ms; the driver neither closes nor reopens it). power_cycle: a
    callable that power-cycles the modem (e.g. a GPIO pulse), used by reset()
    when AT+CFUN=1,1 gets no OK."""

    def __init__(self, port, baudrate=115200, timeout=2.0, serial=None, power_cycle=None):
        self.port = port
        self.baudrate = baudrate
        self.timeout = float(timeout)
        self.power_cycle = power_cycle
        self._serial = LineSerial(
            port, baudrate, self.timeout, serial, name="modem", max_line=MAX_LINE,
            open_hint="is the modem powered and its USB cable plugged in?",
            failure_hint="the modem restarted or its USB cable is loose")
        self._lock = threading.RLock()
        self._iccid_first = None          # the ICCID command that worked last time
        self._fixed = {}                  # manufacturer, model, firmware, imei: read once
        self.urcs = collections.deque(maxlen=MAX_URCS)    # (monotonic time, line)
        self._status_urcs = []
        self.resets = 0

    # --- public API -------------------------------------------------------------------------
    def status(self):
        with self._lock:
            return self._status()

    def reset(self):
        with self._lock:
            self._fixed.clear()
            problem = None
            try:
                final, lines = self._transact("AT+CFUN=1,1")
                self._note_urcs(lines)
                if final != FINAL_OK:
                    problem = "it answered %s to AT+CFUN=1,1" % final
            except DeviceError as e:
                problem = str(e)
            if problem is not None:
                if self.power_cycle is None:
                    raise DeviceError("modem on %s could not be reset: %s" % (self.port, problem))
                log.warning("modem reset by AT+CFUN=1,1 failed (%s): power-cycling it", problem)
                self._serial.close()
                self.power_cycle()
            self.resets += 1
            self._after_reset()

    def close(self):
        with self._lock:
            self._serial.close()

    # --- status -----------------------------------------------------------------------------
    def _status(self):
        self._status_urcs = []
        self._transact("ATE0")           # also the first sign of life
        self._transact("AT+CMEE=1")
        extra = {}
        st = ModemStatus()

        answer, final = self._info("AT+CPIN?", "+CPIN")
        st.sim_ready = answer is not None and answer.strip().upper() == "READY"
        if answer is not None:
            extra["sim_state"] = answer.strip()
        else:
            code = cme_code(final)
            extra["sim_state"] = CME_ERRORS.get(code, final)

        answer, _ = self._info("AT+CSQ", "+CSQ")
        m = _CSQ.match("+CSQ: " + answer) if answer is not None else None
        st.signal_dbm = csq_to_dbm(int(m.group(1))) if m else None

        stat = self._registration("AT+CEREG?", "+CEREG")
        if stat not in REGISTERED:
            stat_2g3g = self._registration("AT+CREG?", "+CREG")
            if stat_2g3g in REGISTERED or stat is None:
                stat = stat_2g3g
        st.registered = stat in REGISTERED
        extra["registration"] = None if stat is None else REGISTRATION_NAMES.get(stat, str(stat))

        final, lines = self._transact("AT+COPS?")
        for line in lines:
            m = _COPS.match(line)
            if m and final == FINAL_OK and st.operator is None:
                st.operator = m.group(1).strip() or None
                extra["act"] = int(m.group(2)) if m.group(2) else None
            elif not line.upper().startswith("+COPS:"):
                self._note_urc(line)

        st.iccid = self._iccid()
        st.imsi = self._digits("AT+CIMI", "+CIMI", 6, 15)
        if "imei" not in self._fixed:
            self._remember("imei", self._digits("AT+CGSN", "+CGSN", 14, 17))
        for key, cmd in (("manufacturer", "AT+CGMI"), ("model", "AT+CGMM"),
                         ("firmware", "AT+CGMR")):
            if key not in self._fixed:
                answer, _ = self._info(cmd, cmd[2:], optional=True)
                if answer is not None and key == "firmware":
                    answer = re.sub(r"^Revision:\s*", "", answer, flags=re.I)
                self._remember(key, answer.strip() if answer else None)
        st.imei = self._fixed.get("imei")
        st.model = self._fixed.get("model")
        st.firmware = self._fixed.get("firmware")
        extra["manufacturer"] = self._fixed.get("manufacturer")

        if self._is_quectel():
            answer, _ = self._info('AT+QENG="servingcell"', "+QENG")
            extra["serving_cell"] = answer
        extra["urcs"] = list(self._status_urcs)
        st.extra = extra
        return st

    def _remember(self, key, value):
        if value is not None:
            self._fixed[key] = value

    def _is_quectel(self):
        maker = (self._fixed.get("manufacturer") or "").lower()
        model = (self._fixed.get("model") or "").upper()
        return "quectel" in maker or model.startswith(("EG2", "EC2", "EG9", "BG9", "EM0", "RM5"))

    def _registration(self, cmd, prefix):
        final, lines = self._transact(cmd)
        stat = None
        for line in lines:
            value = registration_stat(line, prefix) if final == FINAL_OK else None
            if value is not None and stat is None:
                stat = value
            else:
                self._note_urc(line)
        return stat

    def _iccid(self):
        order = list(ICCID_COMMANDS)
        if self._iccid_first in order:
            order.remove(self._iccid_first)
            order.insert(0, self._iccid_first)
        for cmd in order:
            final, lines = self._transact(cmd)
            found = None
            for line in lines:
                value = normalize_iccid(line) if final == FINAL_OK and found is None else None
                if value is not None:
                    found = value
                else:
                    self._note_urc(line)
            if found is not None:
                self._iccid_first = cmd
                return found
        return None

    def _digits(self, cmd, prefix, low, high):
        answer, _ = self._info(cmd, prefix, optional=True,
                               accept=lambda t: t.isdigit() and low <= len(t) <= high)
        return answer

    def _info(self, cmd, prefix, optional=False, accept=None):
        """(answer text after "prefix:", final result code); the answer is None on
        ERROR or when no line fits. optional: the prefix may be missing (bare
        answers such as the IMSI), and a bare line must not look like a URC."""
        final, lines = self._transact(cmd)
        answer = None
        for line in lines:
            text = None
            if final == FINAL_OK and answer is None:
                if line.upper().startswith(prefix.upper() + ":"):
                    text = line[len(prefix) + 1:].strip()
                elif optional and not looks_like_urc(line):
                    text = line.strip()
                if text is not None:
                    text = _unquote(text)
                    if accept is not None and not accept(text):
                        text = None
            if text is not None:
                answer = text
            else:
                self._note_urc(line)
        return answer, final

    # --- transactions -----------------------------------------------------------------------
    def _transact(self, cmd):
        """Send cmd; (final result code, the other lines before it, echo removed)."""
        self._serial.ensure_open()
        self._drain()
        self._serial.write((cmd + "\r").encode("ascii"))
        deadline = time.monotonic() + self.timeout
        lines = []
        while True:
            line = self._serial.read_line(deadline)
            if line is None:
                raise DeviceError("modem does not answer on %s: no reply to %s within %g s; "
                                  "check its power, its USB cable and that no other program "
                                  "uses the port" % (self.port, cmd, self.timeout))
            if line.upper() == cmd.upper():
                continue                        # the echo
            if is_final(line):
                return line.strip(), lines
            lines.append(line)

    def _note_urcs(self, lines):
        for line in lines:
            self._note_urc(line)

    def _note_urc(self, line):
        self.urcs.append((time.monotonic(), line))
        if len(self._status_urcs) < MAX_URCS:
            self._status_urcs.append(line)
        if line.strip().upper() in _RESTART_URCS:
            log.info("modem on %s restarted (%s)", self.port, line.strip())
            self._fixed.clear()
        else:
            log.debug("modem: %s", line)

    def _drain(self):
        """What arrived between commands: URCs (or a late answer) - noted."""
        for line in self._serial.drain():
            self._note_urc(line)

    def _after_reset(self):
        self._serial.discard()
        self._serial.close()


def _unquote(text):
    """'"abc"' -> 'abc'; a list of quoted fields stays as it is."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"' and text.count('"') == 2:
        return text[1:-1].strip()
    return text
