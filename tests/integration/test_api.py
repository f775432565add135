"""The HTTP API in-process, on both databases, with the engine stepped on a virtual clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaskad.adapters.storage.schema import messages
from kaskad.bootstrap import App
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.http.app import create_app
from kaskad.services import apikeys

PHONE = "+380501234567"


@pytest.fixture
def client(app: App, clock: VirtualClock) -> TestClient:
    key = apikeys.create_api_key(app.uow(), name="test", now=clock.now())
    return TestClient(create_app(app, run_engine=False), headers={"Authorization": f"Bearer {key}"})


def run(app: App) -> None:
    asyncio.run(app.engine.run_until_idle())


def cascade(contact: str = "c1", timeout: str = "60s", **extra: Any) -> dict[str, Any]:
    return {
        "contact": contact,
        "category": "transactional",
        "cascade": [
            {
                "channel": "viber",
                "content": {"text": "Paid"},
                "until": "delivered",
                "timeout": timeout,
            },
            {"channel": "sms", "content": {"text": "Paid"}},
        ],
        **extra,
    }


def error_code(response: Any) -> str:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return str(body["error"]["code"])


def test_contact_upsert_normalises_and_merges(client: TestClient) -> None:
    r = client.put(
        "/v1/contacts/c1",
        json={"phone": "+38 (050) 123-45-67", "attributes": {"first_name": "Anna", "tier": 1}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["phone"] == PHONE
    assert r.json()["timezone"] == "Europe/Kyiv"
    r = client.put(
        "/v1/contacts/c1",
        json={
            "email": "Anna@Bank.UA",
            "attributes": {"tier": None},
            "consents": {"sms": {"marketing": True}},
        },
    )
    assert r.status_code == 200
    body = client.get("/v1/contacts/c1").json()
    assert body["phone"] == PHONE  # kept: not in the second request
    assert body["email"] == "Anna@bank.ua"
    assert body["attributes"] == {"first_name": "Anna"}
    assert body["consents"] == {"sms": {"marketing": True}}


def test_contact_batch_is_all_or_nothing(client: TestClient) -> None:
    good = {"external_id": "b1", "phone": PHONE}
    bad = {"external_id": "b2", "phone": "12"}
    r = client.post("/v1/contacts:batch", json={"contacts": [good, bad]})
    assert r.status_code == 422
    assert error_code(r) == "invalid_phone"
    assert r.json()["error"]["details"][0]["index"] == 1
    assert client.get("/v1/contacts/b1").status_code == 404
    r = client.post("/v1/contacts:batch", json={"contacts": [good]})
    assert r.json() == {"results": [{"external_id": "b1", "created": True}]}


def test_delete_erases_personal_data_and_keeps_counts(client: TestClient, app: App) -> None:
    client.put("/v1/contacts/c1", json={"phone": PHONE, "email": "a@b.ua"})
    client.post("/v1/notifications", json=cascade())
    run(app)
    r = client.delete("/v1/contacts/c1")
    assert r.status_code == 200
    assert r.json()["messages_by_channel"] == {"viber": 1}
    assert client.get("/v1/contacts/c1").status_code == 404
    with app.uow() as uow:
        rows = uow.connection.execute(select(messages.c.address, messages.c.content)).all()
    assert [tuple(r) for r in rows] == [(None, {})]


def test_events_are_idempotent_and_create_contacts(client: TestClient) -> None:
    event = {"contact": "new-1", "type": "payment", "id": "e-1", "payload": {"amount": 10}}
    first = client.post("/v1/events", json=event)
    assert first.status_code == 202
    assert first.json()["duplicate"] is False
    again = client.post("/v1/events", json=event)
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert client.get("/v1/contacts/new-1").status_code == 200
    batch = [event | {"id": f"b-{i}"} for i in range(3)] + [event]
    r = client.post("/v1/events:batch", json={"events": batch})
    assert r.status_code == 202
    assert [x["duplicate"] for x in r.json()["results"]] == [False, False, False, True]
    timeline = client.get("/v1/contacts/new-1/timeline").json()["items"]
    assert sorted(i["text"] for i in timeline if i["kind"] == "event") == [
        "b-0",
        "b-1",
        "b-2",
        "e-1",
    ]


def test_unknown_contacts_rejected_when_configured(app: App, client: TestClient) -> None:
    app.settings.create_unknown_contacts = False
    r = client.post("/v1/events", json={"contact": "ghost", "type": "x", "id": "1"})
    assert r.status_code == 422
    assert error_code(r) == "contact_not_found"


def test_notification_fallback_and_timeline(
    client: TestClient, app: App, clock: VirtualClock
) -> None:
    client.put("/v1/contacts/c1", json={"phone": PHONE})
    client.put(
        "/v1/sandbox/outcomes",
        json={"channel": "viber", "address": "+380 50 123 45 67", "outcome": "undelivered"},
    )
    r = client.post("/v1/notifications", json=cascade(idempotency_key="k1"))
    assert r.status_code == 202
    nid = r.json()["id"]
    assert client.post("/v1/notifications", json=cascade(idempotency_key="k1")).json() == {
        "id": nid,
        "created": False,
    }
    run(app)
    clock.advance(timedelta(seconds=60))
    run(app)
    clock.advance(timedelta(seconds=10))
    run(app)
    body = client.get(f"/v1/notifications/{nid}").json()
    assert body["status"] == "completed"
    assert [(m["channel"], m["status"]) for m in body["messages"]] == [
        ("viber", "sent"),
        ("sms", "delivered"),
    ]
    assert set(body["messages"][1]["statuses"]) == {"queued", "submitted", "sent", "delivered"}
    reasons = [d["reason"] for d in body["decisions"]]
    assert "viber not delivered within 60s → sms" in reasons
    items = client.get("/v1/contacts/c1/timeline").json()["items"]
    assert items[0]["kind"] == "decision"
    assert items[0]["text"] == "sms delivered: cascade complete"
    stamps = [i["at"] for i in items]
    assert stamps == sorted(stamps, reverse=True)


def test_late_report_is_recorded_but_sends_nothing(
    client: TestClient, app: App, clock: VirtualClock
) -> None:
    client.put("/v1/contacts/c1", json={"phone": PHONE})
    client.put(
        "/v1/sandbox/outcomes",
        json={"channel": "viber", "address": PHONE, "outcome": "undelivered"},
    )
    nid = client.post("/v1/notifications", json=cascade(timeout="2s")).json()["id"]
    run(app)
    clock.advance(timedelta(seconds=10))
    run(app)
    viber = client.get(f"/v1/notifications/{nid}").json()["messages"][0]
    report = {
        "results": [
            {
                "messageId": viber["provider_message_id"],
                "status": "DELIVERED",
                "doneAt": clock.now().isoformat(),
                "price": {"amount": 0.012, "currency": "EUR"},
            }
        ]
    }
    r = client.post("/v1/webhooks/sandbox", json=report)
    assert r.json() == {"applied": 1, "recorded_only": 0, "unmatched": 0, "inbound": 0}
    clock.advance(timedelta(minutes=5))
    run(app)
    body = client.get(f"/v1/notifications/{nid}").json()
    assert [m["channel"] for m in body["messages"]] == ["viber", "sms"]
    assert body["messages"][0]["status"] == "delivered"
    assert body["messages"][0]["cost"] == 0.012
    late = [d for d in body["decisions"] if d["kind"] == "late_report"]
    assert len(late) == 1
    assert "recorded, no new send" in late[0]["reason"]
    sms = client.get("/v1/sandbox/messages", params={"channel": "sms"}).json()["messages"]
    assert len(sms) == 1


def test_skipped_steps_are_logged(client: TestClient, app: App) -> None:
    client.put("/v1/contacts/c1", json={"phone": PHONE})
    body = {
        "contact": "c1",
        "category": "marketing",
        "cascade": [
            {"channel": "email", "content": {"subject": "Hi", "text": "Offer"}},
            {"channel": "sms", "content": {"text": "Offer"}},
        ],
    }
    nid = client.post("/v1/notifications", json=body).json()["id"]
    run(app)
    view = client.get(f"/v1/notifications/{nid}").json()
    assert view["status"] == "failed"
    assert view["messages"] == []
    assert [d["reason"] for d in view["decisions"]] == [
        "email skipped: contact has no email address",
        "sms skipped: no marketing consent on sms",
        "no step can reach the contact: cascade failed",
    ]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        (
            "post",
            "/v1/notifications",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_json",
        ),
        (
            "post",
            "/v1/notifications",
            {
                "json": {
                    "contact": "c1",
                    "cascade": [{"channel": "pigeon", "content": {"text": "x"}}],
                }
            },
            422,
            "unknown_channel",
        ),
        (
            "post",
            "/v1/notifications",
            {
                "json": {
                    "contact": "c1",
                    "cascade": [{"channel": "sms", "content": {"text": "x"}, "timeout": "2 dayz"}],
                }
            },
            422,
            "invalid_duration",
        ),
        (
            "post",
            "/v1/notifications",
            {
                "json": {
                    "contact": "c1",
                    "cascade": [{"channel": "email", "content": {"text": "x"}}],
                }
            },
            422,
            "invalid_cascade",
        ),
        (
            "post",
            "/v1/notifications",
            {
                "json": {
                    "contact": "nobody",
                    "cascade": [{"channel": "sms", "content": {"text": "x"}}],
                }
            },
            422,
            "contact_not_found",
        ),
        (
            "post",
            "/v1/notifications",
            {
                "json": {
                    "contact": "c1",
                    "cascade": [{"channel": "sms", "content": {"text": "x"}}] * 11,
                }
            },
            422,
            "invalid_cascade",
        ),
        (
            "get",
            "/v1/contacts/c1/timeline",
            {"params": {"before": "2026-01-01T10:00:00"}},
            422,
            "validation_error",
        ),
        ("put", "/v1/contacts/c2", {"json": {"phone": "+1 555"}}, 422, "invalid_phone"),
        ("put", "/v1/contacts/c2", {"json": {"timezone": "Mars/Base"}}, 422, "invalid_timezone"),
        (
            "put",
            "/v1/contacts/c2",
            {"json": {"consents": {"fax": {"service": True}}}},
            422,
            "invalid_consents",
        ),
        (
            "post",
            "/v1/events:batch",
            {
                "json": {
                    "events": [{"contact": "c", "type": "t", "id": str(i)} for i in range(1001)]
                }
            },
            422,
            "batch_too_large",
        ),
        (
            "post",
            "/v1/events",
            {
                "json": {
                    "contact": "c",
                    "type": "t",
                    "id": "1",
                    "occurred_at": "2026-01-01T10:00:00",
                }
            },
            422,
            "validation_error",
        ),
        ("get", "/v1/notifications/ntf_missing", {}, 404, "notification_not_found"),
        ("post", "/v1/webhooks/nope", {"json": {}}, 404, "unknown_provider"),
        (
            "post",
            "/v1/webhooks/sandbox",
            {"json": {"results": [{"status": "WEIRD"}]}},
            400,
            "invalid_webhook",
        ),
    ],
)
def test_bad_input_gets_a_clear_error_and_stores_nothing(
    client: TestClient,
    app: App,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    client.put("/v1/contacts/c1", json={"phone": PHONE})
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    assert error_code(r) == code
    with app.uow() as uow:
        counts = {
            t: uow.connection.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
            for t in ("notifications", "events", "messages")
        }
    assert counts == {"notifications": 0, "events": 0, "messages": 0}
    assert client.get("/v1/contacts/c2").status_code == 404


def test_authentication(client: TestClient) -> None:
    bare = TestClient(client.app)
    r = bare.get("/v1/contacts/c1")
    assert r.status_code == 401
    assert error_code(r) == "unauthorized"
    r = bare.get("/v1/contacts/c1", headers={"Authorization": "Bearer ksk_wrong"})
    assert r.status_code == 401
    assert bare.get("/healthz").json() == {"status": "ok"}


def test_operations_endpoints(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
    metrics = client.get("/metrics").text
    assert "kaskad_queue_depth" in metrics
    assert "/v1/notifications" in client.get("/openapi.json").json()["paths"]


def test_erasing_a_contact_cancels_its_cascades(
    client: TestClient, app: App, clock: VirtualClock
) -> None:
    client.put("/v1/contacts/c1", json={"phone": PHONE})
    nid = client.post("/v1/notifications", json=cascade()).json()["id"]  # viber still queued
    assert client.delete("/v1/contacts/c1").status_code == 200
    clock.advance(timedelta(hours=1))
    run(app)
    body = client.get(f"/v1/notifications/{nid}").json()
    assert body["status"] == "cancelled"
    assert [(m["channel"], m["status"]) for m in body["messages"]] == [("viber", "cancelled")]
    assert body["decisions"][-1]["reason"] == "contact erased: cascade cancelled"
    assert client.get("/v1/sandbox/messages").json()["messages"] == []


def test_sandbox_webhook_accepts_a_signature_instead_of_a_key(client: TestClient, app: App) -> None:
    from kaskad.interfaces.http.webhooks import sign

    bare = TestClient(client.app)
    body = b'{"results": []}'
    good = {"X-Kaskad-Signature": sign(app.settings.secret, body)}
    r = bare.post("/v1/webhooks/sandbox", content=body, headers=good)
    assert r.json() == {"applied": 0, "recorded_only": 0, "unmatched": 0, "inbound": 0}
    bad = {"X-Kaskad-Signature": sign("another secret", body)}
    r = bare.post("/v1/webhooks/sandbox", content=body, headers=bad)
    assert r.status_code == 401
    assert error_code(r) == "bad_signature"
    assert bare.post("/v1/webhooks/sandbox", content=body).status_code == 401


def test_unexpected_errors_are_json(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from kaskad.services import contacts

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(contacts, "get_contact", broken)
    quiet = TestClient(client.app, raise_server_exceptions=False, headers=client.headers)
    r = quiet.get("/v1/contacts/c1")
    assert r.status_code == 500
    assert error_code(r) == "internal_error"
    assert "disk" not in r.text


def test_oversized_bodies_are_refused_unread(client: TestClient) -> None:
    from kaskad.interfaces.http.app import MAX_BODY

    r = client.post(
        "/v1/events:batch",
        content=b"x" * (MAX_BODY + 1),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert error_code(r) == "payload_too_large"
