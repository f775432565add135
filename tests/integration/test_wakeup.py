"""On PostgreSQL a worker wakes on NOTIFY from another process, long before its next poll."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from kaskad.adapters.storage import schema
from kaskad.adapters.storage.database import create_db_engine
from kaskad.bootstrap import App, build
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.vocabulary import Category, Channel
from kaskad.interfaces.http.app import _listener
from kaskad.services import contacts, notifications
from kaskad.services.contacts import ContactPatch
from tests.conftest import _truncate, make_settings


def _accept(app: App, key: str) -> str:
    request = NotificationRequest(
        contact="c1",
        category=Category.SECURITY,
        priority=100,
        idempotency_key=key,
        steps=[Step(Channel.SMS, {"text": "code 1234"})],
    )
    return notifications.accept_notification(
        app.uow(), request=request, routing=app.routing, now=app.clock.now()
    ).id


def _status(app: App, nid: str) -> str | None:
    with app.uow() as uow:
        status: str | None = uow.connection.execute(
            select(schema.messages.c.status).where(schema.messages.c.notification_id == nid)
        ).scalar_one_or_none()
    return status


async def _until(predicate, seconds: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not await asyncio.to_thread(predicate):
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def test_worker_wakes_on_notify(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url)
    _truncate(engine)
    engine.dispose()
    api = build(make_settings(postgres_url), db=create_db_engine(postgres_url))
    worker = build(make_settings(postgres_url, poll_interval=60), db=create_db_engine(postgres_url))
    contacts.upsert_contacts(
        api.uow(),
        patches=[ContactPatch(external_id="c1", phone="+380501234567")],
        default_region=None,
        now=api.clock.now(),
    )

    async def scenario() -> float:
        stop = asyncio.Event()
        listener = _listener(worker)
        assert listener is not None
        first = _accept(api, "first")
        task = asyncio.create_task(worker.engine.run(stop))
        try:
            # Once delivered, every loop of the worker is asleep for its 60 s poll.
            await _until(lambda: _status(api, first) == "delivered", 10)
            second = await asyncio.to_thread(_accept, api, "second")
            return await _until(lambda: _status(api, second) not in (None, "queued"), 10)
        finally:
            stop.set()
            listener.stop()
            await task

    waited = asyncio.run(scenario())
    assert waited < 10  # the poll interval is 60 s: only NOTIFY can explain this
