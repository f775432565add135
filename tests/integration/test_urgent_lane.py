"""A sender full of bulk sends still takes urgent messages (an OTP, a security alert)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import select

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.providers import OutgoingMessage, SendResult
from kaskad.domain.vocabulary import DEFAULT_PRIORITY, Category, Channel
from kaskad.engine.clock import VirtualClock
from kaskad.services import contacts, notifications
from kaskad.services.contacts import ContactPatch


class Holding:
    """A gateway that takes messages and answers only when released."""

    name = "sandbox"
    channels = frozenset(Channel)

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[Category] = []

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        self.seen.extend(m.category for m in batch)
        await self.release.wait()
        return [SendResult.accepted(m.id, f"p-{m.id}") for m in batch]


def _queue(app: App, clock: VirtualClock, category: Category, count: int) -> None:
    for index in range(count):
        external = f"{category}-{index}"
        contacts.upsert_contacts(
            app.uow(),
            patches=[
                ContactPatch(
                    external_id=external,
                    phone=f"+38050{index + 1234567}",
                    consents={"sms": {"marketing": True}},
                )
            ],
            default_region=None,
            now=clock.now(),
        )
        request = NotificationRequest(
            contact=external,
            category=category,
            priority=DEFAULT_PRIORITY[category],
            steps=[Step(Channel.SMS, {"text": "x"})],
        )
        notifications.accept_notification(
            app.uow(), request=request, routing=app.routing, now=clock.now()
        )


async def _settle() -> None:
    """Let the send tasks just created reach the gateway."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_urgent_messages_are_claimed_when_bulk_fills_the_sender(
    app: App, clock: VirtualClock
) -> None:
    engine = app.engine
    gateway = Holding()
    engine._providers = {"sandbox": gateway}  # type: ignore[attr-defined]
    batch = app.settings.claim_batch
    _queue(app, clock, Category.MARKETING, 3)

    async def main() -> None:
        engine._loop = asyncio.get_running_loop()  # type: ignore[attr-defined]
        bulk = engine._bulk  # type: ignore[attr-defined]
        bulk.tasks[asyncio.create_task(asyncio.sleep(0))] = batch * 4 - 1
        await engine._outbox_loop()  # one slot left: one marketing message
        await _settle()
        assert gateway.seen == [Category.MARKETING]
        await asyncio.to_thread(_queue, app, clock, Category.SECURITY, 1)
        await engine._outbox_loop()  # the bulk lane is full: it takes nothing
        await _settle()
        assert gateway.seen == [Category.MARKETING]
        await engine._urgent_loop()  # the urgent lane takes the security message
        await _settle()
        assert gateway.seen == [Category.MARKETING, Category.SECURITY]
        await engine._urgent_loop()  # and never marketing
        await _settle()
        assert gateway.seen == [Category.MARKETING, Category.SECURITY]
        gateway.release.set()
        lanes = [*bulk.tasks, *engine._urgent.tasks]  # type: ignore[attr-defined]
        await asyncio.gather(*lanes)

    asyncio.run(main())
    with app.uow() as uow:
        queued = uow.connection.execute(select(schema.outbox.c.priority)).scalars().all()
    assert sorted(queued) == [DEFAULT_PRIORITY[Category.MARKETING]] * 2
