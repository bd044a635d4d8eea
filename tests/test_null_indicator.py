"""The indicator of a Pi with no LED wired (drivers.null_indicator)."""

import logging

from drivers.null_indicator import NullIndicator


def test_each_change_of_state_is_logged_once_at_debug_level(caplog):
    caplog.set_level(logging.DEBUG, logger="drivers.indicator")
    indicator = NullIndicator()
    indicator.show("available", 1, 50)
    indicator.show("available", 1, 50)
    indicator.show("charging", 3, 80)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "drivers.indicator"]
    assert lines == [
        (logging.DEBUG, "no LED wired; would show available (blink 1, intensity 50 %)"),
        (logging.DEBUG, "no LED wired; would show charging (blink 3, intensity 80 %)"),
    ]
    assert indicator.state == "charging"


def test_nothing_is_logged_at_the_default_level(caplog):
    caplog.set_level(logging.INFO)
    NullIndicator().show("faulted")
    assert not [r for r in caplog.records if r.name == "drivers.indicator"]
