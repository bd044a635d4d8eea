"""systemd integration without extra packages: sd_notify over the datagram
socket in $NOTIFY_SOCKET (READY=1, STATUS=..., WATCHDOG=1, STOPPING=1).

Outside systemd every call does nothing.
"""

import os
import socket
import time


class Notifier:
    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]      # abstract namespace
        try:
            usec = int(env.get("WATCHDOG_USEC", "0"))
        except ValueError:
            usec = 0
        if env.get("WATCHDOG_PID") and env.get("WATCHDOG_PID") != str(os.getpid()):
            usec = 0                                     # the watchdog is someone else's
        self.watchdog_interval = usec / 1e6 / 2.0 if usec > 0 else None
        self._last_ping = 0.0
        self._sock = None

    @property
    def active(self):
        return self.address is not None

    def notify(self, text):
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(text.encode("utf-8"), self.address)
            return True
        except OSError:
            return False

    def ready(self, status=None):
        self.notify("READY=1" + ("\nSTATUS=%s" % status if status else ""))

    def status(self, text):
        self.notify("STATUS=%s" % text)

    def stopping(self):
        self.notify("STOPPING=1")

    def watchdog(self, now=None):
        """Call from the main loop: pings at half the watchdog interval, so a hung
        loop gets the service restarted by systemd."""
        if self.watchdog_interval is None:
            return None
        now = time.monotonic() if now is None else now
        if now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self.notify("WATCHDOG=1")
        return self.watchdog_interval
