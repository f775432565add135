"""`kaskad journeys …` on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kaskad.adapters.storage.database import create_db_engine
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.interfaces.cli.main import cli
from kaskad.services import journeys, run_views
from kaskad.services.errors import NotFound

runner = CliRunner()
EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
CREDIT_CARD = EXAMPLES / "credit-card-offer.yaml"

BROKEN = """id: broken
name: Broken
trigger: {event: signed_up}
steps:
  - wait: 2x
  - send:
      category: servise
      cascade:
        - channel: email
          content: {text: Hi}
"""

CONTACT = json.dumps(
    {
        "phone": "+380501234567",
        "attributes": {"age": 30},
        "consents": {"*": {"marketing": True}},
    }
)
EVENTS = json.dumps([{"type": "salary_received", "payload": {"amount": 25000}}])


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KASKAD_DATABASE_URL", database_url)
    monkeypatch.setenv("KASKAD_LOG_LEVEL", "WARNING")
    return database_url


def _uow(url: str) -> UnitOfWork:
    return UnitOfWork(create_db_engine(url))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_apply_new_unchanged_and_draft(env: str, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["journeys", "apply", str(CREDIT_CARD)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "credit-card-offer: version 1 (new), active"
    result = runner.invoke(cli, ["journeys", "apply", str(CREDIT_CARD)])
    assert result.output.strip() == "credit-card-offer: version 1 (unchanged), active"
    edited = CREDIT_CARD.read_text().replace("by Friday", "by Saturday")
    result = runner.invoke(
        cli, ["journeys", "apply", "--draft", str(_write(tmp_path, "cc.yaml", edited))]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "credit-card-offer: version 2 (new, not live), active"
    [row] = journeys.list_journeys(_uow(env))
    assert (row["version"], row["latest"]) == (1, 2)  # the draft is stored, not live


def test_apply_an_invalid_file_stores_nothing(env: str, tmp_path: Path) -> None:
    broken = _write(tmp_path, "broken.yaml", BROKEN)
    result = runner.invoke(cli, ["journeys", "apply", str(CREDIT_CARD), str(broken)])
    assert result.exit_code == 2
    assert f"{broken}: steps[0].wait (line 5): " in result.output
    assert f"{broken}: steps[1].send.category (line 7): " in result.output
    assert "nothing stored" in result.output
    assert journeys.list_journeys(_uow(env)) == []
    with pytest.raises(NotFound):
        run_views.journey_source(_uow(env), journey_id="broken")


def test_validate_needs_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = tmp_path / "never" / "kaskad.db"
    monkeypatch.setenv("KASKAD_DATABASE_URL", f"sqlite:///{nowhere}")
    result = runner.invoke(cli, ["journeys", "validate", str(CREDIT_CARD)])
    assert result.exit_code == 0, result.output
    assert "ok (credit-card-offer: 6 steps, event trigger)" in result.output
    broken = _write(tmp_path, "broken.yaml", BROKEN)
    result = runner.invoke(cli, ["journeys", "validate", str(CREDIT_CARD), str(broken)])
    assert result.exit_code == 2
    assert f"{broken}: steps[0].wait (line 5): " in result.output
    assert not nowhere.parent.exists()


def test_list_show_and_status(env: str) -> None:
    assert "no journeys yet" in runner.invoke(cli, ["journeys", "list"]).output
    runner.invoke(cli, ["journeys", "apply", "--draft", str(CREDIT_CARD)])
    result = runner.invoke(cli, ["journeys", "list"])
    assert result.exit_code == 0
    assert "credit-card-offer" in result.output
    assert "draft" in result.output
    result = runner.invoke(cli, ["journeys", "publish", "credit-card-offer"])
    assert result.output.strip() == "credit-card-offer: active, live version 1"
    result = runner.invoke(cli, ["journeys", "pause", "credit-card-offer"])
    assert result.output.strip() == "credit-card-offer: paused, live version 1"
    result = runner.invoke(cli, ["journeys", "show", "credit-card-offer"])
    assert result.exit_code == 0, result.output
    assert "paused, live version 1, latest 1" in result.output
    assert "version 1 (live)" in result.output
    for step in ("email_offer", "viber_offer", "next_morning", "sms_deadline"):
        assert step in result.output
    result = runner.invoke(cli, ["journeys", "show", "credit-card-offer", "--source"])
    assert result.output == CREDIT_CARD.read_text()
    result = runner.invoke(cli, ["journeys", "show", "nope"])
    assert result.exit_code == 1
    assert "no journey 'nope'" in result.output
    assert runner.invoke(cli, ["journeys", "archive", "nope"]).exit_code == 1


def test_simulate_prints_a_timeline_in_both_zones(env: str) -> None:
    result = runner.invoke(
        cli,
        [
            "journeys",
            "simulate",
            str(CREDIT_CARD),
            "--contact",
            CONTACT,
            "--events",
            EVENTS,
            "--outcomes",
            '[{"channel": "viber", "outcome": "seen"}]',
            "--horizon",
            "5d",
            "--start",
            "2026-03-02T12:00Z",
        ],
    )
    assert result.exit_code == 0, result.output
    sms = [line for line in result.output.splitlines() if "sms message" in line]
    assert len(sms) == 1
    assert "Thu 2026-03-05 10:00" in sms[0]
    assert "2026-03-05 08:00" in sms[0]
    assert "completed" in result.output.splitlines()[-1]
    # The simulation never touched the configured database.
    assert journeys.list_journeys(_uow(env)) == []


def test_simulate_json_with_outcomes_from_a_file(env: str, tmp_path: Path) -> None:
    outcomes = _write(tmp_path, "outcomes.json", '[{"channel": "viber", "outcome": "clicked"}]')
    result = runner.invoke(
        cli,
        [
            "journeys",
            "simulate",
            str(CREDIT_CARD),
            "--contact",
            CONTACT,
            "--events",
            EVENTS,
            "--outcomes",
            f"@{outcomes}",
            "--horizon",
            "5d",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    # The contact has no e-mail address: the cascade says so, and only the Viber goes out.
    assert [i["channel"] for i in body["timeline"] if i["kind"] == "message"] == ["viber"]
    skips = [i for i in body["timeline"] if i["kind"] == "decision" and i["name"] == "skip"]
    assert [(i["step"], i["text"]) for i in skips] == [
        ("email_offer", "email skipped: contact has no email address")
    ]
    assert body["runs"][0]["status"] == "exited"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--horizon", "soon"], "horizon: 'soon' is not a duration"),
        (["--horizon", "400d"], "horizon: a simulation looks at most 366d ahead"),
        (["--events", "[{not json"], "--events: not valid JSON"),
        (["--outcomes", '[{"channel": "pigeon", "outcome": "seen"}]'], "outcomes[0].channel"),
        (["--outcomes", "@/nonexistent/outcomes.json"], "--outcomes: cannot read"),
        (["--events", '[{"type": "x", "at": "+60d"}]'], "events[0].at"),
        (["--start", "yesterday"], "--start: 'yesterday' is not an ISO time"),
    ],
)
def test_simulate_refuses_bad_input(options: list[str], message: str) -> None:
    result = runner.invoke(
        cli,
        [
            "journeys",
            "simulate",
            str(CREDIT_CARD),
            "--contact",
            CONTACT,
            "--events",
            EVENTS,
            *options,
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_simulate_an_invalid_journey_lists_its_problems(tmp_path: Path) -> None:
    broken = _write(tmp_path, "broken.yaml", BROKEN)
    result = runner.invoke(cli, ["journeys", "simulate", str(broken)])
    assert result.exit_code == 2
    assert f"{broken}: steps[0].wait (line 5): " in result.output
