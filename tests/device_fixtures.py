"""Fixtures shared by the tests that run drivers against emulated devices
(tests/test_modem_at.py, tests/test_pilot_rapi.py) and the bench socket's
(tests/test_bench_server.py). A test module imports the ones it uses by name,
which is how pytest finds them."""

import pytest

from hal_mocks.sim import SimWorld


@pytest.fixture
def world():
    """A simulated world whose meter and modem time out quickly."""
    w = SimWorld(meter_timeout=0.05, modem_timeout=0.05)
    yield w
    w.close()


@pytest.fixture
def closing():
    """Register things to close/stop at the end, last first."""
    items = []
    yield items.append
    for item in reversed(items):
        (getattr(item, "close", None) or item.stop)()


def closing_factory(closing, make, **defaults):
    """A factory for a fixture to return: make(*args, **options), `defaults`
    filling in the options not given, each thing made registered with
    `closing` (the fixture's value)."""
    def start(*args, **options):
        for name, value in defaults.items():
            options.setdefault(name, value)
        item = make(*args, **options)
        closing(item)
        return item
    return start
