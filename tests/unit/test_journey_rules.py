"""Journey rules: sticky weighted splits and who may enter a journey again."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaskad.domain.journeys.rules import (
    ALWAYS,
    ONCE,
    Reentry,
    ReentryKind,
    Verdict,
    choose_variant,
    may_enter,
    parse_reentry,
)

CONTACTS = [f"contact-{i}" for i in range(10_000)]


def shares(variants: Sequence[tuple[str, int]], split_id: str = "offer") -> dict[str, float]:
    counts = Counter(
        choose_variant(variants, contact_id=c, journey_id="credit-card-offer", split_id=split_id)
        for c in CONTACTS
    )
    return {name: counts[name] / len(CONTACTS) for name, _ in variants}


# --- splits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variants",
    [
        [("A", 50), ("B", 50)],
        [("A", 50), ("B", 30), ("C", 20)],
        [("A", 90), ("B", 10)],
        [("A", 1), ("B", 1), ("C", 1), ("D", 1)],
        [("control", 5), ("treatment", 95)],
        [("A", 3), ("B", 0), ("C", 1)],
    ],
    ids=str,
)
def test_shares_follow_the_weights(variants: list[tuple[str, int]]) -> None:
    total = sum(weight for _, weight in variants)
    observed = shares(variants)
    for name, weight in variants:
        assert abs(observed[name] - weight / total) <= 0.02, (name, observed)


def test_zero_weight_variant_is_never_chosen() -> None:
    assert shares([("A", 1), ("paused", 0), ("B", 1)])["paused"] == 0


def test_a_single_variant_takes_everyone() -> None:
    assert shares([("only", 7)]) == {"only": 1.0}


@pytest.mark.parametrize("contact_id", ["c-1", "c-3", "c-12", "", "контакт-1"])
def test_the_same_contact_always_gets_the_same_variant(contact_id: str) -> None:
    variants = [("A", 50), ("B", 30), ("C", 20)]
    chosen = {
        choose_variant(variants, contact_id=contact_id, journey_id="j", split_id="s")
        for _ in range(20)
    }
    assert len(chosen) == 1


# Pinned: changing the hash would move contacts already in a running experiment.
@pytest.mark.parametrize(
    ("contact_id", "split_id", "expected"),
    [
        ("c-1", "offer", "A"),
        ("c-3", "offer", "B"),
        ("c-12", "offer", "C"),
        ("c-4", "offer-2", "C"),
        ("c-6", "offer-2", "B"),
        ("c-7", "offer-2", "A"),
    ],
)
def test_assignment_is_stable_across_releases(
    contact_id: str, split_id: str, expected: str
) -> None:
    variants = [("A", 50), ("B", 30), ("C", 20)]
    chosen = choose_variant(
        variants, contact_id=contact_id, journey_id="credit-card-offer", split_id=split_id
    )
    assert chosen == expected


def test_splits_are_independent_of_each_other() -> None:
    # Two splits in one journey must not put the same contacts in the same arms: with
    # 50/30/20 two independent draws agree with probability 0.25 + 0.09 + 0.04 = 0.38.
    variants = [("A", 50), ("B", 30), ("C", 20)]
    same = sum(
        choose_variant(variants, contact_id=c, journey_id="j", split_id="first")
        == choose_variant(variants, contact_id=c, journey_id="j", split_id="second")
        for c in CONTACTS
    )
    assert 0.35 <= same / len(CONTACTS) <= 0.41


def test_the_journey_id_takes_part_in_the_choice() -> None:
    variants = [("A", 1), ("B", 1)]
    same = sum(
        choose_variant(variants, contact_id=c, journey_id="one", split_id="s")
        == choose_variant(variants, contact_id=c, journey_id="two", split_id="s")
        for c in CONTACTS
    )
    assert 0.47 <= same / len(CONTACTS) <= 0.53


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([], "at least one variant"),
        ([("A", 0), ("B", 0)], "at least one variant with a positive weight"),
        ([("A", -1), ("B", 2)], "variant 'A' has weight -1"),
        ([("A", 1.5), ("B", 2)], "variant 'A' has weight 1.5"),
        ([("A", True), ("B", 2)], "variant 'A' has weight True"),
        ([("A", 1), ("B", 1), ("A", 2)], "repeated: ['A']"),
    ],
    ids=str,
)
def test_choose_variant_refuses(variants: list[tuple[str, int]], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        choose_variant(variants, contact_id="c", journey_id="j", split_id="s")


@given(
    weights=st.lists(st.integers(0, 1000), min_size=1, max_size=6).filter(any),
    contact_id=st.text(max_size=40),
    split_id=st.text(max_size=10),
)
def test_choice_is_always_a_variant_with_weight(
    weights: list[int], contact_id: str, split_id: str
) -> None:
    variants = [(f"v{i}", w) for i, w in enumerate(weights)]
    chosen = choose_variant(variants, contact_id=contact_id, journey_id="j", split_id=split_id)
    assert dict(variants)[chosen] > 0


# --- re-entry rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("once", ONCE),
        ("ONCE", ONCE),
        (" always ", ALWAYS),
        ("30d", Reentry(ReentryKind.EVERY, timedelta(days=30))),
        ("1h30m", Reentry(ReentryKind.EVERY, timedelta(minutes=90))),
        ("2w", Reentry(ReentryKind.EVERY, timedelta(weeks=2))),
        ("12H", Reentry(ReentryKind.EVERY, timedelta(hours=12))),
    ],
)
def test_parse_reentry(text: str, expected: Reentry) -> None:
    assert parse_reentry(text) == expected


@pytest.mark.parametrize(
    ("text", "shown"), [("once", "once"), ("always", "always"), ("30d", "30d")]
)
def test_reentry_shows_as_written(text: str, shown: str) -> None:
    assert str(parse_reentry(text)) == shown


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be once, always or a duration such as 30d"),
        ("never", "must be once, always or a duration such as 30d"),
        ("30 days", "must be once, always or a duration such as 30d"),
        ("0d", "must be once, always or a duration such as 30d"),
        ("-1d", "must be once, always or a duration such as 30d"),
        ("30", "needs a unit, e.g. 30d"),
        (30, "must be once, always or a duration"),
    ],
    ids=repr,
)
def test_parse_reentry_refuses(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_reentry(value)
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "interval"),
    [
        (ReentryKind.EVERY, None),
        (ReentryKind.ONCE, timedelta(days=1)),
        (ReentryKind.ALWAYS, timedelta(days=1)),
        (ReentryKind.EVERY, timedelta(0)),
        (ReentryKind.EVERY, timedelta(days=-1)),
    ],
    ids=str,
)
def test_reentry_refuses_inconsistent_values(kind: ReentryKind, interval: timedelta | None) -> None:
    with pytest.raises(ValueError, match="reentry"):
        Reentry(kind, interval)


T0 = datetime(2026, 11, 20, 10, 2, tzinfo=UTC)
DAY = timedelta(days=1)
EVERY_30D = parse_reentry("30d")


@pytest.mark.parametrize(
    ("rule", "entries", "active", "limit", "now", "expected"),
    [
        pytest.param(ONCE, [], 0, 1, T0, Verdict(True, "first entry"), id="once-first"),
        pytest.param(
            ONCE,
            [T0],
            0,
            1,
            T0 + timedelta(seconds=1),
            Verdict(False, "already entered once on 2026-11-20 10:02 UTC (reentry: once)"),
            id="once-again",
        ),
        pytest.param(
            ONCE,
            [T0 + 5 * DAY, T0],
            0,
            1,
            T0 + 400 * DAY,
            Verdict(False, "already entered once on 2026-11-20 10:02 UTC (reentry: once)"),
            id="once-names-the-first-entry",
        ),
        pytest.param(
            ONCE,
            [T0],
            1,
            1,
            T0 + DAY,
            Verdict(False, "already entered once on 2026-11-20 10:02 UTC (reentry: once)"),
            id="once-wins-over-active",
        ),
        pytest.param(ALWAYS, [T0], 0, 1, T0, Verdict(True, "reentry: always"), id="always"),
        pytest.param(
            ALWAYS,
            [T0],
            1,
            1,
            T0 + DAY,
            Verdict(False, "1 run already active (max_active_runs: 1)"),
            id="always-but-active",
        ),
        pytest.param(
            ALWAYS,
            [T0, T0 + DAY],
            2,
            2,
            T0 + 2 * DAY,
            Verdict(False, "2 runs already active (max_active_runs: 2)"),
            id="two-active",
        ),
        pytest.param(
            ALWAYS, [T0], 1, 2, T0 + DAY, Verdict(True, "reentry: always"), id="below-max"
        ),
        pytest.param(
            ALWAYS,
            [],
            1,
            1,
            T0,
            Verdict(False, "1 run already active (max_active_runs: 1)"),
            id="first-but-active",
        ),
        pytest.param(
            EVERY_30D,
            [T0],
            0,
            1,
            T0 + 3 * DAY,
            Verdict(
                False,
                "entered 3 days ago; reentry every 30d allows the next entry "
                "on 2026-12-20 10:02 UTC",
            ),
            id="every-3-days-in",
        ),
        pytest.param(
            EVERY_30D,
            [T0],
            0,
            1,
            T0 + 30 * DAY - timedelta(seconds=1),
            Verdict(
                False,
                "entered 29 days ago; reentry every 30d allows the next entry "
                "on 2026-12-20 10:02 UTC",
            ),
            id="every-a-second-early",
        ),
        pytest.param(
            EVERY_30D,
            [T0],
            0,
            1,
            T0 + 30 * DAY,
            Verdict(True, "last entered 30 days ago; reentry every 30d allows it"),
            id="every-exactly-at-the-edge",
        ),
        pytest.param(
            EVERY_30D,
            [T0],
            1,
            1,
            T0 + 30 * DAY,
            Verdict(False, "1 run already active (max_active_runs: 1)"),
            id="every-edge-but-active",
        ),
        pytest.param(
            EVERY_30D,
            [T0 - 40 * DAY, T0],
            0,
            1,
            T0 + DAY,
            Verdict(
                False,
                "entered 1 day ago; reentry every 30d allows the next entry "
                "on 2026-12-20 10:02 UTC",
            ),
            id="every-counts-from-the-last-entry",
        ),
        pytest.param(EVERY_30D, [], 0, 1, T0, Verdict(True, "first entry"), id="every-first-entry"),
        pytest.param(
            parse_reentry("1h"),
            [T0],
            0,
            1,
            T0 + timedelta(minutes=59, seconds=59),
            Verdict(
                False,
                "entered 59 minutes ago; reentry every 1h allows the next entry "
                "on 2026-11-20 11:02 UTC",
            ),
            id="every-hour-minutes-ago",
        ),
        pytest.param(
            parse_reentry("1h"),
            [T0],
            0,
            1,
            T0 + timedelta(hours=1),
            Verdict(True, "last entered 1 hour ago; reentry every 1h allows it"),
            id="every-hour-edge",
        ),
        pytest.param(
            parse_reentry("2h"),
            [T0 + timedelta(seconds=30)],
            0,
            1,
            T0,
            Verdict(
                False,
                "entered just now; reentry every 2h allows the next entry on 2026-11-20 12:02 UTC",
            ),
            id="entry-stamped-after-now",
        ),
        pytest.param(
            EVERY_30D,
            [datetime(2026, 11, 20, 12, 2, tzinfo=ZoneInfo("Europe/Kyiv"))],
            0,
            1,
            T0 + DAY,
            Verdict(
                False,
                "entered 1 day ago; reentry every 30d allows the next entry "
                "on 2026-12-20 10:02 UTC",
            ),
            id="times-shown-in-utc",
        ),
    ],
)
def test_may_enter(
    rule: Reentry,
    entries: list[datetime],
    active: int,
    limit: int,
    now: datetime,
    expected: Verdict,
) -> None:
    verdict = may_enter(
        rule, previous_entries=entries, active_runs=active, max_active_runs=limit, now=now
    )
    assert verdict == expected


@pytest.mark.parametrize(
    ("entries", "active", "limit", "now", "message"),
    [
        ([], 0, 0, T0, "max_active_runs must be at least 1"),
        ([], -1, 1, T0, "active_runs cannot be negative"),
        ([], 0, 1, datetime(2026, 11, 20), "now must be a timezone-aware datetime"),
        ([datetime(2026, 11, 20)], 0, 1, T0, "a previous entry must be a timezone-aware datetime"),
    ],
    ids=str,
)
def test_may_enter_refuses(
    entries: list[datetime], active: int, limit: int, now: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        may_enter(
            ALWAYS, previous_entries=entries, active_runs=active, max_active_runs=limit, now=now
        )


@given(
    gaps=st.lists(st.integers(0, 100 * 86400), min_size=1, max_size=5),
    interval=st.integers(1, 60 * 86400),
    after=st.integers(0, 120 * 86400),
)
def test_every_allows_exactly_when_the_interval_has_passed(
    gaps: list[int], interval: int, after: int
) -> None:
    entries = [T0 - timedelta(seconds=g) for g in gaps]
    now = T0 + timedelta(seconds=after)
    rule = Reentry(ReentryKind.EVERY, timedelta(seconds=interval))
    verdict = may_enter(rule, previous_entries=entries, active_runs=0, max_active_runs=1, now=now)
    assert verdict.allowed is (now - max(entries) >= timedelta(seconds=interval))
    assert verdict.reason
