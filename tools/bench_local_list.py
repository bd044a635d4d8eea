"""Benchmark: what a SendLocalList costs the engine (Local Auth List Management).

    python -m tools.bench_local_list [--n 5] [--dir DIR]

In process, on the real clock, with the rig of tools.bench_engine (the
ChargePoint, a real Store with its fsyncs in a scratch folder under DIR, a
back-to-back CSMS). Each figure runs from the moment the CALL's text is handed
to the engine to the moment the engine sends its CALLRESULT: decoding,
validation, the update and its durable save.

A CSMS cannot send the whole list (LocalAuthListMaxLength, 1000) in one
message: SendLocalListMaxLength (9.2: the most identifications "in a single
SendLocalList.req", 100) caps each message. A full list therefore takes a Full
update of 100 entries and 9 Differentials of 100 (each written as the whole
list: one file, one atomic save). Printed:

  Full (100)                 one Full update of SendLocalListMaxLength entries
  fill to 1000               the Full + the Differentials, in all
  Differential +100 on 900   the last of those Differentials
  Differential 1 on 1000     one entry changed in a full list
  GetLocalListVersion        for comparison (no write)

fsyncs per message (Store.fsync_count deltas) and the list file's size too.
Entries are 20-character idTags with status, expiryDate and parentIdTag (the
largest an entry can be).
"""

import argparse
import json
import os
import statistics
import sys

from tools.bench_engine import INJECTED_PREFIX, Rig, now_ns

EXPIRY = "2030-01-01T00:00:00.000Z"


def _entries(start, count, status="Accepted"):
    return [{"idTag": "CARD%016d" % i,
             "idTagInfo": {"status": status, "expiryDate": EXPIRY,
                           "parentIdTag": "FLEET%015d" % (i % 7)}}
            for i in range(start, start + count)]


class _Caller:
    def __init__(self, rig):
        self.rig = rig
        self.n = 0

    def call(self, action, payload):
        """-> (answer payload, ns, fsyncs)."""
        rig = self.rig
        self.n += 1
        msg_id = "%sll-%d" % (INJECTED_PREFIX, self.n)
        text = json.dumps([2, msg_id, action, payload], separators=(",", ":"))
        mark, f0 = len(rig.sent), rig.store.fsync_count
        t0 = now_ns()
        rig.cp.rpc.receive(text)
        for t, fsyncs, out in rig.sent[mark:]:
            msg = json.loads(out)
            if msg[1] == msg_id:
                rig.pump()
                if msg[0] != 3:
                    raise RuntimeError("%s answered %r" % (action, msg))
                return msg[2], t - t0, fsyncs - f0
        raise RuntimeError("no answer to %s" % action)


def _one_round(parent):
    rig = Rig(parent)
    try:
        cp = rig.cp
        total = cp.config.get("LocalAuthListMaxLength")
        per_message = cp.config.get("SendLocalListMaxLength")
        c = _Caller(rig)
        out = {}
        answer, ns, fs = c.call("SendLocalList", {"listVersion": 1, "updateType": "Full",
                                                  "localAuthorizationList":
                                                      _entries(0, per_message)})
        assert answer == {"status": "Accepted"}, answer
        out["Full (%d)" % per_message] = (ns, fs)
        fill_ns, fill_fs, version = ns, fs, 1
        last = None
        for start in range(per_message, total, per_message):
            version += 1
            answer, ns, fs = c.call("SendLocalList", {
                "listVersion": version, "updateType": "Differential",
                "localAuthorizationList": _entries(start, min(per_message, total - start))})
            assert answer == {"status": "Accepted"}, answer
            fill_ns += ns
            fill_fs += fs
            last = (ns, fs)
        assert len(cp.auth.local_list) == total
        out["fill to %d (%d messages)" % (total, version)] = (fill_ns, fill_fs)
        if last is not None:
            out["Differential +%d on %d" % (per_message, total - per_message)] = last
        version += 1
        answer, ns, fs = c.call("SendLocalList", {
            "listVersion": version, "updateType": "Differential",
            "localAuthorizationList": _entries(5, 1, "Blocked")})
        assert answer == {"status": "Accepted"}, answer
        out["Differential 1 on %d" % total] = (ns, fs)
        answer, ns, fs = c.call("GetLocalListVersion", {})
        assert answer == {"listVersion": version}, answer
        out["GetLocalListVersion"] = (ns, fs)
        size = os.path.getsize(os.path.join(rig.dir, "data", "local_list"))
        return out, size
    finally:
        rig.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--dir", default=None, help="scratch parent folder (default: temp)")
    args = parser.parse_args(argv)
    rows = {}
    size = 0
    for _ in range(max(1, args.n)):
        out, size = _one_round(args.dir)
        for name, value in out.items():
            rows.setdefault(name, []).append(value)
    print("SendLocalList, %d round(s), median [min-max]; list file %d bytes at full length"
          % (args.n, size))
    for name, values in rows.items():
        ms = sorted(v[0] / 1e6 for v in values)
        fsyncs = sorted(set(v[1] for v in values))
        print("  %-34s %9.2f ms  [%7.2f - %7.2f]   fsyncs %s" % (
            name, statistics.median(ms), ms[0], ms[-1], "/".join(str(f) for f in fsyncs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
