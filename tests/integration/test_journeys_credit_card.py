"""The credit card offer from the seeds, end to end on the virtual clock, on both databases:
email → 2 days → Viber with a button → seen but not clicked → SMS at 10:00; clicked → no SMS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kaskad.adapters.storage.schema import messages, runs
from kaskad.bootstrap import App
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from kaskad.services import contacts, events, journeys, sandbox
from kaskad.services.contacts import ContactPatch

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
PHONE = "+380501234567"
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, 14:00 in Kyiv


@pytest.fixture
def offer(app: App, clock: VirtualClock) -> App:
    clock.set(START)
    source = (EXAMPLES / "credit-card-offer.yaml").read_text()
    journeys.apply_journey(app.uow(), source=source, activate=True, now=clock.now())
    patch = ContactPatch(
        external_id="c-1",
        phone=PHONE,
        email="anna@bank.example",
        attributes={"age": 30},
        consents={"*": {"marketing": True}},
    )
    contacts.upsert_contacts(app.uow(), patches=[patch], default_region=None, now=clock.now())
    return app


def post(app: App, clock: VirtualClock, type_: str, key: str, **payload: Any) -> None:
    events.record_events(
        app.uow(),
        events=[events.EventIn("c-1", type_, key, None, payload)],
        create_contacts=False,
        routing=app.routing,
        now=clock.now(),
    )


def viber(app: App, clock: VirtualClock, outcome: str) -> None:
    sandbox.set_outcome(
        app.uow(),
        channel=Channel.VIBER,
        address=PHONE,
        outcome=outcome,
        default_region=None,
        now=clock.now(),
    )


def run_for(app: App, clock: VirtualClock, span: timedelta) -> None:
    asyncio.run(app.engine.run_until(clock, clock.now() + span))


def sent(app: App) -> list[tuple[str, str]]:
    with app.uow() as uow:
        query = select(messages.c.channel, messages.c.status).order_by(messages.c.created_at)
        return [(str(c), str(s)) for c, s in uow.connection.execute(query)]


def the_run(app: App) -> dict[str, Any]:
    with app.uow() as uow:
        [row] = uow.connection.execute(select(runs)).mappings().all()
        return dict(row)


def test_seen_but_not_clicked_gets_the_sms_at_ten(offer: App, clock: VirtualClock) -> None:
    viber(offer, clock, "seen")
    post(offer, clock, "salary_received", "s-1", amount=25_000)
    run_for(offer, clock, timedelta(days=5))
    assert sent(offer) == [("email", "delivered"), ("viber", "seen"), ("sms", "delivered")]
    run = the_run(offer)
    assert run["status"] == "completed"
    with offer.uow() as uow:
        sms_at = uow.connection.execute(
            select(messages.c.created_at).where(messages.c.channel == "sms")
        ).scalar_one()
    # Viber seen on Wednesday afternoon: the SMS waits for Thursday 10:00 in Kyiv (08:00 UTC).
    assert sms_at == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)


def test_clicked_gets_no_sms(offer: App, clock: VirtualClock) -> None:
    viber(offer, clock, "clicked")
    post(offer, clock, "salary_received", "s-1", amount=25_000)
    run_for(offer, clock, timedelta(days=5))
    assert sent(offer) == [("email", "delivered"), ("viber", "clicked")]
    assert the_run(offer)["status"] == "exited"


def test_never_seen_gets_no_sms(offer: App, clock: VirtualClock) -> None:
    viber(offer, clock, "undelivered")
    post(offer, clock, "salary_received", "s-1", amount=25_000)
    run_for(offer, clock, timedelta(days=6))
    assert [c for c, _ in sent(offer)] == ["email", "viber"]
    assert the_run(offer)["status"] == "exited"


def test_a_small_salary_starts_nothing(offer: App, clock: VirtualClock) -> None:
    post(offer, clock, "salary_received", "s-1", amount=5_000)
    run_for(offer, clock, timedelta(days=5))
    assert sent(offer) == []


def test_the_goal_ends_the_run_before_the_viber(offer: App, clock: VirtualClock) -> None:
    post(offer, clock, "salary_received", "s-1", amount=25_000)
    run_for(offer, clock, timedelta(days=1))
    post(offer, clock, "card_issued", "c-9", product="credit_card")
    run_for(offer, clock, timedelta(days=5))
    assert [c for c, _ in sent(offer)] == ["email"]
    run = the_run(offer)
    assert run["status"] == "converted"
    assert run["ended_reason"] == "goal reached: card_issued event (last message: email_offer)"
    with offer.uow() as uow:
        [converted] = [h for h in uow.runs.history(run["id"]) if h["kind"] == "converted"]
    assert converted["step"] == "email_offer"  # counted for the last message sent


def test_reentry_once_means_one_run_ever(offer: App, clock: VirtualClock) -> None:
    post(offer, clock, "salary_received", "s-1", amount=25_000)
    post(offer, clock, "salary_received", "s-2", amount=30_000)
    run_for(offer, clock, timedelta(days=40))
    post(offer, clock, "salary_received", "s-3", amount=30_000)
    run_for(offer, clock, timedelta(days=5))
    with offer.uow() as uow:
        assert len(uow.connection.execute(select(runs.c.id)).all()) == 1
