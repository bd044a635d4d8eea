"""The firmware's main loop: one thread owns the OCPP engine.

The websocket link and every device have threads of their own that put events
on one queue. The loop waits on that queue until the engine's next timer is
due, so it sleeps when nothing happens and answers a CSMS call as soon as its
frame arrives, however slow the meter or the modem is.
"""

import logging
import queue

from firmware import maintenance_handlers
from firmware.devices import (ContactorWorker, DeviceWorker, LockWorker, MeterWorker,
                              ModemWorker, PilotWorker, RfidWorker)
from firmware.link import CsmsLink, LinkSettings, build_url
from firmware.station_binding import HalStation
from firmware.systemd import Notifier
from ocpp_core.charge_point import ChargePoint
from ocpp_core.clock import Clock
from ocpp_core.rpc import CHARGE_POINT, RpcEndpoint
from ocpp_core.station import StationProfile
from ocpp_core.store import Store

log = logging.getLogger("firmware")
trace_log = logging.getLogger("ocpp.trace")

SHUTDOWN_GRACE = 3.0   # s; on SIGTERM, time to deliver the StopTransactions

_INDICATOR = {"Available": "available", "Preparing": "preparing", "Charging": "charging",
              "SuspendedEV": "suspended", "SuspendedEVSE": "suspended",
              "Finishing": "finishing", "Reserved": "preparing", "Unavailable": "unavailable",
              "Faulted": "faulted"}


def _trace(direction, text):
    trace_log.info("%s %s", ">>" if direction == "tx" else "<<", text)


class Firmware:
    def __init__(self, cfg, hal, clock=None):
        self.cfg = cfg
        self.hal = hal
        self.clock = clock or Clock()
        self.events = queue.Queue()
        self.maintenance = maintenance_handlers.Maintenance()
        self.modem_status = None
        self.link = CsmsLink(LinkSettings(url=build_url(cfg.csms_url, cfg.charge_point_id),
                                          charge_point_id=cfg.charge_point_id,
                                          password=cfg.password, ca_bundle=cfg.ca_bundle),
                             self.events)
        self.rpc = RpcEndpoint(CHARGE_POINT, self.link.send, clock=self.clock.monotonic,
                               trace=self._trace_frame)
        self.store = Store(cfg.data_dir)
        self.profile = StationProfile(number_of_connectors=len(hal.connectors),
                                      fixed_cable=cfg.fixed_cable,
                                      max_current_a=cfg.max_current_a, phases=cfg.phases)
        self._make_workers()
        self.station = HalStation(self.connector_workers, self._request_restart)
        self.cp = ChargePoint(self.rpc, self.clock, self.store, self.station, self.profile,
                              self._boot_payload())
        self.maintenance.attach(self)      # fault log and card hook for tools.diag
        self._apply_engine_settings()
        self.snapshot = {}
        self.systemd = Notifier()
        self._systemd_status = None
        self.restart_kind = None
        self._running = False
        self._indicator_state = None
        self._publish()

    # --- assembly -------------------------------------------------------------------
    def _make_workers(self):
        e = self.events
        self.connector_workers = {}
        self.workers = []
        for cid, devices in sorted(self.hal.connectors.items()):
            w = {"pilot": PilotWorker(e, cid, devices["pilot"]),
                 "meter": MeterWorker(e, cid, devices["meter"]),
                 "contactor": ContactorWorker(e, cid, devices["contactor"]),
                 "lock": LockWorker(e, cid, devices["lock"]) if devices.get("lock") else None}
            self.connector_workers[cid] = w
            self.workers.extend(x for x in w.values() if x is not None)
        self.workers.append(RfidWorker(e, self.hal.rfid))
        self.workers.append(ModemWorker(e, self.hal.modem))
        self.indicator = DeviceWorker("indicator", e, None, None, 0)
        self.workers.append(self.indicator)

    def _boot_payload(self):
        payload = self.cfg.boot_notification()
        # The modem may answer slowly: use what it told us last time; never wait.
        modem = self.store.load("modem", {}) or {}
        self._saved_modem = {"iccid": modem.get("iccid"), "imsi": modem.get("imsi")}
        for key in ("iccid", "imsi"):
            if isinstance(modem.get(key), str) and 0 < len(modem[key]) <= 20:
                payload[key] = modem[key]
        return payload

    def _apply_engine_settings(self):
        cfg = self.cp.config
        self.link.set_ping_interval(cfg.get("WebSocketPingInterval"))
        if cfg.get("AuthorizationKey"):
            self.link.set_password(cfg.get("AuthorizationKey"))
        try:
            self.rpc.response_timeout = float(cfg.get("MessageTimeout"))
        except KeyError:
            pass
        self.cp.hooks["WebSocketPingInterval"] = self.link.set_ping_interval
        self.cp.hooks["MessageTimeout"] = lambda v: setattr(self.rpc, "response_timeout", float(v))

        def new_password(value):
            log.info("AuthorizationKey changed: reconnecting with the new credentials")
            self.link.set_password(value)
            self.link.reconnect()
        self.cp.hooks["AuthorizationKey"] = new_password

    # --- control --------------------------------------------------------------------------
    def stop(self):
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self.events.put(("stop", None, None))

    def _request_restart(self, kind):
        self.restart_kind = kind
        self._running = False

    def run(self):
        """Run until stopped or a Reset; returns the reset kind or None."""
        self._running = True
        log.info("charge point %s, CSMS %s, data in %s", self.cfg.charge_point_id,
                 self.cfg.csms_url, self.cfg.data_dir)
        for w in self.workers:
            w.start()
        self.link.start()
        self.systemd.ready("connecting to %s" % self.cfg.csms_url)
        try:
            while self._running:
                wait = self.cp.tick()
                ping = self.systemd.watchdog()
                self._step(min(wait, ping) if ping else wait)
        finally:
            self.systemd.stopping()
            self._shutdown()
        return self.restart_kind

    def _step(self, wait):
        try:
            item = self.events.get(timeout=max(0.0, min(wait, 5.0)))
        except queue.Empty:
            return
        self._handle(item)
        while True:      # drain what else arrived, without sleeping in between
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                break
            self._handle(item)
        self._publish()

    def _handle(self, item):
        try:
            self._dispatch(item)
        except Exception:
            # A bug in handling one event must not take the station down; the
            # engine re-derives its outputs from the facts at the next event.
            log.exception("event %r failed", item[0])

    def _dispatch(self, item):
        if len(item) == 2:            # the link's events: (kind, data)
            kind, value = item
            cid = None
        else:
            kind, cid, value = item
        cp = self.cp
        if kind == "frame":
            self.rpc.receive(value)
        elif kind == "ev":
            cp.ev_state_changed(cid, value)
        elif kind == "meter":
            cp.meter_sample(cid, value)
        elif kind == "card":
            if not self.maintenance.take_card(self, value):
                cp.card_presented(value)
        elif kind == "lock":
            cp.lock_feedback(cid, value)
        elif kind == "fault":
            cp.fault(cid, value[0], value[1])
        elif kind == "fault_cleared":
            cp.fault_cleared(cid, value)
        elif kind == "modem":
            self._modem_status(value)
        elif kind == "up":
            cp.connection_up()
        elif kind == "down":        # the link has logged why
            cp.connection_down()
        elif kind == "stop":
            self._graceful_stop()
        elif kind == "maint":       # a tools.diag request that needs the engine
            maintenance_handlers.dispatch(self, value)

    def _trace_frame(self, direction, text):
        _trace(direction, text)
        self.maintenance.publish_trace(direction, text)

    def _modem_status(self, status):
        """Keep the SIM's identities for the next BootNotification (written only
        when they change: a new SIM)."""
        fresh = {"iccid": status.iccid, "imsi": status.imsi}
        if fresh != self._saved_modem and (status.iccid or status.imsi):
            self.store.save("modem", fresh)
            self._saved_modem = fresh
        self.modem_status = status

    def _graceful_stop(self):
        """SIGTERM: end transactions cleanly (reason Reboot) and give the journal a
        moment to deliver; what is not delivered goes out after the next start."""
        for cid, c in self.cp.connectors.items():
            if c.in_transaction:
                self.cp.stop_transaction(cid, "Reboot")
        deadline = self.clock.monotonic() + SHUTDOWN_GRACE
        while self.cp.journal.pending_count() and self.link.connected \
                and self.clock.monotonic() < deadline:
            self.cp.tick()
            try:
                item = self.events.get(timeout=0.05)
            except queue.Empty:
                continue
            if item[0] != "stop":
                self._handle(item)
        self._running = False

    def _shutdown(self):
        for cid, w in self.connector_workers.items():
            w["pilot"].offer(0)
        self.hal.close()                # every contactor open, whatever else happens
        for w in self.workers:
            w.stop()
        self.link.stop()
        for w in self.workers:
            w.join(2.0)
        log.info("stopped")

    # --- what the bench and the tools see ---------------------------------------------------
    def _publish(self):
        cp = self.cp
        connectors = {}
        for cid, c in cp.connectors.items():
            record = cp.journal.get(c.tx_key) if c.tx_key else None
            connectors[str(cid)] = {
                "ocpp_status": cp.status.status_of(cid),
                "error_code": c.error_code(),
                "transaction_id": record["transaction_id"] if record else None,
                "id_tag": record["id_tag"] if record else None,
            }
        systemd_status = "%s, CSMS %s, connector 1 %s" % (
            cp.registration.status, "up" if self.link.connected else "down",
            connectors.get("1", {}).get("ocpp_status"))
        if systemd_status != self._systemd_status:
            self._systemd_status = systemd_status
            self.systemd.status(systemd_status)
        self.snapshot = {
            "connectors": connectors,
            "ocpp": {"connected": self.link.connected,
                     "registration": cp.registration.status,
                     "queued_messages": cp.journal.pending_count()},
        }
        maintenance_handlers.publish(self)
        state = _INDICATOR.get(cp.status.status_of(1) or "", "available")
        if not self.link.connected and state == "available":
            state = "offline"
        if state != self._indicator_state:
            self._indicator_state = state
            cfg = cp.config
            blink, intensity = cfg.get("BlinkRepeat"), cfg.get("LightIntensity")
            self.indicator.submit(lambda: self.hal.indicator.show(state, blink, intensity))
