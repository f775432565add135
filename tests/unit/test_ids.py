"""Identifiers: prefixed, fixed-length, time-ordered and random."""

from __future__ import annotations

import re
import time

import pytest

from kaskad.domain import ids
from kaskad.domain.ids import new_id

ID = re.compile(
    r"^(?P<prefix>[a-z]+)_(?P<time>[0-9a-hjkmnp-tv-z]{10})(?P<rand>[0-9a-hjkmnp-tv-z]{16})$"
)


@pytest.mark.parametrize("prefix", ["ntf", "msg", "ct", "x"])
def test_new_id_shape(prefix: str) -> None:
    value = new_id(prefix)
    match = ID.match(value)
    assert match is not None, value
    assert match["prefix"] == prefix
    assert len(value) == len(prefix) + 1 + 26


def test_alphabet_is_sorted_crockford_base32() -> None:
    assert len(ids._ALPHABET) == 32
    assert len(set(ids._ALPHABET)) == 32
    assert list(ids._ALPHABET) == sorted(ids._ALPHABET)  # so ids sort like their numbers
    assert not set("ilou") & set(ids._ALPHABET)


@pytest.mark.parametrize(
    ("number", "length", "expected"),
    [
        (0, 4, "0000"),
        (1, 4, "0001"),
        (31, 2, "0z"),
        (32, 2, "10"),
        (32**3 - 1, 3, "zzz"),
    ],
)
def test_encode(number: int, length: int, expected: str) -> None:
    assert ids._encode(number, length) == expected


def test_ids_sort_by_creation_time(monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    for millis in [1_700_000_000_000, 1_700_000_000_001, 1_700_000_001_000, 1_800_000_000_000]:
        monkeypatch.setattr(time, "time_ns", lambda m=millis: m * 1_000_000)
        made.append(new_id("msg"))
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_in_the_same_millisecond_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    made = {new_id("msg") for _ in range(200)}
    assert len(made) == 200
    assert len({m[4:14] for m in made}) == 1  # same time part


def test_new_ids_share_the_clock_and_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    made = ids.new_ids("evt", 500)
    assert len(set(made)) == 500
    assert all(ID.match(value) for value in made)
    assert {value[:14] for value in made} == {new_id("evt")[:14]}
    assert ids.new_ids("evt", 0) == []


def test_the_fast_encoding_matches_the_reference() -> None:
    for number in [0, 1, 1023, 1024, 2**80 - 1, 0x1234_5678_9ABC_DEF0_1234]:
        assert ids._encode80(number) == ids._encode(number, 16)
