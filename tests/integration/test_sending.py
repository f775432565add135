"""The outbox: retries, permanent failures, crashed senders and provider exceptions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.providers import OutgoingMessage, SendResult, StatusReport
from kaskad.domain.vocabulary import Category, Channel, MessageStatus, Until
from kaskad.engine.clock import VirtualClock
from kaskad.services import contacts, notifications, sending
from kaskad.services.contacts import ContactPatch

PHONE = "+380501234567"


class Scripted:
    """A provider that answers from a script: one list of results per call, by channel."""

    name = "sandbox"
    channels = frozenset(Channel)

    def __init__(self, script: dict[Channel, list[str]], inner: object) -> None:
        self.script = script
        self.inner = inner
        self.calls: list[tuple[Channel, str, int]] = []

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        results: list[SendResult] = []
        for m in batch:
            self.calls.append((m.channel, m.id, m.attempt))
            plan = self.script.get(m.channel, [])
            step = plan.pop(0) if plan else "ok"
            if step == "raise":
                raise ConnectionError("gateway connection reset")
            if step == "retry":
                results.append(SendResult.retry(m.id, "throttled", retry_after=5))
            elif step == "fail":
                results.append(SendResult.failed(m.id, "invalid number", MessageStatus.REJECTED))
            else:
                results.extend(await self.inner.send([m]))  # type: ignore[attr-defined]
        return results


def _setup(app: App, clock: VirtualClock, script: dict[Channel, list[str]]) -> Scripted:
    provider = Scripted(script, app.providers["sandbox"])
    app.engine._providers = {"sandbox": provider}  # type: ignore[attr-defined]
    contacts.upsert_contacts(
        app.uow(),
        patches=[ContactPatch(external_id="c1", phone=PHONE)],
        default_region=None,
        now=clock.now(),
    )
    request = NotificationRequest(
        contact="c1",
        category=Category.TRANSACTIONAL,
        priority=80,
        steps=[
            Step(Channel.VIBER, {"text": "x"}, Until.DELIVERED, timedelta(minutes=5)),
            Step(Channel.SMS, {"text": "x"}),
        ],
    )
    notifications.accept_notification(
        app.uow(), request=request, routing=app.routing, now=clock.now()
    )
    return provider


def _run(app: App) -> None:
    asyncio.run(app.engine.run_until_idle())


def _messages(app: App) -> list[tuple[str, str]]:
    with app.uow() as uow:
        rows = uow.connection.execute(
            select(schema.messages.c.channel, schema.messages.c.status).order_by(
                schema.messages.c.step
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_retry_waits_then_succeeds(app: App, clock: VirtualClock) -> None:
    provider = _setup(app, clock, {Channel.VIBER: ["retry"]})
    _run(app)
    assert _messages(app) == [("viber", "queued")]
    clock.advance(timedelta(seconds=5))
    _run(app)
    clock.advance(timedelta(seconds=5))
    _run(app)
    assert _messages(app) == [("viber", "delivered")]
    assert [c[2] for c in provider.calls] == [1, 2]
    assert len({c[1] for c in provider.calls}) == 1  # the same client reference


def test_permanent_failure_falls_back_at_once(app: App, clock: VirtualClock) -> None:
    _setup(app, clock, {Channel.VIBER: ["fail"]})
    _run(app)
    clock.advance(timedelta(seconds=5))
    _run(app)
    assert _messages(app) == [("viber", "rejected"), ("sms", "delivered")]
    with app.uow() as uow:
        error = uow.connection.execute(select(schema.messages.c.error)).scalars().first()
        reasons = uow.connection.execute(select(schema.decisions.c.reason)).scalars().all()
    assert error == "invalid number"
    assert "viber rejected → sms" in reasons


def test_giving_up_after_max_attempts_fails_the_step(app: App, clock: VirtualClock) -> None:
    attempts = app.settings.max_send_attempts
    _setup(app, clock, {Channel.VIBER: ["retry"] * attempts})
    for _ in range(attempts + 1):
        _run(app)
        clock.advance(timedelta(seconds=5))
    _run(app)
    clock.advance(timedelta(seconds=5))
    _run(app)
    assert _messages(app) == [("viber", "failed"), ("sms", "delivered")]
    with app.uow() as uow:
        error = uow.connection.execute(select(schema.messages.c.error)).scalars().first()
    assert error == f"gave up after {attempts} attempts: throttled"


def test_provider_exception_becomes_a_retry(app: App, clock: VirtualClock) -> None:
    provider = _setup(app, clock, {Channel.VIBER: ["raise"]})
    _run(app)
    assert _messages(app) == [("viber", "queued")]
    clock.advance(timedelta(seconds=app.settings.retry_base_seconds))
    _run(app)
    clock.advance(timedelta(seconds=5))
    _run(app)
    assert _messages(app) == [("viber", "delivered")]
    assert len(provider.calls) == 2


def test_a_crashed_sender_is_resent_with_the_same_reference(app: App, clock: VirtualClock) -> None:
    """A sender that claimed and sent but died before recording: after its lease runs out the
    message is sent again with the same client reference, and the gateway takes it once."""
    _setup(app, clock, {})
    claimed = sending.claim_sends(
        app.uow(), now=clock.now(), limit=10, lease=timedelta(seconds=30)
    ).messages
    assert len(claimed) == 1
    asyncio.run(app.providers["sandbox"].send(claimed))  # ...and the process dies here
    assert (
        sending.claim_sends(
            app.uow(), now=clock.now(), limit=10, lease=timedelta(seconds=30)
        ).messages
        == []
    )
    clock.advance(timedelta(seconds=31))
    _run(app)
    clock.advance(timedelta(seconds=5))
    _run(app)
    assert _messages(app) == [("viber", "delivered")]
    with app.uow() as uow:
        received = uow.connection.execute(
            select(schema.sandbox_messages.c.client_ref, schema.sandbox_messages.c.attempts)
        ).all()
    assert [(r[0], r[1]) for r in received] == [(claimed[0].id, 2)]


def _late_viber_delivery(app: App, clock: VirtualClock) -> None:
    """Viber's wait runs out; its delivery report comes in before the sms is sent."""
    from kaskad.services import reports, timers

    with app.uow() as uow:
        viber = uow.connection.execute(select(schema.messages.c.id)).scalar_one()
    clock.advance(timedelta(minutes=5))
    assert timers.advance_due(app.uow(), now=clock.now(), limit=10) == 1
    late = StatusReport(
        provider="sandbox", status=MessageStatus.DELIVERED, at=clock.now(), message_id=viber
    )
    reports.apply_reports(app.uow(), reports=[late], now=clock.now())


def test_late_goal_report_cancels_a_fallback_not_yet_sent(app: App, clock: VirtualClock) -> None:
    provider = _setup(app, clock, {Channel.VIBER: ["retry"]})
    _run(app)  # viber is refused for now and waits for a retry
    with app.uow() as uow:
        uow.connection.execute(schema.messages.update().values(status="sent"))
        uow.connection.execute(schema.outbox.delete())
        uow.commit()
    _late_viber_delivery(app, clock)
    _run(app)
    assert _messages(app) == [("viber", "delivered"), ("sms", "cancelled")]
    assert [c[0] for c in provider.calls] == [Channel.VIBER]
    with app.uow() as uow:
        status = uow.connection.execute(select(schema.notifications.c.status)).scalar_one()
    assert status == "completed"


def test_superseded_message_left_by_a_dead_sender_is_not_sent(
    app: App, clock: VirtualClock
) -> None:
    _setup(app, clock, {})
    claimed = sending.claim_sends(
        app.uow(), now=clock.now(), limit=10, lease=timedelta(minutes=10)
    ).messages
    assert [m.channel for m in claimed] == [Channel.VIBER]  # ...and that sender dies
    clock.advance(timedelta(minutes=5))  # viber times out while still leased
    _run(app)
    clock.advance(timedelta(minutes=6))  # the dead sender's lease runs out
    _run(app)
    assert _messages(app) == [("viber", "cancelled"), ("sms", "delivered")]
    with app.uow() as uow:
        sent = uow.connection.execute(select(schema.sandbox_messages.c.channel)).scalars().all()
    assert sent == ["sms"]


def test_message_of_an_erased_contact_left_by_a_dead_sender_is_not_sent(
    app: App, clock: VirtualClock
) -> None:
    from kaskad.services import contacts as contact_service

    _setup(app, clock, {})
    claimed = sending.claim_sends(
        app.uow(), now=clock.now(), limit=10, lease=timedelta(minutes=1)
    ).messages
    assert len(claimed) == 1  # ...and that sender dies
    contact_service.erase_contact(app.uow(), external_id="c1", now=clock.now())
    clock.advance(timedelta(minutes=2))
    _run(app)
    assert _messages(app) == [("viber", "cancelled")]
    with app.uow() as uow:
        assert uow.connection.execute(select(schema.sandbox_messages.c.channel)).all() == []
