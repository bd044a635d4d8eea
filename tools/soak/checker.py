"""The invariants, judged from the CSMS's ordered log across all connections
(tools/soak/csms.py describes its entries) and from what the station's own trace
says it sent (station_sent: [(action, payload)], every life of the process).

check(log, station_sent=(), tolerate=()) -> Verdict: .results [(name, ok, detail)]
and .figures (lost, duplicated, reordered, crashes, max response time...).

Readings chosen where the issue is silent:
- A transaction message is identified by its content (the station builds it the
  same way each time it sends it): StartTransaction by connector, idTag,
  timestamp, meterStart; StopTransaction by transactionId, timestamp, meterStop
  and reason (another of these is a second stop); MeterValues by
  connector, transactionId and its meterValue list.
- "Duplicated": received again after the CSMS had answered it with a CALLRESULT.
  Each is labelled with its window: "kill" when the station was killed after that
  answer and before it sent any other CALL on that connection, "link" when the
  connection ended there, none when the station had sent a next CALL (one
  outstanding CALL at a time, OCPP-J 4.1.1: a next CALL proves the answer was
  read). All fail the invariant, except that `tolerate` lists actions whose
  re-sends in the window of a kill that came at most ACK_WINDOW_S after the
  answer do not: the station may have died between the answer's arrival and
  its write to the journal (issue 15's known MeterValues duplicate is one of
  these). Those are still counted and listed.
- "Lost": a transaction message the station's trace shows sent that the CSMS
  never acknowledged by the end, a transaction never stopped, or a physical
  session the bench showed charging with no StartTransaction for its idTag.
- "Reordered": a MeterValues of a transaction whose samples are older than one
  received before it, or any message of a transaction after its StopTransaction.
- A CALL from the CSMS with a recoverable id must be answered within 5 s unless
  its connection closed or the station was killed within those 5 s (unjudged).
"""

import json

from ocpp_core.catalogue import ACTIONS
from ocpp_core.timestamps import parse_rfc3339
from ocpp_core.validation import first_violation

ANSWER_WITHIN_S = 5.0
ACK_WINDOW_S = 0.5      # a kill this soon after an answer may beat the station's write of it
TX_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")
# OCPP-J 1.6 4.2.3's codes ("Occurence" as the spec spells it; the correct spelling too)
CALLERROR_CODES = ("NotImplemented", "NotSupported", "InternalError", "ProtocolError",
                   "SecurityError", "FormationViolation", "PropertyConstraintViolation",
                   "OccurenceConstraintViolation", "OccurrenceConstraintViolation",
                   "TypeConstraintViolation", "GenericError")

INVARIANTS = (
    "every transaction stopped exactly once",
    "no message for an unknown transaction id",
    "no physical session started twice",
    "meterStop >= meterStart and every reading",
    "readings non-decreasing",
    "messages of a transaction in order",
    "no transaction message lost",
    "no transaction message duplicated",
    "no crash",
    "every CALL answered within 5 s",
    "nothing but BootNotification before Accepted",
)



def content_key(action, payload):
    if not isinstance(payload, dict):
        return (action, json.dumps(payload, sort_keys=True))
    if action == "StartTransaction":
        return (action, payload.get("connectorId"), payload.get("idTag"),
                payload.get("timestamp"), payload.get("meterStart"))
    if action == "StopTransaction":
        return (action, payload.get("transactionId"), payload.get("timestamp"),
                payload.get("meterStop"), payload.get("reason"))
    return (action, payload.get("connectorId"), payload.get("transactionId"),
            json.dumps(payload.get("meterValue"), sort_keys=True))


def _wh(sampled):
    """Energy.Active.Import.Register in Wh from one sampledValue, or None."""
    if sampled.get("measurand", "Energy.Active.Import.Register") != \
            "Energy.Active.Import.Register":
        return None
    try:
        value = float(sampled["value"])
    except (KeyError, ValueError, TypeError):
        return None
    return value * 1000 if sampled.get("unit") == "kWh" else value


def readings(meter_values):
    """[(time, Wh)] of a meterValue list."""
    out = []
    for mv in meter_values or ():
        try:
            t = parse_rfc3339(mv["timestamp"])
        except Exception:
            t = None
        for sv in mv.get("sampledValue", ()):
            wh = _wh(sv)
            if wh is not None:
                out.append((t, wh))
    return out


class Verdict:
    def __init__(self):
        self.results = []
        self.figures = {}
        self.failures = {}       # invariant -> [detail lines]
        self.notes = []          # tolerated, labelled

    def fail(self, name, detail):
        self.failures.setdefault(name, []).append(detail)

    @property
    def passed(self):
        return sum(1 for _, ok, _ in self.results if ok)

    @property
    def failed(self):
        return sum(1 for _, ok, _ in self.results if not ok)


def check(log, station_sent=(), tolerate=()):
    v = Verdict()
    answers = {}                # (conn, id) -> index of the CSMS's answer (tx 3/4)
    station_answers = {}        # (conn, id) -> [index of station rx 3/4]
    for i, e in enumerate(log):
        m = e.get("msg")
        if not (isinstance(m, list) and len(m) >= 2 and m[0] in (3, 4)) or e.get("failed"):
            continue
        if e["kind"] == "tx":
            answers.setdefault((e["conn"], m[1]), i)
        elif e["kind"] == "rx":
            station_answers.setdefault((e["conn"], m[1]), []).append(i)

    issued = {}                 # transactionId -> start payload
    starts_by_tag = {}          # idTag -> set of start content keys
    stops = {}                  # transactionId -> [stop content keys received, distinct]
    tx_readings = {}            # transactionId -> [(t, Wh)]
    last_sample = {}            # transactionId -> latest sample time received
    stopped = set()
    acked = {}                  # content key -> index of the first CALLRESULT
    seen = set()
    duplicated = reordered = 0
    widest = 0.0                # the latest kill after an answer that still caused a re-send
    tolerated = []
    booted = True
    boot_ids = set()
    crashes = 0
    sessions_seen = []
    max_response = 0.0
    unjudged = 0
    judged = 0

    def gone_within_5s(conn, a):
        """Was the station killed, or the connection of entry a closed, within 5 s?"""
        limit = log[a]["t"] + ANSWER_WITHIN_S
        for e in log[a + 1:]:
            if e["t"] > limit:
                break
            if e["kind"] == "kill" or (e["kind"] == "close" and e.get("conn") == conn):
                return True
        return False

    def window_of(conn, a, b):
        """What ended the connection of the CALLRESULT at a before the station showed it
        had read it (its next CALL): ("kill", seconds after the answer), ("link", s), or
        (None, None): it had read it."""
        for e in log[a + 1:b]:
            if e["kind"] == "kill":
                return "kill", e["t"] - log[a]["t"]
            if e["kind"] == "close" and e.get("conn") == conn:
                return "link", e["t"] - log[a]["t"]
            if e["kind"] == "rx" and e.get("conn") == conn and isinstance(e.get("msg"), list) \
                    and e["msg"][:1] == [2]:
                return None, None
        return None, None

    for i, e in enumerate(log):
        kind = e["kind"]
        if kind in ("exit", "traceback"):
            crashes += 1
            v.fail("no crash", e.get("detail", kind))
            continue
        if kind == "spawn":
            booted = False
            continue
        if kind == "session_seen":
            sessions_seen.append(e)
            continue
        if kind == "tx" and e.get("failed"):
            continue
        if kind == "tx":
            m = e.get("msg")
            if e.get("expect"):
                judged += 1
                got = None
                for j in station_answers.get((e["conn"], e["expect"]), ()):
                    if j > i:
                        got = j
                        break
                if got is None:
                    if gone_within_5s(e["conn"], i) or log[-1]["t"] - e["t"] < ANSWER_WITHIN_S:
                        unjudged += 1
                        judged -= 1
                    else:
                        v.fail("every CALL answered within 5 s", "no answer to %s"
                               % e.get("text", "")[:120])
                    continue
                dt = log[got]["t"] - e["t"]
                if dt > ANSWER_WITHIN_S and gone_within_5s(e["conn"], i):
                    unjudged += 1
                    judged -= 1
                    continue
                max_response = max(max_response, dt)
                a = log[got]["msg"]
                if dt > ANSWER_WITHIN_S:
                    v.fail("every CALL answered within 5 s", "answered after %.1f s: %s"
                           % (dt, e.get("text", "")[:120]))
                elif a[0] == 4 and not (len(a) == 5 and a[2] in CALLERROR_CODES
                                        and isinstance(a[3], str) and isinstance(a[4], dict)):
                    v.fail("every CALL answered within 5 s", "invalid CALLERROR %r" % (a,))
                elif a[0] == 3 and not (len(a) == 3 and isinstance(a[2], dict)):
                    v.fail("every CALL answered within 5 s", "invalid CALLRESULT %r" % (a,))
                elif a[0] == 3 and isinstance(m, list) and len(m) == 4 and m[2] in ACTIONS:
                    bad = first_violation(ACTIONS[m[2]][3], a[2])
                    if bad is not None:
                        v.fail("every CALL answered within 5 s", "CALLRESULT to %s breaks its "
                               "schema: %s" % (m[2], bad.description()))
            elif isinstance(m, list) and len(m) == 3 and m[0] == 3 and m[1] in boot_ids \
                    and isinstance(m[2], dict) and m[2].get("status") == "Accepted":
                booted = True
            continue
        if kind != "rx":
            continue
        m = e.get("msg")
        if not (isinstance(m, list) and len(m) == 4 and m[0] == 2):
            continue
        action, payload = m[2], m[3]
        if action == "BootNotification":
            booted = False
            boot_ids.add(m[1])
            continue
        if not booted:
            v.fail("nothing but BootNotification before Accepted",
                   "%s before the BootNotification was accepted" % action)
        if action not in TX_ACTIONS or not isinstance(payload, dict):
            continue
        key = content_key(action, payload)
        ans = answers.get((e["conn"], m[1]))
        ok_ans = ans is not None and log[ans]["msg"][0] == 3
        if key in acked and acked[key] < i:
            duplicated += 1
            a = acked[key]
            window, after = window_of(log[a]["conn"], a, i)
            if window is None:
                why = "the station had read it"
            else:
                why = "%s %.0f ms after it, before the station's next CALL" % (
                    "killed" if window == "kill" else "link lost", after * 1000)
            what = "%s %s re-sent after its CALLRESULT (%s)" % (action, _short(payload), why)
            if window == "kill":
                widest = max(widest, after)
            if window == "kill" and after <= ACK_WINDOW_S and action in tolerate:
                tolerated.append(what)
            else:
                v.fail("no transaction message duplicated", what)
            continue            # judged once, at its first delivery
        if ok_ans:
            acked.setdefault(key, ans)
        if action == "StartTransaction":
            starts_by_tag.setdefault(payload.get("idTag"), set()).add(key)
            if ok_ans and isinstance(log[ans]["msg"][2], dict):
                tid = log[ans]["msg"][2].get("transactionId")
                issued.setdefault(tid, payload)
                tx_readings.setdefault(tid, [])
            continue
        if key in seen:
            continue            # a re-send of one never acknowledged: fine
        seen.add(key)
        tx_id = payload.get("transactionId")
        if tx_id is None:
            continue            # MeterValues outside a transaction
        if tx_id not in issued:
            v.fail("no message for an unknown transaction id",
                   "%s for transaction %r, never issued" % (action, tx_id))
            continue
        if tx_id in stopped:
            reordered += 1
            v.fail("messages of a transaction in order",
                   "%s of transaction %s after its StopTransaction" % (action, tx_id))
        r = readings(payload.get("meterValue") if action == "MeterValues"
                     else payload.get("transactionData"))
        tx_readings[tx_id].extend(r)
        if action == "MeterValues":
            times = [t for t, _ in r if t is not None]
            if times:
                if tx_id in last_sample and min(times) < last_sample[tx_id]:
                    reordered += 1
                    v.fail("messages of a transaction in order",
                           "MeterValues of transaction %s older than one before it" % tx_id)
                last_sample[tx_id] = max(times + [last_sample.get(tx_id, times[0])])
        else:
            stops.setdefault(tx_id, []).append(payload)
            stopped.add(tx_id)

    # --- after the whole log ---------------------------------------------------------------
    lost = 0
    for tid, start in sorted(issued.items(), key=lambda kv: str(kv[0])):
        got = stops.get(tid, [])
        if not got:
            lost += 1
            v.fail("every transaction stopped exactly once", "transaction %s never stopped" % tid)
        elif len(got) > 1:
            v.fail("every transaction stopped exactly once", "transaction %s stopped %d times"
                   % (tid, len(got)))
        meter_start = start.get("meterStart")
        values = [wh for _, wh in tx_readings.get(tid, [])]
        for stop in got[:1]:
            meter_stop = stop.get("meterStop")
            if isinstance(meter_start, (int, float)) and isinstance(meter_stop, (int, float)):
                if meter_stop < meter_start or (values and meter_stop < max(values) - 0.5):
                    v.fail("meterStop >= meterStart and every reading",
                           "transaction %s: meterStart %s, meterStop %s, highest reading %s"
                           % (tid, meter_start, meter_stop, max(values) if values else "-"))
        timed = sorted((t, wh) for t, wh in tx_readings.get(tid, []) if t is not None)
        floor = meter_start if isinstance(meter_start, (int, float)) else None
        for t, wh in timed:
            if floor is not None and wh < floor - 0.5:
                v.fail("readings non-decreasing", "transaction %s: %s Wh after %s Wh"
                       % (tid, wh, floor))
                break
            floor = wh if floor is None else max(floor, wh)
    for tag, keys in starts_by_tag.items():
        if len(keys) > 1:
            v.fail("no physical session started twice", "idTag %s started %d transactions"
                   % (tag, len(keys)))
    started_tags = set(starts_by_tag)
    for s in sessions_seen:
        if s.get("id_tag") not in started_tags:
            lost += 1
            v.fail("no transaction message lost", "session of %s charged, no StartTransaction"
                   % s.get("id_tag"))
    for action, payload in station_sent:
        if action in TX_ACTIONS and content_key(action, payload) not in acked:
            lost += 1
            v.fail("no transaction message lost", "%s %s sent, never acknowledged"
                   % (action, _short(payload)))

    for name in INVARIANTS:
        details = v.failures.get(name, [])
        v.results.append((name, not details, "; ".join(details[:3]) +
                          (" (+%d more)" % (len(details) - 3) if len(details) > 3 else "")))
    v.notes = tolerated
    v.figures = {"transactions": len(issued), "lost": lost, "duplicated": duplicated,
                 "duplicated_tolerated": len(tolerated), "reordered": reordered,
                 "ack_window_ms": round(widest * 1000, 1),
                 "crashes": crashes, "calls_judged": judged, "calls_unjudged": unjudged,
                 "max_response_s": round(max_response, 3)}
    return v


def _short(payload):
    text = json.dumps(payload, sort_keys=True)
    return text if len(text) <= 100 else text[:97] + "..."
