"""Contacts: identities per channel, time zone, consents, and who can be reached where."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as phone_timezones

from kaskad.domain.vocabulary import Category, Channel

PHONE_CHANNELS: Final[frozenset[Channel]] = frozenset(
    {Channel.SMS, Channel.VIBER, Channel.WHATSAPP, Channel.VOICE}
)
# Old IANA names that phonenumbers still returns, mapped to their current names.
_RENAMED_ZONES: Final[dict[str, str]] = {"Europe/Kiev": "Europe/Kyiv"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidContact(ValueError):
    """A contact field that cannot be accepted; ``field`` names it for the API error."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """Return the E.164 form of a phone number, or raise ``InvalidContact``."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidContact("phone", f"{raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidContact("phone", f"{raw!r} is not a valid phone number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalise_email(raw: str) -> str:
    email = raw.strip()
    if not _EMAIL.match(email):
        raise InvalidContact("email", f"{raw!r} is not an email address")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def validate_timezone(name: str) -> str:
    name = _RENAMED_ZONES.get(name, name)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidContact("timezone", f"{name!r} is not an IANA time zone") from exc
    return name


def timezone_for_phone(e164: str) -> str | None:
    """The phone's country time zone (the first one where a country has several)."""
    zones = [
        _RENAMED_ZONES.get(z, z)
        for z in phone_timezones.time_zones_for_number(phonenumbers.parse(e164))
        if z != "Etc/Unknown"
    ]
    known = [z for z in zones if z in _available()]
    return known[0] if known else None


_ZONES: set[str] = set()


def _available() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


Consents = Mapping[str, Mapping[str, bool]]


def validate_consents(raw: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
    """Consents are ``{channel or "*": {category or "*": bool}}``."""
    channels = {c.value for c in Channel} | {"*"}
    categories = {c.value for c in Category} | {"*"}
    result: dict[str, dict[str, bool]] = {}
    for channel, per_category in raw.items():
        if channel not in channels:
            raise InvalidContact(f"consents.{channel}", f"unknown channel {channel!r}")
        if not isinstance(per_category, Mapping):
            raise InvalidContact(f"consents.{channel}", "must map categories to true/false")
        for category, value in per_category.items():
            if category not in categories:
                raise InvalidContact(
                    f"consents.{channel}.{category}", f"unknown category {category!r}"
                )
            if not isinstance(value, bool):
                raise InvalidContact(f"consents.{channel}.{category}", "must be true or false")
            result.setdefault(channel, {})[category] = value
    return result


def consent_for(consents: Consents, channel: Channel, category: Category) -> bool | None:
    """The most specific explicit consent, or None when the contact said nothing."""
    for ch, cat in ((channel, category), (channel, "*"), ("*", category), ("*", "*")):
        value = consents.get(ch, {}).get(cat)
        if value is not None:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Reachability:
    """What the engine needs to know about a contact to pick a channel."""

    phone: str | None = None
    email: str | None = None
    push_tokens: Sequence[str] = ()
    consents: Consents = field(default_factory=dict)
    erased: bool = False

    def address(self, channel: Channel) -> str | None:
        if channel in PHONE_CHANNELS:
            return self.phone
        if channel is Channel.EMAIL:
            return self.email
        return self.push_tokens[0] if self.push_tokens else None

    def why_unreachable(self, channel: Channel, category: Category) -> str | None:
        """None when the contact can get this channel for this category, else the reason.

        Marketing needs an explicit opt-in; other categories are sent unless opted out.
        """
        if self.erased:
            return "the contact was erased"
        if self.address(channel) is None:
            what = {Channel.EMAIL: "email address", Channel.PUSH: "push token"}
            return f"contact has no {what.get(channel, 'phone number')}"
        consent = consent_for(self.consents, channel, category)
        if consent is False:
            return f"contact opted out of {category} on {channel}"
        if consent is None and category is Category.MARKETING:
            return f"no marketing consent on {channel}"
        return None
