"""The sandbox's own use cases: choosing outcomes, listing what it received, reporting."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from kaskad.adapters.channels.sandbox import (
    CALLER_ID,
    KEYPRESS_PREFIX,
    NAME,
    SandboxWebhook,
    keypresses,
    report_body,
)
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.contacts import InvalidContact, normalise_email, normalise_phone
from kaskad.domain.ids import new_id
from kaskad.domain.providers import InboundMessage
from kaskad.domain.vocabulary import Channel
from kaskad.services import inbound, reports
from kaskad.services.errors import Invalid, NotFound

# Keys a customer can press on a call, at most ten at a time.
DIGITS: Final = re.compile(r"^[0-9*#]{1,10}$")


def set_outcome(
    uow: UnitOfWork,
    *,
    channel: Channel,
    address: str,
    outcome: str,
    default_region: str | None,
    now: datetime,
) -> str:
    """Choose what the sandbox does with sends on ``channel`` to ``address``; returns the
    address as kaskad stores it (E.164 for phones) so outcomes match the messages."""
    try:
        if channel is Channel.EMAIL:
            address = normalise_email(address)
        elif channel is not Channel.PUSH:
            address = normalise_phone(address, default_region)
    except InvalidContact as exc:
        raise Invalid("invalid_address", str(exc), {"field": "address"}) from exc
    with uow:
        uow.sandbox.set_outcome(channel.value, address, outcome, now)
        uow.commit()
    return address


def set_keypress(
    uow: UnitOfWork, *, address: str, digits: str, default_region: str | None, now: datetime
) -> str:
    """Later calls to ``address`` are answered and ``digits`` pressed: the call reports
    CLICKED (a voice step waiting ``until: clicked`` ends there) and the keys arrive as an
    inbound message on the call, a ``keypress`` event."""
    if not DIGITS.match(digits):
        raise Invalid("invalid_digits", "digits are 1 to 10 of 0-9, * and #", {"field": "digits"})
    return set_outcome(
        uow,
        channel=Channel.VOICE,
        address=address,
        outcome=KEYPRESS_PREFIX + digits,
        default_region=default_region,
        now=now,
    )


def reply(
    uow: UnitOfWork,
    *,
    channel: Channel,
    text: str,
    sender: str | None,
    contact: str | None,
    message_id: str | None,
    routing: Mapping[Channel, str],
    default_region: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A customer's message as a provider would deliver it: from ``sender`` (or the
    contact's own address on ``channel``), answering our message ``message_id`` when given
    (as a chat reply names its context) or else whatever it answers by the reply window.
    Stored and read exactly as a real provider's inbound message."""
    with uow:
        answered = _answered(uow, message_id)
        address = sender or _address_of(uow, contact, channel)
        address = _normalised(channel, address, default_region)
        message = InboundMessage(
            provider=answered["provider"] if answered else NAME,
            channel=channel,
            sender=address,
            recipient=CALLER_ID,
            text=text,
            at=now,
            provider_message_id=new_id("sbxin"),
            in_reply_to=answered["provider_message_id"] if answered else None,
        )
        [row] = inbound.store_inbound(uow, messages=[message], routing=routing, now=now)
        uow.commit()
    return row


def _answered(uow: UnitOfWork, message_id: str | None) -> dict[str, Any] | None:
    if message_id is None:
        return None
    found = uow.notifications.messages_by_ids([message_id]).get(message_id)
    if found is None:
        raise NotFound("message_not_found", f"no message {message_id!r}")
    if not found["provider_message_id"]:
        raise Invalid(
            "message_not_sent", "that message never reached a provider", {"field": "message_id"}
        )
    return found


def _address_of(uow: UnitOfWork, external_id: str | None, channel: Channel) -> str:
    if external_id is None:
        raise Invalid("missing_sender", "give `from` or `contact`", {"field": "from"})
    row = uow.contacts.by_external_id(external_id)
    if row is None:
        raise NotFound("contact_not_found", f"no contact with external id {external_id!r}")
    tokens = row["push_tokens"] or []
    address = {Channel.EMAIL: row["email"], Channel.PUSH: tokens[0] if tokens else None}.get(
        channel, row["phone"]
    )
    if not address:
        raise Invalid(
            "missing_sender", f"the contact has no address on {channel}", {"field": "contact"}
        )
    return str(address)


def _normalised(channel: Channel, address: str, default_region: str | None) -> str:
    try:
        if channel is Channel.EMAIL:
            return normalise_email(address)
        if channel is Channel.PUSH:
            return address
        return normalise_phone(address, default_region)
    except InvalidContact as exc:
        raise Invalid("invalid_address", str(exc), {"field": "from"}) from exc


def received(
    uow: UnitOfWork, *, channel: str | None, address: str | None, limit: int
) -> list[dict[str, Any]]:
    with uow:
        return [dict(r) for r in uow.sandbox.received(channel, address, limit)]


def deliver_due_reports(uow: UnitOfWork, *, now: datetime, limit: int) -> int:
    """Post the sandbox's due reports through its webhook parser, in one transaction with
    their removal, so a crash neither loses nor repeats one."""
    with uow:
        rows = uow.sandbox.claim_due_reports(now, limit)
        if not rows:
            return 0
        accepted = uow.sandbox.by_provider_ids(r["provider_message_id"] for r in rows)
        body = report_body(rows, accepted)
        parsed = SandboxWebhook().parse(body, {})
        reports.record_reports(uow, reports=parsed, now=now)
        # Keys pressed on a call: after the call's CLICKED report, as providers post them.
        pressed = keypresses(body)
        if pressed:
            inbound.store_inbound(uow, messages=pressed, now=now)
        uow.sandbox.delete_reports([r["id"] for r in rows])
        uow.commit()
        return len(rows)
