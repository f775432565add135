"""Journey runs: entering, waking on timers and events, and carrying out each step's effects.

Every function runs inside one unit of work: a run's new state, the notifications it
creates, the attributes it sets and its history commit together or not at all, so a
`kill -9` between two steps loses nothing and sends nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from kaskad.adapters import metrics
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.conditions import Condition
from kaskad.domain.ids import new_id
from kaskad.domain.journeys.definition import EventMatch, EventTrigger, JourneyDefinition
from kaskad.domain.journeys.rules import may_enter
from kaskad.domain.journeys.runs import (
    REPLY_KEY,
    Advance,
    Context,
    EventSeen,
    RunState,
    RunStatus,
    Start,
    Timer,
    Waiting,
    WaitKind,
    advance,
    end_run,
    event_scope,
    last_send,
)
from kaskad.domain.vocabulary import Channel, MessageStatus, Until, reaches
from kaskad.services import cascading, notifications
from kaskad.services.definitions import definition_of
from kaskad.services.errors import Invalid, NotFound

log = logging.getLogger(__name__)
Row = dict[str, Any]
# Beside the steps' outcomes: the events seen while the run was active (no step id has "@").
EVENTS_KEY = "@events"

# Runs these start reach many contacts at once: their sends are "mass", which a personal
# send of the same category and priority outranks in the calendar.
MASS_TRIGGERS: Final = frozenset({"segment", "schedule", "date"})


@dataclass(frozen=True, slots=True)
class Entered:
    run_id: str | None
    reason: str


# -- intake: events move runs and start new ones -----------------------------------------


def on_events(
    uow: UnitOfWork,
    *,
    events: Sequence[Mapping[str, Any]],
    routing: Mapping[Channel, str],
    contacts: Mapping[str, Row] | None = None,
) -> None:
    """Inside the transaction that stored ``events``: goals, exits, event waits, triggers.

    Runs already in flight see the events first, so a run started by an event does not
    also take that same event as the answer to a later wait. ``contacts`` (by id) spares a
    read when the caller has them.
    """
    live = live_journeys(uow) if events else []
    if not live:
        return
    by_contact: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e["occurred_at"]):
        by_contact[event["contact_id"]].append(event)
    types = {e["type"] for e in events}
    starters = [
        j
        for j in live
        if j["status"] == "active" and j["trigger_kind"] == "event" and j["trigger_event"] in types
    ]
    starter_ids = [j["id"] for j in starters]
    # One read, locked: the contacts' active runs, and every run of the journeys they may
    # enter (for re-entry).
    known = uow.runs.of_contacts(by_contact, also_journeys=starter_ids)
    active = [r for r in known if r["status"] == RunStatus.ACTIVE.value]
    if not active and not starters:
        return
    if contacts is None:
        contacts = uow.contacts.by_ids(by_contact)
    sends = _send_outcomes(uow, _notification_ids(active))
    for row in active:
        contact = contacts[row["contact_id"]]
        for event in by_contact[row["contact_id"]]:
            _event_for_run(uow, row, contact, event, sends, routing)
    if not starters:
        return
    by_type: dict[str, list[Row]] = defaultdict(list)
    for journey in starters:
        by_type[journey["trigger_event"]].append(journey)
    entries = Entries.of_rows([r for r in known if r["journey_id"] in starter_ids])
    for event in events:
        for journey in by_type.get(event["type"], ()):
            _trigger(uow, journey, contacts[event["contact_id"]], event, routing, entries)


_LIVE_SECONDS: Final = 1.0
_LIVE: dict[str, tuple[float, list[Row]]] = {}


def live_journeys(uow: UnitOfWork) -> list[Row]:
    """The active and paused journeys, read at most once a second per process.

    Every batch of events needs them and they rarely change: a journey applied, published,
    paused or archived in this process is seen at once (``forget_live``), in other processes
    within a second.
    """
    now = time.monotonic()
    cached = _LIVE.get(uow.database)
    if cached is not None and cached[0] > now:
        return cached[1]
    rows = uow.journeys.live()
    _LIVE[uow.database] = (now + _LIVE_SECONDS, rows)
    return rows


def forget_live() -> None:
    _LIVE.clear()


def _event_for_run(
    uow: UnitOfWork,
    row: Row,
    contact: Row,
    event: Mapping[str, Any],
    sends: Mapping[str, Mapping[str, Any]],
    routing: Mapping[Channel, str],
) -> None:
    if row["status"] != RunStatus.ACTIVE.value:
        return
    now = event["received_at"]
    _remember_event(uow, row, event)
    definition = definition_of(uow, row["journey_id"], row["version"])
    context = _context(row, contact, sends)
    seen = _seen(event)
    scope = dict(context.scope) | {"event": event_scope(seen), "payload": event["payload"]}
    state = _state(row)
    if definition.goal and _matches(definition.goal, event, scope, now):
        result = _convert(state, event["type"])
        _stop_sends(uow, row, f"journey goal {event['type']} reached", now)
    elif any(_matches(m, event, scope, now) for m in definition.exit_on):
        result = end_run(state, RunStatus.EXITED, f"exit on {event['type']} event")
        _stop_sends(uow, row, f"journey exit on {event['type']}", now)
    elif state.waiting is not None and state.waiting.event == event["type"]:
        result = advance(definition.steps, state, seen, context, now)
    else:
        return
    _carry_out(uow, row, definition, contact, result, routing, now)


def _remember_event(uow: UnitOfWork, row: Row, event: Mapping[str, Any]) -> None:
    """Count the contact's events while the run is active, for ``events.TYPE.*`` conditions
    ("has the customer paid since the offer?")."""
    outcomes = {k: dict(v) for k, v in (row["outcomes"] or {}).items()}
    seen = outcomes.setdefault(EVENTS_KEY, {})
    before = seen.get(event["type"], {})
    seen[event["type"]] = {
        "count": int(before.get("count", 0)) + 1,
        "last_at": event["occurred_at"].isoformat(),
        "payload": dict(event["payload"]),
    }
    row["outcomes"] = outcomes
    uow.runs.set(row["id"], {"outcomes": outcomes})


def _convert(state: RunState, event_type: str) -> Advance:
    """The goal ends the run, counted against its last message and its variant."""
    step = last_send(state)
    credit = [f"last message: {step}"] if step else []
    if state.variant:
        credit.append(f"variant {state.variant}")
    why = f"goal reached: {event_type} event" + (f" ({', '.join(credit)})" if credit else "")
    return end_run(state, RunStatus.CONVERTED, why, step=step)


def _matches(match: EventMatch, event: Mapping[str, Any], scope: Any, now: datetime) -> bool:
    if match.type != event["type"]:
        return False
    return match.where is None or match.where.evaluate(scope, now=now)


def _trigger(
    uow: UnitOfWork,
    journey: Row,
    contact: Row,
    event: Mapping[str, Any],
    routing: Mapping[Channel, str],
    entries: Entries,
) -> None:
    definition = definition_of(uow, journey["id"], journey["version"])
    trigger = definition.trigger
    now = event["received_at"]
    seen = event_scope(_seen(event))
    scope = contact_scope(contact) | {"event": seen, "payload": event["payload"]}
    where = trigger.where if isinstance(trigger, EventTrigger) else None
    if isinstance(where, Condition) and not where.evaluate(scope, now=now):
        return
    # An event is one contact's: personal, whatever its type is called.
    enter_run(uow, journey, definition, contact, {**seen, "mass": False}, routing, now, entries)


class Entries:
    """When contacts entered journeys and whether each run is still active: read once for a
    batch, then kept up to date in memory as this unit of work starts runs."""

    def __init__(self, uow: UnitOfWork, contact_ids: Iterable[str], journey_ids: list[str]):
        uow.flush()  # runs moved or ended earlier in this unit of work count as they are now
        self._seen: dict[tuple[str, str], list[tuple[datetime, bool]]] = defaultdict(list)
        self._add_rows(uow.runs.entries_of(contact_ids, journey_ids))

    @classmethod
    def of_rows(cls, rows: Iterable[Mapping[str, Any]]) -> Entries:
        """From runs already read (and moved) in this unit of work."""
        entries = cls.__new__(cls)
        entries._seen = defaultdict(list)
        entries._add_rows(rows)
        return entries

    def _add_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            active = row["status"] == RunStatus.ACTIVE.value
            self._seen[(row["contact_id"], row["journey_id"])].append((row["entered_at"], active))

    def of(self, contact_id: str, journey_id: str) -> list[tuple[datetime, bool]]:
        return sorted(self._seen.get((contact_id, journey_id), []))

    def add(self, contact_id: str, journey_id: str, at: datetime, *, active: bool) -> None:
        self._seen[(contact_id, journey_id)].append((at, active))


# -- the API trigger ----------------------------------------------------------------------


def enter(
    uow: UnitOfWork,
    *,
    journey_id: str,
    external_id: str,
    data: Mapping[str, Any],
    routing: Mapping[Channel, str],
    now: datetime,
) -> Entered:
    """Put a contact into an active journey by an explicit call (the `api` trigger)."""
    with uow:
        journey = uow.journeys.get(journey_id)
        if journey is None:
            raise NotFound("journey_not_found", f"no journey {journey_id!r}")
        if journey["status"] != "active" or journey["version"] is None:
            raise Invalid("journey_not_active", f"journey {journey_id!r} is {journey['status']}")
        contact = uow.contacts.by_external_id(external_id)
        if contact is None:
            raise Invalid("contact_not_found", f"no contact with external id {external_id!r}")
        definition = definition_of(uow, journey_id, journey["version"])
        trigger = {
            "type": "api",
            "payload": dict(data),
            "occurred_at": now.isoformat(),
            "mass": False,
        }
        entered = enter_run(uow, journey, definition, contact, trigger, routing, now)
        uow.commit()
        return entered


def enter_run(
    uow: UnitOfWork,
    journey: Row,
    definition: JourneyDefinition,
    contact: Row,
    trigger: Mapping[str, Any],
    routing: Mapping[Channel, str],
    now: datetime,
    entries: Entries | None = None,
) -> Entered:
    entries = entries or Entries(uow, [contact["id"]], [journey["id"]])
    previous = entries.of(contact["id"], journey["id"])
    verdict = may_enter(
        definition.reentry,
        previous_entries=[at for at, _ in previous],
        active_runs=sum(1 for _, active in previous if active),
        max_active_runs=definition.max_active_runs,
        now=now,
    )
    if not verdict.allowed:
        log.info("%s not entered for %s: %s", journey["id"], contact["id"], verdict.reason)
        return Entered(None, verdict.reason)
    row: Row = {
        "id": new_id("run"),
        "contact_id": contact["id"],
        "journey_id": journey["id"],
        "version": journey["version"],
        "status": RunStatus.ACTIVE.value,
        "position": 0,
        "waiting": None,
        "due_at": None,
        "waiting_event": None,
        "variant": None,
        "outcomes": {},
        "trigger": dict(trigger),
        "entered_at": now,
        "updated_at": now,
        "ended_at": None,
        "ended_reason": None,
    }
    uow.runs.add(row)
    how = f" on {trigger['type']} event" if trigger.get("type") != "api" else " by API call"
    _history(uow, row, None, "enter", f"entered version {row['version']}{how}", now)
    uow.after_commit(metrics.RUNS_ENTERED.inc)
    result = advance(definition.steps, RunState(), Start(), _context(row, contact, {}), now)
    _carry_out(uow, row, definition, contact, result, routing, now)
    # A run that ended at once (nothing to wait for) no longer counts as active.
    entries.add(contact["id"], journey["id"], now, active=not result.state.finished)
    return Entered(row["id"], "entered")


# -- the engine: runs whose timer has come ----------------------------------------------


def advance_due(
    uow: UnitOfWork, *, routing: Mapping[Channel, str], now: datetime, limit: int
) -> int:
    """Claim runs whose timer has come, move each on, in one transaction."""
    with uow:
        rows = uow.runs.claim_due(now, limit)
        if not rows:
            return 0
        contacts = uow.contacts.by_ids(r["contact_id"] for r in rows)
        sends = _send_outcomes(uow, _notification_ids(rows))
        for row in rows:
            definition = definition_of(uow, row["journey_id"], row["version"])
            contact = contacts[row["contact_id"]]
            context = _context(row, contact, sends)
            result = advance(definition.steps, _state(row), Timer(), context, now)
            _carry_out(uow, row, definition, contact, result, routing, now)
        uow.commit()
    return len(rows)


def next_due(uow: UnitOfWork) -> datetime | None:
    with uow:
        return uow.runs.next_due()


def end_all(uow: UnitOfWork, *, journey_id: str, why: str, now: datetime) -> int:
    """End the active runs of a journey (it was archived), inside the caller's transaction."""
    rows = uow.runs.active_of_journey(journey_id)
    for row in rows:
        _stop_sends(uow, row, why, now)
        result = end_run(_state(row), RunStatus.EXITED, why)
        _write(uow, row, result, now)
    return len(rows)


# -- carrying out --------------------------------------------------------------------------


def _stop_sends(uow: UnitOfWork, row: Row, why: str, now: datetime) -> None:
    """A run ended from outside its steps sends nothing more: its cascades still under way
    are cancelled (a message already with its provider keeps its status)."""
    ids = _notification_ids([row])
    if not ids:
        return
    active = [
        n for n in uow.notifications.lock(ids).values() if n["status"] in ("active", "deferred")
    ]
    for item in cascading.track(uow, active).values():
        cascading.carry_out(uow, item, item.cascade.cancel(item.state, why), now)


def _carry_out(
    uow: UnitOfWork,
    row: Row,
    definition: JourneyDefinition,
    contact: Row,
    result: Advance,
    routing: Mapping[Channel, str],
    now: datetime,
) -> None:
    outcomes = {k: dict(v) for k, v in result.state.outcomes.items()}
    planned = [(send, new_id("ntf")) for send in result.sends]
    for send, notification_id in planned:
        outcomes.setdefault(send.step.id, {})["notification"] = notification_id
    state = replace(result.state, outcomes=outcomes)
    # The run is written before its notifications: a cascade that ends at once wakes it.
    _write(uow, row, Advance(state, history=result.history), now)
    for update in result.updates:
        _set_attributes(uow, contact, update.attributes, now)
    for send, notification_id in planned:
        _send(uow, row, contact, send.step, notification_id, routing, now)


def _write(uow: UnitOfWork, row: Row, result: Advance, now: datetime) -> None:
    state = result.state
    values: Row = {
        "status": state.status.value,
        "position": state.position,
        "waiting": _waiting_json(state.waiting),
        "due_at": state.due_at,
        "waiting_event": state.waiting.event if state.waiting else None,
        "variant": state.variant,
        "outcomes": {k: dict(v) for k, v in state.outcomes.items()},
        "updated_at": now,
    }
    if state.finished and row.get("ended_at") is None:
        values["ended_at"] = now
        values["ended_reason"] = result.history[-1].text if result.history else state.status
        uow.after_commit(metrics.RUNS_ENDED.labels(state.status.value).inc)
    row.update(values)
    uow.runs.set(row["id"], values)
    if state.due_at is not None:
        uow.work_added("runs")  # workers asleep until a later timer look again
    for entry in result.history:
        _history(uow, row, entry.step, entry.kind, entry.text, now)


def _send(
    uow: UnitOfWork,
    row: Row,
    contact: Row,
    step: Any,
    notification_id: str,
    routing: Mapping[Channel, str],
    now: datetime,
) -> None:
    try:
        steps = notifications.route_steps(step.cascade, routing)
    except Invalid as exc:
        _history(uow, row, step.id, "failed", f"not sent: {exc.message}", now)
        row["outcomes"][step.id] |= {"status": "failed", "failed": True, "final": True}
        uow.runs.set(row["id"], {"outcomes": row["outcomes"], "due_at": now})
        return
    notifications.create_notification(
        uow,
        contact=contact,
        category=step.category,
        priority=step.priority,
        steps=steps,
        now=now,
        run_id=row["id"],
        notification_id=notification_id,
        data=_event_data(row),
        labels=notifications.Labels(
            content_key=step.content_key,
            topic=step.topic,
            personal=_personal(row.get("trigger") or {}),
            journey=row["journey_id"],
        ),
    )


def _personal(trigger: Mapping[str, Any]) -> bool:
    """A run started for one contact (an event, an API call) is personal; one started for
    many at once (a segment, a schedule, a date) is mass. Runs entered before triggers were
    marked ``mass`` are told by their trigger's type."""
    if "mass" in trigger:
        return not trigger["mass"]
    return trigger.get("type") not in MASS_TRIGGERS


def _event_data(row: Row) -> dict[str, Any]:
    """What a journey's templates see as ``event``: the trigger's payload and type."""
    trigger = row.get("trigger") or {}
    return {**(trigger.get("payload") or {}), "type": trigger.get("type")}


def _set_attributes(
    uow: UnitOfWork, contact: Row, attributes: Mapping[str, Any], now: datetime
) -> None:
    """Merge into the contact's attributes; a null value removes the attribute."""
    merged = dict(contact.get("attributes") or {})
    for key, value in attributes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    contact["attributes"] = merged
    uow.contacts.set(contact["id"], {"attributes": merged, "updated_at": now})


def _history(
    uow: UnitOfWork, row: Row, step: str | None, kind: str, text: str, now: datetime
) -> None:
    uow.runs.add_history(
        {
            "run_id": row["id"],
            "step": step,
            "kind": kind,
            "text": text,
            "at": now,
        }
    )


# -- state and scope ---------------------------------------------------------------------


def _state(row: Mapping[str, Any]) -> RunState:
    return RunState(
        status=RunStatus(row["status"]),
        position=row["position"],
        waiting=_waiting_from(row["waiting"]),
        variant=row["variant"],
        outcomes=row["outcomes"] or {},
    )


def _waiting_json(waiting: Waiting | None) -> dict[str, Any] | None:
    """Only what is set: a million waiting runs each keep this."""
    if waiting is None:
        return None
    data = {
        "step": waiting.step,
        "kind": waiting.kind.value,
        "until": waiting.until.isoformat() if waiting.until else None,
        "event": waiting.event,
        "send": waiting.send,
    }
    return {key: value for key, value in data.items() if value is not None}


def _waiting_from(data: Mapping[str, Any] | None) -> Waiting | None:
    if not data:
        return None
    until = datetime.fromisoformat(data["until"]) if data.get("until") else None
    return Waiting(data["step"], WaitKind(data["kind"]), until, data.get("event"), data.get("send"))


def _context(row: Row, contact: Row, sends: Mapping[str, Mapping[str, Any]]) -> Context:
    steps: dict[str, dict[str, Any]] = {}
    for step_id, outcome in _step_outcomes(row).items():
        steps[step_id] = dict(outcome) | dict(sends.get(outcome.get("notification", ""), {}))
    trigger = row["trigger"] or {}
    scope = contact_scope(contact) | {
        "event": trigger,
        "payload": trigger.get("payload", {}),
        "steps": steps,
        "events": (row["outcomes"] or {}).get(EVENTS_KEY, {}),
        # The last answer a reply wait or a survey received (reply.text, reply.rating).
        "reply": (row["outcomes"] or {}).get(REPLY_KEY, {}),
        "run": {
            "id": row["id"],
            "journey": row["journey_id"],
            "version": row["version"],
            "variant": row["variant"],
            "entered_at": row["entered_at"].isoformat(),
        },
    }
    return Context(row["journey_id"], row["contact_id"], contact.get("timezone") or "UTC", scope)


def contact_scope(contact: Mapping[str, Any]) -> dict[str, Any]:
    fields = {
        "external_id": contact.get("external_id"),
        "locale": contact.get("locale"),
        "timezone": contact.get("timezone"),
    }
    return {"contact": dict(contact.get("attributes") or {}) | fields}


def _seen(event: Mapping[str, Any]) -> EventSeen:
    return EventSeen(event["type"], event["payload"], event["occurred_at"], event.get("key"))


def _step_outcomes(row: Mapping[str, Any]) -> dict[str, Any]:
    """The outcomes of steps, without what is kept beside them (``@events``, ``@reply``)."""
    return {k: v for k, v in (row["outcomes"] or {}).items() if not k.startswith("@")}


def _notification_ids(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    return {
        outcome["notification"]
        for row in rows
        for outcome in _step_outcomes(row).values()
        if outcome.get("notification")
    }


def _send_outcomes(uow: UnitOfWork, ids: set[str]) -> dict[str, dict[str, Any]]:
    """What branches may ask of each notification: how far its messages got, and whether
    its cascade has ended."""
    if not ids:
        return {}
    summaries = uow.notifications.summaries(ids)
    best: dict[str, Row] = {}
    for message in uow.notifications.messages_of(ids):
        current = best.get(message["notification_id"])
        if current is None or _rank(message) >= _rank(current):
            best[message["notification_id"]] = message
    out: dict[str, dict[str, Any]] = {}
    for notification_id, summary in summaries.items():
        furthest = best.get(notification_id)
        status = MessageStatus(furthest["status"]) if furthest else None
        out[notification_id] = {
            "status": status.value if status else summary["status"],
            "channel": furthest["channel"] if furthest else None,
            "final": summary["status"] not in ("active", "deferred"),
            "failed": summary["status"] == "failed",
            **{until.value: bool(status and reaches(status, until)) for until in Until},
        }
    return out


def _rank(message: Mapping[str, Any]) -> tuple[int, int]:
    """Furthest first: a delivered SMS tells more than a cancelled Viber before it."""
    order = list(Until)
    status = MessageStatus(message["status"])
    reached = max((i + 1 for i, u in enumerate(order) if reaches(status, u)), default=0)
    return reached, message["step"]
