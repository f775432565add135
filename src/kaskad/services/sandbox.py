"""The sandbox's own use cases: choosing outcomes, listing what it received, reporting."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kaskad.adapters.channels.sandbox import SandboxWebhook, report_body
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.contacts import InvalidContact, normalise_email, normalise_phone
from kaskad.domain.vocabulary import Channel
from kaskad.services import reports
from kaskad.services.errors import Invalid


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
        uow.sandbox.delete_reports([r["id"] for r in rows])
        uow.commit()
        return len(rows)
