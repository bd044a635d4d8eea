"""IEC 61851-1 control pilot arithmetic, as pure functions.

The EVSE tells the EV how much current it may draw by the duty cycle of the
1 kHz +/-12 V pilot PWM:

    6 A .. 51 A    D% = A / 0.6            (10 % .. 85 %)
    51 A .. 80 A   D% = A / 2.5 + 64       (85 % .. 96 %)

and the EV reads 10..85 % as A = D x 0.6 and 85..96 % as A = (D - 64) x 2.5.
The two ranges do not meet: 85 % reads 51 A, but just above 85 % reads
52.5 A. No duty cycle signals a current between 51 A and 52.5 A, so such a
current gets 85 % (51 A), the most that does not exceed it (the second
formula would give e.g. 84.8 % for 52 A, which the EV reads as 50.88 A).
    0 A            no PWM: +12 V DC (100 %), "not offering"
    5 %            digital communication (ISO 15118) - no current offered by PWM

Offering less than 6 A or more than 80 A by PWM is not allowed by the
standard: duty_cycle_for_current() raises ValueError rather than clamping,
because a silently clamped offer would be more current than the caller
meant (below 6 A) or a duty cycle the EV must reject (above 80 A). A caller
whose limit falls below 6 A stops offering (0 A) instead.

Duty cycles and currents are rounded to 0.01, far finer than any pilot PWM
generator realises, so the results compare exactly (16 A -> 26.67 %).

The EV state is read from the positive level of the pilot:

    A +12 V  no EV          B +9 V  EV connected       C +6 V  charging
    D +3 V   charging, ventilation required            E 0 V   short / no power
    F -12 V  EVSE not available (fault)
"""

import math

DIGITAL_COMMUNICATION_DUTY = 5.0   # % : "use ISO 15118 digital communication"
NOT_OFFERING_DUTY = 100.0          # % : +12 V DC, no PWM

MIN_CURRENT_A = 6.0
BREAK_CURRENT_A = 51.0             # 85 % by the first formula
UPPER_RANGE_A = 52.5               # 85 % by the second formula
MAX_CURRENT_A = 80.0

MIN_CURRENT_DUTY = 10.0            # % for 6 A
BREAK_DUTY = 85.0                  # % for 51 A
MAX_CURRENT_DUTY = 96.0            # % for 80 A

# Nominal pilot levels (V) and the decision thresholds half way between them.
PILOT_VOLTS = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0, "E": 0.0, "F": -12.0}
_POSITIVE_BANDS = (   # (lowest volts, state), highest first
    (10.5, "A"),
    (7.5, "B"),
    (4.5, "C"),
    (1.5, "D"),
    (-1.5, "E"),
)
MAX_PLAUSIBLE_VOLTS = 13.5         # above: a measuring fault, not a pilot level
F_BAND = (-13.5, -10.5)            # -12 V +/- 1.5 V


def _number(value, what):
    if type(value) not in (int, float) or value != value or value in (math.inf, -math.inf):
        raise ValueError("%s must be a finite number, not %r" % (what, value))
    return float(value)


def duty_cycle_for_current(amps):
    """The PWM duty cycle (%) that offers `amps` (51 < amps <= 52.5: 85 %, i.e.
    51 A); 0 A -> 100.0 (+12 V DC, not offering). ValueError below 6 A (other
    than 0) and above 80 A."""
    a = _number(amps, "current")
    if a == 0:
        return NOT_OFFERING_DUTY
    if a < MIN_CURRENT_A or a > MAX_CURRENT_A:
        raise ValueError("a pilot can offer 0 A or 6 A to 80 A, not %s A" % (amps,))
    if a <= BREAK_CURRENT_A:
        duty = a / 0.6
    elif a <= UPPER_RANGE_A:
        duty = BREAK_DUTY            # 51 A: nothing between 51 A and 52.5 A can be signalled
    else:
        duty = a / 2.5 + 64.0
    return round(duty, 2)


def current_for_duty_cycle(percent):
    """The current (A) a duty cycle offers, or None when it offers none by PWM
    (5 % digital communication, 100 % DC, or any duty outside 10..96 %)."""
    d = _number(percent, "duty cycle")
    if MIN_CURRENT_DUTY <= d <= BREAK_DUTY:
        return round(d * 0.6, 2)
    if BREAK_DUTY < d <= MAX_CURRENT_DUTY:
        return round((d - 64.0) * 2.5, 2)
    return None


def state_for_pilot_voltage(volts):
    """The IEC 61851 state "A".."F" of a pilot level (the positive PWM level,
    or the DC level when not offering), or None when the reading fits no state
    (between 0 V and -12 V, or beyond +/-13.5 V: a measuring or wiring fault)."""
    v = _number(volts, "pilot voltage")
    if v > MAX_PLAUSIBLE_VOLTS:
        return None
    for lowest, state in _POSITIVE_BANDS:
        if v >= lowest:
            return state
    if F_BAND[0] <= v <= F_BAND[1]:
        return "F"
    return None
