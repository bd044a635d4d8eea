"""Meter readings -> OCPP 1.6 sampledValue entries, and clock-aligned timing.

Decisions (each one tested):

- Only what the sample holds is reported: a measurand the meter did not
  deliver (None, NaN or infinite) is left out, never invented; per-phase
  values are reported for the phases the station has and the meter measured.
- measurand and context are always written (explicit beats the defaults);
  format is left out (Raw is the default); location is left out for the
  connector's own readings (Outlet is the default) and written only where it
  differs: Temperature -> Body, SoC -> EV.
- Frequency carries NO unit: "Hertz" is not in the UnitOfMeasure of the 1.6
  specification, and while MeterValues.json lists it, StopTransaction.json
  (transactionData, where the same sampled values go) does not, so a Hertz
  value would break StopTransaction.req. unit is optional, and its default
  (Wh) applies only to Energy measurands.
- Energy.Active.Import.Register is an integer number of Wh, rounded down
  (never bill energy not yet measured; the same rounding as energy_register_wh,
  which meterStart/meterStop use).
- Values: power 1 decimal (W), currents 2 decimals (A), voltage 1 decimal (V),
  frequency 2 decimals, temperature 1 decimal (Celsius), SoC whole percent.
  Negative zero is written as zero.
- Current.Import per phase as L1, L2, L3; Voltage per phase as L1-N, L2-N,
  L3-N; Power.Active.Import, Current.Offered and Power.Offered without phase
  (totals; the offered current is the per-phase limit signalled to the EV).
  Power.Offered = offered current x nominal voltage x phases.
- Clock-aligned intervals (ClockAlignedDataInterval) start at 00:00:00 UTC:
  a charge point has no other time zone in OCPP 1.6. An interval that does not
  divide 86400 restarts at midnight (the last one of the day is shorter); an
  interval longer than a day aligns to midnight only.

Standard library only (portable to MicroPython).
"""

from ocpp_core.catalogue import ACTIONS

_SAMPLED_VALUE = ACTIONS["MeterValues"][2][1]["meterValue"][1][1]["sampledValue"][1]
MEASURANDS = _SAMPLED_VALUE[1]["measurand"][2]   # every 1.6 measurand

ENERGY_IMPORT_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"
CURRENT_IMPORT = "Current.Import"
VOLTAGE = "Voltage"
FREQUENCY = "Frequency"
TEMPERATURE = "Temperature"
SOC = "SoC"
CURRENT_OFFERED = "Current.Offered"
POWER_OFFERED = "Power.Offered"

DAY = 86400

_CURRENT_PHASES = ("L1", "L2", "L3")
_VOLTAGE_PHASES = ("L1-N", "L2-N", "L3-N")


class MeterSample:
    """One reading of the meter (and the EV). Every field may be None.
    current_a and voltage_v are per phase (L1, L2, L3), tuples or lists."""

    def __init__(self, energy_wh=None, power_w=None, current_a=None, voltage_v=None,
                 frequency_hz=None, temperature_c=None, soc_percent=None):
        self.energy_wh = energy_wh
        self.power_w = power_w
        self.current_a = current_a
        self.voltage_v = voltage_v
        self.frequency_hz = frequency_hz
        self.temperature_c = temperature_c
        self.soc_percent = soc_percent

    def _fields(self):
        return (self.energy_wh, self.power_w, self.current_a, self.voltage_v,
                self.frequency_hz, self.temperature_c, self.soc_percent)

    def __eq__(self, other):
        return isinstance(other, MeterSample) and self._fields() == other._fields()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return ("MeterSample(energy_wh=%r, power_w=%r, current_a=%r, voltage_v=%r, "
                "frequency_hz=%r, temperature_c=%r, soc_percent=%r)" % self._fields())


def _usable(value):
    """A finite int or float (not bool)."""
    t = type(value)
    if t is not int and t is not float:
        return False
    return value == value and value not in (float("inf"), float("-inf"))


def _fixed(value, decimals):
    text = ("%." + str(decimals) + "f") % value
    if text[0] == "-" and float(text) == 0:
        text = text[1:]
    return text


def energy_register_wh(energy_wh):
    """The integer Wh of a register reading (rounded down), or None."""
    if not _usable(energy_wh):
        return None
    whole = int(energy_wh)
    if whole > energy_wh:   # int() truncates toward zero; floor for negatives
        whole -= 1
    return whole


def _per_phase(values, phases):
    if values is None:
        return ()
    if _usable(values):
        values = (values,)
    n = min(phases, 3, len(values))
    return [(i, values[i]) for i in range(n) if _usable(values[i])]


def _entry(value, context, measurand, phase=None, location=None, unit=None):
    sv = {"value": value}
    if context is not None:
        sv["context"] = context
    sv["measurand"] = measurand
    if phase is not None:
        sv["phase"] = phase
    if location is not None:
        sv["location"] = location
    if unit is not None:
        sv["unit"] = unit
    return sv


def sampled_values(sample, measurands, context, phases=3, offered_current_a=None,
                   nominal_voltage_v=230.0):
    """sampledValue dicts for the requested measurands (in the order asked,
    each once), from what the sample holds. measurands: an iterable of names
    or a comma-separated string (a MeterValues*SampledData value). context:
    a ReadingContext or None (left out)."""
    if type(measurands) is str:
        measurands = [m.strip() for m in measurands.split(",") if m.strip()]
    out = []
    seen = []
    for m in measurands:
        if m in seen:
            continue
        seen.append(m)
        if m == ENERGY_IMPORT_REGISTER:
            wh = energy_register_wh(sample.energy_wh)
            if wh is not None:
                out.append(_entry(str(wh), context, m, unit="Wh"))
        elif m == POWER_IMPORT:
            if _usable(sample.power_w):
                out.append(_entry(_fixed(sample.power_w, 1), context, m, unit="W"))
        elif m == CURRENT_IMPORT:
            for i, amps in _per_phase(sample.current_a, phases):
                out.append(_entry(_fixed(amps, 2), context, m, phase=_CURRENT_PHASES[i], unit="A"))
        elif m == VOLTAGE:
            for i, volts in _per_phase(sample.voltage_v, phases):
                out.append(_entry(_fixed(volts, 1), context, m, phase=_VOLTAGE_PHASES[i], unit="V"))
        elif m == FREQUENCY:
            if _usable(sample.frequency_hz):
                out.append(_entry(_fixed(sample.frequency_hz, 2), context, m))
        elif m == TEMPERATURE:
            if _usable(sample.temperature_c):
                out.append(_entry(_fixed(sample.temperature_c, 1), context, m,
                                  location="Body", unit="Celsius"))
        elif m == SOC:
            if _usable(sample.soc_percent):
                out.append(_entry(_fixed(sample.soc_percent, 0), context, m,
                                  location="EV", unit="Percent"))
        elif m == CURRENT_OFFERED:
            if _usable(offered_current_a):
                out.append(_entry(_fixed(offered_current_a, 2), context, m, unit="A"))
        elif m == POWER_OFFERED:
            if _usable(offered_current_a) and _usable(nominal_voltage_v):
                watts = offered_current_a * nominal_voltage_v * phases
                out.append(_entry(_fixed(watts, 1), context, m, unit="W"))
        # any other measurand: this station does not measure it, so it is left out
    return out


def next_aligned(now_epoch, interval_s):
    """The first clock-aligned instant strictly after now_epoch (epoch seconds,
    an int): a multiple of interval_s counted from 00:00:00 UTC of the day,
    or the next midnight. interval_s <= 0 (or None) -> None."""
    if not interval_s or interval_s <= 0:
        return None
    interval = int(interval_s)
    if interval <= 0:
        return None
    day_start = int(now_epoch // DAY) * DAY
    k = int((now_epoch - day_start) // interval) + 1
    return min(day_start + k * interval, day_start + DAY)


def previous_aligned(epoch, interval_s):
    """The latest clock-aligned instant at or before epoch (the start of the
    interval epoch lies in), or None for interval_s <= 0."""
    if not interval_s or interval_s <= 0:
        return None
    interval = int(interval_s)
    if interval <= 0:
        return None
    day_start = int(epoch // DAY) * DAY
    return day_start + int((epoch - day_start) // interval) * interval


def is_aligned(epoch, interval_s, tolerance_s=0):
    """True when epoch is within tolerance_s of a clock-aligned instant."""
    start = previous_aligned(epoch, interval_s)
    if start is None:
        return False
    if epoch - start <= tolerance_s:
        return True
    return next_aligned(epoch, interval_s) - epoch <= tolerance_s


def measurand_supported(measurand, station_profile):
    """True when measurand is an OCPP 1.6 measurand this station can report."""
    return measurand in MEASURANDS and measurand in station_profile.meter_measurands


def parse_measurands(text, station_profile):
    """A MeterValuesSampledData-style comma-separated list -> tuple of
    measurands, or None when any item is empty, unknown or unsupported (the
    ChangeConfiguration.req is then Rejected). "" -> ()."""
    if type(text) is not str:
        return None
    if not text.strip():
        return ()
    items = [item.strip() for item in text.split(",")]
    for item in items:
        if not measurand_supported(item, station_profile):
            return None
    return tuple(items)
