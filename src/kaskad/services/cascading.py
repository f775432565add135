"""Carrying out cascade transitions: the shared step of accepting, timing out and reporting.

The domain decides (``Cascade`` returns a ``Transition``); this module turns the decision
into rows in the current unit of work: messages, outbox entries, statuses and decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kaskad.adapters import metrics
from kaskad.adapters.storage.unit_of_work import UnitOfWork
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
from kaskad.domain.ids import new_id
from kaskad.domain.vocabulary import Category, Channel, MessageStatus, Until
from kaskad.services import policy

Row = Mapping[str, Any]
log = logging.getLogger("kaskad.decisions")


def steps_to_json(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [
        {
            "channel": step.channel.value,
            "content": dict(step.content),
            "until": step.until.value,
            "timeout_s": step.timeout.total_seconds(),
            "provider": step.provider,
            **({"template": step.template} if step.template else {}),
        }
        for step in steps
    ]


def steps_from_json(raw: Iterable[Mapping[str, Any]]) -> list[Step]:
    return [
        Step(
            channel=Channel(item["channel"]),
            content=item["content"],
            until=Until(item["until"]),
            timeout=timedelta(seconds=item["timeout_s"]),
            provider=item["provider"],
            template=item.get("template"),
        )
        for item in raw
    ]


def reachability(contact: Row | None) -> Reachability:
    if contact is None:
        return Reachability(erased=True)
    return Reachability(
        phone=contact["phone"],
        email=contact["email"],
        push_tokens=tuple(contact["push_tokens"] or ()),
        consents=contact["consents"] or {},
        erased=contact["erased_at"] is not None,
    )


@dataclass
class Tracked:
    """A notification being worked on in this unit of work, with its messages by step."""

    row: dict[str, Any]
    cascade: Cascade
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def state(self) -> CascadeState:
        return CascadeState(
            CascadeStatus(self.row["status"]), self.row["current_step"], self.row["due_at"]
        )


def track(uow: UnitOfWork, notifications: Iterable[Row]) -> dict[str, Tracked]:
    """Load what the cascades of these notifications need: contacts and messages.

    In contact order: the policy locks each contact it decides for, and workers that take
    locks in one order never deadlock.
    """
    rows = sorted((dict(r) for r in notifications), key=lambda r: (r["contact_id"], r["id"]))
    contacts = uow.contacts.by_ids(r["contact_id"] for r in rows)
    tracked = {r["id"]: track_new(r, contacts.get(r["contact_id"]), uow) for r in rows}
    for message in uow.notifications.messages_of(tracked):
        tracked[message["notification_id"]].messages[message["step"]] = dict(message)
    return tracked


def carry_out(uow: UnitOfWork, item: Tracked, transition: Transition, now: datetime) -> None:
    for effect in transition.effects:
        if isinstance(effect, SendStep):
            _send_step(uow, item, effect.index, now)
        elif isinstance(effect, SupersedeStep) and effect.index in item.messages:
            _supersede(uow, item.messages[effect.index], now, by_next=effect.by_next)
    row = item.row
    for decision in transition.decisions:
        uow.after_commit(metrics.DECISIONS.labels(decision.kind.value).inc)
        if decision.kind is not DecisionKind.SEND:
            uow.after_commit(_logger(row["id"], decision.kind, decision.reason))
        message = item.messages.get(decision.step) if decision.step is not None else None
        uow.notifications.add_decision(
            {
                "contact_id": row["contact_id"],
                "notification_id": row["id"],
                "message_id": message["id"] if message else None,
                "step": decision.step,
                "kind": decision.kind.value,
                "reason": decision.reason,
                "at": now,
            }
        )
    keeper = policy.gatekeeper(uow)
    # A send or a deferral changes the contact's facts; with other notifications planned,
    # one of them may have lost its slot to this one.
    replan = bool(transition.decisions) and keeper.forget(row["contact_id"])
    state = transition.state
    if state != item.state or transition.effects:
        values: dict[str, Any] = {
            "status": state.status.value,
            "current_step": state.current,
            "due_at": state.due_at,
            "updated_at": now,
        }
        if state.finished and row.get("finished_at") is None:
            values["finished_at"] = now
            if row.get("run_id"):
                uow.runs.wake([row["run_id"]], now)  # a journey may wait for this cascade
                uow.work_added("runs")
        row.update(values)
        uow.notifications.set(row["id"], values)
    if replan and any(d.kind in _PLANNING for d in transition.decisions):
        keeper.replan(row["contact_id"], now)


_PLANNING = frozenset({DecisionKind.SEND, DecisionKind.DEFER})


def _logger(notification_id: str, kind: DecisionKind, reason: str) -> Callable[[], None]:
    # Reasons name channels and rules, never addresses; the log filter masks them anyway.
    return lambda: log.info("%s %s: %s", notification_id, kind.value, reason)


def set_status(
    uow: UnitOfWork,
    message: dict[str, Any],
    status: MessageStatus,
    now: datetime,
    *,
    applied: bool = True,
    provider_status: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Record a status in the history; move the message to it when ``applied``."""
    uow.notifications.add_status(
        {
            "message_id": message["id"],
            "contact_id": message["contact_id"],
            "status": status.value,
            "at": now,
            "provider_status": provider_status,
            "applied": applied,
        }
    )
    values: dict[str, Any] = dict(extra or {})
    if applied:
        values |= {"status": status.value}
        uow.after_commit(metrics.MESSAGES.labels(message["channel"], status.value).inc)
    if values:
        values["updated_at"] = now
        message.update(values)
        uow.notifications.set_message(message["id"], values)


def _send_step(uow: UnitOfWork, item: Tracked, index: int, now: datetime) -> None:
    step = item.cascade.steps[index]
    row = item.row
    message = {
        "id": new_id("msg"),
        "notification_id": row["id"],
        "contact_id": row["contact_id"],
        "step": index,
        "channel": step.channel.value,
        "provider": step.provider or "sandbox",
        "address": item.cascade.contact.address(step.channel),
        "content": templated(step) if step.template else dict(step.content),
        "status": MessageStatus.QUEUED.value,
        "superseded": False,
        "created_at": now,
        "updated_at": now,
    }
    uow.notifications.add_message(message)
    policy.log_send(uow, row, message, now)
    uow.work_added()
    uow.after_commit(metrics.MESSAGES.labels(message["channel"], "queued").inc)
    item.messages[index] = message
    uow.notifications.add_status(
        {
            "message_id": message["id"],
            "contact_id": row["contact_id"],
            "status": MessageStatus.QUEUED.value,
            "at": now,
            "provider_status": None,
            "applied": True,
        }
    )
    uow.notifications.enqueue(
        {
            "message_id": message["id"],
            "contact_id": row["contact_id"],
            "provider": message["provider"],
            "priority": row["priority"],
            "due_at": now,
            "attempts": 0,
            "lease_until": None,
        }
    )


TEMPLATE_KEY = "$template"


def templated(step: Step) -> dict[str, Any]:
    """A templated message's content until it is rendered at send time: the template to
    render and the step's overrides."""
    return {TEMPLATE_KEY: step.template, **step.content}


def _supersede(uow: UnitOfWork, message: dict[str, Any], now: datetime, *, by_next: bool) -> None:
    """A message still waiting in the outbox is cancelled and never sent; one already handed
    to its provider keeps its real status and, when a later step took over, is marked
    superseded."""
    if message["status"] == MessageStatus.QUEUED.value:
        uow.flush()  # the outbox row may have been written earlier in this unit of work
        # Locked: a sender claiming this row right now either wins (and we see its lease)
        # or has not started (and skips the row we are about to delete).
        queued = uow.notifications.outbox_rows([message["id"]], lock=True).get(message["id"])
        lease = queued["lease_until"] if queued is not None else None
        in_flight = lease is not None and lease > now
        if queued is not None and not in_flight:
            cancel_queued(uow, message, now, superseded=by_next)
            return
    if not by_next:
        return
    message["superseded"] = True
    uow.notifications.set_message(message["id"], {"superseded": True, "updated_at": now})


def track_new(row: Mapping[str, Any], contact: Row | None, uow: UnitOfWork) -> Tracked:
    """Track one notification whose contact is at hand (e.g. created in this unit of work);
    its cascade asks the policy before each step it sends."""
    messages: dict[int, dict[str, Any]] = {}
    gate = policy.gatekeeper(uow).gate(row, contact, messages)
    cascade = Cascade(
        steps=steps_from_json(row["steps"]),
        category=Category(row["category"]),
        contact=reachability(contact),
        gate=gate,
    )
    return Tracked(row=dict(row), cascade=cascade, messages=messages)


def cancel_queued(
    uow: UnitOfWork, message: dict[str, Any], now: datetime, *, superseded: bool
) -> None:
    """Take a message that never reached its provider out of the outbox, for good."""
    uow.notifications.dequeue(message["id"])
    set_status(uow, message, MessageStatus.CANCELLED, now, extra={"superseded": superseded})
