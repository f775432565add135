"""The contact pressure policy: apply and read it, ask it about a notification, see a
contact's calendar, keep the suppression list."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from kaskad.bootstrap import App
from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.interfaces.http.documents import Body, DocumentIn, problems_by_path, read_body
from kaskad.interfaces.http.models import NotificationIn, Strict
from kaskad.interfaces.http.notifications import _request
from kaskad.services import policy, policy_views, suppressions

router = APIRouter(prefix="/v1", tags=["policy"], dependencies=[Authorized])

EXAMPLE_POLICY: Final = """caps:
  marketing: 2/week
  all: [2/day, 5/week]
quiet_hours:
  marketing: "21:00-09:00"
dedup_window: 24h
relevance:
  - after: loan_repaid
    suppress: {topic: loan_offer}
    for: 30d
"""
_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "application/yaml": {
                "schema": {"type": "string", "description": "The policy document itself"}
            },
        },
    }
}


class PolicyIn(DocumentIn):
    """The policy as YAML/JSON text (`source`) or as a JSON object (`definition`)."""

    source: str | None = Field(None, examples=[EXAMPLE_POLICY])


class PolicyAppliedOut(BaseModel):
    version: int
    created: bool = Field(description="False when the document equals the policy in force")


class PolicyVersionOut(BaseModel):
    version: int
    digest: str
    created_at: datetime


class PolicyOut(BaseModel):
    version: int = Field(description="0 while the defaults are in force")
    source: str | None
    versions: list[PolicyVersionOut]


class StepVerdictOut(BaseModel):
    step: int
    channel: str
    verdict: str
    reason: str
    until: datetime | None = None
    notes: list[str] = []


class ExplainOut(BaseModel):
    contact: str
    verdict: str = Field(description="send, defer, suppress or fail")
    reason: str
    until: datetime | None = Field(description="The slot a deferred notification would get")
    channel: str | None
    steps: list[StepVerdictOut]


class SuppressionIn(Strict):
    address: str = Field(min_length=3, max_length=320, examples=["+380501234567"])
    channel: str = Field("*", description="A channel, or `*` for every channel")
    reason: str = Field("added by an operator", min_length=1, max_length=500)


class SuppressionOut(BaseModel):
    address: str
    channel: str
    reason: str
    created_at: datetime


class SuppressionListOut(BaseModel):
    suppressions: list[SuppressionOut]
    next: str | None = Field(description="Pass as `after` for the next page")


async def policy_body(request: Request) -> Body:
    body, _ = await read_body(request, PolicyIn, "policy")
    return body


BodyDep = Annotated[Body, Depends(policy_body)]


@router.get("/policy", response_model=PolicyOut)
def get_policy(app: AppDep) -> Any:
    """The policy in force (its source) and every version applied."""
    return policy.show(app.uow())


@router.put(
    "/policy",
    response_model=PolicyAppliedOut,
    openapi_extra=_BODY,
    responses={201: {"model": PolicyAppliedOut, "description": "A new version"}},
)
def put_policy(body: BodyDep, app: AppDep, response: Response) -> Any:
    """Apply a policy document as the next version (201), or find it unchanged (200). Every
    worker uses it within a few seconds. Problems come back as 422 `invalid_policy` with
    every `{path, line, message}`."""
    with problems_by_path(body, "invalid_policy", "policy"):
        applied = policy.apply(app.uow(), source=body.source, now=app.clock.now(), kept=_kept(app))
    response.status_code = 201 if applied["created"] else 200
    return applied


@router.post("/policy:validate", response_model=PolicyAppliedOut, openapi_extra=_BODY)
def validate_policy(body: BodyDep, app: AppDep) -> Any:
    """Check a policy document without applying it (`version` is 0)."""
    with problems_by_path(body, "invalid_policy", "policy"):
        policy.check(body.source, kept=_kept(app))
    return {"version": 0, "created": False}


def _kept(app: App) -> timedelta:
    """How long the send log is kept (send_log_days): no cap window may be longer."""
    return timedelta(days=app.settings.send_log_days)


@router.post("/policy:explain", response_model=ExplainOut)
def explain(
    body: NotificationIn,
    app: AppDep,
    journey: Annotated[
        str | None,
        Query(description="Ask as this journey's send would: its per-journey caps count"),
    ] = None,
) -> Any:
    """Would this notification be sent now, and if not, why and when? Nothing is stored or
    sent: the answer is what the engine would decide for its first reachable step. An
    unknown contact is 422 `contact_not_found`, as for POST /v1/notifications."""
    question = policy_views.question_of(_request(body), journey)
    return policy_views.explain(
        app.uow(), contact=body.contact, question=question, now=app.clock.now()
    )


@router.get("/contacts/{external_id}/calendar")
def contact_calendar(external_id: str, app: AppDep) -> Any:
    """What is planned for the contact and why (deferred notifications with their slot and
    reason), what it got lately, how much of each cap is used, its quiet hours and the
    relevance rules silencing it now. Times in UTC; `timezone` is the contact's."""
    return policy_views.calendar(app.uow(), contact=external_id, now=app.clock.now())


@router.get("/suppressions", response_model=SuppressionListOut)
def list_suppressions(
    app: AppDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(description="`address channel` of the last row")] = None,
) -> Any:
    cursor: tuple[str, str] | None = None
    if after and " " in after:
        address, channel = after.rsplit(" ", 1)
        cursor = (address, channel)
    rows = suppressions.listed(app.uow(), limit=limit, after=cursor)
    last = rows[-1] if len(rows) == limit else None
    return {"suppressions": rows, "next": f"{last['address']} {last['channel']}" if last else None}


@router.post("/suppressions", response_model=SuppressionOut, status_code=201)
def add_suppression(body: SuppressionIn, app: AppDep, response: Response) -> Any:
    """Never send to this address (on one channel, or `*` all); 200 if it was listed."""
    row = suppressions.add(
        app.uow(),
        address=body.address,
        channel=body.channel,
        reason=body.reason,
        now=app.clock.now(),
    )
    if not row["created"]:
        response.status_code = 200
    return row


@router.delete("/suppressions/{address}", status_code=204)
def remove_suppression(
    address: str,
    app: AppDep,
    channel: Annotated[str, Query(description="The channel, or `*`")] = "*",
) -> Response:
    suppressions.remove(app.uow(), address=address, channel=channel)
    return Response(status_code=204)
