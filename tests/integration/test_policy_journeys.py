"""The policy across journeys and workers, on both databases: two journeys aimed at one
contact respect `all: 2/day` and share one calendar; parallel journeys never send the same
content twice; two workers racing for a cap's last slot never both win."""

from __future__ import annotations

import threading
from datetime import timedelta

from kaskad.bootstrap import App
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.vocabulary import Category, Channel, Until
from kaskad.engine.clock import VirtualClock
from kaskad.services import notifications, policy, policy_views
from tests.integration.journey_helpers import add_contact, apply, local, post, run_for, sent_to

DAY = timedelta(days=1)


def journey(name: str, first: str = "sms", key_prefix: str | None = None) -> str:
    prefix = key_prefix or name
    return f"""id: {name}
name: Journey {name}
trigger:
  event: salary_received
steps:
  - send:
      category: marketing
      content_key: {prefix}-1
      cascade:
        - channel: {first}
          content: {{text: "{name} one"}}
          until: sent
  - wait: 1h
  - send:
      category: marketing
      content_key: {prefix}-2
      cascade:
        - channel: email
          content: {{subject: "{name} two", text: "{name} two"}}
          until: sent
"""


def set_policy(app: App, clock: VirtualClock, source: str) -> None:
    policy.apply(app.uow(), source=source, now=clock.now())


def test_two_journeys_share_two_a_day_and_the_calendar(app: App, clock: VirtualClock) -> None:
    clock.set(local(2026, 3, 2, 10))  # Monday 10:00 in Kyiv
    set_policy(app, clock, "caps:\n  all: 2/day\n")
    apply(app, clock, journey("alpha"))
    apply(app, clock, journey("beta", first="viber"))
    add_contact(app, clock)
    post(app, clock, "salary_received", amount=30000)
    run_for(app, clock, timedelta(hours=2))

    sent = sent_to(app)
    assert len(sent) == 2  # four sends wanted today; two allowed
    calendar = policy_views.calendar(app.uow(), contact="c-1", now=clock.now())
    planned = calendar["planned"]
    assert len(planned) == 2
    assert all("all cap 2/day reached" in (p["reason"] or "") for p in planned)

    run_for(app, clock, 3 * DAY)
    every = sorted(s.at for s in sent_to(app))
    assert len(every) == 4  # nothing dropped: deferred within the 7-day validity
    for index, at in enumerate(every):
        in_a_day = [t for t in every if at - DAY < t <= at]
        assert len(in_a_day) <= 2, f"send {index} at {at} makes {len(in_a_day)} within 24h"


def test_parallel_journeys_never_send_the_same_content_twice(app: App, clock: VirtualClock) -> None:
    clock.set(local(2026, 3, 2, 10))
    apply(app, clock, journey("alpha", key_prefix="card-offer"))
    apply(app, clock, journey("beta", first="viber", key_prefix="card-offer"))
    add_contact(app, clock)
    post(app, clock, "salary_received", amount=30000)
    run_for(app, clock, timedelta(hours=3))
    texts = sorted(s.channel for s in sent_to(app))
    # Each content key once: the first step on one channel, the second step by email once.
    assert len(texts) == 2
    assert texts.count("email") == 1


def _offer(contact: str) -> NotificationRequest:
    return NotificationRequest(
        contact=contact,
        category=Category.MARKETING,
        priority=20,
        steps=[Step(Channel.SMS, {"text": "Offer"}, Until.SENT)],
    )


def _race(app: App, clock: VirtualClock, contact: str) -> list[str]:
    """Two workers accept a notification for one contact at the same moment."""
    start = threading.Barrier(2)
    ids: list[str] = []
    errors: list[BaseException] = []

    def accept() -> None:
        start.wait()
        try:
            accepted = notifications.accept_notification(
                app.uow(), request=_offer(contact), routing=app.routing, now=clock.now()
            )
            ids.append(accepted.id)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=accept) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert errors == []
    return ids


def test_two_workers_racing_for_the_last_slot_never_both_win(app: App, clock: VirtualClock) -> None:
    clock.set(local(2026, 3, 2, 10))
    set_policy(app, clock, "caps:\n  marketing: 1/day\n")
    for round_ in range(5):
        contact = f"race-{round_}"
        add_contact(app, clock, contact)
        ids = _race(app, clock, contact)
        statuses = sorted(
            notifications.get_notification(app.uow(), notification_id=i)["notification"]["status"]
            for i in ids
        )
        assert statuses == ["active", "deferred"]
        log = policy_views.calendar(app.uow(), contact=contact, now=clock.now())["sent"]
        assert len(log) == 1


def test_a_run_started_by_an_event_is_personal_whatever_the_event_is_called(
    app: App, clock: VirtualClock
) -> None:
    """Mass or personal comes from how a run started, not from its trigger's name: an event
    that happens to be called ``segment`` is still one contact's."""
    from sqlalchemy import select

    from kaskad.adapters.storage import schema

    clock.set(local(2026, 3, 2, 10))
    apply(app, clock, journey("alpha").replace("event: salary_received", "event: segment"))
    add_contact(app, clock)
    post(app, clock, "segment", amount=1)
    run_for(app, clock, timedelta(minutes=5))
    with app.uow() as uow:
        personal = uow.connection.execute(select(schema.notifications.c.personal)).scalars()
        assert list(personal) == [True]
