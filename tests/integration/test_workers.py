"""Many workers, one database: every notification completes exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from kaskad.adapters.storage import schema
from kaskad.adapters.storage.database import create_db_engine
from kaskad.bootstrap import App, build
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.providers import OutgoingMessage, SendResult
from kaskad.domain.vocabulary import Category, Channel
from kaskad.services import contacts, notifications
from kaskad.services.contacts import ContactPatch
from tests.conftest import _truncate, make_settings

TOTAL = 5000
CONTACTS = 500


def _app(url: str) -> App:
    settings = make_settings(
        url,
        claim_batch=100,
        sandbox={"sent_after": 0.01, "delivered_after": 0.02, "seen_after": 1, "clicked_after": 1},
    )
    return build(settings, db=create_db_engine(url))


class Counting:
    """Wraps a provider to count what each worker sent."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = "sandbox"
        self.channels = frozenset(Channel)
        self.sent = 0

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        self.sent += len(batch)
        return await self.inner.send(batch)  # type: ignore[attr-defined,no-any-return]


def _accept_all(app: App) -> None:
    patches = [ContactPatch(external_id=f"w{i}", phone=f"+38050{i:07d}") for i in range(CONTACTS)]
    contacts.upsert_contacts(app.uow(), patches=patches, default_region=None, now=app.clock.now())

    def accept(n: int) -> None:
        request = NotificationRequest(
            contact=f"w{n % CONTACTS}",
            category=Category.TRANSACTIONAL,
            priority=80,
            idempotency_key=f"n{n}",
            steps=[Step(Channel.SMS, {"text": f"#{n}"})],
        )
        notifications.accept_notification(
            app.uow(), request=request, routing=app.routing, now=app.clock.now()
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(accept, range(TOTAL)))


def _completed(app: App) -> int:
    with app.uow() as uow:
        query = select(func.count()).where(schema.notifications.c.status == "completed")
        return int(uow.connection.execute(query).scalar_one())


async def _run_two(first: App, second: App) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(a.engine.run(stop)) for a in (first, second)]
    deadline = time.monotonic() + 120
    while _completed(first) < TOTAL and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)


def test_two_workers_complete_every_notification_exactly_once(postgres_url: str) -> None:
    """PostgreSQL only: SQLite has one writer by design, so there is no race to test."""
    engine = create_db_engine(postgres_url)
    _truncate(engine)
    engine.dispose()
    first, second = _app(postgres_url), _app(postgres_url)
    counters = []
    for app in (first, second):
        counting = Counting(app.providers["sandbox"])
        app.engine._providers = {"sandbox": counting}  # type: ignore[attr-defined]
        counters.append(counting)
    _accept_all(first)
    asyncio.run(_run_two(first, second))

    assert _completed(first) == TOTAL
    assert all(c.sent > 0 for c in counters), [c.sent for c in counters]
    assert sum(c.sent for c in counters) == TOTAL  # no message handed over twice
    with first.uow() as uow:
        conn = uow.connection
        received = conn.execute(select(schema.sandbox_messages.c.attempts)).scalars().all()
        kinds = Counter(
            conn.execute(
                select(schema.decisions.c.notification_id).where(
                    schema.decisions.c.kind == "complete"
                )
            ).scalars()
        )
        per_notification = Counter(
            conn.execute(select(schema.messages.c.notification_id)).scalars()
        )
    assert len(received) == TOTAL
    assert set(received) == {1}
    assert len(kinds) == TOTAL
    assert set(kinds.values()) == {1}
    assert set(per_notification.values()) == {1}
