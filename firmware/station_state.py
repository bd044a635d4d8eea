"""One projection of the engine's state: what the outside world is shown.

The main loop builds it after every batch of events (project(), on its own
thread) and hands it out as a plain dict, swapped whole, which other threads
read without a lock:

  * the maintenance socket answers `status`, `selftest` and `device` from it
    (firmware/maintenance_handlers.py; tools/diag judges it);
  * the bench's `status` shows bench_view() of it (the bench contract's
    "connectors" and "ocpp", /work/shared/bench-contract.md).

Times that grow old are kept as markers: "_mono" (monotonic time a reading was
first seen) and "_wall" (epoch time the link came up); aged() turns them into
"age_s" and "for_s", seconds before the answer.
"""

import os
import platform
import time

from ocpp_core import __version__ as PACKAGE_VERSION
from ocpp_core.connector import reported_error
from ocpp_core.redact import mask_url_userinfo
from ocpp_core.timestamps import format_utc

SAMPLE_FIELDS = ("energy_wh", "power_w", "current_a", "voltage_v", "frequency_hz",
                 "temperature_c", "soc_percent")


class FirstSeen:
    """When each reading was first seen: a meter sample or modem status that is
    published again keeps its age instead of looking new."""

    def __init__(self):
        self._seen = {}      # key -> (the object, monotonic time first seen)

    def since(self, key, obj, now):
        if obj is None:
            return None
        seen = self._seen.get(key)
        if seen is None or seen[0] is not obj:
            seen = self._seen[key] = (obj, now)
        return seen[1]


class StationProjection:
    def __init__(self):
        self._first_seen = FirstSeen()

    def project(self, fw):
        """The state of firmware `fw` (its engine, link, workers, config and
        maintenance log) as plain data. Main thread only."""
        cp, link, clock = fw.cp, fw.link, fw.cp.clock
        now = time.monotonic()
        modem_status = getattr(fw, "modem_status", None)
        modem = None
        if modem_status is not None:
            modem = modem_status.as_dict()
            modem["_mono"] = self._first_seen.since("modem", modem_status, now)
        since = link.connected_since
        return {
            "published": {"at": clock.timestamp(), "_mono": now},
            "station": _station(fw),
            "link": {"connected": bool(link.connected),
                     "since": format_utc(since) if since else None,
                     "_wall": since,
                     "last_error": link.last_error},
            "registration": cp.registration.status,
            "clock": {"valid": clock.valid,
                      "source": clock.source or ("system" if clock.valid else None),
                      "now": clock.timestamp()},
            "connectors": dict((str(cid), self._connector(cp, cid, c, now))
                               for cid, c in sorted(cp.connectors.items())),
            "messages": {"queued": cp.journal.pending_count(),
                         "set_aside": cp.journal.set_aside_count(),
                         "in_flight": cp.journal.in_flight},
            "faults": list(fw.maintenance.faults),
            "modem": modem,
            "rfid": {"last_card": fw.maintenance.last_card()},
            "workers": dict((w.name, {"kind": w.kind, "connector": w.cid,
                                      "failures": w.failures, "faulted": w.faulted})
                            for w in getattr(fw, "workers", ())),
            "pending_reboot": cp.config.pending_reboot(),
            "storage": _storage(cp),
        }

    def _connector(self, cp, cid, c, now):
        sample = c.sample
        meter = _sample_dict(sample)
        if meter is not None:
            meter["_mono"] = self._first_seen.since(("meter", cid), sample, now)
        return {
            "ocpp_status": cp.status.status_of(cid),
            "error_code": c.error_code(),
            "error_info": c.error_info(),
            "faults": dict(c.faults),
            "ev_state": c.ev_state,
            "ev_known": c.ev_known,
            "operative": c.operative,
            "offered_a": c.offered_a,
            "contactor_closed": c.contactor_closed,
            "locked": c.locked if cp.profile.has_lock else None,
            "authorization_pending": c.authorization is not None,
            "transaction": _transaction(cp, c, sample),
            "reservation": _reservation(c),
            "charging_profiles": _charging_profiles(cp, c),
            "meter": meter,
        }


def _station(fw):
    cp, cfg = fw.cp, fw.cfg
    boot = cfg.boot_notification()
    return {
        "charge_point_id": cfg.charge_point_id,
        "firmware_version": boot.get("firmwareVersion"),
        "package_version": PACKAGE_VERSION,
        "vendor": boot.get("chargePointVendor"),
        "model": boot.get("chargePointModel"),
        "serial_number": boot.get("chargePointSerialNumber"),
        "csms_url": mask_url_userinfo(cfg.csms_url),
        "hal": cfg.hal,
        "data_dir": os.path.abspath(cfg.data_dir) if cfg.data_dir else None,
        "config_file": os.path.abspath(cfg.source) if cfg.source else None,
        "connectors": len(cp.connectors),
        "fixed_cable": not cp.profile.has_lock,
        "pid": os.getpid(),
        "started": format_utc(fw.maintenance.started),
        "python": platform.python_version(),
        "ocpp_status": cp.status.status_of(0),
        "error_code": reported_error(cp.station_faults)[0],
        "faults": dict(cp.station_faults),
        "operative": cp.station_operative,
        "reset_pending": cp.reset_pending["kind"] if cp.reset_pending else None,
    }


def _storage(cp):
    """The data dir's health (ocpp_core/store.py): writable, free bytes, the problem."""
    store = cp.store
    problem = getattr(store, "problem", None)
    free = getattr(store, "free_bytes", None)
    return {"writable": problem is None, "problem": problem,
            "detail": getattr(store, "problem_detail", None),
            "free_bytes": free() if free else None,
            "not_durable": cp.journal.not_durable()}


def _transaction(cp, c, sample):
    record = cp.journal.get(c.tx_key) if c.tx_key else None
    if record is None:
        return None
    energy = None
    if sample is not None and sample.energy_wh is not None:
        energy = round(sample.energy_wh - record["meter_start"], 1)
    return {"transaction_id": record["transaction_id"], "key": record["key"],
            "id_tag": record["id_tag"], "meter_start": record["meter_start"],
            "energy_wh": energy, "started": cp.clock.resolve_iso(record["start"])}


def _charging_profiles(cp, c):
    """The Smart Charging facts of connector c: the profiles that apply to it
    (connector 0's and its own) and the composite limit now, in A per phase."""
    sc = cp.smart_charging
    ids = sc.active_ids(c.id)
    return {"ids": ids, "limit_a": round(sc.limit_now(c), 1) if ids else None}


def _reservation(c):
    """The reservation connector c is held for (Reserved), or None. A
    connector-0 reservation shows on the connector it keeps free."""
    res = getattr(c, "reservation", None)
    if res is None:
        return None
    return {"reservation_id": res["id"], "connector_id": res["connector_id"],
            "id_tag": res["id_tag"], "parent_id_tag": res["parent_id_tag"],
            "expiry_date": res["expiry_date"]}


def _sample_dict(sample):
    if sample is None:
        return None
    out = {}
    for name in SAMPLE_FIELDS:
        value = getattr(sample, name, None)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def bench_view(state):
    """The bench contract's part of `status` that the firmware provides; the
    simulated world adds its physical facts (contactor, locked, energy, EV)."""
    connectors = {}
    for cid, c in state["connectors"].items():
        tx = c["transaction"] or {}
        connectors[cid] = {"ocpp_status": c["ocpp_status"], "error_code": c["error_code"],
                           "transaction_id": tx.get("transaction_id"),
                           "id_tag": tx.get("id_tag"),
                           "reservation": c.get("reservation")}
    return {"connectors": connectors,
            "ocpp": {"connected": state["link"]["connected"],
                     "registration": state["registration"],
                     "queued_messages": state["messages"]["queued"]}}


def aged(obj, now_mono, now_wall):
    """A copy with every "_mono" turned into "age_s" and "_wall" into "for_s"."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key == "_mono":
                if value is not None:
                    out["age_s"] = round(max(0.0, now_mono - value), 1)
            elif key == "_wall":
                out["for_s"] = round(max(0.0, now_wall - value), 1) if value else None
            else:
                out[key] = aged(value, now_mono, now_wall)
        return out
    if isinstance(obj, list):
        return [aged(v, now_mono, now_wall) for v in obj]
    return obj
