"""The sandbox speaks two-way over the API, on both databases: a customer's reply on any
channel (to a message or not) and keys pressed on a call, read as real providers' are."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App
from kaskad.domain.two_way import TwoWayRules
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.http.app import create_app
from kaskad.services import apikeys, inbound
from tests.integration.journey_helpers import run_for

PHONE = "+380501234567"
MINUTE = timedelta(minutes=1)


@pytest.fixture
def client(app: App, clock: VirtualClock) -> TestClient:
    inbound.configure(app.uow(), rules=TwoWayRules(), routing=app.routing)
    key = apikeys.create_api_key(app.uow(), name="test", now=clock.now())
    client = TestClient(
        create_app(app, run_engine=False), headers={"Authorization": f"Bearer {key}"}
    )
    contact = {"phone": PHONE, "push_tokens": ["token-1"]}
    response = client.put("/v1/contacts/c-1", json=contact)
    assert response.status_code in (200, 201), response.text
    return client


def _notify(client: TestClient, channel: str, content: dict[str, Any], until: str) -> str:
    body = {
        "contact": "c-1",
        "category": "service",
        "cascade": [{"channel": channel, "content": content, "until": until, "timeout": "60s"}],
    }
    response = client.post("/v1/notifications", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _messages(client: TestClient, notification: str) -> list[dict[str, Any]]:
    return list(client.get(f"/v1/notifications/{notification}").json()["messages"])


def _events(app: App) -> list[tuple[str, dict[str, Any]]]:
    with app.uow() as uow:
        rows = uow.connection.execute(select(schema.events.c.type, schema.events.c.payload))
        return [(r.type, dict(r.payload)) for r in rows]


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_a_reply_to_a_message(client: TestClient, app: App, clock: VirtualClock) -> None:
    asked = _notify(
        client, "viber", {"text": "Rate us", "rating_scale": {"min": 1, "max": 5}}, "sent"
    )
    run_for(app, clock, MINUTE)
    [message] = _messages(client, asked)
    response = client.post(
        "/v1/sandbox/inbound",
        json={"channel": "viber", "contact": "c-1", "text": "5 stars", "message_id": message["id"]},
    )
    assert response.status_code == 201, response.text
    recorded = response.json()
    assert (recorded["kind"], recorded["message_id"], recorded["sender"]) == (
        "rating",
        message["id"],
        PHONE,
    )
    assert recorded["contact_id"] is not None
    [listed] = client.get("/v1/inbound?contact=c-1").json()["messages"]
    assert (listed["kind"], listed["message_id"], listed["text"]) == (
        "rating",
        message["id"],
        "5 stars",
    )
    answered = [p for kind, p in _events(app) if kind == "survey.answered"]
    assert [(p["rating"], p["notification_id"]) for p in answered] == [(5, asked)]


def test_a_keyword_from_a_number_changes_the_contacts_consent(client: TestClient, app: App) -> None:
    response = client.post(
        "/v1/sandbox/inbound", json={"channel": "sms", "from": "+380 50 123 4567", "text": "Стоп"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "keyword"
    consents = client.get("/v1/contacts/c-1").json()["consents"]
    assert consents == {"sms": {"marketing": False, "service": False}}
    timeline = client.get("/v1/contacts/c-1/timeline").json()
    items = timeline["items"] if isinstance(timeline, dict) else timeline
    assert "consent.changed" in [item["name"] for item in items]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"channel": "sms", "text": "hi"}, 422, "missing_sender"),
        ({"channel": "sms", "text": "hi", "contact": "nobody"}, 404, "contact_not_found"),
        ({"channel": "sms", "text": "hi", "from": "hello"}, 422, "invalid_address"),
        (
            {"channel": "sms", "text": "hi", "contact": "c-1", "message_id": "msg_x"},
            404,
            "message_not_found",
        ),
        ({"channel": "fax", "text": "hi", "contact": "c-1"}, 422, None),
    ],
)
def test_bad_replies_are_refused(
    client: TestClient, body: dict[str, Any], status: int, code: str | None
) -> None:
    response = client.post("/v1/sandbox/inbound", json=body)
    assert response.status_code == status, response.text
    if code is not None:
        assert error_code(response) == code
    assert client.get("/v1/inbound").json()["messages"] == []


def test_keys_pressed_on_a_call_end_its_step_and_are_an_event(
    client: TestClient, app: App, clock: VirtualClock
) -> None:
    response = client.put("/v1/sandbox/outcomes/keypress", json={"address": PHONE, "digits": "1"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "channel": "voice",
        "address": PHONE,
        "outcome": "keypress",
        "digits": "1",
    }
    call = _notify(
        client, "voice", {"text": "Press 1 if it was you", "keypress": {"digits": 1}}, "clicked"
    )
    run_for(app, clock, MINUTE)
    [message] = _messages(client, call)
    assert message["status"] == "clicked"
    assert client.get(f"/v1/notifications/{call}").json()["status"] == "completed"
    [payload] = [p for k, p in _events(app) if k == "keypress"]
    assert (payload["digits"], payload["notification_id"], payload["message_id"]) == (
        "1",
        call,
        message["id"],
    )
    [listed] = client.get("/v1/inbound").json()["messages"]
    assert (listed["channel"], listed["kind"], listed["text"]) == ("voice", "keypress", "1")


def test_a_call_answered_without_keys_is_only_delivered(
    client: TestClient, app: App, clock: VirtualClock
) -> None:
    call = _notify(client, "voice", {"text": "Press 1"}, "clicked")
    run_for(app, clock, 2 * MINUTE)
    assert [m["status"] for m in _messages(client, call)] == ["delivered"]
    assert client.get(f"/v1/notifications/{call}").json()["status"] == "failed"
    assert client.get("/v1/inbound").json()["messages"] == []


@pytest.mark.parametrize("digits", ["", "12345678901", "1a"])
def test_bad_digits_are_refused(client: TestClient, digits: str) -> None:
    response = client.put(
        "/v1/sandbox/outcomes/keypress", json={"address": PHONE, "digits": digits}
    )
    assert response.status_code == 422
