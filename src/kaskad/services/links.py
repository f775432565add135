"""What customers do with a message: follow a tracked link, open an email, unsubscribe.

A click is a status report from kaskad itself: the message moves to ``clicked`` (a cascade
waiting for a click completes, a journey can branch on it) and the click is kept with the
link it followed. An unsubscribe withdraws the consent for the message's channel and
category and is seen by journeys as a ``consent.withdrawn`` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.ids import new_id
from kaskad.domain.links import LinkRef
from kaskad.domain.providers import StatusReport
from kaskad.domain.vocabulary import Channel, MessageStatus
from kaskad.services import reports, runs
from kaskad.services.errors import NotFound

WITHDRAWN: Final = "consent.withdrawn"
STATUS_OF: Final = {"click": MessageStatus.CLICKED, "open": MessageStatus.SEEN}


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    channel: str
    category: str
    changed: bool


def follow(uow: UnitOfWork, *, ref: LinkRef, now: datetime) -> str | None:
    """Record a click (or an email open) and return where a click leads."""
    with uow:
        message = _message(uow, ref.message_id)
        url = uow.links.url(ref.message_id, ref.link) if ref.kind == "click" else None
        if ref.kind == "click" and url is None:
            raise NotFound("link_not_found", "this link does not exist")
        uow.links.add_click(
            {
                "message_id": message["id"],
                "contact_id": message["contact_id"],
                "link": ref.link if ref.kind == "click" else None,
                "kind": ref.kind,
                "url": url,
                "at": now,
            }
        )
        report = StatusReport(
            provider=message["provider"],
            status=STATUS_OF[ref.kind],
            at=now,
            message_id=message["id"],
            provider_status=f"kaskad:{ref.kind}",
        )
        uow.flush()
        reports.record_reports(uow, reports=[report], now=now)
        uow.commit()
        return url


def unsubscribe(
    uow: UnitOfWork, *, ref: LinkRef, routing: Mapping[Channel, str], now: datetime
) -> Unsubscribed:
    """Withdraw consent for the message's channel and category (one click, RFC 8058)."""
    with uow:
        message = _message(uow, ref.message_id)
        owner = uow.notifications.summaries([message["notification_id"]])[
            message["notification_id"]
        ]
        channel, category = message["channel"], owner["category"]
        contact = uow.contacts.by_ids([message["contact_id"]]).get(message["contact_id"])
        if contact is None or contact["erased_at"] is not None:
            return Unsubscribed(channel, category, changed=False)
        consents = {k: dict(v) for k, v in (contact["consents"] or {}).items()}
        changed = consents.get(channel, {}).get(category) is not False
        if changed:
            consents.setdefault(channel, {})[category] = False
            uow.contacts.set(contact["id"], {"consents": consents, "updated_at": now})
            event = _withdrawn(contact["id"], message, channel, category, now)
            uow.events.insert_new([event])
            runs.on_events(uow, events=[event], routing=routing)
        uow.commit()
        return Unsubscribed(channel, category, changed)


def _message(uow: UnitOfWork, message_id: str) -> dict[str, Any]:
    message = uow.notifications.messages_by_ids([message_id]).get(message_id)
    if message is None:
        raise NotFound("link_not_found", "this link does not exist")
    return dict(message)


def _withdrawn(
    contact_id: str, message: dict[str, Any], channel: str, category: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
        "contact_id": contact_id,
        "key": f"unsubscribe:{message['id']}",
        "type": WITHDRAWN,
        "occurred_at": now,
        "received_at": now,
        "payload": {"channel": channel, "category": category, "message": message["id"]},
    }
