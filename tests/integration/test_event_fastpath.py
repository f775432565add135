"""POST /v1/events answered before FastAPI's stack: the same answers as the route, on both
databases, and every case it does not own handed to the route unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaskad.adapters.storage.schema import events
from kaskad.bootstrap import App
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.http import fastpath
from kaskad.interfaces.http.app import create_app
from kaskad.services import apikeys

PAYLOAD: dict[str, Any] = {
    "amount": 1250.5,
    "merchant": 'Кафе "Львів" \\ №1',
    "tags": ["a", None, True],
    "nested": {"emoji": "💳", "n": 10**15},
}


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Statuses answered by the direct path."""
    answered: list[int] = []
    answer = fastpath._answer

    async def spy(send: Any, status: int, body: bytes) -> None:
        answered.append(status)
        await answer(send, status, body)

    monkeypatch.setattr(fastpath, "_answer", spy)
    return answered


@pytest.fixture
def client(app: App, clock: VirtualClock) -> TestClient:
    key = apikeys.create_api_key(app.uow(), name="test", now=clock.now())
    client = TestClient(
        create_app(app, run_engine=False), headers={"Authorization": f"Bearer {key}"}
    )
    assert client.get("/v1/contacts/nobody").status_code == 404  # the key is now cached
    return client


def stored(app: App) -> list[tuple[Any, ...]]:
    with app.uow() as uow:
        query = select(events.c.key, events.c.type, events.c.payload).order_by(events.c.key)
        return [tuple(r) for r in uow.connection.execute(query)]


def test_a_valid_event_takes_the_direct_path_and_is_stored_exactly(
    app: App, client: TestClient, fast: list[int]
) -> None:
    event = {"contact": "c1", "type": "payment", "id": "e-1", "payload": PAYLOAD}
    first = client.post("/v1/events", json=event)
    again = client.post("/v1/events", json=event)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.headers["content-type"] == "application/json"
    assert first.json()["duplicate"] is False
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert fast == [202, 202]
    assert stored(app) == [("e-1", "payment", PAYLOAD)]


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b'{"contact": "c1", "type": "x"', {}, 400, "invalid_json"),
        (b'{"contact": "c1", "type": "bad type", "id": "1"}', {}, 422, "validation_error"),
        (b'{"contact": "c1", "type": "x", "id": "1"}', {"Authorization": "Bearer nope"}, 401, None),
        (b'{"contact": "c1", "type": "x", "id": "1"}', {"Authorization": ""}, 401, None),
    ],
)
def test_what_the_direct_path_does_not_own_gets_the_routes_answer(
    app: App,
    client: TestClient,
    fast: list[int],
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    r = client.post(
        "/v1/events", content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == (code or "unauthorized")
    assert fast == []
    assert stored(app) == []


def test_a_refused_event_is_worded_by_the_route(
    app: App, client: TestClient, fast: list[int]
) -> None:
    app.settings.create_unknown_contacts = False
    r = client.post("/v1/events", json={"contact": "ghost", "type": "x", "id": "1"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "contact_not_found"
    assert fast == []
    assert stored(app) == []


def test_other_content_types_go_to_the_route(app: App, client: TestClient, fast: list[int]) -> None:
    body = b'{"contact": "c1", "type": "x", "id": "1"}'
    r = client.post("/v1/events", content=body, headers={"Content-Type": "text/plain"})
    assert fast == []
    assert r.status_code == 422  # FastAPI reads only JSON bodies
    assert r.json()["error"]["code"] == "validation_error"
    assert stored(app) == []


def test_a_failing_write_answers_500_in_the_usual_shape(
    app: App, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr("kaskad.services.events.record_events", broken)
    r = client.post("/v1/events", json={"contact": "c1", "type": "x", "id": "1"})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "database gone" not in r.text
