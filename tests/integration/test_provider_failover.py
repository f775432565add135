"""Provider routing at work: an outage fails over to the next provider and traffic comes
back after the half-open probe, each message reaching exactly one provider."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App, ConfigurationError, build
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.providers import OutgoingMessage, SendResult, StatusReport
from kaskad.domain.routing import BreakerSettings, Route
from kaskad.domain.vocabulary import Category, Channel, MessageStatus
from kaskad.engine.clock import VirtualClock
from kaskad.engine.runner import Engine, EngineConfig
from kaskad.engine.throttle import ProviderLimits
from kaskad.services import contacts, notifications, reports
from kaskad.services.contacts import ContactPatch
from tests.conftest import make_settings


class Gateway:
    """An SMS gateway that can be taken down (it raises, or hangs) and that, like a careful
    gateway, takes a client reference once."""

    channels = frozenset({Channel.SMS})

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "up"
        self.accepted: list[str] = []
        self.tried: list[str] = []

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        self.tried.extend(m.id for m in batch)
        if self.mode == "down":
            raise ConnectionError("gateway unreachable")
        if self.mode == "hang":
            await asyncio.Event().wait()
        for m in batch:
            if m.id not in self.accepted:
                self.accepted.append(m.id)
        return [SendResult.accepted(m.id, f"{self.name}-{m.id}") for m in batch]


def _engine(app: App, clock: VirtualClock, **config: Any) -> tuple[Gateway, Gateway]:
    """Two SMS providers, A cheaper than B; A's breaker opens after two failed calls."""
    a, b = Gateway("smsc_a"), Gateway("smsc_b")
    app.engine = Engine(
        app.db,
        clock=clock,
        providers={"sandbox": app.providers["sandbox"], "smsc_a": a, "smsc_b": b},
        config=EngineConfig(
            routing=app.routing,
            routes={
                Channel.SMS: [
                    Route("smsc_a", cost=0.021, prefixes=("+38050",)),
                    Route("smsc_b", cost=0.025, prefixes=("+380",)),
                ]
            },
            breaker=BreakerSettings(failures_to_open=2, open_for=timedelta(seconds=30)),
            **config,
        ),
    )
    return a, b


def _notify(app: App, clock: VirtualClock, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        contacts.upsert_contacts(
            app.uow(),
            patches=[ContactPatch(external_id=f"c{index}", phone=f"+38050{1234500 + index}")],
            default_region=None,
            now=clock.now(),
        )
        request = NotificationRequest(
            contact=f"c{index}",
            category=Category.TRANSACTIONAL,
            priority=80,
            steps=[Step(Channel.SMS, {"text": "code 1234"})],
        )
        notifications.accept_notification(
            app.uow(), request=request, routing=app.routing, now=clock.now()
        )


def _run(app: App) -> None:
    asyncio.run(app.engine.run_until_idle())


def _messages(app: App) -> dict[str, tuple[str, str, str | None]]:
    m = schema.messages.c
    with app.uow() as uow:
        rows = uow.connection.execute(select(m.id, m.provider, m.status, m.provider_message_id))
        return {r.id: (r.provider, r.status, r.provider_message_id) for r in rows}


def _attempts(app: App) -> dict[str, int]:
    o = schema.outbox.c
    with app.uow() as uow:
        return dict(uow.connection.execute(select(o.message_id, o.attempts)).all())


def _once_each(app: App, a: Gateway, b: Gateway) -> None:
    """Every message reached exactly one provider's accepted list, the one its row names."""
    rows = _messages(app)
    assert sorted(a.accepted + b.accepted) == sorted(rows)
    assert not set(a.accepted) & set(b.accepted)
    for mid, (provider, _, ref) in rows.items():
        assert mid in (a if provider == "smsc_a" else b).accepted
        assert ref == f"{provider}-{mid}"


def test_provider_outage_fails_over_and_recovers(app: App, clock: VirtualClock) -> None:
    a, b = _engine(app, clock)
    a.mode = "down"
    _notify(app, clock, 3)
    _run(app)
    # A (the cheaper, longer prefix) was tried and raised: the messages wait for a retry,
    # marked as tried on A.
    first = sorted(_messages(app))
    assert sorted(a.tried) == first
    assert {p for p, s, _ in _messages(app).values()} == {"smsc_a"}
    assert {s for _, s, _ in _messages(app).values()} == {"queued"}

    clock.advance(timedelta(seconds=2))  # the first retry's delay
    _run(app)
    # The next attempt went to B with the same client reference.
    assert sorted(b.accepted) == first
    assert all(_messages(app)[mid][:2] == ("smsc_b", "submitted") for mid in first)

    # A's breaker has one failure; the next message tries A once more, which opens it...
    _notify(app, clock, 1, start=3)
    _run(app)
    assert len(a.tried) == 4
    clock.advance(timedelta(seconds=2))
    _run(app)
    # ...and from then on messages go straight to B, A untouched.
    _notify(app, clock, 2, start=4)
    _run(app)
    assert len(a.tried) == 4
    assert len(b.accepted) == 6
    assert a.accepted == []

    # A recovers. After the open period, one probe goes to A and the rest to B...
    a.mode = "up"
    clock.advance(timedelta(seconds=31))
    _notify(app, clock, 3, start=6)
    _run(app)
    assert len(a.accepted) == 1
    assert len(b.accepted) == 8
    # ...and the probe's success brings the traffic back to A.
    _notify(app, clock, 2, start=9)
    _run(app)
    assert len(a.accepted) == 3
    assert len(b.accepted) == 8
    _once_each(app, a, b)


def test_reports_match_the_provider_that_took_the_message(app: App, clock: VirtualClock) -> None:
    a, _ = _engine(app, clock)
    a.mode = "down"
    _notify(app, clock, 1)
    _run(app)
    clock.advance(timedelta(seconds=2))
    _run(app)
    [(mid, (provider, _, ref))] = _messages(app).items()
    assert provider == "smsc_b"
    assert ref is not None
    report = StatusReport(
        provider="smsc_b", status=MessageStatus.DELIVERED, at=clock.now(), provider_message_id=ref
    )
    reports.apply_reports(app.uow(), reports=[report], now=clock.now())
    assert _messages(app)[mid][1] == "delivered"


def test_a_provider_that_does_not_answer_in_time_fails_over(app: App, clock: VirtualClock) -> None:
    a, b = _engine(app, clock, limits={"smsc_a": ProviderLimits(timeout=0.01)})
    a.mode = "hang"
    _notify(app, clock, 2)
    _run(app)
    assert len(a.tried) == 2
    assert a.accepted == []
    clock.advance(timedelta(seconds=2))
    _run(app)
    assert len(b.accepted) == 2
    _once_each(app, a, b)


def test_messages_over_the_rate_wait_without_using_attempts(app: App, clock: VirtualClock) -> None:
    a, b = _engine(app, clock, limits={"smsc_a": ProviderLimits(rate_limit=2, window=1)})
    _notify(app, clock, 5)
    _run(app)
    assert len(a.accepted) == 2  # a full bucket holds two
    assert sorted(_attempts(app).values()) == [0, 0, 0]  # the others gave their attempt back
    asyncio.run(app.engine.run_until(clock, clock.now() + timedelta(seconds=2)))
    assert len(a.accepted) == 5
    assert b.accepted == []
    assert {s for _, s, _ in _messages(app).values()} == {"submitted"}
    _once_each(app, a, b)


def test_a_step_that_names_its_provider_is_not_rerouted(app: App, clock: VirtualClock) -> None:
    a, b = _engine(app, clock)
    routing = {**app.routing, Channel.EMAIL: "smsc_b"}  # a provider a step may name
    contacts.upsert_contacts(
        app.uow(),
        patches=[ContactPatch(external_id="c1", phone="+380501234567")],
        default_region=None,
        now=clock.now(),
    )
    request = NotificationRequest(
        contact="c1",
        category=Category.TRANSACTIONAL,
        priority=80,
        steps=[Step(Channel.SMS, {"text": "x"}, provider="smsc_b")],
    )
    notifications.accept_notification(app.uow(), request=request, routing=routing, now=clock.now())
    b.mode = "down"
    _run(app)
    b.mode = "up"
    clock.advance(timedelta(seconds=2))
    _run(app)
    # Not the cheaper A, not even after B failed once: the step chose B.
    assert a.tried == []
    assert len(b.tried) == 2
    assert [p for p, _, _ in _messages(app).values()] == ["smsc_b"]
    _once_each(app, a, b)


def test_routes_come_from_settings(database_url: str, clock: VirtualClock) -> None:
    settings = make_settings(
        database_url,
        routes={"sms": [{"provider": "sandbox", "prefixes": ["+380"], "cost": 0.02}]},
        provider_limits={"sandbox": {"rate_limit": 100, "window": 50}},
        breaker={"failures_to_open": 3, "open_seconds": 10},
    )
    app = build(settings, clock=clock)
    try:
        assert app.engine.router.routable(
            OutgoingMessage(
                "m", "n", "c", Channel.SMS, "sandbox", "+380501234567", {}, Category.SERVICE, 1
            )
        )
        assert app.engine.router.breaker("sandbox").settings.failures_to_open == 3
    finally:
        app.db.dispose()


def test_a_route_to_a_provider_that_cannot_carry_the_channel_is_refused(
    database_url: str,
) -> None:
    settings = make_settings(
        database_url,
        providers={"mail": {"type": "smtp", "host": "127.0.0.1", "from_address": "a@example.com"}},
        routes={"sms": [{"provider": "mail"}]},
    )
    with pytest.raises(ConfigurationError, match="does not carry sms"):
        build(settings)
