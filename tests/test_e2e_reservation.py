"""The Reservation profile end to end (OCPP 1.6 3.11, 5.1, 5.13): `python -m
firmware --hal mock` as a subprocess against the CSMS built on the `ocpp`
package, driven through the bench socket.

Absence ("the other card started nothing") is proven against a later event the
firmware had to process first, never by waiting a while."""

import signal
import time

from ocpp_core.timestamps import format_utc
from tests.support.firmware_process import Bench, bench_port_of

CP = "CP-TEST-1"
TAG = "04A1B2C3"
OTHER = "DEADBEEF"


def _accepted(ocpp_csms, firmware, **kw):
    fw = firmware(ocpp_csms.url, **kw)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    bench.wait(lambda s: s["ocpp"]["registration"] == "Accepted", what="Accepted")
    assert ocpp_csms.call(CP, "ChangeConfiguration",
                          {"key": "MinimumStatusDuration", "value": "0"}) == {"status": "Accepted"}
    return fw, bench


def _status(ocpp_csms, connector, status, timeout=10):
    return ocpp_csms.wait_for("StatusNotification", timeout, predicate=lambda p:
                              p["connectorId"] == connector and p["status"] == status)


def _reserve(ocpp_csms, seconds, reservation_id=1, connector_id=1, id_tag=TAG):
    return ocpp_csms.call(CP, "ReserveNow", {
        "connectorId": connector_id, "idTag": id_tag, "reservationId": reservation_id,
        "expiryDate": format_utc(time.time() + seconds)})


def _other_card_refused_then_reserved_card_charges(ocpp_csms, fw, bench, reservation_id):
    bench("plug", connector=1)
    bench.wait(lambda s: s["connectors"]["1"]["ev_state"] == "B", what="EV plugged")
    bench("tap", uid=OTHER)
    fw.wait_log("card %s ignored" % OTHER)
    bench("tap", uid=TAG)
    start = ocpp_csms.wait_for("StartTransaction")
    assert start["idTag"] == TAG and start["connectorId"] == 1
    assert start["reservationId"] == reservation_id
    # Everything the other card could have caused came before this start.
    assert [p["idTag"] for _, a, p, _ in ocpp_csms.received if a == "StartTransaction"] == [TAG]
    _status(ocpp_csms, 1, "Charging")
    s = bench.wait(lambda s: s["connectors"]["1"]["contactor"] is True, what="charging")
    assert s["connectors"]["1"]["reservation"] is None, "ended by its transaction"


def test_reservation_honoured_other_card_refused_reserved_card_charges(ocpp_csms, firmware):
    fw, bench = _accepted(ocpp_csms, firmware)
    assert _reserve(ocpp_csms, 600, reservation_id=42) == {"status": "Accepted"}
    _status(ocpp_csms, 1, "Reserved")
    s = bench.wait(lambda s: s["connectors"]["1"]["ocpp_status"] == "Reserved", what="Reserved")
    shown = s["connectors"]["1"]["reservation"]
    assert shown["reservation_id"] == 42 and shown["id_tag"] == TAG
    bench.wait(lambda s: (s.get("indicator") or {}).get("state") == "reserved",
               what="the indicator shows reserved")
    assert ocpp_csms.call(CP, "RemoteStartTransaction",
                          {"connectorId": 1, "idTag": OTHER}) == {"status": "Rejected"}
    _other_card_refused_then_reserved_card_charges(ocpp_csms, fw, bench, 42)


def test_reservation_expires_back_to_available(ocpp_csms, firmware):
    fw, bench = _accepted(ocpp_csms, firmware)
    expiry = format_utc(time.time() + 2.5)
    assert ocpp_csms.call(CP, "ReserveNow", {"connectorId": 1, "idTag": TAG, "reservationId": 1,
                                             "expiryDate": expiry}) == {"status": "Accepted"}
    reserved = _status(ocpp_csms, 1, "Reserved")
    available = ocpp_csms.wait_for("StatusNotification", 10, predicate=lambda p:
                                   p["connectorId"] == 1 and p["status"] == "Available"
                                   and p["timestamp"] > reserved["timestamp"])
    assert available["timestamp"] >= expiry, "not before its expiryDate"
    s = bench.wait(lambda s: s["connectors"]["1"]["ocpp_status"] == "Available",
                   what="Available")
    assert s["connectors"]["1"]["reservation"] is None
    fw.wait_log("reservation 1 (connector 1, %s) ended: expired" % TAG)
    assert ocpp_csms.call(CP, "CancelReservation", {"reservationId": 1}) == \
        {"status": "Rejected"}


def test_reservation_survives_kill_9(ocpp_csms, firmware, tmp_path):
    data = str(tmp_path / "data")
    fw, bench = _accepted(ocpp_csms, firmware, data_dir=data)
    assert _reserve(ocpp_csms, 600, reservation_id=7) == {"status": "Accepted"}
    _status(ocpp_csms, 1, "Reserved")
    fw.stop(signal.SIGKILL)
    fw2 = firmware(ocpp_csms.url, data_dir=data)
    ocpp_csms.wait_for("BootNotification", 15)
    _status(ocpp_csms, 1, "Reserved", timeout=15)    # reported again after the boot
    bench2 = Bench(bench_port_of(fw2))
    ocpp_csms.wait_connections(2)
    _other_card_refused_then_reserved_card_charges(ocpp_csms, fw2, bench2, 7)
    assert fw2.proc.poll() is None


# ----------------------------------------------------------------------------- the indicator
def test_the_indicator_shows_reserved_on_every_kind_of_device():
    """Reserved maps to its own indicator state; the simulated indicator, the RGB
    LED (blinking yellow; steady yellow is "suspended") and a single LED (lit)
    all show it."""
    from drivers.gpio_devices import GpioBus, GpioIndicator
    from drivers.hal import INDICATOR_STATES
    from firmware.main_loop import _INDICATOR
    from hal_mocks.fake_gpio import INDICATOR, FakeGPIO
    from hal_mocks.sim import SimIndicator, SimWorld

    assert _INDICATOR["Reserved"] == "reserved" and "reserved" in INDICATOR_STATES
    # "offline" and "refused" (after a refused card) are the main loop's own states
    assert set(_INDICATOR.values()) | {"offline", "refused"} == set(INDICATOR_STATES)
    sim = SimIndicator()
    sim.show("reserved", 2, 40)
    assert sim.last == {"state": "reserved", "blink_repeat": 2, "intensity": 40}
    try:
        sim.show("party")
    except ValueError as e:
        assert "unknown indicator state 'party'" in str(e)
    else:
        raise AssertionError("the simulated indicator took an unknown state")

    world = SimWorld(fixed_cable=False)
    red, green, blue, single = 5, 6, 13, 19
    fake = FakeGPIO(world, {red: (INDICATOR, "red"), green: (INDICATOR, "green"),
                            blue: (INDICATOR, "blue")})
    bus = GpioBus(fake)
    try:
        led = GpioIndicator(bus, red, green, blue, blink_s=0.04)
        t0 = time.monotonic()
        led.show("reserved", blink_repeat=0, intensity=100)
        assert led.wait_settled()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:     # polling a fake pin: nothing to wait on
            levels = [d for t, p, d in list(fake.history) if p == green and t >= t0]
            if sum(1 for a, b in zip(levels, levels[1:]) if a and not b) >= 3:
                break
            time.sleep(0.005)
        else:
            raise AssertionError("the RGB LED does not keep blinking for reserved")
        assert fake.duty(blue) == 0.0, "yellow: red and green only"
        one = GpioIndicator(bus, pin=single, blink_s=0.04)
        one.show("reserved", blink_repeat=0, intensity=100)
        assert one.wait_settled(1.0)
        t2 = time.monotonic()
        time.sleep(0.2)      # five blink periods: the absence of blinking needs a window
        levels = [d for t, p, d in list(fake.history) if p == single and t >= t2]
        assert all(levels) and fake.duty(single) == 100.0, "a single LED: steadily lit"
    finally:
        bus.close()
        world.close()
