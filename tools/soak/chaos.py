"""The chaos driver: charging sessions on the bench with power cuts (kill -9 at
chosen instants, then a restart on the same data dir), link drops, and bursts of
hostile frames, all seeded. Everything it does goes into the CSMS's ordered log
(the checker reads only that and the station's logs)."""

import os
import threading
import time

from tools.soak.csms import TX_ACTIONS, SoakCsms
from tools.soak.fuzz import FuzzFrames
from tools.soak.station import Station

KILL_INSTANTS = ("during boot", "after plug", "after tap", "StartTransaction unanswered",
                 "during MeterValues", "after stop tap", "during Reset", "during journal write")
DROP_KINDS = ("abort", "CSMS away", "abort in flight", "CALLERROR", "no answer")

# Station settings for the soak, sent once by ChangeConfiguration (they persist in DIR):
# a sample every second so that sessions of a few seconds carry MeterValues, status
# changes reported at once, a CALLERROR retried (OCPP 1.6 4.7: TransactionMessageAttempts
# 3, 1 s apart) and an unanswered CALL given up after 4 s and sent again.
SOAK_CONFIG = (("MeterValueSampleInterval", "1"), ("MinimumStatusDuration", "0"),
               ("TransactionMessageAttempts", "3"), ("TransactionMessageRetryInterval", "1"),
               ("MessageTimeout", "4"))
READY_S = 30.0         # longest a restart may take to be accepted again (back-off included)
FUZZ_CHUNK = 20        # frames sent before waiting for their answers
ANSWER_WAIT_S = 5.0


def _c1(status):
    return status.get("connectors", {}).get("1", {})


def _accepted(status):
    o = status.get("ocpp", {})
    return o.get("connected") and o.get("registration") == "Accepted"


class Soak:
    def __init__(self, rng, scratch, kills, drops, fuzz, hal="mock", max_seconds=None,
                 say=print, instants=KILL_INSTANTS):
        self.rng = rng
        self.scratch = scratch
        self.asked = {"kills": kills, "drops": drops, "frames": fuzz}
        self.done = {"kills": 0, "drops": 0, "frames": 0, "sessions": 0, "resets": 0}
        self.kills_by_instant = {}
        self.drops_by_kind = {}
        self.missed = []            # instants that did not come: the fallback was used
        self.hal = hal
        self.instants = tuple(instants)
        self.max_seconds = max_seconds
        self.say = say
        self.csms = SoakCsms()
        self.fuzz = FuzzFrames(rng)
        self.station = None
        self.t0 = None
        self._tags = 0
        self.completed = False
        self.setup_problems = []

    # --- helpers --------------------------------------------------------------------------------
    def elapsed(self):
        return time.monotonic() - self.t0

    def out_of_time(self):
        return self.max_seconds is not None and self.elapsed() > self.max_seconds

    def new_tag(self):
        self._tags += 1
        return "SK%04d%04X" % (self._tags, self.rng.getrandbits(16))

    def check_alive(self):
        code = self.station.unexpected_exit()
        if code is not None:
            self.csms.note("exit", detail="the firmware exited by itself (status %s)" % code,
                           life=len(self.station.lives))
            self.restart()

    def kill(self, instant):
        self.csms.note("kill", instant=instant, life=len(self.station.lives))
        self.station.kill()
        self.done["kills"] += 1
        self.kills_by_instant[instant] = self.kills_by_instant.get(instant, 0) + 1

    def restart(self, wait=True):
        self.csms.note("spawn", life=len(self.station.lives) + 1)
        self.station.spawn()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=READY_S):
        s = self.station.wait_status(_accepted, timeout)
        if s is None:
            self.check_alive()
        return s

    def bench(self, cmd, **args):
        return self.station.bench(cmd, **args)

    def cleanup(self):
        """The EV unplugged and no transaction running: the start of every episode."""
        if not self.station.alive():
            self.check_alive()
        self.wait_ready()
        self.bench("unplug", connector=1)
        self.station.wait_status(lambda s: _c1(s).get("transaction_id") is None
                                 and not _c1(s).get("contactor"), 15)

    def begin_session(self, charging=True):
        """Plug and tap a new card; with charging, wait until energy flows (the
        station then began a transaction: noted as a physical session)."""
        tag = self.new_tag()
        self.bench("plug", connector=1)
        self.bench("tap", uid=tag)
        self.done["sessions"] += 1
        if charging and self.wait_charging(tag):
            self.fuzz_some(self.per_burst // 2)
        return tag

    def wait_charging(self, tag, timeout=10):
        s = self.station.wait_status(lambda s: _c1(s).get("contactor") is True, timeout)
        if s is not None:
            self.csms.note("session_seen", id_tag=tag)
            return True
        return False

    def end_session(self, tag):
        self.bench("tap", uid=tag)
        self.station.wait_status(lambda s: _c1(s).get("transaction_id") is None
                                 and not _c1(s).get("contactor"), 10)
        self.bench("unplug", connector=1)

    def hook(self, action, verdict, then=None):
        """Arm a one-shot reaction to the station's next `action` CALL ("tx": any
        transaction message). Returns an Event set when it fired."""
        fired = threading.Event()

        def fn(csms, conn, ws, msg):
            fired.set()
            if then is not None:
                then()
            return verdict
        self.csms.on_next(action, fn)
        return fired

    # --- setup ------------------------------------------------------------------------------------
    def setup(self):
        self.t0 = time.monotonic()
        self.csms.start()
        data = os.path.join(self.scratch, "data")
        os.makedirs(data, exist_ok=True)
        self.station = Station(self.csms.url, data, self.scratch, hal=self.hal)
        self.restart()
        if self.wait_ready() is None:
            raise RuntimeError("the firmware did not register with the soak CSMS:\n"
                               + self.station.log_text()[-2000:])
        for key, value in SOAK_CONFIG:
            answer = self.call_and_wait("ChangeConfiguration", {"key": key, "value": value})
            if not (answer and answer[0] == 3 and answer[2].get("status") == "Accepted"):
                self.setup_problems.append("ChangeConfiguration %s=%s: %r" % (key, value, answer))

    def call_and_wait(self, action, payload, timeout=ANSWER_WAIT_S):
        mark = self.csms.mark()
        msg_id = self.csms.call(action, payload)
        if msg_id is None:
            return None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            a = self.csms.answer_of(msg_id, mark)
            if a is not None:
                return a
            time.sleep(0.02)
        return None

    # --- fuzz -------------------------------------------------------------------------------------
    def fuzz_some(self, n):
        """Send up to n hostile frames (fewer if the total is reached), FUZZ_CHUNK at a
        time, waiting for the answers of each chunk (at most 5 s)."""
        n = min(n, self.asked["frames"] - self.done["frames"])
        if n <= 0 or self.csms.current() is None:
            return
        # the first burst begins with one frame (two for duplicate ids) of every kind
        first = [] if self.done["frames"] or n < 2 * len(self.fuzz.kinds_list) else \
            self.fuzz.every_kind()
        frames = first + self.fuzz.batch(n - len(first))
        for at in range(0, len(frames), FUZZ_CHUNK):
            mark = self.csms.mark()
            waiting = []
            for frame, expect in frames[at:at + FUZZ_CHUNK]:
                if isinstance(frame, bytes):
                    ok = self._send_binary(frame)
                else:
                    ok = self.csms.send(frame, expect=expect, fuzz=True)
                if not ok:
                    return
                self.done["frames"] += 1
                if expect:
                    waiting.append(expect)
            deadline = time.monotonic() + ANSWER_WAIT_S
            while waiting and time.monotonic() < deadline:
                waiting = [w for w in waiting if self.csms.answer_of(w, mark) is None]
                time.sleep(0.01)

    def _send_binary(self, data):
        current = self.csms.current()
        if current is None:
            return False
        try:
            current[1].send(data)
        except Exception:
            return False
        self.csms.note("tx", conn=current[0], msg=None, text="<binary %d bytes>" % len(data),
                       expect=None, fuzz=True)
        return True

    # --- the plan ---------------------------------------------------------------------------------
    def plan(self):
        steps = []
        kills = self.asked["kills"]
        i = 0
        while kills > 0:
            instant = self.instants[i % len(self.instants)]
            i += 1
            cost = 2 if instant == "during boot" else 1
            if cost > kills:
                instant, cost = "after tap", 1
            steps.append(("kill", instant))
            kills -= cost
        for j in range(self.asked["drops"]):
            steps.append(("drop", DROP_KINDS[j % len(DROP_KINDS)]))
        self.rng.shuffle(steps)
        return steps

    def run(self):
        self.setup()
        steps = self.plan()
        self.per_burst = max(1, -(-self.asked["frames"] // (len(steps) + 1)))
        self.fuzz_some(self.per_burst)
        for n, (what, kind) in enumerate(steps, 1):
            if self.out_of_time():
                self.say("time is up (--max-seconds %s): %d of %d steps done"
                         % (self.max_seconds, n - 1, len(steps)))
                break
            self.cleanup()
            getattr(self, "_" + what)(kind)
            self.csms.clear_hooks()
            self.check_alive()
            self.cleanup()
            self.fuzz_some(self.per_burst - self.per_burst // 2)
            self.say("[%4d/%d] %6.1f s  %-5s %-28s kills %d/%d  drops %d/%d  frames %d/%d"
                     % (n, len(steps), self.elapsed(), what, kind, self.done["kills"],
                        self.asked["kills"], self.done["drops"], self.asked["drops"],
                        self.done["frames"], self.asked["frames"]))
        else:
            self.fuzz_some(self.asked["frames"])     # what rounding left over
            self.completed = True
        self.settle()

    def settle(self):
        """Let everything queued be delivered before the log is judged."""
        self.cleanup()
        self.station.wait_status(lambda s: s.get("ocpp", {}).get("queued_messages") == 0
                                 and _accepted(s), 60)
        time.sleep(0.5)          # the last answers on their way
        self.check_alive()
        for life, line in self.station.tracebacks():
            self.csms.note("traceback", detail="%s: %s" % (life, line))
        self.csms.note("end")

    def close(self):
        try:
            if self.station is not None:
                self.station.kill()
        finally:
            self.csms.stop()

    # --- kills ------------------------------------------------------------------------------------
    def _kill(self, instant):
        r = self.rng
        if instant == "during boot":
            self.begin_session()
            self.kill("while charging")
            self.restart(wait=False)
            time.sleep(r.uniform(0.0, 1.2))
            self.kill(instant)
            self.restart()
            return
        if instant == "after plug":
            self.bench("plug", connector=1)
            time.sleep(r.uniform(0.0, 0.3))
        elif instant == "after tap":
            self.bench("plug", connector=1)
            self.bench("tap", uid=self.new_tag())
            self.done["sessions"] += 1
            time.sleep(r.uniform(0.0, 0.4))
        elif instant == "StartTransaction unanswered":
            fired = self.hook("StartTransaction", "ignore")
            self.begin_session(charging=False)
            self._wait_fired(fired, instant, 10)
        elif instant == "during MeterValues":
            self.begin_session()
            fired = self.hook("MeterValues", "ignore")
            self._wait_fired(fired, instant, 8)
        elif instant == "after stop tap":
            tag = self.begin_session()
            time.sleep(r.uniform(0.3, 2.0))
            self.bench("tap", uid=tag)
            time.sleep(r.uniform(0.0, 0.3))
        elif instant == "during Reset":
            if r.random() < 0.7:
                self.begin_session()
            self.csms.call("Reset", {"type": r.choice(["Soft", "Hard"])})
            self.done["resets"] += 1
            time.sleep(r.uniform(0.0, 1.5))
        elif instant == "during journal write":
            # The instant just after a transaction message's CALLRESULT left the CSMS:
            # the station is writing the answer down (journal), 0-15 ms later it dies.
            which = r.choice(["StartTransaction", "MeterValues", "StopTransaction"])
            delay = r.uniform(0.0, 0.015)
            gone = threading.Event()

            def later():
                threading.Timer(delay, gone.set).start()
            fired = self.hook(which, "answer", then=later)
            tag = self.begin_session(charging=which != "StartTransaction")
            if which == "StopTransaction":
                time.sleep(r.uniform(0.3, 1.5))
                self.bench("tap", uid=tag)
            if not fired.wait(10):
                self.missed.append(instant)
            gone.wait(1)
        self.kill(instant)
        self.restart()

    def _wait_fired(self, fired, instant, timeout):
        if not fired.wait(timeout):
            self.missed.append(instant)

    # --- link drops -------------------------------------------------------------------------------
    def _drop(self, kind):
        r = self.rng
        stopped = False
        if kind in ("abort", "CSMS away"):
            tag = self.begin_session()
            time.sleep(r.uniform(0.0, 2.0 if kind == "abort" else 1.0))
            self.csms.note("drop", how=kind)
            if kind == "abort":
                self.csms.abort()
            else:
                self.csms.away(r.uniform(1.0, 4.0))
        else:
            # the reaction hits one transaction message: its StartTransaction, a
            # MeterValues or its StopTransaction
            verdict = {"abort in flight": "drop", "CALLERROR": "error", "no answer": "ignore"}[kind]
            target = r.choice(TX_ACTIONS)
            if target == "StartTransaction":
                fired = self.hook(target, verdict)
                tag = self.begin_session()
            else:
                tag = self.begin_session()
                fired = self.hook(target, verdict)
                if target == "StopTransaction":
                    time.sleep(r.uniform(0.3, 1.5))
                    self.bench("tap", uid=tag)
                    stopped = True
            self.csms.note("drop", how=kind, target=target)
            if not fired.wait(8):
                self.missed.append(kind)
                self.csms.abort()
            elif kind == "no answer":
                time.sleep(4.5)      # MessageTimeout 4: the station gives up, sends it again
        self.done["drops"] += 1
        key = kind if kind in ("abort", "CSMS away") else "%s (%s)" % (kind, target)
        self.drops_by_kind[key] = self.drops_by_kind.get(key, 0) + 1
        self.wait_ready()
        time.sleep(r.uniform(0.0, 1.0))
        if stopped:
            self.bench("unplug", connector=1)     # a second tap could start a new session
        else:
            self.end_session(tag)

    def figures(self):
        return dict(self.done, kills_by_instant=self.kills_by_instant,
                    drops_by_kind=self.drops_by_kind, fuzz_by_kind=dict(self.fuzz.kinds),
                    lives=len(self.station.lives) if self.station else 0,
                    connections=sum(1 for e in self.csms.log if e["kind"] == "connect"),
                    missed_instants=list(self.missed), completed=self.completed,
                    seconds=round(self.elapsed(), 1), setup_problems=self.setup_problems)
