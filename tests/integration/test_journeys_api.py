"""The journeys API in-process, on both databases, with the engine on a virtual clock."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kaskad.bootstrap import App
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.http.app import create_app
from kaskad.services import apikeys

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
CREDIT_CARD = (EXAMPLES / "credit-card-offer.yaml").read_text()
YAML = {"Content-Type": "application/yaml"}

WELCOME = """id: welcome
name: Welcome
trigger: {api: true}
reentry: once
steps:
  - id: hello
    send:
      category: service
      cascade:
        - channel: email
          content: {subject: Welcome, text: Glad to have you}
  - id: pause
    wait: 1d
  - id: check
    branch:
      - when: payload.vip
        goto: exit
  - id: tips
    send:
      category: service
      cascade:
        - channel: email
          content: {subject: Tips, text: Three things to try}
"""

INVALID = """id: broken
name: Broken
trigger: {api: true}
steps:
  - send:
      category: service
      cascade:
        - channel: email
          content: {subject: Hi, text: Hello}
  - wait: 2x
  - send:
      category: servise
      cascade:
        - channel: pigeon
          content: {text: Hi}
"""


@pytest.fixture
def client(app: App, clock: VirtualClock) -> TestClient:
    key = apikeys.create_api_key(app.uow(), name="test", now=clock.now())
    return TestClient(create_app(app, run_engine=False), headers={"Authorization": f"Bearer {key}"})


def run_for(app: App, clock: VirtualClock, span: timedelta) -> None:
    asyncio.run(app.engine.run_until(clock, clock.now() + span))


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}, body
    return dict(body["error"])


def add_contact(client: TestClient, external_id: str = "c1") -> None:
    r = client.put(
        f"/v1/contacts/{external_id}",
        json={"email": f"{external_id}@example.com", "consents": {"*": {"service": True}}},
    )
    assert r.status_code in (200, 201), r.text


# -- applying and validating --------------------------------------------------------------


def test_apply_yaml_then_unchanged_then_a_new_version(client: TestClient) -> None:
    r = client.post("/v1/journeys", content=WELCOME, headers=YAML)
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "welcome", "version": 1, "created": True, "status": "active"}
    again = client.post("/v1/journeys", content=WELCOME, headers=YAML)
    assert again.status_code == 200
    assert again.json() == {"id": "welcome", "version": 1, "created": False, "status": "active"}
    edited = WELCOME.replace("Three things", "Four things")
    r = client.post("/v1/journeys?activate=false", content=edited, headers=YAML)
    assert r.status_code == 201
    assert r.json()["version"] == 2
    body = client.get("/v1/journeys/welcome").json()
    assert (body["version"], body["latest"], body["status"]) == (1, 2, "active")
    assert body["source"] == edited
    assert body["source_version"] == 2
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert [v["live"] for v in body["versions"]] == [True, False]
    older = client.get("/v1/journeys/welcome", params={"version": 1}).json()
    assert (older["source_version"], older["source"]) == (1, WELCOME)
    r = client.get("/v1/journeys/welcome", params={"version": 7})
    assert r.status_code == 404
    assert error(r)["code"] == "version_not_found"


def test_apply_json_source_and_definition_forms(client: TestClient) -> None:
    r = client.post("/v1/journeys", json={"source": CREDIT_CARD, "activate": False})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "draft"
    definition = {
        "id": "ping",
        "name": "Ping",
        "trigger": {"event": "ping"},
        "steps": [{"update": {"attributes": {"pinged": True}}}],
    }
    r = client.post("/v1/journeys", json={"definition": definition})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": "ping", "version": 1, "created": True, "status": "active"}
    assert json.loads(client.get("/v1/journeys/ping").json()["source"]) == definition
    listed = client.get("/v1/journeys").json()["journeys"]
    assert [(j["id"], j["status"], j["version"], j["latest"]) for j in listed] == [
        ("credit-card-offer", "draft", None, 1),
        ("ping", "active", 1, 1),
    ]


def test_invalid_journey_is_422_with_every_path_and_line(client: TestClient) -> None:
    r = client.post("/v1/journeys", content=INVALID, headers=YAML)
    assert r.status_code == 422
    body = error(r)
    assert body["code"] == "invalid_journey"
    assert body["details"][0] == {
        "path": "steps[1].wait",
        "line": 10,
        "message": '"2x" is not a duration (use e.g. 60s, 5m, 2h, 3d)',
    }
    assert [(d["path"], d["line"]) for d in body["details"][1:]] == [
        ("steps[2].send.category", 12),
        ("steps[2].send.cascade[0].channel", 14),
    ]
    assert client.get("/v1/journeys").json() == {"journeys": []}
    r = client.post("/v1/journeys:validate", json={"source": INVALID})
    assert r.status_code == 422
    assert error(r)["details"][0]["line"] == 10


def test_a_definition_object_is_reported_by_path_without_lines(client: TestClient) -> None:
    definition = {"id": "x", "name": "X", "trigger": {"api": True}, "steps": [{"wait": "2x"}]}
    r = client.post("/v1/journeys:validate", json={"definition": definition})
    assert r.status_code == 422
    body = error(r)
    assert body["details"] == [
        {"path": "steps[0].wait", "line": None, "message": body["details"][0]["message"]}
    ]
    assert body["message"].startswith("steps[0].wait: ")


def test_validate_summarises_without_storing(client: TestClient) -> None:
    r = client.post(
        "/v1/journeys:validate", content=CREDIT_CARD, headers={"Content-Type": "text/yaml"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "valid": True,
        "id": "credit-card-offer",
        "name": "Credit card offer",
        "steps": 6,
        "trigger": "event",
    }
    assert client.get("/v1/journeys").json() == {"journeys": []}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ("id: x", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        ('{"activate": true}', {"Content-Type": "application/json"}, 422, "validation_error"),
        ("{not json", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b"\xff\xfe", YAML, 400, "bad_request"),
    ],
)
def test_bodies_that_are_not_a_journey(
    client: TestClient, body: str | bytes, headers: dict[str, str], status: int, code: str
) -> None:
    r = client.post("/v1/journeys", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert error(r)["code"] == code


def test_journeys_need_an_api_key(client: TestClient) -> None:
    r = client.get("/v1/journeys", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


# -- status ------------------------------------------------------------------------------


def test_unknown_journey_and_run_are_404(client: TestClient) -> None:
    for method, path in [
        ("GET", "/v1/journeys/nope"),
        ("POST", "/v1/journeys/nope:publish"),
        ("POST", "/v1/journeys/nope:pause"),
        ("POST", "/v1/journeys/nope:resume"),
        ("POST", "/v1/journeys/nope:archive"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 404, (path, r.text)
        assert error(r)["code"] == "journey_not_found"
    r = client.post("/v1/journeys/nope/runs", json={"contact": "c1"})
    assert (r.status_code, error(r)["code"]) == (404, "journey_not_found")
    r = client.get("/v1/runs/run_nope")
    assert (r.status_code, error(r)["code"]) == (404, "run_not_found")


def test_publish_pause_resume_archive(client: TestClient) -> None:
    client.post("/v1/journeys?activate=false", content=WELCOME, headers=YAML)
    add_contact(client)
    r = client.post("/v1/journeys/welcome/runs", json={"contact": "c1"})
    assert (r.status_code, error(r)["code"]) == (422, "journey_not_active")
    r = client.post("/v1/journeys/welcome:publish")
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("status", "version", "latest", "trigger")} == {
        "status": "active",
        "version": 1,
        "latest": 1,
        "trigger": "api",
    }
    assert client.post("/v1/journeys/welcome:pause").json()["status"] == "paused"
    r = client.post("/v1/journeys/welcome/runs", json={"contact": "c1"})
    assert error(r)["code"] == "journey_not_active"
    assert client.post("/v1/journeys/welcome:resume").json()["status"] == "active"
    run_id = client.post("/v1/journeys/welcome/runs", json={"contact": "c1"}).json()["id"]
    assert client.post("/v1/journeys/welcome:archive").json()["status"] == "archived"
    run = client.get(f"/v1/runs/{run_id}").json()
    assert (run["status"], run["ended_reason"]) == ("exited", "journey archived")
    r = client.post("/v1/journeys/welcome:resume")
    assert (r.status_code, error(r)["code"]) == (422, "journey_archived")
    assert client.post("/v1/journeys/welcome:publish").json()["status"] == "active"


def test_resume_keeps_the_live_version_and_publish_promotes_the_draft(
    client: TestClient,
) -> None:
    client.post("/v1/journeys", content=WELCOME, headers=YAML)
    client.post("/v1/journeys/welcome:pause")
    draft = WELCOME.replace("name: Welcome", "name: Welcome again")
    assert draft != WELCOME
    r = client.post("/v1/journeys?activate=false", content=draft, headers=YAML)
    assert (r.status_code, r.json()["version"]) == (201, 2)
    resumed = client.post("/v1/journeys/welcome:resume").json()
    assert (resumed["status"], resumed["version"], resumed["latest"]) == ("active", 1, 2)
    published = client.post("/v1/journeys/welcome:publish").json()
    assert (published["status"], published["version"]) == ("active", 2)


# -- runs and counts ---------------------------------------------------------------------


def test_api_trigger_runs_and_counts_per_step(
    client: TestClient, app: App, clock: VirtualClock
) -> None:
    client.post("/v1/journeys", content=WELCOME, headers=YAML)
    add_contact(client, "c1")
    add_contact(client, "c2")
    r = client.post("/v1/journeys/welcome/runs", json={"contact": "c1"})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["entered"] is True
    assert first["id"].startswith("run_")
    again = client.post("/v1/journeys/welcome/runs", json={"contact": "c1"})
    assert again.status_code == 200
    assert again.json()["entered"] is False
    assert again.json()["id"] is None
    assert again.json()["reason"]
    r = client.post("/v1/journeys/welcome/runs", json={"contact": "c2", "data": {"vip": True}})
    second = r.json()["id"]
    r = client.post("/v1/journeys/welcome/runs", json={"contact": "nobody"})
    assert (r.status_code, error(r)["code"]) == (422, "contact_not_found")

    run = client.get(f"/v1/runs/{first['id']}").json()
    assert {k: run[k] for k in ("journey", "version", "contact", "status", "step")} == {
        "journey": "welcome",
        "version": 1,
        "contact": "c1",
        "status": "active",
        "step": "pause",
    }
    assert run["waiting"]["step"] == "pause"
    assert run["waiting"]["kind"] == "time"
    assert [(h["step"], h["kind"]) for h in run["history"]] == [
        (None, "enter"),
        ("hello", "send"),
        ("pause", "wait"),
    ]
    steps = _steps(client)
    assert steps["hello"]["entered"] == 2
    assert steps["pause"] == {
        "step": "pause",
        "kind": "wait",
        "entered": 2,
        "waiting": 2,
        "completed": 0,
        "exited": 0,
        "converted": 0,
    }

    run_for(app, clock, timedelta(days=2))
    run = client.get(f"/v1/runs/{first['id']}").json()
    assert (run["status"], run["step"], run["waiting"]) == ("completed", None, None)
    assert run["ended_at"] is not None
    assert [h["kind"] for h in run["history"]][-4:] == ["resume", "branch", "send", "completed"]
    vip = client.get(f"/v1/runs/{second}").json()
    assert (vip["status"], vip["history"][-1]["step"]) == ("exited", "check")
    version = client.get("/v1/journeys/welcome").json()["versions"][0]
    assert {k: version[k] for k in ("entered", "active", "completed", "exited")} == {
        "entered": 2,
        "active": 0,
        "completed": 1,
        "exited": 1,
    }
    steps = _steps(client)
    assert steps["pause"]["waiting"] == 0
    assert (steps["check"]["entered"], steps["check"]["exited"]) == (2, 1)
    assert steps["tips"]["entered"] == 1


def _steps(client: TestClient) -> dict[str, dict[str, Any]]:
    [version] = client.get("/v1/journeys/welcome").json()["versions"]
    return {step["step"]: step for step in version["steps"]}


# -- simulation --------------------------------------------------------------------------

SIMULATION: dict[str, Any] = {
    "contact": {
        "phone": "+380501234567",
        "email": "anna@bank.example",
        "attributes": {"age": 30},
        "consents": {"*": {"marketing": True}},
    },
    "events": [{"type": "salary_received", "payload": {"amount": 25000}}],
    "outcomes": [{"channel": "viber", "outcome": "seen"}],
    "horizon": "5d",
    "start": "2026-03-02T12:00:00Z",
}


def test_simulate_the_stored_journey_without_touching_the_database(client: TestClient) -> None:
    client.post("/v1/journeys", content=CREDIT_CARD, headers=YAML)
    r = client.post("/v1/journeys/credit-card-offer:simulate", json=SIMULATION)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["timezone"] == "Europe/Kyiv"
    messages = [(i["channel"], i["name"]) for i in body["timeline"] if i["kind"] == "message"]
    assert messages == [("email", "delivered"), ("viber", "seen"), ("sms", "delivered")]
    sms = next(i for i in body["timeline"] if i["channel"] == "sms")
    assert datetime.fromisoformat(sms["at"]) == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    assert [run["status"] for run in body["runs"]] == ["completed"]
    # Nothing of the simulation reached the real database.
    assert client.get("/v1/contacts/sim-contact").status_code == 404
    version = client.get("/v1/journeys/credit-card-offer").json()["versions"][0]
    assert version["entered"] == 0


def test_simulate_a_posted_source(client: TestClient) -> None:
    clicked = SIMULATION | {
        "source": CREDIT_CARD,
        "outcomes": [{"channel": "viber", "outcome": "clicked"}],
    }
    r = client.post("/v1/journeys/credit-card-offer:simulate", json=clicked)
    assert r.status_code == 200, r.text
    channels = [i["channel"] for i in r.json()["timeline"] if i["kind"] == "message"]
    assert channels == ["email", "viber"]
    assert r.json()["runs"][0]["status"] == "exited"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"horizon": "soon"}, 422, "invalid_simulation"),
        ({"horizon": "400d"}, 422, "invalid_simulation"),
        ({"outcomes": [{"channel": "pigeon", "outcome": "seen"}]}, 422, "unknown_channel"),
        ({"events": [{"type": "salary_received", "at": "+9d"}]}, 422, "invalid_simulation"),
        ({"events": [{"type": "salary_received", "at": "tomorrow"}]}, 422, "invalid_simulation"),
        ({"contact": {"phone": "12"}}, 422, "invalid_phone"),
        ({"source": INVALID}, 422, "invalid_journey"),
        ({"source": WELCOME}, 422, "journey_id_mismatch"),
    ],
)
def test_simulate_refuses_bad_input(
    client: TestClient, change: dict[str, Any], status: int, code: str
) -> None:
    client.post("/v1/journeys", content=CREDIT_CARD, headers=YAML)
    r = client.post("/v1/journeys/credit-card-offer:simulate", json=SIMULATION | change)
    assert r.status_code == status, r.text
    assert error(r)["code"] == code


def test_simulate_an_unknown_journey_is_404(client: TestClient) -> None:
    r = client.post("/v1/journeys/nope:simulate", json=SIMULATION)
    assert (r.status_code, error(r)["code"]) == (404, "journey_not_found")


def test_openapi_describes_the_journey_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    post = paths["/v1/journeys"]["post"]
    assert post["tags"] == ["journeys"]
    assert {"application/json", "application/yaml"} <= set(post["requestBody"]["content"])
    assert "virtual clock" in paths["/v1/journeys/{journey_id}:simulate"]["post"]["description"]
    assert "/v1/runs/{run_id}" in paths
