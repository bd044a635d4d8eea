"""Availability, Reset and UnlockConnector (OCPP 1.6 sections 5.2, 5.13, 5.17):
what the CSMS may do to the station's connectors, and its persisted state.

Availability is persisted in the store as "connectors":
{"0": {"operative", "scheduled"}, "<id>": {"operative", "scheduled", "finishing"}}.
"""

from ocpp_core.log import get_logger
from ocpp_core.rpc import Deferred, Reply
from ocpp_core.station import LOCK_TIMEOUT

log = get_logger("ocpp.cp")

STORE_NAME = "connectors"
RESET_GRACE = 5.0           # s; a reset waits this long for the journal to drain


class Availability:
    def __init__(self, cp):
        self.cp = cp
        self._saved = None      # what the store holds (no write when nothing changed)
        self._load()

    # --- persistence --------------------------------------------------------------------
    def _load(self):
        cp = self.cp
        saved = cp.store.load(STORE_NAME, {}) or {}
        try:
            station = saved.get("0", {})
            cp.station_operative = bool(station.get("operative", True))
            cp.station_scheduled = station.get("scheduled")
            for cid, c in cp.connectors.items():
                entry = saved.get(str(cid), {})
                c.operative = bool(entry.get("operative", True))
                c.scheduled = entry.get("scheduled")
                c.finishing = bool(entry.get("finishing", False))
        except (AttributeError, TypeError):
            log.warning("connector state file unreadable; starting from defaults")

    def save(self):
        cp = self.cp
        data = {"0": {"operative": cp.station_operative, "scheduled": cp.station_scheduled}}
        for cid, c in cp.connectors.items():
            data[str(cid)] = {"operative": c.operative, "scheduled": c.scheduled,
                              "finishing": c.finishing}
        if data != self._saved:     # two fsyncs saved per unchanged write
            try:
                cp.store.save(STORE_NAME, data)
            except OSError as e:    # a failing data dir: reported by the store; retried next change
                log.debug("connector states not saved: %s", e)
                return False
            self._saved = data
        return True

    # --- ChangeAvailability ---------------------------------------------------------------
    def change(self, connector_id, kind):
        """ChangeAvailability (5.2) -> (status, apply): apply() runs after the
        answer. connector_id 0 is the station and every connector.

        - Accepted: the change applies at once (also when it is already so).
        - Scheduled: a transaction runs on an affected connector; that connector
          (and, for connector 0, the station) changes when it ends. Idle
          connectors of a scheduled station change at once, so that no new
          session starts that would put the change off again.
        - Rejected: an unknown connector, or a connector asked to become
          Operative while the station (connector 0) is, or is about to be,
          Inoperative: 5.2 gives Accepted only for a change that takes place,
          and the connector would stay Unavailable.
        Becoming Inoperative drops authorizations waiting for a plug-in there.
        """
        cp = self.cp
        operative = kind == "Operative"
        if connector_id != 0 and connector_id not in cp.connectors:
            return "Rejected", None
        if connector_id != 0 and operative and \
                (not cp.station_operative or cp.station_scheduled == "Inoperative"):
            return "Rejected", None
        targets = list(cp.connectors.values()) if connector_id == 0 \
            else [cp.connectors[connector_id]]
        changes = any(c.operative != operative for c in targets) or \
            (connector_id == 0 and cp.station_operative != operative)
        if changes and getattr(cp.store, "problem", None) is not None:
            log.info("ChangeAvailability Rejected: the data dir is failing (%s), the change "
                     "could not be kept", cp.store.problem)
            return "Rejected", None
        busy = [c for c in targets if c.in_transaction]
        scheduled = any(c.operative != operative for c in busy) or \
            (connector_id == 0 and busy and cp.station_operative != operative)

        def apply():
            if connector_id == 0:
                if busy and cp.station_operative != operative:
                    cp.station_scheduled = kind
                else:
                    cp.station_operative = operative
                    cp.station_scheduled = None
            for c in targets:
                if c.in_transaction:
                    c.scheduled = None if c.operative == operative else kind
                else:
                    c.operative = operative
                    c.scheduled = None
            if not operative:
                cp.transactions.drop_authorizations(
                    "the connector was made Inoperative",
                    [c for c in targets if not c.in_transaction])
            self.save()
            cp.refresh()

        return ("Scheduled" if scheduled else "Accepted"), apply

    def transaction_ended(self, c):
        """Apply what was scheduled for c (and for the station once no
        transaction runs any more); persisted."""
        cp = self.cp
        if c.scheduled is not None:
            c.operative = c.scheduled == "Operative"
            c.scheduled = None
            log.info("connector %d: scheduled availability applied (%s)", c.id,
                     "Operative" if c.operative else "Inoperative")
        if cp.station_scheduled is not None and \
                not any(other.in_transaction for other in cp.connectors.values()):
            cp.station_operative = cp.station_scheduled == "Operative"
            cp.station_scheduled = None
            log.info("station: scheduled availability applied (%s)",
                     "Operative" if cp.station_operative else "Inoperative")
        self.save()

    # --- UnlockConnector ------------------------------------------------------------------
    def unlock(self, c, answer):
        """Energy off, lock open; answer when the lock reports, or fails."""
        cp = self.cp
        if c.in_transaction:
            c.suspended_evse = True
            cp.apply_outputs(c)
        c.unlock_request = {"answer": answer, "deadline": cp.clock.monotonic() + LOCK_TIMEOUT}
        cp.station.set_lock(c.id, False)

    def lock_opened(self, c):
        if c.unlock_request is not None:
            self._finish_unlock(c, "Unlocked")

    def _finish_unlock(self, c, result):
        request, c.unlock_request = c.unlock_request, None
        request["answer"].resolve({"status": result})
        if c.in_transaction:        # after the answer, as OCTT TC_018_1 expects
            self.cp.transactions.stop(c, "UnlockCommand", refresh=False)
        self.cp.refresh()

    # --- Reset ----------------------------------------------------------------------------
    def begin_reset(self, kind):
        """Reset accepted: stop every transaction (journaled before anything
        else), then restart once the journal has drained or the grace is over."""
        cp = self.cp
        cp.transactions.stop_all("HardReset" if kind == "Hard" else "SoftReset")
        cp.reset_pending = {"kind": kind, "deadline": cp.clock.monotonic() + RESET_GRACE}
        cp.refresh()
        log.info("%s reset: restarting once pending transaction messages are sent", kind)

    # --- time -------------------------------------------------------------------------------
    def tick(self, now):
        """Unlock deadlines and the reset's progress; seconds to the next."""
        cp = self.cp
        next_due = None
        for c in cp.connectors.values():
            if c.unlock_request is None:
                continue
            due = c.unlock_request["deadline"]
            if now >= due:
                self._finish_unlock(c, "UnlockFailed")
            else:
                next_due = due - now if next_due is None else min(next_due, due - now)
        r = cp.reset_pending
        if r is None:
            return next_due
        drained = cp.journal.pending_count() == 0 and not cp.rpc.busy
        if drained or now >= r["deadline"] or not cp.online:
            cp.reset_pending = None
            log.info("restarting (%s reset)", r["kind"])
            cp.station.restart(r["kind"])
            return next_due
        wait = min(0.05, r["deadline"] - now)
        return wait if next_due is None else min(next_due, wait)


class ChangeAvailability:
    """ChangeAvailability (5.2): connector 0 is the whole charge point; the rules
    are Availability.change's. Unavailable survives reboots."""
    action = "ChangeAvailability"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        status, apply = self.cp.availability.change(payload["connectorId"], payload["type"])
        return Reply({"status": status}, then=apply)


class Reset:
    """Reset (5.13): Accepted, then every transaction is stopped with
    SoftReset/HardReset and journaled before the station restarts."""
    action = "Reset"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        if self.cp.reset_pending is not None:
            return {"status": "Accepted"}   # already on its way
        return Reply({"status": "Accepted"},
                     then=lambda: self.cp.availability.begin_reset(payload["type"]))


class UnlockConnector:
    """UnlockConnector (5.17).

    A fixed cable has no lock to release: NotSupported (as the reference station,
    OCTT TC_017_2/TC_018_2), and so for a connector that does not exist. With a
    socket outlet: a running transaction stops with reason UnlockCommand, the lock
    is driven open, and the answer (Unlocked / UnlockFailed) waits for the lock's
    feedback without blocking the engine."""
    action = "UnlockConnector"

    def __init__(self, cp):
        self.cp = cp

    def handle(self, payload):
        c = self.cp.connector(payload["connectorId"])
        if self.cp.profile.fixed_cable or c is None:
            return {"status": "NotSupported"}
        answer = Deferred()
        self.cp.availability.unlock(c, answer)
        return answer
