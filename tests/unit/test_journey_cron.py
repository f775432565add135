"""Cron schedules for journey triggers: parsing, the next run on the contact's clock, and DST.

2026 clock changes used below:
  America/New_York  8 March 02:00 EST -> 03:00 EDT;   1 November 02:00 EDT -> 01:00 EST
  Europe/Kyiv      29 March 03:00 EET -> 04:00 EEST; 25 October 04:00 EEST -> 03:00 EET
  America/Santiago  6 September 00:00 -04 -> 01:00 -03 (the gap is at midnight)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaskad.domain.journeys import timing
from kaskad.domain.journeys.cron import CronSpec, parse_cron

NY = "America/New_York"
KYIV = "Europe/Kyiv"
ALL_DAYS = frozenset(range(7))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("* * * * *", "minutes", frozenset(range(60))),
        ("* * * * *", "hours", frozenset(range(24))),
        ("* * * * *", "days_of_month", frozenset(range(1, 32))),
        ("* * * * *", "months", frozenset(range(1, 13))),
        ("* * * * *", "days_of_week", ALL_DAYS),
        ("1,2 * * * *", "minutes", {1, 2}),
        ("1-5 * * * *", "minutes", {1, 2, 3, 4, 5}),
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("1-10/2 * * * *", "minutes", {1, 3, 5, 7, 9}),
        ("5/15 * * * *", "minutes", {5, 20, 35, 50}),
        ("*/100 * * * *", "minutes", {0}),
        ("0,30 9-17/4 * * *", "hours", {9, 13, 17}),
        ("0 0 */10 * *", "days_of_month", {1, 11, 21, 31}),
        ("0 0 1 jan-mar,DEC *", "months", {1, 2, 3, 12}),
        ("0 0 1 Jun *", "months", {6}),
        ("0 0 * * mon,wed-fri", "days_of_week", {1, 3, 4, 5}),
        ("0 0 * * MON", "days_of_week", {1}),
        ("0 0 * * 7", "days_of_week", {0}),
        ("0 0 * * 0,7", "days_of_week", {0}),
        ("0 0 * * 5-7", "days_of_week", {5, 6, 0}),
        ("0 0 * * fri-sun", "days_of_week", {5, 6, 0}),
        ("0 0 * * sun-sat", "days_of_week", ALL_DAYS),
        ("0 0 * * 0-7", "days_of_week", ALL_DAYS),
        ("0 0 * * */2", "days_of_week", {0, 2, 4, 6}),
        ("00 09 01 01 01", "hours", {9}),
    ],
)
def test_parse_cron_fields(text: str, field: str, expected: frozenset[int]) -> None:
    assert getattr(parse_cron(text), field) == frozenset(expected)


@pytest.mark.parametrize(
    ("text", "day_of_month", "day_of_week"),
    [
        ("* * * * *", False, False),
        ("0 9 1 * *", True, False),
        ("0 9 * * mon", False, True),
        ("0 9 1 * mon", True, True),
        ("0 9 */2 * mon", False, True),  # a leading * counts as unrestricted (Vixie cron)
        ("0 9 1-31 * mon", True, True),
    ],
)
def test_which_day_fields_are_restricted(text: str, day_of_month: bool, day_of_week: bool) -> None:
    spec = parse_cron(text)
    assert (spec.day_of_month_restricted, spec.day_of_week_restricted) == (
        day_of_month,
        day_of_week,
    )


def test_parse_cron_normalises_spaces() -> None:
    spec = parse_cron("  0   10 *\t* *  ")
    assert spec.text == "0 10 * * *"
    assert str(spec) == "0 10 * * *"
    assert spec == parse_cron("0 10 * * *")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", 'minute field "61" is out of range 0-59'),
        ("5,61 * * * *", 'minute field "5,61": "61" is out of range 0-59'),
        ("0-60 * * * *", 'minute field "0-60": "60" is out of range 0-59'),
        ("* 24 * * *", 'hour field "24" is out of range 0-23'),
        ("* * 0 * *", 'day-of-month field "0" is out of range 1-31'),
        ("* * 32 * *", 'day-of-month field "32" is out of range 1-31'),
        ("* * * 13 *", 'month field "13" is out of range 1-12'),
        ("* * * 0 *", 'month field "0" is out of range 1-12'),
        ("* * * * 8", 'day-of-week field "8" is out of range 0-7'),
        ("* * * * funday", 'day-of-week field "funday" is not a number or a name'),
        (
            "* * * * mon-funday",
            'day-of-week field "mon-funday": "funday" is not a number or a name',
        ),
        ("* * * foo *", 'month field "foo" is not a number or a name'),
        ("mon * * * *", 'minute field "mon" is not a number'),
        ("* * * * */mon", 'day-of-week field "*/mon": "mon" is not a number'),
        ("1.5 * * * *", 'minute field "1.5" is not a number'),
        ("٣ * * * *", 'minute field "٣" is not a number'),
        ("*/0 * * * *", 'minute field "*/0": "0" is a step below 1'),
        ("*/x * * * *", 'minute field "*/x": "x" is not a number'),
        ("*/ * * * *", 'minute field "*/" is missing a number'),
        ("-5 * * * *", 'minute field "-5" is missing a number'),
        ("5-1 * * * *", 'minute field "5-1" is a range that runs backwards (5 > 1)'),
        ("* * * * sat-mon", 'day-of-week field "sat-mon" is a range that runs backwards (6 > 1)'),
        ("1,,2 * * * *", 'minute field "1,,2" has an empty list item'),
        (
            "* * * *",
            'cron "* * * *" has 4 fields; it needs 5: minute hour day-of-month month day-of-week',
        ),
        ("* * * * * *", 'cron "* * * * * *" has 6 fields'),
        ("@daily", 'cron "@daily" has 1 field;'),
        ("", 'cron "" has 0 fields'),
        ("0 0 31 2 *", 'day-of-month field "31" never occurs in month field "2"'),
        ("0 0 30,31 feb *", 'day-of-month field "30,31" never occurs in month field "feb"'),
        ("0 0 31 apr,jun,sep,nov *", 'day-of-month field "31" never occurs in month field'),
    ],
    ids=repr,
)
def test_parse_cron_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_cron(text)


@pytest.mark.parametrize(
    "text",
    [
        "0 0 29 2 *",  # leap years only, but it does come round
        "0 0 31 2 mon",  # with a day of week, every Monday in February fires
        "0 0 31 1-2 *",
        "0 0 30 * *",
    ],
)
def test_parse_cron_accepts_days_that_exist_somewhere(text: str) -> None:
    assert parse_cron(text).text == text


@pytest.mark.parametrize(
    ("text", "zone", "now", "expected"),
    [
        pytest.param("0 10 * * *", "UTC", utc(2026, 6, 1, 9, 59), utc(2026, 6, 1, 10), id="soon"),
        pytest.param(
            "0 10 * * *", "UTC", utc(2026, 6, 1, 10), utc(2026, 6, 2, 10), id="strictly-after"
        ),
        pytest.param(
            "0 10 * * *",
            "UTC",
            utc(2026, 6, 1, 9, 59, 59) + timedelta(microseconds=999_999),
            utc(2026, 6, 1, 10),
            id="a-microsecond-before",
        ),
        pytest.param(
            "0 10 * * *", "UTC", utc(2026, 6, 1, 10, 0, 30), utc(2026, 6, 2, 10), id="mid-minute"
        ),
        pytest.param("*/15 * * * *", "UTC", utc(2026, 6, 1, 10, 7), utc(2026, 6, 1, 10, 15)),
        pytest.param("*/15 * * * *", "UTC", utc(2026, 6, 1, 10, 45), utc(2026, 6, 1, 11)),
        pytest.param("*/15 * * * *", "UTC", utc(2026, 6, 1, 23, 50), utc(2026, 6, 2)),
        pytest.param("* * * * *", "UTC", utc(2026, 12, 31, 23, 59), utc(2027, 1, 1)),
        pytest.param(
            "0 9 * * mon-fri", "UTC", utc(2026, 6, 5, 10), utc(2026, 6, 8, 9), id="weekdays"
        ),
        pytest.param("0 9 * * 0", "UTC", utc(2026, 6, 5, 10), utc(2026, 6, 7, 9), id="sun-as-0"),
        pytest.param("0 9 * * 7", "UTC", utc(2026, 6, 5, 10), utc(2026, 6, 7, 9), id="sun-as-7"),
        pytest.param("0 9 * * SUN", "UTC", utc(2026, 6, 5, 10), utc(2026, 6, 7, 9), id="SUN"),
        # Both day fields restricted: either one fires.
        pytest.param("0 9 1 * mon", "UTC", utc(2026, 6, 2, 10), utc(2026, 6, 8, 9), id="or-mon"),
        pytest.param("0 9 1 * mon", "UTC", utc(2026, 8, 31, 10), utc(2026, 9, 1, 9), id="or-1st"),
        pytest.param(
            "0 12 31 2 mon", "UTC", utc(2026, 1, 1), utc(2026, 2, 2, 12), id="or-february-mondays"
        ),
        # Day of month starts with *: both must match (odd days that are Mondays).
        pytest.param(
            "0 9 */2 * mon", "UTC", utc(2026, 6, 1, 10), utc(2026, 6, 15, 9), id="and-star-step"
        ),
        pytest.param("0 9 13 * *", "UTC", utc(2026, 6, 1), utc(2026, 6, 13, 9), id="13th"),
        pytest.param("0 0 1 jan *", "UTC", utc(2026, 6, 1), utc(2027, 1, 1), id="new-year"),
        pytest.param("0 0 29 2 *", "UTC", utc(2026, 3, 1), utc(2028, 2, 29), id="leap-day"),
        pytest.param("0 0 29 2 *", "UTC", utc(2097, 3, 1), utc(2104, 2, 29), id="leap-day-2104"),
        pytest.param(
            "59 23 31 12 *", "UTC", utc(2026, 12, 31, 23, 59), utc(2027, 12, 31, 23, 59), id="nye"
        ),
        pytest.param("0 0 31 * *", "UTC", utc(2026, 4, 1), utc(2026, 5, 31), id="31st"),
        # The contact's clock.
        pytest.param("0 10 * * 1", KYIV, utc(2026, 6, 1, 6), utc(2026, 6, 1, 7), id="kyiv-mon"),
        pytest.param(
            "0 10 * * *", "Asia/Kathmandu", utc(2026, 6, 1), utc(2026, 6, 1, 4, 15), id="ktm"
        ),
        # Spring forward: local times in the gap do not fire that day.
        pytest.param("30 2 * * *", NY, utc(2026, 3, 7, 8), utc(2026, 3, 9, 6, 30), id="ny-gap"),
        pytest.param("0 2 * * *", NY, utc(2026, 3, 7, 8), utc(2026, 3, 9, 6), id="ny-gap-start"),
        pytest.param("0 3 * * *", NY, utc(2026, 3, 8, 5), utc(2026, 3, 8, 7), id="ny-gap-end"),
        pytest.param("59 1 * * *", NY, utc(2026, 3, 8, 5), utc(2026, 3, 8, 6, 59), id="ny-1:59"),
        pytest.param(
            "*/30 * * * *", NY, utc(2026, 3, 8, 6, 45), utc(2026, 3, 8, 7), id="ny-gap-every-30m"
        ),
        pytest.param("30 3 * * *", KYIV, utc(2026, 3, 28, 22), utc(2026, 3, 30, 0, 30), id="kyiv"),
        pytest.param(
            "0 0 * * *", "America/Santiago", utc(2026, 9, 5, 12), utc(2026, 9, 7, 3), id="scl-0:00"
        ),
        # Fall back: a repeated local time fires once, at its first occurrence.
        pytest.param("30 1 * * *", NY, utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30), id="ny-1st"),
        pytest.param(
            "30 1 * * *", NY, utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), id="ny-no-repeat"
        ),
        pytest.param(
            "*/30 * * * *", NY, utc(2026, 11, 1, 5, 45), utc(2026, 11, 1, 7), id="ny-skip-2nd-hour"
        ),
        pytest.param(
            "*/30 * * * *", NY, utc(2026, 11, 1, 6, 10), utc(2026, 11, 1, 7), id="ny-in-2nd-hour"
        ),
        pytest.param(
            "30 3 * * *", KYIV, utc(2026, 10, 24, 21), utc(2026, 10, 25, 0, 30), id="kyiv-1st"
        ),
        pytest.param(
            "30 3 * * *", KYIV, utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), id="kyiv-once"
        ),
    ],
)
def test_next_after(text: str, zone: str, now: datetime, expected: datetime) -> None:
    result = parse_cron(text).next_after(now, zone)
    assert result == expected
    assert result.tzinfo is UTC


def test_next_after_takes_a_zoneinfo_and_any_aware_now() -> None:
    now = datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo(KYIV))
    assert parse_cron("0 10 * * *").next_after(now, ZoneInfo(KYIV)) == utc(2026, 6, 1, 7)


def test_next_after_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_cron("0 10 * * *").next_after(datetime(2026, 6, 1), "UTC")


def test_next_after_gives_up_after_the_search_window() -> None:
    # parse_cron refuses this spec; built by hand it must still end with a clear error.
    never = CronSpec(
        text="0 0 31 2 *",
        minutes=frozenset({0}),
        hours=frozenset({0}),
        days_of_month=frozenset({31}),
        months=frozenset({2}),
        days_of_week=ALL_DAYS,
        day_of_month_restricted=True,
        day_of_week_restricted=False,
    )
    with pytest.raises(ValueError, match=r'cron "0 0 31 2 \*" has no time within 10 years'):
        never.next_after(utc(2026, 1, 1), "UTC")


@pytest.mark.parametrize("now", [utc(9999, 6, 1), utc(9999, 12, 31, 12)], ids=str)
def test_next_after_at_the_end_of_the_calendar(now: datetime) -> None:
    with pytest.raises(ValueError, match="has no time within"):
        parse_cron("0 0 1 1 *").next_after(now, "UTC")


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        ("0 0 29 2 *", utc(2097, 3, 1), utc(2104, 2, 29)),
        ("59 23 31 12 *", utc(2026, 1, 1), utc(2026, 12, 31, 23, 59)),
        ("0 9 1 jan mon", utc(2026, 1, 1, 10), utc(2026, 1, 5, 9)),
        ("0 0 13 * fri", utc(2026, 1, 1), utc(2026, 1, 2)),
    ],
)
def test_next_after_steps_by_day_not_by_minute(
    monkeypatch: pytest.MonkeyPatch, text: str, now: datetime, expected: datetime
) -> None:
    calls: list[datetime] = []
    real: Callable[..., datetime | None] = timing.first_instant_at

    def counting(wall: datetime, zone: object) -> datetime | None:
        calls.append(wall)
        return real(wall, zone)

    monkeypatch.setattr("kaskad.domain.journeys.cron.first_instant_at", counting)
    assert parse_cron(text).next_after(now, "UTC") == expected
    # Only matching days reach the minute level, and there the first candidate wins.
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("text", "day", "fires"),
    [
        ("0 9 1 * mon", date(2026, 6, 1), True),  # the 1st and a Monday
        ("0 9 1 * mon", date(2026, 9, 1), True),  # the 1st, a Tuesday
        ("0 9 1 * mon", date(2026, 6, 8), True),  # a Monday
        ("0 9 1 * mon", date(2026, 6, 9), False),
        ("0 9 1 * *", date(2026, 6, 8), False),
        ("0 9 * * mon", date(2026, 9, 1), False),
        ("0 9 */2 * mon", date(2026, 6, 8), False),  # a Monday, but even
        ("0 9 */2 * mon", date(2026, 6, 15), True),
        ("0 9 1 jul mon", date(2026, 6, 1), False),  # month always applies
    ],
    ids=str,
)
def test_matches_day(text: str, day: date, fires: bool) -> None:
    assert parse_cron(text).matches_day(day) is fires


# --- properties -----------------------------------------------------------------------------

ZONES = [NY, KYIV, "UTC", "Asia/Kathmandu", "Australia/Lord_Howe", "America/Santiago"]
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


def _items(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    single = number.map(str)
    span = st.tuples(number, number).map(lambda ab: f"{min(ab)}-{max(ab)}")
    step = st.integers(1, high - low + 1)
    stepped = st.tuples(st.one_of(st.just("*"), span), step).map(lambda s: f"{s[0]}/{s[1]}")
    return st.one_of(single, span, stepped)


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    items = st.lists(_items(low, high), min_size=1, max_size=3).map(",".join)
    return st.one_of(st.just("*"), items)


cron_texts = st.tuples(
    _field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 7)
).map(" ".join)


def _fires_at(spec: CronSpec, local: datetime) -> bool:
    if local.minute not in spec.minutes or local.hour not in spec.hours:
        return False
    if local.month not in spec.months:
        return False
    by_month = local.day in spec.days_of_month
    by_week = (local.weekday() + 1) % 7 in spec.days_of_week
    if spec.day_of_month_restricted and spec.day_of_week_restricted:
        return by_month or by_week
    return by_month and by_week


@settings(max_examples=300, deadline=None)
@given(text=cron_texts, now=instants, zone=st.sampled_from(ZONES))
def test_next_after_is_later_and_matches_on_the_local_clock(
    text: str, now: datetime, zone: str
) -> None:
    spec = parse_cron(text)
    result = spec.next_after(now, zone)
    assert result > now
    assert result.tzinfo is UTC
    assert (result.second, result.microsecond) == (0, 0)
    local = result.astimezone(ZoneInfo(zone))
    assert _fires_at(spec, local)
    assert local.fold == 0  # never the second pass of a repeated hour


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.frozensets(st.integers(0, 59), min_size=1, max_size=4),
    hours=st.frozensets(st.integers(0, 23), min_size=1, max_size=4),
    weekdays=st.none() | st.frozensets(st.integers(0, 6), min_size=1, max_size=3),
    now=instants,
    zone=st.sampled_from(ZONES),
)
def test_next_after_equals_a_minute_by_minute_scan(
    minutes: frozenset[int],
    hours: frozenset[int],
    weekdays: frozenset[int] | None,
    now: datetime,
    zone: str,
) -> None:
    def listed(values: frozenset[int]) -> str:
        return ",".join(str(v) for v in sorted(values))

    days = "*" if weekdays is None else listed(weekdays)
    text = f"{listed(minutes)} {listed(hours)} * * {days}"
    tz = ZoneInfo(zone)
    # The oracle walks real instants, so it never sees a skipped local time, and zoneinfo
    # marks the second pass of a repeated hour with fold=1.
    instant = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(16 * 24 * 60):
        local = instant.astimezone(tz)
        on_day = weekdays is None or (local.weekday() + 1) % 7 in weekdays
        if local.fold == 0 and local.minute in minutes and local.hour in hours and on_day:
            break
        instant += timedelta(minutes=1)
    else:
        pytest.fail(f"the scan found no time for {text!r}")
    assert parse_cron(text).next_after(now, zone) == instant
