"""`trace`: follow the live OCPP traffic of the running firmware, readably,
until Ctrl-C (or --count N frames, or --seconds S):

    10:15:30.123  CP>>CSMS  CALL    Heartbeat           {}
    10:15:30.201  CP<<CSMS  RESULT  Heartbeat           {"currentTime": "..."}

The firmware masks the AuthorizationKey in every frame before it leaves the
process. If this tool cannot keep up, the firmware drops lines rather than
wait ("... N frames dropped"). --json prints one JSON object per frame.
Exit status: 0 ended by Ctrl-C, --count or --seconds; 1 the firmware ended the
trace (it stopped); 2 it is not running.
"""

import json
import sys
import time

from tools.diag import client

PAYLOAD_SHOWN = 4000
_KINDS = {2: "CALL", 3: "RESULT", 4: "ERROR"}


def add_parser(subparsers):
    p = subparsers.add_parser(
        "trace", help="follow the live OCPP traffic (Ctrl-C to stop)",
        description="Print every OCPP frame the firmware sends or receives, as it happens.")
    p.add_argument("--count", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--last", type=int, default=0, metavar="N",
                   help="first show the N most recent frames (at most 200)")
    return p


class Formatter:
    """Turns frames into lines; remembers the action of each CALL so that its
    RESULT or ERROR can be named."""

    def __init__(self):
        self.actions = {}

    def describe(self, frame_text):
        """(kind, action, message id, payload text) of a frame."""
        try:
            frame = json.loads(frame_text)
        except ValueError:
            return "?", "", "", frame_text
        if not isinstance(frame, list) or not frame or frame[0] not in _KINDS:
            return "?", "", "", frame_text
        kind = _KINDS[frame[0]]
        msg_id = frame[1] if len(frame) > 1 else ""
        if kind == "CALL":
            action = frame[2] if len(frame) > 2 else ""
            if len(self.actions) > 1000:
                self.actions.clear()
            self.actions[msg_id] = action
            payload = frame[3] if len(frame) > 3 else None
        elif kind == "RESULT":
            action = self.actions.pop(msg_id, "")
            payload = frame[2] if len(frame) > 2 else None
        else:
            action = self.actions.pop(msg_id, "")
            payload = frame[2:]
        text = json.dumps(payload, separators=(", ", ": "))
        return kind, action, msg_id, text

    def line(self, item):
        t = item.get("t") or time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % int((t % 1) * 1000)
        arrow = "CP>>CSMS" if item.get("dir") == "tx" else "CP<<CSMS"
        kind, action, _msg_id, payload = self.describe(item.get("frame", ""))
        if len(payload) > PAYLOAD_SHOWN:
            payload = payload[:PAYLOAD_SHOWN] + "..."
        earlier = " (earlier)" if item.get("earlier") else ""
        return "%s  %s  %-6s  %-26s  %s%s\n" % (stamp, arrow, kind, action, payload, earlier)


def run(args, out):
    as_json = getattr(args, "json", False)
    last = max(0, min(200, args.last or 0))
    deadline = time.monotonic() + args.seconds if args.seconds else None
    fmt = Formatter()
    frames = 0
    with client.connect(args) as c:
        stream = c.stream("trace", last=last)
        first = True
        try:
            for item in stream:
                if first:
                    first = False
                    sys.stderr.write("following the OCPP traffic (%s; Ctrl-C to stop)\n" % c.path)
                    sys.stderr.flush()
                if item is not None:
                    if "dropped" in item:
                        out.write(json.dumps(item) + "\n" if as_json else
                                  "... %d frames dropped (this terminal was too slow)\n"
                                  % item["dropped"])
                    elif "frame" in item:
                        frames += 1
                        out.write(json.dumps(item) + "\n" if as_json else fmt.line(item))
                    out.flush()
                if args.count and frames >= args.count:
                    return 0
                if deadline is not None and time.monotonic() >= deadline:
                    return 0
        except KeyboardInterrupt:
            return 0
        finally:
            stream.close()
    sys.stderr.write("the firmware ended the trace (did it stop?)\n")
    return 1
