"""Charging profiles as numbers, and the composite limit they make (OCPP 1.6
Edition 2 with errata v4.0, sections 3.13, 5.7, 7.8-7.10). Pure functions on
plain dicts: no clock, no store, no charge point.

A profile, parsed (`parse()`), is a dict:
    id, connector_id, purpose, stack, kind, recurrency, valid_from, valid_to,
    start (epoch s or None), duration (s or None), unit "A"|"W",
    periods [(startPeriod, limit, numberPhases or None), ...], tx_key
Times are epoch seconds (wall clock); limits are converted to amps per phase
with the station's electrical facts, `Electrical(voltage, phases, switch)`.

Readings of the spec chosen here (also in ocpp_core/smart_charging/__init__.py):
- Stacking (3.13.2): within a purpose, the valid profile with the highest
  stackLevel whose schedule is active at the instant wins; when its schedule is
  not active then (before startSchedule, after `duration`, outside validFrom /
  validTo) the next lower stackLevel applies. For TxDefaultProfile the
  connector's own profiles and those of connector 0 form one stack; at the same
  stackLevel the connector's own profile wins (the more specific one).
- TxProfile overrides TxDefaultProfile (3.13.1) wherever a TxProfile is active;
  the result is capped by ChargePointMaxProfile and by the station's own
  maximum current ("local limits", 5.7). With several connectors the
  ChargePointMaxProfile (a limit for the whole Charge Point) is shared equally
  and statically between them: never more than the grid limit in total.
- Recurring (7.8 recurrencyKind): the schedule restarts every day / week at
  startSchedule and is not in effect before the first startSchedule.
- Relative (7.8): the schedule starts at the transaction's start, or at the
  start of the evaluated window when there is no transaction.
- A W limit becomes amps per phase by W / (voltage x phases), phases being the
  station's (the connector cannot switch from 3 to 1 phase:
  ConnectorSwitch3to1PhaseSupported false); with the switch supported, a
  period's numberPhases (default 3, 7.9) is used when lower.
"""

DAY = 86400
WEEK = 7 * DAY
CYCLES = {"Daily": DAY, "Weekly": WEEK}
PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")


class Electrical:
    def __init__(self, voltage_v=230.0, phases=3, switch_3to1=False, max_current_a=32.0,
                 connectors=1):
        self.voltage_v = float(voltage_v)
        self.phases = int(phases)
        self.switch_3to1 = bool(switch_3to1)
        self.max_current_a = float(max_current_a)
        self.connectors = int(connectors)

    def phases_for(self, number_phases):
        if self.switch_3to1 and number_phases is not None:
            return max(1, min(int(number_phases), self.phases))
        return self.phases

    def to_amps(self, limit, unit, number_phases=None):
        if unit == "W":
            return float(limit) / (self.voltage_v * self.phases_for(number_phases))
        return float(limit)

    def from_amps(self, amps, unit):
        if unit == "W":
            return amps * self.voltage_v * self.phases
        return amps


def schedule_start(p, t, rel_start):
    """Where p's schedule (the cycle in effect at t, for Recurring) starts, or None."""
    kind = p["kind"]
    if kind == "Relative":
        return rel_start
    if kind == "Recurring":
        cycle = CYCLES[p["recurrency"]]
        if t < p["start"]:
            return None
        return p["start"] + ((t - p["start"]) // cycle) * cycle
    return p["start"]


def profile_limit(p, t, rel_start, elec):
    """p's limit at t in amps per phase, or None when p is not in effect then."""
    if p["valid_from"] is not None and t < p["valid_from"]:
        return None
    if p["valid_to"] is not None and t >= p["valid_to"]:
        return None
    s = schedule_start(p, t, rel_start)
    if s is None or t < s:
        return None
    off = t - s
    if p["duration"] is not None and off >= p["duration"]:
        return None
    found = None
    for period in p["periods"]:
        if period[0] <= off:
            found = period
        else:
            break
    if found is None:
        return None
    return elec.to_amps(found[1], p["unit"], found[2])


def _stack_order(profiles, connector_id):
    """Profiles of each purpose that apply to connector_id, best first."""
    out = {}
    for purpose in PURPOSES:
        out[purpose] = []
    for p in profiles:
        purpose = p["purpose"]
        if purpose == "ChargePointMaxProfile":
            ok = p["connector_id"] == 0
        elif purpose == "TxDefaultProfile":
            ok = p["connector_id"] in (0, connector_id)
        else:
            ok = p["connector_id"] == connector_id and connector_id != 0
        if ok:
            out[purpose].append(p)
    for purpose in PURPOSES:
        out[purpose].sort(key=lambda p: (-p["stack"], 0 if p["connector_id"] else 1))
    return out


def _best(ordered, t, rel_start, elec):
    for p in ordered:
        limit = profile_limit(p, t, rel_start, elec)
        if limit is not None:
            return limit
    return None


def limit_at(ordered, connector_id, t, rel_start, elec):
    """The composite limit (amps per phase) of connector_id at t; `ordered`
    from _stack_order. Connector 0: the Charge Point as a whole (its
    ChargePointMaxProfile, capped by every connector at its maximum)."""
    cpmax = _best(ordered["ChargePointMaxProfile"], t, rel_start, elec)
    if connector_id == 0:
        cap = elec.max_current_a * elec.connectors
        return cap if cpmax is None else min(cpmax, cap)
    limit = elec.max_current_a
    tx = _best(ordered["TxProfile"], t, rel_start, elec)
    if tx is None:
        tx = _best(ordered["TxDefaultProfile"], t, rel_start, elec)
    if tx is not None:
        limit = min(limit, tx)
    if cpmax is not None:
        limit = min(limit, cpmax / elec.connectors)
    return limit


def breakpoints(p, a, b, rel_start):
    """The instants in (a, b) where p's contribution may change."""
    out = []
    for t in (p["valid_from"], p["valid_to"]):
        if t is not None:
            out.append(t)
    if p["kind"] == "Recurring":
        cycle = CYCLES[p["recurrency"]]
        first = max(p["start"], schedule_start(p, a, rel_start) or p["start"])
        starts = []
        s = first
        while s < b:
            starts.append(s)
            s += cycle
    else:
        starts = [schedule_start(p, a, rel_start)]
    for s in starts:
        if s is None:
            continue
        out.append(s)
        for period in p["periods"]:
            out.append(s + period[0])
        if p["duration"] is not None:
            out.append(s + p["duration"])
    return [t for t in out if a < t < b]


def composite(profiles, connector_id, a, b, rel_start, elec, whole_seconds=True):
    """[(t, amps)] from a to b, merged where the limit does not change. With
    whole_seconds, each change is placed at the first whole second (relative to
    a) at or after it, as GetCompositeSchedule's integer startPeriod needs."""
    ordered = _stack_order(profiles, connector_id)
    points = set()
    for purpose in PURPOSES:
        for p in ordered[purpose]:
            for t in breakpoints(p, a, b, rel_start):
                if whole_seconds:
                    off = t - a
                    k = int(off)
                    t = a + (k if k == off else k + 1)
                if a < t < b:
                    points.add(t)
    out = []
    for t in [a] + sorted(points):
        limit = limit_at(ordered, connector_id, t, rel_start, elec)
        if not out or out[-1][1] != limit:
            out.append((t, limit))
    return out


def next_change(profiles, connector_id, now, horizon, rel_start):
    """Seconds from now to the next instant (within horizon) where a profile of
    connector_id may change the limit; None when none."""
    ordered = _stack_order(profiles, connector_id)
    best = None
    for purpose in PURPOSES:
        for p in ordered[purpose]:
            for t in breakpoints(p, now, now + horizon, rel_start):
                if best is None or t < best:
                    best = t
    return None if best is None else best - now
