"""A run: one contact's way through one journey version, as a pure state machine.

``advance`` takes where a run stands and what woke it (its start, its timer, an event, the
end of a cascade it waits for) and walks the steps until the run must wait or ends. It
returns the new state and what the caller must do in the same transaction: create
notifications, set contact attributes, write the history. Nothing here reads a clock or
the database, so a "wait 2 days" is a value, and a run is tested as a plain function.

A run is never in two places: a state has one ``position`` and at most one ``waiting``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from kaskad.domain.conditions import Condition
from kaskad.domain.conditions.evaluation import resolve
from kaskad.domain.durations import format_duration
from kaskad.domain.journeys.rules import choose_variant
from kaskad.domain.journeys.steps import (
    EXIT_INDEX,
    BranchStep,
    ExitStep,
    JourneyStep,
    SendStep,
    SplitStep,
    SurveyStep,
    UpdateStep,
    WaitDuration,
    WaitForEvent,
    WaitForReply,
    WaitForSend,
    WaitStep,
    WaitUntilDate,
    WaitUntilTime,
)
from kaskad.domain.journeys.timing import next_time_of_day, relative_to_date
from kaskad.domain.two_way import MESSAGE_RECEIVED, SURVEY_ANSWERED, InboundKind

MAX_STEPS_PER_ADVANCE: Final = 200
"""A definition with a loop and no wait is refused when read; this is the last guard."""
REPLY_KEY: Final = "@reply"
"""Beside the steps' outcomes (no step id has "@"): the last answer a reply wait or a survey
received, which conditions read as ``reply.*`` (``reply.rating >= 4``)."""


class RunStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"
    CONVERTED = "converted"
    FAILED = "failed"


class WaitKind(StrEnum):
    TIME = "time"
    EVENT = "event"
    SEND = "send"
    REPLY = "reply"  # a customer's reply to a send (``send`` names the step)
    SURVEY = "survey"  # the rating a survey step asked for


@dataclass(frozen=True, slots=True)
class Waiting:
    """What a run waits for at the wait step ``step``; ``until`` is its timer (or timeout)."""

    step: int
    kind: WaitKind
    until: datetime | None
    event: str | None = None
    send: str | None = None


@dataclass(frozen=True, slots=True)
class RunState:
    status: RunStatus = RunStatus.ACTIVE
    position: int | None = 0
    waiting: Waiting | None = None
    variant: str | None = None
    outcomes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def due_at(self) -> datetime | None:
        return self.waiting.until if self.waiting else None

    @property
    def finished(self) -> bool:
        return self.status is not RunStatus.ACTIVE


# -- what woke the run -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """The run was just created."""


@dataclass(frozen=True, slots=True)
class Timer:
    """The run's ``due_at`` has come, or something it may wait for changed (a cascade it
    waits for ended): the run checks, and goes back to sleep if it must still wait."""


@dataclass(frozen=True, slots=True)
class EventSeen:
    """An event of the run's contact was recorded."""

    type: str
    payload: Mapping[str, Any]
    occurred_at: datetime
    key: str | None = None


Wake = Start | Timer | EventSeen


def event_scope(event: EventSeen) -> dict[str, Any]:
    """What conditions read as ``event`` (``payload`` is its payload)."""
    return {
        "type": event.type,
        "id": event.key,
        "payload": dict(event.payload),
        "occurred_at": event.occurred_at.isoformat(),
    }


# -- what the caller carries out ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Create a notification for this send step; its id goes into the run's outcomes."""

    step: SendStep


@dataclass(frozen=True, slots=True)
class Update:
    attributes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the run's history, shown in GET /v1/runs/{id} and the timeline."""

    step: str | None
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Advance:
    state: RunState
    sends: tuple[Send, ...] = ()
    updates: tuple[Update, ...] = ()
    history: tuple[Entry, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """What the conditions of a run can read, and whom the run is for.

    ``scope`` holds ``contact``, ``event``/``payload`` (the event that started the run),
    ``steps`` (each earlier step's outcome, with the status of its notification) and ``run``.
    """

    journey_id: str
    contact_id: str
    zone: str
    scope: Mapping[str, Any]


def advance(
    steps: Sequence[JourneyStep], state: RunState, wake: Wake, context: Context, now: datetime
) -> Advance:
    """Move the run on from what woke it until it must wait again or it ends."""
    if state.finished:
        return Advance(state)
    walk = _Walk(steps, state, context, now)
    if not walk.woken(wake):
        return Advance(state)
    return walk.run()


class _Walk:
    """One advance: the state, the effects and the history, built up step by step."""

    def __init__(
        self, steps: Sequence[JourneyStep], state: RunState, context: Context, now: datetime
    ) -> None:
        self.steps = steps
        self.state = state
        self.context = context
        self.now = now
        self.scope: dict[str, Any] = dict(context.scope)
        self.scope["steps"] = {k: dict(v) for k, v in context.scope.get("steps", {}).items()}
        self.outcomes = {k: dict(v) for k, v in state.outcomes.items()}
        self.sends: list[Send] = []
        self.updates: list[Update] = []
        self.history: list[Entry] = []

    # -- waking --------------------------------------------------------------------------
    def woken(self, wake: Wake) -> bool:
        """Whether ``wake`` moves the run; records what the awaited thing turned out to be."""
        waiting = self.state.waiting
        if isinstance(wake, Start):
            return waiting is None
        if waiting is None:
            return False
        step = self.steps[waiting.step]
        if isinstance(wake, EventSeen):
            return self._event(waiting, step, wake)
        return self._timer(waiting, step)

    def _timer(self, waiting: Waiting, step: JourneyStep) -> bool:
        if waiting.kind is WaitKind.SEND and self._ended(waiting.send):
            return self._resume(step, f"the cascade of {waiting.send!r} ended")
        if waiting.until is None or waiting.until > self.now:
            return False
        if waiting.kind is WaitKind.EVENT:
            self._outcome(step.id, received=False, timed_out=True)
            return self._resume(step, f"no {waiting.event} event before the timeout")
        if waiting.kind is WaitKind.SEND:
            self._outcome(step.id, timed_out=True)
            return self._resume(step, f"the cascade of {waiting.send!r} still running at timeout")
        if waiting.kind in (WaitKind.REPLY, WaitKind.SURVEY):
            self._outcome(step.id, **{_ANSWERED[waiting.kind]: False, "timed_out": True})
            return self._resume(step, f"no answer to {waiting.send!r} before the timeout")
        return self._resume(step, "waited until " + _utc(waiting.until))

    def _ended(self, send_id: str | None) -> bool:
        return bool(self.scope["steps"].get(send_id, {}).get("final"))

    def _event(self, waiting: Waiting, step: JourneyStep, event: EventSeen) -> bool:
        if waiting.event != event.type:
            return False
        if waiting.until is not None and waiting.until <= self.now:
            return self._timer(waiting, step)  # too late: the wait has timed out
        if waiting.kind in (WaitKind.REPLY, WaitKind.SURVEY):
            return self._answer(waiting, step, event)
        if waiting.kind is not WaitKind.EVENT:
            return False
        wait = step.wait if isinstance(step, WaitStep) else None
        where = wait.where if isinstance(wait, WaitForEvent) else None
        seen = event_scope(event)
        scope = self.scope | {"event": seen, "payload": seen["payload"]}
        if isinstance(where, Condition) and not where.evaluate(scope, now=self.now):
            return False
        self._outcome(step.id, received=True, timed_out=False, event=seen)
        return self._resume(step, f"{event.type} event received")

    def _answer(self, waiting: Waiting, step: JourneyStep, event: EventSeen) -> bool:
        """A reply or a rating, if it answers the notification the run waits on."""
        payload = event.payload
        awaited = self.scope["steps"].get(waiting.send, {}).get("notification")
        if awaited is None or payload.get("notification_id") != awaited:
            return False
        if payload.get("kind") in (InboundKind.KEYWORD, InboundKind.KEYPRESS):
            return False  # STOP is no answer
        wait = step.wait if isinstance(step, WaitStep) else None
        where = wait.where if isinstance(wait, WaitForReply) else None
        seen = event_scope(event)
        scope = self.scope | {"event": seen, "payload": seen["payload"]}
        if where is not None and not where.evaluate(scope, now=self.now):
            return False
        reply = {
            "text": payload.get("text"),
            "rating": payload.get("rating"),
            "kind": payload.get("kind") or InboundKind.RATING.value,
            "channel": payload.get("channel"),
            "step": step.id,
            "at": event.occurred_at.isoformat(),
        }
        answered = {_ANSWERED[waiting.kind]: True, "timed_out": False}
        self._outcome(step.id, **answered, text=reply["text"], rating=reply["rating"])
        self.outcomes[REPLY_KEY] = reply
        self.scope["reply"] = reply
        what = "rating" if waiting.kind is WaitKind.SURVEY else "reply"
        return self._resume(step, f"{what} received: {_quoted(reply['text'])}")

    def _resume(self, step: JourneyStep, why: str) -> bool:
        self.history.append(Entry(step.id, "resume", why))
        self.state = replace(self.state, waiting=None)
        self._go(step, step.next)
        return True

    # -- walking -------------------------------------------------------------------------
    def run(self) -> Advance:
        taken = 0
        while not self.state.finished and self.state.waiting is None:
            position = self.state.position
            if position is None:
                self._end(RunStatus.COMPLETED, None, "reached the end of the journey")
            elif taken == MAX_STEPS_PER_ADVANCE:
                self._end(RunStatus.FAILED, None, "too many steps without a wait: stopped")
            else:
                self._take(self.steps[position])
                taken += 1
        return Advance(
            replace(self.state, outcomes=self.outcomes),
            tuple(self.sends),
            tuple(self.updates),
            tuple(self.history),
        )

    def _take(self, step: JourneyStep) -> None:
        if isinstance(step, SendStep):
            self._send(step)
        elif isinstance(step, SurveyStep):
            self._survey(step)
        elif isinstance(step, WaitStep):
            self._wait(step)
        elif isinstance(step, BranchStep):
            self._branch(step)
        elif isinstance(step, SplitStep):
            self._split(step)
        elif isinstance(step, UpdateStep):
            self._update(step)
        else:
            self._exit(step)

    def _go(self, step: JourneyStep, target: int | None) -> None:
        """Move to ``target``: a step, the end of the list (completed) or ``exit`` (exited)."""
        if target == EXIT_INDEX:
            self._end(RunStatus.EXITED, step.id, "exit")
        else:
            self.state = replace(self.state, position=target)

    def _send(self, step: SendStep) -> None:
        channels = " → ".join(s.channel.value for s in step.cascade)
        self._queue(step, "send", f"{step.category} notification: {channels}")
        self._go(step, step.next)

    def _queue(self, step: SendStep, kind: str, text: str) -> None:
        self.sends.append(Send(step))
        self.history.append(Entry(step.id, kind, text))
        order = 1 + max((o.get("sent_order", 0) for o in self.outcomes.values()), default=0)
        at = self.now.isoformat()
        self._outcome(step.id, status="queued", final=False, sent_at=at, sent_order=order)

    def _survey(self, step: SurveyStep) -> None:
        channels = " → ".join(s.channel.value for s in step.send.cascade)
        scale = f"{step.scale.low} to {step.scale.high}"
        self._queue(step.send, "survey", f"{step.send.category} survey ({scale}): {channels}")
        until = self.now + step.timeout
        index = self.steps.index(step)
        waiting = Waiting(index, WaitKind.SURVEY, until, event=SURVEY_ANSWERED, send=step.id)
        self.state = replace(self.state, waiting=waiting)
        self.history.append(Entry(step.id, "wait", f"waiting for the rating until {_utc(until)}"))

    def _wait(self, step: WaitStep) -> None:
        wait = step.wait
        index = self.steps.index(step)
        if isinstance(wait, WaitDuration):
            self._sleep(step, index, self.now + wait.duration, format_duration(wait.duration))
        elif isinstance(wait, WaitUntilTime):
            until = next_time_of_day(self.now, wait.at, self.context.zone)
            self._sleep(step, index, until, f"until {wait.at:%H:%M} {self.context.zone}")
        elif isinstance(wait, WaitUntilDate):
            self._wait_date(step, index, wait)
        elif isinstance(wait, WaitForEvent):
            until = self.now + wait.timeout
            self.state = replace(
                self.state, waiting=Waiting(index, WaitKind.EVENT, until, event=wait.type)
            )
            text = f"waiting for {wait.type} until {_utc(until)}"
            self.history.append(Entry(step.id, "wait", text))
        elif isinstance(wait, WaitForReply):
            self._wait_reply(step, index, wait)
        else:
            self._wait_send(step, index, wait)

    def _sleep(self, step: WaitStep, index: int, until: datetime, what: str) -> None:
        if until <= self.now:
            self.history.append(Entry(step.id, "wait", f"{what}: already passed, going on"))
            self._go(step, step.next)
            return
        self.state = replace(self.state, waiting=Waiting(index, WaitKind.TIME, until))
        self.history.append(Entry(step.id, "wait", f"{what} (until {_utc(until)})"))

    def _wait_date(self, step: WaitStep, index: int, wait: WaitUntilDate) -> None:
        value = resolve(self.scope.get("contact", {}), tuple(wait.attribute.split(".")))
        until = relative_to_date(value, wait.offset, wait.at, self.context.zone)
        if until is None:
            text = f"contact.{wait.attribute} is not a date ({value!r}): going on"
            self.history.append(Entry(step.id, "wait", text))
            self._go(step, step.next)
            return
        self._sleep(step, index, until, f"until {wait.attribute} {format_offset(wait.offset)}")

    def _wait_send(self, step: WaitStep, index: int, wait: WaitForSend) -> None:
        if self._ended(wait.send_id):
            text = f"the cascade of {wait.send_id!r} has already ended: going on"
            self.history.append(Entry(step.id, "wait", text))
            self._go(step, step.next)
            return
        until = self.now + wait.timeout if wait.timeout is not None else None
        waiting = Waiting(index, WaitKind.SEND, until, send=wait.send_id)
        self.state = replace(self.state, waiting=waiting)
        limit = f" (at most until {_utc(until)})" if until else ""
        self.history.append(Entry(step.id, "wait", f"waiting for {wait.send_id!r}{limit}"))

    def _wait_reply(self, step: WaitStep, index: int, wait: WaitForReply) -> None:
        send_id = wait.send_id or _latest_send(self.outcomes)
        if send_id is None:
            self._outcome(step.id, replied=False, timed_out=False)
            self.history.append(Entry(step.id, "wait", "nothing sent yet to reply to: going on"))
            self._go(step, step.next)
            return
        until = self.now + wait.timeout
        waiting = Waiting(index, WaitKind.REPLY, until, event=MESSAGE_RECEIVED, send=send_id)
        self.state = replace(self.state, waiting=waiting)
        text = f"waiting for a reply to {send_id!r} until {_utc(until)}"
        self.history.append(Entry(step.id, "wait", text))

    def _branch(self, step: BranchStep) -> None:
        for number, case in enumerate(step.cases):
            if case.when.evaluate(self.scope, now=self.now):
                text = f"case {number + 1} holds: {case.when.source} → {self._name(case.goto)}"
                self.history.append(Entry(step.id, "branch", text))
                self._go(step, case.goto)
                return
        text = f"no case holds → {self._name(step.otherwise)}"
        self.history.append(Entry(step.id, "branch", text))
        self._go(step, step.otherwise)

    def _split(self, step: SplitStep) -> None:
        name = choose_variant(
            [(v.name, v.weight) for v in step.variants],
            contact_id=self.context.contact_id,
            journey_id=self.context.journey_id,
            split_id=step.id,
        )
        variant = next(v for v in step.variants if v.name == name)
        self._outcome(step.id, variant=name)
        self.scope["run"] = {**self.scope.get("run", {}), "variant": name}
        self.state = replace(self.state, variant=name)
        self.history.append(Entry(step.id, "split", f"variant {name} → {self._name(variant.goto)}"))
        self._go(step, variant.goto)

    def _update(self, step: UpdateStep) -> None:
        self.updates.append(Update(step.attributes))
        contact = dict(self.scope.get("contact", {}))
        contact.update(step.attributes)
        self.scope["contact"] = contact
        names = ", ".join(sorted(step.attributes))
        self.history.append(Entry(step.id, "update", f"set contact attributes: {names}"))
        self._go(step, step.next)

    def _exit(self, step: ExitStep) -> None:
        self._end(RunStatus.EXITED, step.id, f"exit: {step.reason}")

    def _end(self, status: RunStatus, step: str | None, text: str) -> None:
        self.state = replace(self.state, status=status, position=None, waiting=None)
        self.history.append(Entry(step, status.value, text))

    # -- helpers -------------------------------------------------------------------------
    def _outcome(self, step_id: str, **values: Any) -> None:
        self.outcomes.setdefault(step_id, {}).update(values)
        self.scope["steps"].setdefault(step_id, {}).update(values)

    def _name(self, target: int | None) -> str:
        if target is None:
            return "the end"
        return "exit" if target == EXIT_INDEX else repr(self.steps[target].id)


def end_run(state: RunState, status: RunStatus, why: str, *, step: str | None = None) -> Advance:
    """End an active run from outside its steps: a goal reached, an exit event, a stop.

    ``step`` names the step the ending is counted against (a conversion counts for the last
    message sent).
    """
    if state.finished:
        return Advance(state)
    ended = replace(state, status=status, position=None, waiting=None)
    return Advance(ended, history=(Entry(step, status.value, why),))


def last_send(state: RunState) -> str | None:
    """The send step whose notification went out last, for attributing a conversion."""
    return _latest_send(state.outcomes)


def _latest_send(outcomes: Mapping[str, Mapping[str, Any]]) -> str | None:
    sent = [(o["sent_order"], step) for step, o in outcomes.items() if "sent_order" in o]
    return max(sent)[1] if sent else None


# The outcome a reply wait and a survey set: whether the answer came.
_ANSWERED: Final[Mapping[WaitKind, str]] = {WaitKind.REPLY: "replied", WaitKind.SURVEY: "answered"}


def _quoted(text: Any, limit: int = 60) -> str:
    shown = str(text or "")
    return repr(shown if len(shown) <= limit else shown[: limit - 1] + "…")


def format_offset(offset: timedelta) -> str:
    if not offset:
        return "on the day"
    text = format_duration(abs(offset))
    return f"{text} before" if offset < timedelta(0) else f"{text} after"


def _utc(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M} UTC"
