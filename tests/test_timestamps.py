"""ocpp_core.timestamps: UTC with milliseconds out, any RFC 3339 offset in."""

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_core.timestamps import format_utc, is_rfc3339, parse_rfc3339

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MIN_MS = (datetime(1, 1, 1, tzinfo=timezone.utc) - EPOCH) // timedelta(milliseconds=1)
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc) - EPOCH) \
    // timedelta(milliseconds=1)


def _reference(ms):
    """What format_utc must produce for an instant of whole milliseconds, by datetime."""
    dt = EPOCH + timedelta(milliseconds=ms)
    return "%04d-%s.%03dZ" % (dt.year, dt.strftime("%m-%dT%H:%M:%S"), dt.microsecond // 1000)


# --- format_utc ---------------------------------------------------------------

@pytest.mark.parametrize("seconds, text", [
    (0, "1970-01-01T00:00:00.000Z"),
    (0.0, "1970-01-01T00:00:00.000Z"),
    (1, "1970-01-01T00:00:01.000Z"),
    (86399.999, "1970-01-01T23:59:59.999Z"),
    (86400, "1970-01-02T00:00:00.000Z"),
    (951782400, "2000-02-29T00:00:00.000Z"),            # leap year divisible by 400
    (951868800, "2000-03-01T00:00:00.000Z"),
    (1709164800, "2024-02-29T00:00:00.000Z"),
    (1709251199.5, "2024-02-29T23:59:59.500Z"),
    (1709251200, "2024-03-01T00:00:00.000Z"),
    (1677628800, "2023-03-01T00:00:00.000Z"),            # 2023: no Feb 29
    (1704067199.999, "2023-12-31T23:59:59.999Z"),
    (2147483647, "2038-01-19T03:14:07.000Z"),            # the 32-bit limit
    (2147483648, "2038-01-19T03:14:08.000Z"),
    (4102444800, "2100-01-01T00:00:00.000Z"),
    (4107456000, "2100-02-28T00:00:00.000Z"),
    (4107542400, "2100-03-01T00:00:00.000Z"),            # 2100 is not a leap year
    (253402300799, "9999-12-31T23:59:59.000Z"),
    (-1, "1969-12-31T23:59:59.000Z"),
    (-0.001, "1969-12-31T23:59:59.999Z"),
    (-86400, "1969-12-31T00:00:00.000Z"),
    (1385900000.123, "2013-12-01T12:13:20.123Z"),
])
def test_format_utc_examples(seconds, text):
    assert format_utc(seconds) == text


@pytest.mark.parametrize("seconds, text", [
    (0.0004, "1970-01-01T00:00:00.000Z"),
    (0.0005, "1970-01-01T00:00:00.001Z"),
    (0.0006, "1970-01-01T00:00:00.001Z"),
    (1.2344, "1970-01-01T00:00:01.234Z"),
    (1.2346, "1970-01-01T00:00:01.235Z"),
    (59.9996, "1970-01-01T00:01:00.000Z"),               # rounding carries into the minute
    (86399.9999, "1970-01-02T00:00:00.000Z"),            # ... and into the next day
    (1704067199.9996, "2024-01-01T00:00:00.000Z"),       # ... and into the next year
    (-0.0004, "1970-01-01T00:00:00.000Z"),
    (-0.0006, "1969-12-31T23:59:59.999Z"),
])
def test_format_utc_rounds_to_the_millisecond(seconds, text):
    assert format_utc(seconds) == text


def test_format_utc_accepts_ints_and_floats_alike():
    assert format_utc(1700000000) == format_utc(1700000000.0) == "2023-11-14T22:13:20.000Z"


def test_format_utc_matches_datetime_for_many_instants():
    rng = random.Random(1234)
    samples = [rng.randint(MIN_MS, MAX_MS) for _ in range(2000)]
    samples += [rng.randint(0, 4102444800000) for _ in range(2000)]
    # every day boundary across a few leap cycles, including 1900 and 2100
    for year in (1899, 1900, 1904, 1999, 2000, 2037, 2038, 2099, 2100, 2400):
        start = (datetime(year, 1, 1, tzinfo=timezone.utc) - EPOCH) // timedelta(milliseconds=1)
        samples += [start + d * 86400000 + off for d in range(0, 366, 7) for off in (-1, 0)]
    for ms in samples:
        assert format_utc(ms / 1000) == _reference(ms), ms


# --- parse_rfc3339 --------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:00z", 0),
    ("1970-01-01t00:00:00Z", 0),
    ("1970-01-01t00:00:00z", 0),
    ("1970-01-01T00:00:00+00:00", 0),
    ("1970-01-01T00:00:00-00:00", 0),
    ("1970-01-01T05:30:00+05:30", 0),
    ("1969-12-31T16:00:00-08:00", 0),
    ("2024-02-29T12:00:00Z", 1709208000),
    ("2024-02-29T17:30:00+05:30", 1709208000),
    ("2024-02-29T04:00:00-08:00", 1709208000),
    ("2024-03-01T01:59:00+13:59", 1709208000),
    ("2024-02-28T12:01:00-23:59", 1709208000),
    ("2000-02-29T00:00:00Z", 951782400),
    ("2038-01-19T03:14:08Z", 2147483648),
    ("2100-03-01T00:00:00Z", 4107542400),
    ("9999-12-31T23:59:59Z", 253402300799),
    ("0001-01-01T00:00:00Z", -62135596800),
])
def test_parse_examples(text, seconds):
    assert parse_rfc3339(text) == seconds
    assert is_rfc3339(text)


@pytest.mark.parametrize("fraction, value", [
    ("1", 0.1), ("12", 0.12), ("123", 0.123), ("1234", 0.1234), ("12345", 0.12345),
    ("123456", 0.123456), ("1234567", 0.1234567), ("12345678", 0.12345678),
    ("123456789", 0.123456789), ("0", 0.0), ("000000001", 1e-9), ("999999999", 0.999999999),
])
def test_parse_fractions_of_any_length(fraction, value):
    assert parse_rfc3339("1970-01-01T00:00:10.%sZ" % fraction) == pytest.approx(10 + value, abs=1e-12)
    got = parse_rfc3339("2024-02-29T17:30:00.%s+05:30" % fraction)
    assert got == pytest.approx(1709208000 + value, abs=1e-6)


@pytest.mark.parametrize("text", [
    "2024-02-29T12:00:00",                # no offset
    "2024-02-29T12:00:00.123",            # no offset
    "2024-02-29 12:00:00Z",               # space instead of T
    "2024-02-29T12:00Z",                  # no seconds
    "2023-02-29T12:00:00Z",               # not a leap year
    "1900-02-29T12:00:00Z",               # not a leap year (century)
    "2100-02-29T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-00-10T00:00:00Z",               # month 0
    "2024-13-10T00:00:00Z",               # month 13
    "2024-01-00T00:00:00Z",               # day 0
    "2024-01-32T00:00:00Z",
    "2024-01-01T24:00:00Z",               # hour 24
    "2024-01-01T23:60:00Z",               # minute 60
    "2016-12-31T23:59:60Z",               # second 60 (leap second)
    "0000-01-01T00:00:00Z",               # year 0
    "2024-01-01T00:00:00.Z",              # empty fraction
    "2024-01-01T00:00:00,5Z",             # comma fraction
    "2024-01-01T00:00:00+0530",           # offset without colon
    "2024-01-01T00:00:00+05",
    "2024-01-01T00:00:00+24:00",          # offset hour 24
    "2024-01-01T00:00:00+05:60",          # offset minute 60
    "2024-01-01T00:00:00+05:30Z",
    "2024-01-01T00:00:00ZZ",
    "2024-01-01T00:00:00 Z",
    "2024-01-01T00:00:00Z ",
    " 2024-01-01T00:00:00Z",
    "24-01-01T00:00:00Z",
    "2024-1-01T00:00:00Z",
    "2024-01-01T0:00:00Z",
    "+2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00UTC",
    "2024-01-01T00:00:00GMT",
    "2024/01/01T00:00:00Z",
    "2024-01-01X00:00:00Z",
    "20240101T000000Z",
    "2024-0a-01T00:00:00Z",
    "2024-01-01T00:00:0\u0663Z",          # a non-ASCII digit
    "\uff12024-01-01T00:00:00Z",
    "2024-01-01T00:00:00.12a3Z",
    "yesterday",
    "",
    "Z",
])
def test_parse_rejects(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)
    assert not is_rfc3339(text)


@pytest.mark.parametrize("value", [None, 0, 1709208000, 1.5, b"2024-02-29T12:00:00Z",
                                   ["2024-02-29T12:00:00Z"], {"t": 1}])
def test_parse_rejects_non_strings(value):
    with pytest.raises(ValueError):
        parse_rfc3339(value)
    assert is_rfc3339(value) is False


def test_parse_error_is_a_value_error_with_a_message():
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339("2024-02-30T00:00:00Z")


# --- round trips and cross-checks ------------------------------------------------------

def test_round_trip_many_values():
    rng = random.Random(99)
    for ms in [0, 1, -1, 999, 1000, 86399999, 2147483647000, 2147483648000]\
            + [rng.randint(MIN_MS, MAX_MS) for _ in range(2000)]:
        text = format_utc(ms / 1000)
        assert round(parse_rfc3339(text) * 1000) == ms
        assert format_utc(parse_rfc3339(text)) == text


def _iso_with_offset(dt, offset_minutes, digits, zulu):
    local = dt.astimezone(timezone(timedelta(minutes=offset_minutes)))
    frac = ("%06d" % local.microsecond + "000")[:digits]
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if len(text) < 19:                   # strftime does not pad years < 1000 everywhere
        text = "%04d" % local.year + text[text.index("-"):]
    if digits:
        text += "." + frac
    if zulu and offset_minutes == 0:
        return text + "Z"
    sign = "-" if offset_minutes < 0 else "+"
    return text + "%s%02d:%02d" % (sign, abs(offset_minutes) // 60, abs(offset_minutes) % 60)


def test_parse_matches_datetime_for_many_instants():
    rng = random.Random(7)
    lo = (datetime(2, 1, 1, tzinfo=timezone.utc) - EPOCH) // timedelta(microseconds=1)
    hi = (datetime(9998, 12, 31, tzinfo=timezone.utc) - EPOCH) // timedelta(microseconds=1)
    for _ in range(3000):
        us = rng.randint(lo, hi)
        dt = EPOCH + timedelta(microseconds=us)
        offset = rng.choice([0, 0, 60, -60, 330, -480, 345, 14 * 60, -12 * 60, 23 * 60 + 59,
                             -(23 * 60 + 59)])
        digits = rng.choice([0, 3, 6])
        text = _iso_with_offset(dt, offset, digits, zulu=rng.random() < 0.5)
        # the datetime module's own reading of the same text
        iso = text[:-1] + "+00:00" if text.endswith("Z") else text
        expected_us = (datetime.fromisoformat(iso) - EPOCH) // timedelta(microseconds=1)
        got = parse_rfc3339(text)
        # epoch seconds up to ~2.5e11 as a float: ~30 us of resolution
        assert abs(got * 1e6 - expected_us) < 64, text


_instants = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))


@settings(max_examples=300, deadline=None)
@given(ms=st.integers(min_value=MIN_MS, max_value=MAX_MS))
def test_format_parse_round_trip_property(ms):
    text = format_utc(ms / 1000)
    assert text == _reference(ms)
    assert round(parse_rfc3339(text) * 1000) == ms
    assert format_utc(parse_rfc3339(text)) == text


@settings(max_examples=300, deadline=None)
@given(dt=_instants.map(lambda d: d.replace(tzinfo=timezone.utc)),
       offset=st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
       digits=st.sampled_from([0, 3, 6]),
       zulu=st.booleans(),
       lower=st.booleans())
def test_parse_property_against_datetime(dt, offset, digits, zulu, lower):
    try:
        dt.astimezone(timezone(timedelta(minutes=offset)))
    except OverflowError:                 # the local date would be before year 1 / after 9999
        return
    if digits == 3:
        dt = dt.replace(microsecond=dt.microsecond - dt.microsecond % 1000)
    elif digits == 0:
        dt = dt.replace(microsecond=0)
    text = _iso_with_offset(dt, offset, digits, zulu)
    if lower:
        text = text.lower()
    expected_us = (dt - EPOCH) // timedelta(microseconds=1)
    assert abs(parse_rfc3339(text) * 1e6 - expected_us) < 64
    assert is_rfc3339(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parse_never_raises_anything_but_value_error(text):
    try:
        value = parse_rfc3339(text)
    except ValueError:
        assert not is_rfc3339(text)
    else:
        assert isinstance(value, (int, float)) and is_rfc3339(text)
