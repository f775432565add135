"""Contacts: upsert, read, erase, batch upsert, timeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.interfaces.http.models import (
    ContactBatchIn,
    ContactBatchOut,
    ContactIn,
    ContactOut,
    ContactUpserted,
    ErasedOut,
    TimelineOut,
)
from kaskad.services import contacts
from kaskad.services.contacts import UNSET, ContactPatch

router = APIRouter(prefix="/v1", tags=["contacts"], dependencies=[Authorized])


def _patch(external_id: str, body: ContactIn) -> ContactPatch:
    given = body.model_fields_set
    fields = ("phone", "email", "push_tokens", "locale", "timezone")
    return ContactPatch(
        external_id=external_id,
        **{name: getattr(body, name) if name in given else UNSET for name in fields},
        attributes=body.attributes,
        consents=body.consents,
    )


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ContactOut.model_fields}


@router.put("/contacts/{external_id}", response_model=ContactUpserted)
def put_contact(external_id: str, body: ContactIn, app: AppDep, response: Response) -> Any:
    """Create or update a contact. Fields left out keep their value; `attributes` and
    `consents` merge (an attribute set to null is removed); the phone is stored as E.164 and
    the time zone defaults to the phone's country."""
    [(row, created)] = contacts.upsert_contacts(
        app.uow(),
        patches=[_patch(external_id, body)],
        default_region=app.settings.default_phone_region,
        now=app.clock.now(),
        routing=app.routing,
    )
    response.status_code = 201 if created else 200
    return _out(row) | {"created": created}


@router.post("/contacts:batch", response_model=ContactBatchOut)
def post_contacts_batch(body: ContactBatchIn, app: AppDep) -> Any:
    """Upsert up to 1,000 contacts in one transaction: all are stored, or none."""
    patches = [_patch(item.external_id, item) for item in body.contacts]
    results = contacts.upsert_contacts(
        app.uow(),
        patches=patches,
        default_region=app.settings.default_phone_region,
        now=app.clock.now(),
        routing=app.routing,
    )
    return {"results": [{"external_id": r["external_id"], "created": c} for r, c in results]}


@router.get("/contacts/{external_id}", response_model=ContactOut)
def get_contact(external_id: str, app: AppDep) -> Any:
    return _out(contacts.get_contact(app.uow(), external_id=external_id))


@router.delete("/contacts/{external_id}", response_model=ErasedOut)
def delete_contact(external_id: str, app: AppDep) -> Any:
    """Erase the contact's personal data; anonymised message counts are kept."""
    counts = contacts.erase_contact(app.uow(), external_id=external_id, now=app.clock.now())
    return {"erased": True, "messages_by_channel": counts}


@router.get("/contacts/{external_id}/timeline", response_model=TimelineOut)
def get_timeline(
    external_id: str,
    app: AppDep,
    limit: int = Query(100, ge=1, le=1000),
    before: AwareDatetime | None = Query(None, description="Page back: items strictly older"),
) -> Any:
    """Events, message statuses and decisions about one contact, newest first."""
    items = contacts.timeline(app.uow(), external_id=external_id, limit=limit, before=before)
    return {"items": items}
