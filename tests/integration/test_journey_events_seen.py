"""Branches on events that happened while the run was active (`events.TYPE.*`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from kaskad.adapters.storage.schema import messages, runs
from kaskad.bootstrap import App
from kaskad.engine.clock import VirtualClock
from kaskad.services import contacts, events, journeys
from kaskad.services import runs as run_service
from kaskad.services.contacts import ContactPatch

JOURNEY = """
id: nudge
name: Nudge unless paid
trigger: {api: true}
steps:
  - wait: 1d
  - branch:
      - when: events.payment.count > 0 and events.payment.payload.amount >= 100
        goto: exit
  - send:
      category: service
      cascade: [{channel: sms, content: {text: "Your bill is due"}}]
"""


@pytest.fixture
def nudge(app: App, clock: VirtualClock) -> App:
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    journeys.apply_journey(app.uow(), source=JOURNEY, activate=True, now=clock.now())
    patch = ContactPatch(external_id="c-1", phone="+380501234567")
    contacts.upsert_contacts(app.uow(), patches=[patch], default_region=None, now=clock.now())
    run_service.enter(
        app.uow(),
        journey_id="nudge",
        external_id="c-1",
        data={},
        routing=app.routing,
        now=clock.now(),
    )
    return app


def pay(app: App, clock: VirtualClock, key: str, amount: int) -> None:
    events.record_events(
        app.uow(),
        events=[events.EventIn("c-1", "payment", key, None, {"amount": amount})],
        create_contacts=False,
        routing=app.routing,
        now=clock.now(),
    )


def finish(app: App, clock: VirtualClock) -> tuple[str, int]:
    asyncio.run(app.engine.run_until(clock, clock.now() + timedelta(days=2)))
    with app.uow() as uow:
        status = uow.connection.execute(select(runs.c.status)).scalar_one()
        sms = len(uow.connection.execute(select(messages.c.id)).all())
    return str(status), sms


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        ((), ("completed", 1)),
        ((20,), ("completed", 1)),  # the branch reads the last payment: too small
        ((20, 150), ("exited", 0)),
        ((150,), ("exited", 0)),
    ],
)
def test_a_branch_reads_the_events_seen_during_the_run(
    nudge: App, clock: VirtualClock, amounts: tuple[int, ...], expected: tuple[str, int]
) -> None:
    for number, amount in enumerate(amounts):
        clock.advance(timedelta(hours=2))
        pay(nudge, clock, f"p-{number}", amount)
    assert finish(nudge, clock) == expected


def test_the_count_is_kept_on_the_run(nudge: App, clock: VirtualClock) -> None:
    pay(nudge, clock, "p-1", 10)
    pay(nudge, clock, "p-2", 10)
    pay(nudge, clock, "p-2", 10)  # a duplicate is not an event
    with nudge.uow() as uow:
        outcomes = uow.connection.execute(select(runs.c.outcomes)).scalar_one()
    assert outcomes["@events"]["payment"]["count"] == 2


@pytest.mark.parametrize(("steps", "runs_started"), [("", 2), ("  - wait: 1d\n", 1)])
def test_two_events_in_one_batch_respect_max_active_runs(
    app: App, clock: VirtualClock, steps: str, runs_started: int
) -> None:
    """A run that ended at once does not hold the contact's place; one still waiting does."""
    source = (
        "id: thanks\nname: Thanks\ntrigger: {event: order}\nreentry: always\nsteps:\n"
        "  - send:\n      category: service\n"
        '      cascade: [{channel: sms, content: {text: "Thanks"}}]\n' + steps
    )
    journeys.apply_journey(app.uow(), source=source, activate=True, now=clock.now())
    patch = ContactPatch(external_id="c-1", phone="+380501234567")
    contacts.upsert_contacts(app.uow(), patches=[patch], default_region=None, now=clock.now())
    events.record_events(
        app.uow(),
        events=[events.EventIn("c-1", "order", f"o-{n}", None, {}) for n in range(2)],
        create_contacts=False,
        routing=app.routing,
        now=clock.now(),
    )
    with app.uow() as uow:
        assert len(uow.connection.execute(select(runs.c.id)).all()) == runs_started
