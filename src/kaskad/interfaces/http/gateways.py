"""Gateways seen from the API: the providers configured, and the messages customers sent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.services import inbound
from kaskad.settings import ProviderSettings, SmppProviderSettings, SmtpProviderSettings

router = APIRouter(prefix="/v1", tags=["providers"], dependencies=[Authorized])


class ProviderOut(BaseModel):
    name: str
    type: str = Field(description="sandbox, smpp, smtp or webhook")
    channels: list[str]
    routed: list[str] = Field(description="Channels whose messages go to it by default")
    target: str | None = Field(
        description="host:port or base URL of the gateway (never credentials)"
    )


class ProvidersOut(BaseModel):
    providers: list[ProviderOut]


class InboundOut(BaseModel):
    id: str
    provider: str
    channel: str
    sender: str
    recipient: str
    contact_id: str | None
    text: str
    provider_message_id: str | None
    received_at: datetime
    message_id: str | None = Field(None, description="Our message it answers")
    kind: str | None = Field(
        None, description="What it was read as: text, keyword, rating, keypress"
    )


class InboundListOut(BaseModel):
    messages: list[InboundOut]


@router.get("/providers", response_model=ProvidersOut)
def list_providers(app: AppDep) -> Any:
    """The gateways this deployment is configured with; secrets are never shown."""
    out = []
    for name, provider in sorted(app.providers.items()):
        configured = app.settings.providers.get(name)
        out.append(
            {
                "name": name,
                "type": configured.type if configured else "sandbox",
                "channels": sorted(provider.channels),
                "routed": sorted(c.value for c, p in app.routing.items() if p == name),
                "target": _target(configured),
            }
        )
    return {"providers": out}


def _target(configured: ProviderSettings | None) -> str | None:
    if configured is None:
        return None
    if isinstance(configured, SmppProviderSettings | SmtpProviderSettings):
        return f"{configured.host}:{configured.port}"
    return configured.base_url


@router.get("/inbound", response_model=InboundListOut)
def list_inbound(
    app: AppDep,
    contact: Annotated[str | None, Query(description="Only this contact's (external id)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Messages customers sent (SMS and chat replies, MO, keys pressed on calls), newest
    first, each with the message it answers and what it was read as. On a known contact
    each is also an event journeys can wait for: `message.received`, `survey.answered`,
    `keypress`, `consent.changed` (see docs/two-way.md)."""
    return {"messages": inbound.list_inbound(app.uow(), contact_external_id=contact, limit=limit)}
