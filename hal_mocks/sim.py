"""The simulated bench: a small physical world and devices that implement
drivers/hal.py on top of it.

SimWorld holds what a bench tester could touch: the EV on each connector, its
demanded power, the contactor, the cable lock, the energy meter's register,
the RFID reader and the modem, and faults injected into any of them. The
simulated devices read and drive that world exactly as the real drivers read
and drive the hardware, failures included: an offline meter does not fail at
once, it blocks for its Modbus timeout and then raises DeviceError, like a
real RS-485 bus with nobody answering.

Threading: device methods are called from the firmware's device worker
threads and bench commands from the bench server's threads, so every access
to the world's state holds its one lock. A simulated timeout waits on an
event, outside the lock, that close() sets: no test and no shutdown hangs on
a fault.

Energy: the register is integrated lazily. Every change that can alter the
power flowing (EV state, offer, contactor, load, fault) first books the energy
at the old power up to now; a reading books it up to the reading. Power flows
only while the contacts are actually closed and the EV asks for it (state C
or D): min(EV demand, offered current x voltage x phases).
"""

import collections
import re
import threading
import time

from drivers.hal import (CableLock, ControlPilot, Contactor, DeviceError, EV_STATES, EnergyMeter,
                         Hal, INDICATOR_STATES, Indicator, Modem, ModemStatus, RfidReader,
                         TamperSwitch)
from ocpp_core.metering import (CURRENT_IMPORT, ENERGY_IMPORT_REGISTER, FREQUENCY, POWER_IMPORT,
                                 VOLTAGE, MeterSample)

DEVICES = ("meter", "rfid", "contactor", "lock", "modem", "pilot")

# The fault modes each device can be put in ("none" clears the fault).
FAULT_MODES = {
    "meter": ("none", "offline"),
    "rfid": ("none", "offline"),
    "contactor": ("none", "welded", "stuck"),
    "lock": ("none", "stuck"),
    "modem": ("none", "offline"),
    "pilot": ("none", "offline"),
}

MAX_POWER_W = 100000
INITIAL_ENERGY_WH = 1000.0
DEFAULT_EV_POWER_W = 7400
FREQUENCY_HZ = 50.0
# Per-phase deviation from the nominal voltage: a real grid is never exactly 230.0 V.
_PHASE_VOLTAGE_OFFSETS = (0.1, -0.2, 0.4)
MAX_QUEUED_TAPS = 100

_UID = re.compile(r"[0-9A-Za-z]{1,20}\Z")


def _is_number(value):
    t = type(value)
    return (t is int or t is float) and value == value and value not in (float("inf"),
                                                                        float("-inf"))


def _seconds(value):
    return "%s s" % (float(value),)


class _Connector:
    """The physical facts of one connector (guarded by the world's lock)."""

    def __init__(self, cid, now, energy_wh):
        self.id = cid
        self.ev_state = "A"
        self.ev_auto = False           # the simulated EV follows the offer by itself
        self.demand_w = DEFAULT_EV_POWER_W
        self.coil = False              # contactor coil command
        self.offered_a = 0.0
        self.lock_engaged = False
        self.energy_wh = float(energy_wh)
        self.booked_at = now           # clock time up to which energy_wh is integrated


class SimWorld:
    """The simulated physical world of one station (see the module docstring).

    initial_energy_wh: every meter's register at start (a real meter keeps its
    register across a power cut; a caller that wants that restores it here).

    Bench operations (plug, unplug, ev, tap, set_power, fault) raise ValueError
    with a one-line message on a bad argument; snapshot() returns the facts."""

    def __init__(self, number_of_connectors=1, fixed_cable=True, clock=time.monotonic, phases=3,
                 voltage=230.0, meter_timeout=1.0, modem_timeout=2.0,
                 initial_energy_wh=INITIAL_ENERGY_WH):
        if type(number_of_connectors) is not int or number_of_connectors < 1:
            raise ValueError("number_of_connectors must be an integer >= 1")
        if phases not in (1, 2, 3):
            raise ValueError("phases must be 1, 2 or 3")
        self.fixed_cable = bool(fixed_cable)
        self.clock = clock
        self.phases = phases
        self.voltage = float(voltage)
        self.meter_timeout = float(meter_timeout)
        self.modem_timeout = float(modem_timeout)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closed = threading.Event()
        now = clock()
        self._connectors = collections.OrderedDict(
            (cid, _Connector(cid, now, initial_energy_wh)) for cid in range(1, number_of_connectors + 1))
        self._faults = dict((device, "none") for device in DEVICES)
        self._taps = collections.deque(maxlen=MAX_QUEUED_TAPS)
        self._blocked = 0              # device calls waiting in a simulated timeout
        self._modem_resets = 0
        self._indicator = None
        self._tamper_open = False      # the enclosure's tamper contact
        self._tamper_openings = 0
        self.on_change = None          # called after a bench operation changed the world

    # --- helpers (caller holds the lock) -------------------------------------------------
    def _connector(self, cid):
        if type(cid) is not int or cid not in self._connectors:
            raise ValueError("unknown connector %r (this station has %s)" % (
                cid, "connector 1" if len(self._connectors) == 1 else
                "connectors 1..%d" % len(self._connectors)))
        return self._connectors[cid]

    def _contacts_closed(self, c):
        mode = self._faults["contactor"]
        if mode == "welded":
            return True     # welded: closed, whatever the coil does
        if mode == "stuck":
            return False    # stuck: the contacts never close
        return c.coil

    def _power(self, c):
        if not self._contacts_closed(c) or c.ev_state not in ("C", "D"):
            return 0.0
        available = c.offered_a * self.voltage * self.phases
        return float(max(0.0, min(c.demand_w, available)))

    def _book(self, c, now=None):
        """Integrate the energy at the present power up to now."""
        if now is None:
            now = self.clock()
        elapsed = now - c.booked_at
        if elapsed > 0:
            c.energy_wh += self._power(c) * elapsed / 3600.0
        c.booked_at = now

    def _book_all(self):
        now = self.clock()
        for c in self._connectors.values():
            self._book(c, now)

    def _follow_offer(self, c):
        """A real EV in auto mode: charges (C) while current is offered, else waits (B)."""
        if c.ev_auto and c.ev_state in ("B", "C"):
            c.ev_state = "C" if c.offered_a > 0 else "B"

    # --- what the simulated devices read and drive ----------------------------------------
    # Each call is one step under the lock; cid is a connector the device was built for.
    def check_connector(self, cid):
        """Raise ValueError unless this station has connector `cid`."""
        self._connector(cid)

    def fault_mode(self, device):
        """The fault mode `device` is in now ("none" when it works)."""
        with self._lock:
            return self._faults[device]

    def simulate_timeout(self, seconds):
        """Wait like a bus timeout; close() ends the wait early."""
        with self._lock:
            self._blocked += 1
            self._changed.notify_all()
        try:
            self._closed.wait(seconds)
        finally:
            with self._lock:
                self._blocked -= 1
                self._changed.notify_all()

    def next_tap(self):
        """Take the next card presented to the reader (None when there is none).
        Raises DeviceError while the reader is offline."""
        with self._lock:
            if self._faults["rfid"] == "offline":
                raise DeviceError("RFID reader does not answer (VersionReg 0x00)")
            return self._taps.popleft() if self._taps else None

    def meter_reading(self, cid):
        """(power in W, register in Wh) of connector `cid` now, energy booked up to now."""
        with self._lock:
            c = self._connectors[cid]
            self._book(c)
            return self._power(c), c.energy_wh

    def set_coil(self, cid, closed):
        """Energise (True) or release the contactor coil of connector `cid`."""
        with self._lock:
            c = self._connectors[cid]
            self._book(c)
            c.coil = bool(closed)

    def contacts_closed(self, cid):
        """Whether the contactor's contacts are actually closed (faults included)."""
        with self._lock:
            return self._contacts_closed(self._connectors[cid])

    def set_lock(self, cid, locked):
        """Drive the cable lock's bolt; a "stuck" lock stays where it is."""
        with self._lock:
            if self._faults["lock"] == "stuck":
                return
            self._connectors[cid].lock_engaged = bool(locked)

    def lock_engaged(self, cid):
        with self._lock:
            return self._connectors[cid].lock_engaged

    def pilot_state(self, cid):
        """The EV state (A..F) the control pilot reads on connector `cid`.
        Raises DeviceError while the pilot is offline."""
        with self._lock:
            if self._faults["pilot"] == "offline":
                raise DeviceError("control pilot does not answer (no reading from the pilot ADC)")
            return self._connectors[cid].ev_state

    def offer_current(self, cid, amps):
        """Set the current offered on the pilot (A); an EV in auto mode follows it.
        Raises DeviceError while the pilot is offline."""
        with self._lock:
            if self._faults["pilot"] == "offline":
                raise DeviceError("control pilot does not answer (PWM not confirmed)")
            c = self._connectors[cid]
            self._book(c)
            c.offered_a = float(amps)
            self._follow_offer(c)

    def record_modem_reset(self):
        with self._lock:
            self._modem_resets += 1

    def show_indicator(self, shown):
        """Record what the station's indicator shows now (a dict, in the snapshot)."""
        with self._lock:
            self._indicator = shown

    # --- bench operations -----------------------------------------------------------------
    @property
    def connector_ids(self):
        return tuple(self._connectors)

    def plug(self, cid):
        """Plug the cable into an EV: state B, and the EV follows the offer by itself."""
        with self._lock:
            c = self._connector(cid)
            self._book(c)
            c.ev_state = "B"
            c.ev_auto = True
            self._follow_offer(c)
            state = c.ev_state
        self._notify()
        return state

    def unplug(self, cid):
        """Unplug: state A."""
        with self._lock:
            c = self._connector(cid)
            self._book(c)
            c.ev_state = "A"
            c.ev_auto = False
        self._notify()
        return "A"

    def ev(self, cid, state):
        """Force the pilot state (IEC 61851 A..F); the EV stops following the offer
        by itself until the next plug."""
        if type(state) is not str or state.upper() not in EV_STATES:
            raise ValueError("EV state must be one of %s, not %r" % ("|".join(EV_STATES), state))
        with self._lock:
            c = self._connector(cid)
            self._book(c)
            c.ev_state = state.upper()
            c.ev_auto = False
        self._notify()
        return state.upper()

    def tap(self, uid):
        """Present a card once. Returns the idTag (upper case) and whether the reader
        can see it: a card tapped on an offline reader is lost, as in reality."""
        if type(uid) is not str or not _UID.match(uid):
            raise ValueError("uid must be 1 to 20 letters or digits (a card UID in hex, "
                             "like 04A1B2C3), not %r" % (uid,))
        id_tag = uid.upper()
        with self._lock:
            if self._faults["rfid"] != "none":
                return id_tag, False
            self._taps.append(id_tag)
            return id_tag, True

    def tamper(self, opened):
        """Open (True) or close (False) the enclosure: its tamper contact."""
        if type(opened) is not bool:
            raise ValueError("open must be true or false, not %r" % (opened,))
        with self._lock:
            if opened and not self._tamper_open:
                self._tamper_openings += 1
            self._tamper_open = opened
        self._notify()
        return opened

    def tamper_openings(self):
        with self._lock:
            return self._tamper_openings

    def set_power(self, cid, watts):
        """The power the EV draws when allowed (W, 0..100000)."""
        if not _is_number(watts) or not 0 <= watts <= MAX_POWER_W:
            raise ValueError("power_w must be a number of watts from 0 to %d, not %r"
                             % (MAX_POWER_W, watts))
        with self._lock:
            c = self._connector(cid)
            self._book(c)
            c.demand_w = watts
        self._notify()
        return watts

    def fault(self, device, mode):
        """Inject (or clear, with "none") a fault; it applies to every connector."""
        if device not in FAULT_MODES:
            raise ValueError("unknown device %r: choose one of %s" % (device, "|".join(DEVICES)))
        if device == "lock" and self.fixed_cable:
            raise ValueError("this station has a fixed cable: no lock")
        if mode not in FAULT_MODES[device]:
            raise ValueError("%s fault mode must be one of %s, not %r"
                             % (device, "|".join(FAULT_MODES[device]), mode))
        with self._lock:
            self._book_all()
            self._faults[device] = mode
            self._changed.notify_all()
        self._notify()
        return mode

    def _notify(self):
        if self.on_change is not None:
            self.on_change()

    def physical_state(self):
        """What outlives the controller (EV connections, demand, registers,
        faults): the bench keeps it across a firmware restart or kill -9."""
        with self._lock:
            self._book_all()
            return {"connectors": {str(cid): {"ev_state": c.ev_state, "ev_auto": c.ev_auto,
                                              "demand_w": c.demand_w,
                                              "energy_wh": c.energy_wh}
                                   for cid, c in self._connectors.items()},
                    "faults": dict(self._faults)}

    def restore(self, state):
        """Re-apply physical_state() after a restart (unknown entries ignored)."""
        with self._lock:
            for key, saved in (state.get("connectors") or {}).items():
                c = self._connectors.get(int(key)) if str(key).isdigit() else None
                if c is None:
                    continue
                if saved.get("ev_state") in EV_STATES:
                    c.ev_state = saved["ev_state"]
                c.ev_auto = bool(saved.get("ev_auto"))
                if _is_number(saved.get("demand_w")):
                    c.demand_w = saved["demand_w"]
                if _is_number(saved.get("energy_wh")):
                    c.energy_wh = float(saved["energy_wh"])
            for device, mode in (state.get("faults") or {}).items():
                if device in FAULT_MODES and mode in FAULT_MODES[device]:
                    self._faults[device] = mode

    def snapshot(self):
        """The facts a bench tester can see, keyed by connector id (int).
        contactor = the actual contacts (not the coil command)."""
        with self._lock:
            now = self.clock()
            connectors = {}
            for cid, c in self._connectors.items():
                self._book(c, now)
                connectors[cid] = {
                    "ev_state": c.ev_state,
                    "ev_auto": c.ev_auto,
                    "contactor": self._contacts_closed(c),
                    "coil": c.coil,
                    # A fixed cable is permanently attached to the station: it is as
                    # good as locked, and there is no lock to report.
                    "locked": True if self.fixed_cable else c.lock_engaged,
                    "energy_wh": round(c.energy_wh, 3),
                    "offered_a": c.offered_a,
                    "power_w": round(self._power(c), 1),
                    "ev_demand_w": c.demand_w,
                }
            return {
                "connectors": connectors,
                "faults": dict(self._faults),
                "fixed_cable": self.fixed_cable,
                "queued_taps": len(self._taps),
                "modem_resets": self._modem_resets,
                "indicator": dict(self._indicator) if self._indicator else None,
            }

    # --- lifecycle and diagnostics -----------------------------------------------------
    def blocked_calls(self):
        """How many device calls are waiting in a simulated timeout now."""
        with self._lock:
            return self._blocked

    def wait_blocked(self, count=1, timeout=5.0):
        """Wait until at least `count` device calls are blocked; False on timeout."""
        with self._lock:
            return self._changed.wait_for(lambda: self._blocked >= count, timeout)

    def close(self):
        """End every simulated timeout now, and every later one at once."""
        self._closed.set()

    @property
    def closed(self):
        return self._closed.is_set()


class SimTamper(TamperSwitch):
    """drivers.hal.TamperSwitch on the world's enclosure."""

    def __init__(self, world):
        self.world = world

    def openings(self):
        return self.world.tamper_openings()


class SimRfid(RfidReader):
    def __init__(self, world):
        self.world = world

    def poll(self):
        return self.world.next_tap()


class SimMeter(EnergyMeter):
    """Measures what an SDM630 does (the emulated HAL puts one on the wire)."""

    measurands = (ENERGY_IMPORT_REGISTER, POWER_IMPORT, CURRENT_IMPORT, VOLTAGE, FREQUENCY)

    def __init__(self, world, cid):
        world.check_connector(cid)
        self.world = world
        self.cid = cid

    def read(self):
        w = self.world
        if w.fault_mode("meter") == "offline":
            w.simulate_timeout(w.meter_timeout)
            raise DeviceError("meter did not answer (Modbus timeout %s)" % _seconds(w.meter_timeout))
        power, energy = w.meter_reading(self.cid)
        phases = w.phases
        per_phase_a = round(power / (w.voltage * phases), 3)
        return MeterSample(
            energy_wh=energy,
            power_w=round(power, 1),
            current_a=tuple(per_phase_a for _ in range(phases)),
            voltage_v=tuple(round(w.voltage + _PHASE_VOLTAGE_OFFSETS[i], 1) for i in range(phases)),
            frequency_hz=FREQUENCY_HZ)


class SimContactor(Contactor):
    def __init__(self, world, cid):
        world.check_connector(cid)
        self.world = world
        self.cid = cid

    def set(self, closed):
        self.world.set_coil(self.cid, closed)

    def feedback(self):
        return self.world.contacts_closed(self.cid)


class SimLock(CableLock):
    """A socket outlet's cable lock. Engages at once; with the fault "stuck" the
    bolt freezes where it is (it never engages, or never releases)."""

    actuation_time = 0.2

    def __init__(self, world, cid):
        if world.fixed_cable:
            raise ValueError("this station has a fixed cable: no lock")
        world.check_connector(cid)
        self.world = world
        self.cid = cid

    def set(self, locked):
        self.world.set_lock(self.cid, locked)

    def feedback(self):
        return self.world.lock_engaged(self.cid)


class SimPilot(ControlPilot):
    def __init__(self, world, cid):
        world.check_connector(cid)
        self.world = world
        self.cid = cid

    def ev_state(self):
        return self.world.pilot_state(self.cid)

    def set_offered_current(self, amps):
        if not _is_number(amps) or amps < 0:
            raise ValueError("offered current must be a number of amps >= 0, not %r" % (amps,))
        self.world.offer_current(self.cid, amps)


class SimModem(Modem):
    # Plausible identities: ICCID 19 digits + Luhn digit, IMSI of the ITU test
    # network (MCC 001, MNC 01), IMEI 14 digits + Luhn digit.
    ICCID = "89490200001234567892"
    IMSI = "001010123456789"
    IMEI = "352088110042172"

    def __init__(self, world):
        self.world = world

    def status(self):
        w = self.world
        if w.fault_mode("modem") == "offline":
            w.simulate_timeout(w.modem_timeout)
            raise DeviceError("modem does not answer (no reply to AT within %s)"
                              % _seconds(w.modem_timeout))
        return ModemStatus(signal_dbm=-71, registered=True, operator="Bench Telecom",
                           iccid=self.ICCID, imsi=self.IMSI, imei=self.IMEI, sim_ready=True,
                           model="SimModem LTE Cat 1", firmware="sim-1.0")

    def reset(self):
        self.world.record_modem_reset()


class SimIndicator(Indicator):
    """Records what it is asked to show (in the world's snapshot when it has one)."""

    def __init__(self, world=None):
        self.world = world
        self.last = None
        self._showing = threading.Lock()   # keeps `last` and the world's record in step

    def show(self, state, blink_repeat=1, intensity=50):
        if state not in INDICATOR_STATES:     # as a real indicator would refuse it
            raise ValueError("unknown indicator state %r: one of %s"
                             % (state, "|".join(INDICATOR_STATES)))
        shown = {"state": state, "blink_repeat": blink_repeat, "intensity": intensity}
        if self.world is None:
            self.last = shown
            return
        with self._showing:
            self.last = shown
            self.world.show_indicator(shown)


def make_hal(world):
    """A drivers.hal.Hal of simulated devices on `world` (hal.bench = world)."""
    connectors = {}
    for cid in world.connector_ids:
        connectors[cid] = {
            "meter": SimMeter(world, cid),
            "contactor": SimContactor(world, cid),
            "lock": None if world.fixed_cable else SimLock(world, cid),
            "pilot": SimPilot(world, cid),
        }
    return Hal(rfid=SimRfid(world), modem=SimModem(world), indicator=SimIndicator(world),
               connectors=connectors, bench=world, tamper=SimTamper(world))
