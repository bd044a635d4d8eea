"""The firmware's main loop: one thread owns the OCPP engine.

The websocket link's threads put events on a queue; the loop waits on that
queue until the next timer is due, so it sleeps when nothing happens and
answers a CSMS call as soon as its frame arrives.
"""

import logging
import queue
import time

from firmware.link import CsmsLink, LinkSettings, build_url
from ocpp_core.clock import Clock
from ocpp_core.registration import Registration
from ocpp_core.rpc import CHARGE_POINT, RpcEndpoint

log = logging.getLogger("firmware")
trace_log = logging.getLogger("ocpp.trace")

MAX_WAIT = 5.0  # s; the loop wakes at least this often even with no timer due


def _trace(direction, text):
    trace_log.info("%s %s", ">>" if direction == "tx" else "<<", text)


class Firmware:
    def __init__(self, cfg, clock=None):
        self.cfg = cfg
        self.clock = clock or Clock()
        self.events = queue.Queue()
        self.link = CsmsLink(LinkSettings(url=build_url(cfg.csms_url, cfg.charge_point_id),
                                          charge_point_id=cfg.charge_point_id,
                                          password=cfg.password, ca_bundle=cfg.ca_bundle),
                             self.events)
        self.rpc = RpcEndpoint(CHARGE_POINT, self.link.send, clock=self.clock.monotonic,
                               trace=_trace)
        self.registration = Registration(self.rpc, self.clock, cfg.boot_notification())
        # No vendor extensions yet: every DataTransfer names an unknown vendor.
        self.rpc.on("DataTransfer", lambda payload: {"status": "UnknownVendorId"})
        self._running = False

    def stop(self):
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self._running = False
        self.events.put(("stop", None))

    def run(self):
        self._running = True
        log.info("charge point %s, CSMS %s", self.cfg.charge_point_id, self.cfg.csms_url)
        self.link.start()
        try:
            while self._running:
                self._step()
        finally:
            self.link.stop()
            log.info("stopped")

    def _step(self):
        waits = [MAX_WAIT]
        for due in (self.rpc.poll(), self.registration.tick()):
            if due is not None:
                waits.append(due)
        try:
            kind, data = self.events.get(timeout=max(0.0, min(waits)))
        except queue.Empty:
            return
        self._handle(kind, data)
        # Drain what else arrived without sleeping in between.
        while True:
            try:
                kind, data = self.events.get_nowait()
            except queue.Empty:
                return
            self._handle(kind, data)

    def _handle(self, kind, data):
        if kind == "frame":
            self.rpc.receive(data)
        elif kind == "up":
            log.info("connected to the CSMS")
            self.rpc.connection_up()
            self.registration.connection_up()
        elif kind == "down":   # the link has logged why
            self.rpc.connection_down()
            self.registration.connection_down()
        elif kind == "stop":
            self._running = False
