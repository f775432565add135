"""The suspicious operation alert from the seeds, end to end on the virtual clock, on both
databases: call, push, SMS, email in turn until the customer acknowledges on one of them; a
key pressed on the call or the customer's answer in the app ends the run and nothing more is
sent; an hour without acknowledgement, one more SMS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from kaskad.adapters.storage.schema import events as events_table
from kaskad.bootstrap import App
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from kaskad.services import sandbox
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
    set_consents,
    the_run,
    times,
)

START = local(2026, 3, 2, 3)  # 03:00 in Kyiv: security alerts go out at any hour
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def alerts(app: App, clock: VirtualClock) -> App:
    clock.set(START)
    apply(app, clock, example("suspicious-operation"))
    add_contact(app, clock, push_tokens=[PUSH_TOKEN], marketing=False)
    return app


def texts(app: App) -> list[str]:
    return [str(m.content["text"]) for m in sent_to(app)]


def press(app: App, clock: VirtualClock, digits: str) -> None:
    """The customer answers later calls and presses ``digits``."""
    sandbox.set_keypress(
        app.uow(), address=PHONE, digits=digits, default_region=None, now=clock.now()
    )


def event_types(app: App) -> list[str]:
    with app.uow() as uow:
        return [str(t) for t in uow.connection.execute(select(events_table.c.type)).scalars()]


# -- the three ways it goes --------------------------------------------------------------------


def test_a_push_seen_is_acknowledged_and_sms_and_email_never_go(
    alerts: App, clock: VirtualClock
) -> None:
    outcome(alerts, clock, Channel.PUSH, PUSH_TOKEN, "seen")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 3 * HOUR)
    # The call is answered but no key pressed: after its minute, the push, which is opened.
    assert times(alerts) == [("voice", START), ("push", START + MINUTE)]
    assert [m.status for m in sent_to(alerts)] == ["delivered", "seen"]
    run = the_run(alerts)
    assert (run["status"], run["ended_reason"]) == ("exited", "exit")
    assert ("step-3", "branch", "case 1 holds: steps.alert.seen → exit") in history(
        alerts, run["id"]
    )


def test_a_push_clicked_is_acknowledged_too(alerts: App, clock: VirtualClock) -> None:
    outcome(alerts, clock, Channel.PUSH, PUSH_TOKEN, "clicked")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 3 * HOUR)
    assert channels(alerts) == ["voice", "push"]
    assert the_run(alerts)["status"] == "exited"


def test_pressing_1_on_the_call_ends_the_run_and_nothing_more_is_sent(
    alerts: App, clock: VirtualClock
) -> None:
    press(alerts, clock, "1")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 3 * HOUR)
    assert times(alerts) == [("voice", START)]
    assert sent_to(alerts)[0].status == "clicked"  # the call's step ended on the key
    assert "keypress" in event_types(alerts)
    run = the_run(alerts)
    assert (run["status"], run["ended_reason"]) == ("exited", "exit on keypress event")
    assert run["ended_at"] == START + 4 * SECOND  # the key, as the sandbox presses it


def test_nobody_answers_every_channel_in_order_then_the_reminder(
    alerts: App, clock: VirtualClock
) -> None:
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 30 * MINUTE)
    # Each one delivered and left unanswered: each step waits out its time, then the next.
    assert times(alerts) == [
        ("voice", START),
        ("push", START + MINUTE),
        ("sms", START + 3 * MINUTE),
        ("email", START + 8 * MINUTE),
    ]
    assert [m.status for m in sent_to(alerts)] == ["delivered"] * 4
    run_for(alerts, clock, 2 * HOUR)
    assert times(alerts)[4:] == [("sms", START + HOUR)]
    assert "0 800 000 000" in texts(alerts)[-1]
    assert the_run(alerts)["status"] == "completed"


# -- more of how it behaves -----------------------------------------------------------------------


def test_a_key_on_one_alerts_call_ends_that_alert_only(alerts: App, clock: VirtualClock) -> None:
    post(alerts, clock, "suspicious_operation", operation="op-1")
    run_for(alerts, clock, 10 * SECOND)  # the first call is answered without a key
    press(alerts, clock, "2")
    post(alerts, clock, "suspicious_operation", operation="op-2")
    run_for(alerts, clock, 10 * SECOND)
    first, second = runs_of(alerts)
    assert (first["status"], second["status"]) == ("active", "exited")
    assert second["ended_reason"] == "exit on keypress event"


def test_an_unanswered_call_falls_back_to_a_push_that_is_seen(
    alerts: App, clock: VirtualClock
) -> None:
    outcome(alerts, clock, Channel.VOICE, PHONE, "undelivered")
    outcome(alerts, clock, Channel.PUSH, PUSH_TOKEN, "seen")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 30 * MINUTE)
    assert times(alerts) == [("voice", START), ("push", START + MINUTE)]
    assert [m.status for m in sent_to(alerts)] == ["sent", "seen"]


def test_a_push_delivered_but_not_seen_falls_back_to_an_sms_whose_link_is_tapped(
    alerts: App, clock: VirtualClock
) -> None:
    outcome(alerts, clock, Channel.VOICE, PHONE, "undelivered")
    outcome(alerts, clock, Channel.PUSH, PUSH_TOKEN, "delivered")
    outcome(alerts, clock, Channel.SMS, PHONE, "clicked")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 3 * HOUR)
    # The push step waits for "seen": delivered is not enough after its 2 minutes. The SMS
    # link tapped acknowledges: no email, no reminder.
    assert times(alerts) == [
        ("voice", START),
        ("push", START + MINUTE),
        ("sms", START + 3 * MINUTE),
    ]
    assert sent_to(alerts)[-1].status == "clicked"
    assert the_run(alerts)["status"] == "exited"


def test_every_channel_in_turn_down_to_email(alerts: App, clock: VirtualClock) -> None:
    outcome(alerts, clock, Channel.VOICE, PHONE, "undeliverable")
    outcome(alerts, clock, Channel.PUSH, PUSH_TOKEN, "undelivered")
    outcome(alerts, clock, Channel.SMS, PHONE, "undeliverable")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 30 * MINUTE)
    # A failure moves on at once (the sandbox reports it 2 s after the send); silence waits
    # out the step's timeout.
    assert times(alerts) == [
        ("voice", START),
        ("push", START + 2 * SECOND),
        ("sms", START + 2 * SECOND + 2 * MINUTE),
        ("email", START + 4 * SECOND + 2 * MINUTE),
    ]
    assert sent_to(alerts)[-1].content["subject"] == "We stopped a payment from your card"


def test_the_customers_answer_ends_the_run_and_nothing_more_is_sent(
    alerts: App, clock: VirtualClock
) -> None:
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 30 * SECOND)  # the call is answered; the customer uses the app
    post(alerts, clock, "operation_confirmed")
    run_for(alerts, clock, 3 * HOUR)
    assert channels(alerts) == ["voice"]
    run = the_run(alerts)
    assert (run["status"], run["ended_reason"]) == ("exited", "exit on operation_confirmed event")


def test_a_rejection_ends_the_run_too(alerts: App, clock: VirtualClock) -> None:
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 30 * SECOND)
    post(alerts, clock, "operation_rejected")
    run_for(alerts, clock, 3 * HOUR)
    assert channels(alerts) == ["voice"]
    assert the_run(alerts)["ended_reason"] == "exit on operation_rejected event"


def test_an_answer_during_the_cascade_stops_the_cascade(alerts: App, clock: VirtualClock) -> None:
    outcome(alerts, clock, Channel.VOICE, PHONE, "undelivered")
    outcome(alerts, clock, Channel.PUSH, PUSH_TOKEN, "undelivered")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 90 * SECOND)  # the push is out, the customer confirms in the app
    assert channels(alerts) == ["voice", "push"]
    post(alerts, clock, "operation_confirmed")
    run_for(alerts, clock, 3 * HOUR)
    assert the_run(alerts)["status"] == "exited"
    assert channels(alerts) == ["voice", "push"]  # no SMS, no email after the answer


def test_every_operation_is_announced(alerts: App, clock: VirtualClock) -> None:
    post(alerts, clock, "suspicious_operation", operation="op-1")
    run_for(alerts, clock, 20 * SECOND)
    post(alerts, clock, "suspicious_operation", operation="op-2")
    run_for(alerts, clock, 20 * SECOND)
    assert channels(alerts) == ["voice", "voice"]
    assert [r["status"] for r in runs_of(alerts)] == ["active", "active"]
    assert [r["trigger"]["payload"]["operation"] for r in runs_of(alerts)] == ["op-1", "op-2"]


def test_at_most_five_alerts_run_at_once(alerts: App, clock: VirtualClock) -> None:
    for number in range(7):
        post(alerts, clock, "suspicious_operation", operation=f"op-{number}")
    run_for(alerts, clock, 30 * SECOND)
    assert len(runs_of(alerts)) == 5
    assert channels(alerts) == ["voice"] * 5


def test_an_opted_out_channel_is_skipped_even_for_security(
    alerts: App, clock: VirtualClock
) -> None:
    set_consents(alerts, clock, "c-1", {"voice": {"*": False}})
    outcome(alerts, clock, Channel.PUSH, PUSH_TOKEN, "seen")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 10 * MINUTE)
    # No call to someone who opted out of calls: the push goes at once.
    assert times(alerts) == [("push", START)]
