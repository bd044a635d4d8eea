"""OCPP date-times: UTC with milliseconds out, any RFC 3339 offset in.

Plain arithmetic on epoch seconds (no datetime objects in the hot path) so the
module stays cheap and portable to MicroPython.
"""

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DIGITS = "0123456789"


def _is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_from_civil(y, m, d):
    # Howard Hinnant's days_from_civil: days since 1970-01-01 (proleptic Gregorian).
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def format_utc(epoch_seconds):
    """Epoch seconds -> '2026-11-24T10:15:30.123Z' (rounded to the millisecond)."""
    total_ms = int(epoch_seconds * 1000 + 0.5) if epoch_seconds >= 0 else int(epoch_seconds * 1000 - 0.5)
    secs, ms = divmod(total_ms, 1000)
    days, rem = divmod(secs, 86400)
    y, m, d = _civil_from_days(days)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (y, m, d, hh, mm, ss, ms)


def _num(text, start, count):
    value = 0
    for i in range(start, start + count):
        c = text[i]
        if c not in _DIGITS:
            raise ValueError
        value = value * 10 + (ord(c) - 48)
    return value


def parse_rfc3339(text):
    """RFC 3339 date-time -> epoch seconds (float). Raises ValueError.

    Accepts 'T'/'t', 'Z'/'z' and any +hh:mm offset, any number of fraction
    digits; rejects leap seconds, year 0 and impossible days, as the official
    schema's date-time check does.
    """
    if not isinstance(text, str):
        raise ValueError("not a string")
    try:
        n = len(text)
        if n < 20 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt" \
                or text[13] != ":" or text[16] != ":":
            raise ValueError
        year = _num(text, 0, 4)
        month = _num(text, 5, 2)
        day = _num(text, 8, 2)
        hour = _num(text, 11, 2)
        minute = _num(text, 14, 2)
        second = _num(text, 17, 2)
        i = 19
        fraction = 0.0
        if text[i] == ".":
            j = i + 1
            while j < n and text[j] in _DIGITS:
                j += 1
            if j == i + 1:
                raise ValueError
            fraction = float("0" + text[i:j])
            i = j
        zone = text[i:]
        if zone in ("Z", "z"):
            offset = 0
        elif len(zone) == 6 and zone[0] in "+-" and zone[3] == ":":
            oh = _num(zone, 1, 2)
            om = _num(zone, 4, 2)
            if oh > 23 or om > 59:
                raise ValueError
            offset = (oh * 3600 + om * 60) * (1 if zone[0] == "+" else -1)
        else:
            raise ValueError
        if year == 0 or not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
            raise ValueError
        max_day = 29 if (month == 2 and _is_leap(year)) else _DAYS_IN_MONTH[month - 1]
        if not 1 <= day <= max_day:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError("not an RFC 3339 date-time: %r" % (text[:40],))
    days = _days_from_civil(year, month, day)
    return days * 86400 + hour * 3600 + minute * 60 + second + fraction - offset


def is_rfc3339(text):
    try:
        parse_rfc3339(text)
        return True
    except ValueError:
        return False
