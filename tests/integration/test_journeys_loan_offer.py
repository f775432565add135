"""The loan offer from the seeds, end to end on the virtual clock, on both databases, with its
relevance rules: no offer to someone who repaid a loan in the last 30 days (a branch), and a
loan repaid while the run waits ends it (exit_on); half on Viber, half by email.

The steps are tested through API-triggered copies of the example (with the split weighted
100/0 where a test needs one variant); the Tuesday schedule is tested as documented."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from kaskad.bootstrap import App
from kaskad.engine.clock import VirtualClock
from tests.integration.journey_helpers import (
    add_contact,
    api_triggered,
    apply,
    channels,
    edited,
    enter,
    example,
    history,
    local,
    post,
    run_for,
    runs_of,
    set_attributes,
    the_run,
    times,
)

START = local(2026, 3, 3, 11)  # Tuesday 11:00 in Kyiv
DAY = timedelta(days=1)
ELIGIBLE = {"age": 30, "credit_score": 750}
VIBER_ONLY = ("{variant: viber, weight: 50,", "{variant: viber, weight: 100,")
NO_VIBER = ("{variant: viber, weight: 50,", "{variant: viber, weight: 0,")
EMAIL_ONLY = ("{variant: email, weight: 50,", "{variant: email, weight: 100,")
NO_EMAIL = ("{variant: email, weight: 50,", "{variant: email, weight: 0,")


def loan_offer(app: App, clock: VirtualClock, *changes: tuple[str, str]) -> App:
    clock.set(START)
    apply(app, clock, api_triggered(edited(example("loan-offer"), *changes)))
    add_contact(app, clock, **ELIGIBLE)
    return app


@pytest.fixture
def on_viber(app: App, clock: VirtualClock) -> App:
    return loan_offer(app, clock, VIBER_ONLY, NO_EMAIL)


def test_the_viber_variant_gets_the_offer_and_the_sms_five_days_later(
    on_viber: App, clock: VirtualClock
) -> None:
    enter(on_viber, clock, "loan-offer")
    run_for(on_viber, clock, 10 * DAY)
    assert times(on_viber) == [("viber", START), ("sms", START + 5 * DAY)]
    run = the_run(on_viber)
    assert (run["status"], run["variant"]) == ("completed", "viber")


def test_the_email_variant_gets_the_offer_by_email(app: App, clock: VirtualClock) -> None:
    loan_offer(app, clock, NO_VIBER, EMAIL_ONLY)
    enter(app, clock, "loan-offer")
    run_for(app, clock, 10 * DAY)
    assert times(app) == [("email", START), ("sms", START + 5 * DAY)]
    assert the_run(app)["variant"] == "email"


def test_the_split_is_recorded_and_sticky_per_contact(app: App, clock: VirtualClock) -> None:
    loan_offer(app, clock)  # 50/50, as in the example
    enter(app, clock, "loan-offer")
    run_for(app, clock, 100 * DAY)  # past the 90-day re-entry window
    enter(app, clock, "loan-offer")
    run_for(app, clock, 10 * DAY)
    first, second = runs_of(app)
    assert first["variant"] in {"viber", "email"}
    assert second["variant"] == first["variant"]
    assert channels(app) == [first["variant"], "sms", first["variant"], "sms"]


def test_a_loan_repaid_in_the_last_30_days_gets_no_offer(
    on_viber: App, clock: VirtualClock
) -> None:
    set_attributes(on_viber, clock, "c-1", loan_repaid_at="2026-02-21")  # 10 days ago
    enter(on_viber, clock, "loan-offer")
    run_for(on_viber, clock, 10 * DAY)
    assert channels(on_viber) == []
    run = the_run(on_viber)
    assert (run["status"], run["ended_reason"]) == (
        "exited",
        "exit: loan repaid less than 30 days ago",
    )
    assert run["variant"] is None  # stopped before the split


def test_a_loan_repaid_longer_ago_gets_the_offer(on_viber: App, clock: VirtualClock) -> None:
    set_attributes(on_viber, clock, "c-1", loan_repaid_at="2026-01-20")  # 42 days ago
    enter(on_viber, clock, "loan-offer")
    run_for(on_viber, clock, 10 * DAY)
    assert channels(on_viber) == ["viber", "sms"]


def test_a_loan_repaid_while_the_run_waits_ends_it(on_viber: App, clock: VirtualClock) -> None:
    enter(on_viber, clock, "loan-offer")
    run_for(on_viber, clock, 2 * DAY)
    post(on_viber, clock, "loan_repaid", amount=20_000)
    run_for(on_viber, clock, 10 * DAY)
    assert channels(on_viber) == ["viber"]  # no follow-up SMS
    run = the_run(on_viber)
    assert (run["status"], run["ended_reason"]) == ("exited", "exit on loan_repaid event")


def test_a_score_that_fell_since_the_offer_stops_the_follow_up(
    on_viber: App, clock: VirtualClock
) -> None:
    enter(on_viber, clock, "loan-offer")
    run_for(on_viber, clock, 2 * DAY)
    set_attributes(on_viber, clock, "c-1", credit_score=640)
    run_for(on_viber, clock, 10 * DAY)
    assert channels(on_viber) == ["viber"]
    run = the_run(on_viber)
    assert run["status"] == "exited"
    assert any("contact.credit_score < 700" in text for _, _, text in history(on_viber, run["id"]))


def test_a_loan_issued_converts_the_run(on_viber: App, clock: VirtualClock) -> None:
    enter(on_viber, clock, "loan-offer")
    run_for(on_viber, clock, DAY)
    post(on_viber, clock, "loan_issued", amount=50_000)
    run_for(on_viber, clock, 10 * DAY)
    assert channels(on_viber) == ["viber"]
    run = the_run(on_viber)
    assert run["status"] == "converted"
    assert run["ended_reason"].startswith("goal reached: loan_issued event")


# -- the Tuesday schedule itself --------------------------------------------------------------
# Firings are planned per time zone of the contacts stored when the journey goes live, so
# the contacts are written first.


def test_the_schedule_offers_on_tuesday_at_eleven_to_eligible_contacts(
    app: App, clock: VirtualClock
) -> None:
    clock.set(local(2026, 3, 2, 0))  # Monday
    add_contact(app, clock, **ELIGIBLE)
    add_contact(app, clock, "c-young", phone="+380501112233", age=19, credit_score=800)
    add_contact(app, clock, "c-low", phone="+380501112244", age=40, credit_score=650)
    repaid = ELIGIBLE | {"loan_repaid_at": "2026-02-25"}
    add_contact(app, clock, "c-repaid", phone="+380501112255", **repaid)
    add_contact(app, clock, "c-ny", phone="+12025550123", **ELIGIBLE)
    apply(app, clock, example("loan-offer"))
    run_for(app, clock, 2 * DAY)
    assert times(app) in ([("viber", START)], [("email", START)])
    new_york = local(2026, 3, 3, 11, zone=ZoneInfo("America/New_York"))  # 16:00 UTC
    assert times(app, "c-ny") in ([("viber", new_york)], [("email", new_york)])
    assert runs_of(app, "c-young") == runs_of(app, "c-low") == []
    # The relevance branch: entered by the schedule, out before any offer.
    assert channels(app, "c-repaid") == []
    assert the_run(app, "c-repaid")["ended_reason"] == "exit: loan repaid less than 30 days ago"


def test_a_loan_repaid_event_between_tuesdays_ends_the_run_before_the_reminder(
    app: App, clock: VirtualClock
) -> None:
    clock.set(local(2026, 3, 2, 0))
    add_contact(app, clock, **ELIGIBLE)
    apply(app, clock, edited(example("loan-offer"), VIBER_ONLY, NO_EMAIL))
    run_for(app, clock, 3 * DAY)  # the Tuesday offer is out
    post(app, clock, "loan_repaid")
    run_for(app, clock, 14 * DAY)  # two more Tuesdays: re-entry only every 90 days
    assert times(app) == [("viber", START)]
    run = the_run(app)
    assert (run["trigger"]["type"], run["ended_reason"]) == (
        "schedule",
        "exit on loan_repaid event",
    )
