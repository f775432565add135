"""Contacts: phone/email/time zone normalisation, consents and reachability."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from phonenumbers import timezone as phone_timezones

from kaskad.domain.contacts import (
    PHONE_CHANNELS,
    InvalidContact,
    Reachability,
    consent_for,
    normalise_email,
    normalise_phone,
    timezone_for_phone,
    validate_consents,
    validate_timezone,
)
from kaskad.domain.vocabulary import Category, Channel

UA = "+380671234567"
US = "+16502530000"
GB = "+442070313000"

# -- normalise_phone ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+380671234567", None, UA),
        ("+380 67 123 4567", None, UA),
        ("+380-67-123-45-67", None, UA),
        ("  +380 (67) 123 45 67  ", None, UA),
        ("067 123 4567", "UA", UA),
        ("0671234567", "UA", UA),
        ("+380671234567", "US", UA),  # an international number ignores the default region
        ("+16502530000", None, US),
        ("+1 650 253 0000", None, US),
        ("(650) 253-0000", "US", US),
        ("650-253-0000", "US", US),
        ("+442070313000", None, GB),
        ("+44 20 7031 3000", None, GB),
        ("020 7031 3000", "GB", GB),
        ("07400 123456", "GB", "+447400123456"),
    ],
)
def test_normalise_phone_returns_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("", None),
        ("not a phone", None),
        ("12345", None),  # no region to read a national number in
        ("067 123 4567", None),
        ("+380 12", None),  # too short for Ukraine
        ("+1 200 000 0000", None),  # not an assigned US range
        ("+999 1234567", None),  # no such country code
        ("123", "UA"),
        ("0671234567", "GB"),  # a Ukrainian national number read as British
    ],
)
def test_normalise_phone_refuses(raw: str, region: str | None) -> None:
    with pytest.raises(InvalidContact) as caught:
        normalise_phone(raw, region)
    assert caught.value.field == "phone"
    assert repr(raw) in str(caught.value)


def test_invalid_contact_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a phone number"):
        normalise_phone("not a phone")


# -- normalise_email ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("anna@example.com", "anna@example.com"),
        ("  anna@example.com\n", "anna@example.com"),
        ("anna@EXAMPLE.Com", "anna@example.com"),
        ("Anna.Smith@Example.COM", "Anna.Smith@example.com"),  # the local part keeps its case
        ("anna+tag@mail.example.co.uk", "anna+tag@mail.example.co.uk"),
        ("a@b.c", "a@b.c"),
    ],
)
def test_normalise_email(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "anna",
        "anna@",
        "@example.com",
        "anna@example",
        "anna@@example.com",
        "an@na@example.com",
        "an na@example.com",
        "anna@exa mple.com",
        "anna@example.com\nbcc@evil.com",
    ],
)
def test_normalise_email_refuses(raw: str) -> None:
    with pytest.raises(InvalidContact) as caught:
        normalise_email(raw)
    assert caught.value.field == "email"


# -- validate_timezone / timezone_for_phone ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Europe/Kyiv", "Europe/Kyiv"),
        ("Europe/Kiev", "Europe/Kyiv"),
        ("UTC", "UTC"),
        ("America/New_York", "America/New_York"),
        ("Asia/Kolkata", "Asia/Kolkata"),
    ],
)
def test_validate_timezone_accepts(name: str, expected: str) -> None:
    assert validate_timezone(name) == expected


@pytest.mark.parametrize("name", ["Mars/Base", "", "Europe/Atlantis", "../etc/passwd", "/etc/x"])
def test_validate_timezone_refuses(name: str) -> None:
    with pytest.raises(InvalidContact, match="not an IANA time zone") as caught:
        validate_timezone(name)
    assert caught.value.field == "timezone"


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        (UA, "Europe/Kyiv"),
        (GB, "Europe/London"),
    ],
)
def test_timezone_for_phone(e164: str, expected: str) -> None:
    assert timezone_for_phone(e164) == expected


def test_timezone_for_us_phone_is_an_american_zone() -> None:
    zone = timezone_for_phone(US)
    assert zone is not None
    assert zone.startswith("America/")


def test_timezone_for_phone_without_a_known_zone_is_none() -> None:
    # 555 numbers have no geography: phonenumbers answers Etc/Unknown.
    assert timezone_for_phone("+15551234567") is None


@pytest.mark.parametrize(
    ("zones", "expected"),
    [
        (("Europe/Kiev",), "Europe/Kyiv"),  # the old name is mapped to the new one
        (("Etc/Unknown", "Europe/Kiev"), "Europe/Kyiv"),
        (("Mars/Base", "Europe/Kiev", "Europe/Simferopol"), "Europe/Kyiv"),  # first known zone
        (("Europe/Simferopol", "Europe/Kiev"), "Europe/Simferopol"),
        (("Etc/Unknown",), None),
        (("Mars/Base",), None),
        ((), None),
    ],
)
def test_timezone_for_phone_maps_and_filters_zones(
    monkeypatch: pytest.MonkeyPatch, zones: tuple[str, ...], expected: str | None
) -> None:
    monkeypatch.setattr(phone_timezones, "time_zones_for_number", lambda _n: zones)
    assert timezone_for_phone(UA) == expected


# -- validate_consents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, {}),
        ({"sms": {"marketing": True}}, {"sms": {"marketing": True}}),
        ({"*": {"*": False}}, {"*": {"*": False}}),
        (
            {"email": {"marketing": True, "*": False}, "*": {"security": True}},
            {"email": {"marketing": True, "*": False}, "*": {"security": True}},
        ),
        ({"viber": {}}, {}),  # an empty channel map adds nothing
        (
            {c.value: {k.value: True for k in Category} for c in Channel},
            {c.value: {k.value: True for k in Category} for c in Channel},
        ),
    ],
)
def test_validate_consents_accepts(
    raw: Mapping[str, Any], expected: dict[str, dict[str, bool]]
) -> None:
    assert validate_consents(raw) == expected


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"telegram": {"marketing": True}}, "consents.telegram", "unknown channel"),
        ({"SMS": {"marketing": True}}, "consents.SMS", "unknown channel"),
        ({"sms": True}, "consents.sms", "must map categories"),
        ({"sms": ["marketing"]}, "consents.sms", "must map categories"),
        ({"sms": {"spam": True}}, "consents.sms.spam", "unknown category"),
        ({"*": {"Marketing": True}}, "consents.*.Marketing", "unknown category"),
        ({"sms": {"marketing": "yes"}}, "consents.sms.marketing", "must be true or false"),
        ({"sms": {"marketing": 1}}, "consents.sms.marketing", "must be true or false"),
        ({"email": {"*": None}}, "consents.email.*", "must be true or false"),
        (
            {"sms": {"marketing": True}, "push": {"service": 0}},
            "consents.push.service",
            "must be true or false",
        ),
    ],
)
def test_validate_consents_refuses(raw: Mapping[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidContact, match=message) as caught:
        validate_consents(raw)
    assert caught.value.field == field


# -- consent_for ---------------------------------------------------------------------------

SMS, MKT = Channel.SMS, Category.MARKETING


@pytest.mark.parametrize(
    ("consents", "expected"),
    [
        ({}, None),
        ({"email": {"marketing": True}}, None),  # other channel
        ({"sms": {"service": True}}, None),  # other category
        ({"*": {"*": True}}, True),
        ({"*": {"*": False}}, False),
        ({"*": {"marketing": True}}, True),
        ({"sms": {"*": False}}, False),
        ({"sms": {"marketing": True}}, True),
        # channel+category beats everything
        ({"sms": {"marketing": True, "*": False}, "*": {"marketing": False, "*": False}}, True),
        ({"sms": {"marketing": False, "*": True}, "*": {"marketing": True, "*": True}}, False),
        # channel+* beats *+category and *+*
        ({"sms": {"*": True}, "*": {"marketing": False, "*": False}}, True),
        ({"sms": {"*": False}, "*": {"marketing": True, "*": True}}, False),
        # *+category beats *+*
        ({"*": {"marketing": True, "*": False}}, True),
        ({"*": {"marketing": False, "*": True}}, False),
        # channel map without a fitting entry falls through to the wildcards
        ({"sms": {"service": False}, "*": {"marketing": True}}, True),
    ],
)
def test_consent_for_precedence(
    consents: Mapping[str, Mapping[str, bool]], expected: bool | None
) -> None:
    assert consent_for(consents, SMS, MKT) is expected


def test_consent_for_reads_validated_consents() -> None:
    consents = validate_consents({"viber": {"service": False}})
    assert consent_for(consents, Channel.VIBER, Category.SERVICE) is False
    assert consent_for(consents, Channel.SMS, Category.SERVICE) is None


# -- Reachability ---------------------------------------------------------------------------

FULL = Reachability(phone=UA, email="anna@example.com", push_tokens=("tok-1", "tok-2"))


@pytest.mark.parametrize(
    ("contact", "channel", "expected"),
    [
        (FULL, Channel.SMS, UA),
        (FULL, Channel.VIBER, UA),
        (FULL, Channel.WHATSAPP, UA),
        (FULL, Channel.VOICE, UA),
        (FULL, Channel.EMAIL, "anna@example.com"),
        (FULL, Channel.PUSH, "tok-1"),
        (Reachability(), Channel.SMS, None),
        (Reachability(), Channel.EMAIL, None),
        (Reachability(), Channel.PUSH, None),
        (Reachability(phone=UA), Channel.EMAIL, None),
        (Reachability(email="a@b.c"), Channel.VIBER, None),
    ],
)
def test_address(contact: Reachability, channel: Channel, expected: str | None) -> None:
    assert contact.address(channel) == expected


def test_phone_channels() -> None:
    assert {Channel.SMS, Channel.VIBER, Channel.WHATSAPP, Channel.VOICE} == PHONE_CHANNELS


T, M, S, SEC = Category.TRANSACTIONAL, Category.MARKETING, Category.SERVICE, Category.SECURITY


@pytest.mark.parametrize(
    ("contact", "channel", "category", "expected"),
    [
        # reachable
        (FULL, Channel.SMS, T, None),
        (FULL, Channel.EMAIL, S, None),
        (FULL, Channel.PUSH, SEC, None),
        (Reachability(phone=UA, consents={"sms": {"marketing": True}}), Channel.SMS, M, None),
        (Reachability(phone=UA, consents={"*": {"*": True}}), Channel.VOICE, M, None),
        (Reachability(phone=UA, consents={"sms": {"service": True}}), Channel.SMS, T, None),
        # missing addresses
        (Reachability(), Channel.EMAIL, T, "contact has no email address"),
        (Reachability(phone=UA), Channel.EMAIL, T, "contact has no email address"),
        (Reachability(), Channel.PUSH, T, "contact has no push token"),
        (Reachability(), Channel.SMS, T, "contact has no phone number"),
        (Reachability(email="a@b.c"), Channel.VIBER, T, "contact has no phone number"),
        (Reachability(email="a@b.c"), Channel.WHATSAPP, T, "contact has no phone number"),
        (Reachability(email="a@b.c"), Channel.VOICE, T, "contact has no phone number"),
        # a missing address comes before consent
        (
            Reachability(consents={"*": {"*": False}}),
            Channel.EMAIL,
            M,
            "contact has no email address",
        ),
        # marketing needs an explicit opt-in
        (FULL, Channel.SMS, M, "no marketing consent on sms"),
        (FULL, Channel.EMAIL, M, "no marketing consent on email"),
        (
            Reachability(phone=UA, consents={"email": {"marketing": True}}),
            Channel.SMS,
            M,
            "no marketing consent on sms",
        ),
        # explicit opt-outs
        (
            Reachability(phone=UA, consents={"sms": {"transactional": False}}),
            Channel.SMS,
            T,
            "contact opted out of transactional on sms",
        ),
        (
            Reachability(phone=UA, consents={"viber": {"*": False}}),
            Channel.VIBER,
            SEC,
            "contact opted out of security on viber",
        ),
        (
            Reachability(phone=UA, consents={"*": {"marketing": False}}),
            Channel.WHATSAPP,
            M,
            "contact opted out of marketing on whatsapp",
        ),
        (
            Reachability(email="a@b.c", consents={"*": {"*": False}}),
            Channel.EMAIL,
            S,
            "contact opted out of service on email",
        ),
        # erased beats everything
        (Reachability(phone=UA, erased=True), Channel.SMS, T, "the contact was erased"),
        (
            Reachability(phone=UA, consents={"*": {"*": True}}, erased=True),
            Channel.SMS,
            M,
            "the contact was erased",
        ),
        (Reachability(erased=True), Channel.EMAIL, T, "the contact was erased"),
    ],
)
def test_why_unreachable(
    contact: Reachability, channel: Channel, category: Category, expected: str | None
) -> None:
    assert contact.why_unreachable(channel, category) == expected
