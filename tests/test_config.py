"""ocpp_core.config: the configuration keys, GetConfiguration and ChangeConfiguration.

Every GetConfiguration.conf / ChangeConfiguration.conf payload the tests see is
checked twice: by ocpp_core's own catalogue validator and by jsonschema with the
official OCPP 1.6 schemas shipped in the `ocpp` package.
"""

import json
import logging
import os

import pytest
from jsonschema import Draft4Validator

from ocpp_core import config as cfgmod
from ocpp_core import errors
from ocpp_core.catalogue import ACTIONS
from ocpp_core.config import KEYS, Configuration, KeyDef
from ocpp_core.station import StationProfile
from ocpp_core.validation import validate
from tools.gen_catalogue import default_schema_dir

ALL_PROFILES = ("Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation",
                "SmartCharging", "RemoteTrigger")

# The reference station's certified configuration (docs/station-profile.md), verbatim.
CERTIFIED = {
    "AllowOfflineTxForUnknownId": "TRUE",
    "AuthorizationCacheEnabled": "FALSE",
    "AuthorizeRemoteTxRequests": "TRUE",
    "BlinkRepeat": "1",
    "ClockAlignedDataInterval": "20",
    "ConnectionTimeOut": "60",
    # The certificate's bare "RST" / 1 is not the section 9.1 format (issue 17 #5):
    # ours is "<connector>.<rotation>" for connector 0 and every connector.
    "ConnectorPhaseRotation": "0.RST,1.RST",
    "ConnectorPhaseRotationMaxLength": "2",
    "GetConfigurationMaxKeys": "27",
    "HeartbeatInterval": "300",
    "LightIntensity": "50",
    "LocalAuthorizeOffline": "TRUE",
    "LocalPreAuthorize": "FALSE",
    "MaxEnergyOnInvalidId": "7000",
    "MeterValuesAlignedData": "Energy.Active.Import.Register",
    "MeterValuesAlignedDataMaxLength": "100",
    "MeterValuesSampledData": "Energy.Active.Import.Register",
    "MeterValuesSampledDataMaxLength": "100",
    "MeterValueSampleInterval": "10",
    "MinimumStatusDuration": "2",
    "NumberOfConnectors": "1",
    "ResetRetries": "1",
    "StopTransactionOnEVSideDisconnect": "TRUE",
    "StopTransactionOnInvalidId": "FALSE",
    "StopTxnAlignedData": "Energy.Active.Import.Register",
    "StopTxnAlignedDataMaxLength": "1",
    "StopTxnSampledData": "Energy.Active.Import.Register",
    "StopTxnSampledDataMaxLength": "1",
    "SupportedFeatureProfiles":
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger",
    "SupportedFeatureProfilesMaxLength": "6",
    "TransactionMessageAttempts": "1",
    "TransactionMessageRetryInterval": "5",
    "UnlockConnectorOnEVSideDisconnect": "FALSE",
    "WebSocketPingInterval": "60",
}
# Keys the certificate left blank ("-"): our chosen defaults.
OPTIONAL_DEFAULTS = {
    "LocalAuthListEnabled": "true",
    "LocalAuthListMaxLength": "1000",
    "SendLocalListMaxLength": "100",
    "ReserveConnectorZeroSupported": "true",
    "ChargeProfileMaxStackLevel": "8",
    "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
    "ChargingScheduleMaxPeriods": "24",
    "ConnectorSwitch3to1PhaseSupported": "false",
    "MaxChargingProfilesInstalled": "8",
    "SupportedFileTransferProtocols": "FTP,HTTP,HTTPS",
    "StopTransactionMaxMeterValues": "50",
    "MessageTimeout": "30",
}
BOOL_KEYS = {k for k, v in CERTIFIED.items() if v in ("TRUE", "FALSE")}
# OCPP 1.6 section 9 accessibility: R keys (every other standard key is RW).
READONLY = {
    "ConnectorPhaseRotationMaxLength", "GetConfigurationMaxKeys", "MeterValuesAlignedDataMaxLength",
    "MeterValuesSampledDataMaxLength", "NumberOfConnectors", "StopTxnAlignedDataMaxLength",
    "StopTxnSampledDataMaxLength", "SupportedFeatureProfiles", "SupportedFeatureProfilesMaxLength",
    "LocalAuthListMaxLength", "SendLocalListMaxLength", "ReserveConnectorZeroSupported",
    "ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods", "ConnectorSwitch3to1PhaseSupported",
    "MaxChargingProfilesInstalled", "SupportedFileTransferProtocols",
}
OPTIONAL_PROFILE_OF = {
    "LocalAuthListEnabled": "LocalAuthListManagement",
    "LocalAuthListMaxLength": "LocalAuthListManagement",
    "SendLocalListMaxLength": "LocalAuthListManagement",
    "ReserveConnectorZeroSupported": "Reservation",
    "ChargeProfileMaxStackLevel": "SmartCharging",
    "ChargingScheduleAllowedChargingRateUnit": "SmartCharging",
    "ChargingScheduleMaxPeriods": "SmartCharging",
    "ConnectorSwitch3to1PhaseSupported": "SmartCharging",
    "MaxChargingProfilesInstalled": "SmartCharging",
    "SupportedFileTransferProtocols": "FirmwareManagement",
}
SECRET = "0123456789abcdef0123456789abcdef01234567"  # 40 hex chars: a 20-byte password


# --- helpers ------------------------------------------------------------------------------

def _official(name):
    with open(os.path.join(default_schema_dir(), name + ".json")) as f:
        return Draft4Validator(json.load(f))


OFFICIAL = {
    ("GetConfiguration", 2): _official("GetConfiguration"),
    ("GetConfiguration", 3): _official("GetConfigurationResponse"),
    ("ChangeConfiguration", 2): _official("ChangeConfiguration"),
    ("ChangeConfiguration", 3): _official("ChangeConfigurationResponse"),
}


def checked(action, part, payload):
    """payload, after both validators accepted it (part 2 = request, 3 = response)."""
    validate(ACTIONS[action][part], payload)
    OFFICIAL[(action, part)].validate(payload)
    return payload


def get_conf(config, keys=None):
    req = {} if keys is None else {"key": list(keys)}
    checked("GetConfiguration", 2, req)
    return checked("GetConfiguration", 3, config.get_configuration(req))


def change(config, key, value):
    req = checked("ChangeConfiguration", 2, {"key": key, "value": value})
    return checked("ChangeConfiguration", 3, config.change_configuration(req))["status"]


def entries(conf):
    return {e["key"]: e for e in conf.get("configurationKey", [])}


class MemStore:
    """The three methods of ocpp_core.store.Store, in memory; saves go through JSON."""

    def __init__(self):
        self.files = {}
        self.saves = 0
        self.fail = False

    def save(self, name, obj):
        if self.fail:
            raise OSError(28, "No space left on device")
        self.files[name] = json.dumps(obj)
        self.saves += 1

    def load(self, name, default=None):
        text = self.files.get(name)
        return default if text is None else json.loads(text)

    def delete(self, name):
        return self.files.pop(name, None) is not None


@pytest.fixture(params=["memory", "real"])
def make_store(request, tmp_path):
    """Factory of stores that share one content: a re-created store sees what the
    previous one saved (memory, and the real ocpp_core.store.Store if present)."""
    if request.param == "memory":
        mem = MemStore()
        return lambda: mem
    store_mod = pytest.importorskip("ocpp_core.store")
    return lambda: store_mod.Store(str(tmp_path / "data"))


class Changes:
    def __init__(self):
        self.seen = []

    def __call__(self, key, value):
        self.seen.append((key, value))


def make(store=None, station=None, profiles=("Core",), **kw):
    return Configuration(store if store is not None else MemStore(), station or StationProfile(),
                         profiles, **kw)


# --- the table ------------------------------------------------------------------------------

def test_defaults_are_the_certified_configuration():
    conf = get_conf(make(profiles=ALL_PROFILES))
    got = entries(conf)
    assert "unknownKey" not in conf
    expected = dict(CERTIFIED)
    expected.update(OPTIONAL_DEFAULTS)
    assert set(got) == set(expected) | {"AuthorizationKey"}
    for key, value in expected.items():
        if key in BOOL_KEYS:
            assert got[key]["value"] == value.lower(), key  # booleans go out lower case
        else:
            assert got[key]["value"] == value, key
    assert "value" not in got["AuthorizationKey"]


def test_key_order_follows_section_9():
    keys = [e["key"] for e in get_conf(make())["configurationKey"]]
    assert keys[:len(CERTIFIED)] == list(CERTIFIED)  # CERTIFIED is in the spec's order


def test_readonly_flags():
    got = entries(get_conf(make(profiles=ALL_PROFILES)))
    for key, entry in got.items():
        assert entry["readonly"] is (key in READONLY), key
    assert got["AuthorizationKey"]["readonly"] is False  # write-only, not read-only


def test_typed_values():
    c = make()
    assert c.get("AllowOfflineTxForUnknownId") is True
    assert c.get("AuthorizationCacheEnabled") is False
    assert c.get("HeartbeatInterval") == 300 and type(c.get("HeartbeatInterval")) is int
    assert c.get("MeterValuesSampledData") == ["Energy.Active.Import.Register"]
    assert c.get("SupportedFeatureProfiles") == ["Core"]
    assert c.get("NumberOfConnectors") == 1
    assert c.get("AuthorizationKey") == ""
    c.get("MeterValuesSampledData").append("Voltage")  # a copy: the config is untouched
    assert c.get("MeterValuesSampledData") == ["Energy.Active.Import.Register"]
    with pytest.raises(KeyError):
        c.get("LocalAuthListEnabled")  # profile not supported
    with pytest.raises(KeyError):
        c.get("heartbeatinterval")  # names are case-sensitive


def test_number_of_connectors_comes_from_the_station():
    c = make(station=StationProfile(number_of_connectors=3))
    assert entries(get_conf(c, ["NumberOfConnectors"]))["NumberOfConnectors"]["value"] == "3"


def test_supported_feature_profiles_in_canonical_order():
    c = make(profiles=["SmartCharging", "Core", "Reservation"])
    assert c.value_text("SupportedFeatureProfiles") == "Core,Reservation,SmartCharging"
    assert make(profiles=["Reservation"]).get("SupportedFeatureProfiles") == \
        ["Core", "Reservation"]  # Core is always there
    with pytest.raises(ValueError):
        make(profiles=["Core", "NoSuchProfile"])


def test_message_timeout_default_is_the_rpc_response_timeout():
    from ocpp_core.rpc import DEFAULT_RESPONSE_TIMEOUT
    assert make().get("MessageTimeout") == DEFAULT_RESPONSE_TIMEOUT


def test_every_definition_default_is_valid_for_all_profiles():
    c = make(profiles=ALL_PROFILES + ("Security",))
    for d in KEYS:
        assert d.name in c
        if d.kind == cfgmod.INT and not d.readonly:
            assert d.lo <= c.get(d.name) <= d.hi, d.name


def test_a_default_the_station_cannot_honour_is_refused():
    no_energy = StationProfile(meter_measurands=("Power.Active.Import",))
    with pytest.raises(ValueError, match="MeterValuesAlignedData"):
        make(station=no_energy)


def test_duplicate_definitions_are_refused():
    d = KeyDef("X", cfgmod.INT, 1)
    with pytest.raises(ValueError):
        make(definitions=[d, KeyDef("X", cfgmod.INT, 2)])


# --- GetConfiguration -----------------------------------------------------------------------

def test_get_all_with_no_key_or_an_empty_list():
    c = make()
    for conf in (get_conf(c), get_conf(c, [])):
        keys = [e["key"] for e in conf["configurationKey"]]
        assert len(keys) == len(set(keys)) == len(CERTIFIED) + 3  # + 2 vendor + AuthorizationKey
        assert "unknownKey" not in conf


def test_get_some_keys():
    conf = get_conf(make(), ["HeartbeatInterval", "NumberOfConnectors"])
    assert conf == {"configurationKey": [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "NumberOfConnectors", "readonly": True, "value": "1"}]}


def test_get_unknown_keys_only():
    conf = get_conf(make(), ["Testing", "Frobnicate"])
    assert conf == {"unknownKey": ["Testing", "Frobnicate"]}  # no empty configurationKey


def test_key_names_are_case_insensitive_and_answered_canonically():
    """CiString50Type: "heartbeatinterval" names HeartbeatInterval."""
    c = make()
    conf = get_conf(c, ["heartbeatinterval", "HEARTBEATINTERVAL", "HeartbeatInterval"])
    assert conf == {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False,
                                          "value": "300"}]}
    assert change(c, "heartbeatInterval", "60") == "Accepted"
    assert c.get("HeartbeatInterval") == 60
    assert change(c, "numberofconnectors", "2") == "Rejected"      # still read-only


def test_get_known_and_unknown_and_duplicates():
    conf = get_conf(make(), ["LightIntensity", "Foo", "LightIntensity", "Foo"])
    assert conf == {"configurationKey": [{"key": "LightIntensity", "readonly": False,
                                          "value": "50"}],
                    "unknownKey": ["Foo"]}


def test_get_configuration_max_keys():
    c = make()
    names = c.keys()
    assert len(names) > 27
    conf = get_conf(c, names[:27])  # exactly GetConfigurationMaxKeys: fine
    assert len(conf["configurationKey"]) == 27
    with pytest.raises(errors.OcppError) as e:
        c.get_configuration({"key": names[:28]})
    assert e.value.code == errors.OCCURENCE_CONSTRAINT_VIOLATION
    assert "27" in e.value.description


def test_max_keys_exceeded_is_a_callerror_on_the_wire():
    from ocpp_core.rpc import RpcEndpoint
    sent = []
    rpc = RpcEndpoint("cp", sent.append)
    c = make()
    rpc.on("GetConfiguration", c.get_configuration)
    rpc.connection_up()
    rpc.receive(json.dumps([2, "m1", "GetConfiguration", {"key": ["K%d" % i for i in range(28)]}]))
    frame = json.loads(sent[-1])
    assert frame[0] == 4 and frame[1] == "m1" and frame[2] == "OccurenceConstraintViolation"
    rpc.receive(json.dumps([2, "m2", "GetConfiguration", {}]))
    frame = json.loads(sent[-1])
    assert frame[:2] == [3, "m2"] and len(frame[2]["configurationKey"]) == len(c.keys())


def test_optional_profile_keys_hidden_until_supported():
    core = make()
    assert not set(OPTIONAL_PROFILE_OF) & set(entries(get_conf(core)))
    conf = get_conf(core, ["LocalAuthListEnabled", "ReserveConnectorZeroSupported"])
    assert conf == {"unknownKey": ["LocalAuthListEnabled", "ReserveConnectorZeroSupported"]}
    assert change(core, "LocalAuthListEnabled", "false") == "NotSupported"
    for profile in ALL_PROFILES[1:]:
        c = make(profiles=("Core", profile))
        listed = set(entries(get_conf(c)))
        for key, owner in OPTIONAL_PROFILE_OF.items():
            assert (key in listed) is (owner == profile), (key, profile)
        assert profile in c.get("SupportedFeatureProfiles")
    c = make(profiles=ALL_PROFILES)
    assert change(c, "LocalAuthListEnabled", "false") == "Accepted"
    assert c.get("LocalAuthListEnabled") is False


# --- ChangeConfiguration ---------------------------------------------------------------------

def test_change_accepted_persisted_notified_and_survives_restart(make_store):
    changes = Changes()
    c = Configuration(make_store(), StationProfile(), on_change=changes)
    assert change(c, "HeartbeatInterval", "120") == "Accepted"
    assert change(c, "MeterValuesSampledData",
                  " Energy.Active.Import.Register , Power.Active.Import,Voltage") == "Accepted"
    assert change(c, "LocalPreAuthorize", "TRUE") == "Accepted"
    assert c.get("HeartbeatInterval") == 120
    assert changes.seen == [
        ("HeartbeatInterval", 120),
        ("MeterValuesSampledData", ["Energy.Active.Import.Register", "Power.Active.Import",
                                    "Voltage"]),
        ("LocalPreAuthorize", True)]
    again = Configuration(make_store(), StationProfile())
    assert again.get("HeartbeatInterval") == 120
    assert again.get("LocalPreAuthorize") is True
    got = entries(get_conf(again))
    assert got["MeterValuesSampledData"]["value"] == \
        "Energy.Active.Import.Register,Power.Active.Import,Voltage"  # normalised
    assert got["LocalPreAuthorize"]["value"] == "true"


def test_only_changed_values_are_stored():
    store = MemStore()
    c = make(store)
    assert change(c, "LightIntensity", "80") == "Accepted"
    assert json.loads(store.files["config"]) == {"LightIntensity": "80"}
    assert change(c, "BlinkRepeat", "3") == "Accepted"
    assert json.loads(store.files["config"]) == {"LightIntensity": "80", "BlinkRepeat": "3"}
    assert change(c, "LightIntensity", "50") == "Accepted"  # back to the default: forgotten
    assert json.loads(store.files["config"]) == {"BlinkRepeat": "3"}


def test_unknown_key_is_not_supported():
    c = make()
    assert change(c, "Testing", "true") == "NotSupported"  # OCTT TC_040_1
    assert change(c, "HeartbeatInterva", "60") == "NotSupported"   # no prefix matching
    assert c.get("HeartbeatInterval") == 300


@pytest.mark.parametrize("key, value", [
    # OCTT TC_040_2 style: a value of the wrong shape
    ("HeartbeatInterval", "abc"),
    ("HeartbeatInterval", "-1"),
    ("HeartbeatInterval", "1.5"),
    ("HeartbeatInterval", ""),
    ("HeartbeatInterval", " 5"),
    ("HeartbeatInterval", "5 "),
    ("HeartbeatInterval", "+5"),
    ("HeartbeatInterval", "0x10"),
    ("HeartbeatInterval", "1_000"),
    ("HeartbeatInterval", "\u0664\u0662"),  # Arabic-Indic digits: int() would take them
    ("HeartbeatInterval", "99999999999"),
    ("HeartbeatInterval", "1e3"),
    ("LightIntensity", "101"),
    ("TransactionMessageAttempts", "0"),
    ("ConnectionTimeOut", "0"),
    ("ClockAlignedDataInterval", "86401"),
    ("AuthorizeRemoteTxRequests", "yes"),
    ("AuthorizeRemoteTxRequests", "1"),
    ("AuthorizeRemoteTxRequests", ""),
    ("AuthorizeRemoteTxRequests", " true"),
    ("MeterValuesSampledData", "Energy.Active.Import.Register,Bogus"),  # not a measurand
    ("MeterValuesSampledData", "Temperature"),  # the meter cannot measure it
    ("MeterValuesSampledData", "SoC"),
    ("MeterValuesSampledData", "energy.active.import.register"),  # enum values are exact
    ("MeterValuesSampledData", "Voltage.L1"),  # per-phase items: see PHASE_SUFFIX_ALLOWED
    ("MeterValuesSampledData", "Voltage.L4"),
    ("MeterValuesSampledData", "Voltage,,Frequency"),  # empty item
    ("MeterValuesSampledData", "Voltage,"),
    ("MeterValuesSampledData", "Voltage,Voltage"),  # twice
    ("MeterValuesAlignedData", "Energy.Active.Import.Interval"),  # meter has no interval register
    ("StopTxnSampledData", "Energy.Active.Import.Register,Voltage"),  # MaxLength 1
    ("StopTxnAlignedData", "Energy.Active.Import.Register,Current.Import"),
    ("ConnectorPhaseRotation", "XYZ"),
    ("ConnectorPhaseRotation", "2.RST"),  # one connector only
    ("ConnectorPhaseRotation", "rst"),
    ("ConnectorPhaseRotation", ""),
    ("ConnectorPhaseRotation", "0.RST,1.RST,0.RTS"),  # connector 0 twice, MaxLength 2
    ("AuthorizationKey", "short"),
    ("AuthorizationKey", "has:colon-inside-it"),
    ("AuthorizationKey", "has space inside it"),
    ("AuthorizationKey", "x" * 41),
    ("AuthorizationKey", ""),
])
def test_bad_values_are_rejected(key, value):
    store = MemStore()
    changes = Changes()
    c = make(store, on_change=changes)
    before = c.value_text(key)
    assert change(c, key, value) == "Rejected"
    assert c.value_text(key) == before
    assert changes.seen == [] and "config" not in store.files


def test_too_many_measurands_rejected():
    stop = ",".join(["Energy.Active.Import.Register"] * 2)
    assert change(make(), "StopTxnSampledData", stop) == "Rejected"
    # MeterValuesSampledDataMaxLength 100 cannot be reached with 7 meter measurands; a
    # station with a short limit shows the rule:
    defs = [d if d.name != "MeterValuesSampledDataMaxLength" else
            KeyDef(d.name, cfgmod.INT, 2, readonly=True) for d in KEYS]
    c = make(definitions=defs)
    assert change(c, "MeterValuesSampledData", "Voltage,Frequency") == "Accepted"
    assert change(c, "MeterValuesSampledData", "Voltage,Frequency,Current.Import") == "Rejected"


def test_value_longer_than_ciString500_rejected():
    # a validated request cannot carry it; a direct call must not sneak it in either
    c = make()
    assert c.change_configuration({"key": "MeterValuesSampledData",
                                   "value": "Voltage," + " " * 500 + "Frequency"}) == \
        {"status": "Rejected"}


@pytest.mark.parametrize("key, value, typed, text", [
    ("HeartbeatInterval", "0", 0, "0"),
    ("HeartbeatInterval", "007", 7, "7"),
    ("HeartbeatInterval", "2147483647", 2147483647, "2147483647"),
    ("LightIntensity", "100", 100, "100"),
    ("TransactionMessageAttempts", "3", 3, "3"),
    ("AuthorizeRemoteTxRequests", "False", False, "false"),
    ("AuthorizeRemoteTxRequests", "TRUE", True, "true"),
    ("MeterValuesSampledData", "", [], ""),  # disables sampled data
    ("StopTxnAlignedData", "", [], ""),
    ("MeterValuesAlignedData", "Voltage, Current.Import,Current.Offered ",
     ["Voltage", "Current.Import", "Current.Offered"], "Voltage,Current.Import,Current.Offered"),
    ("StopTxnSampledData", "Power.Active.Import", ["Power.Active.Import"], "Power.Active.Import"),
    ("ConnectorPhaseRotation", "0.RST", ["0.RST"], "0.RST"),
    ("ConnectorPhaseRotation", " 1.TSR ", ["1.TSR"], "1.TSR"),
    ("ConnectorPhaseRotation", "NotApplicable", ["NotApplicable"], "NotApplicable"),
    ("StopTransactionMaxMeterValues", "0", 0, "0"),
    ("MessageTimeout", "10", 10, "10"),
])
def test_good_values_accepted_and_normalised(key, value, typed, text):
    c = make()
    assert change(c, key, value) == "Accepted"
    assert c.get(key) == typed
    assert entries(get_conf(c, [key]))[key]["value"] == text


def test_per_phase_measurands_rejected_until_metering_reports_them():
    c = make()
    assert cfgmod.PHASE_SUFFIX_ALLOWED is False
    assert change(c, "MeterValuesSampledData", "Voltage.L1") == "Rejected"
    assert change(c, "StopTxnSampledData", "Current.Import.L2") == "Rejected"


def test_measurand_phases_follow_the_station(monkeypatch):
    monkeypatch.setattr(cfgmod, "PHASE_SUFFIX_ALLOWED", True)
    three = make()
    assert change(three, "MeterValuesSampledData", "Voltage.L1-N, Current.Import.L3") == "Accepted"
    assert three.get("MeterValuesSampledData") == ["Voltage.L1-N", "Current.Import.L3"]
    assert change(three, "MeterValuesSampledData", "Frequency.L1") == "Rejected"  # no phases
    assert change(three, "MeterValuesSampledData", "Temperature.L1") == "Rejected"  # no meter
    single = make(station=StationProfile(phases=1))
    assert change(single, "MeterValuesSampledData", "Voltage.L1-N,Current.Import.N") == "Accepted"
    assert change(single, "MeterValuesSampledData", "Voltage.L2") == "Rejected"
    assert change(single, "MeterValuesSampledData", "Voltage.L1-L2") == "Rejected"
    assert cfgmod.split_measurand("Power.Active.Import.L3") == ("Power.Active.Import", "L3")
    assert cfgmod.split_measurand("Voltage") == ("Voltage", None)
    assert cfgmod.split_measurand("Voltage.L9") is None


def test_connector_phase_rotation_list_rules():
    defs = [d if d.name != "ConnectorPhaseRotationMaxLength" else
            KeyDef(d.name, cfgmod.INT, 4, readonly=True) for d in KEYS]
    c = make(station=StationProfile(number_of_connectors=2), definitions=defs)
    assert change(c, "ConnectorPhaseRotation", "0.RST,1.RTS,2.Unknown") == "Accepted"
    assert c.get("ConnectorPhaseRotation") == ["0.RST", "1.RTS", "2.Unknown"]
    assert change(c, "ConnectorPhaseRotation", "1.RST,01.RTS") == "Rejected"  # connector twice
    assert change(c, "ConnectorPhaseRotation", "RST,1.RTS") == "Rejected"  # bare + per connector
    assert change(c, "ConnectorPhaseRotation", "3.RST") == "Rejected"
    assert change(c, "ConnectorPhaseRotation", "1.XYZ") == "Rejected"
    assert change(c, "ConnectorPhaseRotation", "-1.RST") == "Rejected"


def test_connector_phase_rotation_in_the_section_9_format():
    """Issue 17 #5: "<connector>.<rotation>" for connector 0 and every connector,
    with a max length that holds them all."""
    c = make(station=StationProfile(number_of_connectors=2))
    assert c.get("ConnectorPhaseRotation") == ["0.RST", "1.RST", "2.RST"]
    assert c.get("ConnectorPhaseRotationMaxLength") == 3
    assert change(c, "ConnectorPhaseRotation", "0.RST,1.RTS,2.STR") == "Accepted"
    assert change(c, "ConnectorPhaseRotation", "0.RST,1.RST,2.RST,1.RTS") == "Rejected"
    one = make()
    assert one.get("ConnectorPhaseRotation") == ["0.RST", "1.RST"]
    assert change(one, "ConnectorPhaseRotation", "0.RST,1.RST") == "Accepted"
    assert change(one, "ConnectorPhaseRotation", "RST") == "Accepted"   # the certificate's form


@pytest.mark.parametrize("key, value", [
    ("NumberOfConnectors", "2"),
    ("GetConfigurationMaxKeys", "100"),
    ("SupportedFeatureProfiles", "Core"),
    ("SupportedFeatureProfilesMaxLength", "6"),  # even the current value
    ("MeterValuesSampledDataMaxLength", "10"),
    ("StopTxnSampledDataMaxLength", "abc"),
])
def test_readonly_keys_rejected(key, value):
    c = make()
    before = c.value_text(key)
    assert change(c, key, value) == "Rejected"
    assert c.value_text(key) == before


def test_readonly_keys_of_optional_profiles_rejected():
    c = make(profiles=ALL_PROFILES)
    for key in READONLY & set(OPTIONAL_PROFILE_OF):
        assert change(c, key, c.value_text(key)) == "Rejected", key


def test_reboot_required_key(make_store):
    defs = list(KEYS) + [KeyDef("VendorModemBand", cfgmod.INT, 20, lo=1, hi=71, profile=None,
                                reboot_required=True)]
    changes = Changes()
    c = Configuration(make_store(), StationProfile(), on_change=changes, definitions=defs)
    assert change(c, "VendorModemBand", "3") == "RebootRequired"
    assert c.get("VendorModemBand") == 20  # still the value in effect
    assert entries(get_conf(c, ["VendorModemBand"]))["VendorModemBand"]["value"] == "20"
    assert c.pending_reboot() == ["VendorModemBand"]
    assert changes.seen == []  # nothing changed yet
    assert change(c, "VendorModemBand", "99") == "Rejected"  # still validated
    after = Configuration(make_store(), StationProfile(), definitions=defs)  # the restart
    assert after.get("VendorModemBand") == 3
    assert after.pending_reboot() == []
    assert c.set("VendorModemBand", 5) == "RebootRequired"


def test_store_failure_rejects_the_change_and_changes_nothing(caplog):
    store = MemStore()
    changes = Changes()
    c = make(store, on_change=changes)
    store.fail = True
    with caplog.at_level(logging.ERROR, logger="ocpp.config"):
        assert change(c, "HeartbeatInterval", "60") == "Rejected"
    assert c.get("HeartbeatInterval") == 300 and changes.seen == []
    assert "could not store" in caplog.text
    store.fail = False
    assert change(c, "HeartbeatInterval", "60") == "Accepted"
    assert json.loads(store.files["config"]) == {"HeartbeatInterval": "60"}


def test_on_change_failure_does_not_undo_the_change(caplog):
    def broken(key, value):
        raise RuntimeError("observer bug")
    c = make(on_change=broken)
    assert change(c, "HeartbeatInterval", "60") == "Accepted"
    assert c.get("HeartbeatInterval") == 60
    assert "on_change(HeartbeatInterval) failed" in caplog.text


# --- the engine's own setter --------------------------------------------------------------

def test_set_typed_value():
    store = MemStore()
    changes = Changes()
    c = make(store, on_change=changes)
    assert c.set("HeartbeatInterval", 900) == "Accepted"
    assert c.set("StopTxnSampledData", ["Power.Active.Import"]) == "Accepted"
    assert c.set("LocalPreAuthorize", True) == "Accepted"
    assert changes.seen == [("HeartbeatInterval", 900),
                            ("StopTxnSampledData", ["Power.Active.Import"]),
                            ("LocalPreAuthorize", True)]
    assert json.loads(store.files["config"]) == {
        "HeartbeatInterval": "900", "StopTxnSampledData": "Power.Active.Import",
        "LocalPreAuthorize": "true"}


def test_set_refuses_bad_input():
    c = make()
    with pytest.raises(KeyError):
        c.set("Testing", 1)
    with pytest.raises(ValueError):
        c.set("NumberOfConnectors", 2)  # read-only, also for the firmware
    with pytest.raises(ValueError):
        c.set("LightIntensity", 101)
    with pytest.raises(ValueError):
        c.set("StopTxnSampledData", ["Voltage", "Frequency"])
    with pytest.raises(ValueError):
        c.set("MeterValuesSampledData", ["Voltage,Frequency"])
    with pytest.raises(TypeError):
        c.set("HeartbeatInterval", "60")
    with pytest.raises(TypeError):
        c.set("HeartbeatInterval", True)
    with pytest.raises(TypeError):
        c.set("LocalPreAuthorize", 1)
    with pytest.raises(TypeError):
        c.set("MeterValuesSampledData", "Voltage")
    assert c.get("HeartbeatInterval") == 300 and c.get("LocalPreAuthorize") is False


def test_set_keeps_the_value_when_the_store_fails(caplog):
    store = MemStore()
    store.fail = True
    c = make(store)
    assert c.set("HeartbeatInterval", 30) == "Accepted"
    assert c.get("HeartbeatInterval") == 30
    assert "could not store" in caplog.text


# --- persistence ----------------------------------------------------------------------------

def _stored(obj):
    store = MemStore()
    store.save("config", obj)
    return store


def test_stored_value_that_no_longer_validates_is_ignored(caplog):
    store = _stored({"HeartbeatInterval": "abc", "LightIntensity": "70",
                     "MeterValuesSampledData": "Voltage,RPM"})
    with caplog.at_level(logging.WARNING, logger="ocpp.config"):
        c = make(store)
    assert c.get("HeartbeatInterval") == 300
    assert c.get("MeterValuesSampledData") == ["Energy.Active.Import.Register"]
    assert c.get("LightIntensity") == 70  # the good one survives
    lines = [r for r in caplog.records if r.name == "ocpp.config"]
    assert len(lines) == 2  # one line per ignored value
    assert "HeartbeatInterval" in lines[0].getMessage()


def test_stored_garbage_is_ignored(caplog):
    for obj in (["not", "a", "map"], {"HeartbeatInterval": 60}, {"NumberOfConnectors": "5"}):
        c = make(_stored(obj))
        assert c.get("HeartbeatInterval") == 300
        assert c.get("NumberOfConnectors") == 1
    assert len([r for r in caplog.records if r.name == "ocpp.config"]) == 3


def test_stored_keys_of_inactive_profiles_are_kept():
    store = _stored({"LocalAuthListEnabled": "false", "FutureKey": "1"})
    c = make(store)  # Core only: LocalAuthListEnabled unknown for now
    assert "LocalAuthListEnabled" not in c
    assert change(c, "HeartbeatInterval", "100") == "Accepted"
    assert json.loads(store.files["config"]) == {
        "LocalAuthListEnabled": "false", "FutureKey": "1", "HeartbeatInterval": "100"}
    full = make(store, profiles=ALL_PROFILES)
    assert full.get("LocalAuthListEnabled") is False
    assert full.get("HeartbeatInterval") == 100


def test_with_the_real_store_a_corrupt_file_gives_the_defaults(tmp_path):
    store_mod = pytest.importorskip("ocpp_core.store")
    store = store_mod.Store(str(tmp_path / "d"))
    c = make(store)
    assert change(c, "HeartbeatInterval", "45") == "Accepted"
    assert make(store_mod.Store(str(tmp_path / "d"))).get("HeartbeatInterval") == 45
    path = tmp_path / "d" / "config"
    path.write_bytes(path.read_bytes()[:-3])  # torn
    assert make(store_mod.Store(str(tmp_path / "d"))).get("HeartbeatInterval") == 300


# --- AuthorizationKey (write-only) -------------------------------------------------------------

def test_authorization_key_is_write_only_and_never_logged(caplog, make_store):
    caplog.set_level(logging.DEBUG)
    changes = Changes()
    c = Configuration(make_store(), StationProfile(), on_change=changes)
    assert change(c, "AuthorizationKey", SECRET) == "Accepted"
    assert changes.seen == [("AuthorizationKey", SECRET)]
    assert c.get("AuthorizationKey") == SECRET
    assert change(c, "AuthorizationKey", SECRET + "x") == "Rejected"  # 41 characters
    assert change(c, "AuthorizationKey", "pass:" + SECRET[:20]) == "Rejected"
    for conf in (get_conf(c), get_conf(c, ["AuthorizationKey"])):
        assert entries(conf)["AuthorizationKey"] == {"key": "AuthorizationKey", "readonly": False}
        assert SECRET not in json.dumps(conf)
    rows = {r[0]: r for r in c.describe()}
    assert rows["AuthorizationKey"] == ("AuthorizationKey", "<hidden>", False, None)
    assert SECRET not in repr(c.describe())
    again = Configuration(make_store(), StationProfile())  # reloaded from the store
    assert again.get("AuthorizationKey") == SECRET
    assert SECRET not in caplog.text and SECRET[:20] not in caplog.text
    assert "AuthorizationKey set to <hidden>" in caplog.text


def test_authorization_key_corrupt_in_store_is_not_logged(caplog):
    caplog.set_level(logging.DEBUG)
    bad = "tiny:" + SECRET[:10]
    c = make(_stored({"AuthorizationKey": bad}))
    assert c.get("AuthorizationKey") == ""
    assert "AuthorizationKey" in caplog.text and SECRET[:10] not in caplog.text


def test_authorization_key_unset_is_listed_without_value():
    c = make()
    assert entries(get_conf(c))["AuthorizationKey"] == {"key": "AuthorizationKey",
                                                        "readonly": False}
    assert ("AuthorizationKey", "", False, None) in c.describe()


# --- diagnostics ---------------------------------------------------------------------------------

def test_describe_rows():
    c = make(profiles=ALL_PROFILES)
    rows = c.describe()
    assert [r[0] for r in rows] == c.keys()
    by_key = {r[0]: r for r in rows}
    assert by_key["HeartbeatInterval"] == ("HeartbeatInterval", "300", False, "Core")
    assert by_key["NumberOfConnectors"] == ("NumberOfConnectors", "1", True, "Core")
    assert by_key["ReserveConnectorZeroSupported"] == \
        ("ReserveConnectorZeroSupported", "true", True, "Reservation")
    assert by_key["StopTransactionMaxMeterValues"] == \
        ("StopTransactionMaxMeterValues", "50", False, None)


# --- all payloads, all profiles, against both validators -----------------------------------------

def test_every_answer_is_schema_valid_for_every_profile_set():
    for n in range(len(ALL_PROFILES)):
        c = make(station=StationProfile(number_of_connectors=4), profiles=ALL_PROFILES[:n + 1])
        conf = get_conf(c)
        for e in conf["configurationKey"]:
            assert len(e["key"]) <= 50 and len(e.get("value", "")) <= 500
        for key in c.keys():
            get_conf(c, [key, key + "X"])
            d = c.definition(key)
            if not d.readonly and not d.write_only:
                assert change(c, key, c.value_text(key)) == "Accepted", key


def test_why_invalid_explains_the_change_configuration_check():
    from ocpp_core.config import Configuration
    from ocpp_core.station import StationProfile

    class MemoryStore:
        def __init__(self):
            self.data = {}

        def save(self, name, obj):
            self.data[name] = obj

        def load(self, name, default=None):
            return self.data.get(name, default)

        def delete(self, name):
            self.data.pop(name, None)

    config = Configuration(MemoryStore(), StationProfile())
    assert config.why_invalid("HeartbeatInterval", "300") is None
    assert config.why_invalid("HeartbeatInterval", "abc")
    assert config.why_invalid("MeterValuesSampledData", "Foo.Bar")


def test_the_security_extension_adds_keys_but_no_feature_profile_name():
    """OCPP 1.6 9.1.31: SupportedFeatureProfiles lists the six profile names of
    section 3.5; the security whitepaper's keys exist, "Security" is not listed."""
    c = make(profiles=ALL_PROFILES + ("Security",))
    assert "SecurityProfile" in c and "CpoName" in c
    assert get_conf(c, ["SupportedFeatureProfiles"])["configurationKey"][0]["value"] == \
        ",".join(ALL_PROFILES)
