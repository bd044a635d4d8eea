"""Helpers shared by the device tests (plain functions and classes; the shared
fixtures `world` and `closing` are in conftest.py)."""


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


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
