"""Benchmark: ocpp_core's codec path against the `ocpp` package's validation.

    python -m tools.bench_codec [--seconds N] [--by-frame]

A realistic mix of OCPP 1.6-J frames in both directions (what a charge point
and a central system receive during boot, idle and a charging session) goes
through each side:

ocpp_core  incoming CALL:       RpcEndpoint.receive() of the receiving role:
                                framing.decode, validation of the request,
                                dispatch to a trivial handler, validation of its
                                answer, framing.encode_result, send.
           incoming CALLRESULT: framing.decode + validation against the action's
                                response spec (what RpcEndpoint does with an
                                answer to its own call).
ocpp       incoming CALL:       ocpp.messages.unpack (json.loads), validate_payload
                                on the Call, the same trivial handler,
                                create_call_result, validate_payload on the
                                CallResult, to_json (json.dumps): what the
                                package's ChargePoint does with a CALL.
           incoming CALLRESULT: unpack + validate_payload(CallResult).

validate_payload is a coroutine that by default hops to a thread pool; the
benchmark sets ocpp.messages.ASYNC_VALIDATION = False and drives the coroutine
without an event loop, so the `ocpp` side pays for validation only. Note that
ocpp's Draft4Validator has no format checker: it does not check date-times or
URIs at all, while ocpp_core does.

Also printed: the resident memory (VmRSS) of a fresh interpreter that imports
the codec-level modules of ocpp_core (CODEC_MODULES below: framing, validation,
catalogue, rpc and what they need; not the charge point's behaviour: charge_point,
journal, config, auth, metering, status, operations, ...), against a bare
interpreter. Measured on a private copy of the package, twice:

  from .pyc     byte-compiled beforehand, as `pip install` leaves it: what a
                deployed charge point pays;
  from source   no .pyc at all (as under PYTHONDONTWRITEBYTECODE=1 on a first
                run): the compiler's working memory is counted too, and it
                dominates (about 1 MiB for the largest module).

and, from .pyc, once more after a first exchange (a BootNotification and a
MeterValues CALL answered through RpcEndpoint), since validators are compiled
on first use. The stdlib modules the import pulls in are listed and measured
on their own.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from ocpp_core import framing, rpc
from ocpp_core.catalogue import ACTIONS
from ocpp_core.validation import validate

NOW = "2024-11-24T10:15:30.123Z"


# --- the frames ---------------------------------------------------------------------

def _sampled_values(n, context="Sample.Periodic"):
    pool = [
        {"value": "152307", "measurand": "Energy.Active.Import.Register", "unit": "Wh",
         "location": "Outlet"},
        {"value": "3680", "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "16.02", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        {"value": "15.98", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
        {"value": "16.10", "measurand": "Current.Import", "phase": "L3", "unit": "A"},
        {"value": "231.4", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
        {"value": "229.8", "measurand": "Voltage", "phase": "L2-N", "unit": "V"},
        {"value": "230.6", "measurand": "Voltage", "phase": "L3-N", "unit": "V"},
        {"value": "32", "measurand": "Current.Offered", "unit": "A"},
        {"value": "41.5", "measurand": "Temperature", "unit": "Celsius", "location": "Body"},
    ]
    out = []
    for sv in pool[:n]:
        sv = dict(sv, context=context)
        if n > 6:
            sv["format"] = "Raw"
        out.append(sv)
    return out


def _meter_values(connector, tx, n):
    return {"connectorId": connector, "transactionId": tx,
            "meterValue": [{"timestamp": "2024-11-24T09:%02d:00Z" % (n * 5),
                            "sampledValue": _sampled_values(n)}]}


def _charging_profile(purpose="TxProfile", kind="Absolute", periods=3):
    return {
        "chargingProfileId": 7, "stackLevel": 2, "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind, "validFrom": "2024-11-24T00:00:00Z",
        "validTo": "2024-12-24T00:00:00+05:30",
        "chargingSchedule": {
            "duration": 86400, "startSchedule": "2024-11-24T18:00:00Z", "chargingRateUnit": "A",
            "minChargingRate": 6.0,
            "chargingSchedulePeriod": [{"startPeriod": i * 900, "limit": round(32.0 - i * 4.1, 1),
                                        "numberPhases": 3} for i in range(periods)]}}


_CONFIG_KEYS = [
    ("AllowOfflineTxForUnknownId", True, "false"), ("AuthorizationCacheEnabled", False, "true"),
    ("AuthorizeRemoteTxRequests", False, "false"), ("ClockAlignedDataInterval", False, "900"),
    ("ConnectionTimeOut", False, "60"), ("ConnectorPhaseRotation", False, "0.RST,1.RST"),
    ("GetConfigurationMaxKeys", True, "50"), ("HeartbeatInterval", False, "300"),
    ("LocalAuthorizeOffline", False, "true"), ("LocalPreAuthorize", False, "false"),
    ("MeterValuesAlignedData", False, "Energy.Active.Import.Register"),
    ("MeterValuesSampledData", False,
     "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"),
    ("MeterValueSampleInterval", False, "60"), ("NumberOfConnectors", True, "1"),
    ("ResetRetries", False, "3"), ("StopTransactionOnEVSideDisconnect", False, "true"),
    ("StopTransactionOnInvalidId", False, "true"),
    ("StopTxnAlignedData", False, "Energy.Active.Import.Register"),
    ("StopTxnSampledData", False, "Energy.Active.Import.Register"),
    ("SupportedFeatureProfiles", True,
     "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"),
    ("TransactionMessageAttempts", False, "5"), ("TransactionMessageRetryInterval", False, "30"),
    ("UnlockConnectorOnEVSideDisconnect", False, "true"), ("WebSocketPingInterval", False, "60"),
    ("LocalAuthListEnabled", False, "true"), ("LocalAuthListMaxLength", True, "500"),
    ("SendLocalListMaxLength", True, "100"), ("ChargeProfileMaxStackLevel", True, "10"),
    ("ChargingScheduleAllowedChargingRateUnit", True, "Current"),
    ("ChargingScheduleMaxPeriods", True, "24"), ("MaxChargingProfilesInstalled", True, "8"),
]

ID_TAG_INFO = {"status": "Accepted", "expiryDate": "2025-01-01T00:00:00Z", "parentIdTag": "FLEET-42"}

# What each side answers to a CALL it receives (the handlers are trivial).
ANSWERS = {
    "BootNotification": {"status": "Accepted", "currentTime": NOW, "interval": 300},
    "Heartbeat": {"currentTime": NOW},
    "StatusNotification": {},
    "Authorize": {"idTagInfo": ID_TAG_INFO},
    "StartTransaction": {"idTagInfo": ID_TAG_INFO, "transactionId": 1742},
    "MeterValues": {},
    "StopTransaction": {"idTagInfo": {"status": "Accepted"}},
    "DataTransfer": {"status": "Accepted", "data": "{\"price\":0.31}"},
    "RemoteStartTransaction": {"status": "Accepted"},
    "RemoteStopTransaction": {"status": "Accepted"},
    "GetConfiguration": {
        "configurationKey": [{"key": k, "readonly": ro, "value": v} for k, ro, v in _CONFIG_KEYS],
        "unknownKey": ["VendorSpecificKey"]},
    "ChangeConfiguration": {"status": "Accepted"},
    "SetChargingProfile": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
    "TriggerMessage": {"status": "Accepted"},
    "Reset": {"status": "Accepted"},
    "GetCompositeSchedule": {
        "status": "Accepted", "connectorId": 1, "scheduleStart": NOW,
        "chargingSchedule": {"duration": 3600, "startSchedule": NOW, "chargingRateUnit": "A",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0},
                                                        {"startPeriod": 1800, "limit": 10.5}]}},
}

STOP_TRANSACTION = {
    "transactionId": 1742, "idTag": "04A2B3C4D5E680", "meterStop": 152307, "timestamp": NOW,
    "reason": "EVDisconnected",
    "transactionData": [
        {"timestamp": "2024-11-24T08:02:11Z", "sampledValue": [
            {"value": "140112", "context": "Transaction.Begin",
             "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]},
        {"timestamp": NOW, "sampledValue": _sampled_values(4, "Transaction.End")},
    ]}

# (action, request) in a plausible order; repeated entries give the weights.
CP_CALLS = [
    ("BootNotification", {"chargePointVendor": "PiCharge", "chargePointModel": "AC22-1",
                          "chargePointSerialNumber": "PC-000123", "firmwareVersion": "0.1.0",
                          "meterType": "SDM630", "meterSerialNumber": "21390012"}),
    ("StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available",
                            "timestamp": NOW}),
    ("Heartbeat", {}),
    ("Authorize", {"idTag": "04A2B3C4D5E680"}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}),
    ("StartTransaction", {"connectorId": 1, "idTag": "04A2B3C4D5E680", "meterStart": 140112,
                          "timestamp": "2024-11-24T08:02:11Z"}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}),
    ("MeterValues", _meter_values(1, 1742, 4)),
    ("MeterValues", _meter_values(1, 1742, 6)),
    ("Heartbeat", {}),
    ("MeterValues", _meter_values(1, 1742, 8)),
    ("MeterValues", _meter_values(1, 1742, 10)),
    ("Heartbeat", {}),
    ("MeterValues", _meter_values(1, 1742, 4)),
    ("StopTransaction", STOP_TRANSACTION),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Finishing",
                            "info": "cable still plugged"}),
    ("DataTransfer", {"vendorId": "org.picharge", "messageId": "tariff", "data": "{}"}),
]
CS_CALLS = [
    ("GetConfiguration", {}),
    ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}),
    ("RemoteStartTransaction", {"connectorId": 1, "idTag": "04A2B3C4D5E680",
                                "chargingProfile": _charging_profile()}),
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": dict(
        _charging_profile("TxDefaultProfile", "Recurring", periods=6), recurrencyKind="Daily")}),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"}),
    ("ClearChargingProfile", {"id": 7}),
    ("RemoteStopTransaction", {"transactionId": 1742}),
    ("Reset", {"type": "Soft"}),
]


def build_frames():
    """-> list of (receiver_role, kind, action, text): every CALL of the mix and,
    right after it, the CALLRESULT its sender receives; the charge point's and
    the central system's conversations interleaved, as on a live link."""
    conversations = []
    n = 0
    for sender, calls in (("cp", CP_CALLS), ("cs", CS_CALLS)):
        receiver = "cs" if sender == "cp" else "cp"
        exchanges = []
        for action, payload in calls:
            assert ACTIONS[action][1] in (sender, "both"), action
            n += 1
            msg_id = "b%05d" % n
            exchanges.append([
                (receiver, framing.CALL, action, framing.encode_call(msg_id, action, payload)),
                (sender, framing.CALLRESULT, action,
                 framing.encode_result(msg_id, ANSWERS[action]))])
        conversations.append(exchanges)
    frames = []
    cp_conv, cs_conv = conversations
    for i in range(max(len(cp_conv), len(cs_conv))):
        for conv in (cp_conv, cs_conv):
            if i < len(conv):
                frames.extend(conv[i])
    return frames


# --- the two implementations ---------------------------------------------------------

def _answer(action):
    canned = ANSWERS[action]
    return lambda payload: canned


def make_ocpp_core_runner(frames):
    sent = []
    endpoints = {}
    for role in ("cp", "cs"):
        ep = rpc.RpcEndpoint(role, sent.append)
        for action, entry in ACTIONS.items():
            if entry[1] != role and action in ANSWERS:
                ep.on(action, _answer(action))
        endpoints[role] = ep
    decode, CALL = framing.decode, framing.CALL
    work = []
    for receiver, kind, action, text in frames:
        if kind == CALL:
            work.append((endpoints[receiver].receive, None, text))
        else:
            work.append((None, ACTIONS[action][3], text))

    def run_once():
        for receive, spec, text in work:
            if receive is not None:
                receive(text)
            else:
                frame = decode(text)
                validate(spec, frame.payload)
        del sent[:]

    # Sanity: every CALL is answered with a CALLRESULT, every result is valid.
    for receive, spec, text in work:
        if receive is not None:
            receive(text)
            assert sent and sent[-1].startswith("[3,"), (text[:80], sent[-1:])
        else:
            validate(spec, decode(text).payload)
    del sent[:]
    return run_once


def make_ocpp_runner(frames):
    from ocpp import messages
    messages.ASYNC_VALIDATION = False  # validate in this thread: measure validation only

    def validate_payload(message):
        coro = messages.validate_payload(message, "1.6")
        try:
            coro.send(None)
        except StopIteration:
            return
        raise RuntimeError("validate_payload awaited something")

    handlers = {action: _answer(action) for action in ANSWERS}
    work = [(kind, action, text) for _, kind, action, text in frames]
    unpack, Call = messages.unpack, messages.Call

    def run_once():
        for kind, action, text in work:
            msg = unpack(text)
            if type(msg) is Call:
                validate_payload(msg)
                result = msg.create_call_result(handlers[msg.action](msg.payload))
                validate_payload(result)
                result.to_json()
            else:
                msg.action = action  # the package knows it from its pending call
                validate_payload(msg)

    run_once()  # sanity: raises if the package refuses any frame
    return run_once


def measure(run_once, frames_per_run, seconds):
    run_once()  # warm up caches (validators, schema files)
    runs = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        run_once()
        runs += 1
        now = time.perf_counter()
        if now >= deadline:
            break
    elapsed = now - start
    return runs * frames_per_run / elapsed, elapsed / (runs * frames_per_run) * 1e6


# --- memory ------------------------------------------------------------------------------

CODEC_MODULES = ("errors", "timestamps", "clock", "redact", "framing", "catalogue", "validation",
                 "log", "rpc")

_RSS = ("import sys\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmRSS:'):\n"
        "        sys.stdout.write(line.split()[1])\n")
_IMPORT_CODEC = "".join("import ocpp_core.%s\n" % m for m in CODEC_MODULES)
# Fails loudly if the copy under test is not the one imported.
_CHECK_COPY = "assert ocpp_core.__file__.startswith(%r), ocpp_core.__file__\n"
_FIRST_EXCHANGE = (
    "_ep = ocpp_core.rpc.RpcEndpoint('cs', lambda text: None)\n"
    "_ep.on('BootNotification', lambda p: {'status': 'Accepted', "
    "'currentTime': '2024-11-24T10:15:30.123Z', 'interval': 300})\n"
    "_ep.on('MeterValues', lambda p: {})\n"
    "_ep.receive('[2,\"1\",\"BootNotification\",{\"chargePointVendor\":\"V\","
    "\"chargePointModel\":\"M\"}]')\n"
    "_ep.receive('[2,\"2\",\"MeterValues\",{\"connectorId\":1,\"meterValue\":"
    "[{\"timestamp\":\"2024-11-24T10:15:30Z\",\"sampledValue\":[{\"value\":\"1\"}]}]}]')\n"
    "del _ep\n")
_NEW_STDLIB = ("import sys\n_before = set(sys.modules)\n" + _IMPORT_CODEC
               + "print(' '.join(sorted(m for m in set(sys.modules) - _before "
               "if m.split('.')[0] != 'ocpp_core')))\n")


def _run(code, cwd, env):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout


def rss_kib(code, cwd, env, repeats=5):
    """Median VmRSS (KiB) of a fresh interpreter running `code`, then _RSS."""
    values = [int(_run(code + _RSS, cwd, env)) for _ in range(repeats)]
    return sorted(values)[len(values) // 2]


def _clean_env():
    """The environment of every measured interpreter: nothing written, no
    redirected or extra import paths."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONPYCACHEPREFIX", None)  # .pyc next to the sources, or none at all
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _package_copy(compiled, env):
    """A temporary folder holding a copy of ocpp_core's sources, byte-compiled or
    not (the checkout's own __pycache__, if any, is not copied)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder = tempfile.mkdtemp(prefix="bench_codec_")
    shutil.copytree(os.path.join(root, "ocpp_core"), os.path.join(folder, "ocpp_core"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if compiled:
        subprocess.run([sys.executable, "-m", "compileall", "-q",
                        os.path.join(folder, "ocpp_core")], check=True, env=env)
    return folder


def memory_report():
    env = _clean_env()
    bare = rss_kib("", None, env)
    lines = ["resident memory of a fresh interpreter (VmRSS, median of 5):",
             "  bare python:                              %7.2f MiB" % (bare / 1024),
             "  import ocpp_core's codec modules (%s):" % ", ".join(CODEC_MODULES)]
    copies = []
    try:
        rows = []
        for compiled in (True, False):
            folder = _package_copy(compiled, env)
            copies.append(folder)
            code = "import ocpp_core\n" + _CHECK_COPY % os.path.join(folder, "ocpp_core") \
                + _IMPORT_CODEC
            if compiled:
                rows.append(("from .pyc (as installed):", rss_kib(code, folder, env), ""))
                after = rss_kib(code + _FIRST_EXCHANGE, folder, env)
                stdlib = _run(_NEW_STDLIB, folder, env).split()
            else:
                rows.append(("from source (no .pyc):", rss_kib(code, folder, env),
                             "  (target < 2 MiB)"))
        rows.append(("from .pyc, after a first exchange:", after, ""))
    finally:
        for folder in copies:
            shutil.rmtree(folder, ignore_errors=True)
    for label, kib, note in rows:
        lines.append("    %-38s %7.2f MiB  +%.2f MiB%s"
                     % (label, kib / 1024, (kib - bare) / 1024, note))
    if stdlib:
        std = rss_kib("import %s\n" % ", ".join(stdlib), None, env)
        lines.append("    of which the stdlib modules it imports:           +%.2f MiB  (%s)"
                     % ((std - bare) / 1024, ", ".join(stdlib)))
    else:
        lines.append("    it imports no stdlib module beyond a bare interpreter's")
    ref = rss_kib("import ocpp.messages\n", None, env)
    lines.append("  import ocpp.messages (reference):         %7.2f MiB  +%.2f MiB"
                 % (ref / 1024, (ref - bare) / 1024))
    return lines


# --- main --------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0,
                   help="total measuring time, split between the two (default 10)")
    p.add_argument("--by-frame", action="store_true",
                   help="also time each frame of the mix on its own")
    args = p.parse_args(argv)

    frames = build_frames()
    kinds = {framing.CALL: 0, framing.CALLRESULT: 0}
    for f in frames:
        kinds[f[1]] += 1
    chars = sum(len(f[3]) for f in frames)
    print("OCPP 1.6-J codec benchmark: %d frames per round (%d CALL, %d CALLRESULT), "
          "%.0f characters on average" % (len(frames), kinds[framing.CALL],
                                           kinds[framing.CALLRESULT], chars / len(frames)))
    print("Python %s on %s" % (sys.version.split()[0], sys.platform))
    print()

    core = make_ocpp_core_runner(frames)
    ref = make_ocpp_runner(frames)
    # Interleaved rounds, so that a change of CPU clock or load hits both sides.
    rounds = 5
    core_runs, ref_runs = [], []
    for _ in range(rounds):
        core_runs.append(measure(core, len(frames), args.seconds / (2 * rounds)))
        ref_runs.append(measure(ref, len(frames), args.seconds / (2 * rounds)))
    core_fps, core_us = sorted(core_runs)[rounds // 2]
    ref_fps, ref_us = sorted(ref_runs)[rounds // 2]
    print("(median of %d interleaved rounds of %.1f s each)" % (rounds, args.seconds / (2 * rounds)))
    print("%-44s %12s %12s" % ("implementation", "frames/s", "us/frame"))
    print("%-44s %12.0f %12.1f" % ("ocpp_core (decode+validate+dispatch+encode)", core_fps, core_us))
    print("%-44s %12.0f %12.1f" % ("ocpp %s (json+validate_payload+json)" % _ocpp_version(),
                                   ref_fps, ref_us))
    print("ratio: ocpp_core is %.1fx faster (target >= 10x)" % (core_fps / ref_fps))

    if args.by_frame:
        print()
        print("%-24s %-10s %6s %10s %10s %7s" % ("action", "frame", "chars", "core us",
                                                 "ocpp us", "ratio"))
        for f in frames:
            one = [f]
            core_one, ref_one = make_ocpp_core_runner(one), make_ocpp_runner(one)
            c_us = min(measure(core_one, 1, 0.04)[1] for _ in range(3))
            r_us = min(measure(ref_one, 1, 0.04)[1] for _ in range(3))
            print("%-24s %-10s %6d %10.1f %10.1f %6.1fx"
                  % (f[2], "CALL" if f[1] == framing.CALL else "CALLRESULT", len(f[3]),
                     c_us, r_us, r_us / c_us))

    print()
    for line in memory_report():
        print(line)
    return 0


def _ocpp_version():
    try:
        from importlib.metadata import version
        return version("ocpp")
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
