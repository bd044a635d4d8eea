"""The verdicts of `selftest` and of the device commands: pure functions of
what the running firmware reports over its maintenance socket (its published
state, firmware/station_state.py, and the results of an actuation,
firmware/actuation.py). The firmware reports facts; these rules say what they
mean for the technician: pass, warn, fail or skipped, the OCPP errorCode the
station reports (or would), and what to check (tools/diag/hints.py).

    selftest_checks(state, loop, actuate, actuated) -> [check]
    selftest_result(answer)          the firmware's "selftest" answer -> the result
                                     {"ok", "actuate", "checks", "passed"}
    device_answer(reply, name, connector)
                                     the firmware's "device" answer with its
                                     "checks", and the failure when one fails

A check is {"name", "device", "connector", "result", "error_code", "detail", "hint",
"age_s"}: age_s is how old the fact it judges is (seconds before the answer).
The devices are judged on the fresh reading the firmware took for the
self-test ("probes", firmware/maintenance_probes.py) when it sent one: a device
that did not answer within its timeout fails, whatever its last cached value
said; the other checks on the state the firmware published after those reads.
"""

from tools.diag.hints import HINTS

METER_STALE = 10.0          # s without a reading: the meter check fails
ACCEPTED = "Accepted"       # the RegistrationStatus of a station the CSMS accepted


def _check(name, device, result, detail, error_code="NoError", hint=None, connector=None,
           age=None):
    return {"name": name, "device": device, "connector": connector, "result": result,
            "error_code": error_code, "detail": detail, "hint": hint, "age_s": age}


def _fmt(value, unit, digits=1):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = ["%.*f" % (digits, v) for v in value if v is not None]
        return "/".join(parts) + " " + unit if parts else None
    return "%.*f %s" % (digits, value, unit)


def _failed(n, what, plural=None):
    if n == 1:
        return "the last %s failed" % what
    return "the last %d %s failed" % (n, plural or what + "s")


def _worker(state, name):
    return state.get("workers", {}).get(name) or {"failures": 0, "faulted": False}


def _ago(age):
    if age is None:
        return "?"
    if age < 90:
        return "%.0f s ago" % age
    if age < 5400:
        return "%.0f min ago" % (age / 60)
    return "%.1f h ago" % (age / 3600)


# --- the self-test ------------------------------------------------------------------------------

def selftest_result(answer):
    """The result `selftest` shows, from the firmware's answer (its facts)."""
    actuate = bool(answer.get("actuate"))
    actuated = dict(((a["device"], a["connector"]), a) for a in answer.get("actuated") or ())
    checks = selftest_checks(answer["state"], answer.get("main_loop"), actuate, actuated,
                             answer.get("probes"))
    return {"ok": True, "actuate": actuate, "checks": checks,
            "passed": all(c["result"] != "fail" for c in checks)}


def selftest_checks(state, loop, actuate, actuated, probes=None):
    """The checks from the published state (with ages), the main loop's answer
    (None: not asked), the actuation results {(device, connector): result} and
    the fresh readings {worker name: probe} (None: the firmware sent none)."""
    checks = []
    if loop is not None:
        checks.append(_main_loop_check(loop))
    checks += _link_checks(state)
    faults0 = state["station"].get("faults") or {}
    fresh = _Fresh(probes)
    checks.append(fresh.judge("rfid", _reader_check(state, faults0)))
    checks.append(fresh.judge("modem", _modem_check(state, faults0)))
    for cid_text, c in sorted(state["connectors"].items(), key=lambda kv: int(kv[0])):
        cid = int(cid_text)
        faults = c.get("faults") or {}
        checks.append(fresh.judge("meter%d" % cid, _meter_check(state, cid, c, faults)))
        checks.append(fresh.judge("pilot%d" % cid, _pilot_check(state, cid, c, faults)))
        checks.append(fresh.judge("contactor%d" % cid,
                                  _contactor_check(state, cid, c, faults, actuate, actuated)))
        lock = _lock_check(state, cid, c, faults, actuate, actuated)
        if lock is not None:
            checks.append(fresh.judge("lock%d" % cid, lock))
    checks.append(_journal_check(state["messages"]))
    if state.get("storage") is not None:     # a firmware that reports its data dir
        checks.append(data_dir_check(state["storage"]))
    published = (state.get("published") or {}).get("age_s")
    for check in checks:
        if check["age_s"] is None:
            check["age_s"] = published     # judged on the state published then
    return checks


# device -> (errorCode, hint) when it does not answer a fresh read
_NO_ANSWER = {"rfid": ("ReaderFailure", "rfid"), "modem": ("WeakSignal", "modem"),
              "meter": ("PowerMeterFailure", "meter"), "pilot": ("EVCommunicationError", "pilot"),
              "contactor": ("PowerSwitchFailure", "contactor"),
              "lock": ("ConnectorLockFailure", "lock")}


class _Fresh:
    """Judges a device check again on the fresh reading taken for it."""

    def __init__(self, probes):
        self.probes = probes

    def judge(self, worker, check):
        if self.probes is None:
            return check       # an older firmware: cached facts only
        probe = self.probes.get(worker)
        if probe is None:
            check["detail"] = "%s; not read afresh" % check["detail"]
            return check
        code, hint = _NO_ANSWER[check["device"]]
        if not probe.get("ok"):
            detail = "no fresh reading: %s" % probe.get("error")
            if probe.get("timed_out"):
                detail = "did not answer a fresh read within %g s" % probe["timeout_s"]
            return _check(check["name"], check["device"], "fail", detail, code,
                          HINTS[hint], check["connector"], probe.get("age_s"))
        facts = probe.get("facts") or {}
        if check["device"] == "contactor" and not facts.get("settling") and \
                facts.get("feedback_closed") != facts.get("commanded_closed") and \
                check["result"] != "fail":
            welded = facts.get("feedback_closed")
            return _check(check["name"], check["device"], "fail",
                          "mirror contact %s while commanded %s" % (
                              "closed" if welded else "open",
                              "open" if welded else "closed"), code,
                          HINTS["contactor-welded" if welded else "contactor-open"],
                          check["connector"], probe.get("age_s"))
        check["age_s"] = probe.get("age_s")
        if check["result"] == "pass":
            check["detail"] = "%s; read afresh %s" % (check["detail"],
                                                      _ago_fine(probe.get("age_s")))
        return check


def _ago_fine(age):
    return "?" if age is None else "%.1f s ago" % age


def _bytes(n):
    if n is None:
        return "free space unknown"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return "%.1f %s free" % (n / size, unit)
    return "%d bytes free" % n


_STORAGE_WORDS = {"full": "FULL", "read-only": "READ-ONLY", "io": "I/O ERRORS"}


def data_dir_check(storage):
    """The data dir: fails while it is not writable (what is not durable is not promised)."""
    if not storage:
        return _check("data dir", "storage", "skipped", "not reported by this firmware")
    free = _bytes(storage.get("free_bytes"))
    if storage.get("writable"):
        return _check("data dir", "storage", "pass", "writable, %s" % free)
    detail = "%s, %s" % (_STORAGE_WORDS.get(storage.get("problem"), "NOT WRITABLE"), free)
    if storage.get("not_durable"):
        detail += ", %d change(s) not yet durable" % storage["not_durable"]
    if storage.get("detail"):
        detail += " (%s)" % storage["detail"]
    return _check("data dir", "storage", "fail", detail, "OtherError", HINTS["storage"])


def _main_loop_check(loop):
    if loop["responding"]:
        return _check("main loop", "firmware", "pass", "answers in %.0f ms" % loop["answer_ms"])
    return _check("main loop", "firmware", "fail", loop.get("error") or "does not answer",
                  "InternalError", HINTS["main_loop"])


def _link_checks(state):
    checks = []
    link = state["link"]
    if link["connected"]:
        checks.append(_check("CSMS link", "link", "pass", "connected for %s"
                             % _ago(link.get("for_s")).replace(" ago", "")))
    else:
        checks.append(_check("CSMS link", "link", "fail", "not connected%s"
                             % (": " + link["last_error"] if link.get("last_error") else ""),
                             hint=HINTS["link"]))
    reg = state["registration"]
    checks.append(_check("registration", "link", "pass" if reg == ACCEPTED else "fail",
                         "BootNotification %s" % reg,
                         hint=None if reg == ACCEPTED else HINTS["registration"]))
    clock = state["clock"]
    checks.append(_check("clock", "clock", "pass" if clock["valid"] else "fail",
                         "set by the CSMS" if clock["source"] == "csms" else
                         "system clock" if clock["valid"] else "unknown",
                         hint=None if clock["valid"] else HINTS["clock"]))
    return checks


def _reader_check(state, faults0):
    w = _worker(state, "rfid")
    card = state["rfid"]["last_card"]
    if "ReaderFailure" in faults0:
        return _check("card reader", "rfid", "fail", faults0["ReaderFailure"] or
                      "does not answer", "ReaderFailure", HINTS["rfid"])
    if w["failures"]:
        return _check("card reader", "rfid", "fail", _failed(w["failures"], "poll"),
                      "ReaderFailure", HINTS["rfid"])
    return _check("card reader", "rfid", "pass", "answers; last card %s %s"
                  % (card["id_tag"], _ago(card.get("age_s"))) if card else
                  "answers; no card since start-up")


def _modem_check(state, faults0):
    w = _worker(state, "modem")
    modem = state.get("modem")
    if "WeakSignal" in faults0:
        return _check("modem", "modem", "fail", faults0["WeakSignal"] or "weak signal",
                      "WeakSignal", HINTS["modem"])
    if w["failures"]:
        return _check("modem", "modem", "fail",
                      _failed(w["failures"], "status query", "status queries"),
                      "WeakSignal", HINTS["modem"])
    if modem is None:
        return _check("modem", "modem", "warn", "no status from the modem yet")
    words = ["%s dBm" % modem["signal_dbm"] if modem.get("signal_dbm") is not None
             else "signal unknown",
             "registered on %s" % (modem.get("operator") or "a network")
             if modem.get("registered") else "NOT registered",
             "SIM ready" if modem.get("sim_ready") else "SIM NOT ready"]
    ok = modem.get("registered") and modem.get("sim_ready")
    return _check("modem", "modem", "pass" if ok else "warn", "%s (%s)"
                  % (", ".join(words), _ago(modem.get("age_s"))),
                  hint=None if ok else HINTS["modem-network"])


def _journal_check(messages):
    if messages["set_aside"]:
        return _check("journal", "journal", "warn", "%d queued, %d set aside"
                      % (messages["queued"], messages["set_aside"]), hint=HINTS["journal"])
    return _check("journal", "journal", "pass", "%d message(s) queued" % messages["queued"])


def _meter_check(state, cid, c, faults):
    name = "meter %d" % cid
    w = _worker(state, "meter%d" % cid)
    meter = c.get("meter")
    if "PowerMeterFailure" in faults:
        return _check(name, "meter", "fail", faults["PowerMeterFailure"] or "does not answer",
                      "PowerMeterFailure", HINTS["meter"], cid)
    if w["failures"]:
        return _check(name, "meter", "fail", _failed(w["failures"], "read"),
                      "PowerMeterFailure", HINTS["meter"], cid)
    if meter is None:
        return _check(name, "meter", "fail", "no reading since start-up", "PowerMeterFailure",
                      HINTS["meter-stale"], cid)
    age = meter.get("age_s")
    if age is not None and age > METER_STALE:
        return _check(name, "meter", "fail", "no reading for %.0f s" % age, "PowerMeterFailure",
                      HINTS["meter-stale"], cid)
    parts = [p for p in (_fmt(meter.get("energy_wh"), "Wh"), _fmt(meter.get("power_w"), "W"),
                         _fmt(meter.get("voltage_v"), "V"), _fmt(meter.get("current_a"), "A", 2),
                         _fmt(meter.get("frequency_hz"), "Hz")) if p]
    return _check(name, "meter", "pass", "%s (%s)" % (", ".join(parts), _ago(age)),
                  connector=cid)


def _pilot_check(state, cid, c, faults):
    name = "pilot %d" % cid
    w = _worker(state, "pilot%d" % cid)
    if "EVCommunicationError" in faults:
        return _check(name, "pilot", "fail", faults["EVCommunicationError"] or "pilot error",
                      "EVCommunicationError", HINTS["pilot"], cid)
    if w["failures"]:
        return _check(name, "pilot", "fail", _failed(w["failures"], "reading"),
                      "EVCommunicationError", HINTS["pilot"], cid)
    ev = c.get("ev_state")
    return _check(name, "pilot", "pass", "EV state %s%s" % (
        ev, " (no EV)" if ev == "A" else " (EV connected)"), connector=cid)


def _contactor_check(state, cid, c, faults, actuate, actuated):
    name = "contactor %d" % cid
    w = _worker(state, "contactor%d" % cid)
    if "PowerSwitchFailure" in faults:
        info = faults["PowerSwitchFailure"] or "does not follow its command"
        return _check(name, "contactor", "fail", info, "PowerSwitchFailure",
                      HINTS["contactor-welded"] if "weld" in info.lower()
                      else HINTS["contactor"], cid)
    state_words = "closed" if c.get("contactor_closed") else "open"
    if not actuate:
        if w["failures"]:
            return _check(name, "contactor", "fail", "its feedback disagreed %d time(s)"
                          % w["failures"], "PowerSwitchFailure", HINTS["contactor"], cid)
        return _check(name, "contactor", "pass", "commanded %s, feedback agrees (not cycled: "
                      "use --actuate)" % state_words, connector=cid)
    result = actuated.get(("contactor", cid)) or {"error": "no result"}
    if "skipped" in result:
        return _check(name, "contactor", "skipped", "%s; commanded %s, no fault"
                      % (result["skipped"], state_words), connector=cid)
    if "error" in result:
        return _check(name, "contactor", "fail", "cycle failed: %s" % result["error"],
                      "PowerSwitchFailure", HINTS["contactor"], cid)
    if result.get("open_feedback"):
        return _check(name, "contactor", "fail", "stayed closed when commanded open (welded)",
                      "PowerSwitchFailure", HINTS["contactor-welded"], cid)
    if not result.get("closed_feedback"):
        return _check(name, "contactor", "fail", "did not close when commanded",
                      "PowerSwitchFailure", HINTS["contactor-open"], cid)
    return _check(name, "contactor", "pass", "cycled: closed and opened, the mirror contact "
                  "followed within %.1f s" % result["settle_s"], connector=cid)


def _lock_check(state, cid, c, faults, actuate, actuated):
    name = "lock %d" % cid
    if state["station"].get("fixed_cable"):
        return None
    if "ConnectorLockFailure" in faults and not actuate:
        return _check(name, "lock", "fail", faults["ConnectorLockFailure"] or "did not confirm",
                      "ConnectorLockFailure", HINTS["lock"], cid)
    position = "engaged" if c.get("locked") else "released"
    if not actuate:
        return _check(name, "lock", "pass", "%s, no fault (not cycled: use --actuate)"
                      % position, connector=cid)
    result = actuated.get(("lock", cid)) or {"error": "no result"}
    if "skipped" in result:
        if "ConnectorLockFailure" in faults:
            return _check(name, "lock", "fail", faults["ConnectorLockFailure"] or
                          "did not confirm", "ConnectorLockFailure", HINTS["lock"], cid)
        return _check(name, "lock", "skipped", "%s; %s, no fault" % (result["skipped"], position),
                      connector=cid)
    if "error" in result:
        return _check(name, "lock", "fail", "cycle failed: %s" % result["error"],
                      "ConnectorLockFailure", HINTS["lock"], cid)
    if not result.get("engaged"):
        return _check(name, "lock", "fail", "did not engage when commanded",
                      "ConnectorLockFailure", HINTS["lock"], cid)
    if not result.get("released"):
        return _check(name, "lock", "fail", "did not release when commanded",
                      "ConnectorLockFailure", HINTS["lock"], cid)
    return _check(name, "lock", "pass", "cycled: engaged and released, feedback followed",
                  connector=cid)


# --- one device ----------------------------------------------------------------------------------

def device_checks(state, name, connector=1):
    """The self-test's checks of one device ("meter" of `connector`, "modem", "rfid")."""
    return [c for c in selftest_checks(state, None, False, {}) if c["device"] == name
            and (name != "meter" or c["connector"] == int(connector))]


def device_answer(reply, name, connector=1):
    """The firmware's answer to a "device" request, judged: "checks" added, and
    when one fails, {"ok": false, "error", "error_code", "hint", "checks"}.
    An answer without the state it was taken from is returned as it is."""
    state = reply.get("state")
    if not isinstance(state, dict):
        return reply
    checks = device_checks(state, name, connector)
    failing = [c for c in checks if c["result"] == "fail"]
    if failing:
        c = failing[0]
        return {"ok": False, "device": name,
                "error": "%s (%s): %s" % (c["name"], c["error_code"], c["detail"]),
                "error_code": c["error_code"], "hint": c["hint"], "checks": checks}
    judged = dict((k, v) for k, v in reply.items() if k != "state")
    judged["checks"] = checks
    return judged
