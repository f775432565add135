"""Property tests: random cascades, random contacts and random event sequences.

Whatever happens, the state machine must only move forward, send each step at most once,
have at most one step in flight, and finish at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from kaskad.domain.cascades import (
    Cascade,
    CascadeState,
    CascadeStatus,
    DecisionKind,
    SendStep,
    Step,
    SupersedeStep,
    Transition,
)
from kaskad.domain.contacts import Reachability
from kaskad.domain.vocabulary import Category, Channel, MessageStatus, Until

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FINAL = {DecisionKind.COMPLETE, DecisionKind.FAIL}
GOALS = {
    Until.SENT: [
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.SEEN,
        MessageStatus.CLICKED,
    ],
    Until.DELIVERED: [MessageStatus.DELIVERED, MessageStatus.SEEN, MessageStatus.CLICKED],
    Until.SEEN: [MessageStatus.SEEN, MessageStatus.CLICKED],
    Until.CLICKED: [MessageStatus.CLICKED],
}

channels = st.sampled_from(list(Channel))
categories = st.sampled_from(list(Category))
statuses = st.sampled_from(list(MessageStatus))

steps = st.builds(
    Step,
    channel=channels,
    content=st.just({"text": "hello"}),
    until=st.sampled_from(list(Until)),
    timeout=st.integers(1, 3 * 86400).map(lambda s: timedelta(seconds=s)),
)

consents = st.dictionaries(
    st.sampled_from([*(c.value for c in Channel), "*"]),
    st.dictionaries(
        st.sampled_from([*(c.value for c in Category), "*"]), st.booleans(), max_size=3
    ),
    max_size=4,
)

contacts = st.builds(
    Reachability,
    phone=st.sampled_from([None, "+380671234567"]),
    email=st.sampled_from([None, "anna@example.com"]),
    push_tokens=st.sampled_from([(), ("push-token",)]),
    consents=consents,
    erased=st.sampled_from([False, False, False, True]),
)

cascades = st.builds(
    Cascade, steps=st.lists(steps, min_size=1, max_size=5), category=categories, contact=contacts
)


@dataclass(frozen=True)
class Report:
    step: int
    status: MessageStatus
    wait: timedelta


@dataclass(frozen=True)
class Timeout:
    wait: timedelta


@dataclass(frozen=True)
class TimeoutAtDue:
    """A timer that fires exactly when (or a bit after) the current step is due."""

    extra: timedelta


waits = st.integers(0, 2 * 86400).map(lambda s: timedelta(seconds=s)) | st.integers(
    0, 2_000_000
).map(lambda us: timedelta(microseconds=us))


def events(size: int) -> st.SearchStrategy[list[Report | Timeout | TimeoutAtDue]]:
    one = st.one_of(
        st.builds(Report, st.integers(0, size - 1), statuses, waits),
        st.builds(Timeout, waits),
        st.builds(TimeoutAtDue, st.sampled_from([timedelta(0), timedelta(microseconds=1)]) | waits),
    )
    return st.lists(one, max_size=30)


class Run:
    """Applies transitions and checks the invariants on each one."""

    def __init__(self, cascade: Cascade) -> None:
        self.cascade = cascade
        self.sent: set[int] = set()
        self.finals = 0

    def check(self, before: CascadeState | None, t: Transition, now: datetime) -> None:
        sends = [e.index for e in t.effects if isinstance(e, SendStep)]
        supersedes = [e.index for e in t.effects if isinstance(e, SupersedeStep)]
        # at most one step in flight
        assert len(sends) <= 1, t
        assert sends == list(t.sends)
        # never the same step twice
        assert not set(sends) & self.sent, (sends, self.sent)
        self.sent.update(sends)
        # only forward
        if before is not None:
            assert t.state.current >= before.current, (before, t.state)
        # once finished, nothing moves
        if before is not None and before.finished:
            assert t.state == before
            assert t.effects == ()
            assert not any(d.kind in FINAL for d in t.decisions)
        # a send is for the new current step, which is reachable, with a fresh deadline
        for index in sends:
            assert t.state.current == index
            assert t.state.status is CascadeStatus.ACTIVE
            step = self.cascade.steps[index]
            assert t.state.due_at == now + step.timeout
            reason = self.cascade.contact.why_unreachable(step.channel, self.cascade.category)
            assert reason is None
        # only the step that was in flight is superseded
        if supersedes:
            assert before is not None
            assert supersedes == [before.current]
        # the state is coherent
        assert -1 <= t.state.current < len(self.cascade.steps)
        if t.state.finished:
            assert t.state.due_at is None
        else:
            assert t.state.due_at is not None
            assert t.state.current in self.sent
        finals = [d for d in t.decisions if d.kind in FINAL]
        assert len(finals) <= 1
        if finals:
            assert t.state.finished
            assert before is None or not before.finished
            expected = (
                DecisionKind.COMPLETE
                if t.state.status is CascadeStatus.COMPLETED
                else DecisionKind.FAIL
            )
            assert finals[0].kind is expected
        elif before is not None:
            assert t.state.status is before.status
        self.finals += len(finals)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), cascade=cascades)
def test_random_runs_keep_the_invariants(data: st.DataObject, cascade: Cascade) -> None:
    run = Run(cascade)
    now = T0
    t = cascade.start(now)
    run.check(None, t, now)
    state = t.state
    for event in data.draw(events(len(cascade.steps)), label="events"):
        if isinstance(event, Report):
            now += event.wait
            t = cascade.on_status(state, event.step, event.status, now)
        elif isinstance(event, Timeout):
            now += event.wait
            t = cascade.on_timeout(state, now)
        else:
            if state.due_at is not None:
                now = max(now, state.due_at + event.extra)
            t = cascade.on_timeout(state, now)
        run.check(state, t, now)
        state = t.state
    assert run.finals == (1 if state.finished else 0)


@settings(max_examples=200, deadline=None)
@given(cascade=cascades)
def test_timeouts_alone_walk_every_reachable_step_once(cascade: Cascade) -> None:
    reachable = [
        i
        for i, s in enumerate(cascade.steps)
        if cascade.contact.why_unreachable(s.channel, cascade.category) is None
    ]
    now = T0
    t = cascade.start(now)
    sent = list(t.sends)
    decisions = list(t.decisions)
    for _ in cascade.steps:  # each timeout moves on by at least one step
        if t.state.finished:
            break
        assert t.state.due_at is not None
        now = t.state.due_at
        t = cascade.on_timeout(t.state, now)
        sent += t.sends
        decisions += t.decisions
    assert t.state.finished
    assert sent == reachable
    assert t.state.status is CascadeStatus.FAILED
    assert decisions[-1].kind is DecisionKind.FAIL
    assert decisions[-1].reason.endswith("cascade failed")
    skipped = [d.step for d in decisions if d.kind is DecisionKind.SKIP and d.step is not None]
    assert len(skipped) == sum(d.kind is DecisionKind.SKIP for d in decisions)
    assert sorted(skipped) == [i for i in range(len(cascade.steps)) if i not in reachable]


@settings(max_examples=200, deadline=None)
@given(cascade=cascades, data=st.data())
def test_a_goal_report_on_the_step_in_flight_completes(
    cascade: Cascade, data: st.DataObject
) -> None:
    t = cascade.start(T0)
    if t.state.finished:
        assert t.state.status is CascadeStatus.FAILED
        assert t.sends == ()
        return
    step = cascade.steps[t.state.current]
    goal = data.draw(st.sampled_from(GOALS[step.until]))
    done = cascade.on_status(t.state, t.state.current, goal, T0)
    assert done.state.status is CascadeStatus.COMPLETED
    assert done.effects == ()
    assert [d.kind for d in done.decisions] == [DecisionKind.COMPLETE]
