"""The pseudo-terminal plumbing of the emulated serial devices
(hal_mocks.rapi_board, hal_mocks.fake_modem): a device thread on the master
side of a pty, the driver on its slave side (`port`), as on a real serial port.
"""

import errno
import logging
import os
import select
import threading
import tty

log = logging.getLogger("hal_mocks.pty_device")

POLL_INTERVAL = 0.02      # s; how often the emulated devices look at the world


class PtyDevice:
    """A device on the master side of a pseudo-terminal; `port` is the slave's
    path, for pyserial. One thread reads what the driver writes (received())
    and calls tick() every POLL_INTERVAL; subclasses implement both. The slave
    side is set raw (no echo, no CR/LF translation) and kept open by the device,
    so a driver may close and reopen the port at will."""

    def __init__(self, name):
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        """Stop the thread and close the pseudo-terminal (idempotent)."""
        if self._stopping:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(5.0)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def send(self, data):
        """Write to the driver; dropped when nobody reads and the pty is full."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                log.debug("%s: output dropped (nobody reads)", self._thread.name)
                return
            except OSError as e:
                if e.errno in (errno.EIO, errno.EBADF):
                    return
                raise
            view = view[n:]

    def received(self, data):
        raise NotImplementedError

    def tick(self):
        pass

    def _run(self):
        while not self._stopping:
            try:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], POLL_INTERVAL)
            except (OSError, ValueError):
                return
            if self._stopping:
                return
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            try:
                if self._master in ready:
                    try:
                        data = os.read(self._master, 4096)
                    except BlockingIOError:
                        data = b""
                    except OSError as e:
                        if e.errno != errno.EIO:
                            raise
                        data = b""
                    if data:
                        self.received(data)
                self.tick()
            except Exception:          # an emulator bug must show, not hang the driver
                log.exception("%s failed", self._thread.name)
