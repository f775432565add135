"""Events: one or a batch, idempotent by their `id`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kaskad.adapters import metrics
from kaskad.bootstrap import App
from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.interfaces.http.models import EventAcceptedOut, EventBatchIn, EventBatchOut, EventIn
from kaskad.services import events
from kaskad.services.events import EventAccepted

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Authorized])


def _record(app: App, items: list[EventIn]) -> list[EventAccepted]:
    accepted = events.record_events(
        app.uow(),
        events=[events.EventIn(e.contact, e.type, e.id, e.occurred_at, e.payload) for e in items],
        create_contacts=app.settings.create_unknown_contacts,
        now=app.clock.now(),
    )
    metrics.EVENTS_ACCEPTED.inc(sum(1 for a in accepted if not a.duplicate))
    return accepted


@router.post("/events", status_code=202, response_model=EventAcceptedOut)
def post_event(body: EventIn, app: AppDep) -> Any:
    """Record an event. The same `id` for the same contact is stored once (`duplicate`)."""
    [accepted] = _record(app, [body])
    return {"id": accepted.id, "duplicate": accepted.duplicate}


@router.post("/events:batch", status_code=202, response_model=EventBatchOut)
def post_events_batch(body: EventBatchIn, app: AppDep) -> Any:
    """Record up to 1,000 events in one transaction."""
    return {"results": [{"id": a.id, "duplicate": a.duplicate} for a in _record(app, body.events)]}
