"""``kaskad serve`` over real HTTP: fallback, late reports, bad input and operations endpoints.

One server per database backend serves the whole module; each test uses its own contacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Deployment, Server, wait_until

pytestmark = pytest.mark.e2e

PHONE = "+380501234567"
FALLBACK_REASON = "viber not delivered within 2s → sms"
LATE_REASON = (
    "late report: viber delivered after the cascade completed on sms; recorded, no new send"
)


def viber_then_sms(contact: str, *, timeout: str = "2s", **extra: Any) -> dict[str, Any]:
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


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"], body
    return str(body["error"]["code"])


@pytest.fixture(scope="module")
def server(deployment: Deployment) -> Iterator[Server]:
    server = deployment.start_server("serve")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(deployment: Deployment, server: Server) -> Iterator[httpx.Client]:
    with deployment.client(server) as client:
        yield client


def get_notification(client: httpx.Client, notification_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/notifications/{notification_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def fallback(client: httpx.Client, server: Server) -> dict[str, Any]:
    """Scenario 1, run once per backend: viber never delivers, the cascade falls back to SMS.

    Returns the notification as it was when it completed (later tests change it).
    """
    r = client.put("/v1/contacts/c1", json={"phone": PHONE})
    assert r.status_code in (200, 201), r.text
    assert r.json()["phone"] == PHONE
    r = client.put(
        "/v1/sandbox/outcomes",
        json={"channel": "viber", "address": PHONE, "outcome": "undelivered"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"channel": "viber", "address": PHONE, "outcome": "undelivered"}

    r = client.post("/v1/notifications", json=viber_then_sms("c1"))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["created"] is True
    notification_id = body["id"]

    def completed() -> dict[str, Any] | None:
        view = get_notification(client, notification_id)
        assert view["status"] in ("active", "completed"), view
        return view if view["status"] == "completed" else None

    return wait_until(
        completed, 15, interval=0.1, what="the cascade to complete", describe=server.stderr_tail
    )


def test_fallback_from_viber_to_sms(fallback: dict[str, Any], client: httpx.Client) -> None:
    view = fallback
    assert view["contact"] == "c1"
    assert view["finished_at"] is not None
    viber, sms = view["messages"]
    assert (viber["step"], viber["channel"], viber["provider"]) == (0, "viber", "sandbox")
    assert viber["superseded"] is True
    assert viber["status"] == "sent"
    assert viber["provider_message_id"]
    assert (sms["step"], sms["channel"]) == (1, "sms")
    assert sms["superseded"] is False
    assert sms["status"] == "delivered"
    assert sms["cost"] == pytest.approx(0.03)
    assert sms["currency"] == "EUR"
    # The SMS was queued only once the viber wait ran out: not before 2s, not much later.
    viber_queued = datetime.fromisoformat(viber["statuses"]["queued"])
    sms_queued = datetime.fromisoformat(sms["statuses"]["queued"])
    waited = (sms_queued - viber_queued).total_seconds()
    assert 2.0 <= waited < 8.0, waited
    assert list(sms["statuses"]) == ["queued", "submitted", "sent", "delivered"]

    kinds = [d["kind"] for d in view["decisions"]]
    assert kinds.count("fallback") == 1, view["decisions"]
    assert [d["reason"] for d in view["decisions"] if d["kind"] == "fallback"] == [FALLBACK_REASON]
    fallback_decision = next(d for d in view["decisions"] if d["kind"] == "fallback")
    assert fallback_decision["step"] == 1
    assert fallback_decision["message_id"] == sms["id"]
    assert "complete" in kinds
    assert "late_report" not in kinds

    r = client.get("/v1/contacts/c1/timeline")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    decisions = [i for i in items if i["kind"] == "decision"]
    assert any(
        i["name"] == "fallback" and i["text"] == FALLBACK_REASON and i["ref"] == view["id"]
        for i in decisions
    ), decisions
    assert any(
        i["kind"] == "message" and i["channel"] == "sms" and i["name"] == "delivered" for i in items
    ), items


def test_late_report_is_recorded_without_a_new_send(
    fallback: dict[str, Any], client: httpx.Client, server: Server
) -> None:
    notification_id = fallback["id"]
    viber = get_notification(client, notification_id)["messages"][0]
    assert viber["channel"] == "viber"
    report = {
        "results": [
            {
                "messageId": viber["provider_message_id"],
                "clientRef": viber["id"],
                "status": "DELIVERED",
                "doneAt": datetime.now(UTC).isoformat(),
                "price": {"amount": 0.012, "currency": "EUR"},
            }
        ]
    }
    # The sandbox webhook takes an API key; a wrong one changes nothing.
    r = httpx.post(
        f"{server.url}/v1/webhooks/sandbox",
        json=report,
        headers={"Authorization": "Bearer ksk_not-a-real-key"},
    )
    assert r.status_code == 401, r.text
    assert error_code(r) == "unauthorized"
    assert get_notification(client, notification_id)["messages"][0]["status"] == "sent"

    r = client.post("/v1/webhooks/sandbox", json=report)
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 1, "recorded_only": 0, "unmatched": 0, "inbound": 0}

    view = get_notification(client, notification_id)
    assert view["status"] == "completed"
    assert [m["channel"] for m in view["messages"]] == ["viber", "sms"]
    viber, sms = view["messages"]
    assert viber["status"] == "delivered"
    assert viber["superseded"] is True
    assert viber["cost"] == pytest.approx(0.012)
    assert viber["currency"] == "EUR"
    assert sms["status"] == "delivered"
    late = [d for d in view["decisions"] if d["kind"] == "late_report"]
    assert len(late) == 1, view["decisions"]
    assert "recorded, no new send" in late[0]["reason"]
    assert late[0]["reason"] == LATE_REASON
    assert late[0]["step"] == 0
    assert late[0]["message_id"] == viber["id"]

    r = client.get("/v1/sandbox/messages", params={"channel": "sms", "address": PHONE})
    assert r.status_code == 200, r.text
    sent = r.json()["messages"]
    assert len(sent) == 1, sent
    assert sent[0]["client_ref"] == sms["id"]

    # The same report again is history only: no second decision, nothing applied.
    r = client.post("/v1/webhooks/sandbox", json=report)
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 0, "recorded_only": 1, "unmatched": 0, "inbound": 0}
    again = get_notification(client, notification_id)
    assert len(again["messages"]) == 2
    assert [d["kind"] for d in again["decisions"]].count("late_report") == 1

    # A report for a message kaskad never sent is counted, not applied.
    r = client.post(
        "/v1/webhooks/sandbox",
        json={"results": [{"messageId": "sbx_unknown", "status": "DELIVERED"}]},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 0, "recorded_only": 0, "unmatched": 1, "inbound": 0}


def test_bad_input_is_refused_and_stores_nothing(client: httpx.Client, server: Server) -> None:
    base = server.url

    # Authentication: a wrong key, a missing key, a wrong scheme.
    for headers in (
        {"Authorization": "Bearer ksk_wrong"},
        {},
        {"Authorization": f"Basic {client.headers['authorization'].split()[-1]}"},
    ):
        r = httpx.put(f"{base}/v1/contacts/e2e-nokey", json={"phone": PHONE}, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert error_code(r) == "unauthorized"
        r = httpx.post(f"{base}/v1/notifications", json=viber_then_sms("e2e-nokey"))
        assert r.status_code == 401, r.text
    assert client.get("/v1/contacts/e2e-nokey").status_code == 404

    # Malformed JSON.
    r = client.post(
        "/v1/notifications",
        content=b'{"contact": "e2e-json", "cascade": [',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert error_code(r) == "invalid_json"

    # An unknown channel.
    body = viber_then_sms("e2e-pigeon", idempotency_key="pigeon-1")
    body["cascade"][1]["channel"] = "pigeon"
    r = client.post("/v1/notifications", json=body)
    assert r.status_code == 422, r.text
    assert error_code(r) == "unknown_channel"
    assert r.json()["error"]["details"][0]["field"] == "cascade[1].channel"
    r = client.get("/v1/contacts/e2e-pigeon")
    assert r.status_code == 404, r.text
    assert error_code(r) == "contact_not_found"

    # A phone number that is not one.
    r = client.put("/v1/contacts/e2e-badphone", json={"phone": "12345"})
    assert r.status_code == 422, r.text
    assert error_code(r) == "invalid_phone"
    assert r.json()["error"]["details"][0]["field"] == "phone"
    assert client.get("/v1/contacts/e2e-badphone").status_code == 404

    # A batch one over the limit is refused whole; at the limit it is accepted.
    def events(contact: str, count: int) -> dict[str, Any]:
        return {
            "events": [{"contact": contact, "type": "login", "id": f"e-{i}"} for i in range(count)]
        }

    r = client.post("/v1/events:batch", json=events("e2e-batch-big", 1001))
    assert r.status_code == 422, r.text
    assert error_code(r) == "batch_too_large"
    assert client.get("/v1/contacts/e2e-batch-big").status_code == 404
    r = client.post("/v1/events:batch", json=events("e2e-batch-ok", 1000))
    assert r.status_code == 202, r.text
    results = r.json()["results"]
    assert len(results) == 1000
    assert not any(item["duplicate"] for item in results)
    assert client.get("/v1/contacts/e2e-batch-ok").status_code == 200

    # A bad duration and an unknown route keep the error format.
    r = client.post("/v1/notifications", json=viber_then_sms("e2e-duration", timeout="soon"))
    assert r.status_code == 422, r.text
    assert error_code(r) == "invalid_duration"
    assert client.get("/v1/contacts/e2e-duration").status_code == 404
    r = client.get("/v1/notifications/ntf_does_not_exist")
    assert r.status_code == 404, r.text
    assert error_code(r) == "notification_not_found"


def test_operations_endpoints(
    fallback: dict[str, Any], client: httpx.Client, server: Server
) -> None:
    base = server.url
    r = httpx.get(f"{base}/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = httpx.get(f"{base}/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})

    r = httpx.get(f"{base}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert any(line.startswith("kaskad_messages_total") for line in lines), r.text[:2000]
    delivered = [
        line
        for line in lines
        if line.startswith("kaskad_messages_total{")
        and 'channel="sms"' in line
        and 'status="delivered"' in line
    ]
    assert delivered, r.text[:2000]
    assert float(delivered[0].rsplit(" ", 1)[1]) >= 1
    assert any(line.startswith('kaskad_decisions_total{kind="fallback"}') for line in lines)

    r = httpx.get(f"{base}/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "swagger" in r.text.lower()

    r = httpx.get(f"{base}/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/v1/notifications" in paths
    assert "post" in paths["/v1/notifications"]
    assert "/v1/notifications/{notification_id}" in paths


def test_server_logged_no_errors(
    fallback: dict[str, Any], client: httpx.Client, server: Server
) -> None:
    """Runs last in the module: nothing above made the server log an error or a traceback."""
    assert server.running(), server.stderr_tail()
    entries = server.log_entries()
    assert entries, "expected JSON log lines on stderr"
    assert server.problems() == [], server.stderr_tail()
    # Addresses never reach the logs in clear.
    assert PHONE not in server.stderr_path.read_text()
