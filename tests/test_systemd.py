"""sd_notify over a real datagram socket, as systemd provides it."""

import os
import socket

from firmware.systemd import Notifier


def test_ready_status_and_watchdog_reach_the_notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    try:
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000",
                      "WATCHDOG_PID": str(os.getpid())})
        assert n.active and n.watchdog_interval == 15.0
        n.ready("connecting")
        assert server.recv(100) == b"READY=1\nSTATUS=connecting"
        assert n.watchdog(now=100.0) == 15.0
        assert server.recv(100) == b"WATCHDOG=1"
        n.watchdog(now=105.0)                 # too early: no second ping
        n.status("Accepted")
        assert server.recv(100) == b"STATUS=Accepted"
    finally:
        server.close()


def test_outside_systemd_nothing_happens():
    n = Notifier({})
    assert not n.active
    assert n.notify("READY=1") is False
    assert n.watchdog() is None


def test_a_watchdog_meant_for_another_process_is_ignored():
    n = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000",
                  "WATCHDOG_PID": "1"})
    assert n.watchdog_interval is None
