"""Text lines over a serial port, for the drivers that speak a line protocol on
a UART or a USB serial port (drivers.modem_at, drivers.pilot_rapi).

A line ends at CR or LF; it is decoded as ASCII (anything else replaced),
stripped, and an empty one is skipped. Reads block for READ_SLICE at the most,
so that a deadline is kept to about that.

The port is opened on first use (exclusively), closed after an I/O error and
opened again on the next use: a device that is missing or restarts is a
device fault that clears by itself. Not thread-safe: the driver holds its lock
around every call.
"""

import time

from drivers.hal import DeviceError

READ_SLICE = 0.05            # s; one blocking read


class LineSerial:
    """The lines of the serial port `port` (e.g. /dev/ttyUSB2).

    serial: an open pyserial-like object to use instead of opening `port`; its
    read timeout is lowered to READ_SLICE, and it is never closed nor reopened
    here. Without it, pyserial is imported now (so that importing a driver never
    needs it) and the port is opened at `baudrate`, with `write_timeout`.

    name, open_hint, failure_hint: the DeviceError raised when the port cannot
    be opened says "<name> port <port> cannot be opened (<why>): <open_hint>",
    the one raised when a read or a write fails "<name> port <port> failed
    (<why>): <failure_hint>".

    max_line: the longest line kept; a longer one is cut to its first max_line
    characters, or to its last with keep_last (where noise may come before
    what matters on the line). Received bytes with no line end in sight are
    likewise cut to their last max_line.
    """

    def __init__(self, port, baudrate, write_timeout, serial=None, *, name, open_hint,
                 failure_hint, max_line, keep_last=False):
        if serial is None:
            import serial as pyserial   # lazily: importing drivers never needs pyserial
            self._pyserial = pyserial
        else:
            self._pyserial = None
            if getattr(serial, "timeout", None) is None or serial.timeout > READ_SLICE:
                serial.timeout = READ_SLICE
        self.port = port
        self.baudrate = baudrate
        self.write_timeout = write_timeout
        self.name = name
        self.open_hint = open_hint
        self.failure_hint = failure_hint
        self.max_line = max_line
        self.keep_last = keep_last
        self._ser = serial
        self._owns_port = serial is None
        self.buffer = bytearray()    # received, not yet taken as lines

    # --- the port -----------------------------------------------------------------------
    def ensure_open(self):
        """Open the port unless it is open; True when it was opened just now (the
        buffer is then empty). DeviceError when it cannot be opened."""
        if self._ser is not None:
            return False
        try:
            self._ser = self._pyserial.Serial(self.port, self.baudrate, timeout=READ_SLICE,
                                              write_timeout=self.write_timeout, exclusive=True)
        except (OSError, ValueError) as e:     # serial.SerialException is an OSError
            raise DeviceError("%s port %s cannot be opened (%s): %s"
                              % (self.name, self.port, short_error(e), self.open_hint))
        self.buffer = bytearray()
        return True

    def close(self):
        """Close the port if it was opened here; the next ensure_open() reopens it."""
        if self._ser is not None and self._owns_port:
            try:
                self._ser.close()
            except Exception:
                pass
            self._ser = None

    def discard(self):
        """Forget what was received and not taken yet."""
        self.buffer = bytearray()

    # --- lines --------------------------------------------------------------------------
    def write(self, data):
        try:
            self._ser.write(data)
            self._ser.flush()
        except (OSError, ValueError) as e:
            self._io_failed(e)

    def read_line(self, deadline):
        """The next line, waiting until time.monotonic() reaches `deadline`; None
        when none came by then."""
        while True:
            line = self.next_line()
            if line is not None:
                return line
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self._ser.read(self._ser.in_waiting or 1)
            except (OSError, ValueError) as e:
                self._io_failed(e)
            self.buffer += chunk

    def drain(self):
        """The complete lines that arrived so far (what is waiting is read without
        blocking), in order."""
        try:
            waiting = self._ser.in_waiting
            if waiting:
                self.buffer += self._ser.read(waiting)
        except (OSError, ValueError) as e:
            self._io_failed(e)
        lines = []
        while True:
            line = self.next_line()
            if line is None:
                return lines
            lines.append(line)

    def next_line(self):
        """The next complete, non-empty line in the buffer, or None."""
        rx = self.buffer
        while True:
            ends = [i for i in (rx.find(b"\r"), rx.find(b"\n")) if i >= 0]
            if not ends:
                if len(rx) > self.max_line:
                    del rx[:-self.max_line]
                return None
            end = min(ends)
            text = bytes(rx[:end]).decode("ascii", "replace").strip()
            del rx[:end + 1]
            if text:
                return text[-self.max_line:] if self.keep_last else text[:self.max_line]

    def _io_failed(self, error):
        self.close()
        raise DeviceError("%s port %s failed (%s): %s"
                          % (self.name, self.port, short_error(error), self.failure_hint))


def short_error(error):
    """The first line of what an exception says (its type when it says nothing),
    at most 120 characters."""
    return (str(error) or type(error).__name__).splitlines()[0][:120]
