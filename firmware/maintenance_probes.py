"""Fresh readings for the self-test: every device read once, now, not its
last cached value.

The maintenance server's thread asks each device worker for a probe
(firmware/devices.py, DeviceWorker.request_probe); the reads run on the
devices' own threads, all at once, and this thread waits for the answers, each
device for its own probe_timeout. The main loop is not involved: a meter that
hangs in a Modbus timeout delays the self-test, never the station.

    probe_all(workers) -> {worker name: {"ok", "kind", "connector",
                                         "facts" | "error", "age_s", "took_s",
                                         "timeout_s"}}

A device that did not answer within its timeout: {"ok": false, "error": "no
answer within N s", "timed_out": true}. age_s: seconds between the reading and
the end of the probes (what the technician is told: "read 0.1 s ago").
"""

import queue
import time


def probe_all(workers, clock=time.monotonic):
    answers = queue.Queue()
    asked = {}
    start = clock()
    for w in workers:
        if getattr(w, "probe_timeout", None) is None:
            continue
        asked[w.name] = w
        w.request_probe(answers)
    got = {}
    deadline = dict((name, start + w.probe_timeout) for name, w in asked.items())
    while len(got) < len(asked):
        waiting = [deadline[n] for n in asked if n not in got]
        left = max(waiting) - clock()
        if left <= 0:
            break
        try:
            name, answer = answers.get(timeout=left)
        except queue.Empty:
            break
        if name in asked and clock() <= deadline[name] + 0.05:
            got[name] = answer
    end = clock()
    results = {}
    for name, w in asked.items():
        answer = got.get(name)
        entry = {"kind": w.kind, "connector": w.cid, "timeout_s": w.probe_timeout}
        if answer is None:
            entry.update(ok=False, timed_out=True,
                         error="no answer within %g s" % w.probe_timeout)
        else:
            entry["ok"] = answer["ok"]
            entry["facts" if answer["ok"] else "error"] = \
                answer["facts"] if answer["ok"] else answer["error"]
            entry["age_s"] = round(max(0.0, end - answer["read_mono"]), 2)
            entry["took_s"] = answer["took_s"]
        results[name] = entry
    return results
