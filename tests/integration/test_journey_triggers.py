"""Segment, schedule and date triggers, on both databases, on the virtual clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from kaskad.adapters.storage.schema import contacts as contacts_table
from kaskad.adapters.storage.schema import runs
from kaskad.bootstrap import App
from kaskad.engine.clock import VirtualClock
from kaskad.services import contacts, journeys, triggers
from kaskad.services.contacts import ContactPatch
from kaskad.services.journeys import JourneyStatus

SUNDAY = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SMS = """
steps:
  - send:
      category: service
      cascade: [{channel: sms, content: {text: "Hello"}}]
"""


def apply(app: App, clock: VirtualClock, head: str) -> None:
    source = f"id: trig\nname: Trigger test\n{head}{SMS}"
    journeys.apply_journey(app.uow(), source=source, activate=True, now=clock.now())


def upsert(app: App, clock: VirtualClock, external_id: str, phone: str, **attributes: Any) -> None:
    patch = ContactPatch(external_id=external_id, phone=phone, attributes=attributes)
    contacts.upsert_contacts(
        app.uow(), patches=[patch], default_region=None, now=clock.now(), routing=app.routing
    )


def entries(app: App) -> list[tuple[str, datetime]]:
    query = (
        select(contacts_table.c.external_id, runs.c.entered_at)
        .join(contacts_table, contacts_table.c.id == runs.c.contact_id)
        .order_by(runs.c.entered_at, contacts_table.c.external_id)
    )
    with app.uow() as uow:
        return [(str(e), at) for e, at in uow.connection.execute(query)]


def run_for(app: App, clock: VirtualClock, span: timedelta) -> None:
    asyncio.run(app.engine.run_until(clock, clock.now() + span))


def test_a_contact_enters_when_it_joins_the_segment(app: App, clock: VirtualClock) -> None:
    clock.set(SUNDAY)
    apply(app, clock, 'trigger: {segment: contact.tier == "gold"}\nreentry: always\n')
    upsert(app, clock, "c-1", "+380501234567", tier="silver")
    assert entries(app) == []
    clock.advance(timedelta(hours=1))
    upsert(app, clock, "c-1", "+380501234567", tier="gold")
    upsert(app, clock, "c-1", "+380501234567", tier="gold", note="still gold")
    upsert(app, clock, "c-2", "+380501234568", tier="gold")  # new and already inside
    assert entries(app) == [
        ("c-1", SUNDAY + timedelta(hours=1)),
        ("c-2", SUNDAY + timedelta(hours=1)),
    ]


def test_a_schedule_fires_at_ten_on_each_contacts_clock(app: App, clock: VirtualClock) -> None:
    clock.set(SUNDAY)
    upsert(app, clock, "kyiv", "+380501234567", active=True)
    upsert(app, clock, "new-york", "+12025550123", active=True)
    upsert(app, clock, "dormant", "+380501234568", active=False)
    apply(
        app,
        clock,
        'trigger: {schedule: {cron: "0 10 * * mon"}, where: contact.active}\nreentry: always\n',
    )
    run_for(app, clock, timedelta(days=7))
    assert entries(app) == [
        ("kyiv", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),  # 10:00 EET
        ("new-york", datetime(2026, 3, 2, 15, 0, tzinfo=UTC)),  # 10:00 EST
    ]
    run_for(app, clock, timedelta(days=7))
    assert len(entries(app)) == 4  # the next Monday, again (reentry: always)


def test_a_date_trigger_fires_three_days_before(app: App, clock: VirtualClock) -> None:
    clock.set(SUNDAY)
    upsert(app, clock, "soon", "+380501234567", tariff_change_date="2026-03-10")
    upsert(app, clock, "later", "+380501234568", tariff_change_date="2026-06-01")
    upsert(app, clock, "none", "+380501234569")
    apply(
        app,
        clock,
        'trigger: {date: {attribute: tariff_change_date, offset: "-3d", at: "10:00"}}\n',
    )
    run_for(app, clock, timedelta(days=14))
    assert entries(app) == [("soon", datetime(2026, 3, 7, 8, 0, tzinfo=UTC))]


def test_a_firing_walks_its_contacts_a_page_at_a_time(app: App, clock: VirtualClock) -> None:
    clock.set(SUNDAY)
    for n in range(5):
        upsert(app, clock, f"c-{n}", f"+38050123456{n}")
    apply(app, clock, 'trigger: {schedule: {cron: "0 10 * * *"}}\nreentry: always\n')
    clock.set(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    walked = [
        triggers.fire_due(app.uow(), routing=app.routing, now=clock.now(), limit=2)
        for _ in range(4)
    ]
    assert walked == [2, 2, 1, 0]
    assert sorted(e for e, _ in entries(app)) == [f"c-{n}" for n in range(5)]


@pytest.mark.parametrize("status", [JourneyStatus.PAUSED, JourneyStatus.ARCHIVED])
def test_a_stopped_journey_fires_no_more(
    app: App, clock: VirtualClock, status: JourneyStatus
) -> None:
    clock.set(SUNDAY)
    upsert(app, clock, "c-1", "+380501234567")
    apply(app, clock, 'trigger: {schedule: {cron: "0 10 * * *"}}\nreentry: always\n')
    journeys.set_status(app.uow(), journey_id="trig", status=status, now=clock.now())
    run_for(app, clock, timedelta(days=3))
    assert entries(app) == []
    journeys.set_status(
        app.uow(), journey_id="trig", status=JourneyStatus.ACTIVE, now=clock.now(), publish=True
    )
    run_for(app, clock, timedelta(days=1))
    assert len(entries(app)) == 1


def test_a_schedule_applied_before_any_contact_fires_for_later_ones(
    app: App, clock: VirtualClock
) -> None:
    clock.set(SUNDAY)
    apply(app, clock, 'trigger: {schedule: {cron: "0 10 * * mon"}}\n')
    upsert(app, clock, "new-york", "+12025550123")  # a zone no contact lived in before
    upsert(app, clock, "kyiv", "+380501234567")
    run_for(app, clock, timedelta(days=2))
    assert entries(app) == [
        ("kyiv", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        ("new-york", datetime(2026, 3, 2, 15, 0, tzinfo=UTC)),
    ]
