"""What the maintenance socket's requests do (see firmware/maintenance.py for
the socket and tools/diag for the technician's command).

Two threads are involved. The main loop owns the engine (fw.cp) and the
device workers; the maintenance server answers on threads of its own. So:

  * after every event batch the main loop leaves its projection of the engine
    (firmware/station_state.py) in fw.maintenance.state, swapped whole.
    "status", "device" and "selftest" are answered from it on the server's
    thread: they still answer when the main loop is stuck, and say so.
  * "config_get", "config_set", "journal", "security_log_clear" and the
    actuation of "selftest" touch
    the engine or the devices: MaintenanceBridge.handle() posts them as
    Event("maint", None, (request, reply)) on fw.events and waits (5 s) for the
    main loop, which calls dispatch(fw, value) -> handle_on_main_thread(fw,
    request) (firmware/maintenance_requests.py, firmware/actuation.py).
    Nothing here reads SPI or a serial port from the server's thread: a
    contactor or lock cycle is a function handed to that device's worker.

The firmware reports facts; what they mean for the technician (pass or fail,
the hint) is decided by tools/diag (tools/diag/checks.py).

Requests ({"cmd": ...}) and their answers (besides "ok"/"error"):

  status     station, link, registration, clock, connectors (OCPP status,
             errorCode, faults, EV state, transaction, meter reading), messages
             (queued / set aside), faults (the last 20 raised/cleared, newest
             first), modem, rfid (last card), workers, main_loop.
             Every "age_s" is seconds before the answer.
  config_get, config_set, journal, security_log_clear (main loop),
  security_log_show (this thread): see firmware/maintenance_requests.py.
  selftest   {"actuate": false} -> "probes" (every device read afresh, now, on
             its own worker: firmware/maintenance_probes.py), "state" (as
             status gives it, published after the probes' readings), "main_loop",
             "actuate", "actuated": [{device, connector, and "skipped", "error",
             or what the feedback read}]. With actuate, each contactor (and
             lock) is cycled when no EV is connected and no transaction runs,
             through its worker, and its feedback read back.
  device     {"name": "meter"|"modem"|"rfid", "action": "read"} -> "state" and
             what the firmware knows: meter "reading" ({"connector": n},
             default 1), modem "status", rfid "last_card"; a device the
             firmware sees failing (its fault raised, or its latest polls
             failed) answers {"ok": false, "error", "error_code", "state"}.
             {"name": "rfid", "action": "wait_card", "timeout": 30,
              "consume": true} -> "id_tag" of the next card presented within
             the timeout (null when none). While such a wait runs a card is, by
             default, taken by the tool and NOT used to start or stop charging.
  ping       answered by the main loop.
"""

import collections
import logging
import queue
import threading
import time

from drivers.hal import ERROR_CODES
from firmware import actuation, maintenance_probes, maintenance_requests
from firmware.events import MAINTENANCE, Event
from firmware.station_state import aged
from ocpp_core.timestamps import format_utc

log = logging.getLogger("firmware.maintenance")

MAIN_TIMEOUT = 5.0          # s; a request for the main loop
PING_TIMEOUT = 2.0          # s; the main loop's liveness check in status/selftest
FAULT_LOG_SIZE = 20
WAIT_CARD_DEFAULT = 20.0
WAIT_CARD_MAX = 3600.0

MAIN_COMMANDS = ("ping", "config_get", "config_set", "journal", "security_log_clear")
COMMANDS = ("status", "config_get", "config_set", "journal", "security_log_show",
            "security_log_clear", "selftest", "device", "ping")
DEVICES = ("meter", "modem", "rfid")
NOT_PUBLISHED = "the firmware is starting: no state published yet"


class Maintenance:
    """The firmware-side state of the maintenance socket: the fault log, the card
    hook, the published state and the trace sink (fw.maintenance)."""

    def __init__(self):
        self.server = None               # the MaintenanceServer, once started
        self.state = None                # the main loop's projection, see station_state
        self.faults = collections.deque(maxlen=FAULT_LOG_SIZE)
        self.started = time.time()
        self._card_cond = threading.Condition()
        self._card_seq = 0
        self._last_card = None           # {"id_tag", "at", "_mono"}
        self._card_takers = 0

    # --- hooks into the engine (main thread) ------------------------------------------------
    def attach(self, fw):
        """Record faults as the engine raises and clears them (for status and
        selftest). Cards go through card_seen() first: the main loop asks it
        before handing a card to the engine. Call once, after fw.cp exists."""
        cp = fw.cp
        cp.events.listen(
            "fault", lambda cid, code, info, event: self._record_fault(cp, cid, code, info, event))

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
            self._last_card = {"id_tag": id_tag, "at": at or format_utc(time.time()),
                               "_mono": time.monotonic()}
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


def current_state(fw):
    """The published state with ages as of now, or None before the first publish."""
    m = getattr(fw, "maintenance", None)
    state = m.state if m is not None else None
    if state is None:
        return None
    return aged(state, time.monotonic(), time.time())


def device_fault(state, worker_name):
    """(errorCode, detail) while the firmware sees this device failing: the
    engine has its fault raised, or its worker's latest polls failed (the fault
    is raised after a few); None while it works."""
    worker = state["workers"].get(worker_name)
    if worker is None or worker["kind"] not in ERROR_CODES:
        return None
    code, where = ERROR_CODES[worker["kind"]]
    if where == "station":
        faults = state["station"]["faults"]
    else:
        faults = state["connectors"][str(worker["connector"])]["faults"]
    if code in faults:
        return code, faults[code] or "fault raised"
    if worker["failures"]:
        return code, "its last %d poll(s) failed" % worker["failures"]
    return None


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
    """What the main loop does with an Event("maint", None, (request, reply))."""
    request, reply = value
    if getattr(reply, "cancelled", False):
        log.info("maintenance request %r dropped: its client gave up waiting",
                 request.get("cmd") if isinstance(request, dict) else request)
        return
    reply.put(handle_on_main_thread(fw, request))


def _ping(fw, request):
    fw.publish()      # the answer comes with a fresh state
    return {"ok": True}


def _actuate(fw, request):
    return {"ok": True, "steps": actuation.plan(fw.cp, fw.connector_workers)}


# cmd -> fn(fw, request), on the main thread ("actuate" only from selftest, below)
ON_MAIN_THREAD = {
    "ping": _ping,
    "config_get": maintenance_requests.config_get,
    "config_set": maintenance_requests.config_set,
    "journal": maintenance_requests.journal,
    "security_log_clear": maintenance_requests.security_log_clear,
    "actuate": _actuate,
}


def handle_on_main_thread(fw, request):
    """Requests that touch the engine or the devices; never raises."""
    try:
        handler = ON_MAIN_THREAD.get(request.get("cmd"))
        if handler is None:
            return {"ok": False, "error": "%r is not a main-loop request" % (request.get("cmd"),)}
        return handler(fw, request)
    except Exception as e:
        log.exception("maintenance request %r failed", request.get("cmd"))
        return {"ok": False, "error": "internal error: %s: %s" % (type(e).__name__, e)}


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
        self.fw.events.put(Event(MAINTENANCE, None, (request, reply)))
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
        if cmd == "security_log_show":
            try:
                return maintenance_requests.security_log_show(self.fw, request)
            except Exception as e:
                log.exception("maintenance request security_log_show failed")
                return {"ok": False, "error": "internal error: %s: %s" % (type(e).__name__, e)}
        if cmd in MAIN_COMMANDS:
            return self.on_main_thread(request)
        return {"ok": False, "error": "unknown command %r: one of %s, trace"
                % (cmd, ", ".join(COMMANDS))}

    def status(self):
        loop = self._ping()
        state = current_state(self.fw)
        if state is None:
            return {"ok": False, "error": NOT_PUBLISHED}
        response = {"ok": True}
        response.update(state)
        response["main_loop"] = loop
        return response

    def selftest(self, request):
        """The facts a self-test is judged on: the state before any actuation,
        the main loop's answer, and with actuate each cycle's feedback."""
        actuate = request.get("actuate", False)
        if not isinstance(actuate, bool):
            return {"ok": False, "error": '"actuate" must be true or false'}
        # Fresh readings first: the main loop then handles what they found before
        # it answers the ping, so the state below includes them.
        probes = maintenance_probes.probe_all(getattr(self.fw, "workers", ()))
        loop = self._ping()
        state = current_state(self.fw)
        if state is None:
            return {"ok": False, "error": NOT_PUBLISHED}
        actuated = []
        if actuate:
            if not loop["responding"]:
                plan = {"ok": False, "error": "skipped: the main loop does not answer"}
            else:
                plan = self.on_main_thread({"cmd": "actuate"})
            if plan.get("ok"):
                actuated = actuation.collect(plan.get("steps", ()))
            else:
                actuated = actuation.not_run(state["connectors"], plan.get("error") or "skipped")
        return {"ok": True, "actuate": actuate, "main_loop": loop, "state": state,
                "probes": probes, "actuated": actuated}

    def device(self, request):
        """One device as the firmware knows it, with the state it is judged on:
          meter {"connector": 1}  -> "reading" (that connector's last reading,
                                     with age_s), "connectors" (every one)
          modem                   -> "status" (the last ModemStatus, with age_s)
          rfid read               -> "last_card"
          rfid wait_card {"timeout": s, "consume": true} -> "id_tag" of the next
                                     card within the timeout, or null
        A device the firmware sees failing gives {"ok": false, "error",
        "error_code", "state"} at once."""
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
            return {"ok": False, "error": NOT_PUBLISHED}
        if name == "meter" and str(connector) not in state["connectors"]:
            return {"ok": False, "error": "no connector %r on this station" % (connector,)}
        worker = "meter%d" % int(connector) if name == "meter" else name
        fault = device_fault(state, worker)
        if fault is not None:
            code, detail = fault
            return {"ok": False, "device": name, "error": "%s (%s): %s" % (worker, code, detail),
                    "error_code": code, "state": state}
        response = {"ok": True, "device": name, "state": state}
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
