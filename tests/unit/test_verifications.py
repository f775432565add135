"""One-time codes as plain functions: generation, hashing, the check state machine, rate
limits at their window edges, and the texts with the code masked."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaskad.domain.verifications import (
    MASK,
    CheckResult,
    RateLimit,
    VerificationState,
    VerificationStatus,
    Wording,
    check,
    check_alphabet,
    check_rate,
    client_network,
    code_matches,
    content,
    expiry_minutes,
    generate_code,
    hash_code,
    masked_contents,
)
from kaskad.domain.vocabulary import Channel

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
KEY = b"k" * 32
WORDING = Wording("Your code is {code}. It expires in {minutes} minutes.", "Code", "Your code")
P, A, E, F, S = (
    VerificationStatus.PENDING,
    VerificationStatus.APPROVED,
    VerificationStatus.EXPIRED,
    VerificationStatus.FAILED,
    VerificationStatus.SUPERSEDED,
)


def state(
    status: VerificationStatus = P, attempts: int = 0, expires_in: float = 300
) -> VerificationState:
    return VerificationState(status, attempts, 5, NOW + timedelta(seconds=expires_in))


@pytest.mark.parametrize(
    ("before", "matches", "after_s", "result", "status", "attempts"),
    [
        (state(), True, 0, CheckResult.APPROVED, A, 0),
        (state(), False, 0, CheckResult.WRONG_CODE, P, 1),
        (state(attempts=3), False, 0, CheckResult.WRONG_CODE, P, 4),
        (state(attempts=4), False, 0, CheckResult.TOO_MANY_ATTEMPTS, F, 5),
        (state(attempts=4), True, 0, CheckResult.APPROVED, A, 4),
        (state(), True, 299.999, CheckResult.APPROVED, A, 0),  # the last moment
        (state(), True, 300, CheckResult.EXPIRED, E, 0),  # expiry itself is too late
        (state(), False, 301, CheckResult.EXPIRED, E, 0),  # no attempt used when late
        (state(A), False, 0, CheckResult.ALREADY_APPROVED, A, 0),
        (state(A), True, 400, CheckResult.ALREADY_APPROVED, A, 0),
        (state(F, 5), True, 0, CheckResult.TOO_MANY_ATTEMPTS, F, 5),
        (state(E), True, 0, CheckResult.EXPIRED, E, 0),
        (state(S), True, 0, CheckResult.EXPIRED, S, 0),
    ],
)
def test_check(
    before: VerificationState,
    matches: bool,
    after_s: float,
    result: CheckResult,
    status: VerificationStatus,
    attempts: int,
) -> None:
    after, answer = check(before, matches=matches, now=NOW + timedelta(seconds=after_s))
    assert (answer, after.status, after.attempts) == (result, status, attempts)


@given(st.lists(st.booleans(), max_size=12))
def test_attempts_never_exceed_the_maximum_and_a_settled_state_stays(checks: list[bool]) -> None:
    current = state()
    for matches in checks:
        was = current
        current, _ = check(current, matches=matches, now=NOW)
        assert current.attempts <= current.max_attempts
        if was.settled:
            assert current == was


@pytest.mark.parametrize(
    ("status", "later", "seen"),
    [(P, 0, P), (P, 300, E), (A, 300, A), (F, 0, F), (S, 0, S)],
)
def test_status_as_seen_by_a_reader(
    status: VerificationStatus, later: float, seen: VerificationStatus
) -> None:
    assert state(status).seen_at(NOW + timedelta(seconds=later)) is seen


@pytest.mark.parametrize(
    ("length", "alphabet"), [(6, "0123456789"), (4, "01"), (12, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789")]
)
def test_codes_have_the_length_and_alphabet_asked(length: int, alphabet: str) -> None:
    rng = random.Random(7)
    codes = {generate_code(length, alphabet, rng.randrange) for _ in range(200)}
    assert all(len(c) == length and set(c) <= set(alphabet) for c in codes)
    assert len(codes) > 1


def test_the_random_source_decides_the_code() -> None:
    draws = iter([1, 2, 3, 4, 5, 6])
    assert generate_code(6, "0123456789", lambda n: next(draws)) == "123456"
    assert generate_code(3, "abc", lambda n: n - 1) == "ccc"


@pytest.mark.parametrize("alphabet", ["", "0", "00123", "01 2", "01*"])
def test_unusable_alphabets_are_refused(alphabet: str) -> None:
    with pytest.raises(ValueError, match="alphabet"):
        check_alphabet(alphabet)


def test_hashes_are_keyed_bound_to_the_verification_and_compared_safely() -> None:
    stored = hash_code(KEY, "ver_1", "123456")
    assert "123456" not in stored
    assert len(stored) == 64
    assert code_matches(KEY, "ver_1", "123456", stored)
    assert not code_matches(KEY, "ver_1", "123457", stored)
    assert not code_matches(KEY, "ver_2", "123456", stored)
    assert not code_matches(b"x" * 32, "ver_1", "123456", stored)
    assert not code_matches(KEY, "ver_1", "123456", None)


LIMIT = RateLimit("phone", 3, timedelta(minutes=15))


@pytest.mark.parametrize(
    ("minutes_ago", "allowed", "retry_in"),
    [
        ((), True, None),
        ((1, 2), True, None),
        ((1, 2, 3), False, 12),  # the oldest of the three leaves in 12 minutes
        ((1, 2, 15), True, None),  # 15 minutes ago is outside a 15-minute window
        ((1, 2, 14), False, 1),
        ((1, 2, 3, 4), False, 12),  # the third newest frees the next slot
    ],
)
def test_rate_limit_at_the_window_edges(
    minutes_ago: tuple[int, ...], allowed: bool, retry_in: int | None
) -> None:
    verdict = check_rate(LIMIT, [NOW - timedelta(minutes=m) for m in minutes_ago], NOW)
    assert verdict.allowed is allowed
    expected = NOW + timedelta(minutes=retry_in) if retry_in is not None else None
    assert verdict.retry_at == expected


def test_a_zero_limit_is_off() -> None:
    off = RateLimit("ip", 0, timedelta(hours=1))
    assert check_rate(off, [NOW] * 100, NOW).allowed


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:db8:0:1::5", "2001:db8:0:1::/64"),
        ("2001:db8:0:1:ffff::1", "2001:db8:0:1::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
    ],
)
def test_client_networks(ip: str, network: str) -> None:
    assert client_network(ip) == network


def test_not_an_ip() -> None:
    with pytest.raises(ValueError):
        client_network("localhost")


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        (Channel.SMS, {"text": "Your code is 4821. It expires in 5 minutes."}),
        (Channel.PUSH, {"title": "Code", "text": "Your code is 4821. It expires in 5 minutes."}),
        (
            Channel.EMAIL,
            {"subject": "Your code", "text": "Your code is 4821. It expires in 5 minutes."},
        ),
        (Channel.VOICE, {"text": "Your code is 4 8 2 1. It expires in 5 minutes."}),
    ],
)
def test_content_per_channel(channel: Channel, expected: dict[str, str]) -> None:
    assert content(channel, WORDING, code="4821", minutes=5) == expected


def test_masked_contents_keep_the_text_without_the_code() -> None:
    masked = masked_contents([Channel.PUSH, Channel.VOICE], WORDING, 5)
    assert [m["text"] for m in masked] == [
        f"Your code is {MASK}. It expires in 5 minutes.",
        f"Your code is {MASK}. It expires in 5 minutes.",
    ]


def test_a_template_cannot_reach_attributes() -> None:
    odd = Wording("{code.__class__} {code} {0}", "", "")
    assert content(Channel.SMS, odd, code="12", minutes=1)["text"] == "{code.__class__} 12 {0}"


@pytest.mark.parametrize(("seconds", "minutes"), [(300, 5), (301, 6), (30, 1), (60, 1), (3600, 60)])
def test_expiry_in_minutes_rounds_up(seconds: int, minutes: int) -> None:
    assert expiry_minutes(timedelta(seconds=seconds)) == minutes
