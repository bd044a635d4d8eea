"""A Modbus RTU energy meter emulator on the simulated world: a real pymodbus
server playing an SDM630, SDM120, SDM72, ABB B23 or EM24 (drivers.meter_maps).

    emu = start_meter_emulator(world, cid=1, model="SDM630", address=1)
    meter = ModbusMeter(emu.port, model="SDM630", address=1)   # the real driver
    ...
    emu.stop()

Every register is computed when a request arrives, from
hal_mocks.sim.SimMeter(world, cid).read() encoded by the model's map: the
bench (plug, offer, contactor, faults) drives what the driver reads.

- Meter offline: while world.fault("meter") is not "none" the emulator
  drops every request, nothing goes back on the wire (as a meter without
  supply does); the driver times out and recovers when the fault is cleared.
- A request for another address is ignored (an RS-485 bus: only the
  addressed meter answers). A read outside the map's blocks gets exception 2
  (illegal data address); a function the model does not answer (writes, or
  04 on a B23) inside them gets exception 1 (illegal function).
- transport="pty" (default): two pseudo-terminal pairs joined by a virtual
  null-modem cable in the emulator's event loop; pymodbus's serial server
  opens one end by its path (pyserial, exactly as on a real tty), .port is
  the other end's path (/dev/pts/N) for the driver. Two pairs rather than
  one, because a pty has only one openable path: with a single pair one side
  would have to use the bare master fd, outside pyserial and pymodbus's
  serial transport. wire_timing=True delivers every byte after its
  transmission time at `baudrate` (10 bits a byte for 8N1), so read times are
  those of a real bus minus the meter's own latency.
- transport="tcp": pymodbus's serial server on "socket://127.0.0.1:0" (RTU
  frames over TCP, a port picked by the OS); .port is "socket://127.0.0.1:N",
  which the driver's pyserial opens as it would a tty.

The server runs in its own thread and event loop; stop() ends both and
closes every descriptor. pymodbus is imported when an emulator starts, not
when this module is imported.
"""

import asyncio
import logging
import os
import threading
import tty

from drivers import meter_maps
from drivers.hal import DeviceError
from hal_mocks.sim import SimMeter

TRANSPORTS = ("pty", "tcp")
START_TIMEOUT = 10.0


class MeterEmulator:
    """One emulated meter; see the module docstring. Counters (read them after
    the driver's call returned): requests (frames received), answered,
    ignored (other address or meter offline)."""

    def __init__(self, world, cid=1, model="SDM630", address=1, transport="pty", baudrate=9600,
                 wire_timing=False):
        if transport not in TRANSPORTS:
            raise ValueError("transport must be one of %s, not %r" % ("|".join(TRANSPORTS), transport))
        if type(address) is not int or not 1 <= address <= 247:
            raise ValueError("Modbus address must be 1..247, not %r" % (address,))
        self.world = world
        self.cid = cid
        self.map = meter_maps.get_map(model)
        self.model = self.map.name
        self.address = address
        self.transport = transport
        self.baudrate = int(baudrate)
        self.wire_timing = bool(wire_timing)
        self.port = None
        self.requests = 0
        self.answered = 0
        self.ignored = 0
        self._meter = SimMeter(world, cid)
        self._loop = None
        self._thread = None
        self._server = None
        self._fds = []
        self._masters = ()
        self._pending = set()
        self._line_free = [0.0, 0.0]     # per direction, for wire_timing
        self._stopped = False

    # --- lifecycle ---------------------------------------------------------------------
    def start(self):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="meter-emulator-%d" % self.cid, daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stop the server and the loop, close every descriptor (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(START_TIMEOUT)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(START_TIMEOUT)
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "MeterEmulator(%s at address %d on %s)" % (self.model, self.address, self.port)

    # --- on the emulator's loop --------------------------------------------------------
    async def _start(self):
        from pymodbus.server import ModbusSerialServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        logger = logging.getLogger("pymodbus")     # quiet, as drivers/meter_modbus.py does
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.CRITICAL)

        device = SimDevice(
            id=self.address,
            simdata=[SimData(start, count=count, values=0, datatype=DataType.REGISTERS)
                     for start, count in sorted(self.map.blocks)],
            action=self._action)
        if self.transport == "pty":
            server_end, client_end = self._cable()
            url = server_end
        else:
            url = "socket://127.0.0.1:0"
        self._server = ModbusSerialServer(device, port=url, baudrate=self.baudrate,
                                          ignore_missing_devices=True, trace_pdu=self._trace_pdu,
                                          trace_packet=self._trace_packet)
        await self._server.serve_forever(background=True)
        if self.transport == "pty":
            self.port = client_end
        else:
            port = self._server.transport.sockets[0].getsockname()[1]
            self.port = "socket://127.0.0.1:%d" % port

    async def _shutdown(self):
        for handle in list(self._pending):
            handle.cancel()
        self._pending.clear()
        for fd in self._masters:
            self._loop.remove_reader(fd)
        if self._server is not None:
            await self._server.shutdown()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._loop.shutdown_default_executor()

    def _cable(self):
        """Two pty pairs and the null-modem between their masters; returns the
        paths of the two slave ends (server's, driver's)."""
        master_a, slave_a = os.openpty()
        self._fds += [master_a, slave_a]
        master_b, slave_b = os.openpty()
        self._fds += [master_b, slave_b]
        # The emulator keeps its own slave descriptors open: a master whose slave
        # side is closed reads EIO at once (a busy loop) while the driver reopens.
        for fd in (slave_a, slave_b):
            tty.setraw(fd)       # no echo, no line editing before pyserial opens it
        for fd in (master_a, master_b):
            os.set_blocking(fd, False)
        self._masters = (master_a, master_b)
        self._loop.add_reader(master_a, self._carry, master_a, master_b, 0)
        self._loop.add_reader(master_b, self._carry, master_b, master_a, 1)
        return os.ttyname(slave_a), os.ttyname(slave_b)

    def _carry(self, src, dst, direction):
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if not data:
            return
        if not self.wire_timing:
            self._deliver(dst, data)
            return
        now = self._loop.time()
        start = max(now, self._line_free[direction])
        done = start + len(data) * 10.0 / self.baudrate
        self._line_free[direction] = done
        handle = self._loop.call_at(done, self._deliver_later, dst, data)
        self._pending.add(handle)

    def _deliver_later(self, dst, data):
        self._pending = set(h for h in self._pending if not h.cancelled() and h.when() > self._loop.time())
        self._deliver(dst, data)

    @staticmethod
    def _deliver(dst, data):
        try:
            os.write(dst, data)
        except OSError:
            pass         # a full or hung-up line loses the bytes, like a wire

    def _offline(self):
        return self.world.snapshot()["faults"]["meter"] != "none"

    def _trace_pdu(self, sending, pdu):
        if sending:
            self.answered += 1
            return pdu
        self.requests += 1
        if pdu.dev_id != self.address or self._offline():
            self.ignored += 1
            return None          # pymodbus does not handle a request traced to None
        return pdu

    def _trace_packet(self, sending, data):
        # Also silence the exception pymodbus sends for an undecodable frame.
        if sending and self._offline():
            return b""
        return data

    async def _action(self, function_code, start_address, address, count, registers, set_values):
        from pymodbus.constants import ExcCodes
        from pymodbus.exceptions import NoSuchIdException

        if set_values is not None or function_code not in self.map.answers:
            return ExcCodes.ILLEGAL_FUNCTION
        try:
            # In the executor: SimMeter.read blocks for the bus timeout if the meter
            # went offline since the request was let through.
            sample = await self._loop.run_in_executor(None, self._meter.read)
        except DeviceError:
            raise NoSuchIdException("meter offline")   # ignore_missing_devices: no answer
        image = self.map.encode(meter_maps.values_from_sample(sample, self.map.phases))
        for i in range(count):
            registers[address - start_address + i] = image.get(address + i, 0)
        return None


class EmulatorUnavailable(RuntimeError):
    """The installed pymodbus cannot run this emulation; str(e) says why in one line."""


def start_meter_emulator(world, cid=1, model="SDM630", address=1, transport="pty", baudrate=9600,
                         wire_timing=False):
    """Start a MeterEmulator (see the module docstring) and return it: .port for
    the driver, .stop() to end it. Raises EmulatorUnavailable when pymodbus is
    too old for its simulator API (pymodbus 3.9+, Python 3.10+); the meter
    driver itself also runs with older pymodbus."""
    try:
        from pymodbus.simulator import DataType, SimData, SimDevice  # noqa: F401
    except ImportError as e:
        import pymodbus
        raise EmulatorUnavailable(
            "the meter emulation needs a newer pymodbus than %s (Python 3.10 or newer): %s"
            % (getattr(pymodbus, "__version__", "?"), e))
    return MeterEmulator(world, cid=cid, model=model, address=address, transport=transport,
                         baudrate=baudrate, wire_timing=wire_timing).start()
