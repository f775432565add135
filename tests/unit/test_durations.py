"""Human durations: parsing what people type and formatting what decisions say."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kaskad.domain.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("60s", timedelta(seconds=60)),
        ("1s", timedelta(seconds=1)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("30m1h", timedelta(hours=1, minutes=30)),  # parts add up in any order
        ("90", timedelta(seconds=90)),
        ("1.5", timedelta(seconds=1.5)),
        ("1.5h", timedelta(minutes=90)),
        ("0.5s", timedelta(milliseconds=500)),
        (" 2 d ", timedelta(days=2)),
        ("  60S ", timedelta(seconds=60)),
        ("2H", timedelta(hours=2)),
        ("007s", timedelta(seconds=7)),
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (0.001, timedelta(milliseconds=1)),
    ],
    ids=repr,
)
def test_parse_duration(value: str | float, expected: timedelta) -> None:
    parsed = parse_duration(value)
    assert isinstance(parsed, timedelta)
    assert parsed == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "2 dayz",
        "2days",
        "s",
        "5x",
        "m5",
        "1h30",  # a bare number after a unit is not a unit
        "1,5h",
        "-5s",
        "-5",
        "+5s",
        "0s",
        "0",
        "0.0",
        "0h0m",
        "1e3",
        "five seconds",
        0,
        0.0,
        -1,
        -0.5,
        True,
        False,
    ],
    ids=repr,
)
def test_parse_duration_refuses(value: str | float) -> None:
    with pytest.raises(DurationError):
        parse_duration(value)


def test_duration_error_is_a_value_error() -> None:
    # The HTTP layer turns ValueErrors from parse_duration into 422 answers.
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("2 dayz")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2 dayz", "not a duration"),
        ("0s", "not a positive duration"),
        (-3, "not a positive duration"),
        (True, "not a duration"),
    ],
    ids=repr,
)
def test_parse_duration_error_names_the_value(value: str | float, message: str) -> None:
    with pytest.raises(DurationError, match=message) as caught:
        parse_duration(value)
    assert repr(value) in str(caught.value)


# Overflowing or non-finite inputs used to escape as OverflowError / bare ValueError
# (HTTP 500 via POST /v1/notifications); they must be DurationErrors.
@pytest.mark.parametrize(
    "value",
    ["1000000000d", "99999999999w", "3000000d", 1e300, float("nan"), float("inf"), float("-inf")],
    ids=repr,
)
def test_parse_duration_refuses_unrepresentable_durations(value: str | float) -> None:
    with pytest.raises(DurationError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3650d", timedelta(days=3650)), ("521w", timedelta(weeks=521))],
    ids=repr,
)
def test_parse_duration_accepts_up_to_ten_years(value: str, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["3650d1s", "3651d", "522w", 3650 * 86400 + 1], ids=repr)
def test_parse_duration_refuses_more_than_ten_years(value: str | float) -> None:
    with pytest.raises(DurationError, match="maximum"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=1), "1s"),
        (timedelta(seconds=60), "60s"),
        (timedelta(seconds=90), "90s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(seconds=120), "2m"),
        (timedelta(seconds=121), "121s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(minutes=59), "59m"),
        (timedelta(hours=1), "1h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=5400), "90m"),
        (timedelta(hours=2), "2h"),
        (timedelta(hours=25), "25h"),
        (timedelta(days=1), "1d"),
        (timedelta(days=2), "2d"),
        (timedelta(weeks=1), "7d"),
        (timedelta(hours=36), "36h"),
        (timedelta(seconds=3601), "3601s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(seconds=0.25), "0.25s"),
        (timedelta(seconds=120.5), "120.5s"),
        (timedelta(seconds=7200.5), "7200.5s"),
    ],
    ids=str,
)
def test_format_duration(delta: timedelta, expected: str) -> None:
    assert format_duration(delta) == expected


@pytest.mark.parametrize(
    "text", ["60s", "90s", "2m", "5m", "1h", "90m", "2h", "3d", "1.5s", "36h", "3601s"]
)
def test_format_then_parse_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


# Non-whole seconds used to print with `:g` ("1e+06s", "1e-06s").
@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=1_000_000.5), "1000000.5s"),
        (timedelta(microseconds=1), "0.000001s"),
        (timedelta(seconds=1234567.25), "1234567.25s"),
        (timedelta(seconds=59.999999), "59.999999s"),
    ],
    ids=str,
)
def test_format_duration_is_exact_for_fractional_seconds(delta: timedelta, expected: str) -> None:
    assert format_duration(delta) == expected
