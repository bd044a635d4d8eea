"""The self-test's actuation: each contactor (and cable lock) closed and opened
once, its feedback read back, only while nothing could notice.

Three threads take part: the main loop plans (plan(), it owns the engine and
knows whether an EV is connected), each device's worker thread moves its
device (nothing here touches a GPIO from another thread), and the maintenance
server's thread waits for the results (collect()). What the results mean is
for tools/diag to say (tools/diag/checks.py).
"""

import logging
import queue
import time

log = logging.getLogger("firmware.maintenance")

SETTLE = 0.5                # s; a contactor is read back this long after a command
REPORT_MARGIN = 4.0         # s a worker gets on top of the cycle's own time
KINDS = ("contactor", "lock")


def blocker(cp, c):
    """Why connector c must not be cycled now (None: it may be)."""
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


def _lock_limit(lock):
    return float(getattr(lock, "actuation_time", 1.0)) + 0.5


def cycle_contactor(contactor, results):
    """A job for the contactor's worker: close, read back, open, read back."""
    def run():
        out = {"settle_s": SETTLE}
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


def cycle_lock(lock, results):
    """A job for the lock's worker: engage, release, and back as it was."""
    def move(target, limit):
        lock.set(target)
        deadline = time.monotonic() + limit
        while bool(lock.feedback()) != target and time.monotonic() < deadline:
            time.sleep(0.02)     # the lock reports no change: poll its feedback
        return bool(lock.feedback()) == target

    def run():
        out = {}
        limit = _lock_limit(lock)
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


def plan(cp, connector_workers):
    """Start every cycle that may run (main thread); the steps, in order, each
    {"device", "connector"} with "skipped" (why not) or "_wait" (a queue the
    result arrives on) and "_timeout"."""
    steps = []
    for cid, c in sorted(cp.connectors.items()):
        workers = connector_workers.get(cid, {})
        why_not = blocker(cp, c)
        for kind in KINDS:
            worker = workers.get(kind)
            if worker is None:
                continue
            step = {"device": kind, "connector": cid}
            if why_not:
                step["skipped"] = why_not
            elif kind == "contactor" and "PowerSwitchFailure" in c.faults:
                step["skipped"] = "skipped: the contactor is already faulted"
            else:
                results = queue.Queue(1)
                if kind == "contactor":
                    worker.submit(cycle_contactor(worker.contactor, results))
                    step["_timeout"] = 2 * SETTLE + REPORT_MARGIN
                else:
                    worker.submit(cycle_lock(worker.lock, results))
                    step["_timeout"] = 3 * _lock_limit(worker.lock) + REPORT_MARGIN
                step["_wait"] = results
                log.info("self-test: cycling the %s of connector %d", kind, cid)
            steps.append(step)
    return steps


def collect(steps):
    """The results of plan()'s steps (server thread; waits for each worker):
    [{"device", "connector", and "skipped", "error" or the feedback read}]."""
    results = []
    for step in steps:
        result = {"device": step["device"], "connector": step["connector"]}
        if "_wait" in step:
            try:
                result.update(step["_wait"].get(timeout=step["_timeout"]))
            except queue.Empty:
                result["error"] = "the %s's worker did not report within %g s" % (
                    step["device"], step["_timeout"])
        else:
            result["skipped"] = step["skipped"]
        results.append(result)
    return results


def not_run(connector_ids, why):
    """Every step skipped for one reason (the main loop did not plan them)."""
    return [{"device": kind, "connector": int(cid), "skipped": why}
            for cid in connector_ids for kind in KINDS]
