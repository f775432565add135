"""API models of verifications (one-time codes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from kaskad.domain.verifications import CheckResult, VerificationStatus
from kaskad.domain.vocabulary import Channel
from kaskad.interfaces.http.models import Strict


def _step(value: Any) -> Any:
    """A step may be just its channel: ``"sms"`` reads as ``{"channel": "sms"}``."""
    return {"channel": value} if isinstance(value, str) else value


class VerificationStepIn(Strict):
    channel: Channel
    timeout: str | None = Field(
        None, description="How long to wait for delivery before the next channel, e.g. `30s`"
    )


class VerificationIn(Strict):
    contact: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="A contact's external id",
        examples=["client-42"],
    )
    phone: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        description="A phone number, when there is no contact id",
        examples=["+380501234567"],
    )
    cascade: list[Annotated[VerificationStepIn, BeforeValidator(_step)]] = Field(
        default_factory=lambda: [VerificationStepIn(channel=Channel.SMS)],
        min_length=1,
        max_length=6,
        examples=[["push", "sms", "voice"]],
    )
    ip: str | None = Field(
        None,
        max_length=64,
        description="The end user's IP address as your app saw it; rate limits count by it",
        examples=["203.0.113.7"],
    )
    code_length: int | None = Field(None, ge=4, le=12)
    expiry: str | None = Field(None, description="e.g. `10m`; at most 1d", examples=["5m"])
    max_attempts: int | None = Field(None, ge=1, le=20)
    text: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="The message text, with `{code}` and optionally `{minutes}`",
    )

    @model_validator(mode="after")
    def _one_recipient(self) -> Self:
        if (self.contact is None) == (self.phone is None):
            raise ValueError("name either `contact` or `phone`")
        return self


class VerificationOut(BaseModel):
    id: str
    status: VerificationStatus
    contact: str | None
    channels: list[Channel]
    notification_id: str
    notification_status: str | None
    channel: Channel | None = Field(description="The channel of the latest message sent")
    expires_at: datetime
    attempts: int
    max_attempts: int
    attempts_left: int
    created_at: datetime
    finished_at: datetime | None


class CheckIn(Strict):
    code: str = Field(min_length=1, max_length=32, examples=["123456"])


class CheckOut(BaseModel):
    id: str
    result: CheckResult
    status: VerificationStatus
    attempts_left: int
