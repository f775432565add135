"""The whitelist of functions a condition may call, and what each does with odd input.

A function never raises for data: given the wrong kind of value it answers null (or false, for
the ones that answer a question), so a condition stays false instead of failing a whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from kaskad.domain.conditions.values import member, to_datetime
from kaskad.domain.durations import DurationError, parse_duration

Args = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    arity: int
    apply: Callable[[Args, datetime | None], Any]
    summary: str  # for documentation and the "unknown function" hint
    needs_now: bool = False
    # Checks a literal first argument at parse time ("2 dayz", "2026-13-01"), so a typo in a
    # journey is refused when it is saved rather than silently false for every contact.
    check_literal: Callable[[object], str | None] | None = None


def _exists(args: Args, _now: datetime | None) -> bool:
    return args[0] is not None


def _lower(args: Args, _now: datetime | None) -> str | None:
    return args[0].lower() if isinstance(args[0], str) else None


def _upper(args: Args, _now: datetime | None) -> str | None:
    return args[0].upper() if isinstance(args[0], str) else None


def _len(args: Args, _now: datetime | None) -> int | None:
    value = args[0]
    return len(value) if isinstance(value, str | list | tuple | Mapping) else None


def _starts_with(args: Args, _now: datetime | None) -> bool:
    text, prefix = args
    return isinstance(text, str) and isinstance(prefix, str) and text.startswith(prefix)


def _ends_with(args: Args, _now: datetime | None) -> bool:
    text, suffix = args
    return isinstance(text, str) and isinstance(suffix, str) and text.endswith(suffix)


def _contains(args: Args, _now: datetime | None) -> bool:
    container, item = args
    return member(item, container) is True


def _date(args: Args, _now: datetime | None) -> datetime | None:
    return to_datetime(args[0])


def _since(seconds_per_unit: int) -> Callable[[Args, datetime | None], float | None]:
    def since(args: Args, now: datetime | None) -> float | None:
        if now is None:
            raise ValueError("days_since() and hours_since() need the current time: pass now=")
        then = to_datetime(args[0])
        if then is None:
            return None
        try:
            return (now - then).total_seconds() / seconds_per_unit
        except (ArithmeticError, TypeError):  # a date at the edge of time, a naive now
            return None

    return since


def _duration(args: Args, _now: datetime | None) -> int | float | None:
    value = args[0]
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        seconds = parse_duration(value).total_seconds()
    except DurationError:
        return None
    return int(seconds) if seconds.is_integer() else seconds


def _check_date(value: object) -> str | None:
    if isinstance(value, str) and to_datetime(value) is not None:
        return None
    shown = f'"{value}"' if isinstance(value, str) else "this"
    return f'{shown} is not a date — use ISO 8601, e.g. "2026-11-23" or "2026-11-23T10:00:00Z"'


def _check_duration(value: object) -> str | None:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return 'duration() takes a text such as "2d", "12h" or "30m"'
    try:
        parse_duration(value)
    except DurationError as exc:
        # The duration module quotes with repr(); conditions quote text the way they write it.
        return str(exc).replace(repr(value), f'"{value}"', 1)
    return None


FUNCTIONS: Final[Mapping[str, Function]] = {
    f.name: f
    for f in (
        Function("exists", 1, _exists, "true when the value is not null"),
        Function("lower", 1, _lower, "the text in lower case"),
        Function("upper", 1, _upper, "the text in upper case"),
        Function("len", 1, _len, "the length of a text, a list or a mapping"),
        Function("starts_with", 2, _starts_with, "true when the text starts with the prefix"),
        Function("ends_with", 2, _ends_with, "true when the text ends with the suffix"),
        Function("contains", 2, _contains, "true when the second value is in the first"),
        Function("date", 1, _date, "a date from an ISO 8601 text", check_literal=_check_date),
        Function(
            "days_since",
            1,
            _since(86400),
            "days from the date to now",
            needs_now=True,
            check_literal=_check_date,
        ),
        Function(
            "hours_since",
            1,
            _since(3600),
            "hours from the date to now",
            needs_now=True,
            check_literal=_check_date,
        ),
        Function("duration", 1, _duration, "a duration in seconds", check_literal=_check_duration),
    )
}
