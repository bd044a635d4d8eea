import signal

import pytest

from tests.support.firmware_process import FirmwareProcess, RawCsms


@pytest.fixture
def world():
    """A simulated world whose meter and modem time out quickly (a test module
    may define its own `world` with other settings)."""
    from hal_mocks.sim import SimWorld
    w = SimWorld(meter_timeout=0.05, modem_timeout=0.05)
    yield w
    w.close()


@pytest.fixture
def closing():
    """Register things to close/stop at the end, last first."""
    items = []
    yield items.append
    for item in reversed(items):
        (getattr(item, "close", None) or item.stop)()


@pytest.fixture
def ocpp_csms():
    """A CSMS built on the `ocpp` package; fails the test on any schema violation."""
    from tests.support.ocpp_csms import OcppCsms
    csms = OcppCsms().start()
    yield csms
    csms.stop()
    assert not csms.violations, "messages that broke the official schemas: %r" % csms.violations


@pytest.fixture
def firmware(tmp_path):
    """Factory: firmware(csms_url, cp_id='CP-TEST-1', extra=[...]) -> FirmwareProcess."""
    started = []

    def start(csms_url, charge_point_id="CP-TEST-1", extra=(), data_dir=None, env=None,
              hal="mock"):
        data = data_dir or str(tmp_path / "data")
        args = ["--hal", hal, "--csms-url", csms_url, "--charge-point-id", charge_point_id,
                "--data-dir", data, "--bench-port", "0"] + list(extra)
        fw = FirmwareProcess(args, str(tmp_path / ("firmware-%d.log" % len(started))), env)
        started.append(fw)
        return fw

    yield start
    for fw in started:
        fw.stop(signal.SIGKILL)


@pytest.fixture
def upload_server():
    """Real HTTP upload server on loopback (tests/support/upload_servers.py)."""
    from tests.support.upload_servers import UploadServer
    s = UploadServer()
    yield s
    s.stop()


@pytest.fixture
def raw_csms():
    s = RawCsms()
    yield s
    s.stop()


@pytest.fixture
def h(tmp_path):
    """The in-process charge point on a virtual clock (tests/support/core_harness.py),
    status changes reported at once; no CALLERROR may have been needed by the end.
    A test module may define its own `h`."""
    from tests.support.core_harness import FAST, Harness
    harness = Harness(tmp_path / "data", config=FAST)
    yield harness
    harness.check_clean()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """(cert, key) PEM paths of a self-signed certificate for 127.0.0.1."""
    import shutil
    import subprocess
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)
