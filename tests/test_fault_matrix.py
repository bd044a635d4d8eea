"""The hardware fault matrix, end to end: every fault the bench can inject, idle
and during a transaction, with `--hal mock` and `--hal emulated` (the real
drivers over bus emulations), against a CSMS built on the `ocpp` package.

For each cell: the StatusNotification (connector, status, errorCode) the CSMS
receives, the contactor (its coil released whenever safety is in doubt), what
happens to the transaction (its stop reason) and the recovery when the fault
clears. The README's "Hardware fault matrix" table says the same in words;
MATRIX below is the one source for both.

One firmware process per (hal, device): the idle phase, then the transaction
phase, on the same station.
"""

import time

import pytest

from tests.support.firmware_process import Bench, bench_port_of

TAG = "04A1B2C3"

# device -> what the station does (the README's table says it in words).
#   code, connector: the errorCode and the connector it is reported on (0 = the station)
#   idle:  (how the fault shows with no transaction, status): "fault" = at once,
#          "session" = when a driver tries to start one; None = it cannot be seen
#          while nothing is commanded (a contactor that does not close)
#   tx:    (when it shows in a transaction, status, stop reason): "fault" = at
#          once, "at_stop" = when the session ends (a welded contactor cannot be
#          seen while it is meant to be closed, a stuck bolt while it is meant to
#          hold); stop reason None = charging goes on (warning only)
MATRIX = {
    "meter": dict(mode="offline", code="PowerMeterFailure", connector=1,
                  idle=("fault", "Faulted"), tx=("fault", "Faulted", "Other")),
    "rfid": dict(mode="offline", code="ReaderFailure", connector=0,
                 idle=("fault", "Available"), tx=("fault", "Available", None)),
    "pilot": dict(mode="offline", code="EVCommunicationError", connector=1,
                  idle=("fault", "Faulted"), tx=("fault", "Faulted", "Other")),
    "modem": dict(mode="offline", code="WeakSignal", connector=0,
                  idle=("fault", "Available"), tx=("fault", "Available", None)),
    "contactor-welded": dict(mode="welded", code="PowerSwitchFailure", connector=1,
                             idle=("fault", "Faulted"), tx=("at_stop", "Faulted", "Local")),
    "contactor-stuck": dict(mode="stuck", code="PowerSwitchFailure", connector=1,
                            idle=None, tx=("fault", "Faulted", "EmergencyStop")),
    "lock": dict(mode="stuck", code="ConnectorLockFailure", connector=1,
                 idle=("session", "Faulted"), tx=("at_stop", "Faulted", "Local")),
}

FAST_KEYS = dict(MinimumStatusDuration=0, MeterValueSampleInterval=0,
                 ClockAlignedDataInterval=0)
SOCKET_OUTLET_INI = ("[station]\nfixed_cable = no\n"
                     "[gpio]\nlock_actuator = level\nlock_pin = 22\nlock_feedback_pin = 23\n")
MODEM_INI = "[modem]\npoll_interval = 1\n"     # the bench's modem answers (or not) at once


class Csms:
    """The CSMS's StatusNotifications and StopTransactions in order, each waited
    for after the previous one (a stale boot notification never matches)."""

    def __init__(self, ocpp_csms):
        self.csms = ocpp_csms
        self.seen = 0

    def next(self, action, match, timeout=15, since=None):
        deadline = time.monotonic() + timeout
        while True:
            received = self.csms.received
            for i in range(self.seen if since is None else since, len(received)):
                if received[i][1] == action and match(received[i][2]):
                    self.seen = max(self.seen, i + 1)
                    return received[i][2]
            if time.monotonic() > deadline:
                raise AssertionError("no matching %s within %s s after #%d; since then: %r" % (
                    action, timeout, self.seen,
                    [(r[1], r[2].get("status"), r[2].get("errorCode"))
                     for r in received[self.seen:]]))
            time.sleep(0.02)   # received grows from the CSMS's thread

    def status(self, connector, status, code, timeout=15):
        return self.next("StatusNotification", lambda p: p["connectorId"] == connector and
                         p["status"] == status and p["errorCode"] == code, timeout)

    def stop(self, timeout=15, since=None):
        return self.next("StopTransaction", lambda p: True, timeout, since)

    def count(self, action, since=0):
        return [r[1] for r in self.csms.received[since:]].count(action)


def start(ocpp_csms, firmware, tmp_path, hal, device):
    ini = tmp_path / "station.ini"
    ini.write_text((SOCKET_OUTLET_INI if device == "lock" else "") + MODEM_INI)
    fw = firmware(ocpp_csms.url, hal=hal, extra=["--config", str(ini)])
    ocpp_csms.wait_for("BootNotification", 20)
    bench = Bench(bench_port_of(fw))
    csms = Csms(ocpp_csms)
    csms.status(1, "Available", "NoError")
    for key, value in FAST_KEYS.items():
        answer = ocpp_csms.call("CP-TEST-1", "ChangeConfiguration",
                                {"key": key, "value": str(value)})
        assert answer == {"status": "Accepted"}, (key, answer)
    return fw, bench, csms


def facts(bench):
    return bench.status()["connectors"]["1"]


def wait_safe(bench):
    """The coil released: no energy whatever the firmware believes (bench facts)."""
    bench.wait(lambda s: s["connectors"]["1"]["coil"] is False, what="contactor coil released")


def no_offer(bench):
    """The pilot offers 0 A: the EV may draw nothing (IEC 61851 duty cycle)."""
    bench.wait(lambda s: s["connectors"]["1"]["offered_a"] == 0, what="no current offered")


def start_charging(csms, bench):
    bench("plug", connector=1)
    bench("tap", uid=TAG)
    started = csms.next("StartTransaction", lambda p: True)
    csms.status(1, "Charging", "NoError")
    bench.wait(lambda s: s["connectors"]["1"]["contactor"] is True, what="contactor closed")
    return facts(bench)["transaction_id"], started["meterStart"]


def idle_phase(cell, name, bench, csms):
    how, status = cell["idle"]
    code, where = cell["code"], cell["connector"]
    mark = csms.seen
    bench("fault", device=name, mode=cell["mode"])
    if how == "session":        # a driver tries: plug in, tap; the lock does not engage
        bench("plug", connector=1)
        bench("tap", uid=TAG)
    seen = csms.status(where, status, code)
    assert seen.get("info"), "the info says what failed: %r" % seen
    assert csms.count("StartTransaction", mark) == 0
    wait_safe(bench)
    if where == 0:              # a warning: the connector stays usable
        assert facts(bench)["ocpp_status"] == "Available"
    bench("fault", device=name, mode="none")
    if how == "session":
        bench("unplug", connector=1)
    csms.status(where, "Available", "NoError")


def transaction_phase(cell, name, bench, csms):
    when, status, reason = cell["tx"]
    code, where = cell["code"], cell["connector"]
    tx, meter_start = start_charging(csms, bench)
    mark = csms.seen
    bench("fault", device=name, mode=cell["mode"])
    if when == "at_stop":       # nothing to see while charging: the driver stops
        bench("tap", uid=TAG)
    seen = csms.status(where, status, code)
    assert seen.get("info"), "the info says what failed: %r" % seen
    if reason is None:          # a warning: charging goes on
        f = facts(bench)
        assert f["ocpp_status"] == "Charging" and f["contactor"] is True, f
        assert csms.count("StopTransaction", mark) == 0
    else:
        stop = csms.stop(since=mark)    # sent before or after the status
        assert stop["transactionId"] == tx and stop["reason"] == reason, stop
        assert stop["meterStop"] >= meter_start
        wait_safe(bench)
        if name != "pilot":     # (an offline pilot takes the 0 A offer once it answers)
            no_offer(bench)
        if cell["mode"] != "welded":     # welded: the contacts stay closed, 0 A offered
            assert facts(bench)["contactor"] is False
    # --- the fault clears ---
    bench("fault", device=name, mode="none")
    if reason is not None:
        no_offer(bench)
    if reason is None:
        csms.status(where, "Available", "NoError")
        bench("tap", uid=TAG)
        assert csms.stop()["reason"] == "Local"
    csms.status(1, "Finishing", "NoError")
    bench("unplug", connector=1)
    csms.status(1, "Available", "NoError")


@pytest.mark.parametrize("hal", ["mock", "emulated"])
@pytest.mark.parametrize("device", sorted(MATRIX))
def test_fault_matrix(ocpp_csms, firmware, tmp_path, hal, device):
    cell = MATRIX[device]
    name = device.split("-")[0]
    fw, bench, csms = start(ocpp_csms, firmware, tmp_path, hal, device)
    if cell["idle"] is not None:
        idle_phase(cell, name, bench, csms)
    transaction_phase(cell, name, bench, csms)
    assert "Traceback" not in fw.log(), fw.log()[-3000:]
