"""A failing data dir in process (issue 18): the engine over a Store whose fault
seam is switched by the test, on a virtual clock. The journal sends from memory,
the fault is a warning on connector 0 (OtherError + vendorErrorCode, charging
goes on), nothing that cannot be persisted is promised, and everything catches
up once the card recovers."""

import errno
import logging
import os

import pytest

from ocpp_core import connector as conn
from ocpp_core.store import Store, classify
from tests.support.core_harness import Harness

FAST = {"MinimumStatusDuration": 0}
TAG = "04A1B2C3"


class Seam:
    def __init__(self):
        self.code = None

    def check(self, op, path):
        if self.code is not None and not (self.code == errno.ENOSPC and op == "unlink"):
            raise OSError(self.code, os.strerror(self.code), path)


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path / "data", config=FAST)
    harness.seam = harness.store.faults = Seam()
    yield harness
    harness.check_clean()


def charging(h):
    h.boot()
    h.plug(1)
    h.tap(TAG)
    assert h.statuses(1)[-1] == "Charging"


def status0(h, since=0):
    return [p for p in h.payloads("StatusNotification", since) if p["connectorId"] == 0]


def test_full_disk_during_a_transaction_is_a_warning_and_the_stop_is_sent(h, caplog):
    charging(h)
    mark = h.mark()
    h.seam.code = errno.ENOSPC
    with caplog.at_level(logging.WARNING):
        h.advance(30)                               # samples and readings fail to persist
    [report] = status0(h, mark)
    assert report["errorCode"] == "OtherError" and report["status"] == "Available"
    assert report["info"] == "data dir full" and report["vendorErrorCode"] == "DataDirFull"
    assert h.station.contactor[1] is True and h.statuses(1)[-1] == "Charging"
    assert "MeterValues" in [a for a, _ in h.sent(since=mark)]     # sent from memory
    store_lines = [r for r in caplog.records if r.name == "ocpp.store"]
    assert len(store_lines) == 1                                   # one line per change
    assert h.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "77"}) == \
        {"status": "Rejected"}
    h.tap(TAG)                                                     # stop: always sent
    [stop] = h.payloads("StopTransaction", mark)
    assert stop["reason"] == "Local"
    assert h.cp.journal.pending_count() == 0 and h.cp.journal.not_durable() > 0
    h.seam.code = None
    mark = h.mark()
    h.advance(3)                                                   # catch-up within RETRY_S
    [cleared] = status0(h, mark)
    assert cleared["errorCode"] == "NoError" and "vendorErrorCode" not in cleared
    assert h.cp.journal.not_durable() == 0
    h.power_cut()
    h.power_on()
    h.boot()
    assert h.cp.journal.pending_count() == 0                       # nothing sent again
    assert h.payloads("StopTransaction", mark) == []


def test_offline_start_refused_while_storage_fails_online_allowed(h, caplog):
    h.boot()
    h.seam.code = errno.EROFS
    h.advance(0)
    assert h.store.probe() is False and h.store.problem == "read-only"
    h.disconnect()
    h.plug(1)
    with caplog.at_level(logging.INFO):
        h.tap(TAG)
    assert "data dir is failing (read-only) and the station is offline" in caplog.text
    assert h.cp.connector(1).tx_key is None and not h.station.contactor.get(1)
    h.connect()
    h.advance(1)
    mark = h.mark()
    h.tap(TAG)
    assert [a for a, _ in h.sent(since=mark)][:2] == ["Authorize", "StartTransaction"]
    assert h.station.contactor[1] is True


def test_a_real_unsafe_station_fault_outranks_the_storage_warning():
    storage = ("data dir full", "DataDirFull")
    assert conn.reported_station_error({}, storage) == ("OtherError", "data dir full",
                                                        "DataDirFull")
    assert conn.reported_station_error({"ReaderFailure": "x"}, storage)[0] == "OtherError"
    assert conn.reported_station_error({"InternalError": "x"}, storage) == \
        ("InternalError", "x", None)
    assert conn.reported_station_error({}, None) == ("NoError", None, None)


def test_the_store_classifies_and_recovers(tmp_path, caplog):
    seam = Seam()
    store = Store(str(tmp_path / "d"), faults=seam)
    assert classify(OSError(errno.ENOSPC, "x")) == "full"
    assert classify(OSError(errno.EROFS, "x")) == "read-only"
    assert classify(OSError(errno.EIO, "x")) == "io"
    seam.code = errno.EIO
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            with pytest.raises(OSError):
                store.save("a", {"n": 1})
        assert store.problem == "io" and store.failed_writes == 3
        seam.code = None
        assert store.probe() is True and store.problem is None
    assert len([r for r in caplog.records if r.name == "ocpp.store"]) == 2
    assert store.names() == []                     # the probe file is not one of ours
    assert store.free_bytes() > 0


def test_a_store_on_a_read_only_boot_probes_at_once(tmp_path):
    seam = Seam()
    seam.code = errno.EROFS
    store = Store(str(tmp_path / "d"), faults=seam, probe=True)
    assert store.problem == "read-only"
    assert store.load("anything", "default") == "default"


def test_changes_that_cannot_be_persisted_are_not_accepted(h):
    h.boot()
    h.seam.code = errno.EROFS
    assert h.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "77"}) == \
        {"status": "Rejected"}
    assert h.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) == \
        {"status": "Rejected"}
    assert h.call("ChangeAvailability", {"connectorId": 1, "type": "Operative"}) == \
        {"status": "Accepted"}                   # already so: nothing to keep
    assert h.call("ClearCache", {}) == {"status": "Rejected"}
    h.seam.code = None
    h.advance(3)                                 # the probe sees the card recovered
    assert h.store.problem is None
    assert h.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "77"}) == \
        {"status": "Accepted"}
    assert h.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) == \
        {"status": "Accepted"}
