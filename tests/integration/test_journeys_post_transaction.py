"""After a payment, from the seeds, end to end on the virtual clock, on both databases: the
confirmation at once (push, SMS if the push does not arrive in 30 s), a day later the autopay
offer, a week after that a reminder; autopay already on or set up ends it early."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kaskad.bootstrap import App
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from tests.integration.journey_helpers import (
    PUSH_TOKEN,
    add_contact,
    apply,
    channels,
    edited,
    example,
    local,
    outcome,
    post,
    run_for,
    runs_of,
    sent_to,
    the_run,
    times,
)

START = local(2026, 3, 2, 14)  # Monday 14:00 in Kyiv
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
UTILITY = {"kind": "utility", "amount": 1250}


@pytest.fixture
def payments(app: App, clock: VirtualClock) -> App:
    clock.set(START)
    apply(app, clock, example("post-transaction"))
    add_contact(app, clock, push_tokens=[PUSH_TOKEN])
    return app


def test_confirmation_now_offer_a_day_later_reminder_a_week_after(
    payments: App, clock: VirtualClock
) -> None:
    post(payments, clock, "payment", **UTILITY)
    run_for(payments, clock, timedelta(days=10))
    assert times(payments) == [
        ("push", START),
        ("viber", START + DAY),
        ("sms", START + DAY + WEEK),
    ]
    push, offer, reminder = sent_to(payments)
    assert push.content["title"] == "Payment done"
    assert offer.content["button"]["url"] == "https://bank.example/autopay"
    assert "Autopay" in reminder.content["text"]
    assert the_run(payments)["status"] == "completed"


def test_a_push_not_delivered_in_30_seconds_becomes_an_sms(
    payments: App, clock: VirtualClock
) -> None:
    outcome(payments, clock, Channel.PUSH, PUSH_TOKEN, "undelivered")
    post(payments, clock, "payment", **UTILITY)
    run_for(payments, clock, timedelta(minutes=5))
    assert times(payments) == [("push", START), ("sms", START + timedelta(seconds=30))]
    assert sent_to(payments)[1].status == "delivered"


def test_no_push_token_confirms_by_sms_at_once(payments: App, clock: VirtualClock) -> None:
    add_contact(payments, clock, "c-2", phone="+380501112233")
    post(payments, clock, "payment", "c-2", **UTILITY)
    run_for(payments, clock, timedelta(minutes=5))
    assert times(payments, "c-2") == [("sms", START)]


def test_a_viber_offer_not_delivered_within_an_hour_goes_by_email(
    payments: App, clock: VirtualClock
) -> None:
    outcome(payments, clock, Channel.VIBER, "+380501234567", "undelivered")
    post(payments, clock, "payment", **UTILITY)
    run_for(payments, clock, 2 * DAY)
    assert times(payments) == [
        ("push", START),
        ("viber", START + DAY),
        ("email", START + DAY + timedelta(hours=1)),
    ]


def test_a_second_payment_during_the_run_starts_no_second_run(
    payments: App, clock: VirtualClock
) -> None:
    post(payments, clock, "payment", **UTILITY)
    run_for(payments, clock, timedelta(hours=2))
    post(payments, clock, "payment", kind="utility", amount=300)
    run_for(payments, clock, timedelta(days=10))
    assert len(runs_of(payments)) == 1
    assert channels(payments) == ["push", "viber", "sms"]


def test_max_active_runs_alone_holds_back_a_second_run(app: App, clock: VirtualClock) -> None:
    """With re-entry allowed any time, one active run per contact is still the limit; once it
    has finished, the next payment starts a new one."""
    clock.set(START)
    apply(app, clock, edited(example("post-transaction"), ("reentry: 30d", "reentry: always")))
    add_contact(app, clock, push_tokens=[PUSH_TOKEN])
    post(app, clock, "payment", **UTILITY)
    run_for(app, clock, DAY + timedelta(hours=1))
    post(app, clock, "payment", **UTILITY)
    assert len(runs_of(app)) == 1
    run_for(app, clock, 2 * WEEK)
    post(app, clock, "payment", **UTILITY)
    run_for(app, clock, timedelta(minutes=1))
    first, second = runs_of(app)
    assert (first["status"], second["status"]) == ("completed", "active")
    assert channels(app) == ["push", "viber", "sms", "push"]


def test_reentry_waits_thirty_days_from_the_last_entry(payments: App, clock: VirtualClock) -> None:
    post(payments, clock, "payment", **UTILITY)
    run_for(payments, clock, timedelta(days=20))
    post(payments, clock, "payment", **UTILITY)  # the run has ended, but only 20 days ago
    run_for(payments, clock, timedelta(days=10))
    assert len(runs_of(payments)) == 1
    post(payments, clock, "payment", **UTILITY)  # 30 days after the first entry
    run_for(payments, clock, timedelta(minutes=1))
    assert len(runs_of(payments)) == 2


def test_a_contact_already_on_autopay_gets_only_the_confirmation(
    payments: App, clock: VirtualClock
) -> None:
    add_contact(payments, clock, push_tokens=[PUSH_TOKEN], autopay_enabled=True)
    post(payments, clock, "payment", **UTILITY)
    run_for(payments, clock, timedelta(days=10))
    assert channels(payments) == ["push"]
    run = the_run(payments)
    assert (run["status"], run["ended_reason"]) == ("exited", "exit")


def test_setting_up_autopay_ends_the_run_before_the_reminder(
    payments: App, clock: VirtualClock
) -> None:
    post(payments, clock, "payment", **UTILITY)
    run_for(payments, clock, 2 * DAY)
    post(payments, clock, "autopay_enabled")
    run_for(payments, clock, 2 * WEEK)
    assert channels(payments) == ["push", "viber"]
    run = the_run(payments)
    assert run["status"] == "converted"
    assert run["ended_reason"].startswith("goal reached: autopay_enabled event")


def test_other_payments_start_nothing(payments: App, clock: VirtualClock) -> None:
    post(payments, clock, "payment", kind="card", amount=500)
    post(payments, clock, "payment", kind="utility", amount=0)
    run_for(payments, clock, 2 * DAY)
    assert runs_of(payments) == []
    assert channels(payments) == []


def test_without_marketing_consent_only_the_confirmation_is_sent(
    payments: App, clock: VirtualClock
) -> None:
    add_contact(payments, clock, "c-2", phone="+380501112233", marketing=False)
    post(payments, clock, "payment", "c-2", **UTILITY)
    run_for(payments, clock, timedelta(days=10))
    # The confirmation is transactional; the offer and the reminder are marketing.
    assert channels(payments, "c-2") == ["sms"]
    run = the_run(payments, "c-2")
    assert run["status"] == "completed"
    assert run["outcomes"]["autopay_offer"]["notification"]
