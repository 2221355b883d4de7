"""Durations as people write them: `10s`, `500ms`, `1m30s`, `1h 30m`, ISO-8601 `PT10S`, or bare milliseconds.

Query parameters, schedules and the server's config file all read them, so the parser is vocabulary,
at the bottom of the layers (it imports only the standard library).
"""

from __future__ import annotations

import math
import re

_UNIT_MS = {
    "ms": 1,
    "msec": 1,
    "millis": 1,
    "millisecond": 1,
    "milliseconds": 1,
    "s": 1000,
    "sec": 1000,
    "secs": 1000,
    "second": 1000,
    "seconds": 1000,
    "m": 60_000,
    "min": 60_000,
    "mins": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hr": 3_600_000,
    "hrs": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "days": 86_400_000,
    "w": 604_800_000,
    "week": 604_800_000,
    "weeks": 604_800_000,
}
_FRIENDLY_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")
_ISO = re.compile(
    r"P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)
_ISO_MS = {"weeks": 604_800_000, "days": 86_400_000, "hours": 3_600_000, "minutes": 60_000, "seconds": 1000}


MAX_MS = 100 * 365 * 86_400_000  # a century: timers are u64 milliseconds, and nothing sensible waits longer


class BadDuration(ValueError):
    pass


def _checked(ms: float, text: str) -> int:
    if not math.isfinite(ms) or ms > MAX_MS:
        raise BadDuration(f"{text!r} is longer than the longest delay durio accepts (100 years)")
    return round(ms)


def parse_duration_ms(text: str) -> int:
    """Milliseconds in `text`; raises BadDuration saying what it expected."""
    value = text.strip()
    if not value:
        raise BadDuration("the duration is empty")
    if value.isascii() and value.isdigit():
        return _checked(int(value), text)
    if value[0] in "pP":
        match = _ISO.fullmatch(value)
        if match is None or not any(match.groupdict().values()) or value.upper().endswith("T"):
            raise BadDuration(f"{text!r} is not an ISO-8601 duration such as PT10S (years and months are not allowed)")
        return _checked(sum(float(v) * _ISO_MS[k] for k, v in match.groupdict().items() if v), text)
    if not value.isascii():
        raise BadDuration(f"{text!r} is not a duration: use forms like 10s, 500ms, 1m30s, PT10S, or a number of milliseconds")
    total = 0.0
    position = 0
    while position < len(value):
        match = _FRIENDLY_PART.match(value, position)
        if match is None or match.group(2).lower() not in _UNIT_MS:
            raise BadDuration(f"{text!r} is not a duration: use forms like 10s, 500ms, 1m30s, PT10S, or a number of milliseconds")
        total += float(match.group(1)) * _UNIT_MS[match.group(2).lower()]
        position = match.end()
    return _checked(total, text)
