"""The generic webhook provider end to end: kaskad's engine posts a push to the customer's
receiver process, the receiver's signed callback comes back through the HTTP API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from kaskad.adapters.storage.schema import messages
from kaskad.bootstrap import App, ConfigurationError, build
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.vocabulary import Category, Channel, Until
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.http.app import create_app
from kaskad.services import contacts, notifications
from kaskad.services.contacts import ContactPatch
from tests.conftest import make_settings
from tests.contract.http_webhook import SECRET, signed_callback
from tests.peers.http_peer import FakePeer, run_fake


@pytest.fixture
def receiver() -> Iterator[FakePeer]:
    with run_fake(
        "tests.peers.fakes.webhook_receiver:app", env={"FAKE_WEBHOOK_SECRET": SECRET}
    ) as peer:
        yield peer


@pytest.fixture
def inbox_app(
    database_url: str,
    db: Engine,
    clock: VirtualClock,
    receiver: FakePeer,
    monkeypatch: pytest.MonkeyPatch,
) -> App:
    monkeypatch.setenv("INBOX_SECRET", SECRET)
    provider = {
        "type": "webhook",
        "base_url": f"{receiver.url}/inbox",
        "secret_env": "INBOX_SECRET",
    }
    settings = make_settings(
        database_url,
        providers={"inbox": provider},
        channels={**{c.value: "sandbox" for c in Channel}, "push": "inbox"},
    )
    return build(settings, clock=clock, db=db)


def _push(app: App, clock: VirtualClock, token: str) -> str:
    contacts.upsert_contacts(
        app.uow(),
        patches=[ContactPatch(external_id="c1", push_tokens=[token])],
        default_region=None,
        now=clock.now(),
    )
    request = NotificationRequest(
        contact="c1",
        category=Category.TRANSACTIONAL,
        priority=80,
        steps=[Step(Channel.PUSH, {"title": "Card payment", "text": "UAH 1,200"}, Until.DELIVERED)],
    )
    accepted = notifications.accept_notification(
        app.uow(), request=request, routing=app.routing, now=clock.now()
    )
    asyncio.run(app.engine.run_until_idle())
    return accepted.id


def _message(app: App) -> dict[str, object]:
    with app.uow() as uow:
        return dict(uow.connection.execute(select(messages)).mappings().one())


def test_a_push_reaches_the_receiver_signed_and_its_callback_delivers_it(
    inbox_app: App, clock: VirtualClock, receiver: FakePeer
) -> None:
    _push(inbox_app, clock, "device-7")
    got = receiver.state()
    assert got["refused"] == []  # the receiver verified the signature and timestamp
    (sent,) = got["received"]
    assert (sent["channel"], sent["address"], sent["category"]) == (
        "push",
        "device-7",
        "transactional",
    )
    assert sent["content"] == {"title": "Card payment", "text": "UAH 1,200"}
    message = _message(inbox_app)
    assert (message["status"], message["provider_message_id"]) == ("submitted", "rcv-1")

    api = TestClient(create_app(inbox_app, run_engine=False))
    callback = signed_callback([{"id": sent["id"], "status": "delivered"}])
    forged = dict(callback.headers) | {"x-kaskad-signature": "sha256=" + "0" * 64}
    refused = api.post("/v1/webhooks/inbox", content=callback.body, headers=forged)
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "bad_signature")
    assert _message(inbox_app)["status"] == "submitted"
    stale = dict(callback.headers) | {"x-kaskad-timestamp": str(int(time.time()) - 3600)}
    assert api.post("/v1/webhooks/inbox", content=callback.body, headers=stale).status_code == 401
    ok = api.post("/v1/webhooks/inbox", content=callback.body, headers=dict(callback.headers))
    assert ok.json() == {"applied": 1, "recorded_only": 0, "unmatched": 0, "inbound": 0}
    assert _message(inbox_app)["status"] == "delivered"


def test_a_refused_device_fails_the_step(inbox_app: App, clock: VirtualClock) -> None:
    _push(inbox_app, clock, "bad-device")
    message = _message(inbox_app)
    assert message["status"] == "rejected"
    assert "HTTP 400" in str(message["error"])


def test_a_webhook_provider_needs_its_secret(
    database_url: str, db: Engine, clock: VirtualClock
) -> None:
    provider = {"type": "webhook", "base_url": "http://127.0.0.1:9/inbox"}
    with pytest.raises(ConfigurationError, match="set secret_env or secret_file"):
        build(make_settings(database_url, providers={"inbox": provider}), clock=clock, db=db)
