"""The global suppression list: addresses kaskad never sends to, whatever the consents say
(a number reported as abused, a complaint, a legal block)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.contacts import InvalidContact, normalise_email, normalise_phone
from kaskad.domain.vocabulary import Channel
from kaskad.services import policy
from kaskad.services.errors import Invalid, NotFound

ALL_CHANNELS = "*"


def normalise(address: str, channel: str) -> tuple[str, str]:
    """The address as contacts store it (E.164, lower-case domain) and the channel or ``*``."""
    if channel != ALL_CHANNELS and channel not in {c.value for c in Channel}:
        raise Invalid("invalid_channel", f"{channel!r} is not a channel (or * for all)")
    try:
        if "@" in address:
            return normalise_email(address), channel
        return normalise_phone(address), channel
    except InvalidContact as exc:
        raise Invalid("invalid_address", str(exc), {"field": "address"}) from None


def add(
    uow: UnitOfWork, *, address: str, channel: str, reason: str, now: datetime
) -> dict[str, Any]:
    """Put an address on the list; adding it again keeps the first entry."""
    address, channel = normalise(address, channel)
    row = {"address": address, "channel": channel, "reason": reason, "created_at": now}
    with uow:
        existing = uow.policy.suppression(address, channel)
        if existing is not None:
            return existing | {"created": False}
        try:
            uow.policy.add_suppression(row)
            uow.commit()
            policy.list_changed(uow)
        except IntegrityError:
            pass  # added at the same moment by another request: the list holds it either way
    return row | {"created": True}


def remove(uow: UnitOfWork, *, address: str, channel: str) -> None:
    address, channel = normalise(address, channel)
    with uow:
        if not uow.policy.remove_suppression(address, channel):
            raise NotFound("suppression_not_found", "that address is not on the suppression list")
        uow.commit()


def listed(
    uow: UnitOfWork, *, limit: int, after: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    with uow:
        return uow.policy.suppressions(limit, after)
