"""The webhook route as any provider's reader sees it: the URL, query and form; answers a
provider expects; inbound messages stored; a bad signature changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kaskad.adapters.storage.schema import inbound_messages
from kaskad.bootstrap import App
from kaskad.domain.providers import (
    BadSignature,
    Callback,
    InboundMessage,
    WebhookError,
    WebhookRequest,
)
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.http.app import create_app
from kaskad.services import contacts
from kaskad.services.contacts import ContactPatch

PHONE = "+380501234567"


class Echo:
    """A reader that checks a shared token, answers GETs with the challenge and turns a form
    post into an inbound message, as a provider with two-way messages would."""

    name = "echo"

    def __init__(self) -> None:
        self.seen: list[WebhookRequest] = []

    def read(self, request: WebhookRequest) -> Callback:
        self.seen.append(request)
        if request.query.get("token") != "s3cret":
            raise BadSignature("token does not match")
        if request.method == "GET":
            return Callback(answer=("text/plain", request.query["challenge"].encode()))
        form = request.form()
        if "Body" not in form:
            raise WebhookError("no Body")
        reply = InboundMessage(
            provider="echo",
            channel=Channel.WHATSAPP,
            sender=form["From"],
            recipient="+380440000000",
            text=form["Body"],
            at=datetime(2026, 11, 24, 12, tzinfo=UTC),
            provider_message_id=form["Sid"],
        )
        return Callback(inbound=[reply])


@pytest.fixture
def echo(app: App) -> Echo:
    reader = Echo()
    app.webhooks = {**app.webhooks, "echo": reader}
    return reader


@pytest.fixture
def client(app: App, clock: VirtualClock) -> TestClient:
    contacts.upsert_contacts(
        app.uow(),
        patches=[ContactPatch(external_id="c1", phone=PHONE)],
        default_region=None,
        now=clock.now(),
    )
    return TestClient(create_app(app, run_engine=False))


def _stored(app: App) -> int:
    with app.uow() as uow:
        return int(
            uow.connection.execute(select(func.count()).select_from(inbound_messages)).scalar_one()
        )


def test_a_verification_get_is_answered_with_the_challenge(client: TestClient, echo: Echo) -> None:
    r = client.get("/v1/webhooks/echo", params={"token": "s3cret", "challenge": "12345"})
    assert (r.status_code, r.text) == (200, "12345")
    assert r.headers["content-type"].startswith("text/plain")
    assert echo.seen[0].url.startswith("http://testserver/v1/webhooks/echo?")


def test_a_reply_is_stored_once_and_counted(app: App, client: TestClient, echo: Echo) -> None:
    form = {"From": PHONE, "Body": "STOP", "Sid": "SM1"}
    for _ in range(2):  # the provider retries: the reply is stored once
        r = client.post("/v1/webhooks/echo?token=s3cret", data=form)
        assert r.status_code == 200, r.text
        assert r.json() == {"applied": 0, "recorded_only": 0, "unmatched": 0, "inbound": 1}
    assert _stored(app) == 1
    assert echo.seen[0].headers["content-type"] == "application/x-www-form-urlencoded"


def test_a_bad_signature_is_refused_and_changes_nothing(
    app: App, client: TestClient, echo: Echo
) -> None:
    r = client.post("/v1/webhooks/echo?token=wrong", data={"From": PHONE, "Body": "hi", "Sid": "1"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "bad_signature"
    assert client.get("/v1/webhooks/echo", params={"challenge": "x"}).status_code == 401
    assert _stored(app) == 0


def test_an_unreadable_call_is_400_and_a_provider_without_gets_says_so(
    client: TestClient, echo: Echo
) -> None:
    r = client.post("/v1/webhooks/echo?token=s3cret", data={"From": PHONE})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_webhook")
    sandbox = client.get("/v1/webhooks/sandbox")
    assert (sandbox.status_code, sandbox.json()["error"]["code"]) == (400, "invalid_webhook")
    assert client.get("/v1/webhooks/nope").status_code == 404


def test_keys_pressed_on_a_sandbox_call_posted_over_http_arrive_as_inbound(
    app: App, client: TestClient
) -> None:
    """The sandbox's webhook is a full callback reader: a keypress in its body is stored
    as an inbound message, not dropped with the report."""
    from kaskad.interfaces.http.webhooks import sign

    body = (
        '{"results": [{"messageId": "sbx_call_1", "status": "CLICKED",'
        f' "digits": "1", "from": "{PHONE}"}}]}}'
    ).encode()
    headers = {"X-Kaskad-Signature": sign(app.settings.secret, body)}
    r = client.post("/v1/webhooks/sandbox", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 0, "recorded_only": 0, "unmatched": 1, "inbound": 1}
    assert _stored(app) == 1
