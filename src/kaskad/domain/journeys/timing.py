"""Local wall-clock times for journeys: "the next 10:00", "3 days before a date at 10:00".

Runs are stored and compared in UTC, but people schedule in the contact's own time zone. Where
clocks change, some local times are skipped and some happen twice, so every conversion here
states what it does then:

* a local time that does not exist (spring forward: 02:30 is skipped) becomes the first
  instant after the gap, 03:00 local, because that is the first moment the clock shows
  02:30 *or later*;
* a local time that happens twice (fall back: 01:30 comes round again) means its first
  occurrence, so nothing is sent twice.

Everything takes the current time from the caller and returns aware UTC datetimes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

from kaskad.domain.contacts import validate_timezone

Zone = tzinfo | str
"""A contact's time zone: a ``ZoneInfo`` (or any aware ``tzinfo``) or an IANA name."""

_TIME_OF_DAY = re.compile(r"^\s*([01]?[0-9]|2[0-3]):([0-5][0-9])\s*$")
_SECOND: Final = timedelta(seconds=1)


def to_zone(zone: Zone) -> tzinfo:
    """The ``tzinfo`` for a zone; a name is checked (and an old name such as Europe/Kiev renamed).

    Raises ``ValueError`` for an unknown name.
    """
    if isinstance(zone, str):
        return ZoneInfo(validate_timezone(zone.strip()))
    return zone


def as_utc(value: datetime, what: str = "now") -> datetime:
    """``value`` in UTC; a naive datetime is refused because its instant is unknown."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value.isoformat()}")
    return value.astimezone(UTC)


def parse_time_of_day(text: str) -> time:
    """Parse ``HH:MM`` on a 24-hour clock ("10:00", "9:30", "23:59")."""
    if not isinstance(text, str):
        # YAML 1.1 reads an unquoted 10:00 as the base-60 integer 600.
        raise ValueError(f'{text!r} is not a time of day (write it quoted, e.g. "10:00")')
    match = _TIME_OF_DAY.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time of day (use HH:MM from 00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def first_instant_at(wall: datetime, zone: Zone) -> datetime | None:
    """The first instant (UTC) at which the local clock shows ``wall``; None if a gap skips it.

    ``wall`` is a naive local wall-clock time. When it happens twice, the first occurrence
    (``fold=0``, the offset from before the change) is the answer.
    """
    tz = to_zone(zone)
    naive = wall.replace(tzinfo=None)
    instant = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return instant


def first_instant_at_or_after(wall: datetime, zone: Zone) -> datetime:
    """The first instant (UTC) at which the local clock shows ``wall`` or a later time.

    The same as ``first_instant_at`` except in a spring-forward gap, where it is the instant
    the clock jumps (02:30 on a day that goes from 02:00 to 03:00 gives 03:00 local).
    """
    tz = to_zone(zone)
    exact = first_instant_at(wall, tz)
    if exact is not None:
        return exact
    return _end_of_gap(wall.replace(tzinfo=None), tz)


def _end_of_gap(wall: datetime, tz: tzinfo) -> datetime:
    """The instant of the clock change that skips ``wall``.

    Read with the offset from after the change, ``wall`` falls before the change; read with
    the offset from before it, after. The change lies between the two readings, at most a few
    hours apart, so halving the interval down to a second finds it; zoneinfo does not expose
    its transition table.
    """
    early = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    late = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    early, late = min(early, late), max(early, late)
    before = early.astimezone(tz).utcoffset()
    while late - early > _SECOND:
        middle = early + timedelta(seconds=(late - early).total_seconds() // 2)
        if middle.astimezone(tz).utcoffset() == before:
            early = middle
        else:
            late = middle
    return late


def next_time_of_day(now: datetime, at: time, zone: Zone) -> datetime:
    """The first instant at or after ``now`` when the contact's clock shows ``at`` (UTC).

    "At or after": a run that reaches ``wait: {until: "10:00"}`` at exactly 10:00 local goes
    on at once rather than waiting a day; one second later it waits for tomorrow's 10:00.
    Seconds and microseconds of ``at`` are kept, though journey times are whole minutes.
    """
    now = as_utc(now)
    tz = to_zone(zone)
    today = now.astimezone(tz).date()
    # Yesterday is checked too: a gap at local midnight can push yesterday's time into today.
    for days in (-1, 0, 1, 2):
        candidate = first_instant_at_or_after(datetime.combine(today, at) + timedelta(days), tz)
        if candidate >= now:
            return candidate
    raise AssertionError("unreachable: tomorrow's time of day is always after now")


def relative_to_date(
    value: str | date | datetime | None,
    offset: timedelta,
    at: time | None,
    zone: Zone,
) -> datetime | None:
    """The instant (UTC) ``offset`` from the calendar date in ``value``, at local time ``at``.

    For ``{attribute: tariff_change_date, offset: -3d, at: "10:00"}``: the attribute's date,
    3 calendar days earlier, at 10:00 on the contact's clock (midnight when ``at`` is None).
    ``value`` is an ISO date ("2026-12-01"), an ISO datetime (an aware one counts on the
    contact's calendar; a naive one is already a local wall time) or a date/datetime object.

    The offset moves the local wall clock, not elapsed time, so "-3d" lands at the same local
    time even when a clock change lies in between. The result may be in the past; the caller
    decides what that means. None when ``value`` is missing or not a date, so the caller can
    record why the contact was skipped.
    """
    tz = to_zone(zone)
    day = _calendar_date(value, tz)
    if day is None:
        return None
    try:
        wall = datetime.combine(day, at or time(0, 0)) + offset
    except OverflowError:
        return None
    return first_instant_at_or_after(wall, tz)


def _calendar_date(value: object, tz: tzinfo) -> date | None:
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.date()
        try:
            return value.astimezone(tz).date()
        except OverflowError:
            return None
    if isinstance(value, date):
        return value
    return None
