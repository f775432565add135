"""Contacts: upsert (one or a batch), read, erase, and the timeline of everything about one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.contacts import (
    InvalidContact,
    normalise_email,
    normalise_phone,
    timezone_for_phone,
    validate_consents,
    validate_timezone,
)
from kaskad.domain.ids import new_id
from kaskad.domain.vocabulary import Channel
from kaskad.services import cascading, triggers
from kaskad.services.errors import Invalid, NotFound

UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class ContactPatch:
    """Fields to set; a field left ``UNSET`` keeps its stored value.

    ``attributes`` and ``consents`` merge into what is stored (an attribute set to null is
    removed); ``push_tokens`` replaces the list.
    """

    external_id: str
    phone: Any = UNSET
    email: Any = UNSET
    push_tokens: Any = UNSET
    locale: Any = UNSET
    timezone: Any = UNSET
    attributes: Mapping[str, Any] = field(default_factory=dict)
    consents: Mapping[str, Any] = field(default_factory=dict)


def normalise(patch: ContactPatch, default_region: str | None) -> ContactPatch:
    """Validate and normalise a patch; raises ``InvalidContact`` naming the field."""
    phone, email, tz = patch.phone, patch.email, patch.timezone
    if isinstance(phone, str):
        phone = normalise_phone(phone, default_region)
    if isinstance(email, str):
        email = normalise_email(email)
    if isinstance(tz, str):
        tz = validate_timezone(tz)
    if not patch.external_id or len(patch.external_id) > 200:
        raise InvalidContact("external_id", "external id must be 1 to 200 characters")
    return ContactPatch(
        external_id=patch.external_id,
        phone=phone,
        email=email,
        push_tokens=patch.push_tokens,
        locale=patch.locale,
        timezone=tz,
        attributes=patch.attributes,
        consents=validate_consents(patch.consents),
    )


def _merged(stored: Mapping[str, Any] | None, patch: ContactPatch, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = dict(stored) if stored else blank_contact(patch.external_id, now)
    for name in ("phone", "email", "push_tokens", "locale", "timezone"):
        value = getattr(patch, name)
        if value is not UNSET:
            row[name] = value if name != "push_tokens" else list(value or [])
    attributes = dict(row["attributes"])
    for key, value in patch.attributes.items():
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value
    row["attributes"] = attributes
    consents = {ch: dict(cats) for ch, cats in row["consents"].items()}
    for channel, per_category in patch.consents.items():
        consents.setdefault(channel, {}).update(per_category)
    row["consents"] = consents
    if row["timezone"] is None and row["phone"]:
        row["timezone"] = timezone_for_phone(row["phone"])
    row["updated_at"] = now
    return row


# Every personal field, as a contact has it when new or after erasure.
PERSONAL_BLANK: dict[str, Any] = {
    "phone": None,
    "email": None,
    "push_tokens": [],
    "locale": None,
    "timezone": None,
    "attributes": {},
    "consents": {},
}


def blank_contact(external_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("ctc"),
        "external_id": external_id,
        **PERSONAL_BLANK,
        "created_at": now,
        "updated_at": now,
        "erased_at": None,
    }


def stored_contact(uow: UnitOfWork, external_id: str) -> dict[str, Any]:
    row = uow.contacts.by_external_id(external_id)
    if row is None:
        raise NotFound("contact_not_found", f"no contact with external id {external_id!r}")
    return row


def upsert_contacts(
    uow: UnitOfWork,
    *,
    patches: Sequence[ContactPatch],
    default_region: str | None,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    routing: Mapping[Channel, str] | None = None,
) -> list[tuple[dict[str, Any], bool]]:
    """Validate every patch, then store all of them in one transaction or none.

    ``progress`` is called with the number of rows written since its last call. With
    ``routing``, contacts that join a segment enter its journeys in the same transaction.
    """
    errors = []
    valid: list[ContactPatch] = []
    for index, patch in enumerate(patches):
        try:
            valid.append(normalise(patch, default_region))
        except InvalidContact as exc:
            errors.append({"index": index, "field": exc.field, "message": str(exc)})
    if errors:
        first = errors[0]
        code = "invalid_" + str(first["field"]).split(".")[0]
        raise Invalid(code, str(first["message"]), errors)
    ids = [p.external_id for p in valid]
    if len(set(ids)) != len(ids):
        raise Invalid("duplicate_external_id", "an external id appears twice in the batch")
    with uow:
        stored = uow.contacts.by_external_ids(ids)
        results = []
        changes = []
        for patch in valid:
            before = stored.get(patch.external_id)
            row = _merged(before, patch, now)
            if before is None:
                uow.contacts.insert(row)
            else:
                uow.contacts.update(row["id"], {k: v for k, v in row.items() if k != "id"})
            results.append((row, before is None))
            changes.append((before, row))
            if progress is not None and len(results) % 500 == 0:
                progress(500)
        if routing is not None:
            triggers.on_contacts(uow, changes=changes, routing=routing, now=now)
        uow.commit()
        if progress is not None:
            progress(len(results) % 500)
        return results


def get_contact(uow: UnitOfWork, *, external_id: str) -> dict[str, Any]:
    with uow:
        row = stored_contact(uow, external_id)
        return dict(row)


def erase_contact(uow: UnitOfWork, *, external_id: str, now: datetime) -> dict[str, int]:
    """Erase personal data (identities, attributes, message content, event payloads) and keep
    anonymised rows so counts per channel and status stay right. Cascades still under way
    are cancelled. Returns the message counts per channel."""
    with uow:
        row = stored_contact(uow, external_id)
        # Stop what is still under way first: nothing more may go to an erased contact.
        for item in cascading.track(uow, uow.notifications.active_of(row["id"]).values()).values():
            transition = item.cascade.cancel(item.state, "contact erased")
            cascading.carry_out(uow, item, transition, now)
        erased = {"external_id": None, **PERSONAL_BLANK, "erased_at": now, "updated_at": now}
        uow.contacts.update(row["id"], erased)
        uow.contacts.erase_history(row["id"])
        counts = uow.contacts.counts(row["id"])
        uow.commit()
        return counts


def timeline(
    uow: UnitOfWork, *, external_id: str, limit: int, before: datetime | None
) -> list[dict[str, Any]]:
    with uow:
        row = stored_contact(uow, external_id)
        return [dict(r) for r in uow.notifications.timeline(row["id"], limit, before)]
