"""An energy meter on Modbus RTU (RS-485): Eastron SDM630/SDM120/SDM72, ABB B23,
Carlo Gavazzi EM24 (register maps: drivers.meter_maps).

    meter = ModbusMeter("/dev/ttyUSB0", model="SDM630", address=1, baudrate=9600)
    sample = meter.read()        # ocpp_core.metering.MeterSample, or DeviceError

Decisions:

- pymodbus's synchronous serial client (ModbusSerialClient), imported in the
  constructor only: `--hal mock`, the tools and most tests never load it.
  Its default speed is 19200 baud while an SDM630 ships at 9600, so the baud
  rate is always passed explicitly.
- `port` is a device path ("/dev/ttyUSB0", "/dev/serial0"; pymodbus hands it
  to pyserial's serial_for_url, so pyserial URLs like rfc2217:// work too) or
  "socket://HOST:PORT": RTU frames over TCP (the emulator's tcp mode, or a
  transparent RS-485-to-Ethernet converter). pymodbus 3.16's serial client
  does open socket:// through pyserial, but pyserial's socket in_waiting
  says at most 1 byte, so that client reads a byte per 8 ms poll and a 97-byte
  B23 answer misses a 0.5 s timeout; socket:// therefore uses pymodbus's
  ModbusTcpClient with framer=RTU (same frames, timeouts and retries).
- One reading = one read request per block of the map (SDM630: 3 requests,
  24 registers). The first request that gets no answer ends the reading, so a
  silent meter costs timeout x (retries + 1), never more; the port is then
  closed and opened again by the next read() (a USB adapter that was pulled
  and put back works again by itself).
- DeviceError texts name what to check: no answer -> address, framing, port
  and the A/B wiring; bytes but no valid frame -> baud rate/parity; a Modbus
  exception -> the model setting.
- Implausible values raise DeviceError: NaN or infinite values, no energy
  register, a negative energy register, or an energy register lower than the
  last good one (a meter never counts backwards; the reading is refused and
  the last good register kept, so a meter swap needs a driver restart).
- Not-available markers of a meter (ABB: all-ones) are None in the sample
  (the metering layer leaves them out), except for energy (DeviceError).

A device method may block: the firmware calls read() only from the meter's
own worker thread.
"""

import logging
import time
from urllib.parse import urlsplit

from drivers import meter_maps
from drivers.hal import DeviceError, EnergyMeter

_PARITIES = ("N", "E", "O")
_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
               4: "device failure", 6: "device busy", 11: "gateway target did not respond"}


def _quiet_pymodbus():
    """pymodbus logs an ERROR (with a frame dump) for every request a silent
    meter leaves unanswered: once a second while a meter is offline. The
    driver's DeviceError already says it once, through the device worker, so
    pymodbus is limited to CRITICAL unless someone set its level on purpose
    (logging.getLogger("pymodbus").setLevel(logging.DEBUG) to see frames)."""
    logger = logging.getLogger("pymodbus")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


class ModbusMeter(EnergyMeter):
    """drivers.hal.EnergyMeter for a Modbus RTU meter (see the module docstring).

    client: an already built pymodbus sync client (or anything with connect(),
    close(), read_input_registers()/read_holding_registers(address, count=,
    device_id= or slave=) returning pymodbus responses), e.g. one client shared
    by meters on one RS-485 bus; port and the serial settings then only name
    the bus in error messages."""

    def __init__(self, port, model="SDM630", address=1, baudrate=9600, parity="N", stopbits=1,
                 bytesize=8, timeout=0.5, retries=0, client=None):
        self.map = meter_maps.get_map(model)
        if type(address) is not int or not 1 <= address <= 247:
            raise ValueError("Modbus address must be 1..247, not %r" % (address,))
        parity = str(parity).upper()[:1]
        if parity not in _PARITIES:
            raise ValueError("parity must be N, E or O, not %r" % (parity,))
        if stopbits not in (1, 2) or bytesize not in (7, 8):
            raise ValueError("stopbits must be 1 or 2 and bytesize 7 or 8")
        if type(baudrate) is not int or baudrate <= 0:
            raise ValueError("baudrate must be a positive whole number, not %r" % (baudrate,))
        if not timeout or timeout <= 0 or type(retries) is not int or retries < 0:
            raise ValueError("timeout must be > 0 s and retries a whole number >= 0")
        self.port = port
        self.model = self.map.name
        self.measurands = self.map.measurands
        self.address = address
        self.baudrate = baudrate
        self.framing = "%d%s%d" % (bytesize, parity, stopbits)
        self.timeout = float(timeout)
        self.retries = retries
        self.last_read_s = None      # duration of the last good reading (diagnostics)
        self._last_energy_wh = None
        self._rx_bytes = 0
        # lazily: see the module docstring
        from pymodbus.exceptions import ConnectionException
        self._connection_exception = ConnectionException
        if client is None:
            client = self._make_client(port, baudrate, bytesize, parity, stopbits)
        self._client = client
        read = (client.read_input_registers if self.map.function == meter_maps.READ_INPUT
                else client.read_holding_registers)
        # pymodbus renamed the unit keyword (slave= up to 3.8, device_id= from 3.9).
        import inspect
        try:
            params = inspect.signature(read).parameters
        except (TypeError, ValueError):
            params = {}
        unit_kw = "device_id" if "device_id" in params or "slave" not in params else "slave"
        self._read = lambda start, count: read(start, count=count, **{unit_kw: self.address})

    # --- the EnergyMeter interface ------------------------------------------------------
    def read(self):
        started = time.monotonic()
        if not self._client.connect():
            self._drop()
            raise DeviceError("cannot open %s for the meter: check the RS-485 adapter and "
                              "the port setting" % (self.port,))
        registers = {}
        for start, count in self.map.blocks:
            self._rx_bytes = 0
            try:
                response = self._read(start, count)
            except Exception as e:     # ModbusIOException (silence), ConnectionException, OSError
                self._drop()
                raise DeviceError(self._silence_text(e)) from None
            if response.isError():
                code = getattr(response, "exception_code", None)
                raise DeviceError("meter at address %d refused %s 0x%04X+%d (Modbus exception %s%s): "
                                  "is it really a %s?" % (
                                      self.address, self._table, start, count, code,
                                      " " + _EXCEPTIONS[code] if code in _EXCEPTIONS else "",
                                      self.model))
            words = list(getattr(response, "registers", None) or ())
            if len(words) < count:
                raise DeviceError("meter at address %d answered %d of %d registers at 0x%04X"
                                  % (self.address, len(words), count, start))
            for i in range(count):
                registers[start + i] = words[i]
        sample = self._check(meter_maps.sample_from_values(self.map.decode(registers),
                                                           self.map.phases))
        self.last_read_s = time.monotonic() - started
        return sample

    def close(self):
        """Release the serial port (the next read() opens it again)."""
        self._drop()

    def __repr__(self):
        return "ModbusMeter(%r, model=%r, address=%d, %d %s)" % (
            self.port, self.model, self.address, self.baudrate, self.framing)

    # --- internals ---------------------------------------------------------------------
    def _make_client(self, port, baudrate, bytesize, parity, stopbits):
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient
        from pymodbus.framer import FramerType

        _quiet_pymodbus()
        if str(port).lower().startswith("socket://"):
            # pyserial's socket:// reports at most 1 byte waiting, so pymodbus's serial
            # client would read a TCP stream byte by byte (8 ms a byte): use pymodbus's
            # TCP client with the RTU framer instead - same frames, same timeouts.
            url = urlsplit(port)
            if not url.hostname or not url.port:
                raise ValueError("a socket port is socket://HOST:PORT, not %r" % (port,))
            return ModbusTcpClient(url.hostname, port=url.port, framer=FramerType.RTU,
                                   timeout=self.timeout, retries=self.retries, name="meter",
                                   trace_packet=self._trace)
        return ModbusSerialClient(port, framer=FramerType.RTU, baudrate=baudrate,
                                  bytesize=bytesize, parity=parity, stopbits=stopbits,
                                  timeout=self.timeout, retries=self.retries, name="meter",
                                  trace_packet=self._trace)

    @property
    def _table(self):
        return "input registers" if self.map.function == meter_maps.READ_INPUT else "holding registers"

    def _trace(self, sending, data):
        if not sending:      # pymodbus hands over the receive buffer so far
            self._rx_bytes = max(self._rx_bytes, len(data))
        return data

    def _drop(self):
        try:
            self._client.close()
        except Exception:
            pass

    def _silence_text(self, error):
        where = "at address %d, %d %s on %s" % (self.address, self.baudrate, self.framing, self.port)
        if self._rx_bytes:
            return ("meter sent no valid answer %s (%d bytes of noise): check baud rate, parity "
                    "and bus termination" % (where, self._rx_bytes))
        if isinstance(error, (OSError, self._connection_exception)):
            return "meter port failed %s (%s): check the USB RS-485 adapter" % (where, error)
        return "meter did not answer %s: check RS-485 A/B wiring" % (where,)

    def _check(self, sample):
        values = [("energy", sample.energy_wh), ("power", sample.power_w),
                  ("frequency", sample.frequency_hz)]
        for name, seq in (("current", sample.current_a), ("voltage", sample.voltage_v)):
            for i, v in enumerate(seq or ()):
                values.append(("%s L%d" % (name, i + 1), v))
        for name, v in values:
            if v is not None and (v != v or v in (float("inf"), float("-inf"))):
                raise DeviceError("meter at address %d sent an implausible %s (%r)"
                                  % (self.address, name, v))
        energy = sample.energy_wh
        if energy is None:
            raise DeviceError("meter at address %d reports its energy register as not available"
                              % self.address)
        if energy < 0:
            raise DeviceError("meter at address %d sent a negative energy register (%.3f Wh)"
                              % (self.address, energy))
        if self._last_energy_wh is not None and energy < self._last_energy_wh:
            raise DeviceError("meter at address %d: energy register went backwards from %.3f "
                              "to %.3f Wh" % (self.address, self._last_energy_wh, energy))
        self._last_energy_wh = energy
        return sample
