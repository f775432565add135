"""The policy decision, case by case: caps, slots, quiet hours, ranks, duplicates, relevance."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaskad.domain.policy import (
    DEFAULT_POLICY,
    Candidate,
    CapRule,
    Facts,
    Happened,
    Planned,
    Policy,
    QuietHours,
    RelevanceRule,
    Selector,
    Sent,
    VerdictKind,
    evaluate,
    load_policy,
    outranks,
)
from kaskad.domain.vocabulary import Category, Channel

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 12:00 in Kyiv
KYIV = ZoneInfo("Europe/Kyiv")
NEW_YORK = ZoneInfo("America/New_York")
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)

MARKETING = Category.MARKETING
SERVICE = Category.SERVICE
TRANSACTIONAL = Category.TRANSACTIONAL
SECURITY = Category.SECURITY
SMS = Channel.SMS
VIBER = Channel.VIBER
EMAIL = Channel.EMAIL

SEND = VerdictKind.SEND
DEFER = VerdictKind.DEFER
SUPPRESS = VerdictKind.SUPPRESS
SKIP = VerdictKind.SKIP


def caps_only(*caps: CapRule) -> Policy:
    """Caps and nothing else: no quiet hours, so only the caps decide."""
    return Policy(caps=caps, quiet_hours={})


def cap(
    limit: int, window: timedelta, category: Category | None = None, **extra: object
) -> CapRule:
    return CapRule(limit, window, category, **extra)  # type: ignore[arg-type]


def candidate(
    category: Category = MARKETING,
    channel: Channel = SMS,
    *,
    nid: str = "n",
    priority: int = 20,
    created_at: datetime = NOW,
    **extra: object,
) -> Candidate:
    return Candidate(
        notification_id=nid,
        category=category,
        priority=priority,
        channel=channel,
        created_at=created_at,
        **extra,  # type: ignore[arg-type]
    )


def sent(
    nid: str,
    ago: timedelta,
    category: Category = MARKETING,
    channel: Channel = SMS,
    **extra: object,
) -> Sent:
    return Sent(nid, NOW - ago, category, channel, **extra)  # type: ignore[arg-type]


def planned(
    nid: str,
    at: datetime,
    category: Category = MARKETING,
    priority: int = 20,
    *,
    created_at: datetime = NOW - HOUR,
    **extra: object,
) -> Planned:
    return Planned(
        notification_id=nid,
        at=at,
        category=category,
        priority=priority,
        channel=extra.pop("channel", SMS),  # type: ignore[arg-type]
        created_at=created_at,
        **extra,  # type: ignore[arg-type]
    )


def as_planned(c: Candidate, at: datetime) -> Planned:
    return Planned(
        notification_id=c.notification_id,
        at=at,
        category=c.category,
        priority=c.priority,
        channel=c.channel,
        created_at=c.created_at,
        personal=c.personal,
    )


# Caps: window edges and what is counted -------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "history", "cand", "kind", "until"),
    [
        pytest.param(
            caps_only(cap(1, WEEK, MARKETING)),
            [sent("a", WEEK)],
            candidate(),
            SEND,
            None,
            id="send-exactly-a-window-ago-no-longer-counts",
        ),
        pytest.param(
            caps_only(cap(1, WEEK, MARKETING)),
            [sent("a", WEEK - SECOND)],
            candidate(),
            DEFER,
            NOW + SECOND,
            id="one-second-less-still-counts",
        ),
        pytest.param(
            caps_only(cap(2, WEEK, MARKETING)),
            [sent("a", DAY)],
            candidate(),
            SEND,
            None,
            id="limit-minus-one-sends",
        ),
        pytest.param(
            caps_only(cap(2, WEEK, MARKETING)),
            [sent("a", DAY), sent("b", 3 * DAY)],
            candidate(),
            DEFER,
            NOW + 4 * DAY,
            id="limit-sends-wait-for-the-oldest",
        ),
        pytest.param(
            caps_only(cap(2, WEEK, MARKETING)),
            [sent("a", 2 * HOUR, channel=VIBER), sent("a", HOUR, channel=SMS)],
            candidate(),
            SEND,
            None,
            id="a-fallback-is-one-notification-for-a-category-cap",
        ),
        pytest.param(
            caps_only(cap(1, DAY)),
            [sent("a", 3 * HOUR, channel=VIBER), sent("a", 2 * HOUR, channel=SMS)],
            candidate(),
            DEFER,
            NOW - 3 * HOUR + DAY,
            id="a-notification-leaves-when-its-first-message-does",
        ),
        pytest.param(
            caps_only(cap(2, DAY, channel=SMS)),
            [sent("a", 3 * HOUR, channel=SMS), sent("a", 2 * HOUR, channel=SMS)],
            candidate(),
            DEFER,
            NOW - 3 * HOUR + DAY,
            id="a-channel-cap-counts-each-message",
        ),
        pytest.param(
            caps_only(cap(1, DAY, channel=SMS)),
            [sent("a", HOUR, channel=VIBER)],
            candidate(),
            SEND,
            None,
            id="a-channel-cap-ignores-other-channels",
        ),
        pytest.param(
            caps_only(cap(1, DAY, MARKETING), cap(1, DAY, channel=SMS)),
            [sent("n", HOUR, channel=VIBER)],
            candidate(first=False),
            SEND,
            None,
            id="a-fallback-is-judged-by-channel-caps-only",
        ),
        pytest.param(
            caps_only(cap(1, DAY, channel=SMS)),
            [sent("n", 2 * HOUR, channel=SMS), sent("n", HOUR, channel=VIBER)],
            candidate(first=False),
            DEFER,
            NOW - 2 * HOUR + DAY,
            id="a-channel-cap-counts-the-notifications-own-messages",
        ),
        pytest.param(
            caps_only(cap(1, DAY)),
            [sent("a", HOUR)],
            candidate(TRANSACTIONAL),
            SEND,
            None,
            id="transactional-is-exempt-though-over-cap",
        ),
        pytest.param(
            caps_only(cap(1, DAY)),
            [sent("a", HOUR)],
            candidate(SECURITY),
            SEND,
            None,
            id="security-is-exempt-though-over-cap",
        ),
        pytest.param(
            caps_only(cap(2, DAY)),
            [sent("t1", HOUR, TRANSACTIONAL), sent("t2", 2 * HOUR, SECURITY)],
            candidate(),
            DEFER,
            NOW - 2 * HOUR + DAY,
            id="exempt-sends-count-against-marketing-under-all",
        ),
        pytest.param(
            caps_only(cap(1, DAY, MARKETING)),
            [sent("t1", HOUR, TRANSACTIONAL)],
            candidate(),
            SEND,
            None,
            id="a-marketing-cap-counts-only-marketing",
        ),
        pytest.param(
            Policy(caps=(cap(1, DAY),), quiet_hours={}, exempt=frozenset()),
            [sent("a", HOUR)],
            candidate(TRANSACTIONAL),
            DEFER,
            NOW - HOUR + DAY,
            id="nothing-exempt-when-the-policy-says-so",
        ),
        pytest.param(
            caps_only(cap(1, DAY, MARKETING, topic="loans")),
            [sent("a", HOUR, topic="cards")],
            candidate(topic="loans"),
            SEND,
            None,
            id="a-topic-cap-counts-its-topic-only",
        ),
        pytest.param(
            caps_only(cap(1, DAY, journey="welcome")),
            [sent("a", HOUR, journey="welcome")],
            candidate(journey="welcome"),
            DEFER,
            NOW - HOUR + DAY,
            id="a-journey-cap-counts-its-journey",
        ),
        pytest.param(
            caps_only(cap(1, DAY, journey="welcome")),
            [sent("a", HOUR, journey="welcome")],
            candidate(journey="winback"),
            SEND,
            None,
            id="a-journey-cap-does-not-judge-other-journeys",
        ),
    ],
)
def test_caps(
    policy: Policy,
    history: list[Sent],
    cand: Candidate,
    kind: VerdictKind,
    until: datetime | None,
) -> None:
    verdict = evaluate(policy, Facts(UTC, sent=history), cand, NOW)
    assert (verdict.kind, verdict.until) == (kind, until), verdict.reason


# The next slot, quiet hours and the validity deadline ----------------------------------------


KYIV_WEEK_CAP = Policy(caps=(cap(1, DAY, MARKETING),))  # default quiet hours 21:00–09:00


@pytest.mark.parametrize(
    ("policy", "history", "cand", "kind", "until"),
    [
        pytest.param(
            caps_only(cap(2, WEEK, MARKETING)),
            [sent("a", 6 * DAY), sent("b", 2 * DAY)],
            candidate(),
            DEFER,
            NOW + DAY,
            id="the-oldest-counted-send-leaves-the-window",
        ),
        pytest.param(
            caps_only(cap(2, DAY), cap(3, WEEK)),
            [sent("a", 6 * DAY), sent("b", 5 * DAY), sent("c", HOUR)],
            candidate(),
            DEFER,
            NOW + DAY,
            id="the-slot-satisfies-every-cap",
        ),
        pytest.param(
            KYIV_WEEK_CAP,
            # Leaves the window at 20:00 UTC, 22:00 in Kyiv: quiet until 09:00 local.
            [sent("a", DAY - 10 * HOUR)],
            candidate(),
            DEFER,
            datetime(2026, 3, 3, 7, 0, tzinfo=UTC),
            id="a-slot-in-quiet-hours-moves-to-09:00-local",
        ),
        pytest.param(
            KYIV_WEEK_CAP,
            # Leaves at 04:00 UTC, 06:00 in Kyiv: still quiet, 09:00 local is 07:00 UTC.
            [sent("a", 6 * HOUR)],
            candidate(),
            DEFER,
            datetime(2026, 3, 3, 7, 0, tzinfo=UTC),
            id="a-slot-in-the-early-morning-moves-to-09:00-local",
        ),
        pytest.param(
            caps_only(cap(1, WEEK, MARKETING)),
            [sent("a", DAY)],
            candidate(created_at=NOW - 5 * DAY),  # marketing is valid for 7 days
            SUPPRESS,
            None,
            id="no-slot-before-validity-drops-a-first-message",
        ),
        pytest.param(
            caps_only(cap(1, WEEK, channel=SMS)),
            [sent("a", DAY)],
            candidate(created_at=NOW - 5 * DAY, first=False),
            SKIP,
            None,
            id="no-slot-before-validity-skips-a-fallback",
        ),
        pytest.param(
            caps_only(cap(1, WEEK, MARKETING)),
            [sent("a", DAY)],
            candidate(valid_until=NOW + 6 * DAY - SECOND),
            SUPPRESS,
            None,
            id="explicit-valid-until-one-second-short",
        ),
        pytest.param(
            caps_only(cap(1, WEEK, MARKETING)),
            [sent("a", DAY)],
            candidate(valid_until=NOW + 6 * DAY),
            DEFER,
            NOW + 6 * DAY,
            id="explicit-valid-until-exactly-at-the-slot",
        ),
        pytest.param(
            caps_only(cap(1, WEEK, MARKETING)),
            [sent("a", DAY)],
            candidate(valid_until=NOW + 30 * DAY, created_at=NOW - 6 * DAY),
            DEFER,
            NOW + 6 * DAY,
            id="explicit-valid-until-overrides-the-category-validity",
        ),
    ],
)
def test_next_slot(
    policy: Policy,
    history: list[Sent],
    cand: Candidate,
    kind: VerdictKind,
    until: datetime | None,
) -> None:
    verdict = evaluate(policy, Facts(KYIV, sent=history), cand, NOW)
    assert (verdict.kind, verdict.until) == (kind, until), verdict.reason


def test_quiet_hours_that_outlast_the_validity_drop_the_message() -> None:
    evening = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 22:00 in Kyiv
    cand = candidate(created_at=evening, valid_until=evening + 10 * HOUR)  # 08:00 in Kyiv
    verdict = evaluate(DEFAULT_POLICY, Facts(KYIV), cand, evening)
    assert verdict.kind is SUPPRESS
    assert verdict.reason == (
        "dropped: quiet hours 21:00–09:00 (Europe/Kyiv) for marketing; "
        "no free slot before Tue 03 Mar 08:00 (Europe/Kyiv) (valid until)"
    )


def test_a_dropped_message_says_until_when_it_was_valid() -> None:
    verdict = evaluate(
        caps_only(cap(1, WEEK, MARKETING)),
        Facts(KYIV, sent=[sent("a", DAY)]),
        candidate(valid_until=datetime(2026, 3, 5, 10, 0, tzinfo=UTC)),
        NOW,
    )
    assert verdict.kind is SUPPRESS
    assert verdict.reason.startswith("dropped: marketing cap 1/week reached (1 sent since ")
    assert "no free slot before Thu 05 Mar 12:00 (Europe/Kyiv) (valid until)" in verdict.reason


def test_a_skipped_fallback_names_its_channel() -> None:
    verdict = evaluate(
        caps_only(cap(1, WEEK, channel=SMS)),
        Facts(UTC, sent=[sent("a", DAY)]),
        candidate(first=False, valid_until=NOW + DAY),
        NOW,
    )
    assert verdict.kind is SKIP
    assert verdict.reason.startswith("sms skipped: all sms cap 1/week reached (1 sent since")


# Quiet hours on the days clocks change --------------------------------------------------------


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


QUIET_ACROSS_KYIV_SWITCH = load_policy('quiet_hours: {marketing: "01:00-03:30"}')
QUIET_ACROSS_NY_SPRING = load_policy('quiet_hours: {marketing: "01:00-02:30"}')
QUIET_ACROSS_NY_FALL = load_policy("quiet_hours: {marketing: {from: '00:30', to: '01:30'}}")
QUIET_AT_LUNCH = load_policy('quiet_hours: {service: "13:00-14:00"}')


@pytest.mark.parametrize(
    ("policy", "zone", "now", "category", "until"),
    [
        # Europe/Kyiv, 2026-03-29: 03:00 EET (+2) becomes 04:00 EEST (+3) at 01:00 UTC.
        pytest.param(
            DEFAULT_POLICY,
            KYIV,
            utc(2026, 3, 28, 20, 30),  # 22:30 EET
            MARKETING,
            utc(2026, 3, 29, 6, 0),  # 09:00 EEST
            id="kyiv-spring-22:30-to-09:00",
        ),
        pytest.param(
            QUIET_ACROSS_KYIV_SWITCH,
            KYIV,
            utc(2026, 3, 29, 0, 30),  # 02:30 EET
            MARKETING,
            utc(2026, 3, 29, 1, 0),  # 03:30 is skipped: 04:00 EEST, the jump
            id="kyiv-spring-quiet-ends-in-the-gap",
        ),
        pytest.param(
            QUIET_ACROSS_KYIV_SWITCH,
            KYIV,
            utc(2026, 3, 29, 1, 0),  # 04:00 EEST
            MARKETING,
            None,
            id="kyiv-spring-after-the-gap-sends",
        ),
        pytest.param(
            QUIET_ACROSS_KYIV_SWITCH,
            KYIV,
            utc(2026, 3, 28, 23, 0),  # 01:00 EET, the start
            MARKETING,
            utc(2026, 3, 29, 1, 0),
            id="kyiv-spring-at-the-start-of-quiet",
        ),
        # Europe/Kyiv, 2026-10-25: 04:00 EEST (+3) becomes 03:00 EET (+2) at 01:00 UTC.
        pytest.param(
            DEFAULT_POLICY,
            KYIV,
            utc(2026, 10, 24, 19, 30),  # 22:30 EEST
            MARKETING,
            utc(2026, 10, 25, 7, 0),  # 09:00 EET
            id="kyiv-fall-22:30-to-09:00",
        ),
        pytest.param(
            QUIET_ACROSS_KYIV_SWITCH,
            KYIV,
            utc(2026, 10, 25, 0, 10),  # 03:10 EEST, the first time
            MARKETING,
            utc(2026, 10, 25, 0, 30),  # 03:30 EEST
            id="kyiv-fall-first-03:10",
        ),
        pytest.param(
            QUIET_ACROSS_KYIV_SWITCH,
            KYIV,
            utc(2026, 10, 25, 0, 45),  # 03:45 EEST
            MARKETING,
            None,
            id="kyiv-fall-03:45-sends",
        ),
        pytest.param(
            QUIET_ACROSS_KYIV_SWITCH,
            KYIV,
            utc(2026, 10, 25, 1, 10),  # 03:10 EET, the clock shows it a second time
            MARKETING,
            utc(2026, 10, 25, 1, 30),  # 03:30 EET, not tomorrow's 03:30
            id="kyiv-fall-repeated-03:10-waits-for-the-repeated-03:30",
        ),
        # America/New_York, 2026-03-08: 02:00 EST (-5) becomes 03:00 EDT (-4) at 07:00 UTC.
        pytest.param(
            DEFAULT_POLICY,
            NEW_YORK,
            utc(2026, 3, 8, 3, 30),  # 22:30 EST on the 7th
            MARKETING,
            utc(2026, 3, 8, 13, 0),  # 09:00 EDT
            id="new-york-spring-22:30-to-09:00",
        ),
        pytest.param(
            QUIET_ACROSS_NY_SPRING,
            NEW_YORK,
            utc(2026, 3, 8, 6, 30),  # 01:30 EST
            MARKETING,
            utc(2026, 3, 8, 7, 0),  # 02:30 is skipped: 03:00 EDT
            id="new-york-spring-quiet-ends-in-the-gap",
        ),
        # America/New_York, 2026-11-01: 02:00 EDT (-4) becomes 01:00 EST (-5) at 06:00 UTC.
        pytest.param(
            DEFAULT_POLICY,
            NEW_YORK,
            utc(2026, 11, 1, 2, 30),  # 22:30 EDT on the 31st
            MARKETING,
            utc(2026, 11, 1, 14, 0),  # 09:00 EST
            id="new-york-fall-22:30-to-09:00",
        ),
        pytest.param(
            QUIET_ACROSS_NY_FALL,
            NEW_YORK,
            utc(2026, 11, 1, 5, 10),  # 01:10 EDT
            MARKETING,
            utc(2026, 11, 1, 5, 30),  # 01:30 EDT
            id="new-york-fall-first-01:10",
        ),
        pytest.param(
            QUIET_ACROSS_NY_FALL,
            NEW_YORK,
            utc(2026, 11, 1, 5, 45),  # 01:45 EDT
            MARKETING,
            None,
            id="new-york-fall-01:45-sends",
        ),
        pytest.param(
            QUIET_ACROSS_NY_FALL,
            NEW_YORK,
            utc(2026, 11, 1, 6, 10),  # 01:10 EST, the second time
            MARKETING,
            utc(2026, 11, 1, 6, 30),  # 01:30 EST
            id="new-york-fall-repeated-01:10-waits-for-the-repeated-01:30",
        ),
        # A window within one day.
        pytest.param(
            QUIET_AT_LUNCH,
            KYIV,
            utc(2026, 3, 2, 11, 30),  # 13:30 EET
            SERVICE,
            utc(2026, 3, 2, 12, 0),
            id="same-day-window-inside",
        ),
        pytest.param(
            QUIET_AT_LUNCH,
            KYIV,
            utc(2026, 3, 2, 12, 0),  # 14:00 EET, the end is not quiet
            SERVICE,
            None,
            id="same-day-window-end",
        ),
        pytest.param(
            QUIET_AT_LUNCH,
            KYIV,
            utc(2026, 3, 2, 10, 59),  # 12:59 EET
            SERVICE,
            None,
            id="same-day-window-before",
        ),
        pytest.param(
            QUIET_AT_LUNCH,
            KYIV,
            utc(2026, 3, 2, 11, 30),
            MARKETING,
            None,
            id="same-day-window-is-not-marketings",
        ),
        pytest.param(
            DEFAULT_POLICY,
            KYIV,
            utc(2026, 3, 2, 1, 0),  # 03:00 EET
            SECURITY,
            None,
            id="security-is-never-quiet",
        ),
        pytest.param(
            DEFAULT_POLICY,
            KYIV,
            utc(2026, 3, 2, 7, 0),  # 09:00 EET, the end
            MARKETING,
            None,
            id="marketing-at-09:00-sends",
        ),
        pytest.param(
            DEFAULT_POLICY,
            KYIV,
            utc(2026, 3, 2, 19, 0),  # 21:00 EET, the start
            MARKETING,
            utc(2026, 3, 3, 7, 0),
            id="marketing-at-21:00-waits",
        ),
    ],
)
def test_quiet_hours(
    policy: Policy, zone: tzinfo, now: datetime, category: Category, until: datetime | None
) -> None:
    cand = candidate(category, created_at=now)
    verdict = evaluate(policy, Facts(zone), cand, now)
    assert verdict.until == until, verdict.reason
    assert verdict.kind is (SEND if until is None else DEFER)
    if until is not None:
        # The slot itself is free: asking again then sends.
        assert evaluate(policy, Facts(zone), cand, until).kind is SEND


def test_quiet_hours_judge_a_fallback_too() -> None:
    cand = candidate(first=False, created_at=utc(2026, 3, 2, 20, 0))
    verdict = evaluate(DEFAULT_POLICY, Facts(KYIV), cand, utc(2026, 3, 2, 20, 0))
    assert verdict.kind is DEFER
    assert verdict.reason == (
        "deferred: quiet hours 21:00–09:00 (Europe/Kyiv) for marketing; "
        "next slot Tue 03 Mar 09:00 (Europe/Kyiv)"
    )


# Ranks: who keeps a contested slot ------------------------------------------------------------


ONE_A_DAY = caps_only(cap(1, DAY))
SLOT = NOW + 2 * HOUR


@pytest.mark.parametrize(
    ("holder", "cand", "holder_keeps"),
    [
        pytest.param(
            planned("p", SLOT, SERVICE, priority=1),
            candidate(MARKETING, priority=99),
            True,
            id="service-beats-marketing-whatever-the-priority",
        ),
        pytest.param(
            planned("p", SLOT, MARKETING, priority=99),
            candidate(SERVICE, priority=1),
            False,
            id="marketing-yields-to-service-whatever-the-priority",
        ),
        pytest.param(
            planned("p", SLOT, MARKETING, priority=50),
            candidate(MARKETING, priority=20),
            True,
            id="equal-category-higher-priority-keeps",
        ),
        pytest.param(
            planned("p", SLOT, MARKETING, priority=20),
            candidate(MARKETING, priority=50),
            False,
            id="equal-category-higher-priority-takes",
        ),
        pytest.param(
            planned("p", SLOT, personal=True),
            candidate(personal=False, created_at=NOW - DAY),
            True,
            id="personal-beats-mass-though-later",
        ),
        pytest.param(
            planned("p", SLOT, personal=False, created_at=NOW - DAY),
            candidate(personal=True),
            False,
            id="mass-yields-to-personal",
        ),
        pytest.param(
            planned("p", SLOT, created_at=NOW - HOUR),
            candidate(created_at=NOW),
            True,
            id="equal-rank-first-created-keeps",
        ),
        pytest.param(
            planned("p", SLOT, created_at=NOW + HOUR),
            candidate(created_at=NOW),
            False,
            id="equal-rank-first-created-takes",
        ),
    ],
)
def test_a_planned_slot_is_kept_by_the_higher_rank(
    holder: Planned, cand: Candidate, holder_keeps: bool
) -> None:
    verdict = evaluate(ONE_A_DAY, Facts(UTC, planned=[holder]), cand, NOW)
    if holder_keeps:
        assert (verdict.kind, verdict.until) == (DEFER, SLOT + DAY), verdict.reason
        assert "all cap 1/day reached (1 planned from" in verdict.reason
    else:
        assert verdict.kind is SEND, verdict.reason


def test_two_plans_for_one_slot_the_higher_keeps_it_the_lower_moves() -> None:
    high = candidate(SERVICE, nid="high", priority=10)
    low = candidate(MARKETING, nid="low", priority=90)
    plans = [as_planned(high, SLOT), as_planned(low, SLOT)]
    facts = Facts(UTC, planned=plans)
    assert evaluate(ONE_A_DAY, facts, high, SLOT).kind is SEND
    moved = evaluate(ONE_A_DAY, facts, low, SLOT)
    assert (moved.kind, moved.until) == (DEFER, SLOT + DAY)


PEERS = [
    candidate(SECURITY, nid="s", priority=0),
    candidate(TRANSACTIONAL, nid="t", priority=100),
    candidate(SERVICE, nid="v", priority=100),
    candidate(MARKETING, nid="m1", priority=100),
    candidate(MARKETING, nid="m2", priority=50),
    candidate(MARKETING, nid="m3", priority=50, personal=False),
    candidate(MARKETING, nid="m4", priority=50, personal=False, created_at=NOW + SECOND),
    candidate(MARKETING, nid="m5", priority=50, personal=False, created_at=NOW + SECOND),
]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(a, b, id=f"{a.notification_id}-over-{b.notification_id}")
        for i, a in enumerate(PEERS)
        for b in PEERS[i + 1 :]
    ],
)
def test_rank_is_a_strict_order(a: Candidate, b: Candidate) -> None:
    # PEERS are listed highest first; at total equality (m4, m5) the id decides.
    assert outranks(DEFAULT_POLICY, as_planned(a, NOW), b)
    assert not outranks(DEFAULT_POLICY, as_planned(b, NOW), a)


def test_nothing_outranks_itself() -> None:
    c = candidate()
    assert not outranks(DEFAULT_POLICY, as_planned(c, NOW), c)


def test_the_order_of_categories_comes_from_the_policy() -> None:
    policy = Policy(order=(MARKETING, SECURITY, TRANSACTIONAL, SERVICE))
    assert outranks(policy, as_planned(candidate(MARKETING, priority=1), NOW), candidate(SECURITY))


# De-duplication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "cand", "kind", "reason"),
    [
        pytest.param(
            Facts(UTC, sent=[sent("a", 2 * HOUR, channel=EMAIL, content_key="bill:42")]),
            candidate(content_key="bill:42"),
            SUPPRESS,
            "suppressed: duplicate of 'bill:42' sent on email Mon 02 Mar 08:00 (UTC) (one per 1d)",
            id="sent-within-the-window-on-another-channel",
        ),
        pytest.param(
            Facts(UTC, sent=[sent("a", DAY - SECOND, content_key="bill:42")]),
            candidate(content_key="bill:42"),
            SUPPRESS,
            "suppressed: duplicate of 'bill:42'",
            id="one-second-inside-the-window",
        ),
        pytest.param(
            Facts(UTC, sent=[sent("a", DAY, content_key="bill:42")]),
            candidate(content_key="bill:42"),
            SEND,
            "within policy",
            id="exactly-a-window-ago",
        ),
        pytest.param(
            Facts(UTC, sent=[sent("a", HOUR, content_key="bill:41")]),
            candidate(content_key="bill:42"),
            SEND,
            "within policy",
            id="another-key",
        ),
        pytest.param(
            Facts(UTC, planned=[planned("a", NOW + DAY, channel=VIBER, content_key="bill:42")]),
            candidate(content_key="bill:42"),
            SUPPRESS,
            "suppressed: duplicate of 'bill:42' already planned on viber for Tue 03 Mar 10:00",
            id="already-planned",
        ),
        pytest.param(
            Facts(
                UTC,
                sent=[sent("n", HOUR, content_key="bill:42")],
                planned=[planned("n", NOW, content_key="bill:42")],
            ),
            candidate(content_key="bill:42"),
            SEND,
            "within policy",
            id="its-own-messages-are-no-duplicates",
        ),
        pytest.param(
            Facts(UTC, sent=[sent("a", HOUR, content_key="bill:42")]),
            candidate(content_key="bill:42", first=False),
            SEND,
            "within policy",
            id="a-fallback-is-not-judged-again",
        ),
        pytest.param(
            Facts(UTC, sent=[sent("a", HOUR, content_key="bill:42")]),
            candidate(),
            SEND,
            "within policy",
            id="no-key-no-duplicate",
        ),
    ],
)
def test_duplicates(facts: Facts, cand: Candidate, kind: VerdictKind, reason: str) -> None:
    verdict = evaluate(Policy(quiet_hours={}), facts, cand, NOW)
    assert verdict.kind is kind
    assert reason in verdict.reason


def test_the_dedup_window_comes_from_the_policy() -> None:
    policy = Policy(quiet_hours={}, dedup_window=WEEK)
    facts = Facts(UTC, sent=[sent("a", 6 * DAY, content_key="k")])
    verdict = evaluate(policy, facts, candidate(content_key="k"), NOW)
    assert verdict.kind is SUPPRESS
    assert verdict.reason.endswith("(one per 7d)")


# Relevance ------------------------------------------------------------------------------------


AFTER_REPAID = RelevanceRule("loan_repaid", Selector(topic="loan_offer"), timedelta(days=30))
AFTER_COMPLAINT = RelevanceRule("complaint", Selector(category=MARKETING), WEEK)
AFTER_CLOSED = RelevanceRule(
    "account_closed", Selector(category=MARKETING, topic="card_offer"), timedelta(days=90)
)


@pytest.mark.parametrize(
    ("rule", "event", "cand", "kind"),
    [
        pytest.param(
            AFTER_REPAID,
            Happened("loan_repaid", NOW - 29 * DAY),
            candidate(topic="loan_offer"),
            SUPPRESS,
            id="topic-within-the-duration",
        ),
        pytest.param(
            AFTER_REPAID,
            Happened("loan_repaid", NOW - 30 * DAY + SECOND),
            candidate(topic="loan_offer"),
            SUPPRESS,
            id="topic-one-second-before-the-end",
        ),
        pytest.param(
            AFTER_REPAID,
            Happened("loan_repaid", NOW - 30 * DAY),
            candidate(topic="loan_offer"),
            SEND,
            id="topic-just-after-the-duration",
        ),
        pytest.param(
            AFTER_REPAID,
            Happened("loan_repaid", NOW - DAY),
            candidate(topic="card_offer"),
            SEND,
            id="topic-another-topic",
        ),
        pytest.param(
            AFTER_REPAID,
            Happened("loan_taken", NOW - DAY),
            candidate(topic="loan_offer"),
            SEND,
            id="topic-another-event",
        ),
        pytest.param(
            AFTER_REPAID,
            Happened("loan_repaid", NOW - DAY),
            candidate(SERVICE, topic="loan_offer"),
            SUPPRESS,
            id="topic-any-category",
        ),
        pytest.param(
            AFTER_COMPLAINT,
            Happened("complaint", NOW - DAY),
            candidate(MARKETING, topic="anything"),
            SUPPRESS,
            id="category-selected",
        ),
        pytest.param(
            AFTER_COMPLAINT,
            Happened("complaint", NOW - DAY),
            candidate(SERVICE),
            SEND,
            id="category-another-category",
        ),
        pytest.param(
            AFTER_CLOSED,
            Happened("account_closed", NOW - DAY),
            candidate(MARKETING, topic="card_offer"),
            SUPPRESS,
            id="both-selected",
        ),
        pytest.param(
            AFTER_CLOSED,
            Happened("account_closed", NOW - DAY),
            candidate(SERVICE, topic="card_offer"),
            SEND,
            id="both-category-differs",
        ),
        pytest.param(
            AFTER_CLOSED,
            Happened("account_closed", NOW - DAY),
            candidate(MARKETING, topic="loan_offer"),
            SEND,
            id="both-topic-differs",
        ),
        pytest.param(
            AFTER_REPAID,
            Happened("loan_repaid", NOW - DAY),
            candidate(topic="loan_offer", first=False),
            SEND,
            id="a-fallback-is-not-judged-again",
        ),
    ],
)
def test_relevance(
    rule: RelevanceRule, event: Happened, cand: Candidate, kind: VerdictKind
) -> None:
    policy = Policy(quiet_hours={}, relevance=(rule,))
    verdict = evaluate(policy, Facts(UTC, events=[event]), cand, NOW)
    assert verdict.kind is kind, verdict.reason
    if kind is SUPPRESS:
        assert f"after {rule.after} (happened " in verdict.reason


def test_relevance_names_the_rule_and_the_latest_event() -> None:
    policy = Policy(quiet_hours={}, relevance=(AFTER_REPAID,))
    events = [Happened("loan_repaid", NOW - 20 * DAY), Happened("loan_repaid", NOW - 2 * DAY)]
    verdict = evaluate(policy, Facts(KYIV, events=events), candidate(topic="loan_offer"), NOW)
    assert verdict.reason == (
        "suppressed: no loan_offer for 30d after loan_repaid (happened Sat 28 Feb 12:00 "
        "(Europe/Kyiv))"
    )


# The suppression list and the reasons ---------------------------------------------------------


@pytest.mark.parametrize("category", [SECURITY, TRANSACTIONAL, MARKETING])
def test_a_suppressed_address_is_skipped(category: Category) -> None:
    facts = Facts(UTC, suppressed="on the suppression list since 2026-02-01 (hard bounce)")
    verdict = evaluate(DEFAULT_POLICY, facts, candidate(category), NOW)
    assert verdict.kind is SKIP
    assert verdict.reason == "sms skipped: on the suppression list since 2026-02-01 (hard bounce)"


def test_a_cap_reason_quotes_the_rule_and_the_numbers() -> None:
    policy = Policy(caps=(cap(2, WEEK, MARKETING),))
    history = [sent("a", 3 * DAY), sent("b", DAY)]
    verdict = evaluate(policy, Facts(KYIV, sent=history), candidate(), NOW)
    assert verdict.kind is DEFER
    assert verdict.reason == (
        "deferred: marketing cap 2/week reached (2 sent since Fri 27 Feb 12:00 (Europe/Kyiv)); "
        "next slot Fri 06 Mar 12:00 (Europe/Kyiv)"
    )
    assert verdict.notes == ("marketing cap 2/week: 2 of 2 used",)


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        (cap(1, DAY, channel=SMS), "all sms cap 1/day"),
        (cap(1, HOUR, MARKETING, topic="promo"), "marketing promo cap 1/hour"),
        (cap(1, timedelta(hours=12), journey="welcome"), "all in journey 'welcome' cap 1/12h"),
        (cap(1, DAY, name="daily promo"), "cap 'daily promo' 1/day"),
    ],
)
def test_a_reason_quotes_the_cap_as_written(rule: CapRule, label: str) -> None:
    cand = candidate(topic="promo", journey="welcome")
    history = [sent("a", 10 * 60 * SECOND, topic="promo", journey="welcome")]
    verdict = evaluate(caps_only(rule), Facts(UTC, sent=history), cand, NOW)
    assert verdict.kind is DEFER
    assert verdict.reason.startswith(f"deferred: {label} reached (1 sent since Mon 02 Mar 09:50")


def test_send_notes_each_caps_usage() -> None:
    policy = caps_only(cap(2, DAY), cap(5, WEEK, MARKETING))
    verdict = evaluate(policy, Facts(UTC, sent=[sent("a", 2 * DAY)]), candidate(), NOW)
    assert verdict.kind is SEND
    assert verdict.notes == ("all cap 2/day: 0 of 2 used", "marketing cap 5/week: 1 of 5 used")


# Properties -----------------------------------------------------------------------------------


WINDOWS = [HOUR, 3 * HOUR, DAY, WEEK]
# Near the clock changes, so quiet hours meet repeated and skipped local times.
ORIGINS = [
    NOW,
    utc(2026, 3, 28, 22, 0),
    utc(2026, 3, 8, 5, 0),
    utc(2026, 10, 25, 1, 10),  # the repeated 03:10 in Kyiv
    utc(2026, 11, 1, 6, 10),  # the repeated 01:10 in New York
]
ZONES = [UTC, KYIV, NEW_YORK]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Policy, Facts, Candidate, datetime]:
    now = draw(st.sampled_from(ORIGINS))
    caps = draw(
        st.lists(
            st.builds(
                CapRule,
                limit=st.integers(1, 4),
                window=st.sampled_from(WINDOWS),
                category=st.sampled_from([None, MARKETING]),
                channel=st.sampled_from([None, SMS]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    quiet: dict[Category, QuietHours] = {}
    if draw(st.booleans()):
        start, end = draw(
            st.tuples(st.integers(0, 47), st.integers(0, 47)).filter(lambda p: p[0] != p[1])
        )
        quiet[MARKETING] = QuietHours(
            time(start // 2, 30 * (start % 2)), time(end // 2, 30 * (end % 2))
        )
    seconds = st.integers(1, int(WEEK.total_seconds()) + 3600)
    history = [
        Sent(
            f"s{i}",
            now - timedelta(seconds=ago),
            draw(st.sampled_from([MARKETING, TRANSACTIONAL])),
            draw(st.sampled_from([SMS, VIBER])),
        )
        for i, ago in enumerate(draw(st.lists(seconds, max_size=8)))
    ]
    plans = [
        planned(f"p{i}", now + timedelta(seconds=ahead), MARKETING, priority=90)
        for i, ahead in enumerate(draw(st.lists(seconds, max_size=3)))
    ]
    facts = Facts(draw(st.sampled_from(ZONES)), sent=history, planned=plans)
    cand = candidate(created_at=now, valid_until=now + timedelta(days=90))
    policy = Policy(caps=tuple(caps), quiet_hours=quiet)
    return policy, facts, cand, now


def _counted_times(rule: CapRule, facts: Facts) -> list[datetime]:
    """What the rule counts, the simple way: sends and plans matching it, one time per
    notification for a rule without a channel."""
    times: dict[str, datetime] = {}
    every: list[datetime] = []
    occupied: list[Sent | Planned] = [*facts.sent, *facts.planned]
    for o in occupied:
        if rule.category not in (None, o.category) or rule.channel not in (None, o.channel):
            continue
        if rule.channel is not None:
            every.append(o.at)
        else:
            times[o.notification_id] = min(o.at, times.get(o.notification_id, o.at))
    return every + list(times.values())


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_a_deferred_slot_is_free_and_the_earliest(
    scenario: tuple[Policy, Facts, Candidate, datetime],
) -> None:
    policy, facts, cand, now = scenario
    verdict = evaluate(policy, facts, cand, now)
    assert verdict.kind in (SEND, DEFER)
    if verdict.kind is SEND:
        for rule in policy.caps:
            around = [t for t in _counted_times(rule, facts) if abs(t - now) < rule.window]
            assert len(around) < rule.limit, rule.label
        return
    until = verdict.until
    assert until is not None
    assert until > now
    assert evaluate(policy, facts, cand, until).kind is SEND
    moments = {now} | {t + rule.window for rule in policy.caps for t in _counted_times(rule, facts)}
    for moment in sorted(m for m in moments if now <= m < until):
        assert evaluate(policy, facts, cand, moment).kind is DEFER, moment
    # Asked again on the way, the answer is the same slot.
    halfway = now + (until - now) / 2
    assert evaluate(policy, facts, cand, halfway).until == until


@pytest.mark.parametrize(
    ("sent", "planned", "words"),
    [
        (2, 0, "(2 sent since "),
        (1, 1, "(1 sent since Mon 02 Mar 10:00 (UTC), 1 planned)"),
        (0, 2, "(2 planned from "),
    ],
    ids=["sent-only", "sent-and-planned", "planned-only"],
)
def test_a_cap_reason_tells_sent_from_planned(sent: int, planned: int, words: str) -> None:
    """The reason counts the slots of outranking deferred notifications apart from what was
    actually sent, so it agrees with the contact's calendar."""
    from kaskad.domain.policy.evaluate import _tally

    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    times = [now - timedelta(hours=2 - i) for i in range(sent)]
    times += [now + timedelta(hours=1 + i) for i in range(planned)]
    assert words in f"({_tally(times, now, UTC)})"
