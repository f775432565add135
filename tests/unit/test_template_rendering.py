"""Templates: reading them (every problem by path and line), choosing the variant for a
locale, rendering strictly or leniently, the money and phone filters, escaping, the
sandbox's limits and the warnings a preview shows."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaskad.domain.templates import (
    Rendered,
    RenderError,
    Template,
    TemplateError,
    choose_variant,
    format_money,
    load_template,
    phone_mask,
    render,
    variables,
)
from kaskad.domain.vocabulary import Category, Channel

CONTACT = {"first_name": "Olena", "id": "c-42"}


def yaml_doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def template(*variants: dict[str, Any], **top: Any) -> Template:
    return load_template(json.dumps({"id": "t", **top, "variants": list(variants)}))


def sms(text: str, **top: Any) -> Template:
    return template({"channel": "sms", "text": text}, **top)


def sms_text(text: str, scope: dict[str, Any], *, strict: bool = True) -> str:
    result = render(sms(text), channel=Channel.SMS, locale=None, scope=scope, strict=strict)
    return str(result.content["text"])


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(TemplateError) as caught:
        load_template(text)
    return [(p.path, p.line, p.message) for p in caught.value.problems]


# -- reading ------------------------------------------------------------------------------

GOOD = yaml_doc(
    """
    id: payment_confirmed
    name: Payment confirmed
    category: transactional
    default_locale: uk
    variants:
      - channel: sms
        locale: uk
        text: "{{ contact.first_name }}, списано {{ event.amount | money: 'UAH' }}"
      - channel: sms
        locale: en
        text: "{{ contact.first_name }}, {{ event.amount | money: 'UAH' }} paid"
      - channel: email
        subject: "Payment of {{ event.amount | money: 'UAH' }}"
        html: "<p>Hello {{ contact.first_name }}</p>"
        text: "Hello {{ contact.first_name }}"
        attachments: [{filename: tariff.pdf, path: tariffs/2026.pdf}]
      - channel: viber
        locale: uk
        image_url: https://bank.example/card.png
        button: {text: "Деталі", url: "https://bank.example/p/{{ event.id }}"}
    """
)


def test_a_good_template_loads_with_its_defaults_filled_in() -> None:
    loaded = load_template(GOOD)
    assert loaded.id == "payment_confirmed"
    assert loaded.name == "Payment confirmed"
    assert loaded.category is Category.TRANSACTIONAL
    assert loaded.default_locale == "uk"
    assert loaded.track_links is True
    assert [(v.channel, v.locale) for v in loaded.variants] == [
        (Channel.SMS, "uk"),
        (Channel.SMS, "en"),
        (Channel.EMAIL, "uk"),  # no locale written: the default's
        (Channel.VIBER, "uk"),
    ]
    assert loaded.channels() == {Channel.SMS, Channel.EMAIL, Channel.VIBER}
    # Nested strings are compiled by their dotted place.
    assert set(loaded.variants[3].compiled) == {"image_url", "button.text", "button.url"}


@pytest.mark.parametrize(
    ("top", "name", "default_locale", "track"),
    [
        ({}, "t", "en", True),  # no locale anywhere: en
        ({"name": "Welcome"}, "Welcome", "en", True),
        ({"default_locale": "pl"}, "t", "pl", True),
        ({"track_links": False}, "t", "en", False),
    ],
)
def test_template_level_defaults(
    top: dict[str, Any], name: str, default_locale: str, track: bool
) -> None:
    loaded = sms("hi", **top)
    assert (loaded.name, loaded.default_locale, loaded.track_links) == (
        name,
        default_locale,
        track,
    )
    assert loaded.variants[0].locale == default_locale


def test_without_default_locale_the_first_written_locale_is_the_default() -> None:
    loaded = template(
        {"channel": "email", "subject": "s", "text": "t"},
        {"channel": "sms", "locale": "de", "text": "a"},
        {"channel": "sms", "locale": "uk", "text": "b"},
    )
    assert loaded.default_locale == "de"
    assert [v.locale for v in loaded.variants] == ["de", "de", "uk"]


YAML_PROBLEMS = [
    (
        "bad id",
        """
        id: Payment Confirmed
        variants:
          - channel: sms
            text: hi
        """,
        [("id", 1, '"Payment Confirmed" is not valid: lowercase a-z0-9_.-')],
    ),
    (
        "empty variants",
        """
        id: t
        variants: []
        """,
        [("variants", 2, "expected a list of variants, got an empty list")],
    ),
    (
        "variants not a list",
        """
        id: t
        variants: {channel: sms, text: hi}
        """,
        [("variants", 2, "expected a list of variants, got a mapping")],
    ),
    (
        "missing id and variants",
        """
        name: nothing else
        """,
        [("", 1, 'missing "id"'), ("", 1, 'missing "variants"')],
    ),
    (
        "sms without text",
        """
        id: t
        variants:
          - channel: sms
            sender: Bank
        """,
        [("variants[0]", 3, 'sms needs "text"')],
    ),
    (
        "email without subject, push without title or text",
        """
        id: t
        variants:
          - channel: email
            html: "<p>hi</p>"
          - channel: push
            deep_link: app://home
        """,
        [
            ("variants[0]", 3, 'email needs "subject"'),
            ("variants[1]", 5, 'push needs "title" or "text"'),
        ],
    ),
    (
        "email with subject only",
        """
        id: t
        variants:
          - channel: email
            subject: hi
        """,
        [("variants[0]", 3, 'email needs "html" or "text"')],
    ),
    (
        "viber without text or image",
        """
        id: t
        variants:
          - channel: viber
            button: {text: Go, url: "https://x.example"}
        """,
        [("variants[0]", 3, 'viber needs "text" or "image_url"')],
    ),
    (
        "unknown key in a variant",
        """
        id: t
        variants:
          - channel: sms
            locale: uk
            txet: hi
            text: hi
        """,
        [("variants[0].txet", 5, 'unknown key "txet" — did you mean "text"?')],
    ),
    (
        "unknown top-level key",
        """
        id: t
        default_locle: uk
        variants:
          - channel: sms
            text: hi
        """,
        [("default_locle", 2, 'unknown key "default_locle" — did you mean "default_locale"?')],
    ),
    (
        "a field of another channel",
        """
        id: t
        variants:
          - channel: sms
            text: hi
            subject: hello
        """,
        [("variants[0].subject", 5, 'unknown key "subject" — expected one of channel, ')],
    ),
    (
        "unknown channel",
        """
        id: t
        variants:
          - channel: smss
            text: hi
        """,
        [("variants[0].channel", 3, '"smss" is not a channel — did you mean "sms"?')],
    ),
    (
        "variant without channel",
        """
        id: t
        variants:
          - text: hi
        """,
        # Without a channel the fields it allows are unknown: every key is questioned.
        [
            ("variants[0].text", 3, 'unknown key "text" — expected one of channel'),
            ("variants[0]", 3, 'missing "channel"'),
        ],
    ),
    (
        "unknown category",
        """
        id: t
        category: marketting
        variants:
          - channel: sms
            text: hi
        """,
        [("category", 2, '"marketting" is not a category — did you mean "marketing"?')],
    ),
    (
        "track_links not a boolean",
        """
        id: t
        track_links: sometimes
        variants:
          - channel: sms
            text: hi
        """,
        [("track_links", 2, 'expected true or false, got text "sometimes"')],
    ),
    (
        "bad locale",
        """
        id: t
        variants:
          - channel: sms
            locale: english!
            text: hi
        """,
        [("variants[0].locale", 4, '"english!" is not valid: a locale such as uk, uk-UA or en')],
    ),
    (
        "a field that is not text",
        """
        id: t
        variants:
          - channel: sms
            text: 42
        """,
        [("variants[0].text", 4, "expected text, got the number 42")],
    ),
    (
        "liquid syntax error at its field",
        """
        id: t
        variants:
          - channel: sms
            text: fine
          - channel: email
            subject: hi
            html: "{% if contact.vip %}unclosed"
        """,
        [("variants[1].html", 7, "template error: expected tag endif")],
    ),
    (
        "liquid syntax error in a nested field",
        """
        id: t
        variants:
          - channel: viber
            text: hi
            button:
              text: Go
              url: "https://x.example/{{ event.id "
        """,
        [("variants[0].button.url", 7, "template error: expected '}}'")],
    ),
    (
        "duplicate channel and locale",
        """
        id: t
        variants:
          - channel: sms
            locale: uk
            text: a
          - channel: sms
            locale: UK
            text: b
        """,
        [("variants[1]", 6, "a second sms variant for locale UK (the first is variants[0])")],
    ),
    (
        "duplicate locale spelled with an underscore",
        """
        id: t
        variants:
          - channel: sms
            locale: uk-UA
            text: a
          - channel: sms
            locale: uk_ua
            text: b
        """,
        [("variants[1]", 6, "a second sms variant for locale uk_ua (the first is variants[0])")],
    ),
    (
        "duplicate through the default locale",
        """
        id: t
        default_locale: uk
        variants:
          - channel: sms
            locale: uk
            text: a
          - channel: sms
            text: b
        """,
        [("variants[1]", 7, "a second sms variant for locale uk (the first is variants[0])")],
    ),
    (
        "attachments need exactly one of path and content_base64",
        """
        id: t
        variants:
          - channel: email
            subject: s
            text: t
            attachments:
              - filename: neither.pdf
              - filename: both.pdf
                path: both.pdf
                content_base64: QQ==
              - filename: fine.pdf
                path: fine.pdf
        """,
        [
            (
                "variants[0].attachments[0]",
                7,
                'an attachment needs exactly one of "path" and "content_base64"',
            ),
            (
                "variants[0].attachments[1]",
                8,
                'an attachment needs exactly one of "path" and "content_base64"',
            ),
        ],
    ),
    (
        "attachment without filename",
        """
        id: t
        variants:
          - channel: email
            subject: s
            text: t
            attachments:
              - path: a.pdf
        """,
        [("variants[0].attachments[0]", 7, 'missing "filename"')],
    ),
    (
        "button without url",
        """
        id: t
        variants:
          - channel: viber
            text: t
            button: {text: Go}
        """,
        [("variants[0].button", 5, 'missing "url"')],
    ),
    (
        "button without text",
        """
        id: t
        variants:
          - channel: viber
            text: t
            button:
              url: https://x.example
        """,
        [("variants[0].button", 5, 'missing "text"')],
    ),
    (
        "button as text",
        """
        id: t
        variants:
          - channel: viber
            text: t
            button: https://x.example
        """,
        [("variants[0].button", 5, "expected a mapping (text, url)")],
    ),
    (
        "push data not a mapping",
        """
        id: t
        variants:
          - channel: push
            title: t
            data: [1, 2]
        """,
        [("variants[0].data", 5, "expected a mapping, got a list")],
    ),
    (
        "include is refused",
        """
        id: t
        variants:
          - channel: sms
            text: "{% include 'secrets' %}"
        """,
        [("variants[0].text", 4, "template error: unexpected tag 'include'")],
    ),
    (
        "render is refused",
        """
        id: t
        variants:
          - channel: sms
            text: hi
          - channel: email
            subject: s
            html: "<p>{% render 'footer' %}</p>"
        """,
        [("variants[1].html", 7, "template error: unexpected tag 'render'")],
    ),
    (
        "include inside a liquid tag is refused",
        """
        id: t
        variants:
          - channel: sms
            text: |-
              {% liquid
                include 'secrets'
              %}
        """,
        [("variants[0].text", 4, "template error: unexpected tag 'include'")],
    ),
    (
        "nesting limit",
        """
        id: t
        variants:
          - channel: sms
            text: "%s"
        """
        % ("{% if true %}" * 45 + "x" + "{% endif %}" * 45),
        [("variants[0].text", 4, "template error: block nesting limit reached")],
    ),
    (
        "not YAML",
        """
        id: t
        variants: [
        """,
        [("", 3, "while parsing a flow node")],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(yaml_doc(text), expected, id=name) for name, text, expected in YAML_PROBLEMS],
)
def test_yaml_problems_are_reported_by_path_and_line(
    text: str, expected: list[tuple[str, int, str]]
) -> None:
    found = problems(text)
    assert [(path, line) for path, line, _ in found] == [(p, n) for p, n, _ in expected]
    for (_, _, message), (_, _, wanted) in zip(found, expected, strict=True):
        assert message.startswith(wanted), message


JSON_PROBLEMS = [
    (
        "unknown key and missing field",
        '{\n  "id": "t",\n  "variants": [\n    {"channel": "sms",\n     "txt": "hi"}\n  ]\n}',
        [
            ("variants[0]", 4, 'sms needs "text"'),
            ("variants[0].txt", 5, 'unknown key "txt" — did you mean "text"?'),
        ],
    ),
    (
        "liquid syntax error",
        '{\n  "id": "t",\n  "variants": [\n    {"channel": "sms",\n     "text": "{{ a "}\n  ]\n}',
        [("variants[0].text", 5, "template error: expected '}}'")],
    ),
    (
        "bad id",
        '{"id": "-bad",\n "variants": [{"channel": "sms", "text": "hi"}]}',
        [("id", 1, '"-bad" is not valid')],
    ),
    (
        "duplicate variant",
        '{"id": "t",\n "variants": [\n  {"channel": "push", "title": "a"},\n'
        '  {"channel": "push", "title": "b"}\n ]\n}',
        [("variants[1]", 4, "a second push variant for locale en")],
    ),
    (
        "attachment with both",
        '{"id": "t", "variants": [\n {"channel": "email", "subject": "s", "text": "t",\n'
        '  "attachments": [\n   {"filename": "a", "path": "a", "content_base64": "QQ=="}]}]}',
        [("variants[0].attachments[0]", 4, "an attachment needs exactly one of")],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in JSON_PROBLEMS],
)
def test_json_problems_are_reported_by_path_and_line(
    text: str, expected: list[tuple[str, int, str]]
) -> None:
    found = problems(text)
    assert [(path, line) for path, line, _ in found] == [(p, n) for p, n, _ in expected]
    for (_, _, message), (_, _, wanted) in zip(found, expected, strict=True):
        assert message.startswith(wanted), message


def test_every_problem_is_reported_at_once_in_document_order() -> None:
    text = yaml_doc(
        """
        id: Bad
        variants:
          - channel: sms
            txt: a
          - channel: viber
            button: {text: Go}
        """
    )
    found = problems(text)
    assert [line for _, line, _ in found] == sorted(line or 0 for _, line, _ in found)
    assert {path for path, _, _ in found} >= {
        "id",
        "variants[0]",
        "variants[0].txt",
        "variants[1]",
        "variants[1].button",
    }
    with pytest.raises(TemplateError, match=r"variants\[0\]\.txt \(line 4\)"):
        load_template(text)


def test_the_filename_prefixes_the_message() -> None:
    with pytest.raises(TemplateError) as caught:
        load_template("id: t\nvariants: []\n", filename="welcome.yaml")
    assert caught.value.filename == "welcome.yaml"
    assert str(caught.value).startswith("welcome.yaml: variants (line 2): ")


# -- choosing the variant ----------------------------------------------------------------

LOCALES = template(
    {"channel": "sms", "locale": "uk", "text": "uk"},
    {"channel": "sms", "locale": "en-GB", "text": "en-GB"},
    {"channel": "sms", "locale": "en-US", "text": "en-US"},
    {"channel": "sms", "locale": "pl", "text": "pl"},
    {"channel": "email", "locale": "de", "subject": "de", "text": "de"},
    {"channel": "email", "locale": "fr", "subject": "fr", "text": "fr"},
    default_locale="pl-PL",
)


@pytest.mark.parametrize(
    ("channel", "locale", "chosen"),
    [
        (Channel.SMS, "uk", "uk"),  # exact
        (Channel.SMS, "UK", "uk"),  # case does not matter
        (Channel.SMS, "uk-UA", "uk"),  # same language
        (Channel.SMS, "uk_UA", "uk"),
        (Channel.SMS, "en-US", "en-US"),  # exact beats the first of the language
        (Channel.SMS, "en_us", "en-US"),
        (Channel.SMS, "en-GB", "en-GB"),
        (Channel.SMS, "en-AU", "en-GB"),  # same language: the first such variant
        (Channel.SMS, "en", "en-GB"),
        (Channel.SMS, "de", "pl"),  # no German SMS: the default's language (pl-PL → pl)
        (Channel.SMS, None, "pl"),
        (Channel.SMS, "", "pl"),
        (Channel.EMAIL, "fr-CA", "fr"),
        (Channel.EMAIL, "uk", "de"),  # neither uk nor pl: the channel's first
        (Channel.EMAIL, None, "de"),
    ],
)
def test_locale_fallback(channel: Channel, locale: str | None, chosen: str) -> None:
    variant = choose_variant(LOCALES, channel, locale)
    assert variant.channel is channel
    assert variant.locale == chosen
    result = render(LOCALES, channel=channel, locale=locale, scope={})
    assert result.locale == chosen
    assert result.content["text"] == chosen


def test_the_exact_default_locale_beats_its_language() -> None:
    loaded = template(
        {"channel": "sms", "locale": "en", "text": "en"},
        {"channel": "sms", "locale": "pt", "text": "pt"},
        {"channel": "sms", "locale": "pt-BR", "text": "pt-BR"},
        default_locale="pt-BR",
    )
    assert choose_variant(loaded, Channel.SMS, "ja").locale == "pt-BR"
    assert choose_variant(loaded, Channel.SMS, "pt-PT").locale == "pt"


def test_no_variant_for_the_channel_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="template 't' has no email variant"):
        render(sms("hi"), channel=Channel.EMAIL, locale="en", scope={})


# -- strict and lenient rendering -------------------------------------------------------


def test_strict_render_fills_the_variant() -> None:
    result = render(
        load_template(GOOD),
        channel=Channel.SMS,
        locale="uk-UA",
        scope={"contact": CONTACT, "event": {"amount": 1250.5}},
    )
    assert result == Rendered(
        channel=Channel.SMS,
        locale="uk",
        content={"text": "Olena, списано 1 250,50 UAH"},
        variables_missing=(),
        warnings=(),
    )


@pytest.mark.parametrize(
    ("text", "scope", "missing"),
    [
        ("Hello {{ contact.first_name }},", {"contact": {}}, "contact.first_name"),
        ("Hello {{ contact.first_name }},", {}, "contact"),
        ("Paid to {{ event.merchant }}", {"contact": CONTACT, "event": {}}, "event.merchant"),
        ("{{ event.card.last4 }}", {"event": {"card": {}}}, "event.card.last4"),
        ("{{ contact.first_name | upcase }}", {"contact": {}}, "contact.first_name"),
    ],
)
def test_a_missing_variable_fails_strict_render_with_its_name(
    text: str, scope: dict[str, Any], missing: str
) -> None:
    with pytest.raises(RenderError) as caught:
        sms_text(text, scope)
    assert caught.value.missing == (missing,)
    assert str(caught.value) == f"text: missing variable {missing}"


def test_strict_render_never_returns_hello_comma() -> None:
    loaded = sms("Hello {{ contact.first_name }},")
    scopes: list[dict[str, Any]] = [{}, {"contact": {}}, {"contact": {"last_name": "K"}}]
    for scope in scopes:
        with pytest.raises(RenderError) as caught:
            render(loaded, channel=Channel.SMS, locale="en", scope=scope)
        assert "Hello ," not in str(caught.value)
    assert sms_text("Hello {{ contact.first_name }},", {"contact": CONTACT}) == "Hello Olena,"


def test_an_index_out_of_range_is_a_render_error_without_a_variable_name() -> None:
    with pytest.raises(RenderError) as caught:
        sms_text("{{ items[3].name }}", {"items": [{"name": "a"}]})
    assert str(caught.value) == "text: index out of range"
    assert caught.value.missing == ()


@pytest.mark.parametrize(
    ("text", "scope", "expected"),
    [
        ("{% if contact.vip %}VIP{% else %}regular{% endif %}", {"contact": {}}, "regular"),
        ("{% if contact.vip %}VIP{% else %}regular{% endif %}", {}, "regular"),
        ("{% if contact.vip %}VIP{% endif %}", {"contact": {"vip": True}}, "VIP"),
        ("{% unless contact.vip %}not VIP{% endunless %}", {"contact": {}}, "not VIP"),
        ("Hi {{ contact.first_name | default: 'friend' }}", {"contact": {}}, "Hi friend"),
        ("{% for i in event.items %}{{ i }};{% endfor %}", {"event": {"items": [1, 2]}}, "1;2;"),
    ],
)
def test_optional_attributes_in_conditions_are_falsy(
    text: str, scope: dict[str, Any], expected: str
) -> None:
    assert sms_text(text, scope) == expected


def test_lenient_render_lists_what_is_missing_and_renders_it_empty() -> None:
    loaded = sms(
        "Hello {{ contact.first_name }} {{ event.order.id }}"
        "{% if contact.vip %} VIP{% endif %} {{ contact.city }}"
    )
    result = render(
        loaded,
        channel=Channel.SMS,
        locale=None,
        scope={"contact": {"city": "Lviv", "vip": None}, "event": {}},
        strict=False,
    )
    assert result.content["text"] == "Hello   Lviv"
    # A value that is null counts as missing too.
    assert result.variables_missing == ("contact.first_name", "contact.vip", "event.order.id")


def test_variables_missing_is_empty_when_the_scope_has_everything() -> None:
    loaded = sms("{{ contact.first_name }} {{ event.items[0].name }}")
    scope = {"contact": CONTACT, "event": {"items": [{"name": "tea"}]}}
    result = render(loaded, channel=Channel.SMS, locale=None, scope=scope)
    assert result.content["text"] == "Olena tea"
    assert result.variables_missing == ()
    short = render(
        loaded, channel=Channel.SMS, locale=None, scope={**scope, "event": {}}, strict=False
    )
    assert short.variables_missing == ("event.items[0].name",)


def test_missing_variables_of_other_variants_do_not_count() -> None:
    loaded = template(
        {"channel": "sms", "locale": "uk", "text": "{{ contact.first_name }}"},
        {"channel": "sms", "locale": "en", "text": "{{ contact.nickname }}"},
    )
    result = render(loaded, channel=Channel.SMS, locale="uk", scope={"contact": CONTACT})
    assert result.variables_missing == ()


def test_variables_lists_dotted_paths_of_every_variant() -> None:
    assert variables(load_template(GOOD)) == {
        "contact.first_name",
        "event.amount",
        "event.id",
    }
    loaded = template(
        {
            "channel": "push",
            "title": "{% if contact.vip %}{{ contact.tier }}{% endif %}",
            "data": {"order": "{{ event.order.id }}", "n": 3},
        },
        {"channel": "sms", "text": "{% assign n = event.count %}{{ n }} {{ message.id }}"},
    )
    assert variables(loaded) == {
        "contact.vip",
        "contact.tier",
        "event.order.id",
        "event.count",
        "message.id",
    }
    assert variables(sms("no variables here")) == set()


# -- filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "locale", "expected"),
    [
        (1234.5, "UAH", "uk", "1 234,50 UAH"),
        (1234.5, "UAH", "uk-UA", "1 234,50 UAH"),
        (1234.5, "UAH", "uk_UA", "1 234,50 UAH"),
        (1234.5, "UAH", "en", "1,234.50 UAH"),
        (1234.5, "UAH", "en-GB", "1,234.50 UAH"),
        (1234.5, "EUR", "de", "1.234,50 EUR"),
        (1234.5, "PLN", "pl", "1 234,50 PLN"),
        (1234.5, "UAH", "ja", "1,234.50 UAH"),  # unknown language: English separators
        (1234.5, "UAH", None, "1,234.50 UAH"),
        (1234.5, "", "uk", "1 234,50"),
        (-1234.5, "UAH", "uk", "-1 234,50 UAH"),
        (-1234.5, "UAH", "en", "-1,234.50 UAH"),
        (-0.004, "UAH", "en", "0.00 UAH"),  # rounds to zero: no minus
        (0, "UAH", "en", "0.00 UAH"),
        (999, "", "uk", "999,00"),
        (1000, "", "uk", "1 000,00"),
        (1234567.891, "", "uk", "1 234 567,89"),
        ("1250", "UAH", "en", "1,250.00 UAH"),
        ("  12 ", "", "en", "12.00"),
        (Decimal("0.005"), "", "en", "0.01"),  # half up
        (Decimal("0.015"), "", "en", "0.02"),  # half up, not to even
        (Decimal("-0.005"), "", "en", "-0.01"),
        (2.675, "", "en", "2.68"),  # the float as written, not its binary neighbour
        (1.005, "", "en", "1.01"),
        ("abc", "UAH", "uk", "abc"),  # not a number: as it is
        ("", "UAH", "uk", ""),
        ("NaN", "UAH", "uk", "NaN"),
        (float("nan"), "UAH", "uk", "nan"),
        ("Infinity", "UAH", "uk", "Infinity"),
        (float("-inf"), "UAH", "uk", "-inf"),
        ("sNaN", "UAH", "uk", "sNaN"),
        ([1, 2], "UAH", "uk", "[1, 2]"),
    ],
)
def test_format_money(value: Any, currency: str, locale: str | None, expected: str) -> None:
    assert format_money(value, currency, locale) == expected


SEPARATORS = {"uk": (" ", ","), "en": (",", "."), "de": (".", ",")}


@given(
    amount=st.decimals(
        min_value=-(10**12), max_value=10**12, places=2, allow_nan=False, allow_infinity=False
    ),
    locale=st.sampled_from(sorted(SEPARATORS)),
)
def test_format_money_reads_back_as_the_amount(amount: Decimal, locale: str) -> None:
    text = format_money(amount, "", locale)
    group, point = SEPARATORS[locale]
    whole, _, cents = text.rpartition(point)
    assert len(cents) == 2
    assert all(len(part) == 3 for part in whole.lstrip("-").split(group)[1:])
    assert Decimal(whole.replace(group, "") + "." + cents) == amount


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("uk", "1 234,50 UAH"), ("en", "1,234.50 UAH"), ("de-AT", "1.234,50 UAH")],
)
def test_the_money_filter_follows_the_variant_locale(locale: str, expected: str) -> None:
    loaded = template(
        {"channel": "sms", "locale": locale, "text": "{{ event.amount | money: 'UAH' }}"}
    )
    result = render(loaded, channel=Channel.SMS, locale=locale, scope={"event": {"amount": 1234.5}})
    assert result.content["text"] == expected


def test_the_money_filter_leaves_a_non_number_as_it_is() -> None:
    for value in ("soon", "NaN"):
        assert sms_text("{{ x | money: 'UAH' }}", {"x": value}) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+380501234567", "+38050***4567"),
        ("380501234567", "38050***4567"),
        ("+38 (050) 123-45-67", "+38050***4567"),
        ("1234567", "12345***4567"),
        ("123456", "***"),
        ("", "***"),
        (None, "***"),
        (380501234567, "38050***4567"),
    ],
)
def test_phone_mask(value: Any, expected: str) -> None:
    assert phone_mask(value) == expected
    assert sms_text("{{ contact.phone | phone_mask }}", {"contact": {"phone": value}}) == expected


# -- escaping ---------------------------------------------------------------------------


def test_html_escapes_what_it_inserts_and_other_fields_do_not() -> None:
    loaded = template(
        {
            "channel": "email",
            "subject": "For {{ contact.first_name }}",
            "html": '<p title="{{ contact.first_name }}">{{ contact.first_name }}</p>',
            "text": "Hi {{ contact.first_name }}",
        },
        {"channel": "sms", "text": "Hi {{ contact.first_name }}"},
    )
    scope = {"contact": {"first_name": '<b>Tom & "Jerry"</b>'}}
    email = render(loaded, channel=Channel.EMAIL, locale=None, scope=scope).content
    escaped = "&lt;b&gt;Tom &amp; &#34;Jerry&#34;&lt;/b&gt;"
    assert email["html"] == f'<p title="{escaped}">{escaped}</p>'
    assert email["subject"] == 'For <b>Tom & "Jerry"</b>'
    assert email["text"] == 'Hi <b>Tom & "Jerry"</b>'
    sms_content = render(loaded, channel=Channel.SMS, locale=None, scope=scope).content
    assert sms_content["text"] == 'Hi <b>Tom & "Jerry"</b>'


def test_html_written_in_the_template_itself_is_kept() -> None:
    loaded = template(
        {"channel": "email", "subject": "s", "html": "<p>{{ '<br>' }}</p><hr>", "text": "t"}
    )
    content = render(loaded, channel=Channel.EMAIL, locale=None, scope={}).content
    assert content["html"] == "<p><br></p><hr>"  # literals are the author's, not data


def test_lenient_html_escapes_too() -> None:
    loaded = template({"channel": "email", "subject": "s", "html": "{{ x }}{{ y }}"})
    content = render(
        loaded, channel=Channel.EMAIL, locale=None, scope={"x": "<i>"}, strict=False
    ).content
    assert content["html"] == "&lt;i&gt;"


# -- limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{% for i in (1..100000) %}x{% endfor %}", "loop iteration limit"),
        (
            "{% for i in (1..200) %}{% for j in (1..200) %}{% endfor %}{% endfor %}",
            "loop iteration limit",
        ),
        ("{% for i in (1..5000) %}{{ big }}{% endfor %}", "output stream limit"),
        (
            "{% assign s = 'aaaaaaaaaa' %}{% for i in (1..30) %}"
            "{% assign s = s | append: s %}{% endfor %}{{ s.size }}",
            "limit",
        ),
    ],
)
def test_render_limits_fail_the_message(text: str, reason: str, strict: bool) -> None:
    with pytest.raises(RenderError, match=reason) as caught:
        sms_text(text, {"big": "y" * 100}, strict=strict)
    assert str(caught.value).startswith("text: ")
    assert caught.value.missing == ()


def test_loops_under_the_limits_render() -> None:
    text = "{% for i in (1..9000) %}{% endfor %}{% for i in (1..3) %}{{ i }}{% endfor %}"
    assert sms_text(text, {}) == "123"
    assert len(sms_text("{% for i in (1..1900) %}{{ big }}{% endfor %}", {"big": "y" * 100})) == (
        190_000
    )


# -- warnings ---------------------------------------------------------------------------

VIBER_LONG = "x" * 1001


@pytest.mark.parametrize(
    ("variant", "scope", "warnings"),
    [
        ({"channel": "viber", "text": "x" * 1000}, {}, ()),
        (
            {"channel": "viber", "text": "{{ t }}"},
            {"t": VIBER_LONG},
            ("Viber text is 1001 characters; Viber allows 1000",),
        ),
        ({"channel": "viber", "image_url": "https://cdn.example/i.png"}, {}, ()),
        (
            {"channel": "viber", "image_url": "http://cdn.example/{{ id }}.png"},
            {"id": 1},
            ("Viber images must be https URLs",),
        ),
        (
            {"channel": "viber", "text": "t", "button": {"text": "{{ b }}", "url": "https://x"}},
            {"b": ""},
            ("a Viber button needs both text and url",),
        ),
        ({"channel": "email", "subject": "s", "html": "<p>h</p>", "text": "t"}, {}, ()),
        (
            {"channel": "email", "subject": "s", "html": "<p>h</p>"},
            {},
            ("no plain-text part: some mail clients and spam filters want one",),
        ),
        (
            {"channel": "email", "subject": " {{ s }} ", "text": "t"},
            {"s": ""},
            ("the subject renders empty",),
        ),
        ({"channel": "push", "title": "x" * 65}, {}, ()),
        (
            {"channel": "push", "title": "{{ t }}"},
            {"t": "x" * 66},
            ("push titles over 65 characters are cut on most phones",),
        ),
        ({"channel": "sms", "text": "x" * 2000}, {}, ()),
    ],
)
def test_warnings(variant: dict[str, Any], scope: dict[str, Any], warnings: tuple[str]) -> None:
    loaded = template(variant)
    result = render(loaded, channel=Channel(variant["channel"]), locale=None, scope=scope)
    assert result.warnings == warnings


# -- nested fields ----------------------------------------------------------------------


def test_nested_fields_are_rendered() -> None:
    loaded = template(
        {
            "channel": "viber",
            "text": "{{ contact.first_name }}",
            "image_url": "https://cdn.example/{{ contact.id }}.png",
            "button": {"text": "Pay {{ contact.first_name }}", "url": "{{ event.url }}"},
        },
        {
            "channel": "push",
            "title": "Hi",
            "deep_link": "app://orders/{{ event.order }}",
            "data": {
                "order": "{{ event.order }}",
                "count": 3,
                "flag": True,
                "nested": {"names": ["{{ contact.first_name }}", 7, None]},
            },
        },
        {
            "channel": "email",
            "subject": "s",
            "text": "t",
            "attachments": [
                {"filename": "{{ contact.id }}.pdf", "path": "bills/{{ event.order }}"}
            ],
        },
    )
    scope = {"contact": CONTACT, "event": {"url": "https://bank.example/p?a=1&b=2", "order": 9}}
    viber = render(loaded, channel=Channel.VIBER, locale=None, scope=scope).content
    assert viber == {
        "text": "Olena",
        "image_url": "https://cdn.example/c-42.png",
        "button": {"text": "Pay Olena", "url": "https://bank.example/p?a=1&b=2"},
    }
    push = render(loaded, channel=Channel.PUSH, locale=None, scope=scope).content
    assert push == {
        "title": "Hi",
        "deep_link": "app://orders/9",
        "data": {"order": "9", "count": 3, "flag": True, "nested": {"names": ["Olena", 7, None]}},
    }
    email = render(loaded, channel=Channel.EMAIL, locale=None, scope=scope).content
    assert email["attachments"] == [{"filename": "c-42.pdf", "path": "bills/9"}]


def test_a_missing_variable_in_a_nested_field_names_the_field() -> None:
    loaded = template(
        {"channel": "viber", "text": "t", "button": {"text": "Go", "url": "{{ event.url }}"}},
        {"channel": "push", "title": "t", "data": {"ids": ["{{ event.id }}"]}},
    )
    with pytest.raises(RenderError, match=r"^button\.url: missing variable event\.url$"):
        render(loaded, channel=Channel.VIBER, locale=None, scope={"event": {}})
    with pytest.raises(RenderError, match=r"^data\.ids\[0\]: missing variable event\.id$"):
        render(loaded, channel=Channel.PUSH, locale=None, scope={"event": {}})


def test_rendering_does_not_change_the_template() -> None:
    loaded = load_template(GOOD)
    before = [dict(v.fields) for v in loaded.variants]
    render(
        loaded,
        channel=Channel.VIBER,
        locale="uk",
        scope={"contact": CONTACT, "event": {"id": 5, "amount": 1}},
    )
    assert [dict(v.fields) for v in loaded.variants] == before
    assert loaded.variants[3].fields["button"]["url"] == "https://bank.example/p/{{ event.id }}"
