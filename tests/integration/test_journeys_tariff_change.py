"""The tariff change from the seeds, end to end on the virtual clock, on both databases:
three days before the contact's tariff_change_date at 10:00 on their clock the terms by
email (Viber if there is no email or it does not arrive), the day before at 18:00 an SMS.

The steps are tested through an API-triggered copy of the example entered at the moment the
date trigger would fire; the date trigger itself is tested as documented."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from kaskad.bootstrap import App
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from tests.integration.journey_helpers import (
    EMAIL,
    add_contact,
    api_triggered,
    apply,
    channels,
    enter,
    example,
    history,
    local,
    outcome,
    run_until,
    runs_of,
    sent_to,
    the_run,
    times,
)

NEW_YORK = ZoneInfo("America/New_York")
CHANGE = {"tariff": "basic", "new_tariff": "plus", "tariff_change_date": "2026-03-31"}
# Kyiv moves to summer time on Sunday 29 March, between the two sends: the terms go at 10:00
# EET (08:00 UTC), the reminder at 18:00 EEST (15:00 UTC).
TERMS_AT = local(2026, 3, 28, 10)
REMINDER_AT = local(2026, 3, 30, 18)
AFTER = local(2026, 4, 2, 12)


@pytest.fixture
def tariff(app: App, clock: VirtualClock) -> App:
    clock.set(local(2026, 3, 25, 12))
    apply(app, clock, api_triggered(example("tariff-change")))
    add_contact(app, clock, marketing=False, **CHANGE)  # service messages: no consent needed
    return app


def test_terms_by_email_then_the_reminder_the_day_before_at_six(
    tariff: App, clock: VirtualClock
) -> None:
    run_until(tariff, clock, TERMS_AT)
    assert enter(tariff, clock, "tariff-change").run_id
    run_until(tariff, clock, AFTER)
    assert times(tariff) == [("email", TERMS_AT), ("sms", REMINDER_AT)]
    assert TERMS_AT.hour == 8
    assert REMINDER_AT.hour == 15
    assert [m.status for m in sent_to(tariff)] == ["delivered", "delivered"]
    assert sent_to(tariff)[0].content["subject"] == "Your tariff changes in 3 days"
    assert the_run(tariff)["status"] == "completed"


def test_no_email_address_means_the_viber_infographic(tariff: App, clock: VirtualClock) -> None:
    add_contact(tariff, clock, "c-2", phone="+380501112233", email=None, marketing=False, **CHANGE)
    run_until(tariff, clock, TERMS_AT)
    enter(tariff, clock, "tariff-change", "c-2")
    run_until(tariff, clock, AFTER)
    assert times(tariff, "c-2") == [("viber", TERMS_AT), ("sms", REMINDER_AT)]
    assert sent_to(tariff, "c-2")[0].content["image_url"].endswith(".png")


def test_an_email_not_delivered_within_an_hour_falls_back_to_viber(
    tariff: App, clock: VirtualClock
) -> None:
    outcome(tariff, clock, Channel.EMAIL, EMAIL, "undelivered")
    run_until(tariff, clock, TERMS_AT)
    enter(tariff, clock, "tariff-change")
    run_until(tariff, clock, AFTER)
    assert times(tariff) == [
        ("email", TERMS_AT),
        ("viber", TERMS_AT + timedelta(hours=1)),
        ("sms", REMINDER_AT),
    ]
    email = sent_to(tariff)[0]
    assert (email.status, email.superseded) == ("sent", True)


def test_the_reminder_is_at_six_on_the_contacts_own_clock(tariff: App, clock: VirtualClock) -> None:
    add_contact(tariff, clock, "c-ny", timezone="America/New_York", marketing=False, **CHANGE)
    terms_at = local(2026, 3, 28, 10, zone=NEW_YORK)
    run_until(tariff, clock, terms_at)
    enter(tariff, clock, "tariff-change", "c-ny")
    run_until(tariff, clock, AFTER)
    reminder_at = local(2026, 3, 30, 18, zone=NEW_YORK)
    assert times(tariff, "c-ny") == [("email", terms_at), ("sms", reminder_at)]
    assert reminder_at.hour == 22  # 18:00 EDT


def test_entered_after_the_reminder_time_sends_the_reminder_at_once(
    tariff: App, clock: VirtualClock
) -> None:
    late = local(2026, 3, 30, 20)
    run_until(tariff, clock, late)
    enter(tariff, clock, "tariff-change")
    run_until(tariff, clock, AFTER)
    assert times(tariff) == [("email", late), ("sms", late)]
    run = the_run(tariff)
    assert run["status"] == "completed"
    assert any("already passed, going on" in text for _, _, text in history(tariff, run["id"]))


def test_without_a_date_the_reminder_is_not_held_back(tariff: App, clock: VirtualClock) -> None:
    add_contact(tariff, clock, "c-3", phone="+380501112244", email="c3@bank.example")
    run_until(tariff, clock, TERMS_AT)
    enter(tariff, clock, "tariff-change", "c-3")
    run_until(tariff, clock, AFTER)
    assert times(tariff, "c-3") == [("email", TERMS_AT), ("sms", TERMS_AT)]
    run = the_run(tariff, "c-3")
    assert any("is not a date" in text for _, _, text in history(tariff, run["id"]))


def test_reentry_30d_lets_a_later_change_notify_again(tariff: App, clock: VirtualClock) -> None:
    run_until(tariff, clock, TERMS_AT)
    enter(tariff, clock, "tariff-change")
    run_until(tariff, clock, TERMS_AT + timedelta(days=10))
    refused = enter(tariff, clock, "tariff-change")
    assert refused.run_id is None
    assert "reentry every 30d" in refused.reason
    run_until(tariff, clock, TERMS_AT + timedelta(days=31))
    assert enter(tariff, clock, "tariff-change").run_id
    assert len(runs_of(tariff)) == 2


# -- the date trigger itself ----------------------------------------------------------------
# Firings are planned per time zone the contacts live in: those stored when the journey goes
# live, and any zone a contact written later brings.


@pytest.fixture
def dated(clock: VirtualClock) -> VirtualClock:
    clock.set(local(2026, 3, 27, 2))
    return clock


def test_the_date_trigger_sends_the_terms_at_ten_three_days_before(
    app: App, dated: VirtualClock
) -> None:
    add_contact(app, dated, marketing=False, **CHANGE)
    add_contact(app, dated, "c-ny", timezone="America/New_York", marketing=False, **CHANGE)
    later = CHANGE | {"tariff_change_date": "2026-04-30"}
    add_contact(app, dated, "c-later", phone="+380501112244", marketing=False, **later)
    apply(app, dated, example("tariff-change"))
    run_until(app, dated, AFTER)
    assert times(app) == [("email", TERMS_AT), ("sms", REMINDER_AT)]
    assert times(app, "c-ny") == [
        ("email", local(2026, 3, 28, 10, zone=NEW_YORK)),
        ("sms", local(2026, 3, 30, 18, zone=NEW_YORK)),
    ]
    run = the_run(app)
    assert (run["status"], run["trigger"]["type"]) == ("completed", "date")
    assert runs_of(app, "c-later") == []  # its day is a month away


def test_the_date_trigger_skips_a_contact_whose_tariff_stays(app: App, dated: VirtualClock) -> None:
    add_contact(app, dated, marketing=False, **CHANGE)
    same = CHANGE | {"new_tariff": "basic"}
    add_contact(app, dated, "c-same", phone="+380501112233", marketing=False, **same)
    apply(app, dated, example("tariff-change"))
    run_until(app, dated, AFTER)
    assert channels(app) == ["email", "sms"]
    assert channels(app, "c-same") == []
    assert runs_of(app, "c-same") == []


def test_the_date_trigger_finds_contacts_written_after_it_went_live(
    app: App, dated: VirtualClock
) -> None:
    apply(app, dated, example("tariff-change"))  # e.g. a fresh install: journeys, then import
    add_contact(app, dated, marketing=False, **CHANGE)
    add_contact(app, dated, "c-ny", timezone="America/New_York", marketing=False, **CHANGE)
    run_until(app, dated, AFTER)
    assert times(app) == [("email", TERMS_AT), ("sms", REMINDER_AT)]
    assert times(app, "c-ny")[0] == ("email", local(2026, 3, 28, 10, zone=NEW_YORK))
