"""Journey wall-clock times: the next 10:00 and dates relative to an attribute, across DST.

2026 clock changes used below:
  America/New_York  8 March 02:00 EST -> 03:00 EDT;   1 November 02:00 EDT -> 01:00 EST
  Europe/Kyiv      29 March 03:00 EET -> 04:00 EEST; 25 October 04:00 EEST -> 03:00 EET
  Asia/Kathmandu   +05:45 all year, UTC without changes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaskad.domain.journeys.timing import (
    first_instant_at,
    first_instant_at_or_after,
    next_time_of_day,
    parse_time_of_day,
    relative_to_date,
    to_zone,
)

NY = "America/New_York"
KYIV = "Europe/Kyiv"
KTM = "Asia/Kathmandu"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10:00", time(10, 0)),
        ("9:30", time(9, 30)),
        ("09:30", time(9, 30)),
        ("23:59", time(23, 59)),
        ("00:00", time(0, 0)),
        ("0:05", time(0, 5)),
        ("20:00", time(20, 0)),
        (" 7:05 ", time(7, 5)),
    ],
)
def test_parse_time_of_day(text: str, expected: time) -> None:
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10",
        "1000",
        "10:0",
        "10:000",
        "24:00",
        "10:60",
        "-1:00",
        "10:00:00",
        "10.00",
        "10:00am",
        "ten",
        "१०:००",  # Devanagari digits: \d would take them
        "10 :00",
    ],
    ids=repr,
)
def test_parse_time_of_day_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time of day") as caught:
        parse_time_of_day(text)
    assert repr(text) in str(caught.value)


def test_parse_time_of_day_explains_unquoted_yaml() -> None:
    # YAML 1.1 reads an unquoted 10:00 as 600 (base 60).
    with pytest.raises(ValueError, match=re.escape('quoted, e.g. "10:00"')):
        parse_time_of_day(600)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("zone", "now", "at", "expected"),
    [
        # Plain days.
        pytest.param(NY, utc(2026, 6, 1, 12), "10:00", utc(2026, 6, 1, 14), id="ny-later-today"),
        pytest.param(NY, utc(2026, 6, 1, 14), "10:00", utc(2026, 6, 1, 14), id="ny-exactly-now"),
        pytest.param(
            NY, utc(2026, 6, 1, 14, 0, 1), "10:00", utc(2026, 6, 2, 14), id="ny-a-second-late"
        ),
        pytest.param(NY, utc(2026, 6, 1, 3, 59), "0:00", utc(2026, 6, 1, 4), id="ny-midnight"),
        # New York spring forward: 02:00-02:59 on 8 March does not exist.
        pytest.param(NY, utc(2026, 3, 8, 5), "2:30", utc(2026, 3, 8, 7), id="ny-gap-to-03:00"),
        pytest.param(NY, utc(2026, 3, 8, 5), "2:00", utc(2026, 3, 8, 7), id="ny-gap-start"),
        pytest.param(NY, utc(2026, 3, 8, 5), "3:00", utc(2026, 3, 8, 7), id="ny-gap-end"),
        pytest.param(NY, utc(2026, 3, 8, 5), "1:59", utc(2026, 3, 8, 6, 59), id="ny-before-gap"),
        pytest.param(NY, utc(2026, 3, 8, 7), "2:30", utc(2026, 3, 8, 7), id="ny-gap-at-jump"),
        pytest.param(NY, utc(2026, 3, 8, 7, 1), "2:30", utc(2026, 3, 9, 6, 30), id="ny-gap-past"),
        pytest.param(
            NY, utc(2026, 3, 7, 16), "10:00", utc(2026, 3, 8, 14), id="ny-10:00-after-spring"
        ),
        # New York fall back: 01:00-01:59 on 1 November happens twice.
        pytest.param(NY, utc(2026, 11, 1, 4), "1:30", utc(2026, 11, 1, 5, 30), id="ny-fold-first"),
        pytest.param(
            NY, utc(2026, 11, 1, 5, 45), "1:30", utc(2026, 11, 2, 6, 30), id="ny-fold-no-repeat"
        ),
        pytest.param(
            NY, utc(2026, 11, 1, 6, 10), "1:30", utc(2026, 11, 2, 6, 30), id="ny-fold-second-pass"
        ),
        pytest.param(
            NY, utc(2026, 10, 31, 15), "10:00", utc(2026, 11, 1, 15), id="ny-10:00-after-fall"
        ),
        # Kyiv spring forward: 03:00-03:59 on 29 March does not exist.
        pytest.param(KYIV, utc(2026, 3, 28, 22), "3:30", utc(2026, 3, 29, 1), id="kyiv-gap"),
        pytest.param(
            KYIV, utc(2026, 3, 28, 9), "10:00", utc(2026, 3, 29, 7), id="kyiv-10:00-after-spring"
        ),
        # Kyiv fall back: 03:00-03:59 on 25 October happens twice.
        pytest.param(
            KYIV, utc(2026, 10, 24, 21), "3:30", utc(2026, 10, 25, 0, 30), id="kyiv-fold-first"
        ),
        pytest.param(
            KYIV, utc(2026, 10, 25, 1, 15), "3:30", utc(2026, 10, 26, 1, 30), id="kyiv-fold-second"
        ),
        pytest.param(KYIV, utc(2026, 12, 1, 6), "10:00", utc(2026, 12, 1, 8), id="kyiv-winter"),
        # UTC and a quarter-hour offset.
        pytest.param(
            "UTC", utc(2026, 1, 1, 23, 59, 30), "23:59", utc(2026, 1, 2, 23, 59), id="utc-next-day"
        ),
        pytest.param("UTC", utc(2026, 12, 31, 23), "0:00", utc(2027, 1, 1), id="utc-new-year"),
        pytest.param(KTM, utc(2026, 6, 1), "9:30", utc(2026, 6, 1, 3, 45), id="ktm-today"),
        pytest.param(KTM, utc(2026, 6, 1, 4), "9:30", utc(2026, 6, 2, 3, 45), id="ktm-tomorrow"),
        pytest.param(KTM, utc(2026, 6, 1, 18, 15), "0:00", utc(2026, 6, 1, 18, 15), id="ktm-0:00"),
    ],
)
def test_next_time_of_day(zone: str, now: datetime, at: str, expected: datetime) -> None:
    result = next_time_of_day(now, parse_time_of_day(at), zone)
    assert result == expected
    assert result.tzinfo is UTC


def test_next_time_of_day_takes_a_zoneinfo_and_any_aware_now() -> None:
    now = datetime(2026, 6, 1, 8, 0, tzinfo=ZoneInfo(NY))  # 12:00 UTC
    result = next_time_of_day(now, time(10, 0), ZoneInfo(NY))
    assert result == utc(2026, 6, 1, 14)
    assert result.tzinfo is UTC


def test_next_time_of_day_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_time_of_day(datetime(2026, 6, 1, 8), time(10, 0), NY)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "not a zone"])
def test_unknown_zone_is_a_value_error(zone: str) -> None:
    with pytest.raises(ValueError, match="IANA time zone"):
        next_time_of_day(utc(2026, 6, 1), time(10, 0), zone)


def test_old_zone_names_still_work() -> None:
    assert to_zone("Europe/Kiev") == ZoneInfo(KYIV)
    assert next_time_of_day(utc(2026, 12, 1, 6), time(10), "Europe/Kiev") == utc(2026, 12, 1, 8)


@pytest.mark.parametrize(
    ("wall", "zone", "exact", "at_or_after"),
    [
        (datetime(2026, 6, 1, 10), NY, utc(2026, 6, 1, 14), utc(2026, 6, 1, 14)),
        (datetime(2026, 3, 8, 2, 30), NY, None, utc(2026, 3, 8, 7)),
        (datetime(2026, 3, 8, 2, 59, 59), NY, None, utc(2026, 3, 8, 7)),
        (datetime(2026, 11, 1, 1, 30), NY, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 5, 30)),
        (datetime(2026, 3, 29, 3, 0), KYIV, None, utc(2026, 3, 29, 1)),
        (datetime(2026, 10, 25, 3, 0), KYIV, utc(2026, 10, 25, 0), utc(2026, 10, 25, 0)),
        (datetime(2026, 6, 1, 0, 0), KTM, utc(2026, 5, 31, 18, 15), utc(2026, 5, 31, 18, 15)),
        (datetime(2026, 6, 1, 10), timezone(timedelta(hours=2)), utc(2026, 6, 1, 8), None),
    ],
    ids=str,
)
def test_first_instants(
    wall: datetime, zone: str, exact: datetime | None, at_or_after: datetime | None
) -> None:
    assert first_instant_at(wall, zone) == exact
    assert first_instant_at_or_after(wall, zone) == (at_or_after or exact)


@pytest.mark.parametrize(
    ("value", "offset", "at", "zone", "expected"),
    [
        pytest.param("2026-12-01", -3, "10:00", KYIV, utc(2026, 11, 28, 8), id="3-days-before"),
        pytest.param("2026-12-01", 0, None, "UTC", utc(2026, 12, 1), id="midnight-by-default"),
        pytest.param(" 2026-12-01 ", 0, None, "UTC", utc(2026, 12, 1), id="spaces"),
        pytest.param(date(2026, 12, 1), -3, "10:00", KYIV, utc(2026, 11, 28, 8), id="date-object"),
        pytest.param("2026-12-01", 1, "9:00", NY, utc(2026, 12, 2, 14), id="a-day-after"),
        pytest.param("2026-12-01", -1, "10:00", KTM, utc(2026, 11, 30, 4, 15), id="kathmandu"),
        # An aware datetime counts on the contact's calendar: 23:30 UTC is 01:30 next day.
        pytest.param(
            "2026-12-01T23:30:00+00:00", -3, "10:00", KYIV, utc(2026, 11, 29, 8), id="aware-iso"
        ),
        pytest.param(
            "2026-12-01T23:30:00Z", -3, "10:00", KYIV, utc(2026, 11, 29, 8), id="aware-iso-z"
        ),
        pytest.param(
            datetime(2026, 12, 1, 23, 30, tzinfo=UTC),
            0,
            "10:00",
            NY,
            utc(2026, 12, 1, 15),
            id="aware-object-west",
        ),
        # A naive datetime is already a local wall time.
        pytest.param("2026-12-01T23:30", -3, "10:00", KYIV, utc(2026, 11, 28, 8), id="naive-iso"),
        pytest.param(
            datetime(2026, 12, 1, 23, 30), 0, None, KYIV, utc(2026, 11, 30, 22), id="naive-object"
        ),
        # Calendar days across a clock change keep the local time.
        pytest.param("2026-03-31", -3, "10:00", KYIV, utc(2026, 3, 28, 8), id="before-spring"),
        pytest.param("2026-04-01", -3, "10:00", KYIV, utc(2026, 3, 29, 7), id="after-spring"),
        pytest.param("2026-11-04", -3, "10:00", NY, utc(2026, 11, 1, 15), id="after-fall"),
        pytest.param("2026-03-30", -1, "3:30", KYIV, utc(2026, 3, 29, 1), id="into-the-gap"),
        pytest.param("2026-11-03", -2, "1:30", NY, utc(2026, 11, 1, 5, 30), id="into-the-fold"),
        pytest.param("2026-03-09", -1, "0:00", NY, utc(2026, 3, 8, 5), id="midnight-spring"),
    ],
)
def test_relative_to_date(
    value: str | date, offset: int, at: str | None, zone: str, expected: datetime
) -> None:
    at_time = parse_time_of_day(at) if at else None
    result = relative_to_date(value, timedelta(days=offset), at_time, zone)
    assert result == expected
    assert result is not None
    assert result.tzinfo is UTC


def test_relative_to_date_sub_day_offset_moves_the_wall_clock() -> None:
    # Two hours before midnight of 8 March in New York is 22:00 EST on the 7th.
    result = relative_to_date("2026-03-08", timedelta(hours=-2), None, NY)
    assert result == utc(2026, 3, 8, 3)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "soon",
        "2026-13-01",
        "2026-02-30",
        "01/12/2026",
        "2026-12-01T25:00",
        42,
        4.2,
        True,
        ["2026-12-01"],
    ],
    ids=repr,
)
def test_relative_to_date_is_none_when_not_a_date(value: object) -> None:
    result = relative_to_date(value, timedelta(days=-3), time(10), KYIV)  # type: ignore[arg-type]
    assert result is None


@pytest.mark.parametrize(
    ("value", "offset"),
    [(date(1, 1, 1), -1), (date.max, 1), ("9999-12-31", 3)],
    ids=str,
)
def test_relative_to_date_is_none_beyond_the_calendar(value: str | date, offset: int) -> None:
    assert relative_to_date(value, timedelta(days=offset), time(10), "UTC") is None


ZONES = [NY, KYIV, KTM, "UTC", "Australia/Lord_Howe", "America/Santiago", "Asia/Tehran"]
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
times_of_day = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@settings(max_examples=300, deadline=None)
@given(now=instants, at=times_of_day, zone=st.sampled_from(ZONES))
def test_next_time_of_day_is_the_first_showing_of_that_time(
    now: datetime, at: time, zone: str
) -> None:
    tz = ZoneInfo(zone)
    result = next_time_of_day(now, at, zone)
    assert now <= result < now + timedelta(hours=26)
    local = result.astimezone(tz)
    wall = datetime.combine(local.date(), at)
    if first_instant_at(wall, zone) is None:
        # Skipped by a gap: the answer is the instant of the jump, when the clock passes `at`.
        assert local.replace(tzinfo=None) > wall
        assert (result - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) < wall
    else:
        assert (local.hour, local.minute) == (at.hour, at.minute)
        assert local.fold == 0
    # Nothing earlier qualifies: the same time a day before is already past.
    earlier = first_instant_at_or_after(wall - timedelta(days=1), zone)
    assert earlier < now
