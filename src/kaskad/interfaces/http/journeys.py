"""Journeys: apply and check definitions, publish and pause them, start and read runs,
see how many runs are at each step, and simulate a journey for one contact."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request, Response

from kaskad.domain.journeys.definition import (
    ApiTrigger,
    DateTrigger,
    EventTrigger,
    ScheduleTrigger,
    SegmentTrigger,
    Trigger,
)
from kaskad.interfaces import simulation
from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.interfaces.http.documents import Body, problems_by_path, read_body
from kaskad.interfaces.http.errors import ApiError
from kaskad.interfaces.http.journey_models import (
    AppliedOut,
    EnteredOut,
    JourneyDetailOut,
    JourneyIn,
    JourneyListOut,
    JourneyOut,
    RunIn,
    RunOut,
    SimulateIn,
    SimulationOut,
    ValidOut,
)
from kaskad.services import journeys, run_views, runs
from kaskad.services.definitions import check
from kaskad.services.journeys import JourneyStatus

router = APIRouter(prefix="/v1", tags=["journeys"], dependencies=[Authorized])

TRIGGER_KINDS: Final[dict[type, str]] = {
    EventTrigger: "event",
    SegmentTrigger: "segment",
    ScheduleTrigger: "schedule",
    DateTrigger: "date",
    ApiTrigger: "api",
}
_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": JourneyIn.model_json_schema()},
            "application/yaml": {
                "schema": {"type": "string", "description": "The journey document itself"}
            },
        },
    }
}


@dataclass(frozen=True, slots=True)
class Document:
    source: str
    activate: bool
    from_object: bool


async def document(
    request: Request,
    activate: Annotated[
        bool | None, Query(description="For a raw YAML/JSON body: make it live (default true)")
    ] = None,
) -> Document:
    """The journey from the body: a JSON envelope, or the document with a YAML type."""
    body, envelope = await read_body(request, JourneyIn, "journey")
    chosen = (
        envelope.activate if envelope is not None and envelope.activate is not None else activate
    )
    return Document(body.source, True if chosen is None else chosen, body.from_object)


DocumentDep = Annotated[Document, Depends(document)]


def _problems_for(doc: Document) -> AbstractContextManager[None]:
    return problems_by_path(Body(doc.source, doc.from_object), "invalid_journey", "journey")


def trigger_kind(trigger: Trigger) -> str:
    return TRIGGER_KINDS[type(trigger)]


def _journey(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "version": row["version"],
        "latest": row["latest"],
        "trigger": row["trigger_kind"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


@router.post(
    "/journeys",
    status_code=201,
    response_model=AppliedOut,
    openapi_extra=_BODY,
    responses={200: {"model": AppliedOut, "description": "The latest version already"}},
)
def post_journey(doc: DocumentDep, app: AppDep, response: Response) -> Any:
    """Store a journey as its next version (201), or find it unchanged (200: the document
    equals the latest version). With `activate` (the default) the version goes live: new
    runs enter it, runs in flight keep theirs. Send `{"source": "<YAML or JSON>"}`,
    `{"definition": {...}}`, or the document itself as `application/yaml`. Problems come
    back as 422 `invalid_journey` with every `{path, line, message}`."""
    with _problems_for(doc):
        applied = journeys.apply_journey(
            app.uow(), source=doc.source, activate=doc.activate, now=app.clock.now()
        )
    response.status_code = 201 if applied.created else 200
    return {
        "id": applied.id,
        "version": applied.version,
        "created": applied.created,
        "status": applied.status.value,
    }


@router.post("/journeys:validate", response_model=ValidOut, openapi_extra=_BODY)
def validate_journey(doc: DocumentDep) -> Any:
    """Check a journey without storing it: 200 with a summary, or 422 `invalid_journey`
    listing every problem with its path and line."""
    with _problems_for(doc):
        definition = check(doc.source)
    return {
        "valid": True,
        "id": definition.id,
        "name": definition.name,
        "steps": len(definition.steps),
        "trigger": trigger_kind(definition.trigger),
    }


@router.get("/journeys", response_model=JourneyListOut)
def list_journeys(app: AppDep) -> Any:
    """Every journey with its status, live version and latest version."""
    return {"journeys": [_journey(row) for row in journeys.list_journeys(app.uow())]}


@router.get("/journeys/{journey_id}", response_model=JourneyDetailOut)
def get_journey(
    journey_id: str,
    app: AppDep,
    version: Annotated[int | None, Query(ge=1, description="Show this version's source")] = None,
) -> Any:
    """The journey, the source of its latest version (or of `?version=N`), and per version
    and step: runs that entered the step, wait there now, and ended there. Endings outside
    a step (the end of the list, a goal, an exit event) count on the version."""
    view = run_views.journey_overview(app.uow(), journey_id=journey_id)
    row = view["journey"]
    source_version, source = row["latest"] or None, view["source"]
    if version is not None:
        stored = run_views.journey_source(app.uow(), journey_id=journey_id, version=version)
        source_version, source = stored["version"], stored["source"]
    return _journey(row) | {
        "versions": view["versions"],
        "source_version": source_version,
        "source": source,
    }


def _set_status(
    app: AppDep, journey_id: str, status: JourneyStatus, *, publish: bool = False
) -> dict[str, Any]:
    row = journeys.set_status(
        app.uow(), journey_id=journey_id, status=status, now=app.clock.now(), publish=publish
    )
    return _journey(row)


@router.post("/journeys/{journey_id}:publish", response_model=JourneyOut)
def publish_journey(journey_id: str, app: AppDep) -> Any:
    """Make the latest version live and the journey active: new runs enter that version,
    runs in flight keep theirs. Also brings an archived journey back."""
    return _set_status(app, journey_id, JourneyStatus.ACTIVE, publish=True)


@router.post("/journeys/{journey_id}:pause", response_model=JourneyOut)
def pause_journey(journey_id: str, app: AppDep) -> Any:
    """Stop new runs from entering; runs in flight go on."""
    return _set_status(app, journey_id, JourneyStatus.PAUSED)


@router.post("/journeys/{journey_id}:resume", response_model=JourneyOut)
def resume_journey(journey_id: str, app: AppDep) -> Any:
    """Let new runs enter the live version again (a newer draft stays a draft)."""
    return _set_status(app, journey_id, JourneyStatus.ACTIVE)


@router.post("/journeys/{journey_id}:archive", response_model=JourneyOut)
def archive_journey(journey_id: str, app: AppDep) -> Any:
    """Retire the journey: no new runs, and the runs in flight end (exited)."""
    return _set_status(app, journey_id, JourneyStatus.ARCHIVED)


@router.post(
    "/journeys/{journey_id}/runs",
    status_code=201,
    response_model=EnteredOut,
    responses={200: {"model": EnteredOut, "description": "Not entered (re-entry rule)"}},
)
def post_run(journey_id: str, body: RunIn, app: AppDep, response: Response) -> Any:
    """Put a contact into an active journey (the `api` trigger): 201 with the run id, or
    200 with `entered: false` and the reason when its re-entry rule refuses."""
    entered = runs.enter(
        app.uow(),
        journey_id=journey_id,
        external_id=body.contact,
        data=body.data,
        routing=app.routing,
        now=app.clock.now(),
    )
    response.status_code = 201 if entered.run_id else 200
    return {"id": entered.run_id, "entered": entered.run_id is not None, "reason": entered.reason}


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: str, app: AppDep) -> Any:
    """A run: where it is, what it waits for, its outcomes, and its history, oldest first."""
    return run_views.get_run(app.uow(), run_id=run_id)


@router.post("/journeys/{journey_id}:simulate", response_model=SimulationOut)
def simulate_journey(journey_id: str, body: SimulateIn, app: AppDep) -> Any:
    """Run the journey for one made-up contact on a throwaway database and a virtual clock:
    feed the events at their times (`at`: `+2d` or an ISO time), choose the sandbox's
    outcome per channel, and get the timeline of steps, messages and decisions. Nothing is
    stored and nothing is sent. `source` defaults to the stored latest version."""
    source = body.source
    if source is None:
        source = run_views.journey_source(app.uow(), journey_id=journey_id)["source"]
    elif (posted := check(source).id) != journey_id:
        raise ApiError(
            422,
            "journey_id_mismatch",
            f"the source is journey {posted!r}, not {journey_id!r}",
            [{"field": "source", "message": f"id is {posted!r}"}],
        )
    result = simulation.simulate(
        source,
        contact=body.contact.model_dump(exclude_unset=True),
        events=[event.model_dump(exclude_unset=True) for event in body.events],
        outcomes=[outcome.model_dump(exclude_unset=True) for outcome in body.outcomes],
        replies=[reply.model_dump(exclude_unset=True) for reply in body.replies],
        horizon=simulation.parse_horizon(body.horizon),
        start=body.start,
        data=body.data,
        default_region=app.settings.default_phone_region,
        filename=journey_id,
    )
    return result.as_dict()
