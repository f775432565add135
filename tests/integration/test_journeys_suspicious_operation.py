"""The suspicious operation alert from the seeds, end to end on the virtual clock, on both
databases: call, push, SMS, email in turn until one reaches the customer; an hour without an
answer, one more SMS; the customer's answer ends the run and nothing more is sent."""

from __future__ import annotations

from datetime import timedelta

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


def test_an_answered_call_stops_the_cascade(alerts: App, clock: VirtualClock) -> None:
    post(alerts, clock, "suspicious_operation", amount=9_900)
    run_for(alerts, clock, 10 * MINUTE)
    assert times(alerts) == [("voice", START)]
    assert sent_to(alerts)[0].status == "delivered"
    # No answer from the customer within the hour: the closing SMS with the bank's number.
    run_for(alerts, clock, 2 * HOUR)
    assert times(alerts) == [("voice", START), ("sms", START + HOUR)]
    assert "0 800 000 000" in texts(alerts)[-1]
    assert the_run(alerts)["status"] == "completed"


def test_an_unanswered_call_falls_back_to_a_push_that_is_seen(
    alerts: App, clock: VirtualClock
) -> None:
    outcome(alerts, clock, Channel.VOICE, PHONE, "undelivered")
    outcome(alerts, clock, Channel.PUSH, PUSH_TOKEN, "seen")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 30 * MINUTE)
    assert times(alerts) == [("voice", START), ("push", START + MINUTE)]
    assert [m.status for m in sent_to(alerts)] == ["sent", "seen"]


def test_a_push_delivered_but_not_seen_falls_back_to_sms(alerts: App, clock: VirtualClock) -> None:
    outcome(alerts, clock, Channel.VOICE, PHONE, "undelivered")
    outcome(alerts, clock, Channel.PUSH, PUSH_TOKEN, "delivered")
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 30 * MINUTE)
    # The push step waits for "seen": delivered is not enough after its 2 minutes.
    assert times(alerts) == [
        ("voice", START),
        ("push", START + MINUTE),
        ("sms", START + 3 * MINUTE),
    ]
    assert sent_to(alerts)[-1].status == "delivered"


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
    run_for(alerts, clock, 10 * MINUTE)
    post(alerts, clock, "operation_confirmed")
    run_for(alerts, clock, 3 * HOUR)
    assert channels(alerts) == ["voice"]
    run = the_run(alerts)
    assert (run["status"], run["ended_reason"]) == ("exited", "exit on operation_confirmed event")


def test_a_rejection_ends_the_run_too(alerts: App, clock: VirtualClock) -> None:
    post(alerts, clock, "suspicious_operation")
    run_for(alerts, clock, 10 * MINUTE)
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
    run_for(alerts, clock, 5 * MINUTE)
    post(alerts, clock, "suspicious_operation", operation="op-2")
    run_for(alerts, clock, 5 * MINUTE)
    assert channels(alerts) == ["voice", "voice"]
    assert [r["status"] for r in runs_of(alerts)] == ["active", "active"]
    assert [r["trigger"]["payload"]["operation"] for r in runs_of(alerts)] == ["op-1", "op-2"]


def test_at_most_five_alerts_run_at_once(alerts: App, clock: VirtualClock) -> None:
    for number in range(7):
        post(alerts, clock, "suspicious_operation", operation=f"op-{number}")
    run_for(alerts, clock, 5 * MINUTE)
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
