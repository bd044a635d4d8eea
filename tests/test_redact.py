"""ocpp_core.redact: the AuthorizationKey never reaches a log or a trace."""

import json

import pytest

from ocpp_core import framing
from ocpp_core.redact import MASK, redact_frame


def test_change_configuration_request_masked_exactly():
    text = framing.encode_call("1", "ChangeConfiguration",
                               {"key": "AuthorizationKey", "value": "0011223344556677"})
    assert redact_frame(text) == \
        '[2,"1","ChangeConfiguration",{"key":"AuthorizationKey","value":"%s"}]' % MASK


def test_change_configuration_value_before_key_and_spaces():
    text = '[2, "1", "ChangeConfiguration", {"value" : "s3cr3t", "key" : "AuthorizationKey"}]'
    assert redact_frame(text) == \
        '[2, "1", "ChangeConfiguration", {"value" : "***", "key" : "AuthorizationKey"}]'


@pytest.mark.parametrize("secret", [
    'with \\"quotes\\" inside', "back\\\\slash", "\\u00e9\\u20ac", "", "a" * 500, "x\\\\", "}]",
])
def test_values_with_escapes_masked_and_frame_stays_json(secret):
    text = '[2,"1","ChangeConfiguration",{"key":"AuthorizationKey","value":"%s"}]' % secret
    out = redact_frame(text)
    assert json.loads(out) == [2, "1", "ChangeConfiguration",
                               {"key": "AuthorizationKey", "value": MASK}]


def test_get_configuration_result_masked():
    payload = {"configurationKey": [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "AuthorizationKey", "readonly": False, "value": "0011223344556677"},
    ], "unknownKey": ["Foo"]}
    out = redact_frame(framing.encode_result("42", payload))
    assert "0011223344556677" not in out
    decoded = json.loads(out)
    assert decoded[:2] == [3, "42"]
    keys = decoded[2]["configurationKey"]
    assert keys[1] == {"key": "AuthorizationKey", "readonly": False, "value": MASK}
    assert [k["key"] for k in keys] == ["HeartbeatInterval", "AuthorizationKey"]
    assert decoded[2]["unknownKey"] == ["Foo"]


def test_get_configuration_request_unchanged():
    text = '[2,"1","GetConfiguration",{"key":["AuthorizationKey"]}]'
    assert redact_frame(text) == text


def test_key_name_is_case_insensitive():
    # configuration keys are CiString50Type
    text = '[2,"1","ChangeConfiguration",{"key":"authorizationkey","value":"s3cr3t"}]'
    assert redact_frame(text) == \
        '[2,"1","ChangeConfiguration",{"key":"authorizationkey","value":"***"}]'
    assert "s3cr3t" not in redact_frame(text.replace("authorizationkey", "AUTHORIZATIONKEY"))


@pytest.mark.parametrize("text", [
    '[2,"1","ChangeConfiguration",{"key":"HeartbeatInterval","value":"300"}]',
    '[3,"1",{"configurationKey":[{"key":"MeterValueSampleInterval","readonly":false,"value":"60"}]}]',
    '[2,"1","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2024-01-01T00:00:00Z",'
    '"sampledValue":[{"value":"1234"}]}]}]',
    '[2,"1","Heartbeat",{}]',
    '[3,"1",{"status":"Accepted"}]',
    '[4,"1","GenericError","value",{"value":"x"}]',
    '',
    'not json at all "value":"x"',
])
def test_other_frames_unchanged(text):
    assert redact_frame(text) == text


def test_redaction_is_idempotent():
    text = '[2,"1","ChangeConfiguration",{"key":"AuthorizationKey","value":"s3cr3t"}]'
    once = redact_frame(text)
    assert redact_frame(once) == once


@pytest.mark.parametrize("frame", [
    '[2,"1","ChangeConfiguration",{"key":"Authorization\\u004bey","value":"s3cret-x"}]',
    '[2,"1","ChangeConfiguration",{"key":"AuthorizationKey","valu\\u0065":"s3cret-x"}]',
    '[2,"1","ChangeConfiguration",{"key":"\\u0061uthorizationkey","value":"s3cret-x"}]',
    '[3,"1",{"configurationKey":[{"key":"Authorization\\u004Bey","readonly":false,'
    '"value":"s3cret-x"}]}]',
])
def test_escaped_spellings_do_not_bypass_masking(frame):
    out = redact_frame(frame)
    assert "s3cret-x" not in out
    assert '"***"' in out


def test_unreadable_frame_with_escapes_is_not_shown():
    out = redact_frame('[2,"1","ChangeConfiguration",{"key":"AuthorizationKey","value":"s3\\u0063ret"')
    assert "s3" not in out and "not shown" in out


def test_escapes_in_an_innocent_frame_are_left_alone():
    frame = '[2,"1","DataTransfer",{"vendorId":"caf\\u00e9","data":"x"}]'
    assert redact_frame(frame) == frame


# --- URLs and known secrets in free text ----------------------------------------------------

from ocpp_core.redact import mask_secrets, mask_url_userinfo  # noqa: E402


@pytest.mark.parametrize("text, masked", [
    ("wss://cp:pw1234@csms.example/ocpp", "wss://***@csms.example/ocpp"),
    ("ws://user@10.0.0.1:9000", "ws://***@10.0.0.1:9000"),
    ("url = wss://a:b@h1/x and ws://c:d@h2", "url = wss://***@h1/x and ws://***@h2"),
    ("ws://p@ss:w@rd@host/ocpp", "ws://***@host/ocpp"),          # the last "@" ends it
    ("wss://csms.example/ocpp/CP@1", "wss://csms.example/ocpp/CP@1"),   # in the path
    ("mail me@example.com", "mail me@example.com"),
    ("wss://csms.example/ocpp", "wss://csms.example/ocpp"),
    ("", ""),
])
def test_url_userinfo_masked(text, masked):
    assert mask_url_userinfo(text) == masked


def test_url_userinfo_mask_and_non_text():
    assert mask_url_userinfo("ws://u:p@h/", "<redacted>") == "ws://<redacted>@h/"
    assert mask_url_userinfo(None) is None


def test_secrets_masked_longest_first_and_short_ones_left():
    text = "key abcd1234, token abcd12345678, pin 123"
    assert mask_secrets(text, ["abcd1234", "abcd12345678", "123", "", None]) == \
        "key ***, token ***, pin 123"
    assert mask_secrets("pin 123", ["123"], shortest=1) == "pin ***"
    assert mask_secrets(42, ["4711"], "<redacted>") == "42"
    assert mask_secrets("a 4711 b", ("4711",), "<redacted>") == "a <redacted> b"


def test_the_diagnostics_bundle_scrubs_secrets_and_private_keys():
    """firmware/diag_bundle.scrub, applied to every file of the bundle that
    `tools.diag bundle` writes and GetDiagnostics / GetLog upload."""
    from firmware.diag_bundle import scrub
    text = ("user pw=Hunter-22 at ftp://op:Hunter-22@diag.example/in\n"
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----\n"
            "cut: -----BEGIN PRIVATE KEY-----\nMIGHAgEA")
    out = scrub(text, ["Hunter-22", ""])
    assert "Hunter-22" not in out and "MHcCAQEEIB" not in out and "MIGHAgEA" not in out
    assert out.count("<redacted private key>") == 2
    assert "ftp://<redacted>@diag.example/in" in out


# --- the security extension: private keys, and the certificate messages -----------------------

PEM_KEY = ("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
           "-----END PRIVATE KEY-----\n")


@pytest.mark.parametrize("key", [PEM_KEY, PEM_KEY.replace("PRIVATE", "EC PRIVATE"),
                                 PEM_KEY.replace("PRIVATE", "RSA PRIVATE")])
def test_private_key_blocks_are_masked_in_text_and_frames(key):
    from ocpp_core.redact import KEY_MASK, mask_private_keys
    text = "before " + key + " after " + key
    assert mask_private_keys(text) == "before " + KEY_MASK + "\n after " + KEY_MASK + "\n"
    frame = json.dumps([2, "1", "DataTransfer", {"vendorId": "x", "data": key}])
    masked = redact_frame(frame)
    assert "MIGHAgEA" not in masked and KEY_MASK in masked
    assert json.loads(masked)[3]["data"] == KEY_MASK + "\n"


def test_unterminated_private_key_is_masked_to_the_end():
    from ocpp_core.redact import KEY_MASK, mask_private_keys
    assert mask_private_keys("x " + PEM_KEY[:60]) == "x " + KEY_MASK


@pytest.mark.parametrize("frame", [
    [2, "1", "SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n"
                                        "-----END CERTIFICATE REQUEST-----\n"}],
    [2, "2", "CertificateSigned", {"certificateChain": "-----BEGIN CERTIFICATE-----\nMIIB\n"
                                                       "-----END CERTIFICATE-----\n"}],
    [2, "3", "InstallCertificate", {"certificateType": "CentralSystemRootCertificate",
                                    "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n"}],
])
def test_certificate_messages_carry_no_secret_and_are_left_alone(frame):
    text = json.dumps(frame)
    assert redact_frame(text) == text
