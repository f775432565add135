"""Provider routing: the choice of providers, the circuit breaker, rate limits and settings."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from kaskad.domain.providers import OutgoingMessage, SendResult
from kaskad.domain.routing import (
    BreakerPhase,
    BreakerSettings,
    CircuitBreaker,
    Route,
    after,
    candidates,
    first_admitted,
)
from kaskad.domain.vocabulary import Category, Channel
from kaskad.engine.router import Router
from kaskad.engine.throttle import Gate, ProviderLimits, TokenBucket
from kaskad.settings import Settings

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PHONE = "+380501234567"


class Fixed:
    """A random source that answers from a list, to pin a weighted draw."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


@pytest.mark.parametrize(
    ("prefixes", "address", "expected"),
    [
        ((), PHONE, 0),
        (("+38050",), PHONE, 5),  # digits count, not the "+"
        (("38050",), PHONE, 5),  # a prefix may leave out the "+"
        (("+380", "+38050"), PHONE, 5),  # the longest of a route's prefixes counts
        (("+38067",), PHONE, None),
        (("+3805012345678",), PHONE, None),  # longer than the address
        (("+1",), "+15551234567", 1),
    ],
)
def test_prefix_match(prefixes: tuple[str, ...], address: str, expected: int | None) -> None:
    assert Route("a", prefixes=prefixes).match(address) == expected


@pytest.mark.parametrize(
    ("routes", "address", "expected"),
    [
        # The longest matching prefix first, whatever it costs; the catch-all after it.
        (
            [Route("all", cost=0.01), Route("ua", cost=0.05, prefixes=("+380",))],
            PHONE,
            ["ua", "all"],
        ),
        (
            [Route("ua", prefixes=("+380",)), Route("kyivstar", prefixes=("+38067",))],
            PHONE,
            ["ua"],
        ),
        # Least cost among equal prefixes.
        ([Route("dear", cost=0.03), Route("cheap", cost=0.02)], PHONE, ["cheap", "dear"]),
        # Then the lower priority number.
        (
            [Route("second", priority=2), Route("first", priority=1)],
            PHONE,
            ["first", "second"],
        ),
        # Cost before priority.
        (
            [Route("p1", priority=1, cost=0.05), Route("p2", priority=2, cost=0.01)],
            PHONE,
            ["p2", "p1"],
        ),
        # A provider named twice appears once, at its best place.
        (
            [
                Route("a", cost=0.02, prefixes=("+38050",)),
                Route("b", cost=0.03),
                Route("a", cost=0.01),
            ],
            PHONE,
            ["a", "b"],
        ),
        # A standby (weight 0) comes after the weighted routes of its rank.
        ([Route("standby", weight=0), Route("main")], PHONE, ["main", "standby"]),
        ([Route("x", prefixes=("+44",))], PHONE, []),
    ],
)
def test_candidates_order(routes: list[Route], address: str, expected: list[str]) -> None:
    assert candidates(routes, address, random.Random(1)) == expected


@pytest.mark.parametrize(
    ("draws", "expected"),
    [
        ((0.0, 0.0), ["a", "b", "c"]),  # 0 falls in a's share of 70
        ((0.69, 0.0), ["a", "b", "c"]),
        ((0.71, 0.0), ["b", "a", "c"]),  # 71 of 100 is past a's 70
        ((0.99, 0.99), ["c", "b", "a"]),
    ],
)
def test_weighted_draw_among_equals(draws: tuple[float, ...], expected: list[str]) -> None:
    routes = [Route("a", weight=70), Route("b", weight=20), Route("c", weight=10)]
    assert candidates(routes, PHONE, Fixed(*draws, 0.0)) == expected


def test_weights_share_traffic_with_a_seeded_random() -> None:
    rng = random.Random(42)
    routes = [Route("a", weight=70), Route("b", weight=30)]
    firsts = Counter(candidates(routes, PHONE, rng)[0] for _ in range(10_000))
    assert 6_800 <= firsts["a"] <= 7_200
    assert firsts["a"] + firsts["b"] == 10_000


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        (None, ["a", "b", "c"]),
        ("a", ["b", "c", "a"]),
        ("b", ["c", "a", "b"]),
        ("c", ["a", "b", "c"]),
        ("gone", ["a", "b", "c"]),  # a provider no longer routed: start at the top
    ],
)
def test_after_a_failure_the_next_provider_goes_first(
    failed: str | None, expected: list[str]
) -> None:
    assert after(["a", "b", "c"], failed) == expected


@pytest.mark.parametrize(
    ("open_", "expected"),
    [(set(), "a"), ({"a"}, "b"), ({"a", "b"}, "c"), ({"a", "b", "c"}, None)],
)
def test_first_admitted_skips_open_breakers(open_: set[str], expected: str | None) -> None:
    assert first_admitted(["a", "b", "c"], lambda name: name not in open_) == expected


SETTINGS = BreakerSettings(failures_to_open=3, open_for=timedelta(seconds=30))


def _drive(events: Sequence[tuple[int, str]]) -> CircuitBreaker:
    breaker = CircuitBreaker(SETTINGS)
    for second, event in events:
        now = T0 + timedelta(seconds=second)
        if event == "fail":
            breaker = breaker.failed(now)
        elif event == "ok":
            breaker = breaker.succeeded()
        else:
            assert breaker.admits(now), f"{event} at {second}s was not admitted"
            breaker = breaker.sent(now)
    return breaker


@pytest.mark.parametrize(
    ("events", "at", "phase", "admits"),
    [
        ([], 0, BreakerPhase.CLOSED, True),
        ([(0, "fail"), (1, "fail")], 2, BreakerPhase.CLOSED, True),
        ([(0, "fail"), (1, "fail"), (2, "fail")], 3, BreakerPhase.OPEN, False),
        # A success in between starts the count again.
        ([(0, "fail"), (1, "fail"), (2, "ok"), (3, "fail")], 4, BreakerPhase.CLOSED, True),
        # Open for 30 s after the third failure, then half-open...
        ([(0, "fail"), (1, "fail"), (2, "fail")], 31, BreakerPhase.OPEN, False),
        ([(0, "fail"), (1, "fail"), (2, "fail")], 32, BreakerPhase.HALF_OPEN, True),
        # ...which lets exactly one probe through.
        ([(0, "fail"), (1, "fail"), (2, "fail"), (32, "send")], 33, BreakerPhase.HALF_OPEN, False),
        # A successful probe closes it; a failed one opens it again for another 30 s.
        (
            [(0, "fail"), (1, "fail"), (2, "fail"), (32, "send"), (33, "ok")],
            34,
            BreakerPhase.CLOSED,
            True,
        ),
        (
            [(0, "fail"), (1, "fail"), (2, "fail"), (32, "send"), (33, "fail")],
            62,
            BreakerPhase.OPEN,
            False,
        ),
        (
            [(0, "fail"), (1, "fail"), (2, "fail"), (32, "send"), (33, "fail")],
            63,
            BreakerPhase.HALF_OPEN,
            True,
        ),
        # A late failure while open does not push the open period further out.
        ([(0, "fail"), (1, "fail"), (2, "fail"), (20, "fail")], 32, BreakerPhase.HALF_OPEN, True),
    ],
)
def test_breaker_transitions(
    events: list[tuple[int, str]], at: int, phase: BreakerPhase, admits: bool
) -> None:
    breaker = _drive(events)
    now = T0 + timedelta(seconds=at)
    assert breaker.phase_at(now) is phase
    assert breaker.admits(now) is admits


def test_a_withdrawn_probe_lets_the_next_message_probe() -> None:
    breaker = _drive([(0, "fail"), (1, "fail"), (2, "fail"), (32, "send")])
    assert not breaker.admits(T0 + timedelta(seconds=33))
    assert breaker.withdrawn().admits(T0 + timedelta(seconds=33))


@pytest.mark.parametrize(
    ("rate", "burst", "calls", "expected"),
    [
        # A full bucket of 2 takes two at once; the third waits half a second at 2/s.
        (2.0, None, [(0.0, 3)], [[0.0, 0.0, 0.5]]),
        (2.0, None, [(0.0, 2), (0.25, 2)], [[0.0, 0.0], [0.25, 0.75]]),
        (2.0, None, [(0.0, 2), (0.5, 2)], [[0.0, 0.0], [0.0, 0.5]]),
        # Refill never saves more than the burst.
        (1.0, 3, [(0.0, 3), (100.0, 4)], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]),
        # Time going backwards (another clock's reading) adds nothing.
        (1.0, 1, [(10.0, 1), (5.0, 1)], [[0.0], [1.0]]),
    ],
)
def test_token_bucket_waits(
    rate: float,
    burst: int | None,
    calls: list[tuple[float, int]],
    expected: list[list[float]],
) -> None:
    bucket = TokenBucket(rate, burst)
    got = [[round(w, 6) for w in bucket.waits(now, count)] for now, count in calls]
    assert got == expected


def _message(mid: str, **kw: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "id": mid,
        "notification_id": "n",
        "contact_id": "c",
        "channel": Channel.SMS,
        "provider": "sandbox",
        "address": PHONE,
        "content": {"text": "x"},
        "category": Category.SERVICE,
        "attempt": 1,
    }
    values.update(kw)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


def test_gate_defers_what_is_over_the_rate_and_cuts_to_the_window() -> None:
    gate = Gate(ProviderLimits(rate_limit=2, window=1))
    admitted, held = gate.admit([_message(f"m{i}") for i in range(3)], now=0.0)
    assert [m.id for m in admitted] == ["m0", "m1"]
    assert [(r.message_id, r.outcome.value, r.retry_after) for r in held] == [
        ("m2", "deferred", 0.5)
    ]
    assert [[m.id for m in c] for c in gate.chunks(admitted)] == [["m0"], ["m1"]]


ROUTES = {Channel.SMS: [Route("a", cost=0.01), Route("b", cost=0.02)]}


def _router() -> Router:
    return Router(ROUTES, {Channel.SMS: "sandbox", Channel.EMAIL: "sandbox"}, SETTINGS)


@pytest.mark.parametrize(
    ("message", "routable"),
    [
        (_message("m"), True),
        (_message("m", channel=Channel.EMAIL), False),  # no routes for email
        (_message("m", provider="pinned"), False),  # a step that named its provider
        (_message("m", provider="a", retried_on="a"), True),  # moved by routing before
    ],
)
def test_which_messages_are_routed(message: OutgoingMessage, routable: bool) -> None:
    assert _router().routable(message) is routable


def test_router_fails_over_after_a_retry_and_when_the_breaker_opens() -> None:
    router = _router()
    first = router.route([_message("m1")], T0)
    assert [m.provider for m in first.messages] == ["a"]
    assert first.failovers == []
    retried = router.route([_message("m1", provider="a", retried_on="a", attempt=2)], T0)
    assert [m.provider for m in retried.messages] == ["b"]
    assert [(f.source, f.target, f.reason) for f in retried.failovers] == [("a", "b", "retry")]
    for second in range(3):
        router.answered("a", [SendResult.retry("x", "down")], T0 + timedelta(seconds=second))
    fresh = router.route([_message("m2")], T0 + timedelta(seconds=5))
    assert [m.provider for m in fresh.messages] == ["b"]
    assert [(f.source, f.target, f.reason) for f in fresh.failovers] == [("a", "b", "circuit open")]


def test_half_open_lets_one_probe_through_and_a_success_brings_traffic_back() -> None:
    router = _router()
    for second in range(3):
        router.answered("a", [SendResult.retry("x", "down")], T0 + timedelta(seconds=second))
    later = T0 + timedelta(seconds=40)
    routed = router.route([_message(f"m{i}") for i in range(3)], later)
    assert [m.provider for m in routed.messages] == ["a", "b", "b"]
    router.answered("a", [SendResult.accepted("m0", "p0")], later)
    again = router.route([_message(f"n{i}") for i in range(2)], later)
    assert [m.provider for m in again.messages] == ["a", "a"]


def test_when_every_breaker_is_open_the_message_retries_at_the_first_probe() -> None:
    router = _router()
    for name in ("a", "b"):
        for second in range(3):
            router.answered(name, [SendResult.retry("x", "down")], T0 + timedelta(seconds=second))
    routed = router.route([_message("m1")], T0 + timedelta(seconds=10))
    assert routed.messages == []
    assert [(r.outcome.value, r.retry_after) for r in routed.blocked] == [("retry", 22.0)]


def test_a_resend_goes_where_the_first_attempt_went() -> None:
    """Seeded by the client reference: a resend after a crash picks the same provider."""
    routes = {Channel.SMS: [Route("a", weight=50), Route("b", weight=50)]}
    first = Router(routes, {Channel.SMS: "sandbox"}, SETTINGS)
    second = Router(routes, {Channel.SMS: "sandbox"}, SETTINGS)
    ids = [f"msg{i}" for i in range(50)]
    chosen = [m.provider for m in first.route([_message(i) for i in ids], T0).messages]
    again = [m.provider for m in second.route([_message(i, attempt=2) for i in ids], T0).messages]
    assert chosen == again
    assert set(chosen) == {"a", "b"}


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"routes": {"sms": [{"provider": "nowhere"}]}}, "provider 'nowhere' is not configured"),
        ({"routes": {"sms": [{"provider": "sandbox", "weight": -1}]}}, "greater than or equal"),
        ({"routes": {"sms": [{"provider": "sandbox", "cost": -0.1}]}}, "greater than or equal"),
        ({"routes": {"sms": []}}, "at least one route"),
        ({"routes": {"sms": [{"provider": "sandbox", "prefixes": [" +380"]}]}}, "prefix"),
        (
            {"sandbox_enabled": False, "routes": {"sms": [{"provider": "sandbox"}]}},
            "sandbox is disabled",
        ),
        ({"provider_limits": {"ghost": {"rate_limit": 5}}}, "no provider of that name"),
        ({"provider_limits": {"sandbox": {"rate_limit": 0}}}, "greater than 0"),
        ({"breaker": {"failures_to_open": 0}}, "greater than or equal to 1"),
    ],
)
def test_routing_settings_are_refused_with_a_reason(values: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        Settings(**values)  # type: ignore[arg-type]


def test_routing_settings_read() -> None:
    settings = Settings(
        routes={
            "sms": [
                {"provider": "sandbox", "priority": 1, "weight": 70, "prefixes": ["+38050"]},
                {"provider": "sandbox", "cost": 0.02},
            ]
        },
        provider_limits={"sandbox": {"rate_limit": 50, "window": 10}},
        breaker={"failures_to_open": 3, "open_seconds": 10},
    )
    assert settings.routes[Channel.SMS][0].prefixes == ["+38050"]
    assert settings.provider_limits["sandbox"].window == 10
    assert settings.breaker.open_seconds == 10


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=40), st.sampled_from(["fail", "ok", "send"])),
        max_size=40,
    )
)
def test_breaker_never_lets_more_than_one_probe_through(steps: list[tuple[int, str]]) -> None:
    """Whatever happens, an open breaker admits nothing and a half-open one one message
    until an answer comes; a closed one has fewer failures than it takes to open."""
    breaker = CircuitBreaker(SETTINGS)
    now = T0
    probes = 0
    for gap, event in steps:
        now += timedelta(seconds=gap)
        phase = breaker.phase_at(now)
        if phase is BreakerPhase.CLOSED:
            assert breaker.failures < SETTINGS.failures_to_open
        if event == "send":
            if not breaker.admits(now):
                assert phase is BreakerPhase.OPEN or probes == 1
                continue
            assert phase is not BreakerPhase.OPEN
            probes += phase is BreakerPhase.HALF_OPEN
            assert probes <= 1
            breaker = breaker.sent(now)
        else:
            breaker = breaker.failed(now) if event == "fail" else breaker.succeeded()
            probes = 0
