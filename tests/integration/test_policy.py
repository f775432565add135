"""The contact pressure policy end to end through the API, on both databases, with the
engine stepped on a virtual clock (2026-01-05 09:00 UTC, 11:00 in Kyiv, at the start)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kaskad.bootstrap import App
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.http.app import create_app
from kaskad.services import apikeys

PHONE = "+380501234567"
OPTED_IN = {"*": {"marketing": True}}
POLICY = """caps:
  marketing: 2/day
quiet_hours:
  marketing: "21:00-09:00"
dedup_window: 24h
relevance:
  - after: loan_repaid
    suppress: {topic: loan_offer}
    for: 30d
"""


@pytest.fixture
def client(app: App, clock: VirtualClock) -> TestClient:
    key = apikeys.create_api_key(app.uow(), name="test", now=clock.now())
    api = TestClient(create_app(app, run_engine=False), headers={"Authorization": f"Bearer {key}"})
    api.put(
        "/v1/contacts/c1", json={"phone": PHONE, "email": "anna@example.com", "consents": OPTED_IN}
    ).raise_for_status()
    return api


def run(app: App) -> None:
    asyncio.run(app.engine.run_until_idle())


def settle(app: App, clock: VirtualClock) -> None:
    """Run what is due, then let the sandbox report the sends."""
    run(app)
    clock.advance(timedelta(seconds=5))
    run(app)


def apply(client: TestClient, source: str = POLICY) -> dict[str, Any]:
    response = client.put("/v1/policy", json={"source": source})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def offer(channel: str = "sms", category: str = "marketing", **extra: Any) -> dict[str, Any]:
    content = {"subject": "Offer", "text": "Offer"} if channel == "email" else {"text": "Offer"}
    return {
        "contact": "c1",
        "category": category,
        "cascade": [{"channel": channel, "content": content, "until": "sent"}],
        **extra,
    }


def send(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/notifications", json=body)
    assert response.status_code == 202, response.text
    found = client.get(f"/v1/notifications/{response.json()['id']}").json()
    return dict(found)


def refresh(client: TestClient, notification: dict[str, Any]) -> dict[str, Any]:
    return dict(client.get(f"/v1/notifications/{notification['id']}").json())


def test_third_marketing_message_in_a_day_waits_for_the_next_slot(
    client: TestClient, app: App, clock: VirtualClock
) -> None:
    apply(client)
    first, second = send(client, offer()), send(client, offer("email"))
    clock.advance(timedelta(hours=1))
    third = send(client, offer("viber"))
    assert [first["status"], second["status"]] == ["active", "active"]
    assert third["status"] == "deferred"
    reason = third["decisions"][-1]["reason"]
    assert reason.startswith("deferred: marketing cap 2/day reached (2 sent since Mon 05 Jan 11:00")
    # The oldest send leaves the 24 h window at 11:00 Kyiv the next day.
    assert third["due_at"].startswith("2026-01-06T09:00:00")
    assert third["messages"] == []

    calendar = client.get("/v1/contacts/c1/calendar").json()
    assert calendar["timezone"] == "Europe/Kyiv"
    assert [p["notification"] for p in calendar["planned"]] == [third["id"]]
    assert calendar["planned"][0]["reason"] == reason
    assert calendar["caps"] == [{"rule": "marketing cap 2/day", "used": 2, "limit": 2}]

    clock.advance(timedelta(hours=23))  # 09:00 UTC on Tuesday
    settle(app, clock)
    done = refresh(client, third)
    assert done["status"] == "completed"
    assert [m["channel"] for m in done["messages"]] == ["viber"]


def test_security_and_transactional_pass_a_full_cap_but_count(
    client: TestClient, app: App, clock: VirtualClock
) -> None:
    apply(client, "caps:\n  all: 2/day\n")
    assert send(client, offer(category="transactional"))["status"] == "active"
    assert send(client, offer(category="security"))["status"] == "active"
    assert send(client, offer(category="security"))["status"] == "active"
    # The cap is full with what was exempt from it: a marketing message waits.
    assert send(client, offer())["status"] == "deferred"


def test_quiet_hours_defer_marketing_to_the_morning_but_not_security(
    client: TestClient, clock: VirtualClock
) -> None:
    apply(client)
    clock.advance(timedelta(hours=11))  # 20:00 UTC = 22:00 in Kyiv
    marketing = send(client, offer())
    security = send(client, offer(category="security"))
    assert marketing["status"] == "deferred"
    assert marketing["due_at"].startswith("2026-01-06T07:00:00")  # 09:00 Kyiv
    assert (
        "quiet hours 21:00–09:00 (Europe/Kyiv) for marketing"
        in (marketing["decisions"][-1]["reason"])
    )
    assert security["status"] == "active"


def test_the_same_content_key_reaches_the_contact_once_on_any_channel(
    client: TestClient,
) -> None:
    apply(client)
    first = send(client, offer("viber", content_key="card-offer"))
    again = send(client, offer("email", content_key="card-offer"))
    other = send(client, offer("email", content_key="deposit-offer"))
    assert first["status"] == "active"
    assert again["status"] == "suppressed"
    assert again["messages"] == []
    assert "duplicate of 'card-offer' sent on viber" in again["decisions"][-1]["reason"]
    assert other["status"] == "active"


def test_no_loan_offer_for_30_days_after_loan_repaid(
    client: TestClient, clock: VirtualClock
) -> None:
    apply(client)
    event = {"contact": "c1", "type": "loan_repaid", "id": "loan-1"}
    assert client.post("/v1/events", json=event).status_code == 202
    dropped = send(client, offer(topic="loan_offer"))
    unrelated = send(client, offer(topic="deposit_offer"))
    assert dropped["status"] == "suppressed"
    assert "no loan_offer for 30d after loan_repaid" in dropped["decisions"][-1]["reason"]
    assert unrelated["status"] == "active"
    clock.advance(timedelta(days=30, minutes=1))
    assert send(client, offer(topic="loan_offer"))["status"] == "active"


def test_a_suppressed_address_is_skipped_and_the_cascade_moves_on(
    client: TestClient,
) -> None:
    added = client.post(
        "/v1/suppressions",
        json={"address": "+380 50 123 4567", "channel": "sms", "reason": "complaint"},
    )
    assert added.status_code == 201
    assert added.json()["address"] == PHONE
    assert (
        client.post("/v1/suppressions", json={"address": PHONE, "channel": "sms"}).status_code
        == 200
    )
    body = offer("sms", category="service")
    body["cascade"].append({"channel": "email", "content": {"subject": "S", "text": "T"}})
    found = send(client, body)
    assert [m["channel"] for m in found["messages"]] == ["email"]
    skipped = [d["reason"] for d in found["decisions"] if d["kind"] == "skip"]
    assert skipped == ["sms skipped: the address is on the suppression list (complaint)"]
    listed = client.get("/v1/suppressions").json()["suppressions"]
    assert [(s["address"], s["channel"]) for s in listed] == [(PHONE, "sms")]
    assert client.delete(f"/v1/suppressions/{PHONE}", params={"channel": "sms"}).status_code == 204
    assert client.delete(f"/v1/suppressions/{PHONE}", params={"channel": "sms"}).status_code == 404


def test_a_higher_priority_campaign_takes_the_slot_and_the_other_moves(
    client: TestClient, app: App, clock: VirtualClock
) -> None:
    apply(client, "caps:\n  marketing: 1/day\n")
    send(client, offer())  # the day's one marketing message
    low = send(client, offer("email", priority=10))
    wanted = low["due_at"]
    high = send(client, offer("viber", priority=50))
    assert low["status"] == high["status"] == "deferred"
    assert high["due_at"] == wanted  # the higher priority takes tomorrow's slot...
    low = refresh(client, low)
    assert low["due_at"].startswith("2026-01-07T09:00:00")  # ...and the other moves at once
    assert low["decisions"][-1]["reason"].startswith("moved: marketing cap 1/day reached")
    calendar = client.get("/v1/contacts/c1/calendar").json()
    assert [p["notification"] for p in calendar["planned"]] == [high["id"], low["id"]]
    clock.advance(timedelta(days=1))
    settle(app, clock)
    high, low = refresh(client, high), refresh(client, low)
    assert high["status"] == "completed"
    assert low["status"] == "deferred"
    assert low["due_at"].startswith("2026-01-07T09:00:00")
    assert "marketing cap 1/day reached" in low["decisions"][-1]["reason"]
    timeline = client.get("/v1/contacts/c1/timeline").json()["items"]
    assert any(i["kind"] == "decision" and i["text"].startswith("moved:") for i in timeline)


def test_no_slot_before_valid_until_drops_the_notification(
    client: TestClient, clock: VirtualClock
) -> None:
    apply(client, "caps:\n  marketing: 1/day\n")
    send(client, offer())
    valid = (clock.now() + timedelta(hours=3)).isoformat()
    dropped = send(client, offer("email", valid_until=valid))
    assert dropped["status"] == "suppressed"
    assert (
        "no free slot before Mon 05 Jan 14:00 (Europe/Kyiv)" in (dropped["decisions"][-1]["reason"])
    )


def test_explain_answers_without_sending(client: TestClient) -> None:
    apply(client)
    send(client, offer())
    send(client, offer())
    answer = client.post("/v1/policy:explain", json=offer("email"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["verdict"] == "defer"
    assert body["channel"] == "email"
    assert body["steps"][0]["notes"] == ["marketing cap 2/day: 2 of 2 used"]
    # Nothing was stored: the calendar holds nothing planned.
    assert client.get("/v1/contacts/c1/calendar").json()["planned"] == []
    ok = client.post("/v1/policy:explain", json=offer(category="service")).json()
    assert ok["verdict"] == "send"


def test_a_bad_policy_is_refused_with_path_and_line(client: TestClient) -> None:
    response = client.put("/v1/policy", json={"source": "caps:\n  marketing: 2/wek\n"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_policy"
    assert error["details"][0]["path"] == "caps.marketing"
    assert error["details"][0]["line"] == 2
    # Nothing applied: the defaults are still in force.
    assert client.get("/v1/policy").json()["version"] == 0
    assert apply(client)["version"] == 1
    assert apply(client) == {"version": 1, "created": False}
    assert client.get("/v1/policy").json()["source"] == POLICY


def test_a_cap_longer_than_the_send_log_is_kept_is_refused(app: App, client: TestClient) -> None:
    """With the send log kept 7 days, a monthly cap would count sends already purged."""
    app.settings = app.settings.model_copy(update={"send_log_days": 7})
    source = "caps:\n  marketing: 2/month\n"
    for path in ("/v1/policy", "/v1/policy:validate"):
        call = client.put if path == "/v1/policy" else client.post
        response = call(path, json={"source": source})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_policy"
        assert "send_log_days" in error["message"]
        assert error["details"][0]["path"] == "caps"
    assert client.get("/v1/policy").json()["version"] == 0
    assert apply(client, "caps:\n  marketing: 2/week\n")["version"] == 1


def test_explain_counts_a_journeys_own_caps_and_knows_unknown_contacts(
    app: App, client: TestClient, clock: VirtualClock
) -> None:
    apply(client, "caps:\n  - {journey: card-offer, limit: 1/day}\n")
    with app.uow() as uow:
        contact = uow.contacts.by_external_id("c1")
        assert contact is not None
        uow.policy.log_send(
            {
                "contact_id": contact["id"],
                "notification_id": "ntf_earlier",
                "message_id": "msg_earlier",
                "category": "marketing",
                "channel": "sms",
                "journey_id": "card-offer",
                "at": clock.now() - timedelta(hours=1),
            }
        )
        uow.commit()
    asked = client.post("/v1/policy:explain", params={"journey": "card-offer"}, json=offer())
    assert asked.json()["verdict"] == "defer", asked.text
    assert "all in journey 'card-offer' cap 1/day reached" in asked.json()["reason"]
    # Another journey, or a notification sent through the API, is not held by that cap.
    other = client.post("/v1/policy:explain", params={"journey": "welcome"}, json=offer())
    assert other.json()["verdict"] == "send"
    assert client.post("/v1/policy:explain", json=offer()).json()["verdict"] == "send"
    unknown = client.post("/v1/policy:explain", json={**offer(), "contact": "nobody"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "contact_not_found"
