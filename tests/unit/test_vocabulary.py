"""The status vocabulary: goal reaching, forward-only progress and failures."""

from __future__ import annotations

import pytest

from kaskad.domain.vocabulary import (
    DEFAULT_PRIORITY,
    FAILURES,
    PROGRESS_RANK,
    Category,
    MessageStatus,
    Until,
    advances,
    is_failure,
    reaches,
)

S = MessageStatus

# The lifecycle written out by hand, so the tests do not lean on the module's own tables.
PROGRESS_ORDER = [S.PLANNED, S.QUEUED, S.SUBMITTED, S.SENT, S.DELIVERED, S.SEEN, S.CLICKED]
FAILURE_STATUSES = [S.FAILED, S.EXPIRED, S.REJECTED, S.UNDELIVERABLE, S.SUPPRESSED, S.CANCELLED]


def test_every_status_is_either_progress_or_failure() -> None:
    assert set(PROGRESS_ORDER) | set(FAILURE_STATUSES) == set(MessageStatus)
    assert not set(PROGRESS_ORDER) & set(FAILURE_STATUSES)
    assert set(PROGRESS_RANK) == set(PROGRESS_ORDER)
    assert set(FAILURES) == set(FAILURE_STATUSES)


def test_progress_rank_follows_the_lifecycle_order() -> None:
    ranks = [PROGRESS_RANK[s] for s in PROGRESS_ORDER]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


@pytest.mark.parametrize("until", list(Until))
def test_until_status_is_the_message_status_of_the_same_name(until: Until) -> None:
    assert until.status is MessageStatus(until.value)
    assert until.status in PROGRESS_ORDER


# -- is_failure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (S.PLANNED, False),
        (S.QUEUED, False),
        (S.SUBMITTED, False),
        (S.SENT, False),
        (S.DELIVERED, False),
        (S.SEEN, False),
        (S.CLICKED, False),
        (S.FAILED, True),
        (S.EXPIRED, True),
        (S.REJECTED, True),
        (S.UNDELIVERABLE, True),
        (S.SUPPRESSED, True),
        (S.CANCELLED, True),
    ],
)
def test_is_failure(status: MessageStatus, expected: bool) -> None:
    assert is_failure(status) is expected


# -- reaches ------------------------------------------------------------------------------

# until -> the statuses that reach it (a click implies a view implies a delivery ...).
REACHING: dict[Until, set[MessageStatus]] = {
    Until.SENT: {S.SENT, S.DELIVERED, S.SEEN, S.CLICKED},
    Until.DELIVERED: {S.DELIVERED, S.SEEN, S.CLICKED},
    Until.SEEN: {S.SEEN, S.CLICKED},
    Until.CLICKED: {S.CLICKED},
}


@pytest.mark.parametrize(
    ("status", "until", "expected"),
    [(status, until, status in REACHING[until]) for until in Until for status in MessageStatus],
    ids=lambda v: str(v),
)
def test_reaches(status: MessageStatus, until: Until, expected: bool) -> None:
    assert reaches(status, until) is expected


@pytest.mark.parametrize("status", FAILURE_STATUSES)
def test_failures_reach_no_goal(status: MessageStatus) -> None:
    assert not any(reaches(status, until) for until in Until)


# -- advances -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "reported", "expected"),
    [
        # forward moves
        (S.PLANNED, S.QUEUED, True),
        (S.QUEUED, S.SUBMITTED, True),
        (S.SUBMITTED, S.SENT, True),
        (S.SENT, S.DELIVERED, True),
        (S.DELIVERED, S.SEEN, True),
        (S.SEEN, S.CLICKED, True),
        (S.SUBMITTED, S.CLICKED, True),  # skipping statuses is fine
        (S.PLANNED, S.DELIVERED, True),
        # the same status again is not a move
        (S.SENT, S.SENT, False),
        (S.DELIVERED, S.DELIVERED, False),
        (S.CLICKED, S.CLICKED, False),
        # never backwards
        (S.DELIVERED, S.SENT, False),
        (S.CLICKED, S.SEEN, False),
        (S.SEEN, S.DELIVERED, False),
        (S.SENT, S.QUEUED, False),
        (S.CLICKED, S.PLANNED, False),
        # a failure before delivery moves the message
        (S.PLANNED, S.CANCELLED, True),
        (S.QUEUED, S.SUPPRESSED, True),
        (S.SUBMITTED, S.REJECTED, True),
        (S.SENT, S.UNDELIVERABLE, True),
        (S.SENT, S.EXPIRED, True),
        (S.SENT, S.FAILED, True),
        # a failure after delivery does not undo it
        (S.DELIVERED, S.FAILED, False),
        (S.DELIVERED, S.UNDELIVERABLE, False),
        (S.SEEN, S.EXPIRED, False),
        (S.CLICKED, S.REJECTED, False),
        # a failed message stays failed
        (S.FAILED, S.DELIVERED, False),
        (S.UNDELIVERABLE, S.CLICKED, False),
        (S.EXPIRED, S.FAILED, False),
        (S.REJECTED, S.REJECTED, False),
        # a cancelled message that a provider reports on was handed over after all
        (S.CANCELLED, S.SENT, True),
        (S.CANCELLED, S.UNDELIVERABLE, True),
        (S.CANCELLED, S.CANCELLED, False),
    ],
)
def test_advances(current: MessageStatus, reported: MessageStatus, expected: bool) -> None:
    assert advances(current, reported) is expected


@pytest.mark.parametrize("current", PROGRESS_ORDER)
@pytest.mark.parametrize("reported", PROGRESS_ORDER)
def test_progress_advances_exactly_when_later_in_the_lifecycle(
    current: MessageStatus, reported: MessageStatus
) -> None:
    later = PROGRESS_ORDER.index(reported) > PROGRESS_ORDER.index(current)
    assert advances(current, reported) is later


@pytest.mark.parametrize("current", PROGRESS_ORDER)
@pytest.mark.parametrize("reported", FAILURE_STATUSES)
def test_failure_advances_only_before_delivery(
    current: MessageStatus, reported: MessageStatus
) -> None:
    before_delivery = PROGRESS_ORDER.index(current) < PROGRESS_ORDER.index(S.DELIVERED)
    assert advances(current, reported) is before_delivery


@pytest.mark.parametrize("current", [s for s in FAILURE_STATUSES if s is not S.CANCELLED])
@pytest.mark.parametrize("reported", list(MessageStatus))
def test_nothing_advances_a_failed_message(current: MessageStatus, reported: MessageStatus) -> None:
    assert advances(current, reported) is False


@pytest.mark.parametrize("reported", list(MessageStatus))
def test_a_provider_report_overrules_a_cancellation(reported: MessageStatus) -> None:
    assert advances(S.CANCELLED, reported) is (reported is not S.CANCELLED)


def test_default_priority_orders_categories_by_urgency() -> None:
    assert set(DEFAULT_PRIORITY) == set(Category)
    order = [Category.SECURITY, Category.TRANSACTIONAL, Category.SERVICE, Category.MARKETING]
    priorities = [DEFAULT_PRIORITY[c] for c in order]
    assert priorities == sorted(priorities, reverse=True)
    assert len(set(priorities)) == len(priorities)
