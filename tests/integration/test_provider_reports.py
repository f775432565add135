"""Reports that arrive on a provider's own connection: early receipts, inbound messages,
bounce mailboxes and the group-committing sink."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.providers import InboundMessage, OutgoingMessage, SendResult, StatusReport
from kaskad.domain.vocabulary import Category, Channel, MessageStatus
from kaskad.engine.clock import VirtualClock
from kaskad.engine.sink import GroupCommit
from kaskad.services import contacts, inbound, notifications, reports
from kaskad.services.contacts import ContactPatch

PHONE = "+380501234567"


class Racing:
    """A gateway whose receipt reaches kaskad before its answer to the send does."""

    name = "sandbox"
    channels = frozenset(Channel)

    def __init__(self, app: App, status: MessageStatus = MessageStatus.DELIVERED) -> None:
        self.app = app
        self.status = status
        self.sent = 0

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        results = []
        for message in batch:
            self.sent += 1
            ref = f"smsc-{self.sent}"
            receipt = StatusReport(
                provider=self.name,
                status=self.status,
                at=self.app.clock.now(),
                provider_message_id=ref,
                provider_status="DELIVRD",
            )
            await self.app.engine.sink.reports([receipt])
            results.append(SendResult.accepted(message.id, ref))
        return results


def _contact_and_sms(app: App, clock: VirtualClock) -> None:
    contacts.upsert_contacts(
        app.uow(),
        patches=[ContactPatch(external_id="c1", phone=PHONE, email="anna@example.com")],
        default_region=None,
        now=clock.now(),
    )
    request = NotificationRequest(
        contact="c1",
        category=Category.TRANSACTIONAL,
        priority=80,
        steps=[
            Step(Channel.SMS, {"text": "code 1234"}),
            Step(Channel.EMAIL, {"subject": "x", "text": "y"}),
        ],
    )
    notifications.accept_notification(
        app.uow(), request=request, routing=app.routing, now=clock.now()
    )


def _count(app: App, table: object) -> int:
    with app.uow() as uow:
        return int(uow.connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_receipt_before_the_answer_is_parked_then_applied(app: App, clock: VirtualClock) -> None:
    provider = Racing(app)
    app.engine._providers = {"sandbox": provider}  # type: ignore[attr-defined]
    _contact_and_sms(app, clock)
    asyncio.run(app.engine.run_until_idle())
    with app.uow() as uow:
        rows = uow.connection.execute(
            select(schema.messages.c.channel, schema.messages.c.status)
        ).all()
        history = (
            uow.connection.execute(
                select(schema.message_statuses.c.provider_status).where(
                    schema.message_statuses.c.status == "delivered"
                )
            )
            .scalars()
            .all()
        )
    assert [tuple(r) for r in rows] == [("sms", "delivered")]  # no fallback to email
    assert history == ["DELIVRD"]
    assert _count(app, schema.early_reports) == 0


def test_a_failure_receipt_before_the_answer_moves_the_cascade_on(
    app: App, clock: VirtualClock
) -> None:
    app.engine._providers = {"sandbox": Racing(app, MessageStatus.UNDELIVERABLE)}  # type: ignore[attr-defined]
    _contact_and_sms(app, clock)
    asyncio.run(app.engine.run_until_idle())
    with app.uow() as uow:
        rows = uow.connection.execute(
            select(schema.messages.c.channel, schema.messages.c.status).order_by(
                schema.messages.c.step
            )
        ).all()
    first, second = rows
    assert tuple(first) == ("sms", "undeliverable")
    assert second.channel == "email"


def test_unclaimed_parked_receipts_are_forgotten_after_a_week(
    app: App, clock: VirtualClock
) -> None:
    orphan = StatusReport(
        provider="sandbox", status=MessageStatus.DELIVERED, at=clock.now(), provider_message_id="x"
    )
    asyncio.run(app.engine.sink.reports([orphan]))
    assert _count(app, schema.early_reports) == 1
    clock.advance(timedelta(days=6))
    assert app.engine.housekeeping() == 0
    clock.advance(timedelta(days=2))
    assert app.engine.housekeeping() == 1
    assert _count(app, schema.early_reports) == 0


def test_inbound_messages_are_tied_to_their_contact_once(app: App, clock: VirtualClock) -> None:
    contacts.upsert_contacts(
        app.uow(),
        patches=[ContactPatch(external_id="c1", phone=PHONE)],
        default_region=None,
        now=clock.now(),
    )
    known = InboundMessage(
        "sandbox", Channel.SMS, PHONE, "1234", "STOP", clock.now(), provider_message_id="mo-1"
    )
    stranger = InboundMessage(
        "sandbox", Channel.SMS, "+380679999999", "1234", "hello", clock.now(), "mo-2"
    )
    assert (
        inbound.record_inbound(
            app.uow(), messages=[known, stranger, known], routing=app.routing, now=clock.now()
        )
        == 2
    )
    assert (
        inbound.record_inbound(app.uow(), messages=[known], routing=app.routing, now=clock.now())
        == 0
    )  # the peer resent what we had stored
    with app.uow() as uow:
        rows = uow.connection.execute(
            select(schema.inbound_messages.c.text, schema.inbound_messages.c.contact_id).order_by(
                schema.inbound_messages.c.text
            )
        ).all()
        events = uow.connection.execute(select(schema.events.c.type, schema.events.c.payload)).all()
    assert [r.text for r in rows] == ["STOP", "hello"]
    assert rows[0].contact_id is not None
    assert rows[1].contact_id is None
    # STOP is a keyword too: the contact's consent changes (see docs/two-way.md).
    assert sorted((e.type, e.payload["text"]) for e in events) == [
        ("consent.changed", "STOP"),
        ("message.received", "STOP"),
    ]
    listed = inbound.list_inbound(app.uow(), contact_external_id="c1", limit=10)
    assert [m["text"] for m in listed] == ["STOP"]


def test_sink_commits_concurrent_calls_together() -> None:
    writes: list[int] = []

    def write(items: list[int]) -> None:
        writes.append(len(items))

    async def main() -> None:
        commit = GroupCommit(write)
        first = asyncio.create_task(commit.put([1]))
        await asyncio.sleep(0)  # the first write is under way
        rest = [asyncio.create_task(commit.put([i, i])) for i in range(5)]
        await asyncio.gather(first, *rest)

    asyncio.run(main())
    assert sum(writes) == 11
    assert len(writes) < 6  # the five later calls shared transactions


def test_sink_passes_a_failed_write_to_every_waiter() -> None:
    def write(items: list[int]) -> None:
        raise RuntimeError("database gone")

    async def main() -> list[object]:
        commit = GroupCommit(write)
        return await asyncio.gather(commit.put([1]), commit.put([2]), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]


def test_bounce_sources_are_read_and_applied(app: App, clock: VirtualClock) -> None:
    _contact_and_sms(app, clock)
    asyncio.run(app.engine.run_until_idle())
    with app.uow() as uow:
        message_id = uow.connection.execute(select(schema.messages.c.id)).scalar_one()
        # The sandbox has accepted it and will report in a second: the bounce comes first.

    class Mailbox:
        name = "mailbox"

        def __init__(self) -> None:
            self.pending = [
                StatusReport(
                    provider="sandbox",
                    status=MessageStatus.UNDELIVERABLE,
                    at=clock.now(),
                    message_id=message_id,
                    provider_status="5.1.1",
                )
            ]

        def collect(self) -> list[StatusReport]:
            found, self.pending = self.pending, []
            return found

    app.engine._bounces = [Mailbox()]  # type: ignore[attr-defined]
    assert app.engine.collect_bounces() == 1
    assert app.engine.collect_bounces() == 0
    with app.uow() as uow:
        status = uow.connection.execute(
            select(schema.messages.c.status).where(schema.messages.c.id == message_id)
        ).scalar_one()
    assert status == "undeliverable"
    asyncio.run(app.engine.run_until_idle())
    with app.uow() as uow:
        channels = uow.connection.execute(select(schema.messages.c.channel)).scalars().all()
    assert sorted(channels) == ["email", "sms"]  # the cascade fell back


def test_callbacks_written_together_each_get_their_own_summary(
    app: App, clock: VirtualClock
) -> None:
    """Webhook calls that share a transaction (group commit) still answer for themselves:
    the first call's delivery applies, the second's repeat is only recorded, the third
    names a message nobody has."""
    _contact_and_sms(app, clock)
    asyncio.run(app.engine.run_until_idle())
    with app.uow() as uow:
        message_id = uow.connection.execute(select(schema.messages.c.id)).scalar_one()

    def report(status: MessageStatus, ref: str | None = None) -> StatusReport:
        return StatusReport(
            provider="sandbox",
            status=status,
            at=clock.now(),
            message_id=None if ref else message_id,
            provider_message_id=ref,
        )

    groups = [
        [report(MessageStatus.DELIVERED)],
        [report(MessageStatus.SENT)],
        [report(MessageStatus.DELIVERED, ref="nobody-has-this")],
    ]
    summaries = reports.apply_report_groups(app.uow(), groups=groups, now=clock.now())
    assert [(s.applied, s.recorded_only, s.unmatched) for s in summaries] == [
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
    ]
    with app.uow() as uow:
        status = uow.connection.execute(select(schema.messages.c.status)).scalar_one()
    assert status == "delivered"
    assert _count(app, schema.early_reports) == 1  # the unknown one waits for its message
