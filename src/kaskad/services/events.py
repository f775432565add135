"""Events: something that happened to a contact, stored once per idempotency key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.ids import new_ids
from kaskad.domain.vocabulary import Channel
from kaskad.services import runs
from kaskad.services.contacts import blank_contact
from kaskad.services.errors import Invalid


@dataclass(frozen=True, slots=True)
class EventIn:
    contact: str
    type: str
    key: str
    occurred_at: datetime | None
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EventAccepted:
    id: str
    duplicate: bool


def record_events(
    uow: UnitOfWork,
    *,
    events: Sequence[EventIn],
    create_contacts: bool,
    routing: Mapping[Channel, str],
    now: datetime,
) -> list[EventAccepted]:
    """Store a batch of events in one transaction; a key already stored is not stored again.

    The events stored move the contacts' journey runs and start new ones in the same
    transaction: an event is never stored without its consequences, nor twice with them.
    """
    with uow:
        # With journeys live, their conditions need the contacts: read them whole, once.
        whole = bool(runs.live_journeys(uow))
        contacts, rows_by_id = _contacts(uow, [e.contact for e in events], whole)
        missing = sorted({e.contact for e in events} - contacts.keys())
        if missing and not create_contacts:
            raise Invalid(
                "contact_not_found",
                f"no contact with external id {missing[0]!r}",
                {"missing": missing[:100]},
            )
        if missing:
            uow.contacts.insert_missing([blank_contact(ext, now) for ext in missing])
            contacts, rows_by_id = _contacts(uow, [e.contact for e in events], whole)
        rows: list[dict[str, Any]] = [
            {
                "id": event_id,
                "contact_id": contacts[e.contact],
                "key": e.key,
                "type": e.type,
                "occurred_at": e.occurred_at or now,
                "received_at": now,
                "payload": dict(e.payload),
            }
            for e, event_id in zip(events, new_ids("evt", len(events)), strict=True)
        ]
        unique = list({(r["key"], r["contact_id"]): r for r in rows}.values())
        inserted = uow.events.insert_new(unique)
        existing = uow.events.ids_for(
            (r["key"], r["contact_id"])
            for r in unique
            if (r["key"], r["contact_id"]) not in inserted
        )
        ids = {(r["key"], r["contact_id"]): r["id"] for r in unique} | existing
        new = [r for r in unique if (r["key"], r["contact_id"]) in inserted]
        runs.on_events(uow, events=new, routing=routing, contacts=rows_by_id)
        uow.commit()
    seen: set[tuple[str, str]] = set()
    accepted = []
    for r in rows:
        pair = (r["key"], r["contact_id"])
        accepted.append(EventAccepted(ids[pair], pair not in inserted or pair in seen))
        seen.add(pair)
    return accepted


def _contacts(
    uow: UnitOfWork, external_ids: list[str], whole: bool
) -> tuple[dict[str, str], dict[str, dict[str, Any]] | None]:
    """Contact ids by external id, and the whole rows by id when ``whole``."""
    if not whole:
        return uow.contacts.ids_by_external_ids(external_ids), None
    rows = uow.contacts.by_external_ids(external_ids)
    return {ext: row["id"] for ext, row in rows.items()}, {r["id"]: r for r in rows.values()}
