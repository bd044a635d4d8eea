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


# "00".."99" -> 0..99: one lookup both checks for two ASCII digits and reads them
# (int() alone would also take " 1", "+1", "1_0" or "\u0663").
_TWO_DIGITS = {}
for _i in range(100):
    _TWO_DIGITS["%02d" % _i] = _i
del _i


def _parts(text):
    """RFC 3339 date-time -> (year, month, day, hour, minute, second, fraction
    text ('' or '.ddd'), offset seconds), or None if it is not one.

    Slices and table lookups instead of a loop over characters: this runs for
    every date-time field of every message."""
    n = len(text)
    if n < 20 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt" \
            or text[13] != ":" or text[16] != ":":
        return None
    two = _TWO_DIGITS.get
    century = two(text[0:2])
    year = two(text[2:4])
    month = two(text[5:7])
    day = two(text[8:10])
    hour = two(text[11:13])
    minute = two(text[14:16])
    second = two(text[17:19])
    if century is None or year is None or month is None or day is None or hour is None \
            or minute is None or second is None:
        return None
    last = text[-1]
    if last == "Z" or last == "z":
        zone = n - 1
        offset = 0
    else:
        zone = n - 6   # "+hh:mm"
        if zone < 19 or text[n - 3] != ":":
            return None
        oh = two(text[n - 5:n - 3])
        om = two(text[n - 2:])
        if oh is None or om is None or oh > 23 or om > 59:
            return None
        sign = text[zone]
        if sign == "+":
            offset = oh * 3600 + om * 60
        elif sign == "-":
            offset = -(oh * 3600 + om * 60)
        else:
            return None
    if zone == 19:
        fraction = ""
    else:
        fraction = text[19:zone]
        if fraction[0] != "." or len(fraction) == 1 or fraction[1:].strip(_DIGITS):
            return None
    year += century * 100
    if year == 0 or not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
        return None
    if day > 28 or day == 0:
        max_day = 29 if (month == 2 and _is_leap(year)) else _DAYS_IN_MONTH[month - 1]
        if not 1 <= day <= max_day:
            return None
    return year, month, day, hour, minute, second, fraction, offset


def parse_rfc3339(text):
    """RFC 3339 date-time -> epoch seconds (float). Raises ValueError.

    Accepts 'T'/'t', 'Z'/'z' and any +hh:mm offset, any number of fraction
    digits; rejects leap seconds, year 0 and impossible days, as the official
    schema's date-time check does.
    """
    if not isinstance(text, str):
        raise ValueError("not a string")
    parts = _parts(text)
    if parts is None:
        raise ValueError("not an RFC 3339 date-time: %r" % (text[:40],))
    year, month, day, hour, minute, second, fraction, offset = parts
    fraction = float("0" + fraction) if fraction else 0.0
    days = _days_from_civil(year, month, day)
    return days * 86400 + hour * 3600 + minute * 60 + second + fraction - offset


def is_rfc3339(text):
    return isinstance(text, str) and _parts(text) is not None
