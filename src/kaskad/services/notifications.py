"""Accepting notifications and reading them back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.cascades import Step
from kaskad.domain.ids import new_id
from kaskad.domain.notifications import NotificationRequest, check_steps
from kaskad.domain.vocabulary import Category, Channel
from kaskad.services import cascading
from kaskad.services.errors import Invalid, NotFound


@dataclass(frozen=True, slots=True)
class Labels:
    """What the policy reads of a notification besides its category and priority."""

    content_key: str | None = None
    topic: str | None = None
    valid_until: datetime | None = None
    personal: bool = True
    journey: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    id: str
    created: bool


def accept_notification(
    uow: UnitOfWork,
    *,
    request: NotificationRequest,
    routing: Mapping[Channel, str],
    now: datetime,
) -> Accepted:
    """Store the notification and start its cascade; the same idempotency key returns the
    notification already accepted instead of a new one."""
    check_steps(request.steps)
    steps = route_steps(request.steps, routing)
    try:
        return _accept(uow, request, steps, now)
    except IntegrityError:
        # Another request with the same idempotency key won the race: return its id.
        existing = _existing(uow, request)
        if existing is None:
            raise
        return Accepted(existing, created=False)


def _accept(
    uow: UnitOfWork, request: NotificationRequest, steps: list[Step], now: datetime
) -> Accepted:
    with uow:
        contact = uow.contacts.by_external_id(request.contact)
        if contact is None:
            # The contact is named in the body, not the path: the request is what is wrong.
            raise Invalid("contact_not_found", f"no contact with external id {request.contact!r}")
        if request.idempotency_key:
            existing = uow.notifications.id_for_key(contact["id"], request.idempotency_key)
            if existing is not None:
                return Accepted(existing, created=False)
        notification_id = create_notification(
            uow,
            contact=contact,
            category=request.category,
            priority=request.priority,
            steps=steps,
            idempotency_key=request.idempotency_key,
            now=now,
            data=request.data,
            labels=Labels(
                request.content_key, request.topic, request.valid_until, request.personal
            ),
        )
        uow.commit()
        return Accepted(notification_id, created=True)


def create_notification(
    uow: UnitOfWork,
    *,
    contact: Mapping[str, Any],
    category: Category,
    priority: int,
    steps: Sequence[Step],
    now: datetime,
    idempotency_key: str | None = None,
    run_id: str | None = None,
    notification_id: str | None = None,
    data: Mapping[str, Any] | None = None,
    labels: Labels | None = None,
) -> str:
    """Store a notification and start its cascade, inside the caller's unit of work."""
    labels = labels or Labels()
    row = {
        "id": notification_id or new_id("ntf"),
        "contact_id": contact["id"],
        "idempotency_key": idempotency_key,
        "category": category.value,
        "priority": priority,
        "steps": cascading.steps_to_json(steps),
        "status": "active",
        "current_step": -1,
        "due_at": None,
        "created_at": now,
        "updated_at": now,
        "finished_at": None,
        "run_id": run_id,
        "data": dict(data) if data else None,
        "content_key": labels.content_key,
        "topic": labels.topic,
        "journey_id": labels.journey,
        "valid_until": labels.valid_until,
        "personal": labels.personal,
    }
    uow.notifications.add(row)
    item = cascading.track_new(row, contact, uow)
    cascading.carry_out(uow, item, item.cascade.start(now), now)
    return str(row["id"])


def _existing(uow: UnitOfWork, request: NotificationRequest) -> str | None:
    if not request.idempotency_key:
        return None
    with uow:
        contact = uow.contacts.by_external_id(request.contact)
        if contact is None:
            return None
        return uow.notifications.id_for_key(contact["id"], request.idempotency_key)


def route_steps(steps: Sequence[Step], routing: Mapping[Channel, str]) -> list[Step]:
    """Name each step's provider; a channel with none configured is refused."""
    return [_routed(i, step, routing) for i, step in enumerate(steps)]


def _routed(index: int, step: Step, routing: Mapping[Channel, str]) -> Step:
    provider = step.provider or routing.get(step.channel)
    if provider is None or provider not in routing.values():
        raise Invalid(
            "channel_not_configured",
            f"no provider configured for {step.channel}"
            + (f" named {step.provider!r}" if step.provider else ""),
            {"field": f"cascade[{index}].channel"},
        )
    return Step(step.channel, step.content, step.until, step.timeout, provider, step.template)


def get_notification(uow: UnitOfWork, *, notification_id: str) -> dict[str, Any]:
    """The notification, its messages with the time of each status, and its decisions."""
    with uow:
        row = uow.notifications.get(notification_id)
        if row is None:
            raise NotFound("notification_not_found", f"no notification {notification_id!r}")
        contact = uow.contacts.by_ids([row["contact_id"]]).get(row["contact_id"])
        messages = uow.notifications.messages_of([notification_id])
        history = uow.notifications.statuses_of(m["id"] for m in messages)
        decisions = uow.notifications.decisions_of(notification_id)
    by_message: dict[str, list[Mapping[str, Any]]] = {}
    for entry in history:
        by_message.setdefault(entry["message_id"], []).append(entry)
    return {
        "notification": dict(row),
        "contact": dict(contact) if contact else None,
        "messages": [(dict(m), by_message.get(m["id"], [])) for m in messages],
        "decisions": [dict(d) for d in decisions],
    }
