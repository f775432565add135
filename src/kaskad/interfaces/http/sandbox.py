"""The sandbox's controls: choose outcomes per channel and address, see what it received,
and play the customer: a reply on any channel, keys pressed on a call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from kaskad.domain.vocabulary import Channel
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


class KeypressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = Field(min_length=1, max_length=320, examples=["+380501234567"])
    digits: str = Field(pattern=r"^[0-9*#]{1,10}$", examples=["1"])


@router.put("/outcomes/keypress")
def put_keypress(body: KeypressIn, app: AppDep) -> dict[str, Any]:
    """Later calls to this number are answered and `digits` pressed: the call reports
    `clicked` (a voice step with `until: clicked` ends there) and the keys arrive as an
    inbound message on the call, a `keypress` event."""
    address = sandbox.set_keypress(
        app.uow(),
        address=body.address,
        digits=body.digits,
        default_region=app.settings.default_phone_region,
        now=app.clock.now(),
    )
    return {"channel": "voice", "address": address, "outcome": "keypress", "digits": body.digits}


class InboundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    channel: Channel
    text: str = Field(min_length=1, max_length=4096)
    sender: str | None = Field(
        None,
        alias="from",
        min_length=1,
        max_length=320,
        description="The customer's address; or name the `contact`",
    )
    contact: str | None = Field(None, min_length=1, max_length=200, description="External id")
    message_id: str | None = Field(
        None, min_length=1, max_length=40, description="Our message this answers"
    )


class InboundRecordedOut(BaseModel):
    id: str
    channel: str
    sender: str
    contact_id: str | None
    text: str
    kind: str = Field(description="text, keyword, rating or keypress")
    message_id: str | None = Field(description="Our message it was tied to")
    received_at: datetime


@router.post("/inbound", status_code=201, response_model=InboundRecordedOut)
def post_inbound(body: InboundIn, app: AppDep) -> Any:
    """A customer's message on a channel, as the channel's provider would deliver it: tied
    to its contact and to the message it answers, read (a keyword changes consent, a rating
    answers a survey), and seen by journeys as events."""
    return sandbox.reply(
        app.uow(),
        channel=body.channel,
        text=body.text,
        sender=body.sender,
        contact=body.contact,
        message_id=body.message_id,
        routing=app.routing,
        default_region=app.settings.default_phone_region,
        now=app.clock.now(),
    )


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
