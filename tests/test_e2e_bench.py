"""The whole charger on the bench: `python -m firmware --hal mock` (simulated
devices) and `--hal emulated` (the real drivers over bus-level emulations) as a
subprocess, a CSMS built on the `ocpp` package, and the bench control socket.
These are the scenarios a test engineer runs by hand; each runs in both modes."""

import signal

import pytest

from tests.support.firmware_process import Bench, bench_port_of


@pytest.fixture(params=["mock", "emulated"])
def hal(request):
    return request.param


def start(ocpp_csms, firmware, hal, **kw):
    fw = firmware(ocpp_csms.url, hal=hal, **kw)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    return fw, bench


def configure(ocpp_csms, cp_id="CP-TEST-1", **keys):
    for key, value in keys.items():
        answer = ocpp_csms.call(cp_id, "ChangeConfiguration", {"key": key, "value": str(value)})
        assert answer == {"status": "Accepted"}, (key, answer)


def wait_status(ocpp_csms, status, connector=1, timeout=10):
    return ocpp_csms.wait_for("StatusNotification", timeout,
                              predicate=lambda p: p["connectorId"] == connector and
                              p["status"] == status)


def test_cold_boot_reports_every_connector(ocpp_csms, firmware, hal):
    fw, bench = start(ocpp_csms, firmware, hal)
    seen = {ocpp_csms.wait_for("StatusNotification")["connectorId"] for _ in range(2)}
    assert seen == {0, 1}
    s = bench.wait(lambda s: s["ocpp"]["registration"] == "Accepted")
    assert s["ocpp"]["connected"] is True
    assert s["connectors"]["1"]["ocpp_status"] == "Available"


def test_plug_in_first_session_with_meter_values(ocpp_csms, firmware, hal):
    fw, bench = start(ocpp_csms, firmware, hal)
    wait_status(ocpp_csms, "Available")
    configure(ocpp_csms, MeterValueSampleInterval=1, MinimumStatusDuration=0,
              ClockAlignedDataInterval=0)
    bench("plug", connector=1)
    wait_status(ocpp_csms, "Preparing")
    bench("tap", uid="04A1B2C3")
    assert ocpp_csms.wait_for("Authorize")["idTag"] == "04A1B2C3"
    start_tx = ocpp_csms.wait_for("StartTransaction")
    assert start_tx["connectorId"] == 1 and start_tx["idTag"] == "04A1B2C3"
    wait_status(ocpp_csms, "Charging")
    s = bench.wait(lambda s: s["connectors"]["1"]["contactor"] is True, what="contactor closed")
    assert s["connectors"]["1"]["transaction_id"] == 1
    values = [ocpp_csms.wait_for("MeterValues", 5) for _ in range(3)]
    energies = [float(v["meterValue"][0]["sampledValue"][0]["value"]) for v in values]
    assert all(v["transactionId"] == 1 for v in values)
    assert energies == sorted(energies)
    bench("tap", uid="04A1B2C3")
    stop = ocpp_csms.wait_for("StopTransaction")
    assert stop["reason"] == "Local" and stop["transactionId"] == 1
    assert stop["meterStop"] >= start_tx["meterStart"]
    wait_status(ocpp_csms, "Finishing")
    bench.wait(lambda s: s["connectors"]["1"]["contactor"] is False, what="contactor open")
    bench("unplug", connector=1)
    wait_status(ocpp_csms, "Available")


def test_remote_start_and_stop(ocpp_csms, firmware, hal):
    fw, bench = start(ocpp_csms, firmware, hal)
    wait_status(ocpp_csms, "Available")
    configure(ocpp_csms, MinimumStatusDuration=0)
    bench("plug", connector=1)
    wait_status(ocpp_csms, "Preparing")
    answer = ocpp_csms.call("CP-TEST-1", "RemoteStartTransaction",
                            {"connectorId": 1, "idTag": "04A1B2C3"})
    assert answer == {"status": "Accepted"}
    tx = ocpp_csms.wait_for("StartTransaction")
    wait_status(ocpp_csms, "Charging")
    assert ocpp_csms.call("CP-TEST-1", "RemoteStopTransaction", {"transactionId": 1}) == \
        {"status": "Accepted"}
    stop = ocpp_csms.wait_for("StopTransaction")
    assert stop["reason"] == "Remote" and stop["meterStop"] >= tx["meterStart"]


def test_reset_during_transaction_reexecutes(ocpp_csms, firmware, hal):
    fw, bench = start(ocpp_csms, firmware, hal)
    configure(ocpp_csms, MinimumStatusDuration=0)
    bench("plug", connector=1)
    bench("tap", uid="04A1B2C3")
    ocpp_csms.wait_for("StartTransaction")
    wait_status(ocpp_csms, "Charging")
    pid = fw.proc.pid
    assert ocpp_csms.call("CP-TEST-1", "Reset", {"type": "Hard"}) == {"status": "Accepted"}
    stop = ocpp_csms.wait_for("StopTransaction")
    assert stop["reason"] == "HardReset"
    ocpp_csms.wait_for("BootNotification", 15)     # the same process, re-executed
    assert fw.proc.pid == pid and fw.proc.poll() is None
    status = wait_status(ocpp_csms, "Finishing", timeout=15)
    assert status["connectorId"] == 1
    assert ocpp_csms.actions().count("StopTransaction") == 1


def test_kill_9_during_transaction_is_a_power_loss(ocpp_csms, firmware, hal, tmp_path):
    data = str(tmp_path / "data")
    fw, bench = start(ocpp_csms, firmware, hal, data_dir=data)
    configure(ocpp_csms, MinimumStatusDuration=0)
    bench("plug", connector=1)
    bench("tap", uid="04A1B2C3")
    tx = ocpp_csms.wait_for("StartTransaction")
    wait_status(ocpp_csms, "Charging")
    fw.proc.send_signal(signal.SIGKILL)
    fw.proc.wait(10)
    fw2 = firmware(ocpp_csms.url, data_dir=data, hal=hal)
    stop = ocpp_csms.wait_for("StopTransaction", 15)
    assert stop["reason"] == "PowerLoss" and stop["transactionId"] == 1
    assert stop["meterStop"] >= tx["meterStart"]
    assert ocpp_csms.actions().count("StopTransaction") == 1
    assert fw2.proc.poll() is None


def test_csms_outage_queued_messages_arrive_in_order(ocpp_csms, firmware, hal):
    fw, bench = start(ocpp_csms, firmware, hal)
    configure(ocpp_csms, MinimumStatusDuration=0, MeterValueSampleInterval=1,
              ClockAlignedDataInterval=0)
    bench("plug", connector=1)
    bench("tap", uid="04A1B2C3")
    ocpp_csms.wait_for("StartTransaction")
    wait_status(ocpp_csms, "Charging")
    ocpp_csms.refuse_connections = True
    ocpp_csms.drop_connections()
    bench.wait(lambda s: s["ocpp"]["connected"] is False, what="link down")
    bench.wait(lambda s: s["ocpp"]["queued_messages"] >= 3, what="messages queued offline")
    bench("tap", uid="04A1B2C3")                    # stop while offline
    bench.wait(lambda s: s["connectors"]["1"]["contactor"] is False, what="stopped offline")
    marker = len(ocpp_csms.received)
    ocpp_csms.refuse_connections = False
    stop = ocpp_csms.wait_for("StopTransaction", 20)
    assert stop["reason"] == "Local" and stop["transactionId"] == 1
    after = [(a, p) for _, a, p, _ in ocpp_csms.received[marker:]]
    mv = [p for a, p in after if a == "MeterValues"]
    assert len(mv) >= 3
    stamps = [p["meterValue"][0]["timestamp"] for p in mv]
    assert stamps == sorted(stamps), "queued MeterValues in chronological order"
    actions = [a for a, _ in after if a in ("MeterValues", "StopTransaction")]
    assert actions[-1] == "StopTransaction", "the stop after the samples taken before it"


def test_meter_fault_stops_the_transaction_safely(ocpp_csms, firmware, hal):
    fw, bench = start(ocpp_csms, firmware, hal)
    configure(ocpp_csms, MinimumStatusDuration=0)
    bench("plug", connector=1)
    bench("tap", uid="04A1B2C3")
    ocpp_csms.wait_for("StartTransaction")
    wait_status(ocpp_csms, "Charging")
    bench("fault", device="meter", mode="offline")
    faulted = wait_status(ocpp_csms, "Faulted", timeout=15)
    assert faulted["errorCode"] == "PowerMeterFailure"
    stop = ocpp_csms.wait_for("StopTransaction")
    assert stop["transactionId"] == 1
    bench.wait(lambda s: s["connectors"]["1"]["contactor"] is False, what="contactor open")
    bench("fault", device="meter", mode="none")
    wait_status(ocpp_csms, "Finishing", timeout=15)
