"""The hardware abstraction layer: one small interface per device.

Every device method may be slow or hang (a Modbus read that times out, an AT
command that never answers), so the firmware calls them only from a device's
own worker thread, never from the main loop. A device that cannot do its job
raises DeviceError; the firmware turns that into the OCPP errorCode of the
device (see ERROR_CODES) and recovers by itself when the device answers again.

Implementations: the real drivers in this package and hal_mocks.sim
(simulated, for the bench and the tests). Like gpiozero's pin factories, a
Hal bundles one implementation of each device.
"""

from ocpp_core.connector import EV_STATES  # noqa: F401 (the pilot's states; one list for all)
from ocpp_core.metering import ENERGY_IMPORT_REGISTER

# OCPP errorCode reported when a device fails, and on which connector
# ("station" = connector 0).
ERROR_CODES = {
    "rfid": ("ReaderFailure", "station"),
    "modem": ("WeakSignal", "station"),
    "meter": ("PowerMeterFailure", "connector"),
    "contactor": ("PowerSwitchFailure", "connector"),
    "lock": ("ConnectorLockFailure", "connector"),
    "pilot": ("EVCommunicationError", "connector"),
}


class DeviceError(Exception):
    """The device did not answer or answered nonsense; str(e) says what, in
    words a technician can act on."""


class RfidReader:
    def poll(self):
        """The idTag (upper-case hex UID) of a card newly presented since the last
        poll, or None. One tap is one presentation: a card left on the reader is
        not reported again until it has been away."""
        raise NotImplementedError


class EnergyMeter:
    # The OCPP 1.6 measurands read() delivers, in ocpp_core.metering's names
    # ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
    # "Voltage", "Frequency"): what the engine may offer the CSMS. Every meter
    # has the energy register; an implementation lists what else it measures.
    measurands = (ENERGY_IMPORT_REGISTER,)

    def read(self):
        """A ocpp_core.metering.MeterSample (energy_wh always set; power, per-phase
        current and voltage, frequency where the meter has them)."""
        raise NotImplementedError


class Contactor:
    def set(self, closed):
        """Drive the coil."""
        raise NotImplementedError

    def feedback(self):
        """The mirror contact: True when the main contacts are closed. Closed while
        commanded open = welded; open while commanded closed = failed to close."""
        raise NotImplementedError


class CableLock:
    actuation_time = 1.0   # s; the lock must confirm within this time

    def set(self, locked):
        raise NotImplementedError

    def feedback(self):
        """True when the lock confirms it is engaged."""
        raise NotImplementedError


class ControlPilot:
    def ev_state(self):
        """The IEC 61851 state seen on the pilot: "A" (no EV) .. "F" (EVSE fault)."""
        raise NotImplementedError

    def set_offered_current(self, amps):
        """Offer `amps` to the EV by the PWM duty cycle; 0 = not offering (+12 V DC)."""
        raise NotImplementedError


class ModemStatus:
    def __init__(self, signal_dbm=None, registered=False, operator=None, iccid=None,
                 imsi=None, imei=None, sim_ready=False, model=None, firmware=None):
        self.signal_dbm = signal_dbm
        self.registered = registered
        self.operator = operator
        self.iccid = iccid
        self.imsi = imsi
        self.imei = imei
        self.sim_ready = sim_ready
        self.model = model
        self.firmware = firmware

    def as_dict(self):
        return dict(self.__dict__)


WEAK_SIGNAL_DBM = -105   # at or below this, a cellular link is unreliable


class Modem:
    def status(self):
        """A ModemStatus (the OS owns the data link; we report its health)."""
        raise NotImplementedError

    def reset(self):
        """Power-cycle the modem (AT+CFUN=1,1 or a GPIO)."""
        raise NotImplementedError


# What an Indicator can show (firmware/main_loop.py maps each OCPP status to one).
# "refused" is shown for a few seconds after a card was refused, then the state again.
INDICATOR_STATES = ("available", "preparing", "charging", "suspended", "finishing",
                    "reserved", "unavailable", "faulted", "offline", "refused")


class Indicator:
    def show(self, state, blink_repeat=1, intensity=50):
        """Show the station state: one of INDICATOR_STATES ("available",
        "preparing", "charging", "suspended", "finishing", "reserved",
        "unavailable", "faulted", "offline", "refused"); intensity 0-100 % (LightIntensity),
        blink_repeat (BlinkRepeat)."""
        raise NotImplementedError


class TamperSwitch:
    """The enclosure's tamper contact (optional: Hal.tamper is None without one)."""

    def openings(self):
        """How many times the enclosure was opened since start (counted on the
        contact's edge, so an opening shorter than a poll is not missed).
        May raise DeviceError."""
        raise NotImplementedError


class Hal:
    """One implementation of each device. `connectors` maps connector id to
    {"meter", "contactor", "lock" (None for a fixed cable), "pilot"}; `tamper`
    is a TamperSwitch or None."""

    def __init__(self, rfid, modem, indicator, connectors, bench=None, tamper=None):
        self.tamper = tamper
        self.rfid = rfid
        self.modem = modem
        self.indicator = indicator
        self.connectors = connectors
        self.bench = bench       # the simulation's control object, when simulated
        self.on_close = []       # drivers and emulators to close, in order

    def meter_measurands(self):
        """The measurands the meter of every connector delivers (in the order of
        the first connector's meter): what the station as a whole can report."""
        meters = [devices["meter"] for _, devices in sorted(self.connectors.items())]
        return tuple(m for m in meters[0].measurands
                     if all(m in other.measurands for other in meters[1:]))

    def close(self):
        """Leave the hardware safe: every contactor open first, then each driver
        and emulator closed. Never raises."""
        for devices in self.connectors.values():
            try:
                devices["contactor"].set(False)
            except Exception:
                pass
        closers, self.on_close = self.on_close, []
        for close in closers:
            try:
                close()
            except Exception:
                pass
