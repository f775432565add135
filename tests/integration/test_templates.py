"""Templates end to end on both databases: stored through the API, rendered when a message
is sent, links tracked and followed, unsubscribes, previews."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App
from kaskad.domain.links import LinkRef, sign_link
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.http.app import create_app
from kaskad.services import apikeys

EXAMPLES = Path(__file__).parents[2] / "examples" / "templates"
PHONE = "+380501234567"
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
def client(app: App, clock: VirtualClock) -> TestClient:
    key = apikeys.create_api_key(app.uow(), name="test", now=clock.now())
    return TestClient(
        create_app(app, run_engine=False),
        headers={"Authorization": f"Bearer {key}"},
        follow_redirects=False,
    )


def run(app: App) -> None:
    asyncio.run(app.engine.run_until_idle())


def example(name: str) -> str:
    return (EXAMPLES / f"{name}.yaml").read_text()


def contact(client: TestClient, locale: str = "en", **attributes: Any) -> None:
    body = {
        "phone": PHONE,
        "email": "anna@example.com",
        "locale": locale,
        "attributes": {"first_name": "Anna", **attributes},
    }
    assert client.put("/v1/contacts/c1", json=body).status_code in (200, 201)


def notify(client: TestClient, *steps: dict[str, Any], **extra: Any) -> str:
    body = {"contact": "c1", "category": "transactional", "cascade": list(steps), **extra}
    response = client.post("/v1/notifications", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def messages(app: App) -> list[dict[str, Any]]:
    with app.uow() as uow:
        rows = uow.connection.execute(
            select(schema.messages).order_by(schema.messages.c.step)
        ).mappings()
        return [dict(r) for r in rows]


def test_apply_versions_and_reads_back(client: TestClient) -> None:
    first = client.post("/v1/templates", content=example("payment_confirmed"), headers=YAML)
    assert first.status_code == 201
    assert first.json() == {"id": "payment_confirmed", "version": 1, "created": True}
    again = client.post("/v1/templates", json={"source": example("payment_confirmed")})
    assert again.status_code == 200
    assert again.json()["created"] is False
    changed = example("payment_confirmed").replace("Payment confirmed", "Payment done")
    assert client.post("/v1/templates", json={"source": changed}).json()["version"] == 2
    detail = client.get("/v1/templates/payment_confirmed").json()
    assert (detail["version"], detail["name"]) == (2, "Payment done")
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    old = client.get("/v1/templates/payment_confirmed?version=1").json()
    assert "Payment confirmed" in old["source"]
    listed = client.get("/v1/templates").json()["templates"]
    assert [t["id"] for t in listed] == ["payment_confirmed"]
    assert client.get("/v1/templates/nope").json()["error"]["code"] == "template_not_found"


def test_invalid_template_lists_every_problem_with_its_line(client: TestClient) -> None:
    bad = "id: broken\nvariants:\n  - channel: email\n    text: '{{ contact.name '\n"
    response = client.post("/v1/templates", content=bad, headers=YAML)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_template"
    problems = {(p["path"], p["line"]) for p in error["details"]}
    assert ("variants[0]", 3) in problems  # email needs a subject
    assert ("variants[0].text", 4) in problems  # the Liquid syntax error
    as_object = client.post(
        "/v1/templates", json={"definition": {"id": "x", "variants": [{"channel": "fax"}]}}
    )
    assert as_object.status_code == 422
    assert all(p["line"] is None for p in as_object.json()["error"]["details"])
    assert client.get("/v1/templates").json()["templates"] == []  # nothing stored


def test_message_renders_at_send_time_in_the_contacts_locale(client: TestClient, app: App) -> None:
    client.post("/v1/templates", content=example("payment_confirmed"), headers=YAML)
    contact(client, locale="uk-UA")
    notify(
        client,
        {"channel": "sms", "template": "payment_confirmed", "content": {"sender": "MyBank"}},
        data={"amount": 1234.5, "merchant": "Silpo"},
    )
    run(app)
    (message,) = messages(app)
    assert message["content"]["text"] == "Anna, списано 1 234,50 UAH (Silpo)."
    assert message["content"]["sender"] == "MyBank"  # the step's override
    assert (message["content"]["$template"], message["content"]["$version"]) == (
        "payment_confirmed",
        1,
    )
    received = client.get("/v1/sandbox/messages?channel=sms").json()["messages"]
    assert received[0]["content"]["text"] == message["content"]["text"]


def test_a_missing_variable_fails_the_message_and_the_cascade_moves_on(
    client: TestClient, app: App
) -> None:
    client.post("/v1/templates", content=example("payment_confirmed"), headers=YAML)
    contact(client)
    notify(
        client,
        {"channel": "sms", "template": "payment_confirmed"},
        {"channel": "email", "content": {"subject": "Payment", "text": "Paid"}},
        data={"amount": 10},  # no merchant
    )
    run(app)
    sms, email = messages(app)
    assert sms["status"] == "failed"
    assert "missing variable event.merchant" in sms["error"]
    assert "$version" not in sms["content"]  # never rendered half-filled
    assert email["status"] in ("submitted", "sent", "delivered")
    sent = client.get("/v1/sandbox/messages?channel=sms").json()["messages"]
    assert sent == []


def test_an_unknown_template_fails_the_message(client: TestClient, app: App) -> None:
    contact(client)
    notify(client, {"channel": "sms", "template": "no_such_template"})
    run(app)
    (message,) = messages(app)
    assert message["status"] == "failed"
    assert message["error"] == "template 'no_such_template' does not exist"


def test_links_become_tracked_short_links_and_a_click_is_recorded(
    client: TestClient, app: App
) -> None:
    client.post("/v1/templates", content=example("payment_confirmed"), headers=YAML)
    contact(client)
    notify(
        client,
        {"channel": "sms", "template": "payment_confirmed", "until": "clicked"},
        data={"amount": 5, "merchant": "Silpo"},
    )
    run(app)
    (message,) = messages(app)
    text = message["content"]["text"]
    assert "https://bank.example/payments" not in text
    base = app.settings.base_url + "/r/"
    token = text.split(base)[1].split()[0]
    followed = client.get(f"/r/{token}")
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://bank.example/payments"
    with app.uow() as uow:
        clicks = uow.links.clicks_of([message["id"]])
        status = uow.notifications.messages_by_ids([message["id"]])[message["id"]]["status"]
        owner = uow.notifications.get(message["notification_id"])
    assert [(c["kind"], c["link"], c["url"]) for c in clicks] == [
        ("click", 0, "https://bank.example/payments")
    ]
    assert status == "clicked"
    assert owner is not None
    assert owner["status"] == "completed"  # the step waited for a click
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.get(f"/r/{tampered}").status_code == 404
    assert client.get("/r/nonsense").json()["error"]["code"] == "link_not_found"


def test_email_open_pixel_marks_the_message_seen(client: TestClient, app: App) -> None:
    client.post("/v1/templates", content=example("payment_confirmed"), headers=YAML)
    contact(client)
    notify(
        client,
        {"channel": "email", "template": "payment_confirmed", "until": "seen"},
        data={"amount": 5, "merchant": "Silpo"},
    )
    run(app)
    (message,) = messages(app)
    html = message["content"]["html"]
    assert app.settings.base_url + "/o/" in html
    assert "unsubscribe_url" not in message["content"]  # transactional
    pixel = html.split(app.settings.base_url + "/o/")[1].split('"')[0]
    response = client.get(f"/o/{pixel}")
    assert response.headers["content-type"] == "image/gif"
    assert messages(app)[0]["status"] == "seen"
    assert client.get("/o/garbage").headers["content-type"] == "image/gif"


def test_one_click_unsubscribe_withdraws_the_consent(client: TestClient, app: App) -> None:
    client.post("/v1/templates", content=example("tariff_change"), headers=YAML)
    contact(client)
    client.put("/v1/contacts/c1", json={"consents": {"email": {"marketing": True}}})
    body = {
        "contact": "c1",
        "category": "marketing",
        "cascade": [{"channel": "email", "template": "tariff_change"}],
        "data": {"starts_on": "2026-12-01"},
    }
    assert client.post("/v1/notifications", json=body).status_code == 202
    run(app)
    (message,) = messages(app)
    url = message["content"]["unsubscribe_url"]
    assert url.startswith(app.settings.base_url + "/u/")
    path = url.removeprefix(app.settings.base_url)
    page = client.get(path)
    assert page.status_code == 200
    assert client.get("/v1/contacts/c1").json()["consents"]["email"]["marketing"] is True
    done = client.post(path, content="List-Unsubscribe=One-Click")
    assert done.status_code == 200
    assert client.get("/v1/contacts/c1").json()["consents"]["email"]["marketing"] is False
    with app.uow() as uow:
        types = uow.connection.execute(select(schema.events.c.type)).scalars().all()
    assert types == ["consent.withdrawn"]
    assert client.post(path).status_code == 200  # twice is harmless
    with app.uow() as uow:
        assert len(uow.connection.execute(select(schema.events.c.id)).all()) == 1
    wrong_kind = sign_link(app.settings.link_key, LinkRef(message["id"], 0, "click"))
    assert client.post(f"/u/{wrong_kind}").status_code == 404


def test_preview_shows_encoding_segments_cost_and_what_is_missing(
    client: TestClient, app: App
) -> None:
    app.settings.sms_segment_price = 0.03
    app.settings.sms_price_currency = "EUR"
    client.post("/v1/templates", content=example("payment_confirmed"), headers=YAML)
    response = client.post(
        "/v1/templates/payment_confirmed:preview",
        json={"contact": {"first_name": "Anna"}, "event": {"amount": 99.9}, "channel": "sms"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1
    assert "event.merchant" in body["variables"]
    by_locale = {v["locale"]: v for v in body["variants"]}
    uk, en = by_locale["uk"], by_locale["en"]
    assert uk["sms"]["encoding"] == "UCS-2"
    assert en["sms"]["encoding"] == "GSM-7"
    assert en["missing"] == ["event.merchant"]
    assert uk["sms"]["characters"] == len(uk["content"]["text"])
    assert en["sms"]["cost"] == pytest.approx(0.03 * en["sms"]["segments"])
    assert app.settings.base_url + "/r/" in en["content"]["text"]  # as it would be sent
    only_uk = client.post(
        "/v1/templates/payment_confirmed:preview", json={"locale": "uk-UA", "channel": "sms"}
    ).json()
    assert [v["locale"] for v in only_uk["variants"]] == ["uk"]
    draft = example("payment_confirmed").replace("списано", "сплачено")
    from_source = client.post(
        "/v1/templates/payment_confirmed:preview",
        json={"source": draft, "channel": "sms", "locale": "uk"},
    ).json()
    assert from_source["version"] is None
    assert "сплачено" in from_source["variants"][0]["content"]["text"]


def test_a_journey_send_renders_with_its_event(client: TestClient, app: App) -> None:
    client.post("/v1/templates", content=example("payment_confirmed"), headers=YAML)
    contact(client)
    journey = """
id: paid
name: Paid
trigger:
  event: payment
steps:
  - send:
      category: transactional
      cascade:
        - channel: sms
          template: payment_confirmed
"""
    applied = client.post("/v1/journeys", content=journey, headers=YAML)
    assert applied.status_code == 201, applied.text
    event = {
        "contact": "c1",
        "type": "payment",
        "id": "p-1",
        "payload": {"amount": 7, "merchant": "ATB"},
    }
    assert client.post("/v1/events", json=event).status_code in (200, 202)
    run(app)
    (message,) = messages(app)
    assert message["content"]["text"].startswith("Anna, 7.00 UAH paid at ATB.")
