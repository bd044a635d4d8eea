"""The LTE modem over AT commands: the parsing rules, and the driver against
the emulated modem on a real pseudo-terminal."""

import functools
import time

import pytest
import serial

from drivers.hal import DeviceError, ModemStatus
from drivers.modem_at import (AtModem, csq_to_dbm, is_final, looks_like_urc, normalize_iccid,
                              registration_stat)
from hal_mocks.fake_modem import start_fake_modem
from hal_mocks.sim import SimModem
from tests.support.device_fixtures import closing_factory

TIMEOUT = 0.3


@pytest.fixture
def fake(world, closing):
    return closing_factory(closing, functools.partial(start_fake_modem, world), urc_every=0)


@pytest.fixture
def modem(closing):
    return closing_factory(closing, AtModem, timeout=TIMEOUT)


def assert_bench_modem(st):
    assert isinstance(st, ModemStatus)
    assert st.signal_dbm == -71                   # SimModem: -71 dBm = rssi 21
    assert st.registered is True and st.sim_ready is True
    assert st.operator == "Bench Telecom"
    assert st.iccid == SimModem.ICCID and st.imsi == SimModem.IMSI and st.imei == SimModem.IMEI
    assert st.model == "EG25-G" and st.firmware == "EG25GGBR07A08M2G"


# --- parsing rules ----------------------------------------------------------------------------
@pytest.mark.parametrize("rssi, dbm", [(0, -113), (1, -111), (2, -109), (4, -105), (10, -93),
                                       (21, -71), (30, -53), (31, -51), (99, None), (32, None),
                                       (-1, None), (None, None)])
def test_csq_to_dbm(rssi, dbm):
    assert csq_to_dbm(rssi) == dbm


@pytest.mark.parametrize("line, stat", [
    ("+CEREG: 0,1", 1), ("+CEREG: 2,5,\"1A2B\",\"01A2B3C4\",7", 5), ("+CEREG: 0,2", 2),
    ("+CEREG: 1", None),                                   # URC, n=1
    ("+CEREG: 5,\"1A2B\",\"01A2B3C4\",7", None),           # URC, n=2
    ("+CREG: 0,5", None),                                   # another command's
    ("RING", None)])
def test_registration_answer_is_told_from_the_urc(line, stat):
    assert registration_stat(line, "+CEREG") == stat


@pytest.mark.parametrize("line, iccid", [
    ("+QCCID: 89490200001234567892", "89490200001234567892"),
    ("+QCCID: 8949020000123456789F", "8949020000123456789"),
    ("+ICCID: \"89882280666012345678\"", "89882280666012345678"),
    ("+CCID: 8944110063111111111", "8944110063111111111"),
    ("98942000002143658729", "89490200001234567892"),     # nibble-swapped raw EF_ICCID
    ("89490200001234567892", "89490200001234567892"),
    ("+CCID: 1234", None), ("RING", None), ("+CEREG: 1", None)])
def test_normalize_iccid(line, iccid):
    assert normalize_iccid(line) == iccid


def test_line_classes():
    for urc in ("RING", "RDY", "+CEREG: 1", '+QIND: "csq",21,99', "POWERED DOWN", "^RSSI: 12"):
        assert looks_like_urc(urc)
    for answer in ("001010123456789", "EG25-G", "EG25GGBR07A08M2G"):
        assert not looks_like_urc(answer)
    for final in ("OK", "ERROR", "+CME ERROR: 10", "+CMS ERROR: 500"):
        assert is_final(final)
    assert not is_final("+CPIN: READY")


# --- the driver against the emulated modem ----------------------------------------------------
def test_status_over_a_pty(world, fake, modem):
    m = fake()
    driver = modem(m.port)
    st = driver.status()
    assert_bench_modem(st)
    assert st.extra["registration"] == "home" and st.extra["act"] == 7
    assert st.extra["manufacturer"] == "Quectel"
    assert st.extra["serving_cell"].startswith('"servingcell","NOCONN","LTE"')
    assert m.commands == ["ATE0", "AT+CMEE=1", "AT+CPIN?", "AT+CSQ", "AT+CEREG?", "AT+COPS?",
                          "AT+QCCID", "AT+CIMI", "AT+CGSN", "AT+CGMI", "AT+CGMM", "AT+CGMR",
                          'AT+QENG="servingcell"']
    assert not m.echo
    # identity of the hardware is read once
    before = len(m.commands)
    assert_bench_modem(driver.status())
    assert "AT+CGSN" not in m.commands[before:] and "AT+CGMM" not in m.commands[before:]


def test_urcs_everywhere_are_tolerated(world, fake, modem):
    m = fake(urc_every=1)                 # a URC before every answer
    driver = modem(m.port)
    for _ in range(2):
        st = driver.status()
        assert_bench_modem(st)
    assert {"+CEREG: 1", "RING", '+QIND: "csq",21,99'} <= set(st.extra["urcs"])
    assert '+CEREG: 5,"1A2B","01A2B3C4",7' in st.extra["urcs"]


def test_no_sim(world, fake, modem):
    m = fake(sim_present=False)
    st = modem(m.port).status()
    assert st.sim_ready is False and st.iccid is None and st.imsi is None
    assert st.registered is False and st.operator is None
    assert st.extra["sim_state"] == "SIM not inserted"
    assert st.signal_dbm == -71 and st.imei == SimModem.IMEI    # the modem itself is fine
    assert [c for c in m.commands if "CCID" in c] == ["AT+QCCID", "AT+CICCID", "AT+ICCID",
                                                      "AT+CCID"]


def test_not_registered_then_roaming(world, fake, modem):
    m = fake(registered=False)
    driver = modem(m.port)
    st = driver.status()
    assert st.registered is False and st.operator is None and st.sim_ready is True
    assert st.extra["registration"] == "searching"
    i = m.commands.index("AT+CEREG?")
    assert m.commands[i + 1] == "AT+CREG?"        # 2G/3G asked when LTE says no
    m.registered, m.roaming = True, True
    st = driver.status()
    assert st.registered is True and st.extra["registration"] == "roaming"
    assert st.operator == "Bench Telecom"


def test_iccid_commands_are_tried_in_turn(world, fake, modem):
    m = fake(iccid_commands=("AT+CCID",), manufacturer="u-blox", model="LARA-R6")
    driver = modem(m.port)
    assert driver.status().iccid == SimModem.ICCID
    assert [c for c in m.commands if "CCID" in c] == ["AT+QCCID", "AT+CICCID", "AT+ICCID",
                                                      "AT+CCID"]
    assert 'AT+QENG="servingcell"' not in m.commands     # not a Quectel
    before = len(m.commands)
    assert driver.status().iccid == SimModem.ICCID
    assert [c for c in m.commands[before:] if "CCID" in c] == ["AT+CCID"]   # remembered


def test_iccid_f_padding_is_stripped(world, fake, modem):
    m = fake(iccid="8949020000123456789")        # 19 digits: Quectel pads with F
    assert modem(m.port).status().iccid == "8949020000123456789"


def test_offline_modem_is_a_device_error_within_the_timeout(world, fake, modem):
    m = fake()
    driver = modem(m.port)
    assert_bench_modem(driver.status())
    world.fault("modem", "offline")
    started = time.monotonic()
    with pytest.raises(DeviceError) as e:
        driver.status()
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 0.5
    assert str(e.value).startswith("modem does not answer on %s: no reply to ATE0" % m.port)
    world.fault("modem", "none")
    assert_bench_modem(driver.status())


def test_reset_sends_cfun_and_the_modem_comes_back(world, fake, modem):
    m = fake(reboot_seconds=0.05)
    driver = modem(m.port)
    assert_bench_modem(driver.status())
    driver.reset()
    assert m.commands[-1] == "AT+CFUN=1,1"
    assert world.snapshot()["modem_resets"] == 1 and driver.resets == 1
    assert m.wait_booted() and m.echo                     # a restarted modem echoes again
    before = len(m.commands)
    assert_bench_modem(driver.status())
    assert m.commands[before] == "ATE0" and "AT+CGMM" in m.commands[before:]  # re-read


def test_reset_power_cycles_a_modem_that_does_not_answer(world, fake, modem):
    m = fake()
    cycled = []
    driver = modem(m.port, power_cycle=lambda: cycled.append(True))
    world.fault("modem", "offline")
    driver.reset()
    assert cycled == [True] and driver.resets == 1
    assert world.snapshot()["modem_resets"] == 0        # the AT reset never arrived
    without = modem(m.port)
    with pytest.raises(DeviceError, match="could not be reset: modem does not answer"):
        without.reset()


def test_missing_port(tmp_path, modem):
    with pytest.raises(DeviceError, match="cannot be opened"):
        modem(str(tmp_path / "ttyUSB9")).status()


def test_a_loop_that_only_echoes_is_no_answer():
    loop = serial.serial_for_url("loop://", timeout=0.01)
    driver = AtModem("loop://", timeout=0.2, serial=loop)
    try:
        with pytest.raises(DeviceError, match="modem does not answer on loop://: no reply to ATE0"):
            driver.status()
    finally:
        driver.close()
        loop.close()
