"""Security events (OCA security whitepaper, edition 3: SecurityEventNotification
and the appendix's event list), in process on a virtual clock: which events are
critical and journaled, what a non-critical one does offline, the engine's own
emits (InvalidMessages, AttemptedReplayAttacks, SettingSystemTime,
MemoryExhaustion, FirmwareUpdated), the security log file and its redaction."""

import json

import pytest

from firmware.security_log import SecurityLog, path_in
from ocpp_core.security import events as sec
from ocpp_core.timestamps import format_utc, parse_rfc3339
from tests.support.core_harness import FAST, Harness
from tests.support.security_wiring import MemoryLog, secure

SEN = "SecurityEventNotification"


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "data", config=FAST)
    harness.log = MemoryLog()
    secure(harness, harness.log)
    yield harness
    harness.check_clean()


def emit(h, event_type, info=None):
    h.cp.events.emit("security_event", event_type, info)


def sent_types(h, since=0):
    return [p["type"] for p in h.payloads(SEN, since)]


def test_the_critical_events_are_the_appendixs_seven():
    assert sec.CRITICAL == {"FirmwareUpdated", "SettingSystemTime", "StartupOfTheDevice",
                            "ResetOrReboot", "SecurityLogWasCleared", "MemoryExhaustion",
                            "TamperDetectionActivated"}
    assert sec.CRITICAL < set(sec.TYPES) and len(sec.TYPES) == 18


def test_an_event_reaches_the_csms_with_type_timestamp_and_tech_info(h):
    h.boot()
    m = h.mark()
    emit(h, "InvalidCentralSystemCertificate", "certificate for another host")
    h.pump()
    [p] = h.payloads(SEN, m)
    assert p["type"] == "InvalidCentralSystemCertificate"
    assert p["techInfo"] == "certificate for another host"
    assert abs(parse_rfc3339(p["timestamp"]) - h.time.wall()) < 1
    assert h.log.records[-1] == {"timestamp": p["timestamp"], "type": p["type"],
                                 "techInfo": p["techInfo"], "critical": False}


def test_a_critical_event_is_journaled_and_survives_a_power_cut_while_offline(tmp_path):
    h = Harness(tmp_path / "data", config=FAST)
    secure(h, MemoryLog())
    emit(h, "TamperDetectionActivated", "enclosure opened")     # never connected
    h.power_cut()
    h.power_on()
    secure(h, MemoryLog())
    m = h.mark()
    h.boot()
    assert [a for a, _ in h.sent(since=m)][0] == "BootNotification"
    assert sent_types(h, m) == ["TamperDetectionActivated"]
    h.advance(5)
    assert sent_types(h, m) == ["TamperDetectionActivated"]     # once: removed after .conf
    h.check_clean()


def reboot_event_in_an_offline_session_end(h):
    """A session that ends offline with a critical event (ResetOrReboot) before its
    StopTransaction; then online again for a second. -> the mark before it."""
    h.boot()
    h.plug()
    h.tap("04A1B2C3")
    h.pump()
    h.disconnect()
    emit(h, "ResetOrReboot", "restart (Hard)")
    h.unplug()
    h.pump()
    m = h.mark()
    h.connect()
    h.advance(1)
    return m


def test_critical_events_wait_in_order_with_the_transaction_messages(h):
    m = reboot_event_in_an_offline_session_end(h)
    order = [a for a, _ in h.sent(since=m) if a in (SEN, "StopTransaction")]
    assert order == [SEN, "StopTransaction"]
    assert sent_types(h, m) == ["ResetOrReboot"]


def test_a_non_critical_event_offline_waits_in_memory_until_online(h):
    emit(h, "FailedToAuthenticateAtCentralSystem", "HTTP 401 on the websocket upgrade")
    assert h.cp.journal.pending_count() == 0        # not journaled
    m = h.mark()
    h.boot()
    assert [a for a, _ in h.sent(since=m)][0] == "BootNotification"
    assert sent_types(h, m) == ["FailedToAuthenticateAtCentralSystem"]


def test_a_flood_of_one_non_critical_type_is_throttled_and_counted(h):
    h.boot()
    m = h.mark()
    for _ in range(5):
        emit(h, "InvalidMessages", "x")
    h.pump()
    assert sent_types(h, m) == ["InvalidMessages"]
    assert h.log.types().count("InvalidMessages") == 5      # all of them in the log
    h.advance(sec.THROTTLE_S + 1)
    emit(h, "InvalidMessages", "y")
    h.pump()
    assert [p.get("techInfo") for p in h.payloads(SEN, m)] == ["x", "y (+4 more since the last)"]


def test_a_malformed_call_raises_invalid_messages(h):
    h.boot()
    m = h.mark()
    answer = h.raw_call("Reset", {"type": "Sideways"}, "bad-1")
    assert answer[0] == 4 and answer[2] == "PropertyConstraintViolation"
    h.cp.rpc.receive('[2, "bad-2", "Reset"]')         # not even a payload
    h.pump()
    h.csms_errors.clear()
    [p] = h.payloads(SEN, m)        # the second is throttled (counted in the log)
    assert p["type"] == "InvalidMessages" and p["techInfo"].startswith("Reset:")
    assert h.log.types().count("InvalidMessages") == 2


def test_a_repeated_message_id_is_an_attempted_replay_and_not_acted_on(h):
    h.boot()
    payload = {"connectorId": 1, "type": "Inoperative"}
    first = h.raw_call("ChangeAvailability", {"connectorId": 1, "type": "Operative"}, "id-7")
    assert first[0] == 3
    m = h.mark()
    again = h.raw_call("ChangeAvailability", payload, "id-7")
    assert again[0] == 4 and again[2] == "GenericError"
    assert h.statuses(1, m) == []           # not made Inoperative
    assert sent_types(h, m) == ["AttemptedReplayAttacks"]
    h.csms_errors.clear()
    # A new connection starts a new session: the same id is fine there.
    h.disconnect()
    h.connect()
    h.advance(1)
    assert h.raw_call("ChangeAvailability", {"connectorId": 1, "type": "Operative"},
                      "id-7")[0] == 3


def test_the_clock_set_by_the_csms_raises_setting_system_time(h):
    late = {"ahead": 0}

    def boot_answer(payload):
        return {"status": "Accepted", "interval": 300,
                "currentTime": format_utc(h.time.wall() + late["ahead"])}
    h.responders["BootNotification"] = boot_answer
    late["ahead"] = 3600
    m = h.mark()
    h.boot()
    [p] = h.payloads(SEN, m)
    assert p["type"] == "SettingSystemTime" and "+3600 s" in p["techInfo"]
    # A heartbeat's correction of a few seconds is no event.
    h.responders["Heartbeat"] = lambda p: {"currentTime": format_utc(h.clock.now() + 3)}
    m = h.mark()
    h.advance(301, step=10)
    assert h.payloads("Heartbeat", m) and h.payloads(SEN, m) == []


def test_a_full_data_dir_raises_memory_exhaustion(h):
    h.boot()
    m = h.mark()
    h.cp.store.problem = "full"          # as Store sets it on ENOSPC
    h.advance(1)
    h.cp.store.problem = None
    h.advance(3)
    assert sent_types(h, m) == ["MemoryExhaustion"]


def test_tech_info_is_bounded_and_without_url_credentials(h):
    h.boot()
    m = h.mark()
    emit(h, "InvalidTLSVersion", "ftp://op:secret@ftp.example.com/x " + "y" * 400)
    h.pump()
    [p] = h.payloads(SEN, m)
    assert "secret" not in p["techInfo"] and len(p["techInfo"]) == 255


# --- the security log file -----------------------------------------------------------------
def test_security_log_lines(tmp_path):
    log = SecurityLog(str(tmp_path))
    log.append({"timestamp": "2026-12-03T11:00:00Z", "type": "StartupOfTheDevice",
                "techInfo": None, "critical": True})
    log.append({"timestamp": "2026-12-03T11:00:01Z", "type": "InvalidMessages",
                "techInfo": "Reset: bad", "critical": False})
    lines = open(path_in(str(tmp_path)), encoding="utf-8").read().splitlines()
    assert path_in(str(tmp_path)) == str(tmp_path / "logs" / "security.log")
    assert [json.loads(x) for x in lines] == [
        {"timestamp": "2026-12-03T11:00:00Z", "type": "StartupOfTheDevice", "techInfo": None,
         "critical": True},
        {"timestamp": "2026-12-03T11:00:01Z", "type": "InvalidMessages",
         "techInfo": "Reset: bad", "critical": False}]


def test_security_log_rotates_at_its_size(tmp_path):
    log = SecurityLog(str(tmp_path), max_bytes=1000)
    for i in range(40):
        log.append({"timestamp": "2026-12-03T11:00:00Z", "type": "InvalidMessages",
                    "techInfo": "n%03d" % i, "critical": False})
    path = path_in(str(tmp_path))
    assert (tmp_path / "logs" / "security.log.1").exists()
    assert all(len(open(p, "rb").read()) <= 1000 for p in (path, path + ".1"))
    infos = [r["techInfo"] for r in log.read()]
    assert infos[-1] == "n039" and infos == sorted(infos)     # the newest kept, in order
    assert len(infos) < 40                                    # the oldest went


def test_security_log_never_holds_a_secret(tmp_path, h):
    password = "0123456789abcdef0123"
    flog = SecurityLog(str(tmp_path), secrets=lambda: (password,))
    h.cp.security_events.security_log = flog
    emit(h, "FailedToAuthenticateAtCentralSystem", "sent %s to ws://cp:%s@host/x"
         % (password, password))
    text = open(path_in(str(tmp_path)), encoding="utf-8").read()
    assert password not in text and "FailedToAuthenticateAtCentralSystem" in text


def test_clearing_the_log_is_itself_logged(tmp_path, h):
    flog = SecurityLog(str(tmp_path))
    h.cp.security_events.security_log = flog
    emit(h, "InvalidMessages", "x")
    assert flog.clear()
    emit(h, "SecurityLogWasCleared", "by the technician")
    assert [r["type"] for r in flog.read()] == ["SecurityLogWasCleared"]
    assert h.cp.journal.pending_count() == 1        # critical: journaled


def test_a_failing_log_medium_never_raises(tmp_path, h):
    (tmp_path / "logs").write_text("a file where the folder should be")
    h.cp.security_events.security_log = SecurityLog(str(tmp_path))
    h.boot()
    m = h.mark()
    emit(h, "InvalidMessages", "x")
    h.pump()
    assert sent_types(h, m) == ["InvalidMessages"]


def test_a_csms_without_the_security_extension_does_not_hold_the_queue(h):
    h.call_errors[SEN] = "NotImplemented"
    m = reboot_event_in_an_offline_session_end(h)
    assert [a for a, _ in h.sent(since=m) if a in (SEN, "StopTransaction")] == \
        [SEN, "StopTransaction"]        # set aside at once, the Stop follows
    assert h.cp.journal.pending_count() == 0 and h.cp.journal.set_aside_count() == 1
    h.csms_errors.clear()


def test_the_bench_cli_word_for_the_tamper_contact():
    from hal_mocks.bench import build_parser, request_for
    for word, opened in (("open", True), ("closed", False)):
        assert request_for(build_parser().parse_args(["tamper", word])) == \
            {"cmd": "tamper", "open": opened}


def test_the_tamper_worker_reports_every_opening():
    import queue as q
    from firmware.devices import TamperWorker
    from hal_mocks.sim import SimTamper, SimWorld
    world, events = SimWorld(), q.Queue()
    worker = TamperWorker(events, SimTamper(world))
    worker._read()
    assert events.empty()           # closed at start: nothing
    world.tamper(True)
    world.tamper(False)
    world.tamper(True)              # two openings between two polls
    worker._read()
    got = [events.get_nowait() for _ in range(events.qsize())]
    assert [e.value for e in got] == [("TamperDetectionActivated", "enclosure opened")] * 2
    assert all(e.kind == "security" for e in got)
    world.close()
