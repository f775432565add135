"""The two-way journey steps: ``survey`` and ``wait: {reply: …}``, read and checked with their
paths, then walked as a pure state machine with hand-built scopes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kaskad.domain.journeys.definition import load_definition
from kaskad.domain.journeys.runs import (
    REPLY_KEY,
    Advance,
    Context,
    EventSeen,
    RunState,
    RunStatus,
    Start,
    Timer,
    WaitKind,
    advance,
)
from kaskad.domain.journeys.source import JourneyError
from kaskad.domain.journeys.steps import JourneyStep, SurveyStep, WaitForReply, WaitStep
from kaskad.domain.two_way import CSAT, NPS
from kaskad.domain.vocabulary import Category, Channel

HEAD = "id: j\nname: J\ntrigger: {api: true}\nsteps:\n"  # the first step is on line 5
SMS = "[{channel: sms, content: {text: 'How likely are you to recommend us?'}}]"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

Found = list[tuple[str, int | None, str]]


def steps_of(text: str) -> tuple[JourneyStep, ...]:
    return load_definition(HEAD + text).steps


def problems(text: str) -> Found:
    with pytest.raises(JourneyError) as info:
        load_definition(HEAD + text)
    return [(p.path, p.line, p.message) for p in info.value.problems]


# -- reading --------------------------------------------------------------------------------


def test_a_survey_asks_on_every_channel_of_its_cascade() -> None:
    [survey] = steps_of(
        "  - id: nps\n    survey:\n      scale: nps\n      timeout: 2d\n      cascade:\n"
        "        - {channel: viber, content: {text: '0 to 10?'}, until: seen, timeout: 1h}\n"
        "        - {channel: sms, content: {text: '0 to 10?'}}\n"
    )
    assert isinstance(survey, SurveyStep)
    assert (survey.scale, survey.timeout, survey.next) == (NPS, timedelta(days=2), None)
    assert survey.send.category is Category.SERVICE  # a survey is no offer
    assert [step.channel for step in survey.send.cascade] == [Channel.VIBER, Channel.SMS]
    assert all(
        step.content["rating_scale"] == {"min": 0, "max": 10} for step in survey.send.cascade
    )
    assert survey.send.cascade[0].content["text"] == "0 to 10?"


def test_a_survey_defaults_to_csat_and_takes_a_category() -> None:
    [survey] = steps_of(
        f"  - id: csat\n    survey: {{category: transactional, timeout: 1d, cascade: {SMS}}}\n"
    )
    assert isinstance(survey, SurveyStep)
    assert survey.scale == CSAT
    assert survey.send.category is Category.TRANSACTIONAL
    assert survey.send.priority == 80


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"  - survey: {{cascade: {SMS}}}\n",
            [("steps[0].survey", 5, 'missing "timeout"')],
        ),
        (
            f"  - survey: {{scale: stars, timeout: 1d, cascade: {SMS}}}\n",
            [
                (
                    "steps[0].survey.scale",
                    5,
                    '"stars" is not a scale: csat (1 to 5) or nps (0 to 10)',
                )
            ],
        ),
        (
            f"  - survey: {{timout: 1d, cascade: {SMS}}}\n",
            [
                ("steps[0].survey.timout", 5, 'unknown key "timout" — did you mean "timeout"?'),
                ("steps[0].survey", 5, 'missing "timeout"'),
            ],
        ),
        (
            "  - survey:\n      timeout: 1d\n      cascade:\n"
            "        - {channel: sms, content: {txt: hi}}\n",
            [("steps[0].survey.cascade[0].content", 8, "sms content needs `text`")],
        ),
        (
            "  - wait: {reply: true, timeout: 1d}\n",
            [
                (
                    "steps[0].wait.reply",
                    5,
                    "a wait for a reply needs a send or survey step before it",
                )
            ],
        ),
        (
            f"  - id: ask\n    send: {{category: service, cascade: {SMS}}}\n"
            "  - wait: {reply: ask}\n",
            [("steps[1].wait", 7, 'missing "timeout"')],
        ),
        (
            f"  - id: ask\n    send: {{category: service, cascade: {SMS}}}\n"
            "  - wait: {reply: aks, timeout: 1d}\n",
            [("steps[1].wait.reply", 7, 'no send step has the id "aks" — did you mean "ask"?')],
        ),
        (
            f"  - id: ask\n    send: {{category: service, cascade: {SMS}}}\n"
            "  - wait: {reply: false, timeout: 1d}\n",
            [
                (
                    "steps[1].wait.reply",
                    7,
                    "write reply: true (the latest send) or the id of a send step",
                )
            ],
        ),
    ],
)
def test_refusals_name_the_path(text: str, expected: Found) -> None:
    assert problems(text) == expected


def test_a_trigger_cannot_read_the_reply() -> None:
    text = (
        "id: j\nname: J\ntrigger: {event: paid, where: 'reply.rating > 3'}\nsteps:\n"
        "  - exit: done\n"
    )
    with pytest.raises(JourneyError) as info:
        load_definition(text)
    assert [p.message for p in info.value.problems] == [
        'a trigger cannot read "reply.rating": no run has started yet'
    ]


def test_a_reply_wait_names_a_send_or_the_latest() -> None:
    steps = steps_of(
        f"  - id: ask\n    send: {{category: service, cascade: {SMS}}}\n"
        "  - id: any\n    wait: {reply: true, timeout: 1d}\n"
        "  - id: agreed\n    wait: {reply: ask, timeout: 2h, where: 'payload.text == \"YES\"'}\n"
    )
    any_, yes = steps[1], steps[2]
    assert isinstance(any_, WaitStep)
    assert isinstance(yes, WaitStep)
    assert any_.wait == WaitForReply(None, timedelta(days=1))
    assert isinstance(yes.wait, WaitForReply)
    assert (yes.wait.send_id, yes.wait.timeout) == ("ask", 2 * HOUR)
    assert yes.wait.where is not None


def test_a_loop_through_a_survey_takes_time() -> None:
    steps = steps_of(
        f"  - id: ask\n    survey: {{timeout: 1d, cascade: {SMS}}}\n"
        "  - branch:\n      - when: reply.rating == null\n        goto: ask\n"
    )
    assert len(steps) == 2


# -- walking ----------------------------------------------------------------------------------


def context(state: RunState, sends: dict[str, dict[str, Any]] | None = None) -> Context:
    """As ``services.runs._context`` builds it: outcomes with notifications, and ``reply``."""
    steps = {
        step_id: dict(outcome) | (sends or {}).get(outcome.get("notification", ""), {})
        for step_id, outcome in state.outcomes.items()
        if not step_id.startswith("@")
    }
    scope = {
        "contact": {},
        "event": {},
        "payload": {},
        "steps": steps,
        "reply": dict(state.outcomes.get(REPLY_KEY, {})),
        "run": {},
    }
    return Context("j", "c-1", "UTC", scope)


def carried(result: Advance) -> RunState:
    """Each send's notification id added, as ``services.runs._carry_out`` stores it."""
    outcomes = {k: dict(v) for k, v in result.state.outcomes.items()}
    for send in result.sends:
        outcomes.setdefault(send.step.id, {})["notification"] = f"ntf-{send.step.id}"
    return replace(result.state, outcomes=outcomes)


def begin(text: str) -> tuple[tuple[JourneyStep, ...], RunState, Advance]:
    steps = steps_of(text)
    result = advance(steps, RunState(), Start(), context(RunState()), NOW)
    return steps, carried(result), result


def answer(type_: str, notification: str, at: datetime = NOW + HOUR, **payload: Any) -> EventSeen:
    return EventSeen(type_, {"notification_id": notification, **payload}, at, "key")


SURVEY = (
    f"  - id: csat\n    survey: {{timeout: 2d, cascade: {SMS}}}\n"
    "  - branch:\n"
    "      - when: reply.rating >= 4\n        goto: thanks\n"
    "      - when: steps.csat.answered\n        goto: sorry\n"
    "      - else: exit\n"
    "  - id: thanks\n    exit: promoter\n"
    "  - id: sorry\n    exit: detractor\n"
)


def test_a_survey_sends_the_question_and_waits_for_the_rating() -> None:
    _, state, result = begin(SURVEY)
    assert [send.step.id for send in result.sends] == ["csat"]
    assert result.sends[0].step.cascade[0].content["rating_scale"] == {"min": 1, "max": 5}
    assert state.waiting is not None
    assert (state.waiting.kind, state.waiting.event, state.waiting.send) == (
        WaitKind.SURVEY,
        "survey.answered",
        "csat",
    )
    assert state.waiting.until == NOW + timedelta(days=2)
    assert [(e.step, e.kind) for e in result.history] == [("csat", "survey"), ("csat", "wait")]


@pytest.mark.parametrize(("rating", "ending"), [(5, "exit: promoter"), (2, "exit: detractor")])
def test_the_rating_is_there_for_the_branches(rating: int, ending: str) -> None:
    steps, state, _ = begin(SURVEY)
    event = answer("survey.answered", "ntf-csat", rating=rating, text=str(rating), channel="sms")
    result = advance(steps, state, event, context(state), NOW + HOUR)
    assert result.state.status is RunStatus.EXITED
    assert result.history[-1].text == ending
    assert result.state.outcomes[REPLY_KEY]["rating"] == rating
    assert result.state.outcomes["csat"]["answered"] is True
    assert result.history[0].text == f"rating received: '{rating}'"


def test_a_rating_for_another_notification_is_not_the_answer() -> None:
    steps, state, _ = begin(SURVEY)
    result = advance(
        steps, state, answer("survey.answered", "ntf-other", rating=5), context(state), NOW + HOUR
    )
    assert result.state == state
    assert result.history == ()


def test_no_answer_before_the_timeout() -> None:
    steps, state, _ = begin(SURVEY)
    result = advance(steps, state, Timer(), context(state), NOW + timedelta(days=2))
    assert result.state.outcomes["csat"]["answered"] is False
    assert result.state.outcomes["csat"]["timed_out"] is True
    assert result.history[-1].text == "exit"  # else: exit
    assert result.history[0].text == "no answer to 'csat' before the timeout"


def test_an_answer_after_the_timeout_counts_as_the_timeout() -> None:
    steps, state, _ = begin(SURVEY)
    late = answer("survey.answered", "ntf-csat", NOW + timedelta(days=3), rating=5)
    result = advance(steps, state, late, context(state), NOW + timedelta(days=3))
    assert result.state.outcomes["csat"]["timed_out"] is True
    assert REPLY_KEY not in result.state.outcomes


REPLY = (
    f"  - id: first\n    send: {{category: service, cascade: {SMS}}}\n"
    f"  - id: second\n    send: {{category: service, cascade: {SMS}}}\n"
    "  - id: answer\n    wait: {reply: true, timeout: 1d}\n"
    "  - branch:\n      - when: steps.answer.replied\n        goto: done\n      - else: exit\n"
    "  - id: done\n    exit: answered\n"
)


def test_a_reply_wait_waits_on_the_latest_send() -> None:
    steps, state, _ = begin(REPLY)
    assert state.waiting is not None
    assert (state.waiting.kind, state.waiting.event, state.waiting.send) == (
        WaitKind.REPLY,
        "message.received",
        "second",
    )
    first = answer("message.received", "ntf-first", text="hi", kind="text")
    assert advance(steps, state, first, context(state), NOW + HOUR).history == ()
    stop = answer("message.received", "ntf-second", text="STOP", kind="keyword")
    assert advance(steps, state, stop, context(state), NOW + HOUR).history == ()
    reply = answer("message.received", "ntf-second", text="Yes please", kind="text")
    result = advance(steps, state, reply, context(state), NOW + HOUR)
    assert result.history[-1].text == "exit: answered"
    assert result.state.outcomes[REPLY_KEY]["text"] == "Yes please"
    assert result.state.outcomes["answer"]["replied"] is True


def test_a_reply_wait_with_a_condition() -> None:
    steps, state, _ = begin(
        f"  - id: ask\n    send: {{category: service, cascade: {SMS}}}\n"
        "  - id: confirm\n    wait: {reply: ask, timeout: 1h, where: 'payload.text == \"YES\"'}\n"
        "  - exit: confirmed\n"
    )
    no = answer("message.received", "ntf-ask", NOW + 10 * timedelta(minutes=1), text="NO")
    assert advance(steps, state, no, context(state), NOW).state == state
    yes = answer("message.received", "ntf-ask", NOW, text="YES", kind="text")
    assert advance(steps, state, yes, context(state), NOW).history[-1].text == "exit: confirmed"


def test_a_reply_wait_with_nothing_sent_goes_on() -> None:
    steps = steps_of(
        "  - id: maybe\n    branch:\n      - when: 'false'\n        goto: ask\n"
        "      - else: listen\n"
        f"  - id: ask\n    send: {{category: service, cascade: {SMS}}}\n"
        "  - id: listen\n    wait: {reply: true, timeout: 1d}\n"
    )
    result = advance(steps, RunState(), Start(), context(RunState()), NOW)
    assert result.state.status is RunStatus.COMPLETED
    assert ("listen", "wait", "nothing sent yet to reply to: going on") in [
        (e.step, e.kind, e.text) for e in result.history
    ]


def test_exit_on_takes_a_condition_naming_the_steps() -> None:
    text = (
        "id: j\nname: J\ntrigger: {api: true}\n"
        "exit_on:\n  - event: keypress\n"
        "    where: payload.notification_id == steps.call.notification\n"
        f"steps:\n  - id: call\n    send: {{category: security, cascade: {SMS}}}\n"
    )
    [keypress] = load_definition(text).exit_on
    assert keypress.type == "keypress"
    assert keypress.where is not None
    assert keypress.where.evaluate(
        {"payload": {"notification_id": "n-1"}, "steps": {"call": {"notification": "n-1"}}},
        now=NOW,
    )
    wrong = text.replace("steps.call.notification", "steps.cal.notification")
    with pytest.raises(JourneyError) as info:
        load_definition(wrong)
    assert [p.path for p in info.value.problems] == ["exit_on[0].where"]
