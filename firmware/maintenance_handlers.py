"""What the maintenance socket's requests do (see firmware/maintenance.py for
the socket and tools/diag for the technician's command).

Two threads are involved. The main loop owns the engine (fw.cp) and the
device workers; the maintenance server answers on threads of its own. So:

  * publish(fw), called by the main loop after every event batch, leaves a
    plain dict in fw.maintenance.state (swapped atomically). "status",
    "device" and the checks of "selftest" are answered from it on the server's
    thread: they still answer when the main loop is stuck, and say so.
  * "config_get", "config_set", "journal" and the actuation of "selftest" touch
    the engine or the devices: MaintenanceBridge.handle() posts them as
    ("maint", None, (request, reply)) on fw.events and waits (5 s) for the main
    loop, which calls dispatch(fw, value) -> handle_on_main_thread(fw, request).
    Nothing here reads SPI or a serial port from the server's thread: a
    contactor or lock cycle is a function handed to that device's worker.

Requests ({"cmd": ...}) and their answers (besides "ok"/"error"):

  status     station, link, registration, clock, connectors (OCPP status,
             errorCode, faults, EV state, transaction, meter reading), messages
             (queued / set aside), faults (the last 20 raised/cleared, newest
             first), modem, rfid (last card), workers, main_loop.
             Every "age_s" is seconds before the answer.
  config_get {"keys": [...]} optional -> rows [{key, value, readonly, profile,
             write_only}]; write-only values (AuthorizationKey) are "<hidden>".
  config_set {"key", "value"} -> {"status": Accepted|Rejected|RebootRequired|
             NotSupported}, validated and applied exactly as ChangeConfiguration.
  journal    {"limit": 100} -> pending (queued messages, oldest first),
             set_aside, transactions (newest first), with counts.
  selftest   {"actuate": false} -> checks [{name, device, connector, result
             (pass|fail|warn|skipped), error_code, detail, hint}], "passed".
             With actuate, each contactor (and lock) is cycled when no EV is
             connected and no transaction runs, through its worker, and its
             feedback read back.
  device     {"name": "meter"|"modem"|"rfid", "action": "read"} -> what the
             firmware knows: meter "reading" ({"connector": n}, default 1),
             modem "status", rfid "last_card"; a failing device answers
             {"ok": false, "error", "error_code", "hint"}.
             {"name": "rfid", "action": "wait_card", "timeout": 30,
              "consume": true} -> "id_tag" of the next card presented within
             the timeout (null when none). While such a wait runs a card is, by
             default, taken by the tool and NOT used to start or stop charging.
  ping       answered by the main loop.
"""

import collections
import logging
import os
import platform
import queue
import threading
import time

from ocpp_core import __version__ as PACKAGE_VERSION
from ocpp_core import connector as conn
from ocpp_core.catalogue import ACTIONS
from ocpp_core.config import HIDDEN
from ocpp_core.registration import ACCEPTED
from ocpp_core.timestamps import format_utc
from ocpp_core.validation import first_violation

log = logging.getLogger("firmware.maintenance")

MAIN_TIMEOUT = 5.0          # s; a request for the main loop
PING_TIMEOUT = 2.0          # s; the main loop's liveness check in status/selftest
FAULT_LOG_SIZE = 20
METER_STALE = 10.0          # s without a reading: the meter check fails
SETTLE = 0.5                # s; a contactor is read back this long after a command
WAIT_CARD_DEFAULT = 20.0
WAIT_CARD_MAX = 3600.0
JOURNAL_LIMIT = 100
TX_SHOWN = 20

MAIN_COMMANDS = ("ping", "config_get", "config_set", "journal")
COMMANDS = ("status", "config_get", "config_set", "journal", "selftest", "device", "ping")
DEVICES = ("meter", "modem", "rfid")

# (device, situation) -> what a technician should check, in plain words.
HINTS = {
    "meter": "The energy meter does not answer: check its supply, the RS-485 A/B wiring "
             "and termination, its Modbus address and baud rate.",
    "meter-stale": "The meter gives no readings: check the meter's supply and RS-485 "
                   "wiring; restart the firmware if the meter is fine.",
    "rfid": "The card reader does not answer: check its cable to the controller (SPI), "
            "its connector and its 3.3 V supply.",
    "modem": "The LTE modem does not answer or has no usable signal: check the antenna and "
             "its cable, the SIM card, and the modem's USB/serial connection.",
    "modem-network": "The modem is not registered on a network: check the SIM (PIN, data "
                     "plan, APN) and the coverage here.",
    "contactor": "The contactor does not follow its command: check the coil supply and its "
                 "driver relay, and the wiring of the auxiliary (mirror) contact.",
    "contactor-welded": "The contactor stays closed when commanded open (welded contacts): "
                        "take the charger out of service and replace the contactor.",
    "contactor-open": "The contactor does not close: check the coil supply and its driver "
                      "relay, the coil itself, and the mirror contact wiring.",
    "lock": "The cable lock does not confirm: check for an obstruction in the socket, the "
            "actuator's wiring and its feedback switch.",
    "pilot": "The control pilot does not work or the EV signals an error: check the pilot "
             "wiring and the pilot board; try another EV or a test adapter.",
    "link": "The station is not connected to its central system: check the network (SIM, "
            "cable, Wi-Fi), the CSMS URL and the password; run the `csms` check.",
    "registration": "The central system has not accepted this station yet: check that the "
                    "charge point id is registered at the CSMS.",
    "clock": "The time is unknown (no CSMS time, no NTP): timestamps will be corrected once "
             "the central system answers; check the connection.",
    "main_loop": "The firmware's main loop does not answer: see the firmware log; restart "
                 "the service if it stays so.",
    "journal": "Some transaction messages were refused by the central system and set aside: "
               "export them with `journal --export` and send them to the operator.",
}



def _now_iso():
    return format_utc(time.time())


def _sample_dict(sample):
    if sample is None:
        return None
    out = {}
    for name in ("energy_wh", "power_w", "current_a", "voltage_v", "frequency_hz",
                 "temperature_c", "soc_percent"):
        value = getattr(sample, name, None)
        if isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def _station_error_code(faults):
    for code in conn.UNSAFE_FAULTS + conn.WARNING_FAULTS:
        if code in faults:
            return code
    return sorted(faults)[0] if faults else conn.NO_ERROR


def _redact_url(url):
    """The URL without user information (a password could hide there)."""
    if not isinstance(url, str) or "@" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return scheme + sep + authority + slash + path


class Maintenance:
    """The firmware-side state of the maintenance socket: the fault log, the card
    hook, the published state and the trace sink (fw.maintenance)."""

    def __init__(self):
        self.server = None               # the MaintenanceServer, once started
        self.state = None                # published by publish(fw)
        self.faults = collections.deque(maxlen=FAULT_LOG_SIZE)
        self.started = time.time()
        self._card_cond = threading.Condition()
        self._card_seq = 0
        self._last_card = None           # {"id_tag", "at", "_mono"}
        self._card_takers = 0
        self._samples = {}               # cid -> (MeterSample object, monotonic time seen)
        self._modem = (None, None)       # (ModemStatus object, monotonic time seen)

    # --- hooks into the engine (main thread) ------------------------------------------------
    def attach(self, fw):
        """Record faults as the engine raises and clears them (for status and
        selftest). Cards go through card_seen() first: the main loop asks it
        before handing a card to the engine. Call once, after fw.cp exists."""
        cp = fw.cp
        cp.fault_listeners.append(
            lambda cid, code, info, event: self._record_fault(cp, cid, code, info, event))

    def take_card(self, fw, id_tag):
        """True when a tools.diag `rfid` wait takes this card (it then starts
        or stops nothing)."""
        if self.card_seen(id_tag, fw.cp.clock.timestamp()):
            log.info("card %s read by the maintenance tool; not used for charging", id_tag)
            return True
        return False

    def _record_fault(self, cp, cid, code, info, event):
        self.faults.appendleft({"at": cp.clock.timestamp(), "_mono": time.monotonic(),
                                "connector": cid, "error_code": code, "info": info,
                                "event": event})

    def card_seen(self, id_tag, at=None):
        """A card was presented. True when a wait_card takes it (then it is not
        for the engine). Any thread."""
        with self._card_cond:
            self._card_seq += 1
            self._last_card = {"id_tag": id_tag, "at": at or _now_iso(), "_mono": time.monotonic()}
            taken = self._card_takers > 0
            self._card_cond.notify_all()
        return taken

    def wait_card(self, timeout, take=True):
        """The next card presented within timeout s, or None (server thread)."""
        with self._card_cond:
            seq = self._card_seq
            if take:
                self._card_takers += 1
            try:
                self._card_cond.wait_for(lambda: self._card_seq > seq, timeout)
            finally:
                if take:
                    self._card_takers -= 1
            return dict(self._last_card) if self._card_seq > seq else None

    def last_card(self):
        with self._card_cond:
            return dict(self._last_card) if self._last_card else None

    # --- trace ----------------------------------------------------------------------------
    def publish_trace(self, direction, text):
        server = self.server
        if server is not None:
            server.publish_trace(direction, text)


# --- published state (main thread) ---------------------------------------------------------

def publish(fw):
    """Build the state the server's threads read (call at the end of
    Firmware._publish, on the main loop's thread)."""
    m = getattr(fw, "maintenance", None)
    if m is None:
        return
    cp = fw.cp
    now = time.monotonic()
    connectors = {}
    for cid, c in sorted(cp.connectors.items()):
        sample = c.sample
        seen = m._samples.get(cid)
        if sample is not None and (seen is None or seen[0] is not sample):
            seen = m._samples[cid] = (sample, now)
        meter = _sample_dict(sample)
        if meter is not None:
            meter["_mono"] = seen[1]
        record = cp.journal.get(c.tx_key) if c.tx_key else None
        tx = None
        if record is not None:
            energy = None
            if sample is not None and sample.energy_wh is not None:
                energy = round(sample.energy_wh - record["meter_start"], 1)
            tx = {"transaction_id": record["transaction_id"], "key": record["key"],
                  "id_tag": record["id_tag"], "meter_start": record["meter_start"],
                  "energy_wh": energy, "started": cp.clock.resolve_iso(record["start"])}
        connectors[str(cid)] = {
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
            "transaction": tx,
            "meter": meter,
        }
    modem_status = getattr(fw, "modem_status", None)
    if modem_status is not None and m._modem[0] is not modem_status:
        m._modem = (modem_status, now)
    modem = None
    if modem_status is not None:
        modem = modem_status.as_dict()
        modem["_mono"] = m._modem[1]
    workers = {}
    for w in getattr(fw, "workers", ()):
        workers[w.name] = {"kind": w.kind, "connector": w.cid,
                           "failures": w.failures,
                           "faulted": w.faulted}
    link = fw.link
    since = link.connected_since
    cfg = fw.cfg
    boot = cfg.boot_notification()
    clock = cp.clock
    m.state = {
        "published": {"at": clock.timestamp(), "_mono": now},
        "station": {
            "charge_point_id": cfg.charge_point_id,
            "firmware_version": boot.get("firmwareVersion"),
            "package_version": PACKAGE_VERSION,
            "vendor": boot.get("chargePointVendor"),
            "model": boot.get("chargePointModel"),
            "serial_number": boot.get("chargePointSerialNumber"),
            "csms_url": _redact_url(cfg.csms_url),
            "hal": cfg.hal,
            "data_dir": os.path.abspath(cfg.data_dir) if cfg.data_dir else None,
            "config_file": os.path.abspath(cfg.source) if cfg.source else None,
            "connectors": len(cp.connectors),
            "fixed_cable": not cp.profile.has_lock,
            "pid": os.getpid(),
            "started": format_utc(m.started),
            "python": platform.python_version(),
            "ocpp_status": cp.status.status_of(0),
            "error_code": _station_error_code(cp.station_faults),
            "faults": dict(cp.station_faults),
            "operative": cp.station_operative,
            "reset_pending": cp.reset_pending["kind"] if cp.reset_pending else None,
        },
        "link": {"connected": bool(link.connected),
                 "since": format_utc(since) if since else None,
                 "_wall": since,
                 "last_error": link.last_error},
        "registration": cp.registration.status,
        "clock": {"valid": clock.valid,
                  "source": clock.source or ("system" if clock.valid else None),
                  "now": clock.timestamp()},
        "connectors": connectors,
        "messages": {"queued": cp.journal.pending_count(),
                     "set_aside": cp.journal.set_aside_count(),
                     "in_flight": cp.journal.in_flight},
        "faults": list(m.faults),
        "modem": modem,
        "rfid": {"last_card": m.last_card()},
        "workers": workers,
        "pending_reboot": cp.config.pending_reboot(),
    }


def _aged(obj, now_mono, now_wall):
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
                out[key] = _aged(value, now_mono, now_wall)
        return out
    if isinstance(obj, list):
        return [_aged(v, now_mono, now_wall) for v in obj]
    return obj


def current_state(fw):
    """The published state with ages as of now, or None before the first publish."""
    m = getattr(fw, "maintenance", None)
    state = m.state if m is not None else None
    if state is None:
        return None
    return _aged(state, time.monotonic(), time.time())


# --- the main loop's side ------------------------------------------------------------------

class Reply:
    """Where the main loop puts its answer; `cancelled` once the asker gave up."""

    def __init__(self):
        self._queue = queue.Queue(1)
        self.cancelled = False

    def put(self, response):
        try:
            self._queue.put_nowait(response)
        except queue.Full:
            pass

    def get(self, timeout):
        return self._queue.get(timeout=timeout)


def dispatch(fw, value):
    """Firmware._dispatch for kind "maint": value = (request, reply)."""
    request, reply = value
    if getattr(reply, "cancelled", False):
        log.info("maintenance request %r dropped: its client gave up waiting",
                 request.get("cmd") if isinstance(request, dict) else request)
        return
    reply.put(handle_on_main_thread(fw, request))


def handle_on_main_thread(fw, request):
    """Requests that touch the engine or the devices; never raises."""
    try:
        cmd = request.get("cmd")
        if cmd == "ping":
            publish(fw)      # the answer comes with a fresh state
            return {"ok": True}
        if cmd == "config_get":
            return _config_get(fw, request)
        if cmd == "config_set":
            return _config_set(fw, request)
        if cmd == "journal":
            return _journal(fw, request)
        if cmd == "actuate":
            return _actuate(fw)
        return {"ok": False, "error": "%r is not a main-loop request" % (cmd,)}
    except Exception as e:
        log.exception("maintenance request %r failed", request.get("cmd"))
        return {"ok": False, "error": "internal error: %s: %s" % (type(e).__name__, e)}


def _config_get(fw, request):
    keys = request.get("keys")
    if keys is not None and (not isinstance(keys, list)
                             or not all(isinstance(k, str) for k in keys)):
        return {"ok": False, "error": '"keys" must be a list of key names'}
    config = fw.cp.config
    rows, unknown = [], []
    wanted = set(keys) if keys else None
    for key, value, readonly, profile in config.describe():
        if wanted is not None and key not in wanted:
            continue
        write_only = bool(getattr(config.definition(key), "write_only", False))
        if write_only:
            value = HIDDEN if value else ""     # never the value itself
        rows.append({"key": key, "value": value, "readonly": readonly, "profile": profile,
                     "write_only": write_only})
    if wanted is not None:
        unknown = sorted(wanted - set(r["key"] for r in rows))
    return {"ok": True, "configuration": rows, "unknown": unknown,
            "pending_reboot": config.pending_reboot()}


def _config_set(fw, request):
    payload = {"key": request.get("key"), "value": request.get("value")}
    bad = first_violation(ACTIONS["ChangeConfiguration"][2], payload)
    if bad is not None:
        return {"ok": False, "error": "not a valid ChangeConfiguration: %s" % bad.description()}
    cp = fw.cp
    effects = []
    cp.deferred_effects = effects
    try:
        answer = cp.config.change_configuration(payload)
    finally:
        cp.deferred_effects = None
    log.info("ChangeConfiguration of %s from the maintenance socket: %s", payload["key"],
             answer["status"])
    response = {"ok": True, "key": payload["key"], "status": answer["status"]}
    if answer["status"] == "Rejected":
        response["reason"] = _rejection_reason(cp.config, payload["key"], payload["value"])
    for effect in effects:        # as after a CSMS's ChangeConfiguration.conf
        try:
            effect()
        except Exception:
            log.exception("applying %s failed", payload["key"])
    return response


def _rejection_reason(config, key, text):
    """Why a value was rejected, in words (the value itself is never repeated)."""
    try:
        d = config.definition(key)
    except KeyError:
        return None
    if d.readonly:
        return "%s is read-only" % key
    try:
        why = config.why_invalid(key, text)
    except Exception:
        why = None
    if why:
        return why.replace(text, "<value>") if d.write_only else why
    return "the value is not valid for this key, or it could not be stored"


def _plain(obj, clock):
    """JSON-ready copy with the journal's stamps as RFC 3339 strings."""
    if isinstance(obj, dict):
        if set(obj) == {"w", "m", "b", "v"}:
            try:
                return clock.resolve_iso(obj)
            except Exception:
                return None
        return dict((k, _plain(v, clock)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return [_plain(v, clock) for v in obj]
    return obj


def _tx_view(rec, clock):
    view = dict((k, v) for k, v in rec.items() if k != "samples")
    view["stop_samples"] = len(rec.get("samples") or ())
    return _plain(view, clock)


def _journal(fw, request):
    limit = request.get("limit", JOURNAL_LIMIT)
    if type(limit) is not int or not 1 <= limit <= 10000:
        return {"ok": False, "error": '"limit" must be a whole number from 1 to 10000'}
    cp = fw.cp
    journal, store, clock = cp.journal, cp.store, cp.clock
    pending = []
    for name in store.names("queue/")[:limit]:
        entry = store.load(name)
        if isinstance(entry, dict):
            view = _plain(entry, clock)
            rec = journal.get(entry.get("key")) if entry.get("key") else None
            view["transaction_id"] = rec["transaction_id"] if rec else None
            pending.append(view)
    aside_names = store.names("setaside/")
    set_aside = []
    for name in aside_names[:limit]:
        entry = store.load(name)
        set_aside.append({"name": name, "content": _plain(entry, clock)})
    corrupt = store.corrupt_names("")
    return {"ok": True,
            "pending_count": journal.pending_count(), "pending": pending,
            "in_flight": journal.in_flight,
            "set_aside_count": len(aside_names), "set_aside": set_aside,
            "transactions": [_tx_view(r, clock) for r in journal.recent(TX_SHOWN)],
            "corrupt_files": corrupt[:limit]}


# --- actuation (main thread plans, device threads act, the server thread waits) -------------

def _blocker(cp, c):
    if cp.reset_pending is not None:
        return "skipped: a reset is under way"
    if c.in_transaction:
        return "skipped: transaction running"
    if not c.ev_known:
        return "skipped: EV state not known yet"
    if c.ev_state != "A":
        return "skipped: EV connected"
    if c.authorization is not None:
        return "skipped: a card was accepted, waiting for the EV"
    if c.unlock_request is not None or c.lock_pending_since is not None:
        return "skipped: the lock is busy"
    if c.contactor_closed or c.offered_a > 0:
        return "skipped: the connector is in use"
    return None


def _cycle_contactor(contactor, results):
    def run():
        out = {}
        try:
            try:
                contactor.set(True)
                time.sleep(SETTLE)
                out["closed_feedback"] = bool(contactor.feedback())
            finally:
                contactor.set(False)     # whatever happened: open again
            time.sleep(SETTLE)
            out["open_feedback"] = bool(contactor.feedback())
        except Exception as e:
            out["error"] = "%s: %s" % (type(e).__name__, e)
        results.put(out)
    return run


def _cycle_lock(lock, results):
    def move(target, limit):
        lock.set(target)
        deadline = time.monotonic() + limit
        while bool(lock.feedback()) != target and time.monotonic() < deadline:
            time.sleep(0.02)
        return bool(lock.feedback()) == target

    def run():
        out = {}
        limit = float(getattr(lock, "actuation_time", 1.0)) + 0.5
        try:
            before = bool(lock.feedback())
            out["engaged"] = move(True, limit)
            out["released"] = move(False, limit)
            if before:
                move(True, limit)        # as it was
        except Exception as e:
            out["error"] = "%s: %s" % (type(e).__name__, e)
        results.put(out)
    return run


def _actuate(fw):
    cp = fw.cp
    steps = []
    for cid, c in sorted(cp.connectors.items()):
        workers = getattr(fw, "connector_workers", {}).get(cid, {})
        blocker = _blocker(cp, c)
        for kind in ("contactor", "lock"):
            worker = workers.get(kind)
            if worker is None:
                continue
            step = {"device": kind, "connector": cid}
            if blocker:
                step["skipped"] = blocker
            elif kind == "contactor" and "PowerSwitchFailure" in c.faults:
                step["skipped"] = "skipped: the contactor is already faulted"
            else:
                results = queue.Queue(1)
                if kind == "contactor":
                    worker.submit(_cycle_contactor(worker.contactor, results))
                    step["_timeout"] = 2 * SETTLE + 4.0
                else:
                    worker.submit(_cycle_lock(worker.lock, results))
                    step["_timeout"] = 3 * (float(getattr(worker.lock, "actuation_time", 1.0))
                                            + 0.5) + 4.0
                step["_wait"] = results
                log.info("self-test: cycling the %s of connector %d", kind, cid)
            steps.append(step)
    return {"ok": True, "steps": steps}


# --- the server thread's side ----------------------------------------------------------------

class MaintenanceBridge:
    """handler for MaintenanceServer: MaintenanceServer(path, MaintenanceBridge(fw).handle)."""

    def __init__(self, fw, timeout=MAIN_TIMEOUT, ping_timeout=PING_TIMEOUT):
        self.fw = fw
        self.timeout = timeout
        self.ping_timeout = ping_timeout

    def on_main_thread(self, request, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        reply = Reply()
        self.fw.events.put(("maint", None, (request, reply)))
        try:
            return reply.get(timeout)
        except queue.Empty:
            reply.cancelled = True
            return {"ok": False, "error": "the firmware's main loop did not answer within %g s "
                                          "(it may be stuck: see the firmware log)" % timeout}

    def _ping(self):
        t0 = time.monotonic()
        answer = self.on_main_thread({"cmd": "ping"}, self.ping_timeout)
        if answer.get("ok"):
            return {"responding": True, "answer_ms": round((time.monotonic() - t0) * 1000, 1)}
        return {"responding": False, "error": answer.get("error")}

    def handle(self, request):
        cmd = request.get("cmd")
        if cmd == "status":
            return self.status()
        if cmd == "selftest":
            return self.selftest(request)
        if cmd == "device":
            return self.device(request)
        if cmd in MAIN_COMMANDS:
            return self.on_main_thread(request)
        return {"ok": False, "error": "unknown command %r: one of %s, trace"
                % (cmd, ", ".join(COMMANDS))}

    def status(self):
        loop = self._ping()
        state = current_state(self.fw)
        if state is None:
            return {"ok": False, "error": "the firmware is starting: no state published yet"}
        response = {"ok": True}
        response.update(state)
        response["main_loop"] = loop
        return response

    def selftest(self, request):
        actuate = request.get("actuate", False)
        if not isinstance(actuate, bool):
            return {"ok": False, "error": '"actuate" must be true or false'}
        loop = self._ping()
        state = current_state(self.fw)
        if state is None:
            return {"ok": False, "error": "the firmware is starting: no state published yet"}
        actuated = {}
        if actuate:
            if not loop["responding"]:
                plan = {"ok": False, "error": "skipped: the main loop does not answer"}
            else:
                plan = self.on_main_thread({"cmd": "actuate"})
            if not plan.get("ok"):
                note = {"skipped": plan.get("error") or "skipped"}
                actuated = dict(((kind, int(cid)), note)
                                for cid in state["connectors"] for kind in ("contactor", "lock"))
            else:
                for step in plan.get("steps", ()):
                    key = (step["device"], step["connector"])
                    if "_wait" in step:
                        try:
                            actuated[key] = step["_wait"].get(timeout=step["_timeout"])
                        except queue.Empty:
                            actuated[key] = {"error": "the %s's worker did not report within "
                                                      "%g s" % (step["device"], step["_timeout"])}
                    else:
                        actuated[key] = {"skipped": step["skipped"]}
        checks = selftest_checks(state, loop, actuate, actuated)
        return {"ok": True, "actuate": actuate, "checks": checks,
                "passed": all(c["result"] != "fail" for c in checks)}

    def device(self, request):
        """One device as the firmware knows it. A device that is failing gives
        {"ok": false, "error", "error_code", "hint"}; else:
          meter {"connector": 1}  -> "reading" (that connector's last reading,
                                     with age_s), "connectors" (every one)
          modem                   -> "status" (the last ModemStatus, with age_s)
          rfid read               -> "last_card"
          rfid wait_card {"timeout": s, "consume": true} -> "id_tag" of the next
                                     card within the timeout, or null"""
        name, action = request.get("name"), request.get("action", "read")
        if name not in DEVICES:
            return {"ok": False, "error": '"name" must be one of %s' % ", ".join(DEVICES)}
        if action not in ("read", "wait_card") or (action == "wait_card" and name != "rfid"):
            return {"ok": False, "error": '"action" must be "read"%s'
                    % (' or "wait_card"' if name == "rfid" else "")}
        timeout = request.get("timeout", WAIT_CARD_DEFAULT)
        if type(timeout) not in (int, float) or not 0 < timeout <= WAIT_CARD_MAX:
            return {"ok": False, "error": '"timeout" must be a number of seconds up to %g'
                    % WAIT_CARD_MAX}
        connector = request.get("connector", 1)
        self._ping()      # a fresh state when the main loop answers
        state = current_state(self.fw)
        if state is None:
            return {"ok": False, "error": "the firmware is starting: no state published yet"}
        if name == "meter" and str(connector) not in state["connectors"]:
            return {"ok": False, "error": "no connector %r on this station" % (connector,)}
        checks = [c for c in selftest_checks(state, None, False, {}) if c["device"] == name
                  and (name != "meter" or c["connector"] == int(connector))]
        failing = [c for c in checks if c["result"] == "fail"]
        if failing:
            c = failing[0]
            return {"ok": False, "device": name,
                    "error": "%s (%s): %s" % (c["name"], c["error_code"], c["detail"]),
                    "error_code": c["error_code"], "hint": c["hint"], "checks": checks}
        response = {"ok": True, "device": name, "checks": checks}
        if name == "meter":
            response["connector"] = int(connector)
            response["reading"] = state["connectors"][str(connector)]["meter"]
            response["connectors"] = dict((cid, c["meter"])
                                          for cid, c in state["connectors"].items())
        elif name == "modem":
            response["status"] = state["modem"]
        else:
            response["last_card"] = state["rfid"]["last_card"]
            if action == "wait_card":
                t0 = time.monotonic()
                card = self.fw.maintenance.wait_card(float(timeout),
                                                     take=bool(request.get("consume", True)))
                if card is not None:
                    card.pop("_mono", None)
                response["id_tag"] = card["id_tag"] if card else None
                response["card"] = card
                response["waited_s"] = round(time.monotonic() - t0, 1)
        return response


# --- the checks ---------------------------------------------------------------------------------

def _check(name, device, result, detail, error_code="NoError", hint=None, connector=None):
    return {"name": name, "device": device, "connector": connector, "result": result,
            "error_code": error_code, "detail": detail, "hint": hint}


def _fmt(value, unit, digits=1):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = ["%.*f" % (digits, v) for v in value if v is not None]
        return "/".join(parts) + " " + unit if parts else None
    return "%.*f %s" % (digits, value, unit)


def _failed(n, what, plural=None):
    if n == 1:
        return "the last %s failed" % what
    return "the last %d %s failed" % (n, plural or what + "s")


def _worker(state, name):
    return state.get("workers", {}).get(name) or {"failures": 0, "faulted": False}


def _ago(age):
    if age is None:
        return "?"
    if age < 90:
        return "%.0f s ago" % age
    if age < 5400:
        return "%.0f min ago" % (age / 60)
    return "%.1f h ago" % (age / 3600)


def selftest_checks(state, loop, actuate, actuated):
    """The checks from the published state (with ages) and the actuation results."""
    checks = []
    station = state["station"]
    if loop is not None:
        if loop["responding"]:
            checks.append(_check("main loop", "firmware", "pass",
                                 "answers in %.0f ms" % loop["answer_ms"]))
        else:
            checks.append(_check("main loop", "firmware", "fail", loop.get("error") or
                                 "does not answer", "InternalError", HINTS["main_loop"]))
    link = state["link"]
    if link["connected"]:
        checks.append(_check("CSMS link", "link", "pass", "connected for %s"
                             % _ago(link.get("for_s")).replace(" ago", "")))
    else:
        checks.append(_check("CSMS link", "link", "fail", "not connected%s"
                             % (": " + link["last_error"] if link.get("last_error") else ""),
                             hint=HINTS["link"]))
    reg = state["registration"]
    checks.append(_check("registration", "link", "pass" if reg == ACCEPTED else "fail",
                         "BootNotification %s" % reg,
                         hint=None if reg == ACCEPTED else HINTS["registration"]))
    clock = state["clock"]
    checks.append(_check("clock", "clock", "pass" if clock["valid"] else "fail",
                         "set by the CSMS" if clock["source"] == "csms" else
                         "system clock" if clock["valid"] else "unknown",
                         hint=None if clock["valid"] else HINTS["clock"]))
    faults0 = station.get("faults") or {}
    # --- station devices
    w = _worker(state, "rfid")
    card = state["rfid"]["last_card"]
    if "ReaderFailure" in faults0:
        checks.append(_check("card reader", "rfid", "fail", faults0["ReaderFailure"] or
                             "does not answer", "ReaderFailure", HINTS["rfid"]))
    elif w["failures"]:
        checks.append(_check("card reader", "rfid", "fail", _failed(w["failures"], "poll"),
                             "ReaderFailure", HINTS["rfid"]))
    else:
        checks.append(_check("card reader", "rfid", "pass", "answers; last card %s %s"
                             % (card["id_tag"], _ago(card.get("age_s"))) if card else
                             "answers; no card since start-up"))
    w = _worker(state, "modem")
    modem = state.get("modem")
    if "WeakSignal" in faults0:
        checks.append(_check("modem", "modem", "fail", faults0["WeakSignal"] or "weak signal",
                             "WeakSignal", HINTS["modem"]))
    elif w["failures"]:
        checks.append(_check("modem", "modem", "fail",
                             _failed(w["failures"], "status query", "status queries"),
                             "WeakSignal", HINTS["modem"]))
    elif modem is None:
        checks.append(_check("modem", "modem", "warn", "no status from the modem yet"))
    else:
        words = ["%s dBm" % modem["signal_dbm"] if modem.get("signal_dbm") is not None
                 else "signal unknown",
                 "registered on %s" % (modem.get("operator") or "a network")
                 if modem.get("registered") else "NOT registered",
                 "SIM ready" if modem.get("sim_ready") else "SIM NOT ready"]
        ok = modem.get("registered") and modem.get("sim_ready")
        checks.append(_check("modem", "modem", "pass" if ok else "warn", "%s (%s)"
                             % (", ".join(words), _ago(modem.get("age_s"))),
                             hint=None if ok else HINTS["modem-network"]))
    # --- per connector
    for cid_text, c in sorted(state["connectors"].items(), key=lambda kv: int(kv[0])):
        cid = int(cid_text)
        faults = c.get("faults") or {}
        checks.append(_meter_check(state, cid, c, faults))
        w = _worker(state, "pilot%d" % cid)
        if "EVCommunicationError" in faults:
            checks.append(_check("pilot %d" % cid, "pilot", "fail", faults["EVCommunicationError"]
                                 or "pilot error", "EVCommunicationError", HINTS["pilot"], cid))
        elif w["failures"]:
            checks.append(_check("pilot %d" % cid, "pilot", "fail",
                                 _failed(w["failures"], "reading"), "EVCommunicationError",
                                 HINTS["pilot"], cid))
        else:
            ev = c.get("ev_state")
            checks.append(_check("pilot %d" % cid, "pilot", "pass", "EV state %s%s" % (
                ev, " (no EV)" if ev == "A" else " (EV connected)"), connector=cid))
        checks.append(_contactor_check(state, cid, c, faults, actuate, actuated))
        lock = _lock_check(state, cid, c, faults, actuate, actuated)
        if lock is not None:
            checks.append(lock)
    messages = state["messages"]
    if messages["set_aside"]:
        checks.append(_check("journal", "journal", "warn", "%d queued, %d set aside"
                             % (messages["queued"], messages["set_aside"]),
                             hint=HINTS["journal"]))
    else:
        checks.append(_check("journal", "journal", "pass", "%d message(s) queued"
                             % messages["queued"]))
    return checks


def _meter_check(state, cid, c, faults):
    name = "meter %d" % cid
    w = _worker(state, "meter%d" % cid)
    meter = c.get("meter")
    if "PowerMeterFailure" in faults:
        return _check(name, "meter", "fail", faults["PowerMeterFailure"] or "does not answer",
                      "PowerMeterFailure", HINTS["meter"], cid)
    if w["failures"]:
        return _check(name, "meter", "fail", _failed(w["failures"], "read"),
                      "PowerMeterFailure", HINTS["meter"], cid)
    if meter is None:
        return _check(name, "meter", "fail", "no reading since start-up", "PowerMeterFailure",
                      HINTS["meter-stale"], cid)
    age = meter.get("age_s")
    if age is not None and age > METER_STALE:
        return _check(name, "meter", "fail", "no reading for %.0f s" % age, "PowerMeterFailure",
                      HINTS["meter-stale"], cid)
    parts = [p for p in (_fmt(meter.get("energy_wh"), "Wh"), _fmt(meter.get("power_w"), "W"),
                         _fmt(meter.get("voltage_v"), "V"), _fmt(meter.get("current_a"), "A", 2),
                         _fmt(meter.get("frequency_hz"), "Hz")) if p]
    return _check(name, "meter", "pass", "%s (%s)" % (", ".join(parts), _ago(age)),
                  connector=cid)


def _contactor_check(state, cid, c, faults, actuate, actuated):
    name = "contactor %d" % cid
    w = _worker(state, "contactor%d" % cid)
    if "PowerSwitchFailure" in faults:
        info = faults["PowerSwitchFailure"] or "does not follow its command"
        return _check(name, "contactor", "fail", info, "PowerSwitchFailure",
                      HINTS["contactor-welded"] if "weld" in info.lower()
                      else HINTS["contactor"], cid)
    state_words = "closed" if c.get("contactor_closed") else "open"
    if not actuate:
        if w["failures"]:
            return _check(name, "contactor", "fail", "its feedback disagreed %d time(s)"
                          % w["failures"], "PowerSwitchFailure", HINTS["contactor"], cid)
        return _check(name, "contactor", "pass", "commanded %s, feedback agrees (not cycled: "
                      "use --actuate)" % state_words, connector=cid)
    result = actuated.get(("contactor", cid)) or {"error": "no result"}
    if "skipped" in result:
        return _check(name, "contactor", "skipped", "%s; commanded %s, no fault"
                      % (result["skipped"], state_words), connector=cid)
    if "error" in result:
        return _check(name, "contactor", "fail", "cycle failed: %s" % result["error"],
                      "PowerSwitchFailure", HINTS["contactor"], cid)
    if result.get("open_feedback"):
        return _check(name, "contactor", "fail", "stayed closed when commanded open (welded)",
                      "PowerSwitchFailure", HINTS["contactor-welded"], cid)
    if not result.get("closed_feedback"):
        return _check(name, "contactor", "fail", "did not close when commanded",
                      "PowerSwitchFailure", HINTS["contactor-open"], cid)
    return _check(name, "contactor", "pass", "cycled: closed and opened, the mirror contact "
                  "followed within %.1f s" % SETTLE, connector=cid)


def _lock_check(state, cid, c, faults, actuate, actuated):
    name = "lock %d" % cid
    if state["station"].get("fixed_cable"):
        return None
    if "ConnectorLockFailure" in faults and not actuate:
        return _check(name, "lock", "fail", faults["ConnectorLockFailure"] or "did not confirm",
                      "ConnectorLockFailure", HINTS["lock"], cid)
    position = "engaged" if c.get("locked") else "released"
    if not actuate:
        return _check(name, "lock", "pass", "%s, no fault (not cycled: use --actuate)"
                      % position, connector=cid)
    result = actuated.get(("lock", cid)) or {"error": "no result"}
    if "skipped" in result:
        if "ConnectorLockFailure" in faults:
            return _check(name, "lock", "fail", faults["ConnectorLockFailure"] or
                          "did not confirm", "ConnectorLockFailure", HINTS["lock"], cid)
        return _check(name, "lock", "skipped", "%s; %s, no fault" % (result["skipped"], position),
                      connector=cid)
    if "error" in result:
        return _check(name, "lock", "fail", "cycle failed: %s" % result["error"],
                      "ConnectorLockFailure", HINTS["lock"], cid)
    if not result.get("engaged"):
        return _check(name, "lock", "fail", "did not engage when commanded",
                      "ConnectorLockFailure", HINTS["lock"], cid)
    if not result.get("released"):
        return _check(name, "lock", "fail", "did not release when commanded",
                      "ConnectorLockFailure", HINTS["lock"], cid)
    return _check(name, "lock", "pass", "cycled: engaged and released, feedback followed",
                  connector=cid)
