"""Journey runs: the pure state machine, walked with a fixed clock and hand-built scopes.

The scopes are built the way ``services.runs`` builds them: each step's outcome as the run
stored it, merged with what is known of the step's notification (its furthest status and
whether its cascade has ended).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kaskad.domain.journeys.definition import load_definition
from kaskad.domain.journeys.rules import choose_variant
from kaskad.domain.journeys.runs import (
    MAX_STEPS_PER_ADVANCE,
    Advance,
    Context,
    Entry,
    EventSeen,
    RunState,
    RunStatus,
    Start,
    Timer,
    Update,
    Waiting,
    WaitKind,
    Wake,
    advance,
    end_run,
    last_send,
)
from kaskad.domain.journeys.steps import JourneyStep, UpdateStep
from kaskad.domain.vocabulary import MessageStatus, Until, reaches

JOURNEY = "offer"
HEAD = f"id: {JOURNEY}\nname: Offer\ntrigger: {{api: true}}\nsteps:\n"
SMS = "{category: marketing, cascade: [{channel: sms, content: {text: hi}}]}"
EMAIL = (
    "{category: marketing, cascade: "
    "[{channel: email, content: {subject: A card for you, text: hi}}]}"
)
VIBER = (
    "{category: marketing, cascade: "
    "[{channel: viber, content: {text: hi}, until: seen, timeout: 1d}]}"
)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday: 11:00 in Kyiv (EET, UTC+2)
SECOND = timedelta(seconds=1)
KYIV = "Europe/Kyiv"

Sends = Mapping[str, Mapping[str, Any]]


def journey(steps: str) -> tuple[JourneyStep, ...]:
    return load_definition(HEAD + steps).steps


def ntf(step_id: str) -> str:
    """The id the caller gives the notification of a send step (one per step in these tests)."""
    return f"ntf-{step_id}"


def notification(status: str, *, final: bool) -> dict[str, Any]:
    """What ``services.runs._send_outcomes`` tells a run about one notification."""
    furthest = MessageStatus(status)
    return {
        "status": status,
        "channel": "viber",
        "final": final,
        "failed": status == "failed",
        **{until.value: reaches(furthest, until) for until in Until},
    }


def context(
    state: RunState | None = None,
    *,
    contact: Mapping[str, Any] | None = None,
    sends: Sends | None = None,
    zone: str = "UTC",
    contact_id: str = "c-1",
) -> Context:
    """The context ``services.runs._context`` builds; ``sends`` are keyed by notification id."""
    state = state or RunState()
    known = sends or {}
    steps = {
        step_id: dict(outcome) | dict(known.get(outcome.get("notification", ""), {}))
        for step_id, outcome in state.outcomes.items()
    }
    fields = {"external_id": contact_id, "locale": "uk", "timezone": zone}
    scope = {
        "contact": dict(contact or {}) | fields,
        "event": {},
        "payload": {},
        "steps": steps,
        "run": {
            "id": "run-1",
            "journey": JOURNEY,
            "version": 1,
            "variant": state.variant,
            "entered_at": NOW.isoformat(),
        },
    }
    return Context(JOURNEY, contact_id, zone, scope)


def carried(result: Advance) -> RunState:
    """The state as ``services.runs._carry_out`` stores it: each send's notification id added."""
    outcomes = {k: dict(v) for k, v in result.state.outcomes.items()}
    for send in result.sends:
        outcomes.setdefault(send.step.id, {})["notification"] = ntf(send.step.id)
    return replace(result.state, outcomes=outcomes)


def start(
    steps: tuple[JourneyStep, ...],
    *,
    contact: Mapping[str, Any] | None = None,
    zone: str = "UTC",
    contact_id: str = "c-1",
    now: datetime = NOW,
) -> Advance:
    ctx = context(contact=contact, zone=zone, contact_id=contact_id)
    return advance(steps, RunState(), Start(), ctx, now)


def wake(
    steps: tuple[JourneyStep, ...],
    state: RunState,
    what: Wake,
    at: datetime,
    *,
    contact: Mapping[str, Any] | None = None,
    sends: Sends | None = None,
    zone: str = "UTC",
) -> Advance:
    return advance(steps, state, what, context(state, contact=contact, sends=sends, zone=zone), at)


def walked(result: Advance) -> list[tuple[str | None, str]]:
    return [(entry.step, entry.kind) for entry in result.history]


def sent(result: Advance) -> list[str]:
    return [send.step.id for send in result.sends]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# Start: walking to the first wait -----------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "contact", "status", "position", "sends", "updates", "history"),
    [
        pytest.param(
            f"  - id: a\n    send: {SMS}\n  - id: b\n    send: {SMS}\n"
            f"  - id: pause\n    wait: 2d\n  - id: c\n    send: {SMS}\n",
            {},
            RunStatus.ACTIVE,
            2,
            ["a", "b"],
            [],
            [("a", "send"), ("b", "send"), ("pause", "wait")],
            id="sends-in-order-then-wait",
        ),
        pytest.param(
            f"  - wait: 1h\n  - id: a\n    send: {SMS}\n",
            {},
            RunStatus.ACTIVE,
            0,
            [],
            [],
            [("step-1", "wait")],
            id="wait-first",
        ),
        pytest.param(
            "  - id: tag\n    update: {attributes: {tier: gold, score: 7}}\n"
            f"  - id: a\n    send: {SMS}\n"
            "  - id: untag\n    update: {attributes: {tier: null}}\n",
            {},
            RunStatus.COMPLETED,
            None,
            ["a"],
            [{"tier": "gold", "score": 7}, {"tier": None}],
            [("tag", "update"), ("a", "send"), ("untag", "update"), (None, "completed")],
            id="updates-in-order-off-the-end",
        ),
        pytest.param(
            f"  - id: a\n    send: {SMS}\n  - id: bye\n    exit: not interested\n"
            f"  - id: b\n    send: {SMS}\n",
            {},
            RunStatus.EXITED,
            None,
            ["a"],
            [],
            [("a", "send"), ("bye", "exited")],
            id="exit-step",
        ),
        pytest.param(
            f"  - id: a\n    send: {SMS}\n    goto: c\n  - id: b\n    send: {SMS}\n"
            f"  - id: c\n    send: {SMS}\n",
            {},
            RunStatus.COMPLETED,
            None,
            ["a", "c"],
            [],
            [("a", "send"), ("c", "send"), (None, "completed")],
            id="goto-skips-a-step",
        ),
        pytest.param(
            "  - id: gate\n    branch: [{when: contact.age < 18, goto: exit}]\n"
            f"  - id: a\n    send: {SMS}\n",
            {"age": 16},
            RunStatus.EXITED,
            None,
            [],
            [],
            [("gate", "branch"), ("gate", "exited")],
            id="branch-goto-exit",
        ),
        pytest.param(
            "  - id: gate\n    branch: [{when: contact.age < 18, goto: exit}]\n"
            f"  - id: a\n    send: {SMS}\n",
            {"age": 30},
            RunStatus.COMPLETED,
            None,
            ["a"],
            [],
            [("gate", "branch"), ("a", "send"), (None, "completed")],
            id="branch-without-else-goes-to-the-next-step",
        ),
        pytest.param(
            "  - id: gate\n    branch:\n      - when: contact.age < 18\n        goto: exit\n"
            "      - else: b\n"
            f"  - id: a\n    send: {SMS}\n  - id: b\n    send: {SMS}\n",
            {"age": 30},
            RunStatus.COMPLETED,
            None,
            ["b"],
            [],
            [("gate", "branch"), ("b", "send"), (None, "completed")],
            id="branch-else",
        ),
        pytest.param(
            "  - id: ab\n    split: [{variant: only, weight: 1, goto: exit}]\n"
            f"  - id: a\n    send: {SMS}\n",
            {},
            RunStatus.EXITED,
            None,
            [],
            [],
            [("ab", "split"), ("ab", "exited")],
            id="split-goto-exit",
        ),
        pytest.param(
            "  - id: ab\n    split: [{variant: only, weight: 1, goto: b}]\n"
            f"  - id: a\n    send: {SMS}\n  - id: b\n    send: {SMS}\n  - wait: 1d\n",
            {},
            RunStatus.ACTIVE,
            3,
            ["b"],
            [],
            [("ab", "split"), ("b", "send"), ("step-4", "wait")],
            id="split-goto-step",
        ),
    ],
)
def test_start_walks_until_the_first_wait(
    steps: str,
    contact: dict[str, Any],
    status: RunStatus,
    position: int | None,
    sends: list[str],
    updates: list[dict[str, Any]],
    history: list[tuple[str | None, str]],
) -> None:
    result = start(journey(steps), contact=contact)
    assert result.state.status is status
    assert result.state.position == position
    assert (result.state.waiting is not None) == (status is RunStatus.ACTIVE)
    assert sent(result) == sends
    assert result.updates == tuple(Update(u) for u in updates)
    assert walked(result) == history


def test_history_says_what_each_step_did() -> None:
    steps = journey(
        f"  - id: offer\n    send: {SMS}\n"
        "  - id: tag\n    update: {attributes: {tier: gold, promo: true}}\n"
        '  - id: gate\n    branch:\n      - when: contact.tier == "gold"\n        goto: bye\n'
        "  - wait: 1d\n"
        "  - id: bye\n    exit: gold already\n"
    )
    assert start(steps).history == (
        Entry("offer", "send", "marketing notification: sms"),
        Entry("tag", "update", "set contact attributes: promo, tier"),
        Entry("gate", "branch", "case 1 holds: contact.tier == \"gold\" → 'bye'"),
        Entry("bye", "exited", "exit: gold already"),
    )


def test_running_off_the_end_completes_the_run() -> None:
    result = start(journey(f"  - id: a\n    send: {SMS}\n"))
    queued = {"status": "queued", "final": False, "sent_at": NOW.isoformat(), "sent_order": 1}
    assert result.state == RunState(RunStatus.COMPLETED, None, None, None, {"a": queued})
    assert result.history[-1] == Entry(None, "completed", "reached the end of the journey")


def test_a_send_is_queued_and_not_final_in_the_outcomes() -> None:
    steps = journey(f"  - id: a\n    send: {VIBER}\n  - wait: 1d\n")
    result = start(steps)
    queued = {"status": "queued", "final": False, "sent_at": NOW.isoformat(), "sent_order": 1}
    assert result.state.outcomes == {"a": queued}
    assert [send.step for send in result.sends] == [steps[0]]


def test_advance_changes_neither_the_state_nor_the_context_it_is_given() -> None:
    steps = journey(
        f"  - id: a\n    send: {SMS}\n  - id: tag\n    update: {{attributes: {{tier: gold}}}}\n"
        "  - id: ab\n    split: [{variant: A, weight: 1}]\n  - wait: 1d\n"
    )
    state = RunState(outcomes={"old": {"notification": "ntf-old", "final": False}})
    ctx = context(
        state, contact={"tier": "silver"}, sends={"ntf-old": notification("sent", final=False)}
    )
    state_before, scope_before = copy.deepcopy(state), copy.deepcopy(ctx.scope)
    result = advance(steps, state, Start(), ctx, NOW)
    assert result.state.outcomes["old"] == {"notification": "ntf-old", "final": False}
    assert state == state_before
    assert ctx.scope == scope_before


def test_a_loop_without_a_wait_is_stopped_by_the_step_guard() -> None:
    # load_definition refuses such a loop; the guard is the last line of defence.
    looping = (UpdateStep("again", {"n": 1}, 0),)
    result = advance(looping, RunState(), Start(), context(), NOW)
    assert result.state.status is RunStatus.FAILED
    assert len(result.updates) == MAX_STEPS_PER_ADVANCE
    assert result.history[-1] == Entry(None, "failed", "too many steps without a wait: stopped")


def test_the_longest_journey_without_a_wait_one_short_of_the_guard_completes() -> None:
    steps = journey(f"  - send: {SMS}\n" * (MAX_STEPS_PER_ADVANCE - 1))
    result = start(steps)
    assert result.state.status is RunStatus.COMPLETED
    assert len(result.sends) == MAX_STEPS_PER_ADVANCE - 1


@pytest.mark.parametrize(
    ("steps", "status"),
    [
        pytest.param(f"  - send: {SMS}\n" * MAX_STEPS_PER_ADVANCE, RunStatus.COMPLETED, id="end"),
        pytest.param(
            f"  - send: {SMS}\n" * (MAX_STEPS_PER_ADVANCE - 1) + "  - wait: 1d\n",
            RunStatus.ACTIVE,
            id="wait",
        ),
    ],
)
def test_a_journey_of_the_longest_allowed_length_is_not_stopped(
    steps: str, status: RunStatus
) -> None:
    result = start(journey(steps))
    assert result.state.status is status


def test_a_branch_at_the_end_with_no_case_holding_completes() -> None:
    steps = journey(
        f"  - id: a\n    send: {SMS}\n"
        "  - id: gate\n    branch: [{when: contact.vip, goto: exit}]\n"
    )
    result = start(steps, contact={"vip": False})
    assert result.state.status is RunStatus.COMPLETED


def test_goto_exit_on_a_send_step_exits() -> None:
    steps = journey(f"  - id: a\n    send: {SMS}\n    goto: exit\n  - id: b\n    send: {SMS}\n")
    result = start(steps)
    assert sent(result) == ["a"]
    assert result.state.status is RunStatus.EXITED


# Waits that sleep ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait", "zone", "contact", "now", "until", "text"),
    [
        pytest.param("2d", "UTC", {}, NOW, NOW + timedelta(days=2), "2d", id="duration"),
        pytest.param("90m", KYIV, {}, NOW, NOW + timedelta(minutes=90), "90m", id="minutes"),
        pytest.param(
            '{until: "10:00"}', "UTC", {}, NOW, utc(2026, 3, 2, 10), "until 10:00 UTC",
            id="later-today",
        ),
        pytest.param(
            '{until: "08:00"}', "UTC", {}, NOW, utc(2026, 3, 3, 8), "until 08:00 UTC",
            id="tomorrow",
        ),
        pytest.param(
            '{until: "10:00"}', KYIV, {}, NOW, utc(2026, 3, 3, 8), f"until 10:00 {KYIV}",
            id="kyiv-winter-tomorrow",
        ),
        pytest.param(
            '{until: "12:00"}', KYIV, {}, NOW, utc(2026, 3, 2, 10), f"until 12:00 {KYIV}",
            id="kyiv-winter-today",
        ),
        # 29 March 2026: Kyiv moves from UTC+2 to UTC+3 at 03:00 local.
        pytest.param(
            '{until: "10:00"}', KYIV, {}, utc(2026, 3, 28, 12), utc(2026, 3, 29, 7),
            f"until 10:00 {KYIV}", id="kyiv-spring-forward-day",
        ),
        pytest.param(
            '{until: "03:30"}', KYIV, {}, utc(2026, 3, 28, 12), utc(2026, 3, 29, 1),
            f"until 03:30 {KYIV}", id="kyiv-skipped-time-is-the-end-of-the-gap",
        ),
        # 25 October 2026: back from UTC+3 to UTC+2 at 04:00 local; 03:30 happens twice.
        pytest.param(
            '{until: "03:30"}', KYIV, {}, utc(2026, 10, 24, 12), utc(2026, 10, 25, 0, 30),
            f"until 03:30 {KYIV}", id="kyiv-repeated-time-is-the-first",
        ),
        pytest.param(
            '{attribute: renewal, offset: -3d, at: "10:00"}', "UTC", {"renewal": "2026-03-10"},
            NOW, utc(2026, 3, 7, 10), "until renewal 3d before", id="date-before",
        ),
        pytest.param(
            '{attribute: renewal, offset: -3d, at: "10:00"}', KYIV, {"renewal": "2026-03-10"},
            NOW, utc(2026, 3, 7, 8), "until renewal 3d before", id="date-in-the-contact-zone",
        ),
        pytest.param(
            '{attribute: renewal, offset: -3d, at: "10:00"}', KYIV, {"renewal": "2026-04-01"},
            NOW, utc(2026, 3, 29, 7), "until renewal 3d before", id="date-on-dst-day",
        ),
        pytest.param(
            "{attribute: renewal, offset: 1d}", "UTC", {"renewal": "2026-03-05T18:30:00+00:00"},
            NOW, utc(2026, 3, 6), "until renewal 1d after", id="datetime-after-at-midnight",
        ),
        pytest.param(
            "{attribute: renewal}", "UTC", {"renewal": "2026-03-05"},
            NOW, utc(2026, 3, 5), "until renewal on the day", id="date-on-the-day",
        ),
    ],
)  # fmt: skip
def test_a_time_wait_sleeps_until(
    wait: str, zone: str, contact: dict[str, Any], now: datetime, until: datetime, text: str
) -> None:
    steps = journey(f"  - id: pause\n    wait: {wait}\n  - id: after\n    send: {SMS}\n")
    result = start(steps, contact=contact, zone=zone, now=now)
    assert result.state.status is RunStatus.ACTIVE
    assert result.state.position == 0
    assert result.state.waiting == Waiting(0, WaitKind.TIME, until)
    assert result.state.due_at == until
    assert result.sends == ()
    shown = f"{until:%Y-%m-%d %H:%M} UTC"
    assert result.history == (Entry("pause", "wait", f"{text} (until {shown})"),)


@pytest.mark.parametrize(
    ("wait", "zone", "contact", "now", "text"),
    [
        pytest.param(
            '{until: "09:00"}', "UTC", {}, NOW, "until 09:00 UTC: already passed, going on",
            id="time-of-day-is-now",
        ),
        pytest.param(
            '{until: "11:00"}', KYIV, {}, NOW, f"until 11:00 {KYIV}: already passed, going on",
            id="time-of-day-is-now-in-kyiv",
        ),
        pytest.param(
            '{attribute: renewal, offset: -3d, at: "10:00"}', "UTC", {"renewal": "2026-03-04"},
            NOW, "until renewal 3d before: already passed, going on", id="date-past",
        ),
        pytest.param(
            "{attribute: renewal}", "UTC", {"renewal": "2026-03-02"},
            NOW, "until renewal on the day: already passed, going on", id="date-today",
        ),
        pytest.param(
            '{attribute: renewal, offset: -3d, at: "10:00"}', "UTC", {},
            NOW, "contact.renewal is not a date (None): going on", id="date-missing",
        ),
        pytest.param(
            '{attribute: renewal, offset: -3d}', "UTC", {"renewal": "soon"},
            NOW, "contact.renewal is not a date ('soon'): going on", id="date-invalid-text",
        ),
        pytest.param(
            "{attribute: renewal}", "UTC", {"renewal": 20260310},
            NOW, "contact.renewal is not a date (20260310): going on", id="date-a-number",
        ),
        pytest.param(
            "{attribute: renewal}", "UTC", {"renewal": "2026-02-30"},
            NOW, "contact.renewal is not a date ('2026-02-30'): going on", id="date-impossible",
        ),
    ],
)  # fmt: skip
def test_a_time_wait_already_past_goes_on_at_once(
    wait: str, zone: str, contact: dict[str, Any], now: datetime, text: str
) -> None:
    steps = journey(f"  - id: pause\n    wait: {wait}\n  - id: after\n    send: {SMS}\n")
    result = start(steps, contact=contact, zone=zone, now=now)
    assert result.state.status is RunStatus.COMPLETED
    assert sent(result) == ["after"]
    assert result.history[0] == Entry("pause", "wait", text)
    assert walked(result)[1:] == [("after", "send"), (None, "completed")]


@pytest.mark.parametrize(
    "wait", ["2d", '{until: "10:00"}', '{attribute: renewal, offset: -3d, at: "10:00"}']
)
def test_a_time_wait_resumes_when_its_timer_comes(wait: str) -> None:
    steps = journey(f"  - id: pause\n    wait: {wait}\n  - id: after\n    send: {SMS}\n")
    contact = {"renewal": "2026-03-10"}
    state = carried(start(steps, contact=contact, zone=KYIV))
    due = state.due_at
    assert due is not None
    result = wake(steps, state, Timer(), due, contact=contact, zone=KYIV)
    assert result.history[0] == Entry("pause", "resume", f"waited until {due:%Y-%m-%d %H:%M} UTC")
    assert sent(result) == ["after"]
    assert result.state.status is RunStatus.COMPLETED
    later = due + timedelta(hours=5)
    late = wake(steps, state, Timer(), later, contact=contact, zone=KYIV)
    assert walked(late) == walked(result)
    assert late.state.outcomes["after"]["sent_at"] == later.isoformat()


# A wake that must not move the run ---------------------------------------------------------

BEFORE_THE_SEND = f"  - id: offer\n    send: {VIBER}\n"


@pytest.mark.parametrize(
    ("steps", "sends"),
    [
        pytest.param("  - id: pause\n    wait: 2d\n", {}, id="duration"),
        pytest.param('  - id: pause\n    wait: {until: "10:00"}\n', {}, id="time-of-day"),
        pytest.param(
            '  - id: pause\n    wait: {attribute: renewal, offset: -3d, at: "10:00"}\n',
            {},
            id="date",
        ),
        pytest.param(
            "  - id: pause\n    wait: {event: card_issued, timeout: 3d}\n", {}, id="event"
        ),
        pytest.param(
            BEFORE_THE_SEND + "  - id: pause\n    wait: {send: offer, timeout: 1d}\n",
            {ntf("offer"): notification("delivered", final=False)},
            id="send-running",
        ),
    ],
)
def test_a_timer_before_the_wait_is_due_leaves_the_state_unchanged(
    steps: str, sends: Sends
) -> None:
    # The worker relies on this: a wake that comes early must put the run back to sleep.
    definition = journey(steps + f"  - id: after\n    send: {SMS}\n")
    contact = {"renewal": "2026-03-10"}
    state = carried(start(definition, contact=contact, zone=KYIV))
    due = state.due_at
    assert due is not None
    for early in (NOW, NOW + SECOND, due - SECOND):
        result = wake(definition, state, Timer(), early, contact=contact, sends=sends, zone=KYIV)
        assert result == Advance(state)


def test_a_send_wait_without_a_timeout_sleeps_until_the_cascade_ends() -> None:
    steps = journey(BEFORE_THE_SEND + "  - id: pause\n    wait: {send: offer}\n")
    state = carried(start(steps))
    assert state.waiting == Waiting(1, WaitKind.SEND, None, send="offer")
    running = {ntf("offer"): notification("sent", final=False)}
    assert wake(steps, state, Timer(), NOW + timedelta(days=365), sends=running) == Advance(state)
    ended = {ntf("offer"): notification("sent", final=True)}
    result = wake(steps, state, Timer(), NOW + timedelta(days=365), sends=ended)
    assert result.state.status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    "what",
    [
        pytest.param(Start(), id="start-again"),
        pytest.param(EventSeen("card_issued", {}, NOW), id="event-while-sleeping"),
    ],
)
def test_a_waiting_run_ignores_a_wake_that_is_not_for_it(what: Wake) -> None:
    steps = journey("  - id: pause\n    wait: 2d\n")
    state = start(steps).state
    assert wake(steps, state, what, NOW + timedelta(days=3)) == Advance(state)


@pytest.mark.parametrize(
    "what", [Timer(), EventSeen("card_issued", {}, NOW)], ids=["timer", "event"]
)
def test_a_run_not_started_is_moved_only_by_its_start(what: Wake) -> None:
    steps = journey(f"  - id: a\n    send: {SMS}\n")
    assert wake(steps, RunState(), what, NOW) == Advance(RunState())


# Waiting for an event ------------------------------------------------------------------------

EVENT_JOURNEY = (
    f"  - id: offer\n    send: {SMS}\n"
    "  - id: paid\n"
    '    wait: {event: card_issued, where: payload.product == "credit_card", timeout: 3d}\n'
    "  - branch:\n      - when: steps.paid.received\n        goto: thanks\n"
    f"  - id: reminder\n    send: {SMS}\n"
    "  - exit: reminded\n"
    f"  - id: thanks\n    send: {SMS}\n"
)
TIMEOUT = NOW + timedelta(days=3)


def test_an_event_wait_sleeps_until_its_timeout() -> None:
    result = start(journey(EVENT_JOURNEY))
    assert result.state.waiting == Waiting(1, WaitKind.EVENT, TIMEOUT, event="card_issued")
    assert result.history[-1] == Entry(
        "paid", "wait", "waiting for card_issued until 2026-03-05 09:00 UTC"
    )


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        pytest.param("loan_repaid", {"product": "credit_card"}, id="another-type"),
        pytest.param("card_issued", {"product": "debit_card"}, id="where-false"),
        pytest.param("card_issued", {}, id="where-reads-missing"),
        pytest.param("Card_Issued", {"product": "credit_card"}, id="type-is-exact"),
    ],
)
def test_an_event_that_does_not_match_does_nothing(event: str, payload: dict[str, Any]) -> None:
    steps = journey(EVENT_JOURNEY)
    state = carried(start(steps))
    at = NOW + timedelta(hours=5)
    assert wake(steps, state, EventSeen(event, payload, at), at) == Advance(state)


def test_a_matching_event_resumes_the_run_with_received() -> None:
    steps = journey(EVENT_JOURNEY)
    state = carried(start(steps))
    at = NOW + timedelta(hours=5)
    payload = {"product": "credit_card", "limit": 50_000}
    result = wake(steps, state, EventSeen("card_issued", payload, at, "iss-1"), at)
    assert result.state.outcomes["paid"] == {
        "received": True,
        "timed_out": False,
        "event": {
            "type": "card_issued",
            "id": "iss-1",
            "payload": payload,
            "occurred_at": at.isoformat(),
        },
    }
    assert result.history[0] == Entry("paid", "resume", "card_issued event received")
    assert sent(result) == ["thanks"]
    assert result.state.status is RunStatus.COMPLETED


def test_an_event_where_may_read_the_contact_and_earlier_steps() -> None:
    steps = journey(
        f"  - id: offer\n    send: {VIBER}\n"
        "  - id: paid\n    wait:\n      event: card_issued\n"
        "      where: payload.limit >= contact.min_limit and steps.offer.seen\n"
        "      timeout: 3d\n"
        f"  - id: thanks\n    send: {SMS}\n"
    )
    contact = {"min_limit": 10_000}
    state = carried(start(steps, contact=contact))
    at = NOW + timedelta(hours=5)
    event = EventSeen("card_issued", {"limit": 20_000}, at)
    unseen = {ntf("offer"): notification("delivered", final=False)}
    seen = {ntf("offer"): notification("seen", final=True)}
    assert wake(steps, state, event, at, contact=contact, sends=unseen) == Advance(state)
    result = wake(steps, state, event, at, contact=contact, sends=seen)
    assert sent(result) == ["thanks"]


def test_no_event_before_the_timeout_resumes_with_timed_out() -> None:
    steps = journey(EVENT_JOURNEY)
    state = carried(start(steps))
    assert wake(steps, state, Timer(), TIMEOUT - SECOND) == Advance(state)
    result = wake(steps, state, Timer(), TIMEOUT)
    assert result.state.outcomes["paid"] == {"received": False, "timed_out": True}
    assert result.history[0] == Entry("paid", "resume", "no card_issued event before the timeout")
    assert sent(result) == ["reminder"]
    assert result.state.status is RunStatus.EXITED
    assert result.history[-1] == Entry("step-5", "exited", "exit: reminded")


def test_an_event_after_the_timeout_does_not_count_as_received() -> None:
    steps = journey(EVENT_JOURNEY)
    state = carried(start(steps))
    late = TIMEOUT + timedelta(minutes=10)
    result = wake(steps, state, EventSeen("card_issued", {"product": "credit_card"}, late), late)
    assert result.state.outcomes.get("paid", {}).get("received") is not True


# Waiting for a send ----------------------------------------------------------------------------

SEND_JOURNEY = (
    f"  - id: viber_offer\n    send: {VIBER}\n"
    "  - id: settled\n    wait: {send: viber_offer, timeout: 2d}\n"
    "  - id: route\n    branch:\n"
    "      - when: steps.viber_offer.seen and not steps.viber_offer.clicked\n"
    "        goto: nudge\n"
    "      - else: exit\n"
    f"  - id: nudge\n    send: {SMS}\n"
)


def test_a_send_wait_after_its_send_in_the_same_advance_waits() -> None:
    result = start(journey(SEND_JOURNEY))
    assert sent(result) == ["viber_offer"]
    assert result.state.waiting == Waiting(
        1, WaitKind.SEND, NOW + timedelta(days=2), send="viber_offer"
    )
    assert result.history[-1] == Entry(
        "settled", "wait", "waiting for 'viber_offer' (at most until 2026-03-04 09:00 UTC)"
    )


@pytest.mark.parametrize(
    ("after", "status", "final", "history", "sends", "ended", "timed_out"),
    [
        pytest.param(
            timedelta(hours=1), "delivered", False, None, [], None, None, id="running-stays",
        ),
        pytest.param(
            timedelta(days=2) - SECOND, "sent", False, None, [], None, None,
            id="running-just-before-timeout",
        ),
        pytest.param(
            timedelta(hours=3), "seen", True,
            "the cascade of 'viber_offer' ended", ["nudge"], RunStatus.COMPLETED, None,
            id="ended-seen",
        ),
        pytest.param(
            timedelta(hours=3), "clicked", True,
            "the cascade of 'viber_offer' ended", [], RunStatus.EXITED, None,
            id="ended-clicked",
        ),
        pytest.param(
            timedelta(hours=3), "failed", True,
            "the cascade of 'viber_offer' ended", [], RunStatus.EXITED, None,
            id="ended-failed",
        ),
        pytest.param(
            timedelta(days=2), "seen", False,
            "the cascade of 'viber_offer' still running at timeout", ["nudge"],
            RunStatus.COMPLETED, True, id="timeout",
        ),
        pytest.param(
            timedelta(days=2), "seen", True,
            "the cascade of 'viber_offer' ended", ["nudge"], RunStatus.COMPLETED, None,
            id="ended-at-the-timeout",
        ),
    ],
)  # fmt: skip
def test_a_send_wait_on_its_timer(
    after: timedelta,
    status: str,
    final: bool,
    history: str | None,
    sends: list[str],
    ended: RunStatus | None,
    timed_out: bool | None,
) -> None:
    steps = journey(SEND_JOURNEY)
    state = carried(start(steps))
    known = {ntf("viber_offer"): notification(status, final=final)}
    result = wake(steps, state, Timer(), NOW + after, sends=known)
    if history is None:
        assert result == Advance(state)
        return
    assert result.history[0] == Entry("settled", "resume", history)
    assert sent(result) == sends
    assert result.state.status is ended
    assert result.state.outcomes.get("settled", {}).get("timed_out") is timed_out


def test_a_send_wait_whose_cascade_already_ended_goes_on_at_once() -> None:
    steps = journey(
        f"  - id: viber_offer\n    send: {VIBER}\n  - wait: 1h\n"
        "  - id: settled\n    wait: {send: viber_offer, timeout: 2d}\n"
        f"  - id: nudge\n    send: {SMS}\n"
    )
    state = carried(start(steps))
    known = {ntf("viber_offer"): notification("seen", final=True)}
    result = wake(steps, state, Timer(), NOW + timedelta(hours=1), sends=known)
    assert result.history[1] == Entry(
        "settled", "wait", "the cascade of 'viber_offer' has already ended: going on"
    )
    assert sent(result) == ["nudge"]
    assert result.state.status is RunStatus.COMPLETED


def test_a_send_wait_whose_cascade_is_still_running_waits_from_when_it_is_reached() -> None:
    steps = journey(
        f"  - id: viber_offer\n    send: {VIBER}\n  - wait: 1h\n"
        "  - id: settled\n    wait: {send: viber_offer, timeout: 2d}\n"
    )
    state = carried(start(steps))
    known = {ntf("viber_offer"): notification("delivered", final=False)}
    result = wake(steps, state, Timer(), NOW + timedelta(hours=1), sends=known)
    until = NOW + timedelta(hours=1, days=2)
    assert result.state.waiting == Waiting(2, WaitKind.SEND, until, send="viber_offer")


# Branches ----------------------------------------------------------------------------------------

BRANCH_JOURNEY = (
    f"  - id: viber_offer\n    send: {VIBER}\n"
    "  - id: settled\n    wait: {send: viber_offer, timeout: 1d}\n"
    "  - id: route\n    branch:\n"
    "      - when: steps.viber_offer.clicked\n        goto: thanks\n"
    "      - when: steps.viber_offer.seen\n        goto: nudge\n"
    "      - when: contact.vip == true\n        goto: call\n"
    "      - else: exit\n"
    "  - id: thanks\n    exit: thanked\n"
    "  - id: nudge\n    exit: nudged\n"
    "  - id: call\n    exit: called\n"
)


@pytest.mark.parametrize(
    ("status", "vip", "last"),
    [
        pytest.param("clicked", True, Entry("thanks", "exited", "exit: thanked"), id="first-wins"),
        pytest.param("seen", True, Entry("nudge", "exited", "exit: nudged"), id="second"),
        pytest.param("delivered", True, Entry("call", "exited", "exit: called"), id="contact"),
        pytest.param("failed", True, Entry("call", "exited", "exit: called"), id="failed-vip"),
        pytest.param("delivered", False, Entry("route", "exited", "exit"), id="else-exit"),
        pytest.param("delivered", None, Entry("route", "exited", "exit"), id="missing-attr"),
    ],
)
def test_a_branch_takes_the_first_case_that_holds(
    status: str, vip: bool | None, last: Entry
) -> None:
    steps = journey(BRANCH_JOURNEY)
    contact = {} if vip is None else {"vip": vip}
    state = carried(start(steps, contact=contact))
    known = {ntf("viber_offer"): notification(status, final=True)}
    result = wake(steps, state, Timer(), NOW + timedelta(hours=2), contact=contact, sends=known)
    assert result.state.status is RunStatus.EXITED
    assert result.history[-1] == last


def test_a_branch_right_after_a_send_sees_it_queued_not_seen() -> None:
    # A send only queues a notification; a branch must wait for it to learn how it went.
    steps = journey(
        f"  - id: viber_offer\n    send: {VIBER}\n"
        "  - branch:\n      - when: steps.viber_offer.seen\n        goto: exit\n"
        '      - when: steps.viber_offer.status == "queued"\n        goto: queued\n'
        "  - exit: other\n"
        "  - id: queued\n    exit: queued\n"
    )
    assert start(steps).history[-1] == Entry("queued", "exited", "exit: queued")


@pytest.mark.parametrize(("tier", "reason"), [("silver", "gold"), ("gold", "gold")])
def test_an_update_is_seen_by_later_conditions_in_the_same_advance(tier: str, reason: str) -> None:
    steps = journey(
        "  - id: tag\n    update: {attributes: {tier: gold}}\n"
        '  - id: route\n    branch:\n      - when: contact.tier == "gold"\n        goto: gold\n'
        "  - id: plain\n    exit: plain\n"
        "  - id: gold\n    exit: gold\n"
    )
    ctx = context(contact={"tier": tier})
    result = advance(steps, RunState(), Start(), ctx, NOW)
    assert result.history[-1] == Entry("gold", "exited", f"exit: {reason}")
    assert ctx.scope["contact"]["tier"] == tier


def test_an_update_after_a_wait_is_seen_after_the_wait_only_through_the_contact() -> None:
    # Across advances the caller reloads the contact, with the update applied.
    steps = journey(
        "  - id: tag\n    update: {attributes: {tier: gold}}\n  - wait: 1d\n"
        '  - id: route\n    branch:\n      - when: contact.tier == "gold"\n        goto: gold\n'
        "  - id: plain\n    exit: plain\n"
        "  - id: gold\n    exit: gold\n"
    )
    first = start(steps, contact={"tier": "silver"})
    assert first.updates == (Update({"tier": "gold"}),)
    later = NOW + timedelta(days=1)
    reloaded = wake(steps, carried(first), Timer(), later, contact={"tier": "gold"})
    assert reloaded.history[-1] == Entry("gold", "exited", "exit: gold")


# Splits ------------------------------------------------------------------------------------------

SPLIT_JOURNEY = (
    "  - id: ab\n    split:\n"
    "      - {variant: A, weight: 50}\n"
    "      - {variant: B, weight: 50, goto: b_side}\n"
    "      - {variant: paused, weight: 0, goto: exit}\n"
    "  - branch:\n      - when: CONDITION\n        goto: b_side\n"
    "  - id: a_side\n    exit: A\n"
    "  - id: b_side\n    exit: B\n"
)
CONTACTS = [f"c-{n}" for n in range(40)]


def variant_of(contact_id: str) -> str:
    variants = [("A", 50), ("B", 50), ("paused", 0)]
    return choose_variant(variants, contact_id=contact_id, journey_id=JOURNEY, split_id="ab")


@pytest.mark.parametrize("contact_id", CONTACTS)
def test_a_split_is_sticky_and_recorded(contact_id: str) -> None:
    steps = journey(SPLIT_JOURNEY.replace("CONDITION", "contact.never_set == true"))
    expected = variant_of(contact_id)
    results = [start(steps, contact_id=contact_id, now=NOW + timedelta(days=d)) for d in (0, 9)]
    for result in results:
        assert result.state.variant == expected
        assert result.state.outcomes["ab"] == {"variant": expected}
        target = "'step-2'" if expected == "A" else "'b_side'"
        assert result.history[0] == Entry("ab", "split", f"variant {expected} → {target}")
        assert result.history[-1] == Entry(
            f"{expected.lower()}_side", "exited", f"exit: {expected}"
        )


def test_a_split_sends_contacts_both_ways_and_never_to_a_paused_variant() -> None:
    assert {variant_of(c) for c in CONTACTS} == {"A", "B"}


@pytest.mark.parametrize("condition", ['steps.ab.variant == "A"', 'run.variant == "A"'])
@pytest.mark.parametrize("contact_id", CONTACTS[:10])
def test_the_variant_is_readable_later_in_the_same_advance(condition: str, contact_id: str) -> None:
    # Variant A falls through to the branch, which sends it to b_side when it reads "A".
    steps = journey(SPLIT_JOURNEY.replace("CONDITION", condition))
    result = start(steps, contact_id=contact_id)
    assert result.history[-1].text == "exit: B"


# Ending a run ------------------------------------------------------------------------------------


def waiting_state() -> RunState:
    return carried(start(journey(EVENT_JOURNEY)))


@pytest.mark.parametrize(
    ("status", "why", "step"),
    [
        (RunStatus.CONVERTED, "goal reached: card_issued event (last message: offer)", "offer"),
        (RunStatus.CONVERTED, "goal reached: card_issued event", None),
        (RunStatus.EXITED, "exit on loan_repaid event", None),
        (RunStatus.EXITED, "journey archived", None),
    ],
)
def test_end_run_ends_an_active_run(status: RunStatus, why: str, step: str | None) -> None:
    state = replace(waiting_state(), variant="A")
    result = end_run(state, status, why, step=step)
    assert result.state == replace(state, status=status, position=None, waiting=None)
    assert result.state.due_at is None
    assert result.history == (Entry(step, status.value, why),)
    assert result.sends == ()
    assert result.updates == ()


FINISHED = [
    RunState(RunStatus.COMPLETED, None),
    RunState(RunStatus.EXITED, None, variant="B"),
    RunState(RunStatus.CONVERTED, None, outcomes={"a": {"final": True}}),
    RunState(RunStatus.FAILED, None),
]


@pytest.mark.parametrize("state", FINISHED, ids=lambda s: s.status.value)
@pytest.mark.parametrize("status", [RunStatus.CONVERTED, RunStatus.EXITED])
def test_end_run_leaves_a_finished_run_alone(state: RunState, status: RunStatus) -> None:
    assert end_run(state, status, "too late") == Advance(state)


@pytest.mark.parametrize("state", FINISHED, ids=lambda s: s.status.value)
@pytest.mark.parametrize(
    "what",
    [Start(), Timer(), EventSeen("card_issued", {"product": "credit_card"}, NOW)],
    ids=["start", "timer", "event"],
)
def test_advance_leaves_a_finished_run_alone(state: RunState, what: Wake) -> None:
    steps = journey(EVENT_JOURNEY)
    assert wake(steps, state, what, NOW + timedelta(days=30)) == Advance(state)


def test_a_run_ended_while_waiting_ignores_its_timer() -> None:
    steps = journey(EVENT_JOURNEY)
    ended = end_run(waiting_state(), RunStatus.CONVERTED, "goal reached").state
    assert wake(steps, ended, Timer(), TIMEOUT) == Advance(ended)


# The last message, which a conversion is counted against ----------------------------------------

LAST_SEND_JOURNEY = (
    f"  - id: email_offer\n    send: {EMAIL}\n"
    "  - wait: 2d\n"
    f"  - id: viber_offer\n    send: {VIBER}\n"
    "  - wait: 1d\n"
)


@pytest.mark.parametrize(
    ("steps", "timers", "expected"),
    [
        pytest.param("  - wait: 1d\n", 0, None, id="nothing-sent"),
        pytest.param(LAST_SEND_JOURNEY, 0, "email_offer", id="one-sent"),
        pytest.param(LAST_SEND_JOURNEY, 1, "viber_offer", id="the-later-advance"),
    ],
)
def test_last_send_is_the_send_that_went_out_last(
    steps: str, timers: int, expected: str | None
) -> None:
    definition = journey(steps)
    state = carried(start(definition))
    at = NOW
    for _ in range(timers):
        at = (state.due_at or at) + timedelta(microseconds=500_000)
        state = carried(wake(definition, state, Timer(), at))
    assert last_send(state) == expected
    ended = end_run(state, RunStatus.CONVERTED, "goal reached", step=last_send(state))
    assert last_send(ended.state) == expected
    assert ended.history == (Entry(expected, "converted", "goal reached"),)


def test_last_send_of_two_sends_in_one_advance_is_the_later_one() -> None:
    steps = journey(
        f"  - id: sms_offer\n    send: {SMS}\n"
        f"  - id: email_offer\n    send: {EMAIL}\n"
        "  - wait: 1d\n"
    )
    result = start(steps)
    assert sent(result) == ["sms_offer", "email_offer"]
    assert last_send(result.state) == "email_offer"


# A whole journey -----------------------------------------------------------------------------


def test_a_journey_from_start_to_end() -> None:
    steps = journey(
        f"  - id: email_offer\n    send: {EMAIL}\n"
        "  - wait: 2d\n"
        f"  - id: viber_offer\n    send: {VIBER}\n"
        "  - id: settled\n    wait: {send: viber_offer, timeout: 1d}\n"
        "  - branch:\n"
        "      - when: steps.viber_offer.seen and not steps.viber_offer.clicked\n"
        "        goto: sms_deadline\n"
        "      - else: exit\n"
        '  - id: sms_deadline\n    wait: {until: "10:00"}\n'
        f"  - id: last_call\n    send: {SMS}\n"
    )
    zone = KYIV
    first = start(steps, zone=zone)
    assert sent(first) == ["email_offer"]
    state = carried(first)
    second = wake(steps, state, Timer(), NOW + timedelta(days=2), zone=zone)
    assert sent(second) == ["viber_offer"]
    state = carried(second)
    seen = {ntf("viber_offer"): notification("seen", final=True)}
    third_at = NOW + timedelta(days=2, hours=3)  # Wednesday 14:00 in Kyiv
    third = wake(steps, state, Timer(), third_at, sends=seen, zone=zone)
    assert walked(third) == [("settled", "resume"), ("step-5", "branch"), ("sms_deadline", "wait")]
    state = carried(third)
    assert state.due_at == utc(2026, 3, 5, 8)  # Thursday 10:00 in Kyiv
    fourth = wake(steps, state, Timer(), utc(2026, 3, 5, 8), sends=seen, zone=zone)
    assert sent(fourth) == ["last_call"]
    assert fourth.state.status is RunStatus.COMPLETED
    assert fourth.state.outcomes["viber_offer"]["notification"] == ntf("viber_offer")
