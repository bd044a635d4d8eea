"""The station configuration: an INI file, overridden by command-line flags.

Every problem is a ConfigError with one line naming the setting, so that
`python -m firmware` can exit with a message a technician can act on.
"""

import configparser
import os

from firmware.link import validate_csms_url

HAL_KINDS = ("mock", "emulated", "pi")

# BootNotification field limits (CiString lengths from the OCPP 1.6 schema).
_BOOT_FIELDS = (
    # (ini option, payload field, max length)
    ("vendor", "chargePointVendor", 20),
    ("model", "chargePointModel", 20),
    ("serial_number", "chargePointSerialNumber", 25),
    ("charge_box_serial_number", "chargeBoxSerialNumber", 25),
    ("firmware_version", "firmwareVersion", 50),
    ("meter_type", "meterType", 25),
    ("meter_serial_number", "meterSerialNumber", 25),
)


class ConfigError(Exception):
    """A bad setting: str(e) is the one line shown to the user."""


class StationConfig:
    """What the firmware needs to start. Secrets are kept out of repr()."""

    def __init__(self):
        self.hal = "mock"
        self.csms_url = None
        self.charge_point_id = None
        self.password = None
        self.ca_bundle = None
        self.data_dir = None
        self.bench_port = 7700
        self.boot_fields = {"chargePointVendor": "OpenPiCharge",
                            "chargePointModel": "PiCharger-AC1"}
        self.log_level = "INFO"
        self.source = None  # the INI file, when one was read
        # The station's hardware feature set (defaults: the reference KL4311-C).
        self.connectors = 1
        self.fixed_cable = True
        self.max_current_a = 32.0
        self.phases = 3
        # Raw device sections ([meter], [rfid], [pilot], [modem], [gpio]): read with
        # types and ranges by firmware/device_config.py when the HAL is built.
        self.device_sections = {}
        # [security] (docs/security.md): the installer's security profile (a floor:
        # the CSMS can only raise it), the URL of profiles 2/3, whether the system
        # CAs are trusted beside the installed CentralSystemRootCertificates, the
        # key type of the CSRs.
        self.security_profile = 0
        self.tls_url = None
        self.trust_system_cas = False
        self.csr_key_type = "rsa2048"
        # Firmware Management's A/B installation (firmware/releases.py)
        self.releases_dir = None        # default DIR/releases
        self.boot_trial_seconds = 600.0

    def __repr__(self):
        return ("StationConfig(hal=%r, csms_url=%r, charge_point_id=%r, password=%s, "
                "data_dir=%r, bench_port=%r)" % (
                    self.hal, self.csms_url, self.charge_point_id,
                    "<set>" if self.password else None, self.data_dir, self.bench_port))

    def boot_notification(self):
        """The BootNotification payload (fields only when set)."""
        return dict(self.boot_fields)


def read_ini(path):
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        raise ConfigError("config file %s does not exist" % path)
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("cannot read config file %s: %s" % (path, e))
    except configparser.Error as e:
        first = str(e).splitlines()[0]
        raise ConfigError("config file %s is malformed: %s" % (path, first))
    return parser


def _int(value, what, low, high):
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError("%s must be a whole number, not %r" % (what, value))
    if not low <= n <= high:
        raise ConfigError("%s must be between %d and %d, not %d" % (what, low, high, n))
    return n


def load(flags):
    """Build the StationConfig from an argparse namespace (config file + flags)."""
    cfg = StationConfig()
    ini = None
    if getattr(flags, "config", None):
        ini = read_ini(flags.config)
        cfg.source = flags.config

    def get(section, option):
        if ini is not None and ini.has_option(section, option):
            value = ini.get(section, option).strip()
            return value if value != "" else None
        return None

    cfg.hal = flags.hal or get("hal", "kind") or cfg.hal
    cfg.csms_url = flags.csms_url or get("csms", "url")
    cfg.charge_point_id = flags.charge_point_id or get("station", "charge_point_id")
    cfg.password = flags.password if flags.password is not None else get("csms", "password")
    cfg.ca_bundle = get("csms", "ca_bundle")
    cfg.data_dir = flags.data_dir or get("station", "data_dir")
    security = {o: get("security", o) for o in ("profile", "tls_url", "trust_system_cas",
                                                 "csr_key")}
    port = flags.bench_port if flags.bench_port is not None else get("bench", "port")
    cfg.log_level = (getattr(flags, "log_level", None) or get("station", "log_level") or "INFO").upper()
    if ini is not None:
        for name in ("meter", "rfid", "pilot", "modem", "gpio"):
            if ini.has_section(name):
                cfg.device_sections[name] = dict(ini.items(name))
    hw = {}
    for option in ("connectors", "fixed_cable", "max_current", "phases"):
        hw[option] = get("station", option)
    for option, field, limit in _BOOT_FIELDS:
        value = get("station", option)
        if value is not None:
            cfg.boot_fields[field] = value
    from firmware.releases import running_version
    release = running_version()
    if release is not None:         # running an installed release: its manifest's version
        cfg.boot_fields["firmwareVersion"] = release
    elif "firmwareVersion" not in cfg.boot_fields:
        from firmware import __version__
        cfg.boot_fields["firmwareVersion"] = __version__

    # --- checks, in the order a user would fix them ---------------------------
    where = " (in %s)" % cfg.source if cfg.source else ""
    if cfg.hal not in HAL_KINDS:
        raise ConfigError("unknown HAL %r%s: choose one of %s" % (cfg.hal, where, ", ".join(HAL_KINDS)))
    if not cfg.csms_url:
        raise ConfigError("no CSMS URL: give --csms-url or [csms] url in the config file")
    try:
        validate_csms_url(cfg.csms_url)
    except ValueError as e:
        raise ConfigError(str(e))
    if not cfg.charge_point_id:
        raise ConfigError("no charge point id: give --charge-point-id or [station] charge_point_id")
    if len(cfg.charge_point_id) > 48 or any(c.isspace() for c in cfg.charge_point_id):
        raise ConfigError("charge point id %r must be 1-48 characters without spaces"
                          % cfg.charge_point_id)
    if cfg.password is not None and ":" in cfg.password:
        raise ConfigError("the basic-auth password must not contain ':'")
    if cfg.ca_bundle and not os.path.isfile(cfg.ca_bundle):
        raise ConfigError("[csms] ca_bundle %s is not a file" % cfg.ca_bundle)
    cfg.bench_port = _int(port, "the bench port", 0, 65535) if port is not None else cfg.bench_port
    for option, field, limit in _BOOT_FIELDS:
        value = cfg.boot_fields.get(field)
        if value is not None and len(value) > limit:
            raise ConfigError("[station] %s is longer than %d characters (OCPP %s)"
                              % (option, limit, field))
    if hw["connectors"] is not None:
        cfg.connectors = _int(hw["connectors"], "[station] connectors", 1, 8)
    if hw["phases"] is not None:
        cfg.phases = _int(hw["phases"], "[station] phases", 1, 3)
        if cfg.phases == 2:
            raise ConfigError("[station] phases must be 1 or 3")
    if hw["max_current"] is not None:
        cfg.max_current_a = float(_int(hw["max_current"], "[station] max_current", 6, 80))
    if hw["fixed_cable"] is not None:
        flag = hw["fixed_cable"].lower()
        if flag not in ("yes", "no", "true", "false"):
            raise ConfigError("[station] fixed_cable must be yes or no, not %r" % hw["fixed_cable"])
        cfg.fixed_cable = flag in ("yes", "true")
    if security["profile"] is not None:
        cfg.security_profile = _int(security["profile"], "[security] profile", 0, 3)
    if security["tls_url"] is not None:
        try:
            validate_csms_url(security["tls_url"])
        except ValueError as e:
            raise ConfigError("[security] tls_url: %s" % e)
        if not security["tls_url"].lower().startswith("wss://"):
            raise ConfigError("[security] tls_url must start with wss://")
        cfg.tls_url = security["tls_url"]
    if security["trust_system_cas"] is not None:
        flag = security["trust_system_cas"].lower()
        if flag not in ("yes", "no", "true", "false"):
            raise ConfigError("[security] trust_system_cas must be yes or no")
        cfg.trust_system_cas = flag in ("yes", "true")
    if security["csr_key"] is not None:
        if security["csr_key"] not in ("rsa2048", "ec256"):
            raise ConfigError("[security] csr_key must be rsa2048 or ec256")
        cfg.csr_key_type = security["csr_key"]
    if cfg.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log level %r: choose DEBUG, INFO, WARNING or ERROR" % cfg.log_level)
    if not cfg.data_dir:
        raise ConfigError("no data directory: give --data-dir or [station] data_dir")
    try:
        os.makedirs(cfg.data_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError("data directory %s cannot be created: %s" % (cfg.data_dir, e.strerror))
    if not os.path.isdir(cfg.data_dir):
        raise ConfigError("data directory %s is not a directory" % cfg.data_dir)
    if not os.access(cfg.data_dir, os.R_OK | os.X_OK):
        raise ConfigError("data directory %s is not readable" % cfg.data_dir)
    cfg.releases_dir = get("firmware", "releases_dir") or os.path.join(cfg.data_dir, "releases")
    trial = get("firmware", "boot_trial_seconds")
    if trial is not None:
        cfg.boot_trial_seconds = float(_int(trial, "[firmware] boot_trial_seconds", 5, 86400))
    # Not writable (a worn-out SD card turns read-only) is not fatal: the station
    # boots degraded and reports it (ocpp_core/store.py, README "When the SD card fails").
    return cfg
