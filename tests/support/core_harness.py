"""In-process harness for the Core cases: the engine on a virtual clock, a fake
station that behaves like an EV and its hardware, and a CSMS endpoint wired
back to back with the charge point's RpcEndpoint.

Every CALL the charge point sends is checked twice: by the CSMS endpoint
(ocpp_core's validator) and by jsonschema against the official schema files of
the `ocpp` package. Any violation fails the test.
"""

import json
import os

import jsonschema
import ocpp

from ocpp_core.charge_point import ChargePoint
from ocpp_core.clock import Clock
from ocpp_core.metering import MeterSample
from ocpp_core.rpc import CENTRAL_SYSTEM, CHARGE_POINT, RpcEndpoint
from ocpp_core.station import StationInterface, StationProfile
from ocpp_core.store import Store
from ocpp_core.timestamps import format_utc, parse_rfc3339

SCHEMA_DIR = os.path.join(os.path.dirname(ocpp.__file__), "v16", "schemas")
_SCHEMAS = {}

START_WALL = parse_rfc3339("2026-11-24T10:00:00Z")


def official_schema(name):
    if name not in _SCHEMAS:
        with open(os.path.join(SCHEMA_DIR, name + ".json"), encoding="utf-8") as f:
            _SCHEMAS[name] = jsonschema.Draft4Validator(json.load(f))
    return _SCHEMAS[name]


class VirtualTime:
    def __init__(self, wall=START_WALL, monotonic=1000.0):
        self.wall_offset = wall - monotonic
        self.mono = monotonic

    def monotonic(self):
        return self.mono

    def wall(self):
        return self.mono + self.wall_offset


class FakeStation(StationInterface):
    """Records commands; the simulated EV draws current when offered some, and
    the lock reports back (or fails to, when lock_works is False)."""

    def __init__(self):
        self.commands = []
        self.contactor = {}
        self.offered = {}
        self.lock = {}
        self.lock_works = True
        self.ev_draws_when_offered = True
        self.restarts = []
        self.events = []      # (method, args) for the engine, delivered by the harness

    def set_contactor(self, cid, closed):
        self.commands.append(("contactor", cid, closed))
        self.contactor[cid] = closed

    def set_offered_current(self, cid, amps):
        self.commands.append(("offer", cid, amps))
        self.offered[cid] = amps
        if self.ev_draws_when_offered:
            self.events.append(("ev_wants", cid, amps > 0))

    def set_lock(self, cid, locked):
        self.commands.append(("lock", cid, locked))
        if self.lock_works:
            self.lock[cid] = locked
            self.events.append(("lock_feedback", cid, locked))

    def restart(self, kind):
        self.restarts.append(kind)


class Harness:
    def __init__(self, data_dir, profile=None, config=None, boot_answers=None):
        self.data_dir = str(data_dir)
        self.time = VirtualTime()
        self.profile = profile or StationProfile()
        self.station = FakeStation()
        self.csms_calls = []           # (action, payload, mono) the CP sent, in order
        self.csms_errors = []          # CALLERRORs our CSMS had to send: always a failure
        self.csms_answers = []         # answers the CP gave to our calls
        self.boot_answers = list(boot_answers or [])
        self.heartbeat_interval = 300
        self.id_tags = {}              # idTag -> idTagInfo; default Accepted
        self.next_tx_id = 1
        self.responders = {}           # action -> fn(payload) -> answer (overrides)
        self.unanswered = set()        # actions the CSMS ignores (timeouts)
        self.call_errors = {}          # action -> CALLERROR code to answer with
        self.connected = False
        self.energy_wh = {cid: 1000.0 for cid in self.profile.connector_ids()}
        self.power_w = {cid: 7400.0 for cid in self.profile.connector_ids()}
        self._wire = []                # frames in flight: ("to_cp"|"to_csms", text)
        self.initial_config = dict(config or {})
        self.ev = {cid: "A" for cid in self.profile.connector_ids()}
        self._make_csms()
        self.power_on()

    # --- construction ---------------------------------------------------------------
    def _make_csms(self):
        self.csms = RpcEndpoint(CENTRAL_SYSTEM, lambda t: self._wire.append(("to_cp", t)),
                                clock=self.time.monotonic)
        for action in ("BootNotification", "Heartbeat", "Authorize", "StartTransaction",
                       "StopTransaction", "StatusNotification", "MeterValues", "DataTransfer",
                       "DiagnosticsStatusNotification", "FirmwareStatusNotification",
                       "LogStatusNotification", "SecurityEventNotification",
                       "SignedFirmwareStatusNotification"):
            self.csms.on(action, self._csms_handler(action))
        real_transmit = self.csms._transmit

        def transmit(text):
            msg = json.loads(text)
            if msg[0] == 4:
                self.csms_errors.append(msg)
            real_transmit(text)
        self.csms._transmit = transmit

    def power_on(self):
        """Start (or restart after a power cut) the charge point on the same data."""
        self.clock = Clock(wall=self.time.wall, monotonic=self.time.monotonic, boot_id="bench")
        self.store = Store(self.data_dir)
        self.rpc = RpcEndpoint(CHARGE_POINT, lambda t: self._wire.append(("to_csms", t)),
                               clock=self.time.monotonic)
        boot = {"chargePointVendor": "OpenPiCharge", "chargePointModel": "PiCharger-AC1"}
        self.station.events = []
        self.cp = ChargePoint(self.rpc, self.clock, self.store, self.station, self.profile, boot)
        for key, value in self.initial_config.items():
            self.cp.config.set(key, value)
        self.initial_config = {}
        for cid in self.profile.connector_ids():
            self.cp.lock_feedback(cid, self.station.lock.get(cid, False)) \
                if self.profile.has_lock else None
            self._sample(cid)
            self.cp.ev_state_changed(cid, self.ev[cid])   # the pilot's state at start-up
        self.pump()

    def power_cut(self):
        """kill -9: the engine object is dropped without any goodbye."""
        self.disconnect(quiet=True)
        self.cp = None
        self.station.contactor = {}

    # --- the CSMS ---------------------------------------------------------------------
    def _csms_handler(self, action):
        def handler(payload):
            official_schema(action).validate(payload)
            self.csms_calls.append((action, payload, self.time.mono))
            if action in self.call_errors:
                from ocpp_core.errors import OcppError
                raise OcppError(self.call_errors[action], "test CSMS refuses")
            if action in self.responders:
                return self.responders[action](payload)
            return self._default_answer(action, payload)
        return handler

    def _default_answer(self, action, payload):
        now = format_utc(self.time.wall())
        if action == "BootNotification":
            status, interval = self.boot_answers.pop(0) if self.boot_answers else \
                ("Accepted", self.heartbeat_interval)
            return {"status": status, "currentTime": now, "interval": interval}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action == "Authorize":
            return {"idTagInfo": self.id_tags.get(payload["idTag"], {"status": "Accepted"})}
        if action == "StartTransaction":
            tx = self.next_tx_id
            self.next_tx_id += 1
            return {"transactionId": tx,
                    "idTagInfo": self.id_tags.get(payload["idTag"], {"status": "Accepted"})}
        if action == "StopTransaction":
            if "idTag" in payload:
                return {"idTagInfo": self.id_tags.get(payload["idTag"], {"status": "Accepted"})}
            return {}
        if action == "DataTransfer":
            return {"status": "UnknownVendorId"}
        return {}

    def call(self, action, payload):
        """A CSMS-initiated CALL; returns the charge point's answer payload
        (or ("error", code)) once it arrived."""
        box = []
        self.csms.call(action, payload, on_result=box.append,
                       on_error=lambda code, d, det: box.append(("error", code)))
        self.pump()
        assert box, "no answer to %s" % action
        official_schema(action + "Response").validate(box[0]) if isinstance(box[0], dict) else None
        self.csms_answers.append((action, box[0]))
        return box[0]

    def raw_call(self, action, payload, msg_id=None):
        """A CALL the harness's CSMS would refuse to send (it validates its own
        calls), straight into the charge point's endpoint; returns the answer
        frame (CALLRESULT or CALLERROR) as a list. Without msg_id: raw-1, raw-2,
        ... (a repeated id on one connection is refused as a replay)."""
        if msg_id is None:
            self._raw_ids = getattr(self, "_raw_ids", 0) + 1
            msg_id = "raw-%d" % self._raw_ids
        self.cp.rpc.receive(json.dumps([2, msg_id, action, payload]))
        self.cp.tick(self.time.mono)
        mine = [(d, t) for d, t in self._wire if d == "to_csms" and json.loads(t)[1] == msg_id]
        for item in mine:
            self._wire.remove(item)
        self.pump()
        assert len(mine) == 1, "no answer to %s" % action
        return json.loads(mine[0][1])

    # --- the link ---------------------------------------------------------------------
    def connect(self):
        self.connected = True
        self.csms.connection_up()
        self.cp.connection_up()
        self.pump()

    def disconnect(self, quiet=False):
        self.connected = False
        self._wire = []
        self.csms.connection_down()
        if self.cp is not None and not quiet:
            self.cp.connection_down()

    def boot(self):
        """Connect and get through BootNotification to the first statuses."""
        self.connect()
        self.advance(0)

    # --- the EV and the driver ----------------------------------------------------------
    def plug(self, cid=1):
        self.ev_state(cid, "B")

    def unplug(self, cid=1):
        self.ev_state(cid, "A")

    def ev_state(self, cid, state):
        self.ev[cid] = state
        self.cp.ev_state_changed(cid, state)
        self.pump()

    def tap(self, id_tag):
        self.cp.card_presented(id_tag)
        self.pump()

    def _sample(self, cid):
        drawing = self.station.contactor.get(cid) and self.ev[cid] in ("C", "D")
        self.cp.meter_sample(cid, MeterSample(energy_wh=self.energy_wh[cid],
                                              power_w=self.power_w[cid] if drawing else 0.0,
                                              current_a=(10.0, 10.0, 10.0) if drawing else
                                              (0.0, 0.0, 0.0),
                                              voltage_v=(230.0, 231.0, 229.0),
                                              frequency_hz=50.0))

    # --- time and delivery -------------------------------------------------------------
    def pump(self, limit=10000):
        """Deliver frames and station events until nothing moves."""
        for _ in range(limit):
            if self._wire:
                direction, text = self._wire.pop(0)
                if not self.connected:
                    continue
                if direction == "to_csms":
                    msg = json.loads(text)
                    if msg[0] == 2 and msg[2] in self.unanswered:
                        continue
                    self.csms.receive(text)
                else:
                    self.cp.rpc.receive(text)
                continue
            if self.cp is not None and self.station.events:
                kind, cid, value = self.station.events.pop(0)
                if kind == "lock_feedback":
                    self.cp.lock_feedback(cid, value)
                elif kind == "ev_wants" and value and self.ev[cid] == "B":
                    self.ev[cid] = "C"
                    self.cp.ev_state_changed(cid, "C")
                continue
            if self.cp is not None:
                self.cp.tick(self.time.mono)
                if self._wire or self.station.events:
                    continue
            return
        raise AssertionError("the engine does not settle")

    def advance(self, seconds, step=1.0):
        """Let virtual time pass; the meter integrates the power drawn."""
        end = self.time.mono + seconds
        while True:
            self.pump()
            if self.time.mono >= end:
                break
            due = self.cp.tick(self.time.mono) if self.cp is not None else step
            dt = min(max(due, 0.001), step, end - self.time.mono)
            for cid in self.energy_wh:
                if self.station.contactor.get(cid) and self.ev[cid] in ("C", "D"):
                    self.energy_wh[cid] += self.power_w[cid] * dt / 3600.0
            self.time.mono += dt
            if self.cp is not None:
                for cid in self.energy_wh:
                    self._sample(cid)
        self.pump()

    # --- assertions ------------------------------------------------------------------------
    def sent(self, action=None, since=0):
        return [(a, p) for a, p, t in self.csms_calls[since:] if action is None or a == action]

    def payloads(self, action, since=0):
        return [p for a, p in self.sent(action, since)]

    def statuses(self, cid=None, since=0):
        return [p["status"] for p in self.payloads("StatusNotification", since)
                if cid is None or p["connectorId"] == cid]

    def mark(self):
        return len(self.csms_calls)

    def check_clean(self):
        assert not self.csms_errors, "the CSMS had to answer CALLERRORs: %r" % self.csms_errors


# Status changes reported at once: the OCTT tests assert exact message order.
FAST = {"MinimumStatusDuration": 0}


def booted(h):
    """Connect and get through BootNotification (and assert it came first)."""
    h.boot()
    assert h.sent()[0][0] == "BootNotification"
    return h
