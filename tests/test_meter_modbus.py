"""The Modbus energy meter: register maps (drivers.meter_maps), the driver
(drivers.meter_modbus) against the emulator (hal_mocks.modbus_meter) on the
simulated world."""

import os
import subprocess
import sys
import threading
import time
import tty

import pytest

from drivers import meter_maps
from drivers.hal import DeviceError, EnergyMeter
from drivers.meter_maps import Field, get_map
from hal_mocks.sim import SimContactor, SimMeter, SimPilot, SimWorld

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytest.importorskip("pymodbus")


from tests.support.device_fixtures import FakeClock  # noqa: E402


@pytest.fixture
def no_thread_left():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            return
        time.sleep(0.01)   # threads have no "all ended" notification to wait on
    raise AssertionError("threads left running: %r" % left)


@pytest.fixture
def clock():
    return FakeClock(1000.0)


def make_world(clock, phases=3):
    return SimWorld(clock=clock, phases=phases, meter_timeout=0.2)


def charge(world, amps=16):
    """Plug an EV, offer current, close the contactor: the EV draws power."""
    world.plug(1)
    SimPilot(world, 1).set_offered_current(amps)
    SimContactor(world, 1).set(True)


class Rig:
    """Emulators and drivers of one test; all closed at its end."""

    def __init__(self):
        self.emulators = []
        self.drivers = []

    def start(self, world, **kwargs):
        from hal_mocks.modbus_meter import start_meter_emulator
        emu = start_meter_emulator(world, **kwargs)
        self.emulators.append((emu, world))
        return emu

    def driver(self, emu, **kwargs):
        from drivers.meter_modbus import ModbusMeter
        kwargs.setdefault("model", emu.model)
        kwargs.setdefault("address", emu.address)
        kwargs.setdefault("timeout", 0.3)
        meter = ModbusMeter(emu.port, **kwargs)
        self.drivers.append(meter)
        return meter

    def close(self):
        for meter in self.drivers:
            meter.close()
        for emu, world in self.emulators:
            emu.stop()
            world.close()


@pytest.fixture
def rig(no_thread_left):
    r = Rig()
    yield r
    r.close()


# --- codecs and maps: hand-encoded words --------------------------------------------------
def test_float32_big_endian_decodes_the_value_the_meter_meant():
    volts = Field("voltage_l1", 0x0000, 2, "f32", 1)
    assert volts.decode([0x4366, 0x199A]) == 230.1          # 230.1 as float32, high word first
    kwh = Field("energy_import", 0x0048, 2, "f32", 1000)
    assert kwh.decode([0x3FC0, 0x0000]) == 1500.0           # 1.5 kWh -> Wh
    assert kwh.decode([0x447A, 0x0000]) == 1000000.0        # 1000 kWh
    power = Field("power", 0x0034, 2, "f32", 1)
    assert power.decode([0xC49A, 0x5000]) == -1234.5        # export: negative power
    nan = kwh.decode([0x7FC0, 0x0000])
    assert nan != nan


def test_abb_scaled_integers_big_endian():
    volts = Field("voltage_l1", 0x5B00, 2, "u32", 0.1, (0xFFFFFFFF,))
    assert volts.decode([0x0000, 0x08FD]) == 230.1          # 2301 x 0.1 V
    assert volts.decode([0xFFFF, 0xFFFF]) is None           # "not available"
    amps = Field("current_l1", 0x5B0C, 2, "u32", 0.01)
    assert amps.decode([0x0001, 0x0000]) == 655.36          # the high word counts
    power = Field("power", 0x5B14, 2, "s32", 0.01, (0x7FFFFFFF,))
    assert power.decode([0xFFFE, 0x1DC0]) == -1234.56       # -123456 x 0.01 W
    assert power.decode([0x7FFF, 0xFFFF]) is None
    energy = Field("energy_import", 0x5000, 4, "u64", 10)
    assert energy.decode([0x0000, 0x0000, 0x0001, 0x86A0]) == 1000000.0   # 100000 x 0.01 kWh
    assert energy.decode([0x0001, 0x0000, 0x0000, 0x0000]) == 2 ** 48 * 10.0
    hz = Field("frequency", 0x5B2C, 1, "u16", 0.01)
    assert hz.decode([5000]) == 50.0


def test_em24_int32_low_word_first_and_negative_power():
    volts = Field("voltage_l1", 0x0000, 2, "s32ws", 0.1)
    assert volts.decode([0x08FD, 0x0000]) == 230.1          # low word first
    amps = Field("current_l1", 0x000C, 2, "s32ws", 0.001)
    assert amps.decode([0x1170, 0x0001]) == 70.0            # 0x00011170 = 70000 mA
    power = Field("power", 0x0028, 2, "s32ws", 0.1)
    assert power.decode([0xCFC7, 0xFFFF]) == -1234.5        # -12345 x 0.1 W
    assert power.encode(-1234.5) == [0xCFC7, 0xFFFF]
    hz = Field("frequency", 0x0033, 1, "s16", 0.1)
    assert hz.decode([500]) == 50.0
    energy = Field("energy_import", 0x0034, 2, "s32ws", 100)
    assert energy.decode([0x2710, 0x0000]) == 1000000.0     # 10000 x 0.1 kWh


def test_energy_registers_round_down_when_encoded():
    energy = Field("energy_import", 0x5000, 4, "u64", 10)
    assert energy.encode(1009.99, floor=True) == [0, 0, 0, 100]     # 100 x 10 Wh, not 101
    amps = Field("current_l1", 0x5B0C, 2, "u32", 0.01)
    assert amps.encode(10.726) == [0, 1073]


def test_field_and_map_tables_are_checked():
    with pytest.raises(ValueError):
        Field("power", 0x34, 1, "f32", 1)            # a float32 is 2 registers
    with pytest.raises(ValueError):
        Field("reactive_power", 0x34, 2, "f32", 1)
    with pytest.raises(ValueError, match="outside every block"):
        meter_maps.MeterMap("X", "x", 4, 1, blocks=((0x48, 2),),
                            fields=[("energy_import", 0x48, 2, "f32", 1000),
                                    ("power", 0x34, 2, "f32", 1)])
    with pytest.raises(ValueError, match="SDM630"):
        get_map("SDM999")
    assert get_map("sdm630") is get_map("SDM630V2")
    for m in meter_maps.MAPS.values():
        m.validate()
        assert all(count <= 24 or m.name == "B23" for _, count in m.blocks)


@pytest.mark.parametrize("model", meter_maps.MODELS)
def test_every_map_encodes_and_decodes_a_world_reading(model, clock):
    world = make_world(clock, phases=get_map(model).phases)
    charge(world)
    clock.advance(3600)
    sample = SimMeter(world, 1).read()
    m = get_map(model)
    back = meter_maps.sample_from_values(m.decode(m.encode(meter_maps.values_from_sample(
        sample, m.phases))), m.phases)
    assert back.energy_wh == pytest.approx(sample.energy_wh, abs=100)
    assert back.power_w == pytest.approx(sample.power_w, abs=0.1)


# --- lazy import ----------------------------------------------------------------------------
def test_importing_the_driver_does_not_import_pymodbus():
    code = (
        "import sys\n"
        "import drivers.meter_modbus, drivers.meter_maps, hal_mocks.modbus_meter\n"
        "assert not [m for m in sys.modules if m.startswith(('pymodbus', 'serial'))], 'early'\n"
        "from drivers.meter_modbus import ModbusMeter\n"
        "ModbusMeter('/dev/this-port-does-not-exist', model='SDM630')\n"
        "assert 'pymodbus.client' in sys.modules\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --- driver against the emulator ---------------------------------------------------------------
# (energy resolution in Wh, current resolution in A) of each model's registers
RESOLUTION = {"SDM630": (0.01, 1e-6), "SDM120": (0.01, 1e-6), "B23": (10, 0.005),
              "EM24": (100, 0.0005)}


@pytest.mark.parametrize("model", ["SDM630", "SDM120", "B23", "EM24"])
def test_driver_reads_the_world_through_the_emulator(model, clock, rig):
    phases = get_map(model).phases
    world = make_world(clock, phases=phases)
    emu = rig.start(world, model=model, address=1)
    meter = rig.driver(emu)
    assert isinstance(meter, EnergyMeter)
    energy_res, current_res = RESOLUTION[model]

    idle = meter.read()
    assert idle.power_w == 0.0
    assert idle.energy_wh == pytest.approx(1000.0, abs=energy_res)

    charge(world)
    clock.advance(60)
    truth = SimMeter(world, 1).read()
    sample = meter.read()
    assert truth.power_w == min(7400.0, 16 * 230.0 * phases)
    assert sample.power_w == pytest.approx(truth.power_w, abs=0.01)
    assert sample.voltage_v == truth.voltage_v                      # 0.1 V: exact everywhere
    assert len(sample.current_a) == phases
    for got, want in zip(sample.current_a, truth.current_a):
        assert got == pytest.approx(want, abs=current_res)
    assert sample.frequency_hz == 50.0
    assert truth.energy_wh - energy_res <= sample.energy_wh <= truth.energy_wh + 1e-3

    clock.advance(600)     # 10 more minutes: +1233 Wh at 7.4 kW, +613 Wh at 3.68 kW
    later = meter.read()
    gained = truth.power_w * 600 / 3600.0
    truth = SimMeter(world, 1).read()
    assert gained - energy_res <= later.energy_wh - sample.energy_wh <= gained + energy_res
    assert truth.energy_wh - energy_res <= later.energy_wh <= truth.energy_wh + 1e-3
    assert meter.last_read_s < 1.0


def test_tcp_transport_and_the_totals_only_sdm72(clock, rig):
    world = make_world(clock)
    emu = rig.start(world, model="SDM72", transport="tcp")
    assert emu.port.startswith("socket://127.0.0.1:")
    meter = rig.driver(emu)
    charge(world)
    clock.advance(36)
    sample = meter.read()
    assert sample.power_w == 7400.0
    assert sample.energy_wh == pytest.approx(1074.0, abs=0.01)
    assert sample.current_a is None and sample.voltage_v is None and sample.frequency_hz is None


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_offline_meter_fails_in_bounded_time_and_recovers(transport, clock, rig):
    world = make_world(clock)
    emu = rig.start(world, model="SDM630", transport=transport)
    meter = rig.driver(emu, timeout=0.3, retries=1)
    first = meter.read()

    world.fault("meter", "offline")
    asked = emu.requests
    started = time.monotonic()
    with pytest.raises(DeviceError) as e:
        meter.read()
    elapsed = time.monotonic() - started
    assert str(e.value).startswith("meter did not answer at address 1, 9600 8N1 on %s" % emu.port)
    assert "check RS-485 A/B wiring" in str(e.value)
    assert 0.3 * 2 - 0.05 <= elapsed <= 0.3 * 2 + 0.5      # timeout x (retries + 1)
    assert emu.requests - asked == 2 and emu.ignored >= 2    # heard, and kept silent

    world.fault("meter", "none")
    clock.advance(10)
    again = meter.read()
    assert again.energy_wh == pytest.approx(first.energy_wh, abs=0.01)


def test_wrong_address_gets_no_answer(clock, rig):
    world = make_world(clock)
    emu = rig.start(world, model="SDM630", address=1)
    meter = rig.driver(emu, address=2, timeout=0.2)
    with pytest.raises(DeviceError, match="did not answer at address 2, 9600 8N1"):
        meter.read()
    assert emu.requests == 1 and emu.ignored == 1 and emu.answered == 0
    assert rig.driver(emu, address=1).read().energy_wh == pytest.approx(1000.0)


def test_wrong_model_is_named_in_the_error(clock, rig):
    world = make_world(clock)
    emu = rig.start(world, model="B23")
    meter = rig.driver(emu, model="SDM630")          # reads input registers 0..17; a B23 has none
    with pytest.raises(DeviceError, match=r"refused input registers 0x0000\+18 \(Modbus exception 2 "
                                          r"illegal data address\): is it really a SDM630\?"):
        meter.read()
    em24 = rig.start(make_world(clock), model="EM24")
    with pytest.raises(DeviceError, match=r"refused holding registers 0x5000\+4 \(Modbus exception 2 "):
        rig.driver(em24, model="B23").read()
    sdm = rig.start(make_world(clock), model="SDM630")
    wrong_function = rig.driver(sdm, model="EM24")    # EM24 blocks fit inside no SDM630 block
    with pytest.raises(DeviceError, match=r"Modbus exception 2"):
        wrong_function.read()


def test_emulator_answers_the_functions_of_its_model(clock, rig):
    from pymodbus.client import ModbusTcpClient
    from pymodbus.framer import FramerType
    sdm = rig.start(make_world(clock), model="SDM630", transport="tcp")
    em24 = rig.start(make_world(clock), model="EM24", transport="tcp")

    def client(emu):
        c = ModbusTcpClient("127.0.0.1", port=int(emu.port.rsplit(":", 1)[1]),
                            framer=FramerType.RTU, timeout=1, retries=0)
        assert c.connect()
        return c

    c = client(sdm)
    try:
        assert c.read_input_registers(0x46, count=2, device_id=1).registers == [0x4248, 0]  # 50.0
        assert c.read_holding_registers(0x46, count=2, device_id=1).exception_code == 1
        assert c.write_register(0x46, 1, device_id=1).exception_code == 1
        assert c.read_input_registers(0x100, count=2, device_id=1).exception_code == 2
    finally:
        c.close()
    c = client(em24)
    try:
        for read in (c.read_input_registers, c.read_holding_registers):   # 03 and 04 alike
            assert read(0x33, count=1, device_id=1).registers == [500]           # 50.0 Hz
    finally:
        c.close()


def test_missing_port_is_a_device_error():
    from drivers.meter_modbus import ModbusMeter
    meter = ModbusMeter("/dev/this-port-does-not-exist", timeout=0.1)
    with pytest.raises(DeviceError, match="cannot open /dev/this-port-does-not-exist"):
        meter.read()


def test_noise_on_the_line_points_at_baud_rate_and_parity(no_thread_left):
    from drivers.meter_modbus import ModbusMeter
    master, slave = os.openpty()
    tty.setraw(slave)

    def babble():
        try:
            os.read(master, 64)                       # the request
            os.write(master, b"\x55\xaa" * 12)        # a meter at the wrong baud rate
        except OSError:
            pass

    t = threading.Thread(target=babble)
    t.start()
    meter = ModbusMeter(os.ttyname(slave), timeout=0.2)
    try:
        with pytest.raises(DeviceError, match=r"no valid answer .* \(24 bytes of noise\): "
                                              r"check baud rate, parity"):
            meter.read()
    finally:
        meter.close()
        os.close(slave)          # a babbler still waiting for a request now reads EIO
        t.join(5)
        os.close(master)


def test_read_time_at_9600_baud_with_wire_timing(clock, rig):
    world = make_world(clock)
    emu = rig.start(world, model="SDM630", wire_timing=True, baudrate=9600)
    meter = rig.driver(emu)
    meter.read()
    # 3 requests of 8 bytes, answers of 41 + 9 + 13 bytes: 87 bytes x 10 bits at 9600 baud.
    wire_s = 87 * 10 / 9600.0
    assert wire_s <= meter.last_read_s < wire_s + 0.5


def test_stop_closes_the_pseudo_terminals(clock, rig):
    world = make_world(clock)
    emu = rig.start(world, model="SDM120")
    port = emu.port
    assert os.path.exists(port)
    emu.stop()
    emu.stop()                                   # idempotent
    assert not os.path.exists(port)


# --- plausibility, with a scripted client ---------------------------------------------------
class ScriptedClient:
    """Answers reads from a register image the test sets."""

    def __init__(self, registers):
        self.registers = registers
        self.closed = 0

    def connect(self):
        return True

    def close(self):
        self.closed += 1

    def read_holding_registers(self, address, count=1, device_id=1):
        return self._answer(address, count)

    read_input_registers = read_holding_registers

    def _answer(self, address, count):
        words = [self.registers[a] for a in range(address, address + count)]
        return type("Response", (), {"registers": words, "isError": lambda self: False})()


def scripted(model, **values):
    m = get_map(model)
    base = {"energy_import": 1000.0, "power": 0.0, "frequency": 50.0}
    for i in range(1, 4):
        base.update({"voltage_l%d" % i: 230.0, "current_l%d" % i: 0.0, "power_l%d" % i: 0.0})
    base.update(values)
    return ScriptedClient(m.encode(base))


def test_implausible_values_are_device_errors():
    from drivers.meter_modbus import ModbusMeter
    client = scripted("SDM630", energy_import=1500.0)
    meter = ModbusMeter("/dev/ttyUSB0", model="SDM630", client=client)
    assert meter.read().energy_wh == 1500.0

    client.registers.update(scripted("SDM630", energy_import=1400.0).registers)
    with pytest.raises(DeviceError, match="went backwards from 1500.000 to 1400.000 Wh"):
        meter.read()
    client.registers.update(scripted("SDM630", energy_import=1500.5).registers)
    assert meter.read().energy_wh == 1500.5               # the last good register was kept

    client.registers.update(scripted("SDM630", energy_import=float("nan")).registers)
    with pytest.raises(DeviceError, match="implausible energy"):
        meter.read()
    client.registers.update(scripted("SDM630", power=float("inf")).registers)
    with pytest.raises(DeviceError, match="implausible power"):
        meter.read()
    fresh = ModbusMeter("/dev/ttyUSB0", model="SDM630", client=scripted("SDM630", energy_import=-5.0))
    with pytest.raises(DeviceError, match="negative energy"):
        fresh.read()


def test_not_available_markers():
    from drivers.meter_modbus import ModbusMeter
    client = scripted("B23", voltage_l2=None, frequency=None)
    sample = ModbusMeter("/dev/ttyUSB0", model="B23", client=client).read()
    assert sample.voltage_v == (230.0, None, 230.0)
    assert sample.frequency_hz is None
    no_energy = scripted("B23", energy_import=None)
    with pytest.raises(DeviceError, match="energy register as not available"):
        ModbusMeter("/dev/ttyUSB0", model="B23", client=no_energy).read()


def test_bad_settings_are_refused_at_construction():
    from drivers.meter_modbus import ModbusMeter
    client = scripted("SDM630")
    for kwargs in ({"address": 0}, {"address": 248}, {"parity": "X"}, {"stopbits": 3},
                   {"baudrate": "9600"}, {"timeout": 0}, {"retries": -1}, {"model": "XYZ"}):
        with pytest.raises(ValueError):
            ModbusMeter("/dev/ttyUSB0", client=client, **kwargs)
