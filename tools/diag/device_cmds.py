"""`python -m tools.diag rfid | meter | modem`: one device at a time.

    rfid    wait for a card and print its idTag (to enrol cards): --timeout 30
    meter   live readings (voltage, current, power, energy, frequency), every
            second until Ctrl-C or --count N; --json: one JSON object per line
    modem   SIM, signal (dBm and a quality word), registration, operator,
            ICCID, IMSI, IMEI, serving cell when the modem tells it

While the firmware runs, the devices belong to it: the command asks it over its
maintenance socket (tools/diag/client.py finds the socket; the request is
{"cmd": "device", "name": "meter"|"modem"|"rfid", "action": "read"|"wait_card"},
answered by firmware/maintenance_handlers.py with what it knows, judged here by
the self-test's rules, tools/diag/checks.py). A card read this way is taken by
the tool: the firmware does not start or stop charging with it.

When the firmware is not running (no socket, or nobody listening on it) the
command opens the device itself with the real driver, configured like the
firmware from the station config (--config):

    [meter]  port, model, address, baudrate, parity, stopbits, timeout
    [rfid]   spi_bus, spi_device, reset_pin (optional)
    [modem]  port, baudrate

with firmware/device_config.py's defaults for what is missing and its rules
for each value, and the options --port, --model, --address, --baudrate,
--parity, --spi-bus, --spi-device overriding them.

A device that fails prints the driver's (or the firmware's) one-line message and
a hint. Exit status: 0 every check passed; 1 a device failed, or no card came;
2 the diagnosis could not run (unusable settings, no access to the socket);
130 interrupted. For `meter`, Ctrl-C is the normal end: the status then says
whether every reading succeeded.
"""

import argparse
import datetime
import json
import errno
import os
import socket
import time

from firmware import device_config
from firmware.device_config import Section
from tools.diag import checks, render

READ_INTERVAL = 1.0
RFID_TIMEOUT = 30.0
RFID_TIMEOUT_MAX = 120.0      # the firmware's limit for a wait_card
SOCKET_MARGIN = 5.0           # s the firmware gets on top of a device's own time
MODEM_TIMEOUT = 10.0
FIRMWARE_TIMEOUT = 10.0       # s for a "read" answered from the firmware's state

# LTE RSSI quality words, as common guidance (modem and router vendors) gives them
SIGNAL_WORDS = ((-70, "excellent"), (-85, "good"), (-100, "fair"))

HINTS = {
    "meter": "compare [meter] model, address, baudrate and parity with the meter's own "
             "menu; swapped RS-485 A/B wires are the most common fault",
    "modem": "check the modem's power and USB cable, and that [modem] port is its AT port "
             "(ls -l /dev/serial/by-id)",
    "rfid": "check the reader's 3.3 V supply and SPI wiring (SDA/CS, SCK, MOSI, MISO) and "
            "that SPI is enabled (raspi-config)",
}
NO_CARD_HINT = ("hold the card flat on the reader for a second; if a known-good card is never "
                "read, the reader or its antenna is at fault (only ISO 14443 A cards, e.g. "
                "MIFARE, are read)")


# --- the subcommands -------------------------------------------------------------------------

def add_parser(subparsers):
    note = ("While the firmware runs, the device is read through its maintenance socket; "
            "otherwise it is opened directly with the settings of the station config "
            "(--config), which the options below override.")

    p = subparsers.add_parser("rfid", help="wait for a card and print its idTag",
                              description="Wait for a card on the RFID reader and print its "
                                          "idTag (to enrol cards). " + note)
    p.add_argument("--timeout", type=_seconds(1, RFID_TIMEOUT_MAX), default=RFID_TIMEOUT,
                   help="seconds to wait for a card (default %g, at most %g)"
                        % (RFID_TIMEOUT, RFID_TIMEOUT_MAX))
    p.add_argument("--spi-bus", type=int, help="override [rfid] spi_bus")
    p.add_argument("--spi-device", type=int, help="override [rfid] spi_device")
    p.set_defaults(func=run_rfid)

    p = subparsers.add_parser("meter", help="live readings of the energy meter",
                              description="Voltage, current and power per phase, energy and "
                                          "frequency, every second until Ctrl-C or --count. "
                                          + note)
    p.add_argument("--count", type=_count, default=None,
                   help="stop after N readings (default: until Ctrl-C)")
    p.add_argument("--interval", type=_seconds(0.2, 3600), default=READ_INTERVAL,
                   help="seconds between readings (default %g)" % READ_INTERVAL)
    p.add_argument("--connector", type=int, default=1,
                   help="whose meter, when the firmware answers (default 1)")
    p.add_argument("--port", help="override [meter] port (device path or pyserial URL)")
    p.add_argument("--model", help="override [meter] model")
    p.add_argument("--address", type=int, help="override [meter] address (1..247)")
    p.add_argument("--baudrate", type=int, help="override [meter] baudrate")
    p.add_argument("--parity", help="override [meter] parity (N, E, O)")
    p.set_defaults(func=run_meter)

    p = subparsers.add_parser("modem", help="SIM, signal, registration and identities of the "
                                            "modem",
                              description="SIM, signal strength, registration, operator, "
                                          "ICCID, IMSI, IMEI and serving cell of the LTE "
                                          "modem. " + note)
    p.add_argument("--port", help="override [modem] port (the AT port)")
    p.add_argument("--baudrate", type=int, help="override [modem] baudrate")
    p.add_argument("--timeout", type=_seconds(0.5, 120), default=MODEM_TIMEOUT,
                   help="seconds allowed for each answer of the modem (default %g)"
                        % MODEM_TIMEOUT)
    p.set_defaults(func=run_modem)


def _seconds(low, high):
    def parse(text):
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a number: %r" % text)
        if not low <= x <= high:
            raise argparse.ArgumentTypeError("must be between %g and %g seconds" % (low, high))
        return x
    return parse


def _count(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a whole number: %r" % text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return n


class DeviceFailed(Exception):
    """One line for the technician, what to do about it, and the exit status."""

    def __init__(self, text, hint=None, exit_code=1, error_code=None):
        Exception.__init__(self, text)
        self.text = text
        self.hint = hint
        self.exit_code = exit_code
        self.error_code = error_code     # the OCPP errorCode, when the firmware said


class SettingsProblem(Exception):
    pass


# --- output -----------------------------------------------------------------------------------

class View:
    """Text or JSON on `out`; progress on stderr when it is a terminal (render.Progress)."""

    def __init__(self, out, as_json):
        self.out = out
        self.as_json = as_json
        self.tty = _isatty(out) and not as_json
        self.progress = render.Progress()
        self._drawn_lines = 0

    def write(self, text):
        self.progress.done()
        self.out.write(text)
        flush = getattr(self.out, "flush", None)
        if flush is not None:
            flush()

    def json(self, doc):
        """One object on one line (meter readings are a stream of them)."""
        self.write(json.dumps(doc, default=str) + "\n")

    def redraw(self, text):
        """Replace the previous block on a terminal; append elsewhere."""
        if self.tty and self._drawn_lines:
            self.write("\033[%dA\033[J" % self._drawn_lines)
        self.write(text)
        self._drawn_lines = text.count("\n")

    def failure(self, device, failed):
        if self.as_json:
            self.json({"device": device, "ok": False, "error": failed.text,
                       "error_code": failed.error_code, "hint": failed.hint})
        else:
            text = "FAIL: %s\n" % failed.text
            if failed.hint:
                text += "  what to do: %s\n" % failed.hint
            self.write(text)


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _pairs(rows):
    out = _Collect()
    render.pairs(rows, out)
    return out.text


class _Collect:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s


def _numbers_table(headers, rows):
    """A table whose first column is left-aligned and the others (numbers) right-aligned."""
    cells = [list(headers)] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(r))]
        lines.append("  " + "  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- the firmware's maintenance socket ----------------------------------------------------------

def firmware_device(args, name, action="read", wait=0.0, **fields):
    """The firmware's answer to a "device" request (a dict with "ok": true), or None
    when the firmware is not running. DeviceFailed for anything else.

    The socket is found by tools.diag.client.resolve(). The exchange is done here
    because MaintenanceClient.request() cannot send a field named "timeout" (its
    own keyword), which wait_card needs."""
    from tools.diag import client
    try:
        path = client.resolve(args)
    except client.DiagError as e:
        raise SettingsProblem(str(e))
    request = {"cmd": "device", "name": name, "action": action}
    request.update(fields)
    reply = exchange(path, request, FIRMWARE_TIMEOUT + wait)
    if reply is None:
        return None
    reply = checks.device_answer(reply, name, fields.get("connector", 1))
    if reply.get("ok") is not True:
        raise DeviceFailed(str(reply.get("error") or "the firmware refused the request"),
                           reply.get("hint") or HINTS.get(name))
    return reply


def exchange(path, request, timeout):
    """One JSON line to the maintenance socket at path, one JSON object back; None
    when nobody listens there (the firmware is not running)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(FIRMWARE_TIMEOUT)
        try:
            sock.connect(path)
        except OSError as e:
            code = getattr(e, "errno", None)
            if code in (errno.ENOENT, errno.ENOTDIR, errno.ECONNREFUSED):
                return None
            if code in (errno.EACCES, errno.EPERM):
                raise DeviceFailed("no permission to use the maintenance socket at %s" % path,
                                   "run as the firmware's user or with sudo", exit_code=2)
            raise DeviceFailed("cannot connect to the maintenance socket at %s: %s"
                               % (path, e.strerror or e), exit_code=2)
        deadline = time.monotonic() + timeout
        data = b""
        try:
            sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
            while b"\n" not in data:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout()
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > 1 << 20:
                    raise DeviceFailed("the firmware's answer is too long")
        except socket.timeout:
            raise DeviceFailed("the firmware did not answer within %g s (maintenance socket %s)"
                               % (timeout, path),
                               "the firmware may be stuck: journalctl -u pi-ocpp -n 50")
        except OSError as e:
            raise DeviceFailed("the maintenance connection broke: %s" % (e.strerror or e),
                               "is the firmware restarting? systemctl status pi-ocpp")
    finally:
        sock.close()
    line = data.split(b"\n", 1)[0].strip()
    if not line:
        raise DeviceFailed("the firmware closed the maintenance connection without an answer",
                           "is it stopping? systemctl status pi-ocpp")
    try:
        reply = json.loads(line.decode("utf-8"))
    except (ValueError, UnicodeError):
        raise DeviceFailed("the firmware answered something that is not JSON")
    if not isinstance(reply, dict):
        raise DeviceFailed("the firmware answered something that is not a JSON object")
    return reply


def _failing_checks(reply, connector=None):
    return [c for c in reply.get("checks") or () if isinstance(c, dict)
            and c.get("result") == "fail"
            and (connector is None or c.get("connector") in (None, connector))]


def _check_failure(check, device):
    """DeviceFailed from one of the firmware's failed checks."""
    code = check.get("error_code")
    text = "%s: %s" % (check.get("name") or device, check.get("detail") or "failed")
    if code and code != "NoError":
        text += " (the station reports %s)" % code
    return DeviceFailed(text, check.get("hint") or HINTS.get(device), error_code=code)


# --- settings (direct access) -------------------------------------------------------------------

def _section(args, name, overrides):
    """The firmware's Section for [name] (firmware/device_config.py: its
    defaults and rules): the INI, then the options."""
    values = {}
    path = getattr(args, "config", None)
    if path:
        # The firmware's own INI reader, so that the file means the same here.
        from firmware.station_config import ConfigError, read_ini
        try:
            ini = read_ini(path)
        except ConfigError as e:
            raise SettingsProblem(str(e))
        if ini.has_section(name):
            values = {k: v for k, v in ini.items(name)}
    for key, value in overrides.items():
        if value is not None:
            values[key] = str(value)
    return Section(name, values)


def _typed(fn):
    from firmware.station_config import ConfigError
    try:
        return fn()
    except ConfigError as e:
        raise SettingsProblem(str(e))


def meter_settings(args):
    s = _section(args, "meter", {"port": getattr(args, "port", None),
                                 "model": getattr(args, "model", None),
                                 "address": getattr(args, "address", None),
                                 "baudrate": getattr(args, "baudrate", None),
                                 "parity": getattr(args, "parity", None)})
    return _typed(lambda: device_config.meter_settings(s, must_exist=False))


def rfid_settings(args):
    s = _section(args, "rfid", {"spi_bus": getattr(args, "spi_bus", None),
                                "spi_device": getattr(args, "spi_device", None)})
    return _typed(lambda: device_config.rfid_settings(s))


def modem_settings(args):
    s = _section(args, "modem", {"port": getattr(args, "port", None),
                                 "baudrate": getattr(args, "baudrate", None)})
    return _typed(lambda: device_config.serial_settings(s, must_exist=False))


def _check_port(device, port):
    """A missing tty is a hardware problem (adapter unplugged), not a setting."""
    if "://" in port or port.startswith("/dev/pts/") or os.path.exists(port):
        return
    raise DeviceFailed("%s port %s does not exist" % (device, port),
                       "is the USB adapter plugged in? ls -l /dev/serial/by-id; or set "
                       "[%s] port" % device)


# The drivers, one function each (tests may put something else behind them).

def open_meter(settings):
    from drivers.meter_modbus import ModbusMeter
    return ModbusMeter(settings["port"], model=settings["model"], address=settings["address"],
                       baudrate=settings["baudrate"], parity=settings["parity"],
                       stopbits=settings["stopbits"], timeout=settings["timeout"])


def open_rfid(settings):
    from drivers.rfid_mfrc522 import Mfrc522Reader
    return Mfrc522Reader(settings["bus"], settings["device"], reset_pin=settings["reset_pin"])


def open_modem(settings, timeout):
    from drivers.modem_at import AtModem
    return AtModem(settings["port"], baudrate=settings["baudrate"], timeout=timeout)


def _close(device):
    close = getattr(device, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            pass


def _device_errors():
    from drivers.hal import DeviceError
    return DeviceError


def _run(view, device, body):
    """Common endings: DeviceFailed -> its exit status, SettingsProblem -> 2."""
    try:
        return body()
    except SettingsProblem as e:
        view.failure(device, DeviceFailed("%s: unusable settings: %s" % (device, e),
                                          "fix the station config or the options"))
        return 2
    except DeviceFailed as e:
        view.failure(device, e)
        return e.exit_code
    except KeyboardInterrupt:
        view.progress.done()
        if not view.as_json:
            view.write("interrupted\n")
        return 130


# --- rfid ----------------------------------------------------------------------------------------

def run_rfid(args, out):
    view = View(out, bool(getattr(args, "json", False)))
    timeout = float(getattr(args, "timeout", None) or RFID_TIMEOUT)

    def body():
        view.progress("waiting for a card via the firmware (%g s): hold it on the reader ..."
                      % timeout)
        reply = firmware_device(args, "rfid", "wait_card", wait=timeout, timeout=timeout,
                                consume=True)
        if reply is not None:
            failing = _failing_checks(reply)
            if failing or reply.get("healthy") is False:
                raise _check_failure(failing[0], "rfid") if failing else DeviceFailed(
                    "the firmware reports the card reader as not working", HINTS["rfid"])
            card = reply.get("card")
            id_tag = card.get("id_tag") if isinstance(card, dict) else reply.get("id_tag")
            return _card_result(view, id_tag, timeout, "firmware", None)
        return _rfid_direct(args, view, timeout)

    return _run(view, "rfid", body)


def _rfid_direct(args, view, timeout):
    settings = rfid_settings(args)
    where = "/dev/spidev%d.%d" % (settings["bus"], settings["device"])
    errors = _device_errors()
    try:
        reader = open_rfid(settings)
    except ValueError as e:
        raise SettingsProblem(str(e))
    try:
        opener = getattr(reader, "open", None)
        try:
            if opener is not None:
                opener()
        except errors as e:
            raise _rfid_failed(e)
        chip = getattr(reader, "chip", None)
        if not view.as_json:
            view.write("RFID reader %son %s (opened directly: the firmware is not running)\n"
                       % (chip + " " if chip else "", where))
        deadline = time.monotonic() + timeout
        failures = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return _card_result(view, None, timeout, "direct", where)
            view.progress("hold a card on the reader ... %d s left" % max(1, round(left)))
            try:
                uid = reader.poll()
                failures = 0
            except errors as e:
                failures += 1
                if failures >= 3:      # the driver re-initialises the chip in between
                    raise _rfid_failed(e)
                uid = None
            if uid:
                return _card_result(view, uid, timeout, "direct", where)
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    finally:
        _close(reader)


def _rfid_failed(error):
    text = str(error)
    setup = any(w in text for w in ("missing", "permission", "enable SPI", "reset pin",
                                    "numbering"))
    return DeviceFailed(text, None if setup else HINTS["rfid"])


def _card_result(view, id_tag, timeout, source, where):
    if not id_tag:
        raise DeviceFailed("no card presented within %g s" % timeout, NO_CARD_HINT)
    id_tag = str(id_tag)
    hexadecimal = all(c in "0123456789ABCDEFabcdef" for c in id_tag)
    uid_bytes = len(id_tag) // 2 if hexadecimal and len(id_tag) % 2 == 0 else None
    if view.as_json:
        view.json({"device": "rfid", "ok": True, "id_tag": id_tag, "source": source,
                   "uid_bytes": uid_bytes})
        return 0
    text = "card: %s\n" % id_tag
    text += _pairs([
        ("idTag", id_tag + "   (what the station sends to the CSMS: enrol this)"),
        ("UID", "%d bytes" % uid_bytes if uid_bytes else None),
        ("read by", "the firmware (it did not use this card for charging)"
         if source == "firmware" else where),
    ])
    view.write(text)
    return 0


# --- meter ---------------------------------------------------------------------------------------

def _phases(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [None if v is None else float(v) for v in value]
    return [float(value)]


def reading_from(sample):
    """A JSON-able dict from a MeterSample or the firmware's reading dict. Per-phase
    power only when the source has it (a MeterSample carries the total)."""
    if not isinstance(sample, dict):
        sample = dict(getattr(sample, "__dict__", {}))
    r = {
        "voltage_v": _phases(sample.get("voltage_v")),
        "current_a": _phases(sample.get("current_a")),
        "power_w": sample.get("power_w"),
        "power_phases_w": _phases(sample.get("power_phases_w")),
        "energy_wh": sample.get("energy_wh"),
        "frequency_hz": sample.get("frequency_hz"),
    }
    if r["power_phases_w"] is None and any(("power_l%d" % i) in sample for i in (1, 2, 3)):
        r["power_phases_w"] = [sample.get("power_l%d" % i) for i in (1, 2, 3)]
    if sample.get("age_s") is not None:
        r["age_s"] = sample["age_s"]
    return r


def _fmt(value, fmt, unit):
    return "n/a" if value is None else (fmt % value) + " " + unit


def meter_table(r):
    n = max(len(r.get(k) or ()) for k in ("voltage_v", "current_a", "power_phases_w")) or 1
    headers = [""] + ["L%d" % (i + 1) for i in range(n)] + ["total"]

    def row(name, key, fmt, unit, total=None):
        values = r.get(key)
        if values is None:       # the meter (or the driver) has no per-phase values
            return [name] + [""] * n + [total or ""]
        cells = [_fmt(values[i] if i < len(values) else None, fmt, unit) for i in range(n)]
        return [name] + cells + [total or ""]

    power = r.get("power_w")
    total_power = "n/a" if power is None else (
        "%.2f kW" % (power / 1000.0) if abs(power) >= 1000 else "%.0f W" % power)
    energy = r.get("energy_wh")
    rows = [row("voltage", "voltage_v", "%.1f", "V"),
            row("current", "current_a", "%.2f", "A"),
            row("power", "power_phases_w", "%.0f", "W", total_power),
            ["energy"] + [""] * n + [_fmt(None if energy is None else energy / 1000.0,
                                          "%.3f", "kWh")],
            ["frequency"] + [""] * n + [_fmt(r.get("frequency_hz"), "%.2f", "Hz")]]
    return _numbers_table(headers, rows)


def meter_notes(r):
    notes = []
    for i, v in enumerate(r.get("voltage_v") or ()):
        if v is None:
            continue
        if v < 50:
            notes.append("L%d has no voltage (%.1f V): phase missing, or the meter's voltage "
                         "input is not wired" % (i + 1, v))
        elif not 195.5 <= v <= 253.0:
            notes.append("L%d voltage %.1f V is outside 230 V -15 %%/+10 %%" % (i + 1, v))
    return notes


class _DirectMeter:
    def __init__(self, args):
        self.settings = meter_settings(args)
        s = self.settings
        self.header = ("meter %s, address %d, %s %d 8%s%d (opened directly: the firmware is "
                       "not running)\n" % (s["model"], s["address"], s["port"], s["baudrate"],
                                            s["parity"], s["stopbits"]))
        self.meter = None

    def read(self):
        if self.meter is None:
            _check_port("meter", self.settings["port"])
            try:
                self.meter = open_meter(self.settings)
            except ValueError as e:
                raise SettingsProblem(str(e))
        try:
            return reading_from(self.meter.read())
        except _device_errors() as e:
            raise DeviceFailed(str(e), HINTS["meter"])

    def close(self):
        if self.meter is not None:
            _close(self.meter)


def _meter_via_firmware(reply, connector):
    """The reading of `connector` in the firmware's answer, or DeviceFailed."""
    failing = _failing_checks(reply, connector)
    if failing:
        raise _check_failure(failing[0], "meter")
    if "reading" in reply:
        if not reply["reading"]:
            raise DeviceFailed("the firmware has no reading of meter %s yet" % connector,
                               HINTS["meter"])
        return reading_from(reply["reading"])
    connectors = reply.get("connectors") or {}
    if str(connector) not in connectors:
        raise DeviceFailed("the firmware has no connector %s (it has %s)"
                           % (connector, ", ".join(sorted(connectors)) or "none"),
                           "choose one with --connector")
    sample = connectors[str(connector)]
    if not sample:
        raise DeviceFailed("the firmware has no reading of meter %s yet" % connector,
                           HINTS["meter"])
    return reading_from(sample)


def run_meter(args, out):
    view = View(out, bool(getattr(args, "json", False)))
    count = getattr(args, "count", None)
    interval = float(getattr(args, "interval", None) or READ_INTERVAL)
    connector = getattr(args, "connector", None) or 1
    totals = {"failed": 0, "done": 0}

    def one(now):
        """One reading into `now` (source, header, reading); DeviceFailed when it failed."""
        source = now["source"]
        if not isinstance(source, _DirectMeter):
            view.progress("reading the meter via the firmware ...")
            reply = firmware_device(args, "meter", "read")
            if reply is not None:
                now["source"] = "firmware"
                now["header"] = "meter %d read by the firmware (maintenance socket)\n" % connector
                now["reading"] = _meter_via_firmware(reply, connector)
                return
            if source == "firmware":
                raise DeviceFailed("the firmware stopped answering on its maintenance socket",
                                   "is it restarting? systemctl status pi-ocpp")
            source = now["source"] = _DirectMeter(args)
            now["header"] = source.header
        view.progress("reading the meter ...")
        now["reading"] = source.read()

    def body():
        now = {"source": None, "header": ""}
        n = 0
        try:
            while count is None or n < count:
                n += 1
                started = time.monotonic()
                failure = None
                now["reading"] = None
                try:
                    one(now)
                except DeviceFailed as e:
                    failure = e
                took_ms = (time.monotonic() - started) * 1000.0
                totals["done"] += 1
                if failure is not None:
                    totals["failed"] += 1
                source = now["source"]
                _show_reading(view, n, count, now["header"], now["reading"], failure, took_ms,
                              "direct" if isinstance(source, _DirectMeter) else source)
                if count is not None and n >= count:
                    break
                wait = started + interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
        except KeyboardInterrupt:       # the normal end of a live view
            view.progress.done()
        finally:
            if isinstance(now["source"], _DirectMeter):
                now["source"].close()
        if not view.as_json:
            if totals["failed"]:
                view.write("FAIL: %d of %d readings failed\n" % (totals["failed"],
                                                                 totals["done"]))
            elif totals["done"]:
                view.write("OK: %d reading%s\n" % (totals["done"],
                                                   "s" if totals["done"] > 1 else ""))
        return 1 if totals["failed"] or not totals["done"] else 0

    return _run(view, "meter", body)


def _show_reading(view, n, count, header, reading, failure, took_ms, source):
    if view.as_json:
        doc = {"device": "meter", "reading": n, "time": _utc_now(), "source": source,
               "ok": failure is None}
        if failure is not None:
            doc.update({"error": failure.text, "error_code": failure.error_code,
                        "hint": failure.hint})
        else:
            doc["took_ms"] = round(took_ms, 1)
            doc.update(reading)
        view.json(doc)
        return
    local = time.strftime("%H:%M:%S")
    if failure is not None:
        text = header + "reading %d at %s: FAIL: %s\n" % (n, local, failure.text)
        if failure.hint:
            text += "  what to do: %s\n" % failure.hint
    else:
        age = reading.get("age_s")
        when = ("measured %g s before" % age) if age is not None else "%.0f ms" % took_ms
        text = header + "reading %d at %s (%s)%s\n" % (
            n, local, when, "" if count is not None else ", Ctrl-C to stop")
        text += meter_table(reading)
        for note in meter_notes(reading):
            text += "note: %s\n" % note
    view.redraw(text)


# --- modem ---------------------------------------------------------------------------------------

def signal_quality(dbm):
    """A word for an LTE RSSI in dBm."""
    if dbm is None:
        return "unknown"
    for limit, word in SIGNAL_WORDS:
        if dbm >= limit:
            return word
    return "poor"


def status_dict(status):
    """A flat dict of a ModemStatus (or the firmware's status dict): the driver's
    extras (registration, sim_state, act, serving_cell, ...) beside the fields."""
    if isinstance(status, dict):
        d = dict(status)
    elif getattr(status, "as_dict", None) is not None:
        d = dict(status.as_dict())
    else:
        d = dict(getattr(status, "__dict__", {}))
    extra = d.pop("extra", None)
    if isinstance(extra, dict):
        for key, value in extra.items():
            d.setdefault(key, value)
    return d


# 3GPP TS 27.007 +COPS <AcT>
ACCESS_TECHNOLOGIES = {0: "GSM", 1: "GSM compact", 2: "UMTS", 3: "EDGE", 4: "HSDPA", 5: "HSUPA",
                       6: "HSPA", 7: "LTE", 8: "EC-GSM-IoT", 9: "NB-IoT", 13: "5G NR"}

# shown by name in the table; anything else the driver tells goes below them
_MODEM_SHOWN = ("sim_ready", "sim_state", "signal_dbm", "registered", "registration", "operator",
                "act", "iccid", "imsi", "imei", "serving_cell", "manufacturer", "model",
                "firmware", "urcs", "age_s")


def modem_checks(s):
    """[(check, ok, text)]: what must hold for the station to be online by LTE."""
    from drivers.hal import WEAK_SIGNAL_DBM
    checks = []
    sim = s.get("sim_ready")
    checks.append(("sim", bool(sim), "SIM ready" if sim else
                   "SIM not ready: no SIM card, a SIM PIN is set, or the SIM is blocked"))
    dbm = s.get("signal_dbm")
    if dbm is None:
        checks.append(("signal", False, "no signal measured (no antenna? no network here?)"))
    else:
        ok = dbm > WEAK_SIGNAL_DBM
        checks.append(("signal", ok, "signal %d dBm (%s)%s" % (
            dbm, signal_quality(dbm),
            "" if ok else ": too weak for a reliable link (the station reports WeakSignal)")))
    reg = s.get("registered")
    checks.append(("registration", bool(reg),
                   "registered on %s" % (s.get("operator") or "a network") if reg
                   else "not registered on a network"))
    return checks


def _modem_hint(checks):
    failed = [name for name, ok, _ in checks if not ok]
    if "sim" in failed:
        return ("insert the SIM (power off first), or remove its PIN (the firmware cannot "
                "enter one); check the SIM with the operator")
    if "signal" in failed:
        return ("check the antenna and its cable (LTE main port), move the antenna out of the "
                "metal enclosure, or fit an external antenna")
    if "registration" in failed:
        return ("the SIM is ready but no network takes it: check the SIM's contract and "
                "roaming with the operator, and the antenna")
    return None


def run_modem(args, out):
    view = View(out, bool(getattr(args, "json", False)))
    timeout = float(getattr(args, "timeout", None) or MODEM_TIMEOUT)

    def body():
        view.progress("asking the firmware for the modem's status ...")
        reply = firmware_device(args, "modem", "read")
        firmware_failures = []
        if reply is not None:
            failing = _failing_checks(reply)
            raw = reply.get("status")
            if not raw:
                if failing:
                    raise _check_failure(failing[0], "modem")
                raise DeviceFailed("the firmware has no status from the modem yet (it asks "
                                   "every minute)", "run this again in a minute")
            status = status_dict(raw)
            firmware_failures = [_check_failure(c, "modem") for c in failing]
            source = "firmware"
            where = "read by the firmware (maintenance socket)"
            if status.get("age_s") is not None:
                where += ", %s old" % render.ago(status["age_s"])
        else:
            status, where = _modem_direct(args, view, timeout)
            source = "direct"
        checks = modem_checks(status)
        checks += [("firmware", False, f.text) for f in firmware_failures]
        ok = all(c[1] for c in checks)
        hint = None
        if not ok:
            hint = _modem_hint(checks) or (firmware_failures[0].hint if firmware_failures
                                           else HINTS["modem"])
        if view.as_json:
            doc = {"device": "modem", "ok": ok, "source": source,
                   "signal_quality": signal_quality(status.get("signal_dbm")),
                   "checks": [{"check": n, "ok": c, "text": t} for n, c, t in checks],
                   "hint": hint}
            doc.update(status)
            view.json(doc)
        else:
            view.write(_modem_text(status, where, checks, ok, hint))
        return 0 if ok else 1

    return _run(view, "modem", body)


def _modem_direct(args, view, timeout):
    settings = modem_settings(args)
    _check_port("modem", settings["port"])
    try:
        modem = open_modem(settings, timeout)
    except ValueError as e:
        raise SettingsProblem(str(e))
    try:
        view.progress("asking the modem on %s (%g s per command) ..." % (settings["port"], timeout))
        try:
            status = status_dict(modem.status())
        except _device_errors() as e:
            raise DeviceFailed(str(e), HINTS["modem"])
    finally:
        _close(modem)
    return status, "%s at %d baud (opened directly: the firmware is not running)" % (
        settings["port"], settings["baudrate"])


def _modem_text(status, where, checks, ok, hint):
    dbm = status.get("signal_dbm")
    sim_state = status.get("sim_state")
    registration = status.get("registration")
    act = status.get("act")
    operator = status.get("operator")
    if operator and act is not None:
        operator = "%s (%s)" % (operator, ACCESS_TECHNOLOGIES.get(act, "AcT %s" % act))
    rows = [
        ("SIM", "ready" if status.get("sim_ready") else "NOT READY" + (
            " (%s)" % sim_state if sim_state else "")),
        ("signal", "unknown" if dbm is None else "%d dBm (%s)" % (dbm, signal_quality(dbm))),
        ("registration", ("registered" if status.get("registered") else "NOT registered")
         + (" (%s)" % registration if registration else "")),
        ("operator", operator or "-"),
        ("ICCID", status.get("iccid") or "-"),
        ("IMSI", status.get("imsi") or "-"),
        ("IMEI", status.get("imei") or "-"),
    ]
    cell = status.get("serving_cell")
    if cell:
        if isinstance(cell, dict):
            cell = ", ".join("%s %s" % (k, v) for k, v in cell.items() if v is not None)
        rows.append(("serving cell", str(cell)))
    for key in sorted(status):   # whatever else the driver tells
        if key not in _MODEM_SHOWN and status[key] not in (None, "", [], {}):
            rows.append((key.replace("_", " "), str(status[key])))
    device = " ".join(str(status[k]) for k in ("manufacturer", "model", "firmware")
                      if status.get(k))
    if device:
        rows.append(("modem", device))
    text = "modem %s\n" % where
    text += _pairs(rows)
    text += "\n"
    for _name, passed, line in checks:
        text += "  %-4s %s\n" % ("OK" if passed else "FAIL", line)
    text += "\n"
    if ok:
        text += "OK: the modem is online\n"
    else:
        text += "FAIL: %s\n" % "; ".join(line for _n, passed, line in checks if not passed)
        text += "  what to do: %s\n" % hint
    return text

