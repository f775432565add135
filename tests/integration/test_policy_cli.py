"""`kaskad policy …` and `kaskad suppressions …` on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kaskad.adapters.storage.database import create_db_engine
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.engine.clock import SystemClock
from kaskad.interfaces.cli.main import cli
from kaskad.services import contacts, policy
from kaskad.services.contacts import ContactPatch

runner = CliRunner()
GOOD = "caps:\n  marketing: 1/day\nquiet_hours: {marketing: never}\n"
BAD = "caps:\n  marketing: 1/dya\nquiet_hours:\n  security: '22:00-07:00'\n"
OFFER = json.dumps(
    {"category": "marketing", "cascade": [{"channel": "sms", "content": {"text": "Offer"}}]}
)


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("KASKAD_DATABASE_URL", database_url)
    monkeypatch.setenv("KASKAD_LOG_LEVEL", "WARNING")
    policy.forget_all()
    return database_url


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def _uow(url: str) -> UnitOfWork:
    return UnitOfWork(create_db_engine(url))


def test_validate_names_every_problem_with_its_line(tmp_path: Path) -> None:
    assert runner.invoke(cli, ["policy", "validate", str(_write(tmp_path, GOOD))]).exit_code == 0
    result = runner.invoke(cli, ["policy", "validate", str(_write(tmp_path, BAD))])
    assert result.exit_code == 2
    assert "policy.yaml: caps.marketing (line 2):" in result.output
    assert "quiet_hours.security (line 4): security messages are never held back" in (result.output)


def test_apply_show_explain_and_suppressions(env: str, tmp_path: Path) -> None:
    assert "no policy applied" in runner.invoke(cli, ["policy", "show"]).output
    bad = runner.invoke(cli, ["policy", "apply", str(_write(tmp_path, BAD))])
    assert bad.exit_code == 2
    assert policy.show(_uow(env))["version"] == 0  # nothing applied
    applied = runner.invoke(cli, ["policy", "apply", str(_write(tmp_path, GOOD))])
    assert applied.exit_code == 0, applied.output
    assert "policy: version 1 (new)" in applied.output
    assert (
        "version 1 (unchanged)"
        in runner.invoke(cli, ["policy", "apply", str(tmp_path / "policy.yaml")]).output
    )
    assert GOOD.strip() in runner.invoke(cli, ["policy", "show"]).output

    patch = ContactPatch(
        external_id="c1", phone="+380501234567", consents={"*": {"marketing": True}}
    )
    contacts.upsert_contacts(
        _uow(env), patches=[patch], default_region=None, now=SystemClock().now()
    )
    first = runner.invoke(cli, ["policy", "explain", "--contact", "c1", "--notification", OFFER])
    assert first.exit_code == 0, first.output
    assert "=> send: within policy" in first.output
    assert "marketing cap 1/day: 0 of 1 used" in first.output

    added = runner.invoke(cli, ["suppressions", "add", "+380501234567", "--reason", "complaint"])
    assert added.output.strip() == "added"
    blocked = runner.invoke(cli, ["policy", "explain", "--contact", "c1", "--notification", OFFER])
    assert blocked.exit_code == 1
    assert "sms skipped: the address is on the suppression list (complaint)" in blocked.output
    assert runner.invoke(cli, ["suppressions", "remove", "+380501234567"]).output.strip() == (
        "removed"
    )
    assert runner.invoke(cli, ["suppressions", "remove", "+380501234567"]).exit_code == 1

    unknown = runner.invoke(
        cli, ["policy", "explain", "--contact", "nobody", "--notification", OFFER]
    )
    assert unknown.exit_code == 2
    assert "no contact with external id 'nobody'" in unknown.output
    broken = runner.invoke(cli, ["policy", "explain", "--contact", "c1", "--notification", "{"])
    assert broken.exit_code == 2
    assert "--notification: not JSON" in broken.output
    calendar = runner.invoke(cli, ["policy", "calendar", "c1"])
    assert json.loads(calendar.output)["timezone"] == "Europe/Kyiv"
