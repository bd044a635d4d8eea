"""The firmware's main loop: one thread owns the OCPP engine.

The websocket link and every device have threads of their own that put events
(firmware/events.py) on one queue. The loop waits on that queue until the
engine's next timer is due, so it sleeps when nothing happens and answers a
CSMS call as soon as its frame arrives, however slow the meter or the modem is.
Each kind of event has one method here (ON_EVENT); the security extension's
wiring (certificate store, profiles, trial and fall back) is firmware/security_wiring.py.

After every batch of events the loop projects the engine's state once
(firmware/station_state.py): the bench's status, the maintenance socket, the
systemd status line and the indicator all show that one projection.
"""

import logging
import queue

from firmware import diagnostics, maintenance_handlers, store_faults
from firmware.device_config import modem_poll_interval
from firmware.devices import (ContactorWorker, DeviceWorker, LockWorker, MeterWorker,
                              ModemWorker, PilotWorker, RfidWorker, TamperWorker)
from firmware.events import (CARD, DOWN, EV, FALLBACK, FAULT, FAULT_CLEARED, FRAME, LOCK,
                             MAINTENANCE, METER, MODEM, RUN, SECURITY, STOP, TRANSFER, UP,
                             Event)
from firmware.link import CsmsLink, LinkSettings, build_url
from firmware.security_wiring import SecurityWiring
from firmware.station_binding import HalStation
from firmware.station_state import StationProjection, bench_view
from firmware.systemd import Notifier
from firmware.transfers import FirmwareTransfers, TransferWorker
from ocpp_core.charge_point import ChargePoint
from ocpp_core.clock import Clock
from ocpp_core.firmware_management.diagnostics import uploads_done
from ocpp_core.framing import MAX_FRAME_CHARS
from ocpp_core.rpc import CHARGE_POINT, RpcEndpoint
from ocpp_core.station import StationProfile
from ocpp_core.store import Store

log = logging.getLogger("firmware")
trace_log = logging.getLogger("ocpp.trace")

SHUTDOWN_GRACE = 3.0   # s; on SIGTERM, time to deliver the StopTransactions

_INDICATOR = {"Available": "available", "Preparing": "preparing", "Charging": "charging",
              "SuspendedEV": "suspended", "SuspendedEVSE": "suspended",
              "Finishing": "finishing", "Reserved": "reserved", "Unavailable": "unavailable",
              "Faulted": "faulted"}
REFUSED_SHOWN_S = 3.0   # s the indicator shows "refused" after a card was refused


TRACE_MAX_CHARS = MAX_FRAME_CHARS   # a longer frame is refused: log its head, not 1 MiB


def _trace(direction, text):
    if len(text) > TRACE_MAX_CHARS:
        text = "%s... (%d characters, over the %d limit)" % (text[:200], len(text),
                                                              TRACE_MAX_CHARS)
    trace_log.info("%s %s", ">>" if direction == "tx" else "<<", text)


class Firmware:
    # kind of event -> the method that handles it (each takes the event)
    ON_EVENT = {
        FRAME: "_on_frame",
        UP: "_on_link_up",
        DOWN: "_on_link_down",
        EV: "_on_ev_state",
        METER: "_on_meter_sample",
        CARD: "_on_card",
        LOCK: "_on_lock_feedback",
        FAULT: "_on_fault",
        FAULT_CLEARED: "_on_fault_cleared",
        MODEM: "_on_modem_status",
        STOP: "_on_stop",
        MAINTENANCE: "_on_maintenance_request",
        TRANSFER: "_on_transfer",
        SECURITY: "_on_security_event",
        FALLBACK: "_on_profile_fallback",
        RUN: "_on_run",
    }

    def __init__(self, cfg, hal, clock=None):
        self.cfg = cfg
        self.hal = hal
        self.clock = clock or Clock()
        self.events = queue.Queue()
        self.maintenance = maintenance_handlers.Maintenance()
        self.modem_status = None
        self.security_wiring = SecurityWiring(cfg, self.events, link=lambda: self.link)
        self.certificates = self.security_wiring.certificates
        tls_url = getattr(cfg, "tls_url", None)
        self.link = CsmsLink(LinkSettings(url=build_url(cfg.csms_url, cfg.charge_point_id),
                                          charge_point_id=cfg.charge_point_id,
                                          password=cfg.password, ca_bundle=cfg.ca_bundle,
                                          tls_url=build_url(tls_url, cfg.charge_point_id)
                                          if tls_url else None,
                                          tls_context=self.security_wiring.tls_context),
                             self.events)
        self.rpc = RpcEndpoint(CHARGE_POINT, self.link.send, clock=self.clock.monotonic,
                               trace=self._trace_frame)
        self.store = Store(cfg.data_dir, faults=store_faults.from_environment(), probe=True)
        self.profile = StationProfile(number_of_connectors=len(hal.connectors),
                                      fixed_cable=cfg.fixed_cable,
                                      max_current_a=cfg.max_current_a, phases=cfg.phases,
                                      meter_measurands=hal.meter_measurands())
        self._make_workers()
        self.station = HalStation(self.connector_workers, self._request_restart)
        transfers = FirmwareTransfers(self.transfer_worker, cfg.data_dir, ca_bundle=cfg.ca_bundle,
                                      releases_dir=getattr(cfg, "releases_dir", None),
                                      restart=self.restart)
        self.cp = ChargePoint(self.rpc, self.clock, self.store, self.station, self.profile,
                              self._boot_payload(), transfers=transfers)
        self.security_wiring.attach_events(self.cp, self.store, self.transfer_worker,
                                           transfers.image, self.clock)
        self.security_log = self.security_wiring.security_log   # read by tools.diag
        self.maintenance.attach(self)      # fault log and card hook for tools.diag
        self.uploads = diagnostics.attach(self)    # GetDiagnostics, GetLog (transfer worker)
        self._apply_engine_settings()
        self.projection = StationProjection()
        self.snapshot = {}
        self.systemd = Notifier()
        self._systemd_status = None
        self.restart_kind = None
        self.on_registration = None     # fn(status) after every batch: a release's trial
        self._running = False
        self._indicator_state = None
        self._refused_until = None    # monotonic time the "refused" indication ends
        self.publish()

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
        self.workers.append(ModemWorker(e, self.hal.modem, modem_poll_interval(self.cfg)))
        if getattr(self.hal, "tamper", None) is not None:
            self.workers.append(TamperWorker(e, self.hal.tamper))
        self.indicator = DeviceWorker("indicator", e, None, None, 0)
        self.workers.append(self.indicator)
        self.transfer_worker = TransferWorker(e)    # Firmware Management: no device, not in workers

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
        try:
            self.rpc.response_timeout = float(cfg.get("MessageTimeout"))
        except KeyError:
            pass
        self.cp.events.listen("config", self._config_changed)
        self.cp.events.listen("card_refused", self._card_refused)
        self.security_wiring.attach_profile()

    def _card_refused(self, id_tag, why):
        """The driver sees it: the indicator shows "refused" for a few seconds."""
        self._refused_until = self.clock.monotonic() + REFUSED_SHOWN_S

    def _config_changed(self, key, value):
        """A configuration key the link depends on took effect (after its answer)."""
        if key == "WebSocketPingInterval":
            self.link.set_ping_interval(value)
        elif key == "MessageTimeout":
            self.rpc.response_timeout = float(value)

    # --- control --------------------------------------------------------------------------
    def stop(self):
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self.events.put(Event(STOP, None, None))

    def restart(self, kind):
        """Ask the loop to end and the process to restart as `kind` (any thread):
        "firmware" once an update is switched in (firmware/releases.py)."""
        self.events.put(Event(STOP, None, kind))

    def _request_restart(self, kind):
        # Critical: journaled before the loop ends, delivered after the restart.
        self.cp.events.emit("security_event", "ResetOrReboot", "restart (%s)" % kind)
        self.restart_kind = kind
        self._running = False

    def run(self):
        """Run until stopped or a Reset; returns the reset kind or None."""
        self._running = True
        log.info("charge point %s, CSMS %s, data in %s", self.cfg.charge_point_id,
                 self.cfg.csms_url, self.cfg.data_dir)
        for w in self.workers:
            w.start()
        self.transfer_worker.start()
        self.link.start()
        self.cp.events.emit("security_event", "StartupOfTheDevice", "firmware %s started" %
                            self.cp.registration.boot_payload.get("firmwareVersion", "?"))
        self.systemd.ready("connecting to %s" % self.cfg.csms_url)
        try:
            while self._running:
                try:
                    wait = self.cp.tick()
                except Exception as e:
                    # Like an event: a bug in one timer must not take the station down.
                    log.exception("engine tick failed")
                    self._memory_exhausted(e)
                    wait = 1.0
                if self._refused_until is not None:   # wake up to end the indication
                    wait = min(wait, max(0.0, self._refused_until - self.clock.monotonic()))
                ping = self.systemd.watchdog()
                self._step(min(wait, ping) if ping else wait)
        finally:
            self.systemd.stopping()
            self._shutdown()
        return self.restart_kind

    def _step(self, wait):
        try:
            event = self.events.get(timeout=max(0.0, min(wait, 5.0)))
        except queue.Empty:
            if self._refused_until is not None:
                self.publish()      # the "refused" indication may have ended
            return
        self._handle(event)
        while True:      # drain what else arrived, without sleeping in between
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            self._handle(event)
        self.publish()

    def _handle(self, event):
        try:
            self._dispatch(event)
        except Exception as e:
            # A bug in handling one event must not take the station down; the
            # engine re-derives its outputs from the facts at the next event.
            log.exception("event %r failed", event.kind)
            self._memory_exhausted(e)

    def _memory_exhausted(self, e):
        if isinstance(e, MemoryError):      # security whitepaper: MemoryExhaustion
            self.cp.events.emit("security_event", "MemoryExhaustion", "out of memory (RAM)")

    def _dispatch(self, event):
        method = self.ON_EVENT.get(event.kind)
        if method is None:
            log.warning("ignored an event of unknown kind %r", event.kind)
            return
        getattr(self, method)(event)

    # --- the events ---------------------------------------------------------------------
    def _on_frame(self, event):
        self.rpc.receive(event.value)

    def _on_link_up(self, event):
        self.security_wiring.link_up()      # may end a security profile upgrade's trial
        self.cp.connection_up()

    def _on_link_down(self, event):      # the link has logged why
        self.cp.connection_down()

    def _on_ev_state(self, event):
        self.cp.ev_state_changed(event.connector, event.value)

    def _on_meter_sample(self, event):
        self.cp.meter_sample(event.connector, event.value)

    def _on_card(self, event):
        if not self.maintenance.take_card(self, event.value):
            self.cp.card_presented(event.value)

    def _on_lock_feedback(self, event):
        self.cp.lock_feedback(event.connector, event.value)

    def _on_fault(self, event):
        code, info = event.value
        self.cp.fault(event.connector, code, info)

    def _on_fault_cleared(self, event):
        self.cp.fault_cleared(event.connector, event.value)

    def _on_modem_status(self, event):
        self._modem_status(event.value)

    def _on_stop(self, event):
        self._graceful_stop()
        if event.value:     # a restart asked from another thread (self.restart)
            self.restart_kind = event.value

    def _on_maintenance_request(self, event):     # a tools.diag request that needs the engine
        maintenance_handlers.dispatch(self, event.value)

    # the security extension's events (firmware/security_wiring.py)
    def _on_security_event(self, event):     # from the link or a device thread
        self.security_wiring.on_security_event(event)

    def _on_profile_fallback(self, event):   # the link gave up on an upgraded profile
        self.security_wiring.on_profile_fallback(event)

    def _on_run(self, event):    # a certificate store job's result
        self.security_wiring.on_run(event)

    def _on_transfer(self, event):      # a download, an image check or an upload finished
        result = event.value
        if result.op in ("diagnostics", "log"):
            uploads_done(self.cp, result.op, result.ok, result.detail)
        else:
            self.cp.firmware.transfer_done(result.op, result.ok, result.detail)

    def _trace_frame(self, direction, text):
        _trace(direction, text)
        self.maintenance.publish_trace(direction, text)

    def _modem_status(self, status):
        """Keep the SIM's identities for the next BootNotification (written only
        when they change: a new SIM)."""
        fresh = {"iccid": status.iccid, "imsi": status.imsi}
        if fresh != self._saved_modem and (status.iccid or status.imsi):
            try:
                self.store.save("modem", fresh)
                self._saved_modem = fresh
            except OSError:
                pass     # a failing data dir (reported by the store): tried again next time
        self.modem_status = status

    def _graceful_stop(self):
        """SIGTERM or a restart asked by another thread (a firmware update switched
        in): end transactions cleanly (reason Reboot) and give the journal and the
        CALLs already made (InstallRebooting, a status) a moment to be delivered;
        what the journal does not deliver goes out after the next start."""
        for cid, c in self.cp.connectors.items():
            if c.in_transaction:
                self.cp.stop_transaction(cid, "Reboot")
        deadline = self.clock.monotonic() + SHUTDOWN_GRACE
        while (self.cp.journal.pending_count() or self.rpc.pending) and self.link.connected \
                and self.clock.monotonic() < deadline:
            self.cp.tick()
            try:
                event = self.events.get(timeout=0.05)
            except queue.Empty:
                continue
            if event.kind != STOP:
                self._handle(event)
        self._running = False

    def _shutdown(self):
        for cid, w in self.connector_workers.items():
            w["pilot"].offer(0)
        self.hal.close()                # every contactor open, whatever else happens
        for w in self.workers:
            w.stop()
        self.transfer_worker.stop()
        self.link.stop()
        for w in self.workers:
            w.join(2.0)
        self.transfer_worker.join(2.0)
        log.info("stopped")

    # --- what the bench, the tools, systemd and the indicator see ---------------------------
    def publish(self):
        """Project the engine's state once and show it everywhere (main thread)."""
        state = self.projection.project(self)
        self.maintenance.state = state
        self.snapshot = bench_view(state)       # read by the bench's status, any thread
        if self.on_registration is not None:
            self.on_registration(state["registration"])
        connected = state["link"]["connected"]
        connector_1 = state["connectors"].get("1", {}).get("ocpp_status")
        systemd_status = "%s, CSMS %s, connector 1 %s" % (
            state["registration"], "up" if connected else "down", connector_1)
        if systemd_status != self._systemd_status:
            self._systemd_status = systemd_status
            self.systemd.status(systemd_status)
        shown = _INDICATOR.get(connector_1 or "", "available")
        if not connected and shown == "available":
            shown = "offline"
        if self._refused_until is not None:
            if self.clock.monotonic() < self._refused_until:
                shown = "refused"
            else:
                self._refused_until = None
        if shown != self._indicator_state:
            self._indicator_state = shown
            cfg = self.cp.config
            blink, intensity = cfg.get("BlinkRepeat"), cfg.get("LightIntensity")
            self.indicator.submit(lambda: self.hal.indicator.show(shown, blink, intensity))
