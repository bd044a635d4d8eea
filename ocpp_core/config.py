"""The charge point's configuration keys (OCPP 1.6 section 9) and the two
messages that read and change them: GetConfiguration and ChangeConfiguration.

The defaults are the certified configuration of the reference station KL4311-C
(see the table KEYS). Only values that differ from the default are persisted
(Store name "config", a JSON object of key -> value as sent on the wire), so a
firmware update can change a default that nobody has overridden.

Key names from the CSMS are matched case-insensitively: the schema types `key`
as CiString50Type, and CiString is case-insensitive in OCPP 1.6 (section 7).
"heartbeatinterval" names HeartbeatInterval; answers always use the name as
section 9 spells it (an unknown key is echoed as it was sent).

Value syntax on the wire (ChangeConfiguration.req value, GetConfiguration.conf value):
  bool    "true"/"false", case-insensitive on input; always lower case on output.
  int     decimal digits only: no sign (unless the range allows negatives), no
          spaces, no fraction, no hex, no "_"; then the key's range (see KEYS).
  csl     comma-separated list; each item stripped of surrounding spaces; no
          empty item, no duplicate item; at most <key>MaxLength items where the
          spec defines such a key. "" is the empty list only where allowed (the
          measurand lists: an empty list disables those samples).
  string  free text, checked by the key's own rule (AuthorizationKey).

Every value fits CiString500Type: a ChangeConfiguration value is at most 500
characters (checked by the validator) and normalising it never lengthens it.

Standard library only, no dataclasses or metaprogramming (MicroPython port).
"""


from ocpp_core import errors
from ocpp_core.catalogue import ACTIONS
from ocpp_core.log import get_logger

log = get_logger("ocpp.config")

STORE_NAME = "config"
HIDDEN = "<hidden>"          # what logs and diagnostics show for a write-only value
MAX_VALUE_LENGTH = 500       # CiString500Type: the `value` of both messages
MAX_INT = 2147483647         # "no practical limit": a 32-bit signed integer

BOOL = "bool"
INT = "int"
CSL = "csl"
STRING = "string"

# Feature profiles (OCPP 1.6 section 3.5), in the order SupportedFeatureProfiles lists them
# (the reference station's certificate order).
CORE = "Core"
FIRMWARE_MANAGEMENT = "FirmwareManagement"
LOCAL_AUTH_LIST_MANAGEMENT = "LocalAuthListManagement"
RESERVATION = "Reservation"
SMART_CHARGING = "SmartCharging"
REMOTE_TRIGGER = "RemoteTrigger"
# The OCA whitepaper "Improved security for OCPP 1.6-J" defines no feature profile
# name; "Security" is the engine's name for it (ocpp_core/security/).
SECURITY = "Security"
PROFILES = (CORE, FIRMWARE_MANAGEMENT, LOCAL_AUTH_LIST_MANAGEMENT, RESERVATION,
            SMART_CHARGING, REMOTE_TRIGGER, SECURITY)

# ChangeConfiguration.conf status values
ACCEPTED = "Accepted"
REJECTED = "Rejected"
REBOOT_REQUIRED = "RebootRequired"
NOT_SUPPORTED = "NotSupported"


def _sampled_value_fields():
    """The fields of MeterValues.req meterValue[].sampledValue[] in the catalogue."""
    meter_value = ACTIONS["MeterValues"][2][1]["meterValue"]    # ("a", ("o", fields, req), 1)
    sampled_value = meter_value[1][1]["sampledValue"]
    return sampled_value[1][1]


_SV = _sampled_value_fields()
MEASURANDS = _SV["measurand"][2]   # the OCPP 1.6 Measurand enum, from the official schema
PHASES = _SV["phase"][2]           # the OCPP 1.6 Phase enum
# OCPP 1.6 section 9.1 (MeterValuesSampledData) allows "<measurand>.<phase>" items
# (e.g. "Voltage.L1") in the measurand lists. The spec leaves it to the station
# ("where applicable"), and a station may reject a value it cannot honour: until
# metering reports a single phase of a measurand, such items are Rejected rather
# than accepted and silently ignored.
# Set True once ocpp_core.metering selects phases from these items.
PHASE_SUFFIX_ALLOWED = False
# Measurands that are not per conductor: they take no ".<phase>" suffix.
UNPHASED_MEASURANDS = ("Frequency", "Temperature", "SoC", "RPM")
# ConnectorPhaseRotation values (section 9.1)
ROTATIONS = ("RST", "RTS", "SRT", "STR", "TRS", "TSR", "NotApplicable", "Unknown")


# --- value syntax -----------------------------------------------------------------------

def parse_bool(text):
    low = text.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    raise ValueError("not a boolean (true or false)")


def parse_int(text, lo=0, hi=MAX_INT):
    negative = text[:1] == "-"
    digits = text[1:] if negative else text
    if not digits or len(digits) > 10:
        raise ValueError("not a decimal integer")
    for c in digits:
        if c not in "0123456789":  # int() would also take " 5", "+5", "1_0" and non-ASCII digits
            raise ValueError("not a decimal integer")
    if negative and lo >= 0:
        raise ValueError("must not be negative")
    value = -int(digits) if negative else int(digits)
    if value < lo or value > hi:
        raise ValueError("out of range %d..%d" % (lo, hi))
    return value


def split_csl(text):
    """Items of a comma-separated list, stripped; "" is the empty list."""
    if text == "":
        return []
    items = [item.strip() for item in text.split(",")]
    for item in items:
        if not item:
            raise ValueError("empty item in the list")
    return items


def split_measurand(item):
    """"Voltage" -> ("Voltage", None); "Voltage.L1" -> ("Voltage", "L1") (section 9.1,
    MeterValuesSampledData: "where applicable, the Measurand is combined with the
    optional phase"); None when the item is neither."""
    if item in MEASURANDS:
        return item, None
    dot = item.rfind(".")
    if dot > 0:
        base, phase = item[:dot], item[dot + 1:]
        if base in MEASURANDS and phase in PHASES:
            return base, phase
    return None


def _measurand_problem(item, station):
    parts = split_measurand(item)
    if parts is None:
        return "%.60r is not an OCPP 1.6 measurand" % item
    base, phase = parts
    if base not in station.meter_measurands:
        return "the meter cannot measure %s" % base
    if phase is not None:
        if not PHASE_SUFFIX_ALLOWED:
            return "per-phase items (%s) are not supported" % item
        if base in UNPHASED_MEASURANDS:
            return "%s has no phases" % base
        phases = getattr(station, "phases", 3)
        for c in phase:
            if c in "123" and int(c) > phases:
                return "the station has no phase %s" % phase
    return None


def _rotation_problem(item, station):
    if item in ROTATIONS:
        return None
    dot = item.find(".")
    if dot < 0 or item[dot + 1:] not in ROTATIONS:
        return "%.60r is not a phase rotation (RST, ..., NotApplicable, Unknown)" % item
    try:
        parse_int(item[:dot], 0, station.number_of_connectors)
    except ValueError:
        return "%.60r names no connector of this station" % item
    return None


def _rotation_list_problem(items, station):
    """A bare rotation applies to every connector: it must be the only item.
    Otherwise each connector (0 = the grid connection) appears at most once."""
    seen = []
    for item in items:
        if item in ROTATIONS:
            if len(items) > 1:
                return "a rotation without a connector id must be the only item"
            continue
        cid = int(item[:item.find(".")])
        if cid in seen:
            return "connector %d appears twice" % cid
        seen.append(cid)
    return None


AUTHORIZATION_KEY_MIN = 16
AUTHORIZATION_KEY_MAX = 40


def _authorization_key_problem(text):
    """Whitepaper ed. 3, 7.2 and A00.FR.205/304: "minimal length: 16 bytes ...
    Hexadecimal represented (20 bytes maximum, represented as a string of up to 40
    hexadecimal digits)". We read it as the value on the wire: 16..40 characters
    (OCTT TC_086 checks "minimum 16 characters", hex "maximum 40"). The characters
    are printable ASCII without ':' or spaces: Basic auth user:password parsing and
    trimming vary between servers."""
    if len(text) < AUTHORIZATION_KEY_MIN or len(text) > AUTHORIZATION_KEY_MAX:
        return "must be %d to %d characters" % (AUTHORIZATION_KEY_MIN, AUTHORIZATION_KEY_MAX)
    for c in text:
        if c == ":" or c < "!" or c > "~":
            return "only printable ASCII characters, no ':' and no spaces"
    return None


def _cpo_name_problem(text):
    """CpoName goes into the CSR's organizationName (A02.FR.13): an X.520 name of
    at most 64 characters; printable ASCII keeps every CA happy."""
    if len(text) > 64:
        return "at most 64 characters"
    for c in text:
        if c < " " or c > "~":
            return "only printable ASCII characters"
    return None


# --- key definitions ------------------------------------------------------------------------

class KeyDef:
    """One configuration key.

    kind: BOOL, INT, CSL or STRING. default: typed (bool, int, list of str, str),
    or a function(station) -> typed value for a default that depends on the station.
    profile: the feature profile the key belongs to, None = always present.
    lo, hi: range of an INT. item_check(item, station) -> problem or None, for each
    CSL item; list_check(items, station) -> problem or None, for the whole list;
    max_key: the key holding the CSL's maximum number of items; allow_empty: ""
    (the empty list) is a valid CSL value. check(text) -> problem or None, for a
    STRING. reboot_required: a change is stored and takes effect after a restart
    (ChangeConfiguration answers RebootRequired). write_only: never reported with
    its value, never logged. compute(config) -> typed value, for keys that are
    facts of the station rather than settings (always read-only).
    """
    __slots__ = ("name", "kind", "default", "readonly", "profile", "lo", "hi", "item_check",
                 "list_check", "max_key", "allow_empty", "check", "reboot_required",
                 "write_only", "compute")

    def __init__(self, name, kind, default=None, readonly=False, profile=CORE, lo=0, hi=MAX_INT,
                 item_check=None, list_check=None, max_key=None, allow_empty=False, check=None,
                 reboot_required=False, write_only=False, compute=None):
        if kind not in (BOOL, INT, CSL, STRING):
            raise ValueError("unknown key type %r" % (kind,))
        self.name = name
        self.kind = kind
        if kind == CSL and default is not None and not callable(default):
            default = list(default)
        self.default = default
        self.readonly = readonly or compute is not None
        self.profile = profile
        self.lo = lo
        self.hi = hi
        self.item_check = item_check
        self.list_check = list_check
        self.max_key = max_key
        self.allow_empty = allow_empty
        self.check = check
        self.reboot_required = reboot_required
        self.write_only = write_only
        self.compute = compute

    def __repr__(self):
        return "KeyDef(%r)" % self.name


def _number_of_connectors(config):
    return config.station.number_of_connectors


def _rotation_max_length(config):
    """Section 9.1: one item per connector, connector 0 (the grid connection) too."""
    return config.station.number_of_connectors + 1


def _rotation_default(station):
    """Section 9.1 ConnectorPhaseRotation: "<connectorId>.<rotation>" items, 0 =
    the Charge Point as a whole (e.g. "0.RST,1.RST" on one connector). The
    reference station certified a bare "RST"; a bare rotation is still
    accepted when written (it then applies to every connector)."""
    return ["%d.RST" % cid for cid in range(station.number_of_connectors + 1)]


def _supported_feature_profiles(config):
    # OCPP 1.6 section 9.1.31 lists the six feature profile names: the security
    # extension adds keys and messages, it is no value of this key.
    return [p for p in config.supported_profiles if p != SECURITY]


_EAIR = ["Energy.Active.Import.Register"]
_DAY = 86400


def _measurands(name, max_key):
    return KeyDef(name, CSL, _EAIR, item_check=_measurand_problem, max_key=max_key,
                  allow_empty=True)


# Section 9 order. Ranges of the RW integers (seconds unless said otherwise):
#   BlinkRepeat 0..1000 (times)            ClockAlignedDataInterval 0..86400 (0 = off)
#   ConnectionTimeOut 1..86400              HeartbeatInterval 0..MAX_INT (0 = no heartbeats)
#   LightIntensity 0..100 (%)               MaxEnergyOnInvalidId 0..MAX_INT (Wh)
#   MeterValueSampleInterval 0..86400 (0 = off)   MinimumStatusDuration 0..86400
#   ResetRetries 0..100                     TransactionMessageAttempts 1..100
#   TransactionMessageRetryInterval 0..86400      WebSocketPingInterval 0..86400 (0 = off)
#   StopTransactionMaxMeterValues 0..1000 (samples)   MessageTimeout 1..3600
# ConnectionTimeOut 0 would cancel every incipient transaction at once, so 1 is the floor.
KEYS = (
    # Core profile (9.1)
    KeyDef("AllowOfflineTxForUnknownId", BOOL, True),
    KeyDef("AuthorizationCacheEnabled", BOOL, False),
    KeyDef("AuthorizeRemoteTxRequests", BOOL, True),
    KeyDef("BlinkRepeat", INT, 1, hi=1000),
    KeyDef("ClockAlignedDataInterval", INT, 20, hi=_DAY),
    KeyDef("ConnectionTimeOut", INT, 60, lo=1, hi=_DAY),
    KeyDef("ConnectorPhaseRotation", CSL, _rotation_default, item_check=_rotation_problem,
           list_check=_rotation_list_problem, max_key="ConnectorPhaseRotationMaxLength"),
    KeyDef("ConnectorPhaseRotationMaxLength", INT, compute=_rotation_max_length),
    KeyDef("GetConfigurationMaxKeys", INT, 27, readonly=True, lo=1),
    KeyDef("HeartbeatInterval", INT, 300),
    KeyDef("LightIntensity", INT, 50, hi=100),
    KeyDef("LocalAuthorizeOffline", BOOL, True),
    KeyDef("LocalPreAuthorize", BOOL, False),
    KeyDef("MaxEnergyOnInvalidId", INT, 7000),
    _measurands("MeterValuesAlignedData", "MeterValuesAlignedDataMaxLength"),
    KeyDef("MeterValuesAlignedDataMaxLength", INT, 100, readonly=True),
    _measurands("MeterValuesSampledData", "MeterValuesSampledDataMaxLength"),
    KeyDef("MeterValuesSampledDataMaxLength", INT, 100, readonly=True),
    KeyDef("MeterValueSampleInterval", INT, 10, hi=_DAY),
    KeyDef("MinimumStatusDuration", INT, 2, hi=_DAY),
    KeyDef("NumberOfConnectors", INT, compute=_number_of_connectors),
    KeyDef("ResetRetries", INT, 1, hi=100),
    KeyDef("StopTransactionOnEVSideDisconnect", BOOL, True),
    KeyDef("StopTransactionOnInvalidId", BOOL, False),
    _measurands("StopTxnAlignedData", "StopTxnAlignedDataMaxLength"),
    KeyDef("StopTxnAlignedDataMaxLength", INT, 1, readonly=True),
    _measurands("StopTxnSampledData", "StopTxnSampledDataMaxLength"),
    KeyDef("StopTxnSampledDataMaxLength", INT, 1, readonly=True),
    KeyDef("SupportedFeatureProfiles", CSL, compute=_supported_feature_profiles),
    KeyDef("SupportedFeatureProfilesMaxLength", INT, 6, readonly=True),
    KeyDef("TransactionMessageAttempts", INT, 1, lo=1, hi=100),
    KeyDef("TransactionMessageRetryInterval", INT, 5, hi=_DAY),
    KeyDef("UnlockConnectorOnEVSideDisconnect", BOOL, False),
    KeyDef("WebSocketPingInterval", INT, 60, hi=_DAY),
    # Local Auth List Management profile (9.2)
    KeyDef("LocalAuthListEnabled", BOOL, True, profile=LOCAL_AUTH_LIST_MANAGEMENT),
    KeyDef("LocalAuthListMaxLength", INT, 1000, readonly=True, profile=LOCAL_AUTH_LIST_MANAGEMENT),
    KeyDef("SendLocalListMaxLength", INT, 100, readonly=True, profile=LOCAL_AUTH_LIST_MANAGEMENT),
    # Reservation profile (9.3)
    KeyDef("ReserveConnectorZeroSupported", BOOL, True, readonly=True, profile=RESERVATION),
    # Smart Charging profile (9.4)
    KeyDef("ChargeProfileMaxStackLevel", INT, 8, readonly=True, profile=SMART_CHARGING),
    KeyDef("ChargingScheduleAllowedChargingRateUnit", CSL, ["Current", "Power"], readonly=True,
           profile=SMART_CHARGING),
    KeyDef("ChargingScheduleMaxPeriods", INT, 24, readonly=True, profile=SMART_CHARGING),
    KeyDef("ConnectorSwitch3to1PhaseSupported", BOOL, False, readonly=True,
           profile=SMART_CHARGING),
    KeyDef("MaxChargingProfilesInstalled", INT, 8, readonly=True, profile=SMART_CHARGING),
    # Firmware Management profile
    KeyDef("SupportedFileTransferProtocols", CSL, ["FTP", "HTTP", "HTTPS"], readonly=True,
           profile=FIRMWARE_MANAGEMENT),
    # Vendor keys of the reference station.
    # StopTransactionMaxMeterValues: at most this many samples in StopTransaction.req
    # transactionData (0 = none).
    KeyDef("StopTransactionMaxMeterValues", INT, 50, hi=1000, profile=None),
    # MessageTimeout: seconds to wait for the CSMS's answer to one of our CALLs
    # (the default is rpc.DEFAULT_RESPONSE_TIMEOUT).
    KeyDef("MessageTimeout", INT, 30, lo=1, hi=3600, profile=None),
    # OCPP 1.6 security whitepaper: the HTTP Basic auth password. "" = not set.
    KeyDef("AuthorizationKey", STRING, "", profile=None, write_only=True,
           check=_authorization_key_problem),
    # Security whitepaper ed. 3, section 7 (ocpp_core/security/).
    # SecurityProfile 0..3 (7.6: RW, "can only be increased"): a change from the CSMS
    # passes the guard ocpp_core/security/profile.py installs; default 0.
    KeyDef("SecurityProfile", INT, 0, hi=3, profile=SECURITY),
    KeyDef("CpoName", STRING, "", profile=SECURITY, check=_cpo_name_problem),
    # 7.3: the limit of CertificateSigned.req certificateChain, characters (<= 10000).
    KeyDef("CertificateSignedMaxChainSize", INT, 10000, readonly=True, hi=10000,
           profile=SECURITY),
    # 7.4: Root/CA certificates of both kinds together.
    KeyDef("CertificateStoreMaxLength", INT, 20, readonly=True, profile=SECURITY),
    # 7.1: the single-root replacement mode is not implemented: false, read-only.
    KeyDef("AdditionalRootCertificateCheck", BOOL, False, readonly=True, profile=SECURITY),
)


def format_value(defn, value):
    """A typed value as the wire string."""
    if defn.kind == BOOL:
        return "true" if value else "false"
    if defn.kind == INT:
        return str(value)
    if defn.kind == CSL:
        return ",".join(value)
    return value


def _typed_to_text(defn, value):
    """The wire string of a typed value given to Configuration.set(); TypeError if
    the value is not of the key's type."""
    kind = defn.kind
    if kind == BOOL:
        ok = value is True or value is False
    elif kind == INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == CSL:
        ok = isinstance(value, (list, tuple))
        if ok:
            for item in value:
                if not isinstance(item, str):
                    ok = False
                elif "," in item:
                    raise ValueError("%s: a list item cannot contain ','" % defn.name)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise TypeError("%s takes a %s value, not %r" % (defn.name, kind, type(value).__name__))
    return format_value(defn, value)


def _normalise_profiles(names):
    if isinstance(names, str):
        names = (names,)
    for name in names:
        if name not in PROFILES:
            raise ValueError("unknown feature profile %r" % (name,))
    # Core is not optional; the order is the one of PROFILES whatever the caller's
    return tuple(p for p in PROFILES if p == CORE or p in names)


# --- the configuration ----------------------------------------------------------------------

class Configuration:
    """The configuration keys of one charge point.

    store: an ocpp_core.store.Store (or anything with save/load/delete).
    profile: the StationProfile (NumberOfConnectors, meter measurands, phases).
    supported_profiles: the feature profiles the engine implements; keys of the
    other profiles are unknown. on_change(key, typed_value) is called after a
    change has been stored and taken effect (not for RebootRequired changes).
    definitions: the key table, KEYS unless given (tests).
    """

    def __init__(self, store, profile, supported_profiles=(CORE,), on_change=None,
                 definitions=None):
        self._store = store
        self.station = profile
        self.on_change = on_change
        self.supported_profiles = _normalise_profiles(supported_profiles)
        self._defs = {}
        self._order = []
        for d in (KEYS if definitions is None else definitions):
            if d.profile is None or d.profile in self.supported_profiles:
                if d.name in self._defs:
                    raise ValueError("key %s defined twice" % d.name)
                self._defs[d.name] = d
                self._order.append(d.name)
        self._folded = dict((name.lower(), name) for name in self._defs)
        self._values = {}     # key -> typed value in effect
        self._stored = {}     # key -> wire string persisted (differs from the default)
        self._inactive = {}   # stored entries of keys not known now: kept as they are
        self._pending = {}    # reboot-required key -> typed value in effect after restart
        self._defaults = {}   # key -> typed default on this station
        self._guards = {}     # key -> guard(value) -> None (allowed) or why it is refused
        for name in self._order:
            d = self._defs[name]
            self._defaults[name] = d.default(profile) if callable(d.default) else d.default
            self._values[name] = d.compute(self) if d.compute is not None else self._defaults[name]
        for name in self._order:  # the defaults obey their own rules
            d = self._defs[name]
            if d.compute is None and not (d.write_only and self._defaults[name] == ""):
                try:
                    self._parse(d, format_value(d, self._defaults[name]))
                except ValueError as e:
                    raise ValueError("default of %s is invalid here: %s" % (name, e))
        self._load()

    # --- reading ---------------------------------------------------------------------
    def keys(self):
        """The names of the known keys, in section 9 order."""
        return list(self._order)

    def __contains__(self, key):
        return key in self._defs

    def canonical(self, key):
        """The key's name as section 9 spells it, for any capitalisation; None
        for a key this station does not know (CiString50: case-insensitive)."""
        return self._folded.get(key.lower()) if isinstance(key, str) else None

    def definition(self, key):
        """The KeyDef of a known key; KeyError otherwise."""
        return self._defs[key]

    def get(self, key):
        """The value in effect: bool, int, str, or a new list of str for a CSL.
        KeyError for an unknown key (or one of an unsupported profile)."""
        value = self._values[key]
        return list(value) if self._defs[key].kind == CSL else value

    def value_text(self, key):
        """The value in effect as the wire string (the real value even if write-only)."""
        return format_value(self._defs[key], self._values[key])

    def pending_reboot(self):
        """Names of reboot-required keys changed since start-up."""
        return [k for k in self._order if k in self._pending]

    def guard(self, key, fn):
        """A rule of the key's own service for changes from the CSMS:
        fn(typed_value) -> None to allow, or the reason for Rejected (e.g. the
        SecurityProfile upgrade rules). Configuration.set() is not guarded."""
        self._guards[key] = fn

    # --- changing (the engine's own setter) ----------------------------------------------
    def set(self, key, value):
        """Set a key from inside the firmware (e.g. HeartbeatInterval from an accepted
        BootNotification). value is typed (bool, int, list of str, str). Persists,
        then calls on_change. Returns "Accepted" or "RebootRequired".

        KeyError: unknown key. ValueError: read-only key, or a value the key refuses.
        TypeError: value of the wrong type. Should the store fail, the value still
        applies until restart and the failure is logged."""
        d = self._defs[key]
        if d.readonly:
            raise ValueError("%s is read-only" % key)
        value = self._parse(d, _typed_to_text(d, value))
        return self._apply(d, value, False)

    # --- OCPP messages ------------------------------------------------------------------
    def get_configuration(self, payload):
        """GetConfiguration.req -> GetConfiguration.conf payload."""
        requested = payload.get("key")
        known = []
        unknown = []
        if requested:
            # GetConfigurationMaxKeys is "the maximum number of requested configuration
            # keys in a GetConfiguration.req". A request naming more keys than that
            # breaks the PDU's occurrence constraint for this station, so it is answered
            # with the CALLERROR OccurenceConstraintViolation instead of a silently
            # truncated answer. (No key list at all asks for every key: that is allowed.)
            limit = self._values.get("GetConfigurationMaxKeys")
            if limit is not None and len(requested) > limit:
                raise errors.OcppError(
                    errors.OCCURENCE_CONSTRAINT_VIOLATION,
                    "%d keys requested; GetConfigurationMaxKeys is %d" % (len(requested), limit))
            seen = []
            for asked in requested:
                key = self.canonical(asked) or asked
                if key in seen:  # a key asked for twice is answered once
                    continue
                seen.append(key)
                if key in self._defs:
                    known.append(self._entry(key))
                else:
                    unknown.append(asked)
        else:
            for key in self._order:
                known.append(self._entry(key))
        result = {}
        if known:  # never send an empty array
            result["configurationKey"] = known
        if unknown:
            result["unknownKey"] = unknown
        return result

    def change_configuration(self, payload):
        """ChangeConfiguration.req -> ChangeConfiguration.conf payload."""
        key = self.canonical(payload["key"]) or payload["key"]
        text = payload["value"]
        d = self._defs.get(key)
        if d is None:
            log.info("ChangeConfiguration: unknown key %.50r: NotSupported", key)
            return {"status": NOT_SUPPORTED}
        if d.readonly:
            log.info("ChangeConfiguration: %s is read-only: Rejected", key)
            return {"status": REJECTED}
        try:
            value = self._parse(d, text)
        except ValueError as e:
            log.info("ChangeConfiguration: %s=%s Rejected: %s", key, self._shown(d, text), e)
            return {"status": REJECTED}
        guard = self._guards.get(key)
        refused = guard(value) if guard is not None else None
        if refused:
            log.info("ChangeConfiguration: %s=%s Rejected: %s", key, self._shown(d, text), refused)
            return {"status": REJECTED}
        return {"status": self._apply(d, value, True)}

    # --- diagnostics --------------------------------------------------------------------------
    def describe(self):
        """(key, value as string, readonly, profile) for every known key, write-only
        values masked ("<hidden>", or "" when not set); profile None = always present."""
        rows = []
        for key in self._order:
            d = self._defs[key]
            text = format_value(d, self._values[key])
            if d.write_only and text:
                text = HIDDEN
            rows.append((key, text, d.readonly, d.profile))
        return rows

    # --- internals ------------------------------------------------------------------------------
    def _entry(self, key):
        d = self._defs[key]
        entry = {"key": key, "readonly": d.readonly}
        if not d.write_only:
            entry["value"] = format_value(d, self._values[key])
        return entry

    def _shown(self, d, text):
        return HIDDEN if d.write_only else "%.80r" % (text,)

    def why_invalid(self, key, text):
        """Why `text` is not a valid value of `key` in words (None when it is):
        the same check ChangeConfiguration runs, for tools that explain."""
        d = self.definition(key)
        try:
            self._parse(d, text)
        except ValueError as e:
            return " ".join(str(e).split())
        return None

    def _parse(self, d, text):
        """Wire string -> typed value, or ValueError(why)."""
        if not isinstance(text, str):
            raise ValueError("not a string")
        if len(text) > MAX_VALUE_LENGTH:
            raise ValueError("longer than %d characters" % MAX_VALUE_LENGTH)
        if d.kind == BOOL:
            return parse_bool(text)
        if d.kind == INT:
            return parse_int(text, d.lo, d.hi)
        if d.kind == STRING:
            problem = d.check(text) if d.check is not None else None
            if problem:
                raise ValueError(problem)
            return text
        items = split_csl(text)
        if not items and not d.allow_empty:
            raise ValueError("the list must not be empty")
        if d.max_key is not None and d.max_key in self._values:
            limit = self._values[d.max_key]
            if len(items) > limit:
                raise ValueError("%d items; %s is %d" % (len(items), d.max_key, limit))
        for i, item in enumerate(items):
            if item in items[:i]:
                raise ValueError("%.60r appears twice" % item)
            problem = d.item_check(item, self.station) if d.item_check is not None else None
            if problem:
                raise ValueError(problem)
        problem = d.list_check(items, self.station) if d.list_check is not None else None
        if problem:
            raise ValueError(problem)
        return items

    def _apply(self, d, value, from_csms):
        """Store and put into effect a validated value. Returns the status."""
        key = d.name
        stored = dict(self._stored)
        if value == self._defaults[key]:
            stored.pop(key, None)  # back to the default: the default may change with the firmware
        else:
            stored[key] = format_value(d, value)
        if not self._save(stored) and from_csms:
            return REJECTED  # nothing changed: not in effect, not stored
        self._stored = stored
        if d.reboot_required:
            self._pending[key] = value
            log.info("%s set to %s; in effect after a restart", key, self._shown_value(d, value))
            return REBOOT_REQUIRED
        self._pending.pop(key, None)
        self._values[key] = value
        log.info("%s set to %s", key, self._shown_value(d, value))
        if self.on_change is not None:
            try:
                self.on_change(key, list(value) if d.kind == CSL else value)
            except Exception:
                log.exception("on_change(%s) failed", key)
        return ACCEPTED

    def _shown_value(self, d, value):
        return HIDDEN if d.write_only else format_value(d, value)

    def _save(self, stored):
        data = dict(self._inactive)
        data.update(stored)
        try:
            self._store.save(STORE_NAME, data)
        except Exception as e:  # no space, read-only medium, ...
            log.error("could not store the configuration: %s", type(e).__name__)
            return False
        return True

    def _load(self):
        data = self._store.load(STORE_NAME, None)
        if data is None:
            return
        if not isinstance(data, dict):
            log.warning("stored configuration is not a key/value object: ignored")
            return
        for key in data:
            text = data[key]
            d = self._defs.get(key)
            if d is None:
                # a key of a profile not supported now, or one this firmware does not
                # know: kept in the store untouched, for a firmware that knows it
                if isinstance(key, str) and isinstance(text, str):
                    self._inactive[key] = text
                continue
            if d.readonly:
                log.warning("stored value of read-only %s ignored", key)
                continue
            try:
                value = self._parse(d, text)
            except ValueError as e:
                log.warning("stored value of %s ignored (%s); using the default %s", key, e,
                            self._shown_value(d, self._defaults[key]))
                continue
            self._values[key] = value
            if value != self._defaults[key]:
                self._stored[key] = format_value(d, value)
