"""Bench control from the command line, over the bench socket of a firmware
running with --hal mock:

    python -m hal_mocks.bench [--port 7700] [--json] COMMAND

    plug 1            plug the cable into the EV (pilot state B; the EV then
                      charges by itself when current is offered)
    unplug 1          unplug (state A)
    ev 1 C            force the pilot state A|B|C|D|E|F
    tap 04A1B2C3      present a card once (the UID is the idTag)
    power 1 7400      the EV's load in W
    fault meter offline   inject a fault (none clears it):
                      meter|rfid|modem|pilot: none|offline,
                      contactor: none|welded|stuck, lock: none|stuck
    status            connectors, OCPP link, faults

Exit status: 0 done, 1 the bench refused (the error is printed), 2 no bench
to talk to (or a usage error).

bench_request(port, obj) is the same client for Python code.
"""

import argparse
import json
import socket
import sys

HOST = "127.0.0.1"
DEFAULT_PORT = 7700


class BenchUnavailable(OSError):
    """No bench answers on the port."""


class BenchClient:
    """One connection to the bench; request() may be called many times."""

    def __init__(self, port, timeout=5.0):
        self.port = port
        self.timeout = timeout
        try:
            self._sock = socket.create_connection((HOST, port), timeout=timeout)
        except OSError as e:
            raise BenchUnavailable("no bench at %s:%d: is the firmware running with --hal mock?"
                                   % (HOST, port)) from e
        self._buf = b""

    def request(self, obj):
        """Send one request (a dict) and return the response dict."""
        try:
            self._sock.sendall(json.dumps(obj).encode("utf-8") + b"\n")
            while b"\n" not in self._buf:
                data = self._sock.recv(65536)
                if not data:
                    raise BenchUnavailable("the bench at %s:%d closed the connection"
                                           % (HOST, self.port))
                self._buf += data
        except socket.timeout as e:
            raise BenchUnavailable("the bench at %s:%d did not answer within %s s"
                                   % (HOST, self.port, self.timeout)) from e
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            response = json.loads(line.decode("utf-8"))
        except ValueError as e:
            raise BenchUnavailable("the bench at %s:%d answered something that is not JSON"
                                   % (HOST, self.port)) from e
        return response

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bench_request(port, obj, timeout=5):
    """Send one request to the bench on 127.0.0.1:port and return its response
    (a dict with "ok"). Raises BenchUnavailable (an OSError) when no bench answers."""
    with BenchClient(port, timeout) as client:
        return client.request(obj)


# --- command line -----------------------------------------------------------------------

def _watts(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a number of watts: %r" % text)


_EPILOG = """examples:
  python -m hal_mocks.bench plug 1              cable into the EV (state B); it charges
                                                by itself (C) when current is offered
  python -m hal_mocks.bench tap 04A1B2C3        present a card once (UID = idTag)
  python -m hal_mocks.bench ev 1 B              force the pilot state A|B|C|D|E|F
  python -m hal_mocks.bench power 1 11000       the EV's load in W (0..100000)
  python -m hal_mocks.bench fault meter offline inject a fault; "none" clears it
        meter|rfid|modem|pilot: none|offline   contactor: none|welded|stuck
        lock: none|stuck (socket outlets only)
  python -m hal_mocks.bench unplug 1            state A
  python -m hal_mocks.bench status              connectors, OCPP link, faults

exit status: 0 done, 1 the bench refused the command (error on stderr),
2 no bench on the port, or a usage error."""


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m hal_mocks.bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Control the simulated hardware of a firmware running with --hal mock\n"
                    "(JSON lines on 127.0.0.1:PORT, the firmware's --bench-port).",
        epilog=_EPILOG)
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="the firmware's --bench-port (default %d)" % DEFAULT_PORT)
    p.add_argument("--json", action="store_true", help="print the raw JSON response")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("plug", help="plug the cable into the EV (pilot state B)")
    s.add_argument("connector", type=int)
    s = sub.add_parser("unplug", help="unplug the EV (pilot state A)")
    s.add_argument("connector", type=int)
    s = sub.add_parser("ev", help="force the EV's pilot state (IEC 61851 A..F)")
    s.add_argument("connector", type=int)
    s.add_argument("state", help="A|B|C|D|E|F")
    s = sub.add_parser("tap", help="present an RFID card once")
    s.add_argument("uid", help="the card UID in hex, like 04A1B2C3 (= the idTag)")
    s = sub.add_parser("power", aliases=["meter"], help="the EV's load in watts")
    s.add_argument("connector", type=int)
    s.add_argument("watts", type=_watts)
    s = sub.add_parser("fault", help="inject a fault (mode none clears it)")
    s.add_argument("device", help="meter|rfid|contactor|lock|modem|pilot")
    s.add_argument("mode", help="none|offline (meter, rfid, modem, pilot), "
                                "none|welded|stuck (contactor), none|stuck (lock)")
    s = sub.add_parser("tamper", help="open or close the enclosure (its tamper contact)")
    s.add_argument("position", choices=("open", "closed"))
    sub.add_parser("status", help="connectors, OCPP link and faults")
    return p


def request_for(args):
    if args.command in ("plug", "unplug"):
        return {"cmd": args.command, "connector": args.connector}
    if args.command == "ev":
        return {"cmd": "ev", "connector": args.connector, "state": args.state}
    if args.command == "tap":
        return {"cmd": "tap", "uid": args.uid}
    if args.command in ("power", "meter"):
        return {"cmd": "meter", "connector": args.connector, "power_w": args.watts}
    if args.command == "fault":
        return {"cmd": "fault", "device": args.device, "mode": args.mode}
    if args.command == "tamper":
        return {"cmd": "tamper", "open": args.position == "open"}
    return {"cmd": "status"}


def _text(value):
    return "-" if value is None else str(value)


def format_status(response):
    """The status response as a small table, the OCPP link line and the faults."""
    header = ("connector", "OCPP status", "EV", "contactor", "lock", "energy kWh", "transaction")
    rows = [header]
    fixed = response.get("fixed_cable")
    connectors = response.get("connectors") or {}
    for cid in sorted(connectors, key=lambda k: (len(k), k)):
        c = connectors[cid]
        energy = c.get("energy_wh")
        if fixed:
            lock = "fixed cable"
        elif c.get("locked") is None:
            lock = "-"
        else:
            lock = "locked" if c.get("locked") else "unlocked"
        contactor = c.get("contactor")
        rows.append((
            cid,
            _text(c.get("ocpp_status")),
            _text(c.get("ev_state")),
            "-" if contactor is None else ("closed" if contactor else "open"),
            lock,
            "-" if energy is None else "%.3f" % (energy / 1000.0),
            _text(c.get("transaction_id")),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in rows]
    ocpp = response.get("ocpp") or {}
    queued = ocpp.get("queued_messages")
    lines.append("OCPP link: %s, registration %s, %s queued message%s" % (
        "connected" if ocpp.get("connected") else "disconnected",
        _text(ocpp.get("registration")), _text(queued), "" if queued == 1 else "s"))
    faults = response.get("faults") or {}
    active = ["%s %s" % (d, m) for d, m in sorted(faults.items()) if m != "none"]
    lines.append("faults: %s" % (", ".join(active) if active else "none"))
    return "\n".join(lines)


def format_response(request, response):
    cmd = request["cmd"]
    if cmd == "status":
        return format_status(response)
    if cmd in ("plug", "unplug", "ev"):
        what = {"plug": "EV plugged in, ", "unplug": "EV unplugged, ", "ev": ""}[cmd]
        return "connector %s: %spilot state %s" % (response.get("connector"), what,
                                                   response.get("ev_state"))
    if cmd == "tap":
        if response.get("seen") is False:
            return "card %s not seen: %s" % (response.get("uid"), response.get("note", ""))
        return "card %s presented" % response.get("uid")
    if cmd == "meter":
        return "connector %s: EV load %s W" % (response.get("connector"), response.get("power_w"))
    if cmd == "fault":
        if response.get("mode") == "none":
            return "%s: fault cleared" % response.get("device")
        return "%s: %s" % (response.get("device"), response.get("mode"))
    if cmd == "tamper":
        return "enclosure %s" % ("opened" if response.get("open") else "closed")
    return json.dumps(response)


def main(argv=None):
    args = build_parser().parse_args(argv)
    request = request_for(args)
    try:
        response = bench_request(args.port, request, timeout=args.timeout)
    except OSError as e:
        print(str(e), file=sys.stderr)
        return 2
    ok = response.get("ok") is True
    if args.json:
        print(json.dumps(response, sort_keys=True))
    elif ok:
        print(format_response(request, response))
    if not ok:
        print("error: %s" % response.get("error", "the bench refused the command"),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
