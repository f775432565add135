"""Five-field cron schedules read on the contact's own clock.

``minute hour day-of-month month day-of-week``, as in crontab(5): ``*``, lists ``1,2``,
ranges ``1-5``, steps ``*/15``, ``1-10/2`` and ``5/15`` (from 5 to the end of the field),
names ``jan``-``dec`` and ``sun``-``sat`` in any case, and both ``0`` and ``7`` for Sunday.

Day of month and day of week follow Vixie cron (cronie, the cron on most Linux systems): when
both fields are restricted a day matches either of them ("0 9 1 * mon" fires on the 1st and
on every Monday); a field that starts with ``*`` (``*`` or ``*/2``) counts as unrestricted,
and then both must match.

Clock changes: a local time that a spring-forward gap skips does not fire that day (unlike
``wait: {until}``, which goes on when the clock jumps past it: a wait must end, a schedule
may miss a beat), and a local time that a fall-back repeats fires once, at its first
occurrence, so a contact never enters twice for one scheduled time. That includes frequent
schedules: "*/30 * * * *" is silent during the repeated hour.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from kaskad.domain.journeys.timing import Zone, as_utc, first_instant_at, to_zone

# Ten years: far enough for every possible schedule (29 February can be 8 years away, as
# from 2096 to 2104) and short enough to answer at once.
SEARCH_YEARS: Final = 10

_MONTHS: Final[Mapping[str, int]] = {
    name.lower(): number for number, name in enumerate(calendar.month_abbr) if name
}
_WEEKDAYS: Final[Mapping[str, int]] = {
    "sun": 0,
    "mon": 1,
    "tue": 2,
    "wed": 3,
    "thu": 4,
    "fri": 5,
    "sat": 6,
}
# The longest each month can be; February has 29 days in leap years.
_LONGEST_MONTH: Final[Mapping[int, int]] = {
    month: 29 if month == 2 else calendar.monthrange(2001, month)[1] for month in range(1, 13)
}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_MINUTE: Final = _Field("minute", 0, 59, {})
_HOUR: Final = _Field("hour", 0, 23, {})
_DAY_OF_MONTH: Final = _Field("day-of-month", 1, 31, {})
_MONTH: Final = _Field("month", 1, 12, _MONTHS)
_DAY_OF_WEEK: Final = _Field("day-of-week", 0, 7, _WEEKDAYS)


class _FieldError(ValueError):
    """A problem in a field; ``parse_cron`` names the field. ``token`` is the culprit, if known."""

    def __init__(self, problem: str, token: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.token = token


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A parsed schedule: the sets of values each field allows.

    Days of the week run from 0 (Sunday) to 6 (Saturday); a 7 in the text is stored as 0.
    """

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    day_of_month_restricted: bool
    day_of_week_restricted: bool

    def __str__(self) -> str:
        return self.text

    def matches_day(self, day: date) -> bool:
        """Whether the schedule fires on this calendar day (at some time of it)."""
        if day.month not in self.months:
            return False
        by_month = day.day in self.days_of_month
        by_week = day.isoweekday() % 7 in self.days_of_week
        if self.day_of_month_restricted and self.day_of_week_restricted:
            return by_month or by_week
        return by_month and by_week

    def next_after(self, now: datetime, zone: Zone) -> datetime:
        """The first matching local minute strictly after ``now``, as an aware UTC datetime.

        Walks the contact's calendar a day at a time, then only the hours and minutes the
        schedule names, so a yearly schedule costs a few hundred cheap day checks rather than
        half a million minute checks. Raises ``ValueError`` if nothing matches within
        ``SEARCH_YEARS``.
        """
        now = as_utc(now)
        tz = to_zone(zone)
        start = now.astimezone(tz)
        hours = sorted(self.hours)
        minutes = sorted(self.minutes)
        day = start.date()
        try:
            last_day = day + timedelta(days=366 * SEARCH_YEARS)
        except OverflowError:
            last_day = date.max
        while day <= last_day:
            if self.matches_day(day):
                # A wall time before the clock's current reading has already happened (its
                # first occurrence, at least), so the first day starts at the current hour.
                first_day = day == start.date()
                for hour in hours:
                    if first_day and hour < start.hour:
                        continue
                    for minute in minutes:
                        if first_day and hour == start.hour and minute < start.minute:
                            continue
                        wall = datetime.combine(day, time(hour, minute))
                        instant = first_instant_at(wall, tz)
                        if instant is not None and instant > now:
                            return instant
            if day >= last_day:
                break
            if day.month in self.months:
                day += timedelta(days=1)
            else:
                day = _first_of_next_month(day)
        raise ValueError(f'cron "{self.text}" has no time within {SEARCH_YEARS} years of {now}')


def _first_of_next_month(day: date) -> date:
    if day.month == 12:
        if day.year == date.max.year:
            return date.max
        return date(day.year + 1, 1, 1)
    return date(day.year, day.month + 1, 1)


def parse_cron(text: str) -> CronSpec:
    """Parse a five-field cron expression; ``ValueError`` names the field that is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a cron expression")
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f'cron "{text.strip()}" has {len(fields)} field{"" if len(fields) == 1 else "s"}; '
            "it needs 5: minute hour day-of-month month day-of-week"
        )
    minute, hour, day_of_month, month, day_of_week = fields
    days_of_week = frozenset(d % 7 for d in _parse_field(_DAY_OF_WEEK, day_of_week))
    spec = CronSpec(
        text=" ".join(fields),
        minutes=_parse_field(_MINUTE, minute),
        hours=_parse_field(_HOUR, hour),
        days_of_month=_parse_field(_DAY_OF_MONTH, day_of_month),
        months=_parse_field(_MONTH, month),
        days_of_week=days_of_week,
        day_of_month_restricted=not day_of_month.startswith("*"),
        day_of_week_restricted=not day_of_week.startswith("*"),
    )
    _check_day_exists(spec, day_of_month, month)
    return spec


def _check_day_exists(spec: CronSpec, day_of_month: str, month: str) -> None:
    """Refuse "0 0 31 2 *" when it is written, not when its first run is searched for.

    Only a day-of-month that must match on its own can be impossible: with a day-of-week in
    play, some weekday comes round in every month.
    """
    if spec.day_of_month_restricted and spec.day_of_week_restricted:
        return
    if any(day <= _LONGEST_MONTH[m] for m in spec.months for day in spec.days_of_month):
        return
    raise ValueError(f'day-of-month field "{day_of_month}" never occurs in month field "{month}"')


def _parse_field(field: _Field, text: str) -> frozenset[int]:
    values: set[int] = set()
    try:
        for part in text.split(","):
            values.update(_parse_part(field, part))
    except _FieldError as error:
        where = f'{field.name} field "{text}"'
        if error.token is not None and error.token != text:
            where += f': "{error.token}"'
        raise ValueError(f"{where} {error.problem}") from None
    return frozenset(values)


def _parse_part(field: _Field, part: str) -> range:
    if not part:
        raise _FieldError("has an empty list item")
    span, slash, step_text = part.partition("/")
    step = 1
    if slash:
        step = _number(step_text, "a number")
        if step < 1:
            raise _FieldError("is a step below 1", step_text)
    if span == "*":
        return range(field.low, field.high + 1, step)
    first_text, dash, last_text = span.partition("-")
    first = _value(field, first_text)
    if dash:
        last = _value(field, last_text)
        if field is _DAY_OF_WEEK and last == 0 and first > 0:
            last = 7  # "fri-sun": Sunday closes the week as 7
        if last < first:
            raise _FieldError(f"is a range that runs backwards ({first} > {last})", span)
    elif slash:
        last = field.high  # "5/15": from 5 to the end of the field
    else:
        last = first
    return range(first, last + 1, step)


def _value(field: _Field, text: str) -> int:
    named = field.names.get(text.lower())
    if named is not None:
        return named
    number = _number(text, "a number" + (" or a name" if field.names else ""))
    if not field.low <= number <= field.high:
        raise _FieldError(f"is out of range {field.low}-{field.high}", text)
    return number


def _number(text: str, expected: str) -> int:
    if not text:
        raise _FieldError(f"is missing {expected}")
    if not text.isascii() or not text.isdigit():
        raise _FieldError(f"is not {expected}", text)
    return int(text)
