"""Write ocpp_core/catalogue.py from the official OCPP 1.6 JSON schemas.

The schemas ship inside the `ocpp` package on PyPI (ocpp/v16/schemas). Run:

    python -m tools.gen_catalogue            # rewrite ocpp_core/catalogue.py
    python -m tools.gen_catalogue --check    # exit 1 if the file is out of date

The output is plain data (JSON text, turned into tuples and dicts at import)
that ocpp_core/validation.py interprets: no jsonschema at run time, nothing
MicroPython lacks.
"""

import argparse
import json
import os
import sys

# The 28 actions of OCPP 1.6 (Edition 2) by feature profile, then the 11 of the
# OCA's "Improved security for OCPP 1.6-J" (edition 3); who sends the CALL.
CP, CS, BOTH = "cp", "cs", "both"
ACTIONS = (
    ("Authorize", "Core", CP),
    ("BootNotification", "Core", CP),
    ("ChangeAvailability", "Core", CS),
    ("ChangeConfiguration", "Core", CS),
    ("ClearCache", "Core", CS),
    ("DataTransfer", "Core", BOTH),
    ("GetConfiguration", "Core", CS),
    ("Heartbeat", "Core", CP),
    ("MeterValues", "Core", CP),
    ("RemoteStartTransaction", "Core", CS),
    ("RemoteStopTransaction", "Core", CS),
    ("Reset", "Core", CS),
    ("StartTransaction", "Core", CP),
    ("StatusNotification", "Core", CP),
    ("StopTransaction", "Core", CP),
    ("UnlockConnector", "Core", CS),
    ("GetDiagnostics", "FirmwareManagement", CS),
    ("DiagnosticsStatusNotification", "FirmwareManagement", CP),
    ("FirmwareStatusNotification", "FirmwareManagement", CP),
    ("UpdateFirmware", "FirmwareManagement", CS),
    ("GetLocalListVersion", "LocalAuthListManagement", CS),
    ("SendLocalList", "LocalAuthListManagement", CS),
    ("CancelReservation", "Reservation", CS),
    ("ReserveNow", "Reservation", CS),
    ("ClearChargingProfile", "SmartCharging", CS),
    ("GetCompositeSchedule", "SmartCharging", CS),
    ("SetChargingProfile", "SmartCharging", CS),
    ("TriggerMessage", "RemoteTrigger", CS),
    ("CertificateSigned", "Security", CS),
    ("DeleteCertificate", "Security", CS),
    ("ExtendedTriggerMessage", "Security", CS),
    ("GetInstalledCertificateIds", "Security", CS),
    ("GetLog", "Security", CS),
    ("InstallCertificate", "Security", CS),
    ("LogStatusNotification", "Security", CP),
    ("SecurityEventNotification", "Security", CP),
    ("SignCertificate", "Security", CP),
    ("SignedFirmwareStatusNotification", "Security", CP),
    ("SignedUpdateFirmware", "Security", CS),
)

_KNOWN_KEYWORDS = {"$schema", "title", "type", "properties", "required", "additionalProperties",
                   "enum", "maxLength", "format", "items", "minItems", "multipleOf"}
# Keywords of the security whitepaper's schemas that change nothing we check:
# "$id" and "javaType" name things, "definitions" holds what "$ref" points at
# (resolved inline), "additionalItems" only matters for tuple-typed arrays.
_IGNORED_KEYWORDS = {"$id", "javaType", "definitions", "additionalItems"}


def default_schema_dir():
    import ocpp  # only the generator and the tests need the PyPI package
    return os.path.join(os.path.dirname(ocpp.__file__), "v16", "schemas")


def _json_string(text):
    # Names and enum values are plain ASCII words: written as they are, they
    # are valid JSON and safe inside the raw triple-quoted string.
    if not all(c.isascii() and (c.isalnum() or c in "._- ") for c in text):
        raise SystemExit("%r: unexpected characters for the catalogue" % (text,))
    return '"%s"' % text


class _Writer:
    """Turns schema nodes into the JSON text of spec nodes (see
    ocpp_core/validation.py), one field per line."""

    def __init__(self):
        self.definitions = {}

    def root(self, schema, where, indent):
        self.definitions = schema.get("definitions", {})
        return self.node(schema, where, indent)

    def node(self, schema, where, indent):
        ref = schema.get("$ref")
        if ref is not None:
            name = ref[len("#/definitions/"):] if ref.startswith("#/definitions/") else None
            if name not in self.definitions or len(schema) != 1:
                raise SystemExit("%s: $ref %r not supported" % (where, ref))
            return self.node(self.definitions[name], where, indent)
        unknown = set(schema) - _KNOWN_KEYWORDS - _IGNORED_KEYWORDS
        if unknown:
            raise SystemExit("%s: schema keyword(s) %s not supported by the generator"
                             % (where, sorted(unknown)))
        kind = schema.get("type")
        pad = " " * indent
        if kind == "object":
            if schema.get("additionalProperties", True) is not False:
                raise SystemExit("%s: open objects are not supported" % where)
            props = schema.get("properties", {})
            fields = ["%s    %s: %s" % (pad, _json_string(name),
                                        self.node(props[name], where + "." + name, indent + 4))
                      for name in props]
            required = ", ".join(_json_string(r) for r in schema.get("required", ()))
            if not fields:
                return '["o", {}, [%s]]' % required
            return '["o", {\n%s\n%s}, [%s]]' % (",\n".join(fields), pad, required)
        if kind == "string":
            enum = schema.get("enum")
            fmt = schema.get("format")
            if fmt not in (None, "date-time", "uri"):
                raise SystemExit("%s: format %r not supported" % (where, fmt))
            return '["s", %d, %s, %s]' % (
                schema.get("maxLength", 0),
                "[%s]" % ", ".join(_json_string(e) for e in enum) if enum else "null",
                _json_string(fmt) if fmt else "null")
        if kind == "integer":
            return '["i"]'
        if kind == "number":
            step = schema.get("multipleOf", 0)
            if type(step) not in (int, float) or step < 0:
                raise SystemExit("%s: multipleOf %r not supported" % (where, step))
            return '["n", %r]' % (step,)
        if kind == "boolean":
            return '["b"]'
        if kind == "array":
            return '["a", %s, %d]' % (self.node(schema["items"], where + "[]", indent),
                                      schema.get("minItems", 0))
        raise SystemExit("%s: type %r not supported" % (where, kind))


def render(schema_dir):
    w = _Writer()
    body = []
    for action, profile, sender in ACTIONS:
        specs = []
        for suffix in ("", "Response"):
            path = os.path.join(schema_dir, action + suffix + ".json")
            with open(path, encoding="utf-8") as f:
                schema = json.load(f)
            specs.append(w.root(schema, action + suffix, 4))
        body.append('%s: [%s, %s,\n    %s,\n    %s]'
                    % (_json_string(action), _json_string(profile), _json_string(sender),
                       specs[0], specs[1]))
    out = [
        '"""The OCPP 1.6 message catalogue: every action of every feature profile.',
        "",
        "GENERATED by tools/gen_catalogue.py from the official OCPP 1.6 JSON schemas",
        "(as shipped in the `ocpp` package on PyPI). Do not edit by hand.",
        "",
        "ACTIONS[action] = (feature_profile, sender, request_spec, response_spec)",
        "sender: 'cp' = the charge point sends the CALL, 'cs' = the central system, 'both'.",
        "Spec nodes are tuples (objects' fields a dict), described in ocpp_core/validation.py.",
        "",
        "They are written below as JSON arrays and turned into tuples at import: as",
        "a Python literal, this much nested data costs the compiler about 1 MiB of",
        "memory wherever no .pyc is at hand (a string costs it next to nothing).",
        '"""',
        "",
        "from ocpp_core.framing import loads as _loads",
        "",
        '_SPECS = r"""{',
        ",\n".join(body),
        '}"""',
        "",
        "",
        "def _tuples(value):",
        "    if type(value) is list:",
        "        return tuple([_tuples(item) for item in value])",
        "    if type(value) is dict:",
        "        return {name: _tuples(item) for name, item in value.items()}",
        "    return value",
        "",
        "",
        "ACTIONS = _tuples(_loads(_SPECS))",
        "del _SPECS",
        "",
    ]
    return "\n".join(out)


def main(argv=None):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--schemas", help="folder of OCPP 1.6 JSON schemas (default: from the ocpp package)")
    p.add_argument("--out", default=os.path.join(here, "ocpp_core", "catalogue.py"))
    p.add_argument("--check", action="store_true", help="only check that --out is up to date")
    args = p.parse_args(argv)
    text = render(args.schemas or default_schema_dir())
    if args.check:
        with open(args.out, encoding="utf-8") as f:
            if f.read() != text:
                print("%s is out of date: run python -m tools.gen_catalogue" % args.out)
                return 1
        print("%s is up to date" % args.out)
        return 0
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s (%d actions)" % (args.out, len(ACTIONS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
