"""Property tests: random linear journeys woken by random timers and events.

Whatever wakes it and whenever, a run stands in one place, never gets past a wait before the
wait is over, ends exactly once, and sends each send step it passes exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kaskad.domain.journeys.definition import load_definition
from kaskad.domain.journeys.runs import (
    Advance,
    Context,
    EventSeen,
    RunState,
    RunStatus,
    Start,
    Timer,
    WaitKind,
    Wake,
    advance,
    end_run,
)
from kaskad.domain.journeys.steps import JourneyStep, SendStep, WaitStep

HEAD = "id: prop\nname: Prop\ntrigger: {api: true}\nsteps:\n"
SMS = "{category: service, cascade: [{channel: sms, content: {text: hi}}]}"
# Late March: Kyiv and the rest of Europe move their clocks on the 29th, inside most runs.
T0 = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)
ENDINGS = {status.value for status in RunStatus if status is not RunStatus.ACTIVE}
TAKEN = {"send", "update", "wait"}

# -- random journeys -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """A linear journey as written, and how its notifications will turn out."""

    yaml: str
    zone: str
    final_after: Mapping[str, int | None]  # seconds after it is sent; None: never final


def _step(kind: str, index: int, earlier_sends: list[str], draw: st.DrawFn) -> str:
    step_id = f"s{index}"
    if kind == "send":
        return f"  - id: {step_id}\n    send: {SMS}\n"
    if kind == "update":
        value = draw(st.integers(0, 9))
        return f"  - id: {step_id}\n    update: {{attributes: {{score: {value}}}}}\n"
    if kind == "duration":
        minutes = draw(st.integers(1, 3 * 24 * 60))
        return f"  - id: {step_id}\n    wait: {minutes}m\n"
    if kind == "time":
        hour, minute = draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 59]))
        return f'  - id: {step_id}\n    wait: {{until: "{hour:02d}:{minute:02d}"}}\n'
    if kind == "event":
        hours = draw(st.integers(1, 72))
        return (
            f"  - id: {step_id}\n"
            f"    wait: {{event: paid, where: payload.ok == true, timeout: {hours}h}}\n"
        )
    if not earlier_sends:
        return f"  - id: {step_id}\n    wait: 1h\n"
    send_id = draw(st.sampled_from(earlier_sends))
    timeout = draw(st.sampled_from(["", ", timeout: 1h", ", timeout: 1d"]))
    return f"  - id: {step_id}\n    wait: {{send: {send_id}{timeout}}}\n"


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    kinds = draw(
        st.lists(
            st.sampled_from(["send", "update", "duration", "time", "event", "send_wait"]),
            min_size=1,
            max_size=10,
        )
    )
    lines: list[str] = []
    sends: list[str] = []
    for index, kind in enumerate(kinds):
        lines.append(_step(kind, index, sends, draw))
        if kind == "send":
            sends.append(f"s{index}")
    final_after = {
        send_id: draw(st.one_of(st.none(), st.integers(0, 600), st.integers(0, 2 * 86400)))
        for send_id in sends
    }
    zone = draw(st.sampled_from(["UTC", "Europe/Kyiv", "America/New_York", "Asia/Kolkata"]))
    return Plan("".join(lines), zone, final_after)


@dataclass(frozen=True, slots=True)
class Nudge:
    """One thing that happens to the run, ``after`` seconds after the previous one."""

    kind: str  # timer | due | event | goal
    after: int
    event: str = "paid"
    ok: bool = True


@st.composite
def nudges(draw: st.DrawFn) -> Nudge:
    # Mostly timers, some events, and now and then the goal that ends the run from outside.
    kind = draw(st.sampled_from(["timer"] * 3 + ["due"] * 3 + ["event"] * 3 + ["goal"]))
    if kind == "due":
        return Nudge(kind, draw(st.integers(0, 5)))
    if kind == "event":
        event = draw(st.sampled_from(["paid", "paid", "other"]))
        return Nudge(kind, draw(st.integers(1, 86400)), event, draw(st.booleans()))
    return Nudge(kind, draw(st.integers(1, 2 * 86400)))


histories = st.lists(nudges(), max_size=25)


# -- the caller, as services.runs plays it --------------------------------------------------------


class World:
    """What the caller knows: when each notification was created and when its cascade ends."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.sent_at: dict[str, datetime] = {}

    def sends(self, at: datetime) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for step_id, sent in self.sent_at.items():
            after = self.plan.final_after[step_id]
            final = after is not None and at >= sent + timedelta(seconds=after)
            status = "delivered" if final else "sent"
            out[f"ntf-{step_id}"] = {
                "status": status,
                "final": final,
                "failed": False,
                "sent": True,
                "delivered": final,
                "seen": False,
                "clicked": False,
            }
        return out

    def context(self, state: RunState, at: datetime) -> Context:
        known = self.sends(at)
        steps = {
            step_id: dict(outcome) | known.get(outcome.get("notification", ""), {})
            for step_id, outcome in state.outcomes.items()
        }
        scope = {"contact": {"score": 0}, "event": {}, "payload": {}, "steps": steps, "run": {}}
        return Context("prop", "c-1", self.plan.zone, scope)

    def ended(self, send_id: str | None, at: datetime) -> bool:
        return bool(self.sends(at).get(f"ntf-{send_id}", {}).get("final"))

    def carry_out(self, result: Advance, at: datetime) -> RunState:
        outcomes = {k: dict(v) for k, v in result.state.outcomes.items()}
        for send in result.sends:
            assert send.step.id not in self.sent_at, f"{send.step.id} sent twice"
            self.sent_at[send.step.id] = at
            outcomes.setdefault(send.step.id, {})["notification"] = f"ntf-{send.step.id}"
        return replace(result.state, outcomes=outcomes)


def _wake(nudge: Nudge, at: datetime) -> Wake:
    if nudge.kind == "event":
        return EventSeen(nudge.event, {"ok": nudge.ok}, at)
    return Timer()


# -- the invariants ----------------------------------------------------------------------------


def _in_one_place(steps: tuple[JourneyStep, ...], state: RunState) -> None:
    position, waiting = state.position, state.waiting
    assert position is None or 0 <= position < len(steps)
    if state.finished:
        assert position is None
        assert waiting is None
        assert state.due_at is None
        return
    # A linear journey always stops at a wait while it is active.
    assert waiting is not None
    assert position == waiting.step
    assert isinstance(steps[position], WaitStep)


def _left_the_wait_fairly(
    before: RunState, wake: Wake, at: datetime, world: World, result: Advance
) -> None:
    """A run may leave its wait only once what it waits for has happened."""
    waiting = before.waiting
    assert waiting is not None
    due = waiting.until is not None and at >= waiting.until
    moved = result != Advance(before)
    if isinstance(wake, EventSeen):
        matches = waiting.kind is WaitKind.EVENT and wake.type == waiting.event
        # An awaited event that comes after the timeout settles the wait as timed out.
        assert moved == (matches and (wake.payload["ok"] or due))
        return
    if waiting.kind is WaitKind.SEND:
        assert moved == (due or world.ended(waiting.send, at))
    else:
        assert moved == due
    if moved:
        assert result.history[0].kind == "resume"
        assert result.history[0].step == f"s{waiting.step}"


def _walk(plan: Plan, story: list[Nudge]) -> tuple[tuple[JourneyStep, ...], list[Advance]]:
    """Start the run, then apply every nudge; checks what must hold after each advance."""
    steps = load_definition(HEAD + plan.yaml).steps
    world = World(plan)
    first = advance(steps, RunState(), Start(), world.context(RunState(), T0), T0)
    results = [first]
    state = world.carry_out(first, T0)
    _in_one_place(steps, state)
    at = T0
    for nudge in story:
        if nudge.kind == "due" and state.due_at is not None and state.due_at > at:
            at = state.due_at + timedelta(seconds=nudge.after)
        else:
            at += timedelta(seconds=max(nudge.after, 1))
        before = state
        if nudge.kind == "goal":
            result = end_run(before, RunStatus.CONVERTED, "goal reached")
        else:
            wake = _wake(nudge, at)
            result = advance(steps, before, wake, world.context(before, at), at)
            if not before.finished:
                _left_the_wait_fairly(before, wake, at, world, result)
        if before.finished:
            assert result == Advance(before)
        results.append(result)
        state = world.carry_out(result, at)
        _in_one_place(steps, state)
    return steps, results


# -- the properties ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(plans(), histories)
def test_a_run_stands_in_one_place_and_waits_its_waits(plan: Plan, story: list[Nudge]) -> None:
    # The checks are inside the walk, after every single advance.
    _walk(plan, story)


@settings(max_examples=300, deadline=None)
@given(plans(), histories)
def test_a_run_takes_its_steps_in_order_without_skipping_any(
    plan: Plan, story: list[Nudge]
) -> None:
    steps, results = _walk(plan, story)
    taken = [e.step for r in results for e in r.history if e.kind in TAKEN]
    assert taken == [step.id for step in steps[: len(taken)]]
    resumed = [e.step for r in results for e in r.history if e.kind == "resume"]
    slept = [
        e.step
        for r in results
        for e in r.history
        if e.kind == "wait" and not e.text.endswith("going on")
    ]
    # Every wait the run slept at, it left through a resume (or it still sleeps, or it ended).
    assert resumed == slept[: len(resumed)]
    assert len(slept) - len(resumed) <= 1


@settings(max_examples=300, deadline=None)
@given(plans(), histories)
def test_a_run_ends_exactly_once(plan: Plan, story: list[Nudge]) -> None:
    _, results = _walk(plan, story)
    endings = [(i, e) for i, r in enumerate(results) for e in r.history if e.kind in ENDINGS]
    final = results[-1].state
    assert len(endings) == (1 if final.finished else 0)
    if endings:
        index, entry = endings[0]
        assert entry.kind == final.status.value
        assert results[index].history[-1] == entry  # the ending is the last word
        assert all(r.history == () and r.sends == () for r in results[index + 1 :])
        assert all(r.state.status is final.status for r in results[index:])


@settings(max_examples=300, deadline=None)
@given(plans(), histories)
def test_each_send_step_passed_is_sent_once(plan: Plan, story: list[Nudge]) -> None:
    steps, results = _walk(plan, story)
    sent = [send.step.id for r in results for send in r.sends]
    passed = [e.step for r in results for e in r.history if e.kind == "send"]
    assert sent == passed
    # In a linear journey the steps taken are a prefix of the list (see the test above).
    reached = len([e for r in results for e in r.history if e.kind in TAKEN])
    assert sent == [step.id for step in steps[:reached] if isinstance(step, SendStep)]
    if results[-1].state.status is RunStatus.COMPLETED:
        assert sent == [step.id for step in steps if isinstance(step, SendStep)]


@settings(max_examples=300, deadline=None)
@given(plans())
def test_a_run_left_alone_until_each_due_time_completes(plan: Plan) -> None:
    """With every notification final at once and each timer honoured, the run completes."""
    plan = replace(plan, final_after=dict.fromkeys(plan.final_after, 0))
    steps = load_definition(HEAD + plan.yaml).steps
    world = World(plan)
    result = advance(steps, RunState(), Start(), world.context(RunState(), T0), T0)
    state, at = world.carry_out(result, T0), T0
    for _ in range(len(steps) + 1):
        if state.finished:
            break
        at = max(at, state.due_at or at) + timedelta(seconds=1)
        result = advance(steps, state, Timer(), world.context(state, at), at)
        state = world.carry_out(result, at)
    assert state.status is RunStatus.COMPLETED
    assert len(world.sent_at) == sum(isinstance(step, SendStep) for step in steps)


@settings(max_examples=200, deadline=None)
@given(
    st.text(min_size=0, max_size=20),
    st.lists(st.integers(0, 100), min_size=1, max_size=4).filter(any),
)
def test_a_split_is_sticky_for_any_contact(contact_id: str, weights: list[int]) -> None:
    variants = ", ".join(f"{{variant: v{i}, weight: {w}}}" for i, w in enumerate(weights))
    steps = load_definition(HEAD + f"  - id: ab\n    split: [{variants}]\n  - wait: 1d\n").steps
    context = Context("prop", contact_id, "UTC", {"contact": {}, "steps": {}})
    chosen = {
        advance(steps, RunState(), Start(), context, T0 + timedelta(days=d)).state.variant
        for d in range(3)
    }
    assert len(chosen) == 1
    (name,) = chosen
    assert name is not None
    assert weights[int(name[1:])] > 0
