"""Events: one or a batch, idempotent by their `id`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from kaskad.adapters import metrics
from kaskad.bootstrap import App
from kaskad.interfaces.http.batching import GroupCommit
from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.interfaces.http.models import EventAcceptedOut, EventBatchIn, EventBatchOut, EventIn
from kaskad.services import events
from kaskad.services.events import EventAccepted

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Authorized])


def _record(app: App, items: Sequence[EventIn]) -> list[EventAccepted]:
    accepted = events.record_events(
        app.uow(),
        events=[events.EventIn(e.contact, e.type, e.id, e.occurred_at, e.payload) for e in items],
        create_contacts=app.settings.create_unknown_contacts,
        routing=app.routing,
        now=app.clock.now(),
    )
    metrics.EVENTS_ACCEPTED.inc(sum(1 for a in accepted if not a.duplicate))
    return accepted


def group_commit(app: App) -> GroupCommit[EventIn, EventAccepted]:
    """One per application: single events arriving together share a transaction."""
    window = app.settings.event_group_window_ms / 1000
    return GroupCommit(lambda items: _record(app, items), window=window)


@router.post("/events", status_code=202, response_model=EventAcceptedOut)
async def post_event(body: EventIn, request: Request) -> Any:
    """Record an event. The same `id` for the same contact is stored once (`duplicate`).
    Concurrent requests are written together in one transaction (group commit)."""
    group: GroupCommit[EventIn, EventAccepted] = request.app.state.event_group
    accepted = await group.submit(body)
    return {"id": accepted.id, "duplicate": accepted.duplicate}


@router.post(
    "/events:batch",
    status_code=202,
    response_model=EventBatchOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventBatchIn.model_json_schema()}},
        }
    },
)
async def post_events_batch(request: Request, app: AppDep) -> Any:
    """Record up to 1,000 events in one transaction: all are stored, or none."""
    body = await _batch_body(request)
    accepted = await run_in_threadpool(_record, app, body.events)
    # Built here rather than re-validated against the response model: 1,000 results add up.
    results = [{"id": a.id, "duplicate": a.duplicate} for a in accepted]
    return Response(json.dumps({"results": results}), 202, media_type="application/json")


async def _batch_body(request: Request) -> EventBatchIn:
    """Validated straight from the bytes: a thousand events parsed once, in pydantic's core,
    with the same errors FastAPI would give."""
    raw = await request.body()
    if not raw.strip():
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    try:
        return EventBatchIn.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([e | {"loc": ("body", *e["loc"])} for e in errors]) from None
