"""Human durations: ``60s``, ``5m``, ``2h``, ``3d``, ``1w``, ``1h30m`` or a number of seconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Final

_UNIT_SECONDS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[smhdw]\s*)+$")


# Ten years: longer waits are mistakes, and far larger ones overflow datetime arithmetic.
MAX_SECONDS: Final = 3650 * 86400


class DurationError(ValueError):
    pass


def parse_duration(value: str | float) -> timedelta:
    """Parse a duration; a bare number means seconds. Zero and negatives are refused."""
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _WHOLE.match(text):
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
        else:
            raise DurationError(f"{value!r} is not a duration (use e.g. 60s, 5m, 2h, 3d)")
    if not math.isfinite(seconds) or seconds <= 0:
        raise DurationError(f"{value!r} is not a positive duration")
    if seconds > MAX_SECONDS:
        raise DurationError(f"{value!r} is longer than the maximum of 3650d")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """One exact unit, as people write it in decisions: ``60s``, ``90s``, ``5m``, ``2h``, ``3d``.

    Under two minutes stays in seconds ("not delivered within 60s" reads better than "1m").
    """
    seconds = delta.total_seconds()
    total = int(seconds)
    if total != seconds:
        return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"
    if total < 120:
        return f"{total}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total % size == 0:
            return f"{total // size}{unit}"
    return f"{total}s"
