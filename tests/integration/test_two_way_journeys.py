"""Surveys and replies in journeys, end to end on the virtual clock and both databases: the
question goes out on its cascade, the customer answers through the sandbox, and the run
branches on the answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kaskad.bootstrap import App
from kaskad.domain.two_way import TwoWayRules
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from kaskad.services import inbound, notifications, sandbox
from tests.integration.journey_helpers import (
    PHONE,
    add_contact,
    apply,
    attributes_of,
    enter,
    history,
    run_for,
    sent_to,
    the_run,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

NPS = """
id: nps
name: NPS after a branch visit
trigger: {api: true}
steps:
  - id: ask
    survey:
      scale: nps
      timeout: 1d
      cascade:
        - channel: viber
          content: {text: "How likely are you to recommend us, 0 to 10?"}
          until: seen
          timeout: 1h
        - channel: sms
          content: {text: "How likely are you to recommend us? Reply 0 to 10."}
  - branch:
      - when: reply.rating >= 9
        goto: promoter
      - when: steps.ask.answered
        goto: detractor
      - else: exit
  - id: promoter
    update: {attributes: {nps: promoter}}
    goto: exit
  - id: detractor
    update: {attributes: {nps: detractor}}
  - send:
      category: service
      cascade:
        - channel: sms
          content: {text: "Sorry to hear that. A manager will call you."}
"""

CONFIRM = """
id: confirm
name: Confirm an address change
trigger: {api: true}
steps:
  - id: ask
    send:
      category: transactional
      cascade:
        - channel: sms
          content: {text: "Reply YES to confirm your new address."}
  - id: answer
    wait: {reply: true, timeout: 2h, where: 'payload.text == "YES"'}
  - branch:
      - when: steps.answer.replied
        goto: done
  - exit: unconfirmed
  - id: done
    update: {attributes: {address_confirmed: true}}
"""


@pytest.fixture
def two_way(app: App, clock: VirtualClock) -> App:
    inbound.configure(app.uow(), rules=TwoWayRules(), routing=app.routing)
    add_contact(app, clock)
    return app


def reply(app: App, clock: VirtualClock, text: str, channel: Channel = Channel.SMS) -> Any:
    return sandbox.reply(
        app.uow(),
        channel=channel,
        text=text,
        sender=PHONE,
        contact=None,
        message_id=None,
        routing=app.routing,
        default_region=None,
        now=clock.now(),
    )


def test_a_promoter_answers_the_survey_on_viber(two_way: App, clock: VirtualClock) -> None:
    apply(two_way, clock, NPS)
    enter(two_way, clock, "nps")
    run_for(two_way, clock, 10 * MINUTE)
    [question] = sent_to(two_way)
    assert question.channel == "viber"
    assert question.content["rating_scale"] == {"min": 0, "max": 10}
    assert reply(two_way, clock, "10", Channel.VIBER)["kind"] == "rating"
    run_for(two_way, clock, 2 * HOUR)
    assert attributes_of(two_way, "c-1")["nps"] == "promoter"
    run = the_run(two_way)
    assert run["status"] == "exited"
    assert run["outcomes"]["ask"]["rating"] == 10
    assert ("ask", "resume", "rating received: '10'") in history(two_way, run["id"])
    assert len(sent_to(two_way)) == 1  # the viber step was answered: no SMS
    view = notifications.get_notification(
        two_way.uow(), notification_id=run["outcomes"]["ask"]["notification"]
    )
    assert view["notification"]["status"] == "completed"
    assert view["decisions"][-1]["reason"] == "answered on viber: cascade complete"


def test_a_detractor_gets_an_apology(two_way: App, clock: VirtualClock) -> None:
    apply(two_way, clock, NPS)
    enter(two_way, clock, "nps")
    run_for(two_way, clock, 2 * HOUR)  # the viber question unseen: the SMS goes
    assert [m.channel for m in sent_to(two_way)] == ["viber", "sms"]
    reply(two_way, clock, "I don't know")  # text is no rating: still waiting
    run_for(two_way, clock, MINUTE)
    assert the_run(two_way)["status"] == "active"
    reply(two_way, clock, "3")
    run_for(two_way, clock, MINUTE)
    assert attributes_of(two_way, "c-1")["nps"] == "detractor"
    assert sent_to(two_way)[-1].content["text"] == "Sorry to hear that. A manager will call you."
    assert the_run(two_way)["status"] == "completed"


def test_no_answer_in_a_day(two_way: App, clock: VirtualClock) -> None:
    apply(two_way, clock, NPS)
    enter(two_way, clock, "nps")
    run_for(two_way, clock, 2 * timedelta(days=1))
    run = the_run(two_way)
    assert (run["status"], run["outcomes"]["ask"]["timed_out"]) == ("exited", True)
    assert "nps" not in attributes_of(two_way, "c-1")


def test_a_reply_confirms(two_way: App, clock: VirtualClock) -> None:
    apply(two_way, clock, CONFIRM)
    enter(two_way, clock, "confirm")
    run_for(two_way, clock, 5 * MINUTE)
    reply(two_way, clock, "STOP")  # a keyword is no answer
    reply(two_way, clock, "what?")  # an answer, but not the one the wait asks for
    run_for(two_way, clock, 5 * MINUTE)
    assert the_run(two_way)["status"] == "active"
    reply(two_way, clock, "YES")
    run_for(two_way, clock, MINUTE)
    assert attributes_of(two_way, "c-1")["address_confirmed"] is True
    run = the_run(two_way)
    assert run["status"] == "completed"
    assert run["outcomes"]["answer"] == {
        "replied": True,
        "timed_out": False,
        "text": "YES",
        "rating": None,
    }


def test_no_reply_in_time(two_way: App, clock: VirtualClock) -> None:
    apply(two_way, clock, CONFIRM)
    enter(two_way, clock, "confirm")
    run_for(two_way, clock, 3 * HOUR)
    reply(two_way, clock, "YES")  # too late
    run_for(two_way, clock, MINUTE)
    run = the_run(two_way)
    assert (run["status"], run["ended_reason"]) == ("exited", "exit: unconfirmed")
