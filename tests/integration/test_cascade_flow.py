"""A notification's whole life on the virtual clock, on both databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from kaskad.bootstrap import App
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.vocabulary import Category, Channel, Until
from kaskad.engine.clock import VirtualClock
from kaskad.services import contacts, notifications, sandbox
from kaskad.services.contacts import ContactPatch

PHONE = "+380501234567"


def _contact(app: App, clock: VirtualClock, external_id: str = "c-1", **fields: object) -> None:
    patch = ContactPatch(external_id=external_id, phone=PHONE, **fields)  # type: ignore[arg-type]
    contacts.upsert_contacts(app.uow(), patches=[patch], default_region=None, now=clock.now())


def _viber_then_sms(key: str | None = "k-1") -> NotificationRequest:
    return NotificationRequest(
        contact="c-1",
        category=Category.TRANSACTIONAL,
        priority=80,
        idempotency_key=key,
        steps=[
            Step(Channel.VIBER, {"text": "Paid 100 UAH"}, Until.DELIVERED, timedelta(seconds=60)),
            Step(Channel.SMS, {"text": "Paid 100 UAH"}),
        ],
    )


def _run(app: App) -> int:
    return asyncio.run(app.engine.run_until_idle())


def _accept(app: App, clock: VirtualClock, request: NotificationRequest) -> str:
    return notifications.accept_notification(
        app.uow(), request=request, routing=app.routing, now=clock.now()
    ).id


def test_viber_delivered_ends_the_cascade(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    nid = _accept(app, clock, _viber_then_sms())
    _run(app)
    clock.advance(timedelta(seconds=5))
    _run(app)
    view = notifications.get_notification(app.uow(), notification_id=nid)
    assert view["notification"]["status"] == "completed"
    assert [m["channel"] for m, _ in view["messages"]] == ["viber"]
    assert view["messages"][0][0]["status"] == "delivered"
    assert view["messages"][0][0]["cost"] == 0.012
    assert view["decisions"][-1]["reason"] == "viber delivered: cascade complete"


def test_undelivered_viber_falls_back_to_sms_after_timeout(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    sandbox.set_outcome(
        app.uow(),
        channel=Channel.VIBER,
        address=PHONE,
        outcome="undelivered",
        default_region=None,
        now=clock.now(),
    )
    nid = _accept(app, clock, _viber_then_sms())
    _run(app)
    clock.advance(timedelta(seconds=59))
    _run(app)
    view = notifications.get_notification(app.uow(), notification_id=nid)
    assert [m["channel"] for m, _ in view["messages"]] == ["viber"]
    clock.advance(timedelta(seconds=1))
    _run(app)
    clock.advance(timedelta(seconds=5))
    _run(app)
    view = notifications.get_notification(app.uow(), notification_id=nid)
    assert [(m["channel"], m["status"]) for m, _ in view["messages"]] == [
        ("viber", "sent"),
        ("sms", "delivered"),
    ]
    reasons = [d["reason"] for d in view["decisions"]]
    assert "viber not delivered within 60s → sms" in reasons
    assert view["notification"]["status"] == "completed"


def test_same_idempotency_key_returns_the_same_notification(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    first = _accept(app, clock, _viber_then_sms("same"))
    second = _accept(app, clock, _viber_then_sms("same"))
    assert first == second
    assert _accept(app, clock, _viber_then_sms("other")) != first
