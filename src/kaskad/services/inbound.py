"""Messages customers send us (SMS and chat replies, MO, keys pressed on a call): stored once,
tied to the contact and to the message they answer, read (a keyword, a rating, a keypress or
free text) and turned into events journeys can wait for and branch on.

- ``message.received`` for every text (its ``kind`` says what it was read as);
- ``survey.answered`` for a rating given to a message that asked for one;
- ``keypress`` for keys pressed on a call (the call's CLICKED report ends its cascade step);
- ``consent.changed`` when a keyword changed the contact's consents.

Everything happens in the transaction that stores the messages, so a reply is never stored
without its consequences, nor twice with them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from kaskad.adapters.logs import mask
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.cascades import Step
from kaskad.domain.contacts import PHONE_CHANNELS
from kaskad.domain.ids import new_id
from kaskad.domain.providers import InboundMessage
from kaskad.domain.two_way import (
    CONSENT_CHANGED,
    KEYPRESS,
    MESSAGE_RECEIVED,
    SURVEY_ANSWERED,
    ConsentChange,
    InboundKind,
    Keyword,
    RatingScale,
    Reading,
    TwoWayRules,
    consent_change,
    read_inbound,
    sender_phone,
)
from kaskad.domain.vocabulary import DEFAULT_PRIORITY, Category, Channel, MessageStatus
from kaskad.services import cascading, notifications, runs
from kaskad.services.errors import Invalid

log = logging.getLogger(__name__)
Row = dict[str, Any]

RECEIVED: Final = MESSAGE_RECEIVED
# A message a reply can answer: one a provider took. Planned, queued, suppressed or
# cancelled ones never reached the customer.
ANSWERABLE: Final = tuple(
    s.value
    for s in (
        MessageStatus.SUBMITTED,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.SEEN,
        MessageStatus.CLICKED,
    )
)


# -- configuration -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Configured:
    rules: TwoWayRules
    routing: Mapping[Channel, str] = field(default_factory=dict)


_CONFIGURED: dict[str, _Configured] = {}


def configure(
    uow: UnitOfWork, *, rules: TwoWayRules, routing: Mapping[Channel, str] | None = None
) -> None:
    """The rules (``two_way`` settings) and routing for the inbound messages of the database
    ``uow`` opens. Set once when kaskad is built, so every path that stores inbound messages
    (the engine's provider sink, webhooks, the sandbox) reads them the same way without
    each carrying the settings."""
    _CONFIGURED[uow.database] = _Configured(rules, dict(routing or {}))


def configured_rules(uow: UnitOfWork) -> TwoWayRules:
    found = _CONFIGURED.get(uow.database)
    return found.rules if found is not None else TwoWayRules()


def _routing(uow: UnitOfWork, given: Mapping[Channel, str] | None) -> Mapping[Channel, str]:
    if given is not None:
        return given
    found = _CONFIGURED.get(uow.database)
    return found.routing if found is not None else {}


# -- storing -------------------------------------------------------------------------------


def record_inbound(
    uow: UnitOfWork,
    *,
    messages: Sequence[InboundMessage],
    routing: Mapping[Channel, str] | None = None,
    now: datetime,
    rules: TwoWayRules | None = None,
) -> int:
    """Store inbound messages in one transaction; one a provider delivers twice (its
    acknowledgement was lost) is stored once. Returns how many were new."""
    with uow:
        stored = store_inbound(uow, messages=messages, routing=routing, now=now, rules=rules)
        uow.commit()
        return len(stored)


def store_inbound(
    uow: UnitOfWork,
    *,
    messages: Sequence[InboundMessage],
    routing: Mapping[Channel, str] | None = None,
    now: datetime,
    rules: TwoWayRules | None = None,
) -> list[Row]:
    """The body of ``record_inbound`` inside the caller's transaction; returns the rows of
    the messages that were new."""
    rules = rules or configured_rules(uow)
    routing = _routing(uow, routing)
    fresh = _fresh(uow, messages)
    if not fresh:
        return []
    phones = {id(m): _phone(m) for m in fresh}
    by_phone = uow.contacts.ids_by_phones({p for p in phones.values() if p})
    answered = _answered_by_ref(uow, fresh)
    alive = _alive(uow, {m["contact_id"] for m in answered.values()} - set(by_phone.values()))
    rows: list[Row] = []
    events: list[Row] = []
    stops: list[tuple[Row, Reading]] = []
    answers: list[Row] = []
    for message in fresh:
        phone = phones[id(message)]
        contact_id = by_phone.get(phone) if phone else None
        target = answered.get(id(message))
        if target is None and contact_id is not None:
            since = now - rules.reply_window
            target = uow.inbound.latest_message(
                contact_id, message.channel.value, since, ANSWERABLE
            )
        if contact_id is None and target is not None and target["contact_id"] in alive:
            contact_id = target["contact_id"]  # a sender we could not read, on our message
        scale = RatingScale.of_content(target["content"]) if target else None
        reading = read_inbound(
            message.text, channel=message.channel, keywords=rules.keywords, scale=scale
        )
        row = _row(message, phone, contact_id, target, reading, now)
        uow.inbound.add(row)
        rows.append(row)
        if target is not None:
            answers.append(target)
        if contact_id is None:
            continue
        events.extend(_events(row, message, reading, target))
        if reading.keyword is not None:
            stops.append((row, reading))
    _complete_answered(uow, answers, now)
    events.extend(_keywords(uow, stops, rules, routing, now))
    if events:
        inserted = uow.events.insert_new(events)
        new = [e for e in events if (e["key"], e["contact_id"]) in inserted]
        runs.on_events(uow, events=new, routing=routing)
    return rows


def _phone(message: InboundMessage) -> str | None:
    return sender_phone(message.sender) if message.channel in PHONE_CHANNELS else None


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


def _alive(uow: UnitOfWork, contact_ids: set[str]) -> set[str]:
    """Of these contacts, those not erased: an erased contact gets nothing more stored."""
    if not contact_ids:
        return set()
    rows = uow.contacts.by_ids(contact_ids)
    return {cid for cid, row in rows.items() if row.get("erased_at") is None}


def _answered_by_ref(uow: UnitOfWork, messages: Sequence[InboundMessage]) -> dict[int, Row]:
    """Our messages the provider says these answer (a chat reply's context, the call the
    keys were pressed on), by the provider's id of our message."""
    by_provider: dict[str, set[str]] = {}
    for message in messages:
        if message.in_reply_to:
            by_provider.setdefault(message.provider, set()).add(message.in_reply_to)
    found = {
        (provider, ref): row
        for provider, refs in by_provider.items()
        for ref, row in uow.notifications.messages_by_provider_ref(provider, refs).items()
    }
    return {
        id(m): found[(m.provider, m.in_reply_to)]
        for m in messages
        if m.in_reply_to and (m.provider, m.in_reply_to) in found
    }


def _complete_answered(uow: UnitOfWork, answered: Sequence[Row], now: datetime) -> None:
    """An answer proves the message reached the customer: its cascade is complete, so a
    Viber question answered on Viber is not asked again by SMS after the Viber step's wait."""
    if not answered:
        return
    locked = uow.notifications.lock({m["notification_id"] for m in answered})
    live = [n for n in locked.values() if n["status"] in ("active", "deferred")]
    if not live:
        return
    tracked = cascading.track(uow, live)
    for message in answered:
        item = tracked.get(message["notification_id"])
        if item is not None:
            cascading.carry_out(uow, item, item.cascade.on_answer(item.state, message["step"]), now)


def _row(
    message: InboundMessage,
    phone: str | None,
    contact_id: str | None,
    answered: Mapping[str, Any] | None,
    reading: Reading,
    now: datetime,
) -> Row:
    return {
        "id": new_id("inb"),
        "provider": message.provider,
        "channel": message.channel.value,
        # A phone as contacts store it, so a listing by number finds every reply.
        "sender": phone or message.sender,
        "recipient": message.recipient,
        "contact_id": contact_id,
        "text": message.text,
        "provider_message_id": message.provider_message_id,
        "received_at": now,
        "message_id": answered["id"] if answered else None,
        "kind": reading.kind.value,
    }


def _events(
    row: Mapping[str, Any],
    message: InboundMessage,
    reading: Reading,
    answered: Mapping[str, Any] | None,
) -> list[Row]:
    tie = {
        "message_id": answered["id"] if answered else None,
        "notification_id": answered["notification_id"] if answered else None,
    }
    if reading.kind is InboundKind.KEYPRESS:
        payload = {"digits": reading.digits, "channel": row["channel"], **tie}
        return [_event(row, message, KEYPRESS, "keypress", payload)]
    received: Row = {
        "channel": row["channel"],
        "text": reading.text,
        "to": message.recipient,
        "kind": reading.kind.value,
        **tie,
    }
    if reading.keyword is not None:
        received["keyword"] = reading.keyword.value
    events = [_event(row, message, RECEIVED, "inbound", received)]
    if reading.rating is not None and answered is not None:
        scale = RatingScale.of_content(answered["content"])
        answer = {
            "rating": reading.rating,
            "text": reading.text,
            "channel": row["channel"],
            "scale": scale.content() if scale else None,
            **tie,
        }
        events.append(_event(row, message, SURVEY_ANSWERED, "survey", answer))
    return events


def _event(
    row: Mapping[str, Any], message: InboundMessage, type_: str, prefix: str, payload: Row
) -> Row:
    return {
        "id": new_id("evt"),
        "contact_id": row["contact_id"],
        "key": f"{prefix}:{row['id']}",
        "type": type_,
        "occurred_at": message.at,
        "received_at": row["received_at"],
        "payload": payload,
    }


# -- keywords: consent -----------------------------------------------------------------------


def _keywords(
    uow: UnitOfWork,
    stops: Sequence[tuple[Row, Reading]],
    rules: TwoWayRules,
    routing: Mapping[Channel, str],
    now: datetime,
) -> list[Row]:
    """Apply keywords in the order they came: the contact's consents change (once per
    change, as a ``consent.changed`` event) and the configured confirmation goes back."""
    if not stops:
        return []
    contacts = uow.contacts.by_ids({row["contact_id"] for row, _ in stops})
    events: list[Row] = []
    for row, reading in stops:
        contact = contacts.get(row["contact_id"])
        if contact is None or contact.get("erased_at") is not None or reading.keyword is None:
            continue
        channel = Channel(row["channel"])
        change = consent_change(
            contact["consents"] or {}, reading.keyword, channel, rules.stop_categories
        )
        log.info(
            "%s from %s on %s: consents %s",
            reading.keyword,
            mask(row["sender"]),
            channel,
            "changed" if change.changed else "unchanged",
        )
        if change.changed:
            contact["consents"] = change.consents
            uow.contacts.update(contact["id"], {"consents": change.consents, "updated_at": now})
            events.append(_consent_event(row, reading.keyword, change, now))
        _confirm(uow, contact, row, rules.confirmation(reading.keyword), routing, now)
    return events


def _consent_event(row: Row, keyword: Keyword, change: ConsentChange, now: datetime) -> Row:
    return {
        "id": new_id("evt"),
        "contact_id": row["contact_id"],
        "key": f"consent:{row['id']}",
        "type": CONSENT_CHANGED,
        "occurred_at": now,
        "received_at": now,
        "payload": {
            "channel": change.channel,
            "categories": [c.value for c in change.categories],
            "consent": change.granted,
            "keyword": keyword.value,
            "text": row["text"],
            "source": "keyword",
            "inbound_id": row["id"],
        },
    }


def _confirm(
    uow: UnitOfWork,
    contact: Row,
    row: Row,
    text: str | None,
    routing: Mapping[Channel, str],
    now: datetime,
) -> None:
    """The confirmation of a keyword, on the channel it came on. Transactional: the contact
    has just opted out of marketing and service messages, and must still hear that it did."""
    if not text:
        return
    channel = Channel(row["channel"])
    try:
        steps = notifications.route_steps([Step(channel, {"text": text})], routing)
    except Invalid as exc:
        log.warning("no confirmation of a keyword on %s: %s", channel, exc.message)
        return
    notifications.create_notification(
        uow,
        contact=contact,
        category=Category.TRANSACTIONAL,
        priority=DEFAULT_PRIORITY[Category.TRANSACTIONAL],
        steps=steps,
        now=now,
        idempotency_key=f"two-way:{row['id']}",
        labels=notifications.Labels(content_key=f"two-way:{row['kind']}"),
    )


# -- reading back ----------------------------------------------------------------------------


def list_inbound(uow: UnitOfWork, *, contact_external_id: str | None, limit: int) -> list[Any]:
    with uow:
        if contact_external_id is None:
            return uow.inbound.recent(limit)
        contact = uow.contacts.by_external_id(contact_external_id)
        return uow.inbound.of_contact(contact["id"], limit) if contact else []
