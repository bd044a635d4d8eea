"""HTTP Basic authentication (security profiles 1 and 2, whitepaper ed. 3 7.2):
the header the OCTT checks (TC_085_CS) and the AuthorizationKey changed over
OCPP (TC_073_CS, done twice), on real websocket CSMSs that check the header.

The reading (firmware/link.py, basic_auth_password): a password of 32..40
hexadecimal digits is the hex representation of 16..20 bytes, which go in the
header; any other value (16..20 characters) goes as written."""

import base64
import binascii

import pytest
from websockets.http11 import Response
from websockets.datastructures import Headers

from firmware.link import basic_auth_token, build_url, is_hex_password, request_headers
from tests.test_diag_csms import csms_factory  # noqa: F401 - fixture
from tests.test_link import (  # noqa: F401 - fixtures
    CP_ID, PASSWORD, links, next_event, no_proxy_env, password_never_logged, servers,
)

BINARY = bytes(range(0xEC, 0x100))            # 20 bytes, not UTF-8: the advised kind
BINARY_HEX = BINARY.hex().upper()             # 40 hex digits, as a CSMS sends it


def header(cp_id, secret):
    return "Basic " + base64.b64encode(cp_id.encode() + b":" + secret).decode()


def checking(expected):
    """process_request of a CSMS that accepts only these Authorization headers."""
    def process_request(connection, request):
        if request.headers.get("Authorization") not in expected:
            return Response(401, "Unauthorized", Headers(), b"")
        return None
    return process_request


def firmware_log(caplog):
    return "\n".join(r.getMessage() for r in caplog.records
                     if not r.name.startswith("websockets"))


# --- the reading ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, hex_", [
    ("00" * 16, True), ("ab" * 20, True), (BINARY_HEX, True),
    ("0" * 31, False), ("00" * 15, False), ("00" * 20 + "0", False), ("0" * 42, False),
    ("0123456789abcdefghij0123456789abcd", False),      # 34 characters, not all hex
    (PASSWORD, False), ("0123456789abcdef", False),      # 16 hex digits: plain text
])
def test_which_passwords_are_read_as_hex(value, hex_):
    assert is_hex_password(value) is hex_


def test_tc_085_header_for_a_plaintext_and_for_a_hex_password():
    # 16..20 characters: as written.
    assert request_headers(CP_ID, PASSWORD)[1] == "Authorization: " + header(
        CP_ID, PASSWORD.encode("utf-8"))
    # 40 hex digits: the 20 bytes they stand for, not the digits.
    assert "Basic " + basic_auth_token(CP_ID, BINARY_HEX) == header(CP_ID, BINARY)
    assert "Basic " + basic_auth_token(CP_ID, BINARY_HEX.lower()) == header(CP_ID, BINARY)
    assert "Basic " + basic_auth_token(CP_ID, BINARY_HEX, as_written=True) == header(
        CP_ID, BINARY_HEX.encode())


# --- on the wire ----------------------------------------------------------------------------

def test_tc_085_cs_basic_authentication_with_a_hex_key(servers, links, caplog):
    expected = header(CP_ID, BINARY)
    csms = servers(subprotocols=["ocpp1.6"], process_request=checking({expected}))
    link, events = links(build_url(csms.url, CP_ID), password=BINARY_HEX)
    link.start()
    assert next_event(events) == ("up", None)
    _, headers = csms.requests.get(timeout=5)
    assert headers["Authorization"] == expected
    ours = firmware_log(caplog)           # (the test CSMS's own debug log shows the header)
    assert BINARY_HEX not in ours and BINARY_HEX.lower() not in ours
    assert expected.split()[1] not in ours


def test_a_csms_that_wants_the_hex_digits_as_written_still_gets_in(servers, links, caplog):
    """Compatibility: a CSMS (or an installation) that used the 40 digits as the
    password, as this firmware did before: refused once, then accepted as
    written, and that form is kept for the next connections."""
    literal = header(CP_ID, BINARY_HEX.encode())
    csms = servers(subprotocols=["ocpp1.6"], process_request=checking({literal}))
    link, events = links(build_url(csms.url, CP_ID), password=BINARY_HEX)
    link.start()
    seen = []
    while not seen or seen[-1][0] != "up":
        seen.append(next_event(events))
    assert [kind for kind, _ in seen] == ["down", "security", "up"]
    assert seen[1][1][0] == "FailedToAuthenticateAtCentralSystem"
    assert csms.requests.get(timeout=5)[1]["Authorization"] == header(CP_ID, BINARY)  # reading
    assert csms.requests.get(timeout=5)[1]["Authorization"] == literal
    link.reconnect()
    assert next_event(events) == ("down", "reconnect requested")
    assert next_event(events) == ("up", None)
    assert csms.requests.get(timeout=5)[1]["Authorization"] == literal   # no refusal again
    ours = firmware_log(caplog)
    assert "the next attempt sends it as written" in ours
    assert BINARY_HEX not in ours and literal.split()[1] not in ours


# --- end to end: the firmware subprocess and an `ocpp` CSMS that checks the header ---------

FIRST = "tc085-First-pass"            # 16 characters: plain text (TC_085)
KEYS = ("tc073-Second-pw-1", "tc073-Third-pass-20c")      # 17 and 20 characters


def test_tc_073_cs_update_the_basic_auth_password_twice(ocpp_csms, firmware):
    ocpp_csms.password = FIRST
    cp = "CP-TC073"
    fw = firmware(ocpp_csms.url, charge_point_id=cp, extra=["--password", FIRST])
    ocpp_csms.wait_for("BootNotification", timeout=20)
    # TC_085: the header exactly as the OCTT expects it.
    assert ocpp_csms.connections[-1][2] == header(cp, FIRST.encode())
    for n, key in enumerate(KEYS, start=2):
        hex_key = binascii.hexlify(key.encode()).decode().upper()      # 34 / 40 digits
        ocpp_csms.password = key         # the CSMS expects the new one from now on
        answer = ocpp_csms.call(cp, "ChangeConfiguration",
                                {"key": "AuthorizationKey", "value": hex_key})
        assert answer == {"status": "Accepted"}
        _, _, authorization = ocpp_csms.wait_connections(n, timeout=20)
        assert authorization == header(cp, key.encode())
        # Write-only: GetConfiguration never gives it back.
        got = ocpp_csms.call(cp, "GetConfiguration", {"key": ["AuthorizationKey"]})
        assert all("value" not in k for k in got.get("configurationKey", []))
    log = fw.log()
    for secret in (FIRST,) + KEYS:
        assert secret not in log
        assert binascii.hexlify(secret.encode()).decode().upper() not in log


# --- tools.diag csms makes the firmware's request, the fall back included ----------------------

def test_diag_csms_check_decodes_a_hex_key_and_falls_back_as_the_firmware(tmp_path,
                                                                          csms_factory):
    from tests.test_diag_csms import CP_ID as DIAG_ID, run, write_ini
    plain = "diag-check-pass-17"
    hex_key = binascii.hexlify(plain.encode()).decode()
    conformant = csms_factory(password=plain)        # checks the decoded bytes
    code, text = run(["--config", write_ini(tmp_path, conformant.url(), password=hex_key),
                      "csms"])
    assert code == 0, text
    assert [h.get("Authorization") for _, h in conformant.requests] == [
        header(DIAG_ID, plain.encode())]
    assert "as written" not in text and plain not in text and hex_key not in text
    literal = csms_factory(password=hex_key)         # wants the digits themselves
    code, text = run(["--config", write_ini(tmp_path, literal.url(), password=hex_key), "csms"])
    assert code == 0, text
    assert [h.get("Authorization") for _, h in literal.requests] == [
        header(DIAG_ID, plain.encode()), header(DIAG_ID, hex_key.encode())]
    assert "took the hex AuthorizationKey as written" in text and hex_key not in text
