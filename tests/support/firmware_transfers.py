"""The firmware's transfers in in-process engine tests (Harness): a recorder in
their place (FakeTransfers), or the real TransferWorker, and their results
handed to the engine as the main loop does."""

import contextlib
import queue

from firmware.transfers import TransferWorker
from ocpp_core import firmware_management


class FakeTransfers(firmware_management.TransferInterface):
    """Records what the firmware update asks for; the test answers with firmware_done."""

    def __init__(self):
        self.calls = []

    def download(self, location, attempts, interval):
        self.calls.append(("download", location, attempts, interval))

    def install(self):
        self.calls.append(("install",))

    def activate(self, version):
        self.calls.append(("activate", version))


@contextlib.contextmanager
def running_worker():
    """A started TransferWorker (its results in worker.events); stopped on exit."""
    worker = TransferWorker(queue.Queue())
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        worker.join(5)


def firmware_done(h, op, ok, detail=None):
    """One transfer result to h's firmware update, as the main loop hands it on."""
    h.cp.firmware.transfer_done(op, ok, detail)
    h.pump()


def deliver_firmware_results(h, events, most, timeout=10):
    """Up to `most` transfer results to h's firmware update while one is in
    progress; stops early when none comes within `timeout` seconds."""
    for _ in range(most):
        if h.cp.firmware.update is None:
            break
        try:
            event = events.get(timeout=timeout)
        except queue.Empty:
            break
        firmware_done(h, event.value.op, event.value.ok, event.value.detail)
