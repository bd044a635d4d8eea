"""The bench control socket (hal_mocks.bench_server) and its CLI (hal_mocks.bench),
over real TCP on ephemeral ports."""

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from hal_mocks.bench import BenchClient, BenchUnavailable, bench_request, format_status
from hal_mocks.bench_server import MAX_LINE, BenchServer
from hal_mocks.sim import SimContactor, SimPilot, SimRfid, SimWorld

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTRACT_CONNECTOR_KEYS = ("ocpp_status", "contactor", "locked", "energy_wh", "transaction_id",
                           "ev_state")
CONTRACT_OCPP_KEYS = ("connected", "registration", "queued_messages")


class Line:
    """A raw client connection: send bytes, read one response line."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line.decode("utf-8"))

    def ask(self, obj):
        self.send_raw(json.dumps(obj).encode("utf-8") + b"\n")
        return self.read()

    def close(self):
        self.sock.close()


@pytest.fixture
def server(world):
    s = BenchServer(world, 0).start()
    yield s
    s.stop()


@pytest.fixture
def line(server):
    c = Line(server.port)
    yield c
    c.close()


def bench_threads():
    return [t for t in threading.enumerate() if t.name.startswith("bench-")]


# --- commands -------------------------------------------------------------------------------

def test_port_zero_gets_a_real_port(server):
    assert server.port > 0
    assert server.running


def test_plug_unplug_ev(line, world):
    assert line.ask({"cmd": "plug", "connector": 1}) == {"ok": True, "connector": 1,
                                                          "ev_state": "B"}
    assert SimPilot(world, 1).ev_state() == "B"
    assert line.ask({"cmd": "ev", "connector": 1, "state": "C"})["ev_state"] == "C"
    assert SimPilot(world, 1).ev_state() == "C"
    r = line.ask({"cmd": "unplug", "connector": 1})
    assert r["ok"] is True and r["ev_state"] == "A"
    assert SimPilot(world, 1).ev_state() == "A"


def test_tap(line, world):
    r = line.ask({"cmd": "tap", "uid": "04a1b2c3"})
    assert r["ok"] is True and r["uid"] == "04A1B2C3" and r["seen"] is True
    rfid = SimRfid(world)
    assert rfid.poll() == "04A1B2C3"
    assert rfid.poll() is None


def test_tap_on_an_offline_reader_is_not_seen(line, world):
    assert line.ask({"cmd": "fault", "device": "rfid", "mode": "offline"})["ok"] is True
    r = line.ask({"cmd": "tap", "uid": "04A1"})
    assert r["ok"] is True and r["seen"] is False and "offline" in r["note"]


def test_meter(line, world):
    r = line.ask({"cmd": "meter", "connector": 1, "power_w": 3000})
    assert r == {"ok": True, "connector": 1, "power_w": 3000}
    assert line.ask({"cmd": "meter", "connector": 1, "power_w": 1500.5})["ok"] is True
    assert world.snapshot()["connectors"][1]["ev_demand_w"] == 1500.5


def test_fault(line, world):
    r = line.ask({"cmd": "fault", "device": "contactor", "mode": "welded"})
    assert r == {"ok": True, "device": "contactor", "mode": "welded"}
    assert SimContactor(world, 1).feedback() is True
    assert line.ask({"cmd": "fault", "device": "contactor", "mode": "none"})["ok"] is True
    assert SimContactor(world, 1).feedback() is False


def test_status_without_a_provider(line, world):
    world.plug(1)
    SimPilot(world, 1).set_offered_current(16)
    SimContactor(world, 1).set(True)
    r = line.ask({"cmd": "status"})
    assert r["ok"] is True
    c = r["connectors"]["1"]
    for key in CONTRACT_CONNECTOR_KEYS:
        assert key in c
    assert c["ocpp_status"] is None and c["transaction_id"] is None
    assert c["ev_state"] == "C" and c["contactor"] is True and c["locked"] is True
    assert isinstance(c["energy_wh"], float)
    assert r["ocpp"] == {"connected": False, "registration": None, "queued_messages": 0}
    assert r["faults"]["meter"] == "none"


def test_status_with_a_provider(world):
    def provider():
        return {"connectors": {"1": {"ocpp_status": "Charging", "transaction_id": 17,
                                     "error_code": "NoError", "contactor": "ignored"}},
                "ocpp": {"connected": True, "registration": "Accepted", "queued_messages": 2},
                "station": {"ocpp_status": "Available"}}

    with BenchServer(world, 0, status_provider=provider) as server:
        r = bench_request(server.port, {"cmd": "status"})
    c = r["connectors"]["1"]
    assert c["ocpp_status"] == "Charging" and c["transaction_id"] == 17
    assert c["error_code"] == "NoError"
    assert c["contactor"] is False          # the world's physical facts win
    assert r["ocpp"] == {"connected": True, "registration": "Accepted", "queued_messages": 2}
    assert r["station"] == {"ocpp_status": "Available"}


def test_status_when_the_provider_fails(world):
    def provider():
        raise RuntimeError("engine busy")

    with BenchServer(world, 0, status_provider=provider) as server:
        r = bench_request(server.port, {"cmd": "status"})
    assert r["ok"] is True
    for key in CONTRACT_CONNECTOR_KEYS:
        assert key in r["connectors"]["1"]
    for key in CONTRACT_OCPP_KEYS:
        assert key in r["ocpp"]
    assert "engine busy" in r["provider_error"]


def test_every_connector_in_status():
    w = SimWorld(number_of_connectors=2, fixed_cable=False)
    with BenchServer(w, 0) as server:
        r = bench_request(server.port, {"cmd": "status"})
        assert sorted(r["connectors"]) == ["1", "2"]
        assert r["connectors"]["2"]["locked"] is False
        assert bench_request(server.port, {"cmd": "plug", "connector": 2})["ok"] is True
    w.close()


def test_request_id_is_echoed(line):
    assert line.ask({"cmd": "status", "id": 7})["id"] == 7
    assert line.ask({"cmd": "nope", "id": "x"})["id"] == "x"


def test_many_requests_in_one_packet(line):
    line.send_raw(b'{"cmd": "plug", "connector": 1}\r\n{"cmd": "status"}\n')
    assert line.read()["ev_state"] == "B"
    assert line.read()["connectors"]["1"]["ev_state"] == "B"


def test_a_request_split_across_packets(line):
    line.send_raw(b'{"cmd": "pl')
    line.send_raw(b'ug", "connector": 1}\n')
    assert line.read()["ok"] is True


# --- errors: every one answered, the connection stays usable --------------------------------

BAD_REQUESTS = [
    (b"this is not json\n", "invalid JSON"),
    (b"[1, 2]\n", "JSON object"),
    (b'"status"\n', "JSON object"),
    (b"\n", "empty request"),
    (b"\xff\xfe\n", "UTF-8"),
    (b'{}\n', 'missing "cmd"'),
    (b'{"cmd": "explode"}\n', "unknown cmd"),
    (b'{"cmd": 5}\n', "unknown cmd"),
    (b'{"cmd": "plug"}\n', "missing 'connector'"),
    (b'{"cmd": "plug", "connector": "1"}\n', "must be an integer"),
    (b'{"cmd": "plug", "connector": true}\n', "must be an integer"),
    (b'{"cmd": "plug", "connector": 1.0}\n', "must be an integer"),
    (b'{"cmd": "plug", "connector": 2}\n', "unknown connector 2"),
    (b'{"cmd": "unplug", "connector": 0}\n', "unknown connector 0"),
    (b'{"cmd": "ev", "connector": 1}\n', "missing 'state'"),
    (b'{"cmd": "ev", "connector": 1, "state": "Q"}\n', "A|B|C|D|E|F"),
    (b'{"cmd": "ev", "connector": 1, "state": 3}\n', "must be a string"),
    (b'{"cmd": "tap"}\n', "missing 'uid'"),
    (b'{"cmd": "tap", "uid": ""}\n', "uid"),
    (b'{"cmd": "tap", "uid": "04:A1"}\n', "uid"),
    (b'{"cmd": "tap", "uid": 1234}\n', "must be a string"),
    (b'{"cmd": "meter", "connector": 1}\n', "missing 'power_w'"),
    (b'{"cmd": "meter", "connector": 1, "power_w": "7400"}\n', "must be a number"),
    (b'{"cmd": "meter", "connector": 1, "power_w": false}\n', "must be a number"),
    (b'{"cmd": "meter", "connector": 1, "power_w": -5}\n', "0 to 100000"),
    (b'{"cmd": "meter", "connector": 1, "power_w": 100001}\n', "0 to 100000"),
    (b'{"cmd": "meter", "connector": 1, "power_w": NaN}\n', "power_w"),
    (b'{"cmd": "fault", "device": "meter"}\n', "missing 'mode'"),
    (b'{"cmd": "fault", "device": "toaster", "mode": "none"}\n', "unknown device"),
    (b'{"cmd": "fault", "device": "meter", "mode": "welded"}\n', "none|offline"),
    (b'{"cmd": "fault", "device": "contactor", "mode": "offline"}\n', "none|welded|stuck"),
    (b'{"cmd": "fault", "device": "lock", "mode": "stuck"}\n',
     "this station has a fixed cable: no lock"),
]


@pytest.mark.parametrize("raw, error", BAD_REQUESTS, ids=[r[1] for r in BAD_REQUESTS])
def test_bad_requests_are_answered_and_the_connection_stays_open(line, raw, error):
    line.send_raw(raw)
    r = line.read()
    assert r["ok"] is False
    assert error in r["error"]
    assert "\n" not in r["error"]
    assert line.ask({"cmd": "status"})["ok"] is True


def test_all_bad_requests_on_one_connection(line):
    for raw, error in BAD_REQUESTS:
        line.send_raw(raw)
        r = line.read()
        assert r["ok"] is False and error in r["error"], raw
    assert line.ask({"cmd": "plug", "connector": 1})["ok"] is True


def test_an_over_long_line_is_refused_once(line):
    line.send_raw(b"x" * (MAX_LINE + 5000) + b"\n")
    r = line.read()
    assert r["ok"] is False and "longer than 65536" in r["error"]
    assert line.ask({"cmd": "status"})["ok"] is True


def test_an_over_long_line_in_pieces_is_refused_once(line):
    for _ in range(3):
        line.send_raw(b"y" * 40000)
    line.send_raw(b'y\n{"cmd": "plug", "connector": 1}\n')
    r = line.read()
    assert r["ok"] is False and "longer than" in r["error"]
    assert line.read()["ok"] is True        # the request after it is carried out


def test_a_line_of_exactly_the_limit_is_accepted(line):
    request = b'{"cmd": "status"}'
    line.send_raw(request + b" " * (MAX_LINE - len(request)) + b"\n")
    assert line.read()["ok"] is True


def test_an_internal_error_is_answered(line, world, monkeypatch):
    def broken():
        raise KeyError("bug")
    monkeypatch.setattr(world, "snapshot", broken)
    r = line.ask({"cmd": "status"})
    assert r["ok"] is False and "internal error" in r["error"]
    monkeypatch.undo()
    assert line.ask({"cmd": "status"})["ok"] is True


# --- lifecycle ------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "::1", "", "192.168.1.10"])
def test_loopback_only(world, host):
    with pytest.raises(ValueError, match="127.0.0.1"):
        BenchServer(world, 0, host=host)


def test_listens_on_loopback(server):
    assert server._listener.getsockname()[0] == "127.0.0.1"


@pytest.mark.parametrize("port", [-1, 65536, "7700", None, True])
def test_bad_ports(world, port):
    with pytest.raises(ValueError):
        BenchServer(world, port)


def test_port_in_use(world):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError) as e:
            BenchServer(world, port).start()
        assert str(port) in str(e.value) and "\n" not in str(e.value)
    finally:
        taken.close()


def test_stop_closes_connections_and_joins_threads(world):
    server = BenchServer(world, 0).start()
    clients = [Line(server.port) for _ in range(3)]
    for c in clients:
        assert c.ask({"cmd": "status"})["ok"] is True
    assert len(bench_threads()) == 4        # the acceptor and one per client
    server.stop()
    assert bench_threads() == []
    for c in clients:
        assert c.sock.recv(1) == b""        # closed by the server
        c.close()
    with pytest.raises(BenchUnavailable):
        bench_request(server.port, {"cmd": "status"})
    server.stop()                           # twice is harmless


def test_a_client_leaving_mid_line_does_not_disturb_others(server):
    a, b = Line(server.port), Line(server.port)
    a.send_raw(b'{"cmd": "pl')
    a.close()
    assert b.ask({"cmd": "plug", "connector": 1})["ok"] is True
    b.close()


def test_bench_client_keeps_one_connection(server):
    with BenchClient(server.port) as client:
        assert client.request({"cmd": "plug", "connector": 1})["ok"] is True
        assert client.request({"cmd": "status"})["connectors"]["1"]["ev_state"] == "B"


def test_bench_request_without_a_bench():
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))         # bound, not listening: connections are refused
    port = refusing.getsockname()[1]
    try:
        with pytest.raises(BenchUnavailable) as e:
            bench_request(port, {"cmd": "status"})
        assert str(e.value) == ("no bench at 127.0.0.1:%d: is the firmware running with "
                                "--hal mock?" % port)
    finally:
        refusing.close()


# --- CLI ------------------------------------------------------------------------------------

def cli(*args):
    return subprocess.run([sys.executable, "-m", "hal_mocks.bench"] + [str(a) for a in args],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_cli_commands(server, world):
    p = server.port
    r = cli("--port", p, "plug", 1)
    assert r.returncode == 0 and "pilot state B" in r.stdout
    r = cli("--port", p, "power", 1, 3000)
    assert r.returncode == 0 and "3000 W" in r.stdout
    assert world.snapshot()["connectors"][1]["ev_demand_w"] == 3000
    assert cli("--port", p, "ev", 1, "C").returncode == 0
    r = cli("--port", p, "tap", "04a1b2c3")
    assert r.returncode == 0 and "04A1B2C3" in r.stdout
    assert SimRfid(world).poll() == "04A1B2C3"
    r = cli("--port", p, "fault", "meter", "offline")
    assert r.returncode == 0 and "meter" in r.stdout
    r = cli("--port", p, "status")
    assert r.returncode == 0, r.stderr
    assert "connector" in r.stdout and "OCPP link: disconnected" in r.stdout
    assert "faults: meter offline" in r.stdout
    r = cli("--port", p, "unplug", 1)
    assert r.returncode == 0 and "pilot state A" in r.stdout


def test_cli_json(server):
    r = cli("--port", server.port, "--json", "status")
    assert r.returncode == 0
    response = json.loads(r.stdout)
    assert response["ok"] is True and "1" in response["connectors"]


def test_cli_error_exit_1(server):
    r = cli("--port", server.port, "plug", 9)
    assert r.returncode == 1
    assert r.stderr.strip() == "error: unknown connector 9 (this station has connector 1)"
    r = cli("--port", server.port, "fault", "lock", "stuck")
    assert r.returncode == 1 and "fixed cable" in r.stderr


def test_cli_cannot_connect_exit_2():
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))
    port = refusing.getsockname()[1]
    try:
        r = cli("--port", port, "status")
    finally:
        refusing.close()
    assert r.returncode == 2
    assert r.stderr.strip() == ("no bench at 127.0.0.1:%d: is the firmware running with "
                                "--hal mock?" % port)


def test_cli_help():
    r = cli("--help")
    assert r.returncode == 0
    for word in ("plug", "unplug", "ev", "tap", "power", "fault", "status", "--port", "--json"):
        assert word in r.stdout


def test_format_status_table():
    text = format_status({
        "ok": True, "fixed_cable": True,
        "connectors": {"1": {"ocpp_status": "Charging", "ev_state": "C", "contactor": True,
                             "locked": True, "energy_wh": 1234.0, "transaction_id": 17}},
        "ocpp": {"connected": True, "registration": "Accepted", "queued_messages": 1},
        "faults": {"meter": "none", "contactor": "welded"}})
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["connector", "OCPP"]
    assert lines[1].split() == ["1", "Charging", "C", "closed", "fixed", "cable", "1.234", "17"]
    assert lines[2] == "OCPP link: connected, registration Accepted, 1 queued message"
    assert lines[3] == "faults: contactor welded"


def test_deeply_nested_json_gets_an_error_and_the_connection_stays(tmp_path):
    """A hostile or broken client line must cost one error line, never the link."""
    import socket as _socket

    from hal_mocks.bench_server import BenchServer
    from hal_mocks.sim import SimWorld
    world = SimWorld()
    server = BenchServer(world, 0).start()
    try:
        with _socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            f = s.makefile("rwb")
            f.write(b"[" * 50000 + b"\n")       # under the 64 KiB line limit
            f.flush()
            first = json.loads(f.readline())
            assert first["ok"] is False and "nested too deeply" in first["error"]
            f.write(b'{"cmd": "status"}\n')
            f.flush()
            assert json.loads(f.readline())["ok"] is True
    finally:
        server.stop()
        world.close()
