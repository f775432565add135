"""Messages customers send us (SMS replies, MO): stored, tied to the contact, and seen by
journeys as a ``message.received`` event so a journey can wait for a reply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.ids import new_id
from kaskad.domain.providers import InboundMessage
from kaskad.domain.vocabulary import Channel
from kaskad.services import runs

RECEIVED: Final = "message.received"


def record_inbound(
    uow: UnitOfWork,
    *,
    messages: Sequence[InboundMessage],
    routing: Mapping[Channel, str],
    now: datetime,
) -> int:
    """Store inbound messages in one transaction; one a provider delivers twice (its
    acknowledgement was lost) is stored once. Returns how many were new."""
    with uow:
        fresh = _fresh(uow, messages)
        contacts = uow.contacts.ids_by_phones(m.sender for m in fresh if m.channel is Channel.SMS)
        events: list[dict[str, Any]] = []
        for message in fresh:
            row = _row(message, contacts.get(message.sender), now)
            uow.inbound.add(row)
            if row["contact_id"] is not None:
                events.append(_event(row, message))
        if events:
            inserted = uow.events.insert_new(events)
            new = [e for e in events if (e["key"], e["contact_id"]) in inserted]
            runs.on_events(uow, events=new, routing=routing)
        uow.commit()
        return len(fresh)


def _fresh(uow: UnitOfWork, messages: Sequence[InboundMessage]) -> list[InboundMessage]:
    known: set[tuple[str, str]] = set()
    providers = {m.provider for m in messages if m.provider_message_id}
    for provider in providers:
        refs = [m.provider_message_id for m in messages if m.provider == provider]
        known |= {(provider, ref) for ref in uow.inbound.known(provider, filter(None, refs))}
    fresh: list[InboundMessage] = []
    for message in messages:
        key = (message.provider, message.provider_message_id or "")
        if message.provider_message_id and key in known:
            continue
        known.add(key)
        fresh.append(message)
    return fresh


def _row(message: InboundMessage, contact_id: str | None, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("inb"),
        "provider": message.provider,
        "channel": message.channel.value,
        "sender": message.sender,
        "recipient": message.recipient,
        "contact_id": contact_id,
        "text": message.text,
        "provider_message_id": message.provider_message_id,
        "received_at": now,
    }


def _event(row: Mapping[str, Any], message: InboundMessage) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
        "contact_id": row["contact_id"],
        "key": f"inbound:{row['id']}",
        "type": RECEIVED,
        "occurred_at": message.at,
        "received_at": row["received_at"],
        "payload": {"channel": row["channel"], "text": message.text, "to": message.recipient},
    }


def list_inbound(uow: UnitOfWork, *, contact_external_id: str | None, limit: int) -> list[Any]:
    with uow:
        if contact_external_id is None:
            return uow.inbound.recent(limit)
        contact = uow.contacts.by_external_id(contact_external_id)
        return uow.inbound.of_contact(contact["id"], limit) if contact else []
