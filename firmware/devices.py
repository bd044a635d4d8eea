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

The self-test asks each worker for a fresh reading (request_probe): the read
runs on the device's own thread, like a poll, and its answer goes to the
asker's queue; the asker (the maintenance server's thread) waits for it with
the device's probe_timeout. A device that does not answer in time fails the
self-test; the main loop never waits for any of it.
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

    probe_timeout = None    # s a fresh reading may take (queued behind a poll); None: no probe

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

    def probe(self):
        """Read the device once, now, on this thread: a dict of what was read.
        Raises DeviceError when it does not answer. The reading counts like a poll."""
        raise NotImplementedError

    def request_probe(self, answers):
        """Ask for a fresh reading (any thread, never blocks): (name, answer) is put
        on `answers` once read, answer = {"ok", "facts" or "error", "read_mono",
        "took_s"}."""
        def run():
            t0 = time.monotonic()
            try:
                answer = {"ok": True, "facts": self.probe()}
            except Exception as e:
                self.failed(e)
                answer = {"ok": False, "error": str(e) or type(e).__name__}
            answer["read_mono"] = time.monotonic()
            answer["took_s"] = round(answer["read_mono"] - t0, 3)
            answers.put((self.name, answer))
        self.submit(run)

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
    probe_timeout = 2.0

    def __init__(self, events, cid, pilot, interval=0.1):
        DeviceWorker.__init__(self, "pilot%d" % cid, events, cid, "pilot", interval, self._read)
        self.pilot = pilot
        self._last = None
        self._unsent = None      # an offer the pilot did not take (sent again once it answers)

    def _read(self):
        state = self.pilot.ev_state()
        if self._unsent is not None:
            # An offer (say 0 A after a fault) failed while the pilot was away: the
            # EV still sees the old PWM, so it is sent before anything else.
            self.pilot.set_offered_current(self._unsent)
            self._unsent = None
        self.succeeded()
        if state != self._last:
            self._last = state
            self.emit(EV, state)

    def probe(self):
        self._read()
        return {"ev_state": self._last}

    def offer(self, amps):
        def send():
            self._unsent = amps
            self.pilot.set_offered_current(amps)
            self._unsent = None
        self.submit(send)


class MeterWorker(DeviceWorker):
    probe_timeout = 4.0     # a Modbus timeout (and a poll queued before it) fit in it

    def __init__(self, events, cid, meter, interval=1.0):
        DeviceWorker.__init__(self, "meter%d" % cid, events, cid, "meter", interval, self._read)
        self.meter = meter

    def _read(self):
        sample = self.meter.read()
        self.succeeded()
        self.emit(METER, sample)
        return sample

    def probe(self):
        sample = self._read()
        return {"energy_wh": sample.energy_wh, "power_w": sample.power_w}


class RfidWorker(DeviceWorker):
    probe_timeout = 2.0

    def __init__(self, events, rfid, interval=0.2):
        DeviceWorker.__init__(self, "rfid", events, None, "rfid", interval, self._read)
        self.rfid = rfid

    def _read(self):
        uid = self.rfid.poll()
        self.succeeded()
        if uid:
            self.emit(CARD, uid)     # a card read by a probe is used as any other

    def probe(self):
        self._read()
        return {"answers": True}


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

    probe_timeout = 2.0

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

    def probe(self):
        """The mirror contact read now (the verdict is the reader's: it may be settling)."""
        return {"commanded_closed": self.commanded,
                "feedback_closed": bool(self.contactor.feedback()),
                "settling": time.monotonic() - self._changed_at < FEEDBACK_SETTLE}


class LockWorker(DeviceWorker):
    probe_timeout = 4.0     # a lock movement under way (its actuation time) comes first

    def __init__(self, events, cid, lock, interval=1.0):
        DeviceWorker.__init__(self, "lock%d" % cid, events, cid, "lock", interval, self._poll_lock)
        self.lock = lock
        self._last = None
        self.commanded = None     # the position last commanded (None: none yet)

    def set(self, locked):
        def drive():
            self.commanded = locked
            self._move(locked)
            self._check()
            if not locked and self._last:
                # A bolt that does not release traps the driver's cable: a fault
                # (ConnectorLockFailure); polls retry the release until it moves.
                # A bolt that does not engage is the engine's to judge (its lock
                # timeout refuses the session, TC_024).
                self.failed(DeviceError("cable lock did not release"), at_once=True)
        self.submit(drive)

    def _move(self, locked):
        self.lock.set(locked)
        # A lock moves in bounded time: watch its feedback until it follows.
        deadline = time.monotonic() + getattr(self.lock, "actuation_time", 1.0)
        while bool(self.lock.feedback()) != locked and time.monotonic() < deadline \
                and not self._stop:
            time.sleep(0.02)

    def _poll_lock(self):
        if self.commanded is not None and self._faulted and \
                bool(self.lock.feedback()) != self.commanded:
            self._move(self.commanded)       # retry: the obstruction may be gone
        self._check()
        if self.commanded is None or self._last == self.commanded:
            self.succeeded()

    def _check(self):
        state = bool(self.lock.feedback())
        if state != self._last:
            self._last = state
            self.emit(LOCK, state)

    def probe(self):
        self._check()
        return {"engaged": self._last}


class ModemWorker(DeviceWorker):
    probe_timeout = 8.0     # a few AT commands, each with its own timeout

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
        return status

    def probe(self):
        status = self._read()
        return {"signal_dbm": status.signal_dbm, "registered": status.registered}
