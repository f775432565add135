"""Onboarding from the seeds, end to end on the virtual clock, on both databases: day 1 a
welcome email, day 2 a Viber message with a video (push if Viber does not arrive), day 5 an
SMS tip at 11:00 on the contact's clock, whatever the hour the account was opened."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kaskad.bootstrap import App
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from tests.integration.journey_helpers import (
    PHONE,
    PUSH_TOKEN,
    add_contact,
    apply,
    channels,
    example,
    history,
    local,
    outcome,
    post,
    run_for,
    runs_of,
    sent_to,
    the_run,
    times,
)

WEEK = timedelta(days=7)


@pytest.fixture
def onboarding(app: App, clock: VirtualClock) -> App:
    clock.set(local(2026, 3, 2, 14))  # Monday 14:00 in Kyiv
    apply(app, clock, example("onboarding"))
    # Service messages need no marketing consent.
    add_contact(app, clock, push_tokens=[PUSH_TOKEN], marketing=False)
    return app


@pytest.mark.parametrize(
    ("hour", "minute"),
    [(9, 0), (14, 0), (23, 30)],
    ids=["opened-at-0900", "opened-at-1400", "opened-at-2330"],
)
def test_day_one_email_day_two_video_day_five_tip_at_eleven(
    onboarding: App, clock: VirtualClock, hour: int, minute: int
) -> None:
    opened = local(2026, 3, 2, hour, minute)
    clock.set(opened)
    post(onboarding, clock, "account_opened")
    run_for(onboarding, clock, WEEK)
    assert times(onboarding) == [
        ("email", opened),
        ("viber", opened + timedelta(days=1)),
        # Day 5 is Friday 6 March; 11:00 in Kyiv is 09:00 UTC.
        ("sms", local(2026, 3, 6, 11)),
    ]
    assert [m.status for m in sent_to(onboarding)] == ["delivered"] * 3
    assert the_run(onboarding)["status"] == "completed"


def test_the_tip_follows_the_contacts_own_clock(onboarding: App, clock: VirtualClock) -> None:
    add_contact(onboarding, clock, "c-ny", phone="+12025550123", marketing=False)
    opened = clock.now()  # 14:00 in Kyiv, 07:00 in New York
    post(onboarding, clock, "account_opened", "c-ny")
    run_for(onboarding, clock, WEEK)
    new_york = local(2026, 3, 6, 11, zone=ZoneInfo("America/New_York"))
    assert times(onboarding, "c-ny") == [
        ("email", opened),
        ("viber", opened + timedelta(days=1)),
        ("sms", new_york),
    ]
    assert new_york == datetime.fromisoformat("2026-03-06T16:00:00+00:00")


def test_the_video_falls_back_to_push_when_viber_does_not_arrive(
    onboarding: App, clock: VirtualClock
) -> None:
    outcome(onboarding, clock, Channel.VIBER, PHONE, "undelivered")
    opened = clock.now()
    post(onboarding, clock, "account_opened")
    run_for(onboarding, clock, WEEK)
    day_two = opened + timedelta(days=1)
    assert times(onboarding) == [
        ("email", opened),
        ("viber", day_two),
        ("push", day_two + timedelta(hours=2)),  # the Viber step's 2h timeout
        ("sms", local(2026, 3, 6, 11)),
    ]
    viber = sent_to(onboarding)[1]
    assert (viber.status, viber.superseded) == ("sent", True)
    assert sent_to(onboarding)[2].status == "delivered"


def test_a_contact_without_viber_or_push_still_gets_the_tip(
    onboarding: App, clock: VirtualClock
) -> None:
    add_contact(onboarding, clock, "c-2", phone="+380501112233", email=None, marketing=False)
    outcome(onboarding, clock, Channel.VIBER, "+380501112233", "undeliverable")
    post(onboarding, clock, "account_opened", "c-2")
    run_for(onboarding, clock, WEEK)
    # No email address: the welcome is skipped; Viber fails and there is no push token.
    assert channels(onboarding, "c-2") == ["viber", "sms"]
    run = the_run(onboarding, "c-2")
    assert run["status"] == "completed"
    assert run["outcomes"]["welcome"]["notification"]
    assert ("tip", "send", "service notification: sms") in history(onboarding, run["id"])


def test_closing_the_account_ends_the_run_before_the_tip(
    onboarding: App, clock: VirtualClock
) -> None:
    post(onboarding, clock, "account_opened")
    run_for(onboarding, clock, timedelta(days=3))
    post(onboarding, clock, "account_closed")
    run_for(onboarding, clock, WEEK)
    assert channels(onboarding) == ["email", "viber"]
    run = the_run(onboarding)
    assert (run["status"], run["ended_reason"]) == ("exited", "exit on account_closed event")


def test_a_second_account_opened_does_not_onboard_again(
    onboarding: App, clock: VirtualClock
) -> None:
    post(onboarding, clock, "account_opened")
    run_for(onboarding, clock, timedelta(days=10))
    post(onboarding, clock, "account_opened")
    run_for(onboarding, clock, WEEK)
    assert len(runs_of(onboarding)) == 1
    assert channels(onboarding) == ["email", "viber", "sms"]
