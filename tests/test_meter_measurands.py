"""Which OCPP measurands a meter delivers (EnergyMeter.measurands): what the
engine may offer the CSMS for the configured meter."""

import pytest

from drivers import meter_maps
from drivers.hal import EnergyMeter, Hal
from drivers.meter_maps import get_map
from hal_mocks.sim import SimMeter, SimWorld
from hal_mocks.world_store import build_mock_hal
from ocpp_core.metering import MEASURANDS, MeterSample, sampled_values

ENERGY, POWER = "Energy.Active.Import.Register", "Power.Active.Import"
EVERYTHING = (ENERGY, POWER, "Current.Import", "Voltage", "Frequency")

A_READING = MeterSample(energy_wh=12345.0, power_w=7360.0, current_a=(10.7, 10.6, 10.7),
                        voltage_v=(230.1, 229.8, 230.4), frequency_hz=50.0)


def delivered(sample, phases):
    """The measurands the engine really reports from a sample."""
    values = sampled_values(sample, EVERYTHING, "Sample.Periodic", phases=phases)
    return {v["measurand"] for v in values}


def test_sdm630_delivers_energy_power_current_voltage_and_frequency():
    assert get_map("SDM630").measurands == EVERYTHING


def test_sdm72_has_totals_only_energy_and_power():
    assert get_map("SDM72").measurands == (ENERGY, POWER)


def test_single_phase_sdm120_measures_everything_on_its_phase():
    assert get_map("SDM120").measurands == EVERYTHING


@pytest.mark.parametrize("model", meter_maps.MODELS)
def test_a_maps_measurands_are_what_its_readings_carry(model):
    m = get_map(model)
    registers = m.encode(meter_maps.values_from_sample(A_READING, m.phases))
    sample = meter_maps.sample_from_values(m.decode(registers), m.phases)
    assert set(m.measurands) == delivered(sample, m.phases)
    assert all(name in MEASURANDS for name in m.measurands)      # OCPP 1.6 names


def test_phase_powers_without_a_total_still_give_the_power():
    fields = [("energy_import", 0x48, 2, "f32", 1000)] + [
        ("power_l%d" % (i + 1), 0x0C + 2 * i, 2, "f32", 1) for i in range(3)]
    summed = meter_maps.MeterMap("T3", "test", meter_maps.READ_INPUT, 3,
                                 blocks=((0x0C, 6), (0x48, 2)), fields=fields)
    assert summed.measurands == (ENERGY, POWER)
    partial = meter_maps.MeterMap("T2", "test", meter_maps.READ_INPUT, 3,
                                  blocks=((0x0C, 6), (0x48, 2)), fields=fields[:3])
    assert partial.measurands == (ENERGY,)      # L3 missing: no total can be formed


def test_modbus_meter_takes_them_from_its_map():
    pytest.importorskip("pymodbus")
    from drivers.meter_modbus import ModbusMeter

    class NoClient:
        def read_input_registers(self, address, count=1, device_id=1):
            raise AssertionError("not read")

    for model in ("SDM630", "SDM72"):
        meter = ModbusMeter("/dev/null", model=model, client=NoClient())
        assert meter.measurands == get_map(model).measurands


def test_the_simulated_meter_claims_what_it_reads():
    world = SimWorld()
    meter = SimMeter(world, 1)
    assert meter.measurands == EVERYTHING
    assert set(meter.measurands) == delivered(meter.read(), world.phases)


def test_an_unknown_meter_has_the_energy_register_only():
    assert EnergyMeter.measurands == (ENERGY,)


def test_the_mock_hal_passes_them_through_its_saving_meter(tmp_path):
    hal = build_mock_hal(str(tmp_path), 1, True, 3)
    try:
        assert hal.connectors[1]["meter"].measurands == EVERYTHING
        assert hal.meter_measurands() == EVERYTHING
    finally:
        hal.close()


def test_a_station_reports_what_every_connectors_meter_measures():
    class Meter(EnergyMeter):
        def __init__(self, measurands):
            self.measurands = measurands

    hal = Hal(rfid=None, modem=None, indicator=None, connectors={
        2: {"meter": Meter((ENERGY, POWER))},
        1: {"meter": Meter(EVERYTHING)}})
    assert hal.meter_measurands() == (ENERGY, POWER)


def test_the_engine_refuses_a_measurand_the_configured_meter_cannot_deliver(tmp_path):
    """The meter's measurands reach the engine's StationProfile: on an SDM72
    (no voltage register) Voltage is Rejected, as it must not be accepted and
    then silently left out of every MeterValues."""
    from drivers.meter_maps import MAPS
    from firmware.hal_factory import build_hal
    from firmware.main_loop import Firmware
    from tests.support.firmware_process import mock_station_config
    cfg = mock_station_config(tmp_path / "data", "CP-SDM72")
    hal = build_hal(cfg)
    try:
        hal.meter_measurands = lambda: MAPS["SDM72"].measurands     # as an SDM72 HAL says
        fw = Firmware(cfg, hal)
        change = fw.cp.config.change_configuration
        assert change({"key": "MeterValuesSampledData", "value": "Voltage"}) == \
            {"status": "Rejected"}
        assert change({"key": "MeterValuesSampledData",
                       "value": "Power.Active.Import,Current.Offered"}) == {"status": "Accepted"}
    finally:
        hal.close()
