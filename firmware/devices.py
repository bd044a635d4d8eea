"""Device workers: every device's I/O runs on its own thread.

A Modbus read that times out after a second, or an AT command that never
answers, then delays only that device's own thread. The main loop hears about
devices only through events on its queue (firmware/events.py):

    Event("ev", cid, state)             the pilot saw a new EV state
    Event("card", None, id_tag)         a card was presented
    Event("meter", cid, MeterSample)    a meter reading
    Event("lock", cid, locked)          the lock's feedback changed
    Event("modem", None, ModemStatus)   modem health
    Event("fault", cid, (code, info))   a device failed (cid 0 = the station)
    Event("fault_cleared", cid, code)   it works again

Commands (contactor, lock, offered current) are handed to the device's thread
and run there at once; the main loop never waits for them.
"""

import logging
import queue
import threading
import time

from drivers.hal import ERROR_CODES, WEAK_SIGNAL_DBM, DeviceError
from firmware.events import CARD, EV, FAULT, FAULT_CLEARED, LOCK, METER, MODEM, SECURITY, Event

log = logging.getLogger("firmware.devices")

FAILURES_BEFORE_FAULT = 2      # consecutive failed polls before a fault is raised
FEEDBACK_SETTLE = 0.3          # s; contacts and locks may take this long to follow


class DeviceWorker:
    """One thread: runs queued commands at once, polls every `interval`."""

    def __init__(self, name, events, cid, device_kind, interval, poll=None):
        self.name = name
        self.events = events
        self.cid = cid
        self.kind = device_kind
        self.interval = interval
        self._poll = poll
        self._inbox = queue.Queue()
        self._stop = False
        self._failures = 0
        self._faulted = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop = True
        self._inbox.put(None)

    def join(self, timeout):
        self._thread.join(timeout)

    @property
    def failures(self):
        """Consecutive failed polls (0 once the device answers again)."""
        return self._failures

    @property
    def faulted(self):
        """True while this device's fault is raised."""
        return self._faulted

    def submit(self, fn):
        """Run fn() on this device's thread, soon; never blocks the caller."""
        self._inbox.put(fn)

    def emit(self, kind, value):
        self.events.put(Event(kind, self.cid, value))

    # --- fault bookkeeping: a failure is reported once, a recovery once ---------
    def failed(self, error, at_once=False):
        self._failures += 1
        if self.kind is None:       # no OCPP errorCode for this device (the indicator)
            log.warning("%s: %s", self.name, error)
            return
        if not self._faulted and (at_once or self._failures >= FAILURES_BEFORE_FAULT):
            self._faulted = True
            code, where = ERROR_CODES[self.kind]
            log.warning("%s: %s", self.name, error)
            self.events.put(Event(FAULT, self._fault_connector(where), (code, str(error)[:50])))

    def succeeded(self):
        self._failures = 0
        if self._faulted and self.kind is not None:
            self._faulted = False
            code, where = ERROR_CODES[self.kind]
            log.info("%s works again", self.name)
            self.events.put(Event(FAULT_CLEARED, self._fault_connector(where), code))

    def _fault_connector(self, where):
        return 0 if where == "station" else self.cid

    def _run(self):
        next_poll = time.monotonic()
        while not self._stop:
            timeout = max(0.0, next_poll - time.monotonic()) if self._poll else None
            try:
                fn = self._inbox.get(timeout=timeout)
            except queue.Empty:
                fn = None
            if self._stop:
                break
            if fn is not None:
                try:
                    fn()
                except Exception as e:
                    self.failed(e, at_once=True)
                continue
            if self._poll is not None and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.interval
                try:
                    self._poll()
                except DeviceError as e:
                    self.failed(e)
                except Exception as e:     # a driver bug must not kill the thread
                    log.exception("%s: poll failed", self.name)
                    self.failed(e)


class PilotWorker(DeviceWorker):
    def __init__(self, events, cid, pilot, interval=0.1):
        DeviceWorker.__init__(self, "pilot%d" % cid, events, cid, "pilot", interval, self._read)
        self.pilot = pilot
        self._last = None

    def _read(self):
        state = self.pilot.ev_state()
        self.succeeded()
        if state != self._last:
            self._last = state
            self.emit(EV, state)

    def offer(self, amps):
        self.submit(lambda: self.pilot.set_offered_current(amps))


class MeterWorker(DeviceWorker):
    def __init__(self, events, cid, meter, interval=1.0):
        DeviceWorker.__init__(self, "meter%d" % cid, events, cid, "meter", interval, self._read)
        self.meter = meter

    def _read(self):
        sample = self.meter.read()
        self.succeeded()
        self.emit(METER, sample)


class RfidWorker(DeviceWorker):
    def __init__(self, events, rfid, interval=0.2):
        DeviceWorker.__init__(self, "rfid", events, None, "rfid", interval, self._read)
        self.rfid = rfid

    def _read(self):
        uid = self.rfid.poll()
        self.succeeded()
        if uid:
            self.emit(CARD, uid)


class TamperWorker(DeviceWorker):
    """Watches the enclosure's tamper contact: each opening is the security
    event TamperDetectionActivated (critical: journaled for the CSMS)."""

    def __init__(self, events, tamper, interval=0.2):
        DeviceWorker.__init__(self, "tamper", events, None, None, interval, self._read)
        self.tamper = tamper
        self._seen = 0          # openings already reported

    def _read(self):
        count = self.tamper.openings()
        for _ in range(max(0, count - self._seen)):
            self.emit(SECURITY, ("TamperDetectionActivated", "enclosure opened"))
        self._seen = max(self._seen, count)


class ContactorWorker(DeviceWorker):
    """Drives the coil and watches the mirror contact: closed while commanded
    open = welded, open while commanded closed = failed to close."""

    def __init__(self, events, cid, contactor, interval=1.0):
        DeviceWorker.__init__(self, "contactor%d" % cid, events, cid, "contactor", interval,
                              self._check)
        self.contactor = contactor
        self.commanded = False
        self._changed_at = 0.0

    def set(self, closed):
        def drive():
            self.commanded = closed
            self._changed_at = time.monotonic()
            self.contactor.set(closed)
        self.submit(drive)

    def _check(self):
        if time.monotonic() - self._changed_at < FEEDBACK_SETTLE:
            return
        actual = self.contactor.feedback()
        if actual == self.commanded:
            self.succeeded()
        elif actual:
            self.failed(DeviceError("contactor welded: closed while commanded open"), at_once=True)
        else:
            self.failed(DeviceError("contactor did not close"), at_once=True)


class LockWorker(DeviceWorker):
    def __init__(self, events, cid, lock, interval=1.0):
        DeviceWorker.__init__(self, "lock%d" % cid, events, cid, "lock", interval, self._check)
        self.lock = lock
        self._last = None

    def set(self, locked):
        def drive():
            self.lock.set(locked)
            # A lock moves in bounded time: watch its feedback until it follows.
            deadline = time.monotonic() + getattr(self.lock, "actuation_time", 1.0)
            while bool(self.lock.feedback()) != locked and time.monotonic() < deadline \
                    and not self._stop:
                time.sleep(0.02)
            self._check()
        self.submit(drive)

    def _check(self):
        state = bool(self.lock.feedback())
        if state != self._last:
            self._last = state
            self.emit(LOCK, state)


class ModemWorker(DeviceWorker):
    def __init__(self, events, modem, interval=60.0):
        DeviceWorker.__init__(self, "modem", events, None, "modem", interval, self._read)
        self.modem = modem

    def _read(self):
        status = self.modem.status()
        self.emit(MODEM, status)
        if status.signal_dbm is not None and status.signal_dbm <= WEAK_SIGNAL_DBM:
            self.failed(DeviceError("weak signal: %d dBm" % status.signal_dbm), at_once=True)
        else:
            self.succeeded()
