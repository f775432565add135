"""Simulating two-way journeys: the contact's replies and keys pressed on calls, fed in at
their times on a throwaway database, as the sandbox would deliver them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kaskad.interfaces.cli.main import cli
from kaskad.interfaces.simulation import Simulation, simulate
from kaskad.services.errors import Invalid

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
ALERT = (EXAMPLES / "suspicious-operation.yaml").read_text()
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
ANNA: dict[str, Any] = {
    "phone": "+380501234567",
    "email": "anna@bank.example",
    "push_tokens": ["push-token-anna"],
}
OPERATION = [{"type": "suspicious_operation"}]
SURVEY = """
id: csat
name: CSAT
trigger: {api: true}
steps:
  - id: ask
    survey:
      timeout: 1d
      cascade:
        - channel: sms
          content: {text: "Rate your visit, 1 to 5"}
  - branch:
      - when: reply.rating >= 4
        goto: happy
      - else: exit
  - id: happy
    exit: happy
"""


def run(source: str, **kw: Any) -> Simulation:
    kw.setdefault("contact", ANNA)
    kw.setdefault("events", [])
    return simulate(source, start=START, horizon=timedelta(days=2), **kw)


def test_a_key_pressed_on_the_call_ends_the_alert() -> None:
    result = run(
        ALERT,
        events=OPERATION,
        outcomes=[{"channel": "voice", "outcome": "keypress", "digits": "1"}],
    )
    assert [(m.channel, m.name) for m in result.messages()] == [("voice", "clicked")]
    [alert] = result.runs
    assert (alert.status, alert.ended_reason) == ("exited", "exit on keypress event")


def test_nobody_answering_the_alert() -> None:
    result = run(ALERT, events=OPERATION)
    assert [m.channel for m in result.messages()] == ["voice", "push", "sms", "email", "sms"]


def test_a_reply_answers_the_survey() -> None:
    result = run(SURVEY, replies=[{"text": "5 stars", "at": "+1h"}])
    [survey] = result.runs
    assert (survey.status, survey.ended_reason) == ("exited", "exit: happy")
    replies = [(i.name, i.channel, i.text) for i in result.timeline if i.kind == "event"]
    assert replies == [("reply", "sms", "5 stars")]
    resumed = [i.text for i in result.timeline if i.name == "resume"]
    assert resumed == ["rating received: '5 stars'"]


def test_a_low_rating_and_no_rating() -> None:
    assert run(SURVEY, replies=[{"text": "2", "at": "+1h"}]).runs[0].ended_reason == "exit"
    silent = run(SURVEY)
    assert silent.runs[0].ended_reason == "exit"
    assert "no answer to 'ask' before the timeout" in [i.text for i in silent.timeline]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"replies": [{"text": "5", "channel": "fax"}]}, "replies[0].channel"),
        ({"replies": [{"text": ""}]}, "replies[0].text"),
        ({"replies": [{"text": "5", "at": "+3d"}]}, "replies[0].at"),
        ({"replies": [{"text": "5"}], "contact": {"email": "a@b.example"}}, "replies[0].channel"),
        ({"outcomes": [{"channel": "sms", "outcome": "keypress", "digits": "1"}]}, "outcomes[0]"),
        ({"outcomes": [{"channel": "voice", "outcome": "keypress"}]}, "outcomes[0]"),
        ({"outcomes": [{"channel": "voice", "outcome": "seen", "digits": "1"}]}, "outcomes[0]"),
    ],
)
def test_bad_replies_and_keypresses_are_refused(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as info:
        run(SURVEY, **overrides)
    assert info.value.details[0]["field"] == field


def test_the_cli_takes_replies(tmp_path: Path) -> None:
    journey = tmp_path / "csat.yaml"
    journey.write_text(SURVEY)
    result = CliRunner().invoke(
        cli,
        [
            "journeys",
            "simulate",
            str(journey),
            "--contact",
            '{"phone": "+380501234567"}',
            "--replies",
            '[{"text": "4", "at": "+2h"}]',
            "--start",
            "2026-03-02T01:00Z",
            "--horizon",
            "2d",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "reply on sms" in result.output
    assert "exited" in result.output
