"""Template previews: every variant rendered for a sample contact and event, with what a
marketer needs to know before sending (SMS encoding, segments and cost, missing variables,
channel limits)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.sms import shape
from kaskad.domain.templates import Template, choose_variant, render, variables
from kaskad.domain.vocabulary import Channel
from kaskad.services import rendering
from kaskad.services.errors import Invalid
from kaskad.services.rendering import Tracking
from kaskad.services.templates import check, get_template


@dataclass(frozen=True, slots=True)
class Pricing:
    """What one SMS segment costs, for the estimate a preview shows."""

    per_segment: float | None = None
    currency: str | None = None


def preview(
    uow: UnitOfWork,
    *,
    template_id: str,
    source: str | None,
    contact: Mapping[str, Any],
    event: Mapping[str, Any],
    channel: Channel | None,
    locale: str | None,
    tracking: Tracking,
    pricing: Pricing,
) -> dict[str, Any]:
    """Render every variant (or one channel's, or what one locale would get) for a sample
    contact and event, leniently: missing variables are listed, not fatal. Links are
    shortened to tokens of the real length, so SMS segments and costs are exact."""
    version: int | None = None
    if source is None:
        stored = get_template(uow, template_id=template_id)
        source, version = stored["source"], stored["version"]
    template = check(source, filename=template_id)
    if template.id != template_id:
        raise Invalid(
            "template_id_mismatch", f"the source is template {template.id!r}, not {template_id!r}"
        )
    variants = [
        v
        for v in template.variants
        if (channel is None or v.channel is channel)
        and (locale is None or v is choose_variant(template, v.channel, locale))
    ]
    scope = rendering.template_scope(_sample_contact(contact), event, {"id": "msg_preview"})
    return {
        "id": template.id,
        "version": version,
        "variables": sorted(variables(template)),
        "variants": [_preview_variant(template, v, scope, tracking, pricing) for v in variants],
    }


def _sample_contact(contact: Mapping[str, Any]) -> dict[str, Any]:
    fields = ("external_id", "phone", "email", "locale", "timezone")
    return {
        **{k: contact.get(k) for k in fields},
        "attributes": {k: v for k, v in contact.items() if k not in fields},
    }


def _preview_variant(
    template: Template,
    variant: Any,
    scope: dict[str, Any],
    tracking: Tracking,
    pricing: Pricing,
) -> dict[str, Any]:
    scope = {**scope, "message": {"id": "msg_preview", "channel": variant.channel.value}}
    result = render(
        template, channel=variant.channel, locale=variant.locale, scope=scope, strict=False
    )
    content = dict(result.content)
    if tracking.enabled and template.track_links:
        rendering.track_sample(content, variant.channel, tracking)
    out: dict[str, Any] = {
        "channel": variant.channel,
        "locale": variant.locale,
        "content": content,
        "missing": list(result.variables_missing),
        "warnings": list(result.warnings),
    }
    if variant.channel is Channel.SMS:
        text = str(content.get("text") or "")
        measured = shape(text)
        cost = measured.segments * pricing.per_segment if pricing.per_segment else None
        out["sms"] = {
            "encoding": measured.encoding,
            "characters": measured.characters,
            "units": measured.units,
            "segments": measured.segments,
            "per_segment": measured.per_segment,
            "non_gsm": list(measured.non_gsm),
            "cost": round(cost, 6) if cost is not None else None,
            "currency": pricing.currency if cost is not None else None,
        }
        if measured.non_gsm:
            shown = "".join(measured.non_gsm[:10])
            out["warnings"].append(
                f"UCS-2: {measured.per_segment} characters per segment because of {shown!r}"
            )
    return out
