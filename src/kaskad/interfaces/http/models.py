"""API models: pydantic at the edge, converted to domain values before any use case runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kaskad.domain.vocabulary import Category, Channel, Until
from kaskad.settings import SANDBOX_OUTCOMES

MAX_BATCH = 1000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactIn(Strict):
    phone: str | None = Field(None, examples=["+380501234567"])
    email: str | None = Field(None, examples=["anna@example.com"])
    push_tokens: list[str] | None = None
    locale: str | None = Field(None, max_length=35, examples=["uk-UA"])
    timezone: str | None = Field(None, examples=["Europe/Kyiv"])
    attributes: dict[str, Any] = Field(default_factory=dict, examples=[{"first_name": "Anna"}])
    consents: dict[str, dict[str, bool]] = Field(
        default_factory=dict, examples=[{"sms": {"marketing": True}, "*": {"service": True}}]
    )


class ContactBatchItem(ContactIn):
    external_id: str = Field(min_length=1, max_length=200)


class ContactBatchIn(Strict):
    contacts: list[ContactBatchItem] = Field(min_length=1, max_length=MAX_BATCH)


class ContactOut(BaseModel):
    external_id: str
    phone: str | None
    email: str | None
    push_tokens: list[str]
    locale: str | None
    timezone: str | None
    attributes: dict[str, Any]
    consents: dict[str, dict[str, bool]]
    created_at: datetime
    updated_at: datetime


class ContactUpserted(ContactOut):
    created: bool


class ContactBatchOut(BaseModel):
    results: list[dict[str, Any]]


class ErasedOut(BaseModel):
    erased: bool = True
    messages_by_channel: dict[str, int]


class EventIn(Strict):
    contact: str = Field(min_length=1, max_length=200, examples=["client-42"])
    type: str = Field(
        min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$", examples=["payment"]
    )
    id: str = Field(
        min_length=1, max_length=200, description="Idempotency key", examples=["pay-2026-000123"]
    )
    occurred_at: AwareDatetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict, examples=[{"amount": 250.0}])


class EventBatchIn(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class EventAcceptedOut(BaseModel):
    id: str
    duplicate: bool


class EventBatchOut(BaseModel):
    results: list[EventAcceptedOut]


class StepIn(Strict):
    channel: Channel
    content: dict[str, Any] = Field(
        default_factory=dict,
        description="What to send; with `template`, only overrides (e.g. `sender`)",
    )
    template: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_.\-]{0,99}$",
        description="A stored template, rendered for the contact at send time",
        examples=["payment_confirmed"],
    )
    until: Until = Until.DELIVERED
    timeout: str | float | None = Field(None, examples=["60s"])
    provider: str | None = None


class NotificationIn(Strict):
    contact: str = Field(min_length=1, max_length=200)
    category: Category = Category.TRANSACTIONAL
    priority: int | None = Field(None, ge=0, le=1000)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    cascade: list[StepIn] = Field(min_length=1, max_length=10)
    data: dict[str, Any] | None = Field(
        None,
        description="What templates see as `event` (e.g. `{{ event.amount }}`)",
        examples=[{"amount": 250.0, "merchant": "Silpo"}],
    )
    content_key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:/\-]+$",
        description="Names the content: the same key reaches a contact once per "
        "de-duplication window, on whichever channel",
        examples=["card-offer-2026-11"],
    )
    topic: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="What relevance rules and caps name, e.g. `loan_offer`",
    )
    valid_until: AwareDatetime | None = Field(
        None,
        description="Until when the notification may wait for a free slot (caps, quiet "
        "hours); after it, it is dropped. Default: the policy's validity for the category",
    )
    personal: bool = Field(
        True, description="Meant for this contact (true) or part of a mass campaign (false)"
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "contact": "client-42",
                    "category": "transactional",
                    "idempotency_key": "payment-000123",
                    "cascade": [
                        {
                            "channel": "viber",
                            "content": {"text": "Payment of 250 UAH done"},
                            "until": "delivered",
                            "timeout": "60s",
                        },
                        {"channel": "sms", "content": {"text": "Payment of 250 UAH done"}},
                    ],
                }
            ]
        },
    )


class AcceptedOut(BaseModel):
    id: str
    created: bool


class StatusAt(BaseModel):
    status: str
    at: datetime
    provider_status: str | None
    applied: bool


class MessageOut(BaseModel):
    id: str
    step: int
    channel: str
    provider: str
    status: str
    superseded: bool
    provider_message_id: str | None
    error: str | None
    cost: float | None
    currency: str | None
    statuses: dict[str, datetime] = Field(description="When the message first reached each status")
    history: list[StatusAt]


class DecisionOut(BaseModel):
    at: datetime
    kind: str
    reason: str
    step: int | None
    message_id: str | None


class NotificationOut(BaseModel):
    id: str
    contact: str | None
    category: str
    priority: int
    status: str = Field(
        description="active, deferred (waiting for a free slot until `due_at`), completed, "
        "failed, cancelled or suppressed (dropped by the policy)"
    )
    due_at: datetime | None = None
    content_key: str | None = None
    topic: str | None = None
    valid_until: datetime | None = None
    idempotency_key: str | None
    created_at: datetime
    finished_at: datetime | None
    messages: list[MessageOut]
    decisions: list[DecisionOut]


class TimelineItem(BaseModel):
    at: datetime
    kind: Literal["event", "message", "decision", "journey"]
    ref: str | None
    name: str
    text: str | None
    channel: str | None


class TimelineOut(BaseModel):
    items: list[TimelineItem]


class OutcomeIn(Strict):
    channel: Channel
    address: str = Field(min_length=1, max_length=320)
    outcome: Literal[SANDBOX_OUTCOMES]  # type: ignore[valid-type]


class ReportsOut(BaseModel):
    applied: int
    recorded_only: int
    unmatched: int
    inbound: int = Field(0, description="Messages customers sent that the call carried")


def utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None
