"""The Smart Charging profile (OCPP 1.6 Edition 2 with errata v4.0, sections
3.13, 5.5, 5.7, 5.16, 7.8-7.10): SetChargingProfile, ClearChargingProfile,
GetCompositeSchedule, the TxProfile of a RemoteStartTransaction, and the
service that keeps the profiles and turns them into the offered current.

- SmartCharging: the service the façade constructs (cp.smart_charging) and
  ticks. offer(c) is the current connector c may be offered now (apply_outputs
  uses it behind safety.may_deliver_energy); tick() re-applies the limit at each
  period boundary and says how long until the next one.
- The composite itself: ocpp_core/smart_charging/schedule.py (pure functions).

Persisted in the store as "charging_profiles": {"items": [{"connector_id",
"profile" (the csChargingProfiles as received), "anchor", "tx_key"}]}, written
(Store.save: atomic) before SetChargingProfile is answered Accepted. A corrupt
or unreadable store at start-up gives no profiles and a log line (the offer is
then the station's maximum, never more); a stored profile that does not parse
is dropped with a log line. TxProfiles do not outlive their transaction, and no
transaction outlives a restart (it ends with PowerLoss / Reset), so stored
TxProfiles are dropped at start-up.

Readings of the spec chosen here (each cited where it is applied; the
stacking and unit readings are in schedule.py):
- 5.16 / 3.13.2 replacement: a new profile replaces the installed one with the
  same chargingProfileId (wherever it is), and the one with the same
  connectorId, purpose and stackLevel.
- 5.16 TxProfile: only on a connector with a running transaction; a given
  transactionId must be that transaction's (a transaction whose
  StartTransaction.conf has not arrived has no transactionId yet: a given one
  cannot match, Rejected). transactionId on another purpose: Rejected (7.8
  "SHALL only be set when ChargingProfilePurpose is set to TxProfile").
- 3.13.1 ChargePointMaxProfile on connector 0 only, and not Relative (there is
  no transaction to be relative to; OCPP 2.0.1 K01.FR.38 says the same).
- 7.8 Recurring needs startSchedule and recurrencyKind (the recurrence is
  anchored there): Rejected without. An Absolute schedule without
  startSchedule starts when it is received. Relative ignores startSchedule.
- 7.10 periods: the first startPeriod is 0, the others strictly increasing, at
  most ChargingScheduleMaxPeriods; limit >= 0 (0 = pause); numberPhases 1..3.
  stackLevel 0..ChargeProfileMaxStackLevel; the unit must be allowed by
  ChargingScheduleAllowedChargingRateUnit; at most MaxChargingProfilesInstalled
  profiles after the replacements. Each is Rejected with nothing changed.
- 5.5 ClearChargingProfile: with an id, that profile only (the other fields are
  not looked at); without, every profile matching all the given fields
  (connectorId 0 means the Charge Point's own profiles); no field at all
  clears everything. Unknown when nothing matched.
- 5.7 GetCompositeSchedule: scheduleStart and startSchedule are the request
  time (to the ms); periods in whole seconds from it (a change between two
  whole seconds is reported at the later one), merged where the limit
  does not change, within `duration`; the unit requested, else A. Without any
  profile the schedule is the station's maximum current (local limit).
  minChargingRate is not reported. Connector 0: the Charge Point's total.
- 5.11 RemoteStartTransaction: the chargingProfile must be a valid TxProfile
  without transactionId (there is none yet), else Rejected; it is installed as
  the transaction's TxProfile when that transaction starts.
- The pilot: the offer is min(composite, max_current_a) rounded down to whole
  amps (the RAPI board, the coarsest HAL, takes whole amps; 51 < A < 52.5
  cannot be signalled: 51); below 6 A nothing can be signalled by PWM
  (IEC 61851): 0, the connector is SuspendedEVSE and resumes in the same
  transaction when the limit rises again.
"""

from ocpp_core.log import get_logger
from ocpp_core.rpc import Reply
from ocpp_core.smart_charging import schedule as sched
from ocpp_core.timestamps import format_utc, parse_rfc3339

log = get_logger("ocpp.smart_charging")

NAME = "SmartCharging"
STORE_NAME = "charging_profiles"
HORIZON = 3600.0
MIN_PWM_A = 6
MAX_PWM_A = 80

# Values of the profile's keys while it is not registered (config.py declares them).
DEFAULTS = {"ChargeProfileMaxStackLevel": 8,
            "ChargingScheduleAllowedChargingRateUnit": ["Current", "Power"],
            "ChargingScheduleMaxPeriods": 24, "MaxChargingProfilesInstalled": 8,
            "ConnectorSwitch3to1PhaseSupported": False}
UNITS = {"A": "Current", "W": "Power"}


class Invalid(Exception):
    pass


def signalable(amps):
    """Whole amps the pilot can offer for a limit of `amps` (never more)."""
    a = int(amps + 1e-9)
    if a < MIN_PWM_A:
        return 0.0
    if 51 < a < 52.5:
        a = 51
    return float(min(a, MAX_PWM_A))


def _time(text):
    return None if text is None else parse_rfc3339(text)


def parse(connector_id, raw, anchor=None, tx_key=None):
    """The profile dict of schedule.py from a csChargingProfiles payload;
    Invalid(reason) for what the schema lets through but the spec does not."""
    try:
        s = raw["chargingSchedule"]
        kind = raw["chargingProfileKind"]
        p = {"id": int(raw["chargingProfileId"]), "connector_id": connector_id,
             "purpose": raw["chargingProfilePurpose"], "stack": int(raw["stackLevel"]),
             "kind": kind, "recurrency": raw.get("recurrencyKind"),
             "valid_from": _time(raw.get("validFrom")), "valid_to": _time(raw.get("validTo")),
             "start": None, "duration": s.get("duration"), "unit": s["chargingRateUnit"],
             "periods": [], "tx_key": tx_key, "raw": raw, "anchor": anchor,
             "transaction_id": raw.get("transactionId")}
        for period in s["chargingSchedulePeriod"]:
            p["periods"].append((period["startPeriod"], float(period["limit"]),
                                 period.get("numberPhases")))
    except (KeyError, TypeError, ValueError) as e:
        raise Invalid("malformed (%s)" % e)
    if p["purpose"] not in sched.PURPOSES or kind not in ("Absolute", "Recurring", "Relative") \
            or p["unit"] not in UNITS:
        raise Invalid("unknown purpose, kind or unit")
    if kind == "Recurring":
        if p["recurrency"] not in sched.CYCLES or s.get("startSchedule") is None:
            raise Invalid("Recurring without recurrencyKind or startSchedule (7.8)")
        p["start"] = parse_rfc3339(s["startSchedule"])
    elif kind == "Absolute":
        start = s.get("startSchedule")
        p["start"] = parse_rfc3339(start) if start is not None else anchor
        if p["start"] is None:
            raise Invalid("Absolute without startSchedule")
    if p["duration"] is not None and p["duration"] <= 0:
        raise Invalid("duration %r" % p["duration"])
    if p["valid_from"] is not None and p["valid_to"] is not None and \
            p["valid_to"] <= p["valid_from"]:
        raise Invalid("validTo not after validFrom")
    if s.get("minChargingRate") is not None and s["minChargingRate"] < 0:
        raise Invalid("minChargingRate < 0")
    if not p["periods"] or p["periods"][0][0] != 0:
        raise Invalid("the first startPeriod is not 0 (7.10)")
    last = -1
    for start, limit, phases in p["periods"]:
        if start <= last:
            raise Invalid("startPeriod %d not after %d (7.10)" % (start, last))
        last = start
        if limit < 0:
            raise Invalid("limit %r < 0" % limit)
        if phases is not None and not 1 <= phases <= 3:
            raise Invalid("numberPhases %r" % phases)
    if p["purpose"] == "ChargePointMaxProfile":
        if connector_id != 0:
            raise Invalid("ChargePointMaxProfile on connector %d (3.13.1)" % connector_id)
        if kind == "Relative":
            raise Invalid("a Relative ChargePointMaxProfile (3.13.1)")
    if p["purpose"] == "TxProfile" and connector_id == 0:
        raise Invalid("TxProfile on connector 0")
    if p["transaction_id"] is not None and p["purpose"] != "TxProfile":
        raise Invalid("transactionId on a %s (7.8)" % p["purpose"])
    return p


class SmartCharging:
    def __init__(self, cp):
        self.cp = cp
        self.profiles = []        # parsed, see schedule.py
        self.tx_start = {}        # connector id -> wall time its transaction started
        self.pending = {}         # connector id -> (idTag, csChargingProfiles) of a RemoteStart
        self.applied = {}         # connector id -> the last offer(c) handed to apply_outputs
        self._load()

    # --- configuration and facts ----------------------------------------------------------
    def key(self, name):
        try:
            return self.cp.config.get(name)
        except KeyError:
            return DEFAULTS[name]

    def electrical(self):
        st = self.cp.profile
        return sched.Electrical(getattr(st, "nominal_voltage_v", 230.0), st.phases,
                                self.key("ConnectorSwitch3to1PhaseSupported"), st.max_current_a,
                                st.number_of_connectors)

    # --- persistence ----------------------------------------------------------------------
    def _load(self):
        try:
            saved = self.cp.store.load(STORE_NAME, {}) or {}
            items = saved.get("items") if type(saved) is dict else None
            if items is None:
                items = []
            if type(items) is not list:
                raise ValueError("items is not a list")
        except Exception as e:   # never a crash at start-up: no profiles
            log.error("charging profiles could not be read (%s): none in effect", e)
            return
        for raw in items:
            try:
                cid = raw["connector_id"]
                if cid != 0 and cid not in self.cp.connectors:
                    raise Invalid("no connector %r" % cid)
                p = parse(cid, raw["profile"], raw.get("anchor"), raw.get("tx_key"))
            except Exception as e:
                log.warning("stored charging profile %.80r ignored: %s", raw, e)
                continue
            if p["purpose"] == "TxProfile":
                log.info("TxProfile %d dropped: its transaction has ended", p["id"])
                continue
            self.profiles.append(p)

    def _data(self, profiles):
        return {"items": [{"connector_id": p["connector_id"], "profile": p["raw"],
                           "anchor": p["anchor"], "tx_key": p["tx_key"]} for p in profiles]}

    def _commit(self, profiles):
        """Persist then adopt; OSError leaves everything as it was."""
        self.cp.store.save(STORE_NAME, self._data(profiles))
        self.profiles = profiles

    # --- installing -----------------------------------------------------------------------
    def check(self, p):
        """The configured limits (7.x keys); Invalid(reason)."""
        if p["stack"] < 0 or p["stack"] > self.key("ChargeProfileMaxStackLevel"):
            raise Invalid("stackLevel %d over ChargeProfileMaxStackLevel" % p["stack"])
        if UNITS[p["unit"]] not in self.key("ChargingScheduleAllowedChargingRateUnit"):
            raise Invalid("unit %s not in ChargingScheduleAllowedChargingRateUnit" % p["unit"])
        if len(p["periods"]) > self.key("ChargingScheduleMaxPeriods"):
            raise Invalid("%d periods over ChargingScheduleMaxPeriods" % len(p["periods"]))

    def install(self, p):
        """Add p with the replacements of 5.16; Invalid or OSError change nothing."""
        self.check(p)
        kept = [q for q in self.profiles
                if q["id"] != p["id"] and not (q["purpose"] == p["purpose"] and
                                                q["stack"] == p["stack"] and
                                                q["connector_id"] == p["connector_id"])]
        kept.append(p)
        if len(kept) > self.key("MaxChargingProfilesInstalled"):
            raise Invalid("more than MaxChargingProfilesInstalled")
        self._commit(kept)

    def set_profile(self, payload):
        """SetChargingProfile (5.16) -> status."""
        cp = self.cp
        cid = payload["connectorId"]
        raw = payload["csChargingProfiles"]
        try:
            if cid != 0 and cid not in cp.connectors:
                raise Invalid("no connector %r" % cid)
            c = cp.connectors.get(cid)
            tx_key = None
            if raw.get("chargingProfilePurpose") == "TxProfile":
                if c is None or not c.in_transaction:
                    raise Invalid("TxProfile without a transaction on connector %r (5.16)" % cid)
                tx_key = c.tx_key
                given = raw.get("transactionId")
                if given is not None:
                    record = cp.journal.get(tx_key) or {}
                    if record.get("transaction_id") != given:
                        raise Invalid("transactionId %r is not the running one" % given)
            p = parse(cid, raw, anchor=cp.clock.now(), tx_key=tx_key)
            self.install(p)
        except Invalid as e:
            log.info("SetChargingProfile on connector %r: Rejected: %s", cid, e)
            return "Rejected"
        except OSError as e:
            log.error("SetChargingProfile: cannot persist the profile (%s); Rejected", e)
            return "Rejected"
        log.info("charging profile %d (%s, stack %d) installed on connector %d", p["id"],
                 p["purpose"], p["stack"], cid)
        return "Accepted"

    def clear(self, payload):
        """ClearChargingProfile (5.5) -> status."""
        pid = payload.get("id")
        fields = (("connector_id", payload.get("connectorId")),
                  ("purpose", payload.get("chargingProfilePurpose")),
                  ("stack", payload.get("stackLevel")))
        if pid is not None:
            gone = [p for p in self.profiles if p["id"] == pid]
        else:
            gone = [p for p in self.profiles
                    if all(v is None or p[k] == v for k, v in fields)]
        if not gone:
            return "Unknown"
        try:
            self._commit([p for p in self.profiles if p not in gone])
        except OSError as e:
            log.error("ClearChargingProfile: cannot persist (%s)", e)
            return "Unknown"
        log.info("charging profiles %s cleared", ", ".join(str(p["id"]) for p in gone))
        return "Accepted"

    # --- transactions ---------------------------------------------------------------------
    def remote_start_profile(self, c, id_tag, raw):
        """5.11: checked now (Invalid), installed when the transaction starts;
        raw None: this RemoteStart has no profile (an older one is forgotten)."""
        self.pending.pop(c.id, None)
        if raw is None:
            return
        if raw.get("transactionId") is not None:
            raise Invalid("a RemoteStart's TxProfile has no transaction yet")
        self.check(parse(c.id, raw, anchor=self.cp.clock.now()))
        self.pending[c.id] = (id_tag, raw)

    def transaction_started(self, c, id_tag):
        self.tx_start[c.id] = self.cp.clock.now()
        pending = self.pending.pop(c.id, None)
        if pending is None or pending[0] != id_tag:
            return
        try:
            self.install(parse(c.id, pending[1], anchor=self.cp.clock.now(), tx_key=c.tx_key))
            log.info("connector %d: the RemoteStart's TxProfile is in effect", c.id)
        except (Invalid, OSError) as e:
            log.error("connector %d: the RemoteStart's TxProfile not installed: %s", c.id, e)

    def transaction_ended(self, c, tx_key):
        """3.13.1: a TxProfile ends with its transaction."""
        self.tx_start.pop(c.id, None)
        kept = [p for p in self.profiles if not (p["purpose"] == "TxProfile" and
                                                (p["tx_key"] == tx_key or
                                                 p["connector_id"] == c.id))]
        if len(kept) != len(self.profiles):
            try:
                self._commit(kept)
            except OSError as e:
                self.profiles = kept   # in memory at least; dropped at start-up anyway
                log.error("TxProfile removal not persisted: %s", e)

    # --- the limit ------------------------------------------------------------------------
    def _rel_start(self, c, default):
        start = self.tx_start.get(c.id) if c is not None else None
        return default if start is None else start

    def limit_now(self, c):
        """Composite limit of connector c now, amps per phase."""
        now = self.cp.clock.now()
        ordered = sched._stack_order(self.profiles, c.id)
        return sched.limit_at(ordered, c.id, now, self._rel_start(c, now), self.electrical())

    def offer(self, c):
        """What the pilot of c may offer now (when safety allows energy at all)."""
        top = self.cp.profile.max_current_a
        if not self.profiles:
            out = top
        else:
            limit = self.limit_now(c)
            out = top if limit >= top else min(signalable(limit), top)
        self.applied[c.id] = out
        return out

    def composite(self, cid, duration, unit):
        """GetCompositeSchedule's chargingSchedule for connector cid (5.7)."""
        now = round(self.cp.clock.now(), 3)     # as scheduleStart says it (ms)
        c = self.cp.connectors.get(cid)
        elec = self.electrical()
        segments = sched.composite(self.profiles, cid, now, now + duration,
                                   self._rel_start(c, now), elec)
        periods = []
        for t, amps in segments:
            limit = int(elec.from_amps(amps, unit) * 10 + 1e-6) / 10.0
            if periods and periods[-1]["limit"] == limit:
                continue
            periods.append({"startPeriod": int(round(t - now)), "limit": limit})
        return now, {"duration": duration, "startSchedule": format_utc(now),
                     "chargingRateUnit": unit, "chargingSchedulePeriod": periods}

    def active_ids(self, cid):
        return [p["id"] for p in self.profiles if p["connector_id"] in (0, cid)]

    def tick(self, now_mono=None):
        """Re-apply the limit where it changed; seconds to the next boundary."""
        cp = self.cp
        if not self.profiles:
            return None
        changed = False
        wait = None
        wall = cp.clock.now()
        for c in cp.connectors.values():
            if not c.in_transaction:
                continue
            before = self.applied.get(c.id)
            if before is not None and self.offer(c) != before:
                changed = True
            due = sched.next_change(self.profiles, c.id, wall, HORIZON, self._rel_start(c, wall))
            if due is not None:
                wait = due if wait is None else min(wait, due)
        if changed:
            cp.refresh()
        return wait


# --- the CSMS's calls -------------------------------------------------------------------------
class SetChargingProfile:
    action = "SetChargingProfile"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        status = self.cp.smart_charging.set_profile(payload)
        return Reply({"status": status}, then=self.cp.refresh if status == "Accepted" else None)


class ClearChargingProfile:
    action = "ClearChargingProfile"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        status = self.cp.smart_charging.clear(payload)
        return Reply({"status": status}, then=self.cp.refresh if status == "Accepted" else None)


class GetCompositeSchedule:
    action = "GetCompositeSchedule"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        cp = self.cp
        cid = payload["connectorId"]
        duration = payload["duration"]
        if (cid != 0 and cid not in cp.connectors) or duration < 0:
            return {"status": "Rejected"}
        unit = payload.get("chargingRateUnit") or "A"
        start, schedule = cp.smart_charging.composite(cid, duration, unit)
        return {"status": "Accepted", "connectorId": cid, "scheduleStart": format_utc(start),
                "chargingSchedule": schedule}


def operations(cp):
    return (SetChargingProfile(cp), ClearChargingProfile(cp), GetCompositeSchedule(cp))
