"""API models for templates and their previews."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from kaskad.domain.vocabulary import Channel
from kaskad.interfaces.http.documents import DocumentIn
from kaskad.interfaces.http.models import Strict

EXAMPLE_TEMPLATE = """id: payment_confirmed
name: Payment confirmed
default_locale: uk
variants:
  - channel: sms
    locale: uk
    text: "{{ contact.first_name }}, списано {{ event.amount | money: 'UAH' }}"
  - channel: email
    locale: en
    subject: "Payment of {{ event.amount | money: 'UAH' }}"
    html: "<p>Hello {{ contact.first_name }}</p>"
"""


class TemplateIn(DocumentIn):
    """A template as YAML/JSON text (`source`) or as a JSON object (`definition`)."""

    source: str | None = Field(None, examples=[EXAMPLE_TEMPLATE])


class TemplateAppliedOut(BaseModel):
    id: str
    version: int
    created: bool = Field(description="False when the document equals the live version")


class TemplateOut(BaseModel):
    id: str
    name: str
    version: int = Field(description="The live version: what messages render with")
    created_at: datetime
    updated_at: datetime


class TemplateListOut(BaseModel):
    templates: list[TemplateOut]


class TemplateVersionOut(BaseModel):
    version: int
    digest: str
    created_at: datetime


class TemplateDetailOut(TemplateOut):
    versions: list[TemplateVersionOut]
    source_version: int
    source: str


class PreviewIn(Strict):
    contact: dict[str, Any] = Field(
        default_factory=dict,
        description="A sample contact: attributes, and `locale`, `phone`, `email`…",
        examples=[{"first_name": "Anna", "locale": "uk-UA"}],
    )
    event: dict[str, Any] = Field(
        default_factory=dict,
        description="Sample notification data, seen as `event`",
        examples=[{"amount": 1250.5}],
    )
    channel: Channel | None = Field(None, description="Only this channel's variants")
    locale: str | None = Field(None, description="Only the variants this locale would get")
    source: str | None = Field(None, description="Preview this text instead of the stored one")


class SmsOut(BaseModel):
    encoding: str = Field(description="GSM-7 or UCS-2")
    characters: int
    units: int = Field(description="Septets (GSM-7, escapes count 2) or UTF-16 units")
    segments: int
    per_segment: int
    non_gsm: list[str] = Field(description="The characters that forced UCS-2")
    cost: float | None = Field(description="segments × the configured price per segment")
    currency: str | None


class VariantPreviewOut(BaseModel):
    channel: Channel
    locale: str
    content: dict[str, Any]
    missing: list[str] = Field(description="Variables the sample does not provide")
    warnings: list[str]
    sms: SmsOut | None = None


class PreviewOut(BaseModel):
    id: str
    version: int | None = Field(description="The stored version previewed (null for `source`)")
    variables: list[str] = Field(description="Every variable the template uses")
    variants: list[VariantPreviewOut]
