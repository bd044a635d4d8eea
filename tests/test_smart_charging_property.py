"""The composite schedule (ocpp_core/smart_charging/schedule.py) against a
deliberately simple reference written here: for every second of the window,
the rules of OCPP 1.6 3.13 evaluated from scratch, with the readings
ocpp_core/smart_charging documents (stacking by stackLevel, a profile whose
schedule is not active at the instant gives way to the next lower one,
TxProfile over TxDefaultProfile, a connector's TxDefaultProfile over
connector 0's at the same stackLevel, capped by ChargePointMaxProfile and the
station's maximum; Recurring not before its first startSchedule; Relative from
the transaction's start, or from the window's start without one).

Random stacks of profiles of every purpose, kind and unit; random windows.
"""

from hypothesis import given, settings, strategies as st

from ocpp_core.smart_charging import parse, schedule
from ocpp_core.timestamps import format_utc

T0 = 1795000000          # a whole second in 2026
VOLTS, PHASES, MAX_A = 230.0, 3, 32.0
CYCLE = {"Daily": 86400, "Weekly": 604800}


@st.composite
def a_profile(draw, pid):
    purpose = draw(st.sampled_from(["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"]))
    kinds = ["Absolute", "Recurring"] if purpose == "ChargePointMaxProfile" else \
        ["Absolute", "Recurring", "Relative"]
    kind = draw(st.sampled_from(kinds))
    connector = 0 if purpose == "ChargePointMaxProfile" else \
        (1 if purpose == "TxProfile" else draw(st.sampled_from([0, 1])))
    unit = draw(st.sampled_from(["A", "W"]))
    n = draw(st.integers(1, 4))
    gaps = draw(st.lists(st.integers(1, 900), min_size=n - 1, max_size=n - 1))
    starts = [0]
    for g in gaps:
        starts.append(starts[-1] + g)
    limits = draw(st.lists(st.integers(0, 40 if unit == "A" else 30000), min_size=n,
                           max_size=n))
    sched = {"chargingRateUnit": unit,
             "chargingSchedulePeriod": [{"startPeriod": s, "limit": float(l)}
                                        for s, l in zip(starts, limits)]}
    if draw(st.booleans()):
        sched["duration"] = draw(st.integers(1, 4000))
    raw = {"chargingProfileId": pid, "stackLevel": draw(st.integers(0, 1)),
           "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
           "chargingSchedule": sched}
    if kind == "Recurring":
        raw["recurrencyKind"] = draw(st.sampled_from(["Daily", "Weekly"]))
        sched["startSchedule"] = format_utc(T0 + draw(st.integers(-8 * 86400, 3000)))
    elif kind == "Absolute":
        sched["startSchedule"] = format_utc(T0 + draw(st.integers(-3000, 3000)))
    if draw(st.booleans()):
        raw["validFrom"] = format_utc(T0 + draw(st.integers(-2000, 2000)))
    if draw(st.booleans()):
        raw["validTo"] = format_utc(T0 + draw(st.integers(2001, 6000)))
    return connector, raw


@st.composite
def a_stack(draw):
    n = draw(st.integers(0, 6))
    return [draw(a_profile(i + 1)) for i in range(n)]


# --- the reference: one second at a time, from the rules ------------------------------------
def ref_seconds(text):
    from ocpp_core.timestamps import parse_rfc3339
    return None if text is None else parse_rfc3339(text)


def ref_profile_limit(connector, raw, t, rel_start):
    if raw.get("validFrom") and t < ref_seconds(raw["validFrom"]):
        return None
    if raw.get("validTo") and t >= ref_seconds(raw["validTo"]):
        return None
    s = raw["chargingSchedule"]
    if raw["chargingProfileKind"] == "Relative":
        begin = rel_start
    else:
        begin = ref_seconds(s["startSchedule"])
        if t < begin:
            return None
        if raw["chargingProfileKind"] == "Recurring":
            cycle = CYCLE[raw["recurrencyKind"]]
            while begin + cycle <= t:
                begin += cycle
    if t < begin:
        return None
    if "duration" in s and t - begin >= s["duration"]:
        return None
    limit = None
    for period in s["chargingSchedulePeriod"]:
        if begin + period["startPeriod"] <= t:
            limit = period["limit"]
    if limit is None:
        return None
    if s["chargingRateUnit"] == "W":
        return limit / (VOLTS * PHASES)
    return limit


def ref_limit(stack, t, rel_start):
    def winner(purpose, connectors):
        best = None    # (stackLevel, specific, limit)
        for connector, raw in stack:
            if raw["chargingProfilePurpose"] != purpose or connector not in connectors:
                continue
            limit = ref_profile_limit(connector, raw, t, rel_start)
            if limit is None:
                continue
            rank = (raw["stackLevel"], connector != 0)
            if best is None or rank > best[0]:
                best = (rank, limit)
        return None if best is None else best[1]

    result = MAX_A
    tx = winner("TxProfile", (1,))
    if tx is None:
        tx = winner("TxDefaultProfile", (0, 1))
    if tx is not None and tx < result:
        result = tx
    cap = winner("ChargePointMaxProfile", (0,))
    if cap is not None and cap < result:
        result = cap
    return result


@settings(derandomize=True, max_examples=250, deadline=None)
@given(stack=a_stack(), offset=st.integers(-1000, 3000), duration=st.integers(1, 2400),
       tx_before=st.one_of(st.none(), st.integers(0, 3000)))
def test_composite_equals_the_reference_at_every_second(stack, offset, duration, tx_before):
    a = T0 + offset
    rel_start = a if tx_before is None else a - tx_before
    profiles = [parse(connector, raw, anchor=T0) for connector, raw in stack]
    elec = schedule.Electrical(VOLTS, PHASES, False, MAX_A, 1)
    segments = schedule.composite(profiles, 1, float(a), float(a + duration), rel_start, elec)
    assert segments[0][0] == a
    for (t1, l1), (t2, l2) in zip(segments, segments[1:]):
        assert t1 < t2 and l1 != l2, "periods are merged where the limit does not change"
    i = 0
    for k in range(duration):
        t = a + k
        while i + 1 < len(segments) and segments[i + 1][0] <= t:
            i += 1
        assert segments[i][1] == ref_limit(stack, t, rel_start), (k, segments)
