"""An emulated LTE modem answering AT commands on a pseudo-terminal.

    modem = start_fake_modem(world)       # a Quectel EG25-G by default
    driver = AtModem(modem.port)
    ...
    driver.close(); modem.stop()

Its health comes from the simulated world's SimModem(world).status() (signal,
operator, ICCID, IMSI, IMEI), so the bench sees the same modem through
`--hal mock` and `--hal emulated`; world.fault("modem", "offline") makes it
silent (what it receives is lost), and AT+CFUN=1,1 counts a reset in the world
(SimModem.reset) and restarts it: silent for `reboot_seconds`, then "RDY",
"+CFUN: 1", "+CPIN: READY" and echo on again, like a real one.

It echoes commands until ATE0. Every `urc_every` commands (0 = never) it
puts an unsolicited result code before the answer, in turn: "+CEREG: 1",
'+QIND: "csq",<rssi>,99', "RING", '+CEREG: 5,"1A2B","01A2B3C4",7', to
exercise the driver's parser. The attributes below may be changed while it
runs (they are read under its lock):

    sim_present       False: +CPIN? -> +CME ERROR: 10, no IMSI/ICCID
    registered        False: +CEREG/+CREG stat 2 (searching), no operator
    roaming           True: stat 5
    iccid_commands    the ICCID commands this model knows (others: ERROR)
    iccid             the ICCID it reports (default SimModem.ICCID); one of 19
                      digits is padded with F by AT+QCCID, as Quectel does

`commands` lists every command line received; wait_commands() and
wait_booted() await conditions instead of sleeping.
"""

import threading
import time

from drivers.hal import DeviceError
from hal_mocks.pty_device import PtyDevice
from hal_mocks.sim import SimModem

ALL_ICCID_COMMANDS = ("AT+QCCID", "AT+CICCID", "AT+ICCID", "AT+CCID")
MAX_LINE = 1024


def dbm_to_csq(dbm):
    if dbm is None:
        return 99
    return max(0, min(31, int(round((dbm + 113) / 2.0))))


class FakeModem(PtyDevice):
    """See the module docstring; start_fake_modem() makes and starts one."""

    def __init__(self, world, model="EG25-G", manufacturer="Quectel",
                 firmware="EG25GGBR07A08M2G", sim_present=True, registered=True, roaming=False,
                 iccid_commands=ALL_ICCID_COMMANDS, iccid=None, urc_every=3, reboot_seconds=0.2):
        PtyDevice.__init__(self, "fake-modem")
        self.world = world
        self.sim = SimModem(world)
        self.model = model
        self.manufacturer = manufacturer
        self.firmware = firmware
        self.sim_present = sim_present
        self.registered = registered
        self.roaming = roaming
        self.iccid_commands = tuple(c.upper() for c in iccid_commands)
        self.iccid = iccid or SimModem.ICCID
        self.urc_every = urc_every
        self.reboot_seconds = reboot_seconds
        self.echo = True
        self.commands = []
        self.resets = 0
        self._cond = threading.Condition()
        self._buf = bytearray()
        self._count = 0
        self._urc_turn = 0
        self._booting_until = None
        self._booted = threading.Event()
        self._booted.set()

    # --- for tests (any thread) ---------------------------------------------------------------
    def wait_commands(self, predicate, timeout=5.0):
        with self._cond:
            return self._cond.wait_for(lambda: predicate(list(self.commands)), timeout)

    def wait_booted(self, timeout=5.0):
        """Wait until a restart (AT+CFUN=1,1) is over; False on timeout."""
        return self._booted.wait(timeout)

    # --- the emulation ----------------------------------------------------------------------
    def _offline(self):
        return self.world.snapshot()["faults"]["modem"] == "offline"

    def _out(self, *lines):
        self.send(b"".join(b"\r\n" + line.encode("ascii") + b"\r\n" for line in lines))

    def tick(self):
        with self._cond:
            if self._booting_until is None or time.monotonic() < self._booting_until:
                return
            self._booting_until = None
            self.echo = True
            self._out("RDY", "+CFUN: 1", "+CPIN: READY" if self.sim_present else
                      "+CPIN: NOT INSERTED", "+QUSIM: 1", "+QIND: SMS DONE")
            self._booted.set()

    def received(self, data):
        self._buf += data
        while True:
            end = self._buf.find(b"\r")
            if end < 0:
                if len(self._buf) > MAX_LINE:
                    del self._buf[:]
                return
            raw = bytes(self._buf[:end + 1])
            del self._buf[:end + 1]
            line = raw.decode("ascii", "replace").strip()
            if not line:
                continue
            with self._cond:
                if self._booting_until is not None or self._offline():
                    continue                  # nobody there: the command is lost
                if self.echo:
                    self.send(raw.lstrip(b"\n"))
                self.commands.append(line)
                self._cond.notify_all()
                self._count += 1
                if self.urc_every and self._count % self.urc_every == 0:
                    self._urc()
                self._answer(line)

    def _urc(self):
        turn = self._urc_turn % 4
        self._urc_turn += 1
        if turn == 0:
            self._out("+CEREG: 1")
        elif turn == 1:
            self._out('+QIND: "csq",%d,99' % dbm_to_csq(self._health().signal_dbm))
        elif turn == 2:
            self._out("RING")
        else:
            self._out('+CEREG: 5,"1A2B","01A2B3C4",7')

    def _health(self):
        if self._offline():
            return _Unknown()
        try:
            return self.sim.status()
        except DeviceError:       # went offline meanwhile
            return _Unknown()

    def _stat(self):
        if not self.sim_present:
            return 0
        if not self.registered:
            return 2
        return 5 if self.roaming else 1

    def _answer(self, line):
        cmd = line.upper()
        health = self._health()
        no_sim = "+CME ERROR: 10"
        if cmd in ("AT", "AT+CMEE=1", "AT+CMEE=2", "AT+CMEE=0"):
            self._out("OK")
        elif cmd in ("ATE0", "ATE1", "ATE"):
            self.echo = cmd == "ATE1"
            self._out("OK")
        elif cmd == "AT+CPIN?":
            self._out("+CPIN: READY", "OK") if self.sim_present else self._out(no_sim)
        elif cmd == "AT+CSQ":
            self._out("+CSQ: %d,99" % dbm_to_csq(health.signal_dbm), "OK")
        elif cmd == "AT+CEREG?":
            self._out("+CEREG: 0,%d" % self._stat(), "OK")
        elif cmd == "AT+CREG?":
            self._out("+CREG: 0,%d" % self._stat(), "OK")
        elif cmd == "AT+COPS?":
            if self._stat() in (1, 5) and health.operator:
                self._out('+COPS: 0,0,"%s",7' % health.operator, "OK")
            else:
                self._out("+COPS: 0", "OK")
        elif cmd in ALL_ICCID_COMMANDS:
            if cmd not in self.iccid_commands:
                self._out("ERROR")
            elif not self.sim_present:
                self._out(no_sim)
            else:
                self._out(self._iccid_line(cmd), "OK")
        elif cmd == "AT+CIMI":
            self._out(health.imsi, "OK") if self.sim_present else self._out(no_sim)
        elif cmd == "AT+CGSN":
            self._out(health.imei, "OK")
        elif cmd == "AT+CGMI":
            self._out(self.manufacturer, "OK")
        elif cmd == "AT+CGMM":
            self._out(self.model, "OK")
        elif cmd == "AT+CGMR":
            self._out(self.firmware, "OK")
        elif cmd == 'AT+QENG="SERVINGCELL"' and self.manufacturer == "Quectel":
            if self._stat() in (1, 5):
                self._out('+QENG: "servingcell","NOCONN","LTE","FDD",001,01,1A2D001,123,'
                          '1300,3,5,5,1A2B,-95,-10,-65,12,-', "OK")
            else:
                self._out('+QENG: "servingcell","SEARCH"', "OK")
        elif cmd == "AT+CFUN=1,1":
            self.sim.reset()              # counted before the OK: the driver may look at once
            self.resets += 1
            self._booted.clear()
            self._booting_until = time.monotonic() + self.reboot_seconds
            self._out("OK")
        else:
            self._out("ERROR")

    def _iccid_line(self, cmd):
        if cmd == "AT+QCCID":
            return "+QCCID: " + self.iccid + ("F" if len(self.iccid) % 2 else "")
        if cmd in ("AT+CICCID", "AT+ICCID"):
            return "+ICCID: " + self.iccid
        return "+CCID: " + self.iccid


class _Unknown:
    signal_dbm = None
    operator = None
    imsi = None
    imei = None


def start_fake_modem(world, model="EG25-G", **options):
    """Start an emulated modem on `world`; the handle has .port (the pty path for
    pyserial) and .stop(). Options: see FakeModem."""
    return FakeModem(world, model=model, **options).start()
