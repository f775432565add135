"""The sandbox's controls: choose outcomes per channel and address, see what it received."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.interfaces.http.models import OutcomeIn
from kaskad.services import sandbox

router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"], dependencies=[Authorized])


@router.put("/outcomes")
def put_outcome(body: OutcomeIn, app: AppDep) -> dict[str, Any]:
    """What the sandbox does with later sends to this channel and address: `delivered`,
    `seen`, `clicked`, `undelivered` (sent, then silence), `undeliverable` (a failure
    report) or `failed` (refused at once)."""
    address = sandbox.set_outcome(
        app.uow(),
        channel=body.channel,
        address=body.address,
        outcome=body.outcome,
        default_region=app.settings.default_phone_region,
        now=app.clock.now(),
    )
    return {"channel": body.channel.value, "address": address, "outcome": body.outcome}


@router.get("/messages")
def get_received(
    app: AppDep,
    channel: str | None = None,
    address: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """What the sandbox gateway accepted, newest first; `attempts` > 1 means a resend that
    the gateway recognised by its client reference and did not deliver twice."""
    rows = sandbox.received(app.uow(), channel=channel, address=address, limit=limit)
    return {"messages": rows}
