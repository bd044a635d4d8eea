"""`python -m tools.diag rfid | meter | modem`: one device at a time.

    rfid    wait for a card and print its idTag (to enrol cards): --timeout 30
    meter   live readings (voltage, current, power per phase, energy), every
            second until Ctrl-C or --count N; --json: one JSON object per line
    modem   SIM, signal (dBm and a quality word), registration, operator,
            ICCID, IMSI, IMEI, serving cell when the modem tells it

While the firmware runs, the devices belong to it: the command asks the
firmware through its maintenance socket ({"cmd": "device", "name": ...,
"action": "read" | "wait_card", "timeout": s}). When the firmware is not running
(no socket, or nobody listening on it) the command opens the device itself
with the real driver, configured from the station config:

    [meter]  port, model, address, baudrate, parity, stopbits, timeout
    [rfid]   spi_bus, spi_device, reset_pin (optional)
    [modem]  port, baudrate

(firmware/device_config.py has the defaults), overridden by --port, --model,
--address, --baudrate, --parity, --spi-bus, --spi-device.

A device that fails prints the driver's one-line message and a hint.
Exit status: 0 every check passed; 1 a device failed (or no card came);
2 unusable settings; 130 interrupted (rfid, modem; for meter Ctrl-C is the
normal end and the status says whether every reading succeeded).
"""

import argparse
import datetime
import json
import os
import socket
import sys
import time

READ_INTERVAL = 1.0
RFID_TIMEOUT = 30.0
SOCKET_MARGIN = 5.0        # s the firmware gets on top of a device's own timeout
MODEM_TIMEOUT = 10.0
METER_REQUEST_TIMEOUT = 10.0

# LTE RSSI quality words, as commonly given (e.g. by modem and router vendors)
SIGNAL_WORDS = ((-70, "excellent"), (-85, "good"), (-100, "fair"))

HINTS = {
    "meter": "compare [meter] model, address, baudrate and parity with the meter's own menu; "
             "swapped RS-485 A/B wires are the most common fault",
    "modem": "check the modem's power and USB cable, and that [modem] port is its AT port "
             "(ls -l /dev/serial/by-id)",
    "rfid": "check the reader's 3.3 V supply and SPI wiring (SDA/CS, SCK, MOSI, MISO) and that "
            "SPI is enabled (raspi-config)",
}


# --- the subcommands -------------------------------------------------------------------------

def add_parser(subparsers):
    note = ("While the firmware runs the device is read through its maintenance socket; "
            "otherwise the device is opened directly with the settings of the station config "
            "(--config), which the options below override.")

    p = subparsers.add_parser("rfid", help="wait for a card and print its idTag",
                              description="Wait for a card on the RFID reader and print its "
                                          "idTag (to enrol cards). " + note)
    p.add_argument("--timeout", type=_seconds(1, 3600), default=RFID_TIMEOUT,
                   help="seconds to wait for a card (default %g)" % RFID_TIMEOUT)
    p.add_argument("--spi-bus", type=int, help="override [rfid] spi_bus")
    p.add_argument("--spi-device", type=int, help="override [rfid] spi_device")
    p.set_defaults(func=run_rfid)

    p = subparsers.add_parser("meter", help="live readings of the energy meter",
                              description="Voltage, current, power per phase and energy, "
                                          "every second until Ctrl-C or --count. " + note)
    p.add_argument("--count", type=_count, default=None,
                   help="stop after N readings (default: until Ctrl-C)")
    p.add_argument("--interval", type=_seconds(0.2, 3600), default=READ_INTERVAL,
                   help="seconds between readings (default %g)" % READ_INTERVAL)
    p.add_argument("--port", help="override [meter] port (device path or pyserial URL)")
    p.add_argument("--model", help="override [meter] model")
    p.add_argument("--address", type=int, help="override [meter] address (1..247)")
    p.add_argument("--baudrate", type=int, help="override [meter] baudrate")
    p.add_argument("--parity", help="override [meter] parity (N, E, O)")
    p.set_defaults(func=run_meter)

    p = subparsers.add_parser("modem", help="SIM, signal, registration and identities of the modem",
                              description="SIM, signal strength, registration, operator, ICCID, "
                                          "IMSI, IMEI and serving cell of the LTE modem. " + note)
    p.add_argument("--port", help="override [modem] port (the AT port)")
    p.add_argument("--baudrate", type=int, help="override [modem] baudrate")
    p.add_argument("--timeout", type=_seconds(0.5, 120), default=MODEM_TIMEOUT,
                   help="seconds allowed for the modem's answer (default %g)" % MODEM_TIMEOUT)
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
    """One line for the technician, and what to do about it."""

    def __init__(self, text, hint=None):
        Exception.__init__(self, text)
        self.text = text
        self.hint = hint


class SettingsProblem(Exception):
    pass


# --- output -----------------------------------------------------------------------------------

class View:
    def __init__(self, out, as_json):
        self.out = out
        self.as_json = as_json
        self.tty = _isatty(out) and not as_json
        self._progress_stream = out if self.tty else (
            sys.stderr if as_json and _isatty(sys.stderr) else None)
        self._progress_shown = False
        self._drawn_lines = 0      # lines of the last block redrawn in place

    def write(self, text):
        self.clear_progress()
        self.out.write(text)
        flush = getattr(self.out, "flush", None)
        if flush is not None:
            flush()

    def json(self, doc):
        self.write(json.dumps(doc) + "\n")

    def progress(self, text):
        if self._progress_stream is None:
            return
        self._progress_stream.write("\r\033[K" + text)
        self._progress_stream.flush()
        self._progress_shown = True

    def clear_progress(self):
        if self._progress_shown:
            self._progress_stream.write("\r\033[K")
            self._progress_stream.flush()
            self._progress_shown = False

    def redraw(self, text):
        """Replace the previous block on a terminal; append elsewhere."""
        if self.tty and self._drawn_lines:
            self.write("\033[%dA\033[J" % self._drawn_lines)
        self.write(text)
        self._drawn_lines = text.count("\n")

    def failure(self, device, failed, extra=None):
        if self.as_json:
            doc = {"device": device, "ok": False, "error": failed.text, "hint": failed.hint}
            doc.update(extra or {})
            self.json(doc)
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


def _key_values(rows, indent="  "):
    rows = [(k, v) for k, v in rows if v is not None]
    width = max(len(k) for k, _ in rows) if rows else 0
    return "".join("%s%-*s  %s\n" % (indent, width, k, v) for k, v in rows)


def _table(headers, rows):
    """Columns: the first left-aligned, the others right-aligned."""
    cells = [list(headers)] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(r))]
        lines.append("  " + "  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"


def _now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- the firmware's maintenance socket ----------------------------------------------------------

class FirmwareNotRunning(Exception):
    pass


def _socket_path(args):
    path = getattr(args, "socket", None)
    if path:
        return path
    try:
        from tools.diag import client
    except ImportError:
        return None
    for name in ("DEFAULT_SOCKET", "DEFAULT_SOCKET_PATH", "SOCKET_PATH"):
        value = getattr(client, name, None)
        if isinstance(value, str):
            return value
    return None


def ask_firmware(path, request, timeout):
    """The firmware's one-line JSON answer to one request. FirmwareNotRunning when
    nobody listens at path; DeviceFailed for a broken exchange."""
    if not path:
        raise FirmwareNotRunning("no maintenance socket configured")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2.0)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise FirmwareNotRunning("%s: %s" % (path, e.strerror))
        except PermissionError:
            raise DeviceFailed("no permission on the maintenance socket %s" % path,
                               "run the diag tool as the firmware's user or with sudo")
        except OSError as e:
            raise FirmwareNotRunning("%s: %s" % (path, e.strerror or e))
        sock.settimeout(timeout)
        try:
            sock.sendall((json.dumps(request) + "\n").encode("utf-8"))
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > 1 << 20:
                    break
        except socket.timeout:
            raise DeviceFailed("the firmware did not answer within %g s" % timeout,
                               "the firmware may be stuck: journalctl -u pi-ocpp -n 50")
        except OSError as e:
            raise DeviceFailed("the maintenance socket failed: %s" % (e.strerror or e),
                               "journalctl -u pi-ocpp -n 50")
    finally:
        sock.close()
    line = data.split(b"\n", 1)[0].strip()
    if not line:
        raise DeviceFailed("the firmware closed the maintenance socket without an answer",
                           "this firmware may not know the device command: update it")
    try:
        reply = json.loads(line.decode("utf-8"))
    except (ValueError, UnicodeError):
        raise DeviceFailed("the firmware sent an unreadable answer on the maintenance socket")
    if not isinstance(reply, dict):
        raise DeviceFailed("the firmware sent an unexpected answer: %.100r" % (reply,))
    return reply


def _firmware_request(args, view, name, action, device_timeout):
    """The firmware's reply (a dict with ok true), or None when it isn't running."""
    path = _socket_path(args)
    request = {"cmd": "device", "name": name, "action": action, "timeout": device_timeout}
    try:
        reply = ask_firmware(path, request, device_timeout + SOCKET_MARGIN)
    except FirmwareNotRunning:
        return None
    if reply.get("ok") is not True:
        error = reply.get("error") or "the firmware refused the request"
        raise DeviceFailed(str(error), reply.get("hint") or HINTS.get(name))
    return reply


# --- settings (direct access) -------------------------------------------------------------------

def _section(args, name, overrides):
    """firmware.device_config.Section for [name]: defaults, the INI, then the options."""
    values = {}
    path = getattr(args, "config", None)
    if path:
        # The firmware's own INI reader, so that the file means the same here.
        from firmware.station_config import ConfigError, _read_ini
        try:
            ini = _read_ini(path)
        except ConfigError as e:
            raise SettingsProblem(str(e))
        if ini.has_section(name):
            values = {k: v for k, v in ini.items(name)}
    for key, value in overrides.items():
        if value is not None:
            values[key] = str(value)
    from firmware.device_config import Section
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

    def read():
        from firmware.device_config import BAUD_RATES, METER_MODELS
        return {
            "port": s.serial_port("port", must_exist=False),
            "model": s.text("model", METER_MODELS),
            "address": s.integer("address", 1, 247),
            "baudrate": s.integer("baudrate", 1200, 115200, choices=BAUD_RATES),
            "parity": s.text("parity", ("N", "E", "O")),
            "stopbits": s.integer("stopbits", 1, 2),
            "timeout": s.number("timeout", 0.05, 5.0),
        }
    return _typed(read)


def rfid_settings(args):
    s = _section(args, "rfid", {"spi_bus": getattr(args, "spi_bus", None),
                                "spi_device": getattr(args, "spi_device", None)})
    return _typed(lambda: {"bus": s.integer("spi_bus", 0, 9),
                           "device": s.integer("spi_device", 0, 9),
                           "reset_pin": s.integer("reset_pin", 0, 27, optional=True)})


def modem_settings(args):
    s = _section(args, "modem", {"port": getattr(args, "port", None),
                                 "baudrate": getattr(args, "baudrate", None)})
    return _typed(lambda: {"port": s.serial_port("port", must_exist=False),
                           "baudrate": s.integer("baudrate", 1200, 4000000)})


def _check_port(device, port):
    """A missing tty is a hardware problem (adapter unplugged), not a setting."""
    if "://" in port or port.startswith("/dev/pts/") or os.path.exists(port):
        return
    raise DeviceFailed("%s port %s does not exist" % (device, port),
                       "is the USB adapter plugged in? ls -l /dev/serial/by-id; or set "
                       "[%s] port" % device)


# The drivers, one function each so that tests can put an emulator behind them.

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


def _device_error_types():
    from drivers.hal import DeviceError
    return (DeviceError,)


def _run(view, device, body):
    """Common error handling: DeviceFailed -> 1, SettingsProblem -> 2."""
    try:
        return body()
    except SettingsProblem as e:
        view.failure(device, DeviceFailed("%s: unusable settings: %s" % (device, e),
                                          "fix the station config or the options"))
        return 2
    except DeviceFailed as e:
        view.failure(device, e)
        return 1
    except KeyboardInterrupt:
        view.clear_progress()
        if not view.as_json:
            view.write("interrupted\n")
        return 130


# --- rfid ----------------------------------------------------------------------------------------

def run_rfid(args, out):
    view = View(out, bool(getattr(args, "json", False)))
    timeout = float(getattr(args, "timeout", None) or RFID_TIMEOUT)

    def body():
        view.progress("asking the firmware for the next card (%g s) ..." % timeout)
        reply = _firmware_request(args, view, "rfid", "wait_card", timeout)
        if reply is not None:
            return _card_result(view, reply.get("id_tag"), timeout, "firmware", None)
        settings = rfid_settings(args)
        where = "/dev/spidev%d.%d" % (settings["bus"], settings["device"])
        errors = _device_error_types()
        try:
            reader = open_rfid(settings)
        except ValueError as e:
            raise SettingsProblem(str(e))
        try:
            try:
                opener = getattr(reader, "open", None)
                if opener is not None:
                    opener()
            except errors as e:
                raise DeviceFailed(str(e), HINTS["rfid"])
            chip = getattr(reader, "chip", None)
            header = "RFID reader %son %s (opened directly: the firmware is not running)" % (
                chip + " " if chip else "", where)
            if not view.as_json:
                view.write(header + "\n")
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
                    if failures >= 3:    # the driver re-opens once by itself
                        raise DeviceFailed(str(e), HINTS["rfid"])
                    uid = None
                if uid:
                    return _card_result(view, uid, timeout, "direct", where)
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        finally:
            _close(reader)

    return _run(view, "rfid", body)


def _card_result(view, id_tag, timeout, source, where):
    if not id_tag:
        raise DeviceFailed("no card presented within %g s" % timeout,
                           "hold the card flat on the reader's antenna for a second; if a "
                           "known-good card is never read, the reader or its antenna is at "
                           "fault (only ISO 14443 A cards, e.g. MIFARE, are read)")
    id_tag = str(id_tag)
    uid_bytes = len(id_tag) // 2 if all(c in "0123456789ABCDEFabcdef" for c in id_tag) else None
    if view.as_json:
        view.json({"device": "rfid", "ok": True, "id_tag": id_tag, "source": source,
                   "uid_bytes": uid_bytes})
    else:
        text = "card: %s\n" % id_tag
        text += _key_values([
            ("idTag", id_tag + "   (what the station sends to the CSMS; enrol this)"),
            ("UID", "%d bytes" % uid_bytes if uid_bytes else None),
            ("read by", "the firmware" if source == "firmware" else where),
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
    """A JSON-able dict from a MeterSample or the firmware's reading dict."""
    if not isinstance(sample, dict):
        sample = dict(getattr(sample, "__dict__", {}))
    r = {
        "voltage_v": _phases(sample.get("voltage_v")),
        "current_a": _phases(sample.get("current_a")),
        "power_w": sample.get("power_w"),
        "power_phases_w": _phases(sample.get("power_phases_w") or sample.get("power_phase_w")),
        "energy_wh": sample.get("energy_wh"),
        "frequency_hz": sample.get("frequency_hz"),
    }
    if r["power_phases_w"] is None and any(("power_l%d" % i) in sample for i in (1, 2, 3)):
        r["power_phases_w"] = [sample.get("power_l%d" % i) for i in (1, 2, 3)]
    return r


def _fmt(value, fmt, unit):
    return "n/a" if value is None else (fmt % value) + " " + unit


def _meter_table(r):
    n = max(len(r[k] or ()) for k in ("voltage_v", "current_a", "power_phases_w")) or 1
    headers = [""] + ["L%d" % (i + 1) for i in range(n)] + ["total"]

    def row(name, key, fmt, unit, total=None):
        values = r[key]
        if values is None:       # the meter (or the driver) has no per-phase values
            return [name] + [""] * n + [total or ""]
        cells = [_fmt(values[i] if i < len(values) else None, fmt, unit) for i in range(n)]
        return [name] + cells + [total or ""]

    power = r["power_w"]
    total_power = "n/a" if power is None else (
        "%.2f kW" % (power / 1000.0) if abs(power) >= 1000 else "%.0f W" % power)
    energy = r["energy_wh"]
    rows = [row("voltage", "voltage_v", "%.1f", "V"),
            row("current", "current_a", "%.2f", "A"),
            row("power", "power_phases_w", "%.0f", "W", total_power),
            ["energy"] + [""] * n + [_fmt(None if energy is None else energy / 1000.0,
                                          "%.3f", "kWh")],
            ["frequency"] + [""] * n + [_fmt(r["frequency_hz"], "%.2f", "Hz")]]
    return _table(headers, rows)


def _meter_notes(r):
    notes = []
    for i, v in enumerate(r["voltage_v"] or ()):
        if v is None:
            continue
        if v < 50:
            notes.append("L%d has no voltage (%.1f V): phase missing or the meter's voltage "
                         "input not wired" % (i + 1, v))
        elif not 195.5 <= v <= 253.0:
            notes.append("L%d voltage %.1f V is outside 230 V -15 %%/+10 %%" % (i + 1, v))
    return notes


def run_meter(args, out):
    view = View(out, bool(getattr(args, "json", False)))
    count = getattr(args, "count", None)
    interval = float(getattr(args, "interval", None) or READ_INTERVAL)
    state = {"failed": 0, "done": 0}

    def body():
        meter = None
        source = None         # "firmware" or "direct"
        header = ""
        try:
            n = 0
            while count is None or n < count:
                n += 1
                started = time.monotonic()
                reading, failure = None, None
                try:
                    if source != "direct":
                        view.progress("reading the meter via the firmware ...")
                        reply = _firmware_request(args, view, "meter", "read",
                                                  METER_REQUEST_TIMEOUT)
                        if reply is not None:
                            if source is None:
                                header = "meter read by the firmware (maintenance socket)\n"
                            source = "firmware"
                            reading = reading_from(reply.get("reading") or {})
                        elif source == "firmware":
                            raise DeviceFailed("the firmware stopped answering on its "
                                               "maintenance socket", "is it restarting? "
                                               "systemctl status pi-ocpp")
                        else:
                            source = "direct"
                    if source == "direct":
                        if meter is None:
                            settings = meter_settings(args)
                            _check_port("meter", settings["port"])
                            try:
                                meter = open_meter(settings)
                            except ValueError as e:
                                raise SettingsProblem(str(e))
                            header = ("meter %s, address %d, %s %d %s (opened directly: the "
                                      "firmware is not running)\n" % (
                                          settings["model"], settings["address"],
                                          settings["port"], settings["baudrate"],
                                          "8%s%d" % (settings["parity"], settings["stopbits"])))
                        view.progress("reading the meter ...")
                        try:
                            reading = reading_from(meter.read())
                        except _device_error_types() as e:
                            raise DeviceFailed(str(e), HINTS["meter"])
                except DeviceFailed as e:
                    failure = e
                took_ms = (time.monotonic() - started) * 1000.0
                state["done"] += 1
                stamp = _now_text()
                local = time.strftime("%H:%M:%S")
                if failure is not None:
                    state["failed"] += 1
                    if view.as_json:
                        view.json({"device": "meter", "reading": n, "time": stamp, "ok": False,
                                   "source": source, "error": failure.text,
                                   "hint": failure.hint})
                    else:
                        text = header + "reading %d at %s: FAIL: %s\n" % (n, local, failure.text)
                        if failure.hint:
                            text += "  what to do: %s\n" % failure.hint
                        view.redraw(text)
                else:
                    if view.as_json:
                        doc = {"device": "meter", "reading": n, "time": stamp, "ok": True,
                               "source": source, "took_ms": round(took_ms, 1)}
                        doc.update(reading)
                        view.json(doc)
                    else:
                        text = header + "reading %d at %s (%.0f ms)%s\n" % (
                            n, local, took_ms,
                            "" if count is not None else ", Ctrl-C to stop")
                        text += _meter_table(reading)
                        for note in _meter_notes(reading):
                            text += "note: %s\n" % note
                        view.redraw(text)
                if count is not None and n >= count:
                    break
                wait = started + interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
        except KeyboardInterrupt:
            view.clear_progress()
        finally:
            if meter is not None:
                _close(meter)
        if not view.as_json:
            if state["failed"]:
                view.write("FAIL: %d of %d readings failed\n" % (state["failed"], state["done"]))
            elif state["done"]:
                view.write("OK: %d reading%s\n" % (state["done"], "s" if state["done"] > 1 else ""))
        return 1 if state["failed"] or not state["done"] else 0

    return _run(view, "meter", body)


# --- modem ---------------------------------------------------------------------------------------

def signal_quality(dbm):
    """A word for an LTE RSSI in dBm."""
    if dbm is None:
        return "unknown"
    for limit, word in SIGNAL_WORDS:
        if dbm >= limit:
            return word
    return "poor"


def _status_dict(status):
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

# shown by name in the table; everything else the driver tells goes below them
_MODEM_SHOWN = ("sim_ready", "sim_state", "signal_dbm", "registered", "registration", "operator",
                "act", "iccid", "imsi", "imei", "serving_cell", "manufacturer", "model",
                "firmware", "urcs")


def modem_checks(s):
    """[(check, ok, text)]: what must hold for the station to be online."""
    from drivers.hal import WEAK_SIGNAL_DBM
    checks = []
    sim = s.get("sim_ready")
    checks.append(("sim", bool(sim), "SIM ready" if sim else
                   "SIM not ready: no SIM card, a SIM PIN is set, or the SIM is blocked"))
    dbm = s.get("signal_dbm")
    if dbm is None:
        checks.append(("signal", False, "no signal measured (no antenna? no network in range?)"))
    else:
        ok = dbm > WEAK_SIGNAL_DBM
        checks.append(("signal", ok, "signal %d dBm (%s)%s" % (
            dbm, signal_quality(dbm),
            "" if ok else ": too weak for a reliable link (the station reports WeakSignal)")))
    reg = s.get("registered")
    checks.append(("registration", bool(reg), "registered on %s" % (s.get("operator") or "a network")
                   if reg else "not registered on a network"))
    return checks


def _modem_hint(checks):
    failed = [name for name, ok, _ in checks if not ok]
    if "sim" in failed:
        return ("insert the SIM (power off first), or remove its PIN (the firmware cannot "
                "enter one); check the SIM with the operator")
    if "signal" in failed:
        return ("check the antenna and its cable (LTE main port), move the antenna outside a "
                "metal enclosure, or use an external antenna")
    if "registration" in failed:
        return ("the SIM is ready but the network refuses it or is out of range: check the "
                "SIM's contract and roaming with the operator, and the antenna")
    return None


def run_modem(args, out):
    view = View(out, bool(getattr(args, "json", False)))
    timeout = float(getattr(args, "timeout", None) or MODEM_TIMEOUT)

    def body():
        view.progress("asking the firmware for the modem's status ...")
        reply = _firmware_request(args, view, "modem", "read", timeout)
        if reply is not None:
            status = _status_dict(reply.get("status") or {})
            source, where = "firmware", "read by the firmware (maintenance socket)"
        else:
            settings = modem_settings(args)
            _check_port("modem", settings["port"])
            try:
                modem = open_modem(settings, timeout)
            except ValueError as e:
                raise SettingsProblem(str(e))
            try:
                view.progress("asking the modem on %s (timeout %g s) ..."
                              % (settings["port"], timeout))
                try:
                    status = _status_dict(modem.status())
                except _device_error_types() as e:
                    raise DeviceFailed(str(e), HINTS["modem"])
            finally:
                _close(modem)
            source = "direct"
            where = "%s at %d baud (opened directly: the firmware is not running)" % (
                settings["port"], settings["baudrate"])
        checks = modem_checks(status)
        ok = all(c[1] for c in checks)
        hint = None if ok else _modem_hint(checks)
        dbm = status.get("signal_dbm")
        if view.as_json:
            doc = {"device": "modem", "ok": ok, "source": source,
                   "signal_quality": signal_quality(dbm),
                   "checks": [{"check": n, "ok": c, "text": t} for n, c, t in checks],
                   "hint": hint}
            doc.update(status)
            view.json(doc)
            return 0 if ok else 1
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
        text += _key_values(rows)
        text += "\n"
        for _name, passed, line in checks:
            text += "  %-4s %s\n" % ("OK" if passed else "FAIL", line)
        text += "\n"
        if ok:
            text += "OK: the modem is online\n"
        else:
            text += "FAIL: %s\n" % "; ".join(line for _n, passed, line in checks if not passed)
            text += "  what to do: %s\n" % hint
        view.write(text)
        return 0 if ok else 1

    return _run(view, "modem", body)
