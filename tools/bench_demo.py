"""The bench demonstration (what `tools/bench` runs).

Starts the bench CSMS and the firmware with simulated hardware, then plays a
charging session: plug in an EV, tap a card, charge for a while, tap again,
unplug. The OCPP traffic is printed as the CSMS sees it, and the hardware's
state between the steps. With --interactive the station keeps running
afterwards so a person can drive it (bench CLI in another terminal, CSMS
commands at the prompt).

--scenario reservation plays the Reservation profile instead: the CSMS reserves
connector 1 for the card (ReserveNow), another card is refused, the reserved
card charges (its StartTransaction carries the reservationId).

    python -m tools.bench_demo [--scenario charging|reservation] [--charge-seconds 20]
                               [--interactive] [--keep-data]
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CP_ID = "CP-BENCH-1"
CARD = "04A1B2C3"
OTHER_CARD = "DEADBEEF"      # accepted by the bench CSMS too: only the reservation refuses it
SCENARIOS = ("charging", "reservation")


def say(text):
    print("\n== %s" % text, flush=True)


def hardware_line(status):
    c = status["connectors"]["1"]
    tx = c.get("transaction_id")
    return ("   [hardware] EV %s | contactor %-6s | %6.2f kW | %8.3f kWh | %-11s | tx %s"
            % (c.get("ev_state"), "CLOSED" if c.get("contactor") else "open",
               (c.get("power_w") or 0) / 1000.0 if c.get("contactor") else 0.0,
               (c.get("energy_wh") or 0) / 1000.0, c.get("ocpp_status"),
               "-" if tx is None else tx))


class Demo:
    def __init__(self, args):
        from tools.csms import BenchCsms
        self.args = args
        self.csms = BenchCsms(port=args.csms_port, heartbeat_interval=args.heartbeat)
        self.data_dir = args.data_dir or tempfile.mkdtemp(prefix="pi-ocpp-bench-")
        self.log_path = os.path.join(self.data_dir, "firmware.log")
        self.proc = None
        self.bench_port = None

    def start(self):
        say("starting the bench CSMS")
        self.csms.start()
        say("starting the firmware: python -m firmware --hal mock (log: %s)" % self.log_path)
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware", "--hal", "mock",
             "--csms-url", "ws://127.0.0.1:%d/ocpp" % self.csms.port,
             "--charge-point-id", CP_ID, "--data-dir", self.data_dir,
             "--bench-port", str(self.args.bench_port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.csms.wait_for("BootNotification", timeout=15, cp_id=CP_ID)
        self.bench_port = self._find_bench_port()
        self.wait_status("Available")

    def _find_bench_port(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                m = re.search(r"bench control on 127\.0\.0\.1:(\d+)", f.read())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the firmware did not open its bench port; see %s" % self.log_path)

    def bench(self, cmd, **args):
        from hal_mocks.bench import bench_request
        args["cmd"] = cmd
        reply = bench_request(self.bench_port, args)
        if not reply.get("ok"):
            raise RuntimeError("bench: %s" % reply.get("error"))
        return reply

    def wait_status(self, status, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.bench("status")
            if s["connectors"]["1"]["ocpp_status"] == status:
                return s
            time.sleep(0.1)
        raise RuntimeError("connector 1 did not reach %s" % status)

    def show(self):
        print(hardware_line(self.bench("status")), flush=True)

    def wait_log(self, text, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                if text in f.read():
                    return
            time.sleep(0.05)    # a log file has no change notification
        raise RuntimeError("the firmware did not log %r; see %s" % (text, self.log_path))

    def play_reservation(self):
        a = self.args
        self.csms.call(CP_ID, "ChangeConfiguration", {"key": "MinimumStatusDuration", "value": "0"})
        self.show()
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
        say("the CSMS reserves connector 1 for card %s until %s (ReserveNow)" % (CARD, expiry))
        answer = self.csms.call(CP_ID, "ReserveNow", {"connectorId": 1, "expiryDate": expiry,
                                                      "idTag": CARD, "reservationId": 1})
        if answer.get("status") != "Accepted":
            raise RuntimeError("ReserveNow answered %s" % answer)
        self.wait_status("Reserved")
        self.show()
        say("plugging in an EV and tapping another card, %s: refused, the connector is "
            "reserved" % OTHER_CARD)
        self.bench("plug", connector=1)
        self.bench("tap", uid=OTHER_CARD)
        self.wait_log("card %s ignored" % OTHER_CARD)
        self.show()
        say("tapping the reserved card %s: it charges (StartTransaction with reservationId 1)"
            % CARD)
        self.bench("tap", uid=CARD)
        self.wait_status("Charging")
        self.show()
        end = time.monotonic() + a.charge_seconds
        while time.monotonic() < end:
            time.sleep(min(2.0, max(0.0, end - time.monotonic())))
            self.show()
        say("tapping the card again and unplugging")
        self.bench("tap", uid=CARD)
        self.wait_status("Finishing")
        self.bench("unplug", connector=1)
        self.wait_status("Available")
        self.show()
        say("done: the reservation was honoured and ended by its transaction")

    def play(self):
        a = self.args
        say("the CSMS asks for meter values every %d s, and every status at once "
            "(MinimumStatusDuration 0)" % a.sample_interval)
        self.csms.call(CP_ID, "ChangeConfiguration",
                       {"key": "MeterValueSampleInterval", "value": str(a.sample_interval)})
        self.csms.call(CP_ID, "ChangeConfiguration", {"key": "MinimumStatusDuration", "value": "0"})
        self.show()
        say("plugging in an EV (control pilot state B)")
        self.bench("plug", connector=1)
        self.wait_status("Preparing")
        self.show()
        say("tapping card %s on the reader" % CARD)
        self.bench("tap", uid=CARD)
        self.wait_status("Charging")
        self.show()
        say("charging for %d s at 7.4 kW" % a.charge_seconds)
        end = time.monotonic() + a.charge_seconds
        while time.monotonic() < end:
            time.sleep(min(2.0, max(0.0, end - time.monotonic())))
            self.show()
        say("tapping the same card again: the session stops")
        self.bench("tap", uid=CARD)
        self.wait_status("Finishing")
        self.show()
        say("unplugging the EV")
        self.bench("unplug", connector=1)
        self.wait_status("Available")
        self.show()
        say("done: one transaction, charged and stopped")

    def interactive(self):
        say("the station keeps running. In another terminal:\n"
            "     python -m hal_mocks.bench --port %d status | plug 1 | tap %s | ...\n"
            "   and CSMS commands here (type help); Ctrl-C ends the bench."
            % (self.bench_port, CARD))
        from tools.csms import _prompt_loop
        try:
            _prompt_loop(self.csms)
        except KeyboardInterrupt:
            pass

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.csms.stop()
        if not self.args.data_dir and not self.args.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.bench_demo", description=__doc__.split("\n")[0])
    p.add_argument("--scenario", choices=SCENARIOS, default="charging",
                   help="what to play (default %(default)s)")
    p.add_argument("--charge-seconds", type=int, default=20)
    p.add_argument("--sample-interval", type=int, default=5)
    p.add_argument("--heartbeat", type=int, default=60)
    p.add_argument("--csms-port", type=int, default=0, help="bench CSMS port (default: any free)")
    p.add_argument("--bench-port", type=int, default=0, help="bench control port (default: any free)")
    p.add_argument("--data-dir", help="keep the station's data here (default: a temporary folder)")
    p.add_argument("--keep-data", action="store_true", help="do not delete the temporary data")
    p.add_argument("--interactive", action="store_true", help="keep the station running afterwards")
    args = p.parse_args(argv)
    demo = Demo(args)
    try:
        demo.start()
        if args.scenario == "reservation":
            demo.play_reservation()
        else:
            demo.play()
        if args.interactive:
            demo.interactive()
    except KeyboardInterrupt:
        print()
    except RuntimeError as e:
        print("bench demo failed: %s" % e, file=sys.stderr)
        return 1
    finally:
        demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
