"""Notifications: accept a cascade, read its messages and decisions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from kaskad.adapters import metrics
from kaskad.domain.cascades import DEFAULT_TIMEOUT, Step
from kaskad.domain.durations import parse_duration
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.vocabulary import DEFAULT_PRIORITY
from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.interfaces.http.errors import ApiError
from kaskad.interfaces.http.models import AcceptedOut, NotificationIn, NotificationOut
from kaskad.services import notifications

router = APIRouter(prefix="/v1", tags=["notifications"], dependencies=[Authorized])


def _request(body: NotificationIn) -> NotificationRequest:
    steps = []
    for index, step in enumerate(body.cascade):
        try:
            timeout = DEFAULT_TIMEOUT if step.timeout is None else parse_duration(step.timeout)
        except ValueError as exc:
            raise ApiError(
                422,
                "invalid_duration",
                f"cascade[{index}].timeout: {exc}",
                [{"field": f"cascade[{index}].timeout", "message": str(exc)}],
            ) from exc
        steps.append(
            Step(step.channel, step.content, step.until, timeout, step.provider, step.template)
        )
    return NotificationRequest(
        contact=body.contact,
        category=body.category,
        priority=body.priority if body.priority is not None else DEFAULT_PRIORITY[body.category],
        steps=steps,
        idempotency_key=body.idempotency_key,
        data=body.data,
        content_key=body.content_key,
        topic=body.topic,
        valid_until=body.valid_until,
        personal=body.personal,
    )


@router.post("/notifications", status_code=202, response_model=AcceptedOut)
def post_notification(body: NotificationIn, app: AppDep, response: Response) -> Any:
    """Accept a notification and start its cascade. Each step waits for its `until` status
    for up to `timeout` (default 24h); failing that, or on a failure report, the next step
    starts. Steps the contact cannot receive are skipped with a logged reason. The same
    `idempotency_key` for the same contact returns the notification already accepted."""
    accepted = notifications.accept_notification(
        app.uow(), request=_request(body), routing=app.routing, now=app.clock.now()
    )
    if accepted.created:
        metrics.NOTIFICATIONS_ACCEPTED.labels(body.category.value).inc()
    else:
        response.status_code = 200
    return {"id": accepted.id, "created": accepted.created}


@router.get("/notifications/{notification_id}", response_model=NotificationOut)
def get_notification(notification_id: str, app: AppDep) -> Any:
    view = notifications.get_notification(app.uow(), notification_id=notification_id)
    row, contact = view["notification"], view["contact"]
    messages = []
    for message, history in view["messages"]:
        first_at: dict[str, Any] = {}
        for entry in history:
            if entry["applied"]:
                first_at.setdefault(entry["status"], entry["at"])
        messages.append(
            {
                k: message[k]
                for k in (
                    "id",
                    "step",
                    "channel",
                    "provider",
                    "status",
                    "superseded",
                    "provider_message_id",
                    "error",
                    "cost",
                    "currency",
                )
            }
            | {"statuses": first_at, "history": history}
        )
    return {
        "id": row["id"],
        "contact": contact["external_id"] if contact else None,
        "category": row["category"],
        "priority": row["priority"],
        "status": row["status"],
        "due_at": row["due_at"] if row["status"] == "deferred" else None,
        "content_key": row["content_key"],
        "topic": row["topic"],
        "valid_until": row["valid_until"],
        "idempotency_key": row["idempotency_key"],
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
        "messages": messages,
        "decisions": view["decisions"],
    }
