"""The cascade state machine: ordered channel steps, each waiting for a status or a timeout.

The functions here are pure. They take the current state and what happened (a start, a
status report, a timeout) and return a ``Transition``: the new state plus the effects the
caller must carry out in the same transaction (send a step, supersede a message, log a
decision). No clock is read here; ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from kaskad.domain.contacts import Reachability
from kaskad.domain.durations import format_duration
from kaskad.domain.policy import Verdict, VerdictKind
from kaskad.domain.vocabulary import Category, Channel, MessageStatus, Until, is_failure, reaches

DEFAULT_TIMEOUT: Final = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Step:
    channel: Channel
    content: Mapping[str, Any]
    until: Until = Until.DELIVERED
    timeout: timedelta = DEFAULT_TIMEOUT
    provider: str | None = None
    # A stored template rendered for the contact when the message is sent; ``content``
    # then holds only overrides (e.g. a sender).
    template: str | None = None


class CascadeStatus(StrEnum):
    ACTIVE = "active"
    # Held back by the policy until ``due_at`` (caps, quiet hours); ``current`` is the step
    # that will be tried then.
    DEFERRED = "deferred"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPPRESSED = "suppressed"


LIVE: Final = frozenset({CascadeStatus.ACTIVE, CascadeStatus.DEFERRED})


@dataclass(frozen=True, slots=True)
class CascadeState:
    """Where a cascade stands. ``current`` is the index of the step in flight (-1 before any)."""

    status: CascadeStatus = CascadeStatus.ACTIVE
    current: int = -1
    due_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status not in LIVE


@dataclass(frozen=True, slots=True)
class SendStep:
    """Start the step at ``index``: create its message and queue it for its provider."""

    index: int


@dataclass(frozen=True, slots=True)
class SupersedeStep:
    """The step at ``index`` is no longer current: cancel its message if not yet handed over.

    ``by_next`` says a later step took over; when the cascade simply ended, a message already
    with its provider keeps its status unmarked.
    """

    index: int
    by_next: bool = True


class DecisionKind(StrEnum):
    SEND = "send"
    SKIP = "skip"
    FALLBACK = "fallback"
    COMPLETE = "complete"
    FAIL = "fail"
    LATE_REPORT = "late_report"
    CANCEL = "cancel"
    DEFER = "defer"
    SUPPRESS = "suppress"


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    reason: str
    step: int | None = None


Effect = SendStep | SupersedeStep

Gate = Callable[[int, Step, datetime], Verdict]
"""The policy's say on sending step ``index`` now (caps, quiet hours, de-duplication...)."""


def _open_gate(index: int, step: Step, now: datetime) -> Verdict:
    return Verdict(VerdictKind.SEND, "no policy")


@dataclass(frozen=True, slots=True)
class Transition:
    state: CascadeState
    effects: tuple[Effect, ...] = ()
    decisions: tuple[Decision, ...] = field(default=())

    @property
    def sends(self) -> tuple[int, ...]:
        return tuple(e.index for e in self.effects if isinstance(e, SendStep))


@dataclass(frozen=True, slots=True)
class Cascade:
    """A cascade's fixed facts: its steps, the category and who it is for."""

    steps: Sequence[Step]
    category: Category
    contact: Reachability
    gate: Gate = _open_gate

    def start(self, now: datetime) -> Transition:
        return self._next_from(0, now, state=CascadeState(), opening=())

    def on_timeout(self, state: CascadeState, now: datetime) -> Transition:
        """The current step's wait ran out without reaching its goal, or a deferred step's
        slot has come (the policy is asked again: the slot may have been taken meanwhile)."""
        if state.finished or state.due_at is None or now < state.due_at:
            return Transition(state)
        if state.status is CascadeStatus.DEFERRED:
            active = replace(state, status=CascadeStatus.ACTIVE)
            return self._next_from(state.current, now, state=active, opening=())
        step = self.steps[state.current]
        why = f"{step.channel} not {step.until} within {format_duration(step.timeout)}"
        return self._fall_back(state, now, why)

    def on_status(
        self, state: CascadeState, step_index: int, status: MessageStatus, now: datetime
    ) -> Transition:
        """A message's status changed; only the current step's message can move the cascade."""
        deferred = state.status is CascadeStatus.DEFERRED
        if step_index != state.current or state.finished or deferred:
            return self._late(state, step_index, status)
        step = self.steps[step_index]
        if reaches(status, step.until):
            done = CascadeState(CascadeStatus.COMPLETED, state.current, None)
            reason = f"{step.channel} {status}: cascade complete"
            return Transition(done, (), (Decision(DecisionKind.COMPLETE, reason, step_index),))
        if is_failure(status):
            return self._fall_back(state, now, f"{step.channel} {status}")
        return Transition(state)

    def on_answer(self, state: CascadeState, step_index: int) -> Transition:
        """The customer answered the message of step ``step_index`` (a reply, a rating, a
        key pressed): it reached them, whatever its step waited for, so the cascade is
        complete. A later step still in flight is cancelled if not yet with its provider."""
        if state.finished or not 0 <= step_index < len(self.steps):
            return Transition(state)
        channel = self.steps[step_index].channel
        done = CascadeState(CascadeStatus.COMPLETED, state.current, None)
        reason = f"answered on {channel}: cascade complete"
        moved_on = state.status is CascadeStatus.ACTIVE and state.current > step_index
        effects = (SupersedeStep(state.current, by_next=False),) if moved_on else ()
        return Transition(done, effects, (Decision(DecisionKind.COMPLETE, reason, step_index),))

    def cancel(self, state: CascadeState, why: str) -> Transition:
        """Stop the cascade (e.g. its contact was erased); a message not yet handed to its
        provider is cancelled."""
        if state.finished:
            return Transition(state)
        effects = (SupersedeStep(state.current, by_next=False),) if state.current >= 0 else ()
        cancelled = CascadeState(CascadeStatus.CANCELLED, state.current, None)
        decision = Decision(DecisionKind.CANCEL, f"{why}: cascade cancelled", None)
        return Transition(cancelled, effects, (decision,))

    def _late(self, state: CascadeState, step_index: int, status: MessageStatus) -> Transition:
        """A report on a message that no longer drives the cascade.

        Only a report that would have ended the cascade is worth a decision: it means the
        customer got that channel after all. While a later step is still in flight, such a
        report completes the cascade: the goal is reached, so the later step's message is
        cancelled if it has not reached its provider yet.
        """
        step = self.steps[step_index]
        if not reaches(status, step.until):
            return Transition(state)
        current = self.steps[state.current].channel if state.current >= 0 else None
        if state.status is CascadeStatus.COMPLETED:
            if step_index >= state.current:
                return Transition(state)  # e.g. seen after delivered: progress, not news
            where = f"after the cascade completed on {current}"
        elif state.status is CascadeStatus.FAILED:
            where = "after the cascade failed"
        elif state.status in (CascadeStatus.CANCELLED, CascadeStatus.SUPPRESSED):
            return Transition(state)
        elif state.status is CascadeStatus.DEFERRED:
            where = f"while {current} waits for a free slot"
        else:
            where = f"after the cascade moved on to {current}"
        reason = f"late report: {step.channel} {status} {where}; recorded, no new send"
        late = Decision(DecisionKind.LATE_REPORT, reason, step_index)
        if state.status not in LIVE:
            return Transition(state, (), (late,))
        done = CascadeState(CascadeStatus.COMPLETED, state.current, None)
        complete = Decision(DecisionKind.COMPLETE, f"{step.channel} {status}: cascade complete")
        # A deferred step has no message yet: nothing to supersede.
        effects = () if state.status is CascadeStatus.DEFERRED else (SupersedeStep(state.current),)
        return Transition(done, effects, (late, complete))

    def _fall_back(self, state: CascadeState, now: datetime, why: str) -> Transition:
        supersede = (SupersedeStep(state.current),)
        return self._next_from(state.current + 1, now, state=state, opening=supersede, why=why)

    def _next_from(
        self,
        index: int,
        now: datetime,
        *,
        state: CascadeState,
        opening: tuple[Effect, ...],
        why: str | None = None,
    ) -> Transition:
        decisions: list[Decision] = []
        for i in range(index, len(self.steps)):
            step = self.steps[i]
            reason = self.contact.why_unreachable(step.channel, self.category)
            if reason is not None:
                decisions.append(
                    Decision(DecisionKind.SKIP, f"{step.channel} skipped: {reason}", i)
                )
                continue
            verdict = self.gate(i, step, now)
            if verdict.kind is VerdictKind.SKIP:
                decisions.append(Decision(DecisionKind.SKIP, verdict.reason, i))
                continue
            if why is not None:
                first = Decision(DecisionKind.FALLBACK, f"{why} → {step.channel}", i)
                decisions.insert(0, first)
            if verdict.kind is not VerdictKind.SEND:
                return self._held(verdict, i, state, opening, decisions)
            wait = f"waiting up to {format_duration(step.timeout)} for {step.until}"
            decisions.append(Decision(DecisionKind.SEND, f"send {step.channel}, {wait}", i))
            new = replace(state, status=CascadeStatus.ACTIVE, current=i, due_at=now + step.timeout)
            return Transition(new, (*opening, SendStep(i)), tuple(decisions))
        ended = why + "; no more steps" if why else "no step can reach the contact"
        decisions.append(Decision(DecisionKind.FAIL, f"{ended}: cascade failed"))
        failed = CascadeState(CascadeStatus.FAILED, state.current, None)
        abandoned = tuple(SupersedeStep(e.index, by_next=False) for e in opening)
        return Transition(failed, abandoned, tuple(decisions))

    def _held(
        self,
        verdict: Verdict,
        index: int,
        state: CascadeState,
        opening: tuple[Effect, ...],
        decisions: list[Decision],
    ) -> Transition:
        """The policy holds the step back: until a free slot, or for good."""
        if verdict.kind is VerdictKind.DEFER and verdict.until is not None:
            decisions.append(Decision(DecisionKind.DEFER, verdict.reason, index))
            new = CascadeState(CascadeStatus.DEFERRED, index, verdict.until)
            return Transition(new, opening, tuple(decisions))
        decisions.append(Decision(DecisionKind.SUPPRESS, verdict.reason, index))
        dropped = CascadeState(CascadeStatus.SUPPRESSED, state.current, None)
        abandoned = tuple(SupersedeStep(e.index, by_next=False) for e in opening)
        return Transition(dropped, abandoned, tuple(decisions))
