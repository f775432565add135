"""One-time codes through the HTTP API, on both databases, with the engine stepped on a
virtual clock: the code is read from the sandbox gateway's record of what it accepted."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App, build
from kaskad.domain.cascades import Step
from kaskad.domain.vocabulary import DEFAULT_PRIORITY, Category, Channel
from kaskad.engine.clock import VirtualClock
from kaskad.engine.runner import URGENT_PRIORITY
from kaskad.interfaces.http.app import create_app
from kaskad.services import apikeys, notifications
from tests.conftest import make_settings

PHONE = "+380501234567"
TOKEN = "push-token-1"
CODE = re.compile(r"Your code is (\S+)\. It expires")


def _client(app: App, clock: VirtualClock) -> TestClient:
    key = apikeys.create_api_key(app.uow(), name="test", now=clock.now())
    api = TestClient(create_app(app, run_engine=False), headers={"Authorization": f"Bearer {key}"})
    api.put("/v1/contacts/c1", json={"phone": PHONE, "push_tokens": [TOKEN]}).raise_for_status()
    return api


@pytest.fixture
def client(app: App, clock: VirtualClock) -> TestClient:
    return _client(app, clock)


def run(app: App) -> None:
    asyncio.run(app.engine.run_until_idle())


def start(client: TestClient, **body: Any) -> dict[str, Any]:
    body.setdefault("contact", "c1")
    response = client.post("/v1/verifications", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def check(client: TestClient, verification: dict[str, Any], code: str) -> dict[str, Any]:
    response = client.post(f"/v1/verifications/{verification['id']}:check", json={"code": code})
    assert response.status_code == 200, response.text
    return dict(response.json())


def sent_code(app: App, verification: dict[str, Any], channel: str = "sms") -> str:
    """The code as the gateway received it on ``channel``."""
    with app.uow() as uow:
        sent = uow.notifications.messages_of([verification["notification_id"]])
        refs = [m["id"] for m in sent if m["channel"] == channel]
        received = uow.sandbox.accepted(refs)
    assert len(received) == 1, f"the sandbox got {len(received)} {channel} message(s)"
    found = CODE.search(next(iter(received.values()))["content"]["text"])
    assert found is not None
    return found.group(1)


def stored_texts(app: App, verification: dict[str, Any]) -> list[str]:
    """What kaskad itself keeps of the texts: message contents and cascade steps."""
    with app.uow() as uow:
        sent = uow.notifications.messages_of([verification["notification_id"]])
        steps = uow.notifications.get(verification["notification_id"])
    assert steps is not None
    return [m["content"]["text"] for m in sent] + [s["content"]["text"] for s in steps["steps"]]


def code_hash(app: App, verification: dict[str, Any]) -> str | None:
    with app.uow() as uow:
        row = uow.verifications.get(verification["id"])
    assert row is not None
    stored: str | None = row["code_hash"]
    return stored


def wrong(code: str) -> str:
    return "".join("1" if ch != "1" else "2" for ch in code)


def test_happy_path_approves_and_blanks_the_code(app: App, client: TestClient) -> None:
    verification = start(client, cascade=["sms"])
    assert verification["status"] == "pending"
    assert verification["attempts_left"] == 5
    assert "code" not in verification
    assert "code_hash" not in verification
    run(app)
    code = sent_code(app, verification)
    assert re.fullmatch(r"\d{6}", code)
    assert any(code in text for text in stored_texts(app, verification))
    assert code_hash(app, verification) not in (None, code)

    assert check(client, verification, code) == {
        "id": verification["id"],
        "result": "approved",
        "status": "approved",
        "attempts_left": 5,
    }
    shown = client.get(f"/v1/verifications/{verification['id']}").json()
    assert shown["status"] == "approved"
    assert shown["channel"] == "sms"
    assert shown["finished_at"] is not None
    texts = stored_texts(app, verification)
    assert all(code not in text and "******" in text for text in texts)
    assert code_hash(app, verification) is None
    assert check(client, verification, code)["result"] == "already_approved"


def test_wrong_code_uses_an_attempt_and_reveals_nothing_else(app: App, client: TestClient) -> None:
    verification = start(client, cascade=["sms"])
    run(app)
    code = sent_code(app, verification)
    answer = check(client, verification, wrong(code))
    assert answer == {
        "id": verification["id"],
        "result": "wrong_code",
        "status": "pending",
        "attempts_left": 4,
    }
    assert any(code in text for text in stored_texts(app, verification))
    assert check(client, verification, code)["result"] == "approved"


def test_a_code_past_its_expiry_is_refused(
    app: App, client: TestClient, clock: VirtualClock
) -> None:
    verification = start(client, cascade=["sms"], expiry="2m")
    run(app)
    code = sent_code(app, verification)
    clock.advance(timedelta(minutes=2))
    seen = client.get(f"/v1/verifications/{verification['id']}").json()
    assert seen["status"] == "expired"
    answer = check(client, verification, code)
    assert (answer["result"], answer["status"]) == ("expired", "expired")
    assert all(code not in text for text in stored_texts(app, verification))
    assert check(client, verification, code)["result"] == "expired"


def test_the_last_attempt_kills_the_verification(app: App, client: TestClient) -> None:
    verification = start(client, cascade=["sms"], max_attempts=3)
    run(app)
    code = sent_code(app, verification)
    results = [check(client, verification, wrong(code)) for _ in range(3)]
    assert [(r["result"], r["attempts_left"]) for r in results] == [
        ("wrong_code", 2),
        ("wrong_code", 1),
        ("too_many_attempts", 0),
    ]
    final = check(client, verification, code)
    assert (final["result"], final["status"]) == ("too_many_attempts", "failed")
    assert all(code not in text for text in stored_texts(app, verification))


def test_a_failed_push_falls_back_to_sms(app: App, client: TestClient) -> None:
    client.put(
        "/v1/sandbox/outcomes", json={"channel": "push", "address": TOKEN, "outcome": "failed"}
    ).raise_for_status()
    verification = start(client, cascade=["push", "sms", "voice"])
    assert verification["channels"] == ["push", "sms", "voice"]
    run(app)
    shown = client.get(f"/v1/verifications/{verification['id']}").json()
    assert shown["channel"] == "sms"
    followed = client.get(f"/v1/notifications/{verification['notification_id']}").json()
    assert [(m["channel"], m["status"]) for m in followed["messages"]] == [
        ("push", "rejected"),
        ("sms", "submitted"),
    ]
    assert followed["category"] == "security"
    code = sent_code(app, verification, "sms")
    assert check(client, verification, code)["result"] == "approved"
    after = client.get(f"/v1/notifications/{verification['notification_id']}").json()
    assert after["status"] == "cancelled"  # approved: the voice call is never made
    assert [m["channel"] for m in after["messages"]] == ["push", "sms"]


def test_a_delivered_push_carries_the_code(app: App, client: TestClient) -> None:
    verification = start(client, cascade=["push", "sms"])
    run(app)
    code = sent_code(app, verification, "push")
    assert check(client, verification, code)["result"] == "approved"


def test_a_newer_code_supersedes_the_pending_one(app: App, client: TestClient) -> None:
    first = start(client, cascade=["sms"])
    run(app)
    old = sent_code(app, first)
    second = start(client, cascade=["sms"])
    assert check(client, first, old)["result"] == "expired"
    shown = client.get(f"/v1/verifications/{first['id']}").json()
    assert shown["status"] == "superseded"
    run(app)
    assert check(client, second, sent_code(app, second))["result"] == "approved"


def test_a_phone_alone_finds_or_creates_its_contact(app: App, client: TestClient) -> None:
    known = start(client, contact=None, phone="+380 50 123 45 67")
    assert known["contact"] == "c1"
    new = start(client, contact=None, phone="+380671112233")
    assert new["contact"] == "+380671112233"
    run(app)
    assert check(client, new, sent_code(app, new))["result"] == "approved"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"contact": "nobody"}, 422, "contact_not_found"),
        ({"contact": "c1", "phone": PHONE}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"phone": "12"}, 422, "invalid_phone"),
        ({"contact": "c1", "ip": "not-an-ip"}, 422, "invalid_ip"),
        ({"contact": "c1", "cascade": ["fax"]}, 422, "unknown_channel"),
        ({"contact": "c1", "expiry": "2d"}, 422, "invalid_duration"),
        ({"contact": "c1", "text": "no code here"}, 422, "invalid_text"),
        ({"contact": "c1", "cascade": ["email"]}, 422, "contact_unreachable"),
    ],
)
def test_requests_that_cannot_be_served(
    client: TestClient, body: dict[str, Any], status: int, code: str
) -> None:
    response = client.post("/v1/verifications", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_unknown_verification_is_not_found(client: TestClient) -> None:
    assert client.get("/v1/verifications/ver_nope").json()["error"]["code"] == (
        "verification_not_found"
    )
    response = client.post("/v1/verifications/ver_nope:check", json={"code": "123456"})
    assert response.status_code == 404


def test_too_many_codes_for_one_phone(client: TestClient, clock: VirtualClock) -> None:
    for _ in range(5):
        start(client, contact=None, phone=PHONE)
        clock.advance(timedelta(minutes=1))
    refused = client.post("/v1/verifications", json={"phone": PHONE})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    # The first code, 5 minutes old, leaves the 15-minute window 10 minutes from now.
    assert refused.headers["Retry-After"] == str(10 * 60)
    other = client.post("/v1/verifications", json={"phone": "+380671112233"})
    assert other.status_code == 201
    clock.advance(timedelta(minutes=10))
    assert client.post("/v1/verifications", json={"phone": PHONE}).status_code == 201


def test_too_many_codes_from_one_ip(database_url: str, db: Engine, clock: VirtualClock) -> None:
    app = build(make_settings(database_url, otp={"ip_limit": 3}), clock=clock, db=db)
    client = _client(app, clock)
    for index in range(3):
        start(client, contact=None, phone=f"+38067111220{index}", ip="203.0.113.7")
    refused = client.post("/v1/verifications", json={"phone": "+380671112209", "ip": "203.0.113.7"})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3600"
    # One IPv6 customer line is one /64, whatever address of it is used.
    for suffix in ("1", "2", "3"):
        start(client, contact=None, phone=f"+38050765432{suffix}", ip=f"2001:db8:0:1::{suffix}")
    again = client.post("/v1/verifications", json={"phone": PHONE, "ip": "2001:db8:0:1::ff"})
    assert again.status_code == 429
    assert start(client, ip="198.51.100.1")["status"] == "pending"


def test_bulk_sends_never_delay_a_code(app: App, client: TestClient, clock: VirtualClock) -> None:
    client.put(
        "/v1/contacts/bulk", json={"phone": "+380671234567", "consents": {"*": {"marketing": True}}}
    ).raise_for_status()
    with app.uow() as uow:
        contact = uow.contacts.by_external_id("bulk")
        assert contact is not None
        for _ in range(2000):
            notifications.create_notification(
                uow,
                contact=contact,
                category=Category.MARKETING,
                priority=DEFAULT_PRIORITY[Category.MARKETING],
                steps=notifications.route_steps([Step(Channel.SMS, {"text": "x"})], app.routing),
                now=clock.now(),
            )
        uow.commit()
    verification = start(client, cascade=["sms"])
    urgent = app.engine.claim_sends(10, min_priority=URGENT_PRIORITY)
    assert [m.notification_id for m in urgent.messages] == [verification["notification_id"]]
    with app.uow() as uow:
        queued = uow.connection.execute(select(schema.outbox.c.priority)).scalars().all()
    assert sorted(set(queued)) == [DEFAULT_PRIORITY[Category.MARKETING], 100]
    assert len(queued) == 2001


def test_codes_that_expire_unchecked_are_blanked_later(
    app: App, client: TestClient, clock: VirtualClock
) -> None:
    forgotten = start(client, cascade=["sms"])
    run(app)
    code = sent_code(app, forgotten)
    clock.advance(timedelta(minutes=6))
    start(client, contact=None, phone="+380671112233")  # any later verification sweeps
    assert all(code not in text for text in stored_texts(app, forgotten))
    assert code_hash(app, forgotten) is None
    assert client.get(f"/v1/verifications/{forgotten['id']}").json()["status"] == "expired"
