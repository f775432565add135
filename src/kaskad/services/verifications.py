"""Verifications: send a one-time code along a cascade, check it, read where it stands.

The code travels as an ordinary security notification, so it takes the engine's urgent lane
(bulk sends never delay it) and falls back channel by channel like any cascade. Once the
verification is settled (approved, expired, out of attempts or superseded), its cascade is
cancelled if still under way and the code is masked in the stored messages and steps, so
the database keeps no live code.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain import verifications as otp
from kaskad.domain.cascades import Step
from kaskad.domain.contacts import normalise_phone
from kaskad.domain.ids import new_id
from kaskad.domain.vocabulary import DEFAULT_PRIORITY, Category, Channel, Until
from kaskad.services import cascading
from kaskad.services.contacts import blank_contact
from kaskad.services.errors import Invalid, NotFound, ServiceError
from kaskad.services.notifications import create_notification, route_steps

log = logging.getLogger(__name__)
# Expired codes blanked on the side of each new verification: enough to keep up with the
# codes created, few enough to keep the request short.
SWEEP_BATCH = 20


class RateLimited(ServiceError):
    """Too many codes for a phone or an IP; ``retry_after`` is in whole seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, {"retry_after": retry_after})
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class OtpConfig:
    code_length: int
    alphabet: str
    expiry: timedelta
    max_attempts: int
    step_timeout: timedelta
    wording: otp.Wording
    phone_limit: otp.RateLimit
    ip_limit: otp.RateLimit


@dataclass(frozen=True, slots=True)
class ChannelStep:
    channel: Channel
    timeout: timedelta | None = None


@dataclass(frozen=True, slots=True)
class VerificationRequest:
    """Exactly one of ``contact`` (an external id) and ``phone``; ``ip`` is the end user's
    address as the caller's app saw it. The rest override the configured defaults."""

    contact: str | None
    phone: str | None
    cascade: Sequence[ChannelStep]
    ip: str | None = None
    code_length: int | None = None
    expiry: timedelta | None = None
    max_attempts: int | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Checked:
    id: str
    result: otp.CheckResult
    status: otp.VerificationStatus
    attempts_left: int


def start_verification(
    uow: UnitOfWork,
    *,
    request: VerificationRequest,
    config: OtpConfig,
    routing: Mapping[Channel, str],
    key: bytes,
    now: datetime,
    default_region: str | None,
    create_contacts: bool,
    randbelow: otp.RandBelow = secrets.randbelow,
) -> dict[str, Any]:
    """Create a verification and send its code, in one transaction; refused with
    ``RateLimited`` when the phone or IP had too many codes lately."""
    phone = normalise_phone(request.phone, default_region) if request.phone else None
    ip = _network(request.ip)
    channels = [s.channel for s in request.cascade]
    expiry = request.expiry or config.expiry
    verification_id = new_id("ver")
    code = otp.generate_code(request.code_length or config.code_length, config.alphabet, randbelow)
    wording = _wording(config, request.text)
    minutes = otp.expiry_minutes(expiry)
    steps = route_steps(
        [
            Step(
                s.channel,
                otp.content(s.channel, wording, code=code, minutes=minutes),
                Until.DELIVERED,
                s.timeout or config.step_timeout,
            )
            for s in request.cascade
        ],
        routing,
    )
    with uow:
        contact = _contact(uow, request, phone, create_contacts, now)
        keys = _limit_keys(key, contact, phone or contact["phone"], ip)
        uow.verifications.serialise(keys.values())
        _check_limits(uow, config, keys, now)
        for row in uow.verifications.pending_of(contact["id"]):
            _settle(uow, row, otp.VerificationStatus.SUPERSEDED, now)
        _sweep_expired(uow, now)
        notification_id = create_notification(
            uow,
            contact=contact,
            category=Category.SECURITY,
            priority=DEFAULT_PRIORITY[Category.SECURITY],
            steps=steps,
            now=now,
        )
        uow.flush()
        notification = uow.notifications.get(notification_id)
        if notification is None or notification["status"] == "failed":
            raise Invalid("contact_unreachable", "no channel of the cascade can reach the contact")
        row = {
            "id": verification_id,
            "contact_id": contact["id"],
            "notification_id": notification_id,
            "status": otp.VerificationStatus.PENDING.value,
            "code_hash": otp.hash_code(key, verification_id, code),
            "attempts": 0,
            "max_attempts": request.max_attempts or config.max_attempts,
            "expires_at": now + expiry,
            "phone_key": keys.get("phone"),
            "ip_key": keys.get("ip"),
            "channels": [c.value for c in channels],
            "masked": [dict(m) for m in otp.masked_contents(channels, wording, minutes)],
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        uow.verifications.add(row)
        view = _view(uow, row, contact, now)
        uow.commit()
    return view


def check_verification(
    uow: UnitOfWork, *, verification_id: str, code: str, key: bytes, now: datetime
) -> Checked:
    """Check a code; the answer to a wrong one says how many attempts are left, no more."""
    with uow:
        row = uow.verifications.get(verification_id, lock=True)
        if row is None:
            raise _not_found(verification_id)
        before = _state(row)
        matches = otp.code_matches(key, verification_id, code, row["code_hash"])
        after, result = otp.check(before, matches=matches, now=now)
        if after != before:
            uow.verifications.set(verification_id, {"attempts": after.attempts, "updated_at": now})
            if after.settled:
                _settle(uow, row, after.status, now)
        uow.commit()
    return Checked(verification_id, result, after.status, after.attempts_left)


def get_verification(uow: UnitOfWork, *, verification_id: str, now: datetime) -> dict[str, Any]:
    """Where a verification stands and which channel carried its code; never the code."""
    with uow:
        row = uow.verifications.get(verification_id)
        if row is None:
            raise _not_found(verification_id)
        contact = uow.contacts.by_ids([row["contact_id"]]).get(row["contact_id"])
        return _view(uow, row, contact, now)


def _not_found(verification_id: str) -> NotFound:
    return NotFound("verification_not_found", f"no verification {verification_id!r}")


def _network(ip: str | None) -> str | None:
    if ip is None:
        return None
    try:
        return otp.client_network(ip)
    except ValueError as exc:
        raise Invalid("invalid_ip", f"{ip!r} is not an IP address", {"field": "ip"}) from exc


def _wording(config: OtpConfig, text: str | None) -> otp.Wording:
    if text is None:
        return config.wording
    if "{code}" not in text:
        raise Invalid("invalid_text", "the text needs {code}", {"field": "text"})
    return otp.Wording(text, config.wording.push_title, config.wording.email_subject)


def _contact(
    uow: UnitOfWork,
    request: VerificationRequest,
    phone: str | None,
    create_contacts: bool,
    now: datetime,
) -> dict[str, Any]:
    """The contact named, or the one with this phone; a phone no contact has gets a new
    contact (its external id is the phone) unless unknown contacts are not created."""
    if request.contact is not None:
        contact = uow.contacts.by_external_id(request.contact)
        if contact is None:
            raise Invalid("contact_not_found", f"no contact with external id {request.contact!r}")
        return contact
    assert phone is not None  # the request names one or the other
    found = uow.verifications.contact_by_phone(phone)
    if found is not None:
        return found
    if not create_contacts:
        raise Invalid("contact_not_found", "no contact has this phone number")
    new = blank_contact(phone, now) | {"phone": phone}
    uow.contacts.insert_missing([new])
    created = uow.contacts.by_external_id(phone)
    if created is None or created["phone"] != phone:
        # Another contact already uses this phone as its external id: never send there.
        raise Invalid("phone_conflict", "a contact named after this phone has another phone")
    return created


def _limit_keys(
    key: bytes, contact: Mapping[str, Any], phone: str | None, ip: str | None
) -> dict[str, str]:
    """What the limits count by: the phone (the contact, when it has none) and the IP."""
    keys = {"phone": otp.limit_key(key, "phone", phone or f"contact:{contact['id']}")}
    if ip is not None:
        keys["ip"] = otp.limit_key(key, "ip", ip)
    return keys


def _check_limits(
    uow: UnitOfWork, config: OtpConfig, keys: Mapping[str, str], now: datetime
) -> None:
    for name, limit in (("phone", config.phone_limit), ("ip", config.ip_limit)):
        if name not in keys or limit.limit <= 0:
            continue
        recent = uow.verifications.recent(
            f"{name}_key", keys[name], now - limit.window, limit.limit
        )
        verdict = otp.check_rate(limit, recent, now)
        if not verdict.allowed and verdict.retry_at is not None:
            wait = max(1, math.ceil((verdict.retry_at - now).total_seconds()))
            log.warning("verification refused: %s", verdict.reason)
            raise RateLimited(verdict.reason, wait)


def _sweep_expired(uow: UnitOfWork, now: datetime) -> None:
    """Settle a few codes that expired unchecked, so their texts do not linger."""
    for row in uow.verifications.claim_expired(now, SWEEP_BATCH):
        _settle(uow, row, otp.VerificationStatus.EXPIRED, now)


def _settle(
    uow: UnitOfWork, row: Mapping[str, Any], status: otp.VerificationStatus, now: datetime
) -> None:
    """End a verification: forget its hash, stop its cascade, mask the code it sent."""
    uow.verifications.set(
        row["id"],
        {"status": status.value, "code_hash": None, "updated_at": now, "finished_at": now},
    )
    notification_id = row["notification_id"]
    tracked = cascading.track(uow, uow.notifications.lock([notification_id]).values())
    item = tracked.get(notification_id)
    if item is None:
        return
    if not item.state.finished:
        transition = item.cascade.cancel(item.state, f"verification {status.value}")
        cascading.carry_out(uow, item, transition, now)
    masked = row["masked"]
    for step, message in item.messages.items():
        if step < len(masked):
            uow.notifications.set_message(message["id"], {"content": masked[step]})
    steps = [dict(s, content=masked[i]) for i, s in enumerate(item.row["steps"])]
    uow.notifications.set(notification_id, {"steps": steps})


def _state(row: Mapping[str, Any]) -> otp.VerificationState:
    return otp.VerificationState(
        otp.VerificationStatus(row["status"]),
        row["attempts"],
        row["max_attempts"],
        row["expires_at"],
    )


def _view(
    uow: UnitOfWork, row: Mapping[str, Any], contact: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    state = _state(row)
    notification = uow.notifications.get(row["notification_id"])
    messages = uow.notifications.messages_of([row["notification_id"]])
    latest = messages[-1] if messages else None
    return {
        "id": row["id"],
        "status": state.seen_at(now).value,
        "contact": contact["external_id"] if contact else None,
        "channels": list(row["channels"]),
        "notification_id": row["notification_id"],
        "notification_status": notification["status"] if notification else None,
        "channel": latest["channel"] if latest else None,
        "expires_at": row["expires_at"],
        "attempts": state.attempts,
        "max_attempts": state.max_attempts,
        "attempts_left": state.attempts_left,
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
    }
