"""Moving planned notifications when a higher-ranked one takes their slot (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kaskad.domain.policy import Facts, Planned, Sent, load_policy, replan
from kaskad.domain.vocabulary import Category, Channel

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday, 12:00 in Kyiv
KYIV = ZoneInfo("Europe/Kyiv")


def planned(nid: str, at: datetime, priority: int, *, created: int = 0, **extra: object) -> Planned:
    return Planned(
        notification_id=nid,
        at=at,
        category=extra.pop("category", Category.MARKETING),  # type: ignore[arg-type]
        priority=priority,
        channel=Channel.SMS,
        created_at=NOW + timedelta(minutes=created),
        **extra,  # type: ignore[arg-type]
    )


POLICY = load_policy("caps:\n  marketing: 1/day\nquiet_hours: {marketing: never}\n")
SENT = [Sent("n0", NOW - timedelta(hours=1), Category.MARKETING, Channel.SMS)]
TOMORROW = NOW + timedelta(hours=23)  # when the send of an hour ago leaves the window


@pytest.mark.parametrize(
    ("plans", "moved"),
    [
        pytest.param(
            [planned("low", TOMORROW, 10), planned("high", TOMORROW, 50)],
            {"low": TOMORROW + timedelta(days=1)},
            id="higher-priority-keeps-the-slot",
        ),
        pytest.param(
            [planned("late", TOMORROW, 20, created=5), planned("early", TOMORROW, 20)],
            {"late": TOMORROW + timedelta(days=1)},
            id="equal-rank-first-come-keeps-it",
        ),
        pytest.param(
            [
                planned("mass", TOMORROW, 20, personal=False),
                planned("personal", TOMORROW, 20, created=9),
            ],
            {"mass": TOMORROW + timedelta(days=1)},
            id="personal-beats-mass",
        ),
        pytest.param(
            [planned("a", TOMORROW, 10), planned("b", TOMORROW + timedelta(days=1), 50)],
            {},
            id="no-conflict-no-move",
        ),
        pytest.param(
            [planned("only", TOMORROW, 10)],
            {},
            id="alone",
        ),
        pytest.param(
            [
                planned("low", TOMORROW, 10, valid_until=TOMORROW + timedelta(hours=2)),
                planned("high", TOMORROW, 50),
            ],
            {},
            id="no-slot-before-validity-stays-to-be-dropped-when-due",
        ),
    ],
)
def test_replan(plans: list[Planned], moved: dict[str, datetime]) -> None:
    moves = replan(POLICY, Facts(KYIV, SENT, plans), NOW)
    assert {m.notification_id: m.at for m in moves} == moved
    for move in moves:
        assert move.reason.startswith("moved: marketing cap 1/day reached")


def test_three_plans_for_one_slot_line_up_by_rank() -> None:
    plans = [planned("c", TOMORROW, 10), planned("b", TOMORROW, 30), planned("a", TOMORROW, 50)]
    moves = replan(POLICY, Facts(KYIV, SENT, plans), NOW)
    assert {m.notification_id: m.at for m in moves} == {
        "b": TOMORROW + timedelta(days=1),
        "c": TOMORROW + timedelta(days=2),
    }
