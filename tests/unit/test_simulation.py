"""The journey simulator: the example journeys on a throwaway database and a virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kaskad.interfaces.simulation import (
    MAX_HORIZON,
    Simulation,
    content_text,
    event_time,
    parse_horizon,
    simulate,
)
from kaskad.services.errors import Invalid

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
CREDIT_CARD = (EXAMPLES / "credit-card-offer.yaml").read_text()
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, 14:00 in Kyiv
KYIV = ZoneInfo("Europe/Kyiv")
ANNA: dict[str, Any] = {
    "external_id": "anna",
    "phone": "+380501234567",
    "email": "anna@bank.example",
    "attributes": {"age": 30},
    "consents": {"*": {"marketing": True}},
}
SALARY = [{"type": "salary_received", "payload": {"amount": 25000}}]


def offer(viber: str, **overrides: Any) -> Simulation:
    values: dict[str, Any] = {
        "contact": ANNA,
        "events": SALARY,
        "outcomes": [{"channel": "viber", "outcome": viber}],
        "horizon": timedelta(days=5),
        "start": START,
    }
    values.update(overrides)
    return simulate(CREDIT_CARD, **values)


def test_seen_but_not_clicked_ends_with_an_sms_next_morning_at_ten() -> None:
    result = offer("seen")
    assert (result.journey, result.contact, result.timezone) == (
        "credit-card-offer",
        "anna",
        "Europe/Kyiv",
    )
    messages = result.messages()
    assert [(m.channel, m.name) for m in messages] == [
        ("email", "delivered"),
        ("viber", "seen"),
        ("sms", "delivered"),
    ]
    sms = messages[-1]
    # Viber seen on Wednesday afternoon; the SMS goes on Thursday at 10:00 on Anna's clock.
    assert sms.at.astimezone(KYIV).replace(tzinfo=None) == datetime(2026, 3, 5, 10, 0)
    assert sms.step == "sms_deadline"
    assert sms.text == "Apply for your card by Friday: https://bank.example/card"
    assert "seen" in messages[1].statuses
    assert max(item.at for item in result.timeline) == sms.at  # nothing happens after it
    assert [(run.status, run.ended_at) for run in result.runs] == [("completed", sms.at)]


def test_clicked_gets_no_sms() -> None:
    result = offer("clicked")
    assert [m.channel for m in result.messages()] == ["email", "viber"]
    [run] = result.runs
    assert run.status == "exited"
    branch = [i for i in result.timeline if i.kind == "journey" and i.name == "branch"]
    assert "steps.viber_offer.clicked" in branch[0].text


def test_the_timeline_is_in_time_order_with_the_event_first() -> None:
    result = offer("seen")
    times = [item.at for item in result.timeline]
    assert times == sorted(times)
    first, entered = result.timeline[:2]
    assert (first.kind, first.name, first.at) == ("event", "salary_received", START)
    assert (entered.kind, entered.name) == ("journey", "enter")
    send = next(i for i in result.timeline if i.kind == "journey" and i.step == "email_offer")
    after_send = result.timeline[result.timeline.index(send) + 1]
    assert (after_send.kind, after_send.channel) == ("message", "email")


def test_events_at_relative_times_reach_the_goal() -> None:
    events = [
        {"type": "card_issued", "payload": {"product": "credit_card"}, "at": "+1d"},
        *SALARY,  # given out of order: fed by time
    ]
    result = offer("seen", events=events)
    assert [m.channel for m in result.messages()] == ["email"]
    [run] = result.runs
    assert (run.status, run.ended_at) == ("converted", START + timedelta(days=1))
    assert (run.ended_reason or "").startswith("goal reached: card_issued event")


def test_a_small_salary_starts_no_run() -> None:
    result = offer("seen", events=[{"type": "salary_received", "payload": {"amount": 100}}])
    assert result.runs == ()
    assert [item.kind for item in result.timeline] == ["event"]


def test_missing_consent_shows_the_cascade_decisions() -> None:
    contact = ANNA | {"consents": {}}
    result = offer("seen", contact=contact)
    assert result.messages() == []
    reasons = [i.text for i in result.timeline if i.kind == "decision"]
    assert "email skipped: no marketing consent on email" in reasons


def test_an_api_journey_is_entered_at_the_start_with_the_data() -> None:
    source = """id: vip
name: VIP welcome
trigger: {api: true}
steps:
  - branch:
      - when: payload.tier == "gold"
        goto: gold
      - else: exit
  - id: gold
    send:
      category: service
      cascade:
        - channel: sms
          content: {text: Welcome to gold}
"""
    contact = {"phone": "+380501234567"}
    gold = simulate(
        source,
        contact=contact,
        events=[],
        horizon=timedelta(hours=1),
        start=START,
        data={"tier": "gold"},
    )
    assert [m.text for m in gold.messages()] == ["Welcome to gold"]
    assert gold.runs[0].entered_at == START
    plain = simulate(source, contact=contact, events=[], horizon=timedelta(hours=1), start=START)
    assert plain.messages() == []
    assert plain.runs[0].status == "exited"


def test_a_date_trigger_fires_on_the_contacts_clock() -> None:
    source = (EXAMPLES / "tariff-change.yaml").read_text()
    contact = {
        "phone": "+380501234567",
        "email": "anna@bank.example",
        "attributes": {"tariff": "basic", "new_tariff": "plus", "tariff_change_date": "2026-03-10"},
        "consents": {"*": {"service": True}},
    }
    result = simulate(source, contact=contact, events=[], horizon=timedelta(days=10), start=START)
    assert [run.status for run in result.runs] == ["completed"]
    email, sms = result.messages()
    # 3 days before the change at 10:00, and the day before at 18:00, in Kyiv.
    assert email.at.astimezone(KYIV).replace(tzinfo=None) == datetime(2026, 3, 7, 10, 0)
    assert sms.at.astimezone(KYIV).replace(tzinfo=None) == datetime(2026, 3, 9, 18, 0)


def test_a_segment_trigger_sees_the_contact_join() -> None:
    source = """id: gold
name: Gold members
trigger:
  segment: contact.tier == "gold"
steps:
  - send:
      category: service
      cascade:
        - channel: sms
          content: {text: Welcome to gold}
"""
    gold = {"phone": "+380501234567", "attributes": {"tier": "gold"}}
    result = simulate(source, contact=gold, events=[], horizon=timedelta(hours=1), start=START)
    assert [(m.channel, m.at) for m in result.messages()] == [("sms", START)]
    silver = gold | {"attributes": {"tier": "silver"}}
    assert simulate(source, contact=silver, events=[], horizon=timedelta(hours=1)).runs == ()


def test_the_real_database_and_settings_are_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real" / "kaskad.db"
    monkeypatch.setenv("KASKAD_DATABASE_URL", f"sqlite:///{real}")
    monkeypatch.setenv("KASKAD_MODE", "production")  # would refuse to start without a secret
    monkeypatch.setenv("KASKAD_SANDBOX_ENABLED", "false")
    result = offer("seen")
    assert len(result.messages()) == 3
    assert not real.parent.exists()


def test_the_default_start_is_now_to_the_minute() -> None:
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    result = simulate(CREDIT_CARD, contact=ANNA, events=[], horizon=timedelta(hours=1))
    assert result.start.second == 0
    assert result.start.microsecond == 0
    assert before <= result.start <= datetime.now(UTC)
    assert result.end == result.start + timedelta(hours=1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"horizon": timedelta(0)}, "horizon"),
        ({"horizon": MAX_HORIZON + timedelta(days=1)}, "horizon"),
        ({"start": datetime(2026, 3, 2, 12, 0)}, "start"),
        ({"contact": {"phone_number": "+380501234567"}}, "contact.phone_number"),
        ({"events": [{"payload": {}}]}, "events[0].type"),
        ({"events": [{"type": "salary_received", "at": "+6d"}]}, "events[0].at"),
        ({"events": [{"type": "salary_received", "at": "2026-03-01T00:00Z"}]}, "events[0].at"),
        ({"events": [{"type": "salary_received", "at": "+soon"}]}, "events[0].at"),
        ({"events": {"type": "salary_received"}}, "events"),
        ({"outcomes": [{"channel": "pigeon", "outcome": "seen"}]}, "outcomes[0].channel"),
        ({"outcomes": [{"channel": "viber", "outcome": "adored"}]}, "outcomes[0].outcome"),
        ({"contact": {"email": "a@b.example"}}, "outcomes[0].address"),
    ],
)
def test_bad_input_is_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        offer("seen", **overrides)
    assert caught.value.code == "invalid_simulation"
    assert caught.value.details[0]["field"] == field
    assert caught.value.message.startswith(field + ": ")


def test_a_bad_contact_is_refused_like_put_contacts() -> None:
    with pytest.raises(Invalid) as caught:
        offer("seen", contact={"phone": "12"})
    assert caught.value.code == "invalid_phone"
    assert caught.value.details[0]["field"] == "contact.phone"


def test_an_invalid_journey_is_refused_with_its_problems() -> None:
    with pytest.raises(Invalid) as caught:
        simulate(CREDIT_CARD.replace("wait: 2d", "wait: 2x"), contact=ANNA, events=[])
    assert caught.value.code == "invalid_journey"
    assert caught.value.details[0]["path"] == "steps[1].wait"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("366d", MAX_HORIZON),
    ],
)
def test_parse_horizon(text: str, expected: timedelta) -> None:
    assert parse_horizon(text) == expected


@pytest.mark.parametrize("text", ["soon", "0", "-1d", "367d"])
def test_parse_horizon_refuses(text: str) -> None:
    with pytest.raises(Invalid, match="horizon"):
        parse_horizon(text)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (None, START),
        ("", START),
        ("+90m", START + timedelta(minutes=90)),
        ("+1d2h", START + timedelta(days=1, hours=2)),
        ("2026-03-03T09:30:00", datetime(2026, 3, 3, 9, 30, tzinfo=UTC)),
        ("2026-03-03T09:30:00+02:00", datetime(2026, 3, 3, 7, 30, tzinfo=UTC)),
    ],
)
def test_event_time(at: str | None, expected: datetime) -> None:
    moment = event_time(at, START)
    assert moment == expected
    assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ({"text": "Paid"}, "Paid"),
        ({"subject": "Card", "html": "<p>Up to <b>100</b></p>"}, "Card — Up to 100"),
        ({"title": "New", "text": "Hello"}, "New — Hello"),
        ({"template": "x"}, '{"template": "x"}'),
    ],
)
def test_content_text(content: dict[str, Any], text: str) -> None:
    assert content_text(content) == text


def test_a_simulation_stays_out_of_the_process_metrics() -> None:
    from kaskad.adapters.metrics import REGISTRY

    def counted() -> dict[str, float]:
        names = ("kaskad_runs_entered_total", "kaskad_decisions_total", "kaskad_messages_total")
        return {
            sample.name + str(sorted(sample.labels.items())): sample.value
            for metric in REGISTRY.collect()
            for sample in metric.samples
            if sample.name in names
        }

    before = counted()
    assert offer("seen").messages()  # the simulation did send
    assert counted() == before
