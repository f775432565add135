"""Reactivation from the seeds, end to end on the virtual clock, on both databases: a Viber
offer; no login within three days, an email; still none, an SMS with the personal promo code.

The steps are tested through an API-triggered copy of the example; the weekly schedule that
picks the customers away for 30 days is tested as documented."""

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
    attributes_of,
    channels,
    enter,
    example,
    history,
    local,
    post,
    run_for,
    runs_of,
    sent_to,
    the_run,
    times,
)

START = local(2026, 3, 2, 11)  # Monday 11:00 in Kyiv
DAY = timedelta(days=1)
AWAY = "2026-01-15T09:00:00+00:00"  # last login, 46 days before START
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def reactivation(app: App, clock: VirtualClock) -> App:
    clock.set(START)
    apply(app, clock, api_triggered(example("reactivation")))
    add_contact(app, clock, last_login=AWAY, promo_code="BACK10")
    return app


def test_a_login_after_the_viber_offer_ends_the_run(reactivation: App, clock: VirtualClock) -> None:
    enter(reactivation, clock, "reactivation")
    run_for(reactivation, clock, 2 * DAY)
    post(reactivation, clock, "login")
    run_for(reactivation, clock, 10 * DAY)
    assert times(reactivation) == [("viber", START)]
    run = the_run(reactivation)
    assert (run["status"], run["ended_reason"]) == ("exited", "exit")
    assert run["outcomes"]["first_login"]["received"] is True
    assert ("first_login", "resume", "login event received") in history(reactivation, run["id"])


def test_no_login_in_three_days_brings_the_email(reactivation: App, clock: VirtualClock) -> None:
    enter(reactivation, clock, "reactivation")
    run_for(reactivation, clock, 4 * DAY)
    post(reactivation, clock, "login")  # after the email, before the SMS
    run_for(reactivation, clock, 10 * DAY)
    assert times(reactivation) == [("viber", START), ("email", START + 3 * DAY)]
    run = the_run(reactivation)
    assert run["outcomes"]["first_login"]["timed_out"] is True
    assert run["outcomes"]["second_login"]["received"] is True
    assert run["status"] == "exited"
    assert "reactivation_promo_sent" not in attributes_of(reactivation, "c-1")


def test_no_login_at_all_brings_the_sms_with_the_promo_code(
    reactivation: App, clock: VirtualClock
) -> None:
    enter(reactivation, clock, "reactivation")
    run_for(reactivation, clock, 10 * DAY)
    assert times(reactivation) == [
        ("viber", START),
        ("email", START + 3 * DAY),
        ("sms", START + 6 * DAY),
    ]
    assert "promo code" in sent_to(reactivation)[-1].content["text"]
    assert attributes_of(reactivation, "c-1")["reactivation_promo_sent"] is True
    assert the_run(reactivation)["status"] == "completed"


def test_no_promo_code_means_no_sms(reactivation: App, clock: VirtualClock) -> None:
    add_contact(reactivation, clock, "c-2", phone="+380501112233", last_login=AWAY)
    enter(reactivation, clock, "reactivation", "c-2")
    run_for(reactivation, clock, 10 * DAY)
    assert channels(reactivation, "c-2") == ["viber", "email"]
    assert the_run(reactivation, "c-2")["status"] == "exited"
    assert "reactivation_promo_sent" not in attributes_of(reactivation, "c-2")


def test_a_login_before_the_wait_is_not_the_answer(reactivation: App, clock: VirtualClock) -> None:
    post(reactivation, clock, "login")  # before the run exists: no answer to its wait
    run_for(reactivation, clock, timedelta(minutes=1))
    enter(reactivation, clock, "reactivation")
    run_for(reactivation, clock, 4 * DAY)
    assert channels(reactivation) == ["viber", "email"]


def test_a_payment_converts_the_run(reactivation: App, clock: VirtualClock) -> None:
    enter(reactivation, clock, "reactivation")
    run_for(reactivation, clock, 4 * DAY)
    post(reactivation, clock, "payment", amount=120)
    run_for(reactivation, clock, 10 * DAY)
    assert channels(reactivation) == ["viber", "email"]
    run = the_run(reactivation)
    assert run["status"] == "converted"
    assert run["ended_reason"].startswith("goal reached: payment event")


def test_without_marketing_consent_nothing_is_sent(reactivation: App, clock: VirtualClock) -> None:
    add_contact(reactivation, clock, "c-2", phone="+380501112233", marketing=False, promo_code="X1")
    enter(reactivation, clock, "reactivation", "c-2")
    run_for(reactivation, clock, 10 * DAY)
    assert channels(reactivation, "c-2") == []
    run = the_run(reactivation, "c-2")
    assert run["outcomes"]["viber_offer"]["notification"]
    assert run["status"] == "completed"  # every send step was reached, none could go out


# -- the weekly schedule itself ---------------------------------------------------------------
# Firings are planned per time zone of the contacts stored when the journey goes live, so
# the contacts are written first.


def test_the_schedule_picks_customers_away_for_30_days_on_monday_at_eleven(
    app: App, clock: VirtualClock
) -> None:
    clock.set(local(2026, 3, 3, 0))  # Tuesday
    add_contact(app, clock, last_login=AWAY, promo_code="BACK10")
    add_contact(app, clock, "c-recent", phone="+380501112233", last_login="2026-03-01")
    # Away 30 days only by the passing of time: 24 days now, 30 on the Monday at 11:00.
    add_contact(app, clock, "c-later", phone="+380501112244", last_login="2026-02-07T08:00Z")
    add_contact(app, clock, "c-ny", phone="+12025550123", last_login=AWAY)
    apply(app, clock, example("reactivation"))
    run_for(app, clock, 7 * DAY)
    monday = local(2026, 3, 9, 11)
    assert times(app) == [("viber", monday)]
    assert times(app, "c-later") == [("viber", monday)]
    assert times(app, "c-ny") == [("viber", local(2026, 3, 9, 11, zone=NEW_YORK))]
    assert runs_of(app, "c-recent") == []
    assert the_run(app)["trigger"]["type"] == "schedule"


def test_the_next_monday_brings_no_second_offer(app: App, clock: VirtualClock) -> None:
    clock.set(local(2026, 3, 3, 0))
    add_contact(app, clock, last_login=AWAY, promo_code="BACK10")
    apply(app, clock, example("reactivation"))
    run_for(app, clock, 21 * DAY)  # three Mondays; re-entry at most every 90 days
    assert channels(app) == ["viber", "email", "sms"]
    assert len(runs_of(app)) == 1
