"""A template: one communication, with content variants per channel and locale.

Read from YAML or JSON like a journey, with every problem reported by path and line. Each
text field is compiled once when the template is loaded, so a syntax error is found when
the template is stored, not when the first customer should get it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from liquid import BoundTemplate
from liquid.exceptions import LiquidError

from kaskad.domain.journeys.reader import Reader, describe
from kaskad.domain.journeys.source import JourneyError, Path, load_source
from kaskad.domain.templates.engine import compile_text
from kaskad.domain.vocabulary import Category, Channel

TEMPLATE_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")
LOCALE: Final = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
MAX_VARIANTS: Final = 100

# Per channel: required fields (groups of alternatives) and optional ones. Text fields are
# Liquid; ``html`` escapes what it inserts.
REQUIRED: Final[Mapping[Channel, tuple[tuple[str, ...], ...]]] = {
    Channel.SMS: (("text",),),
    Channel.EMAIL: (("subject",), ("html", "text")),
    Channel.VIBER: (("text", "image_url"),),
    Channel.WHATSAPP: (("text",),),
    Channel.PUSH: (("title", "text"),),
    Channel.VOICE: (("text",),),
}
OPTIONAL: Final[Mapping[Channel, tuple[str, ...]]] = {
    Channel.SMS: ("sender",),
    Channel.EMAIL: ("from", "reply_to", "attachments"),
    Channel.VIBER: ("button",),
    Channel.WHATSAPP: (),
    Channel.PUSH: ("deep_link", "data", "image_url"),
    Channel.VOICE: ("language",),
}
HTML_FIELDS: Final = frozenset({"html"})


class TemplateError(JourneyError):
    """A template that cannot be used, with every problem found."""


@dataclass(frozen=True, slots=True, eq=False)
class Variant:
    channel: Channel
    locale: str
    # The variant's fields as written; every string inside is a compiled Liquid template.
    fields: Mapping[str, Any]
    compiled: Mapping[str, BoundTemplate] = field(repr=False)


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    id: str
    name: str
    default_locale: str
    variants: tuple[Variant, ...]
    category: Category | None = None
    track_links: bool = True

    def channels(self) -> set[Channel]:
        return {v.channel for v in self.variants}


def load_template(text: str, *, filename: str = "<template>") -> Template:
    try:
        source = load_source(text, filename=filename)
    except JourneyError as exc:
        raise TemplateError(exc.problems, filename=filename) from None
    return parse_template(source.data, source.lines, filename=filename)


def parse_template(
    data: Any, lines: Mapping[Path, int] | None = None, *, filename: str = "<template>"
) -> Template:
    reader = Reader(dict(lines or {}))
    template = _template(reader, data)
    if reader.problems or template is None:
        error = reader.error(filename)
        raise TemplateError(error.problems, filename=filename, truncated=error.truncated)
    return template


def _template(r: Reader, data: Any) -> Template | None:
    top = r.mapping(
        data,
        (),
        required=("id", "variants"),
        optional=("name", "category", "default_locale", "track_links"),
    )
    if top is None:
        return None
    template_id = r.read(
        top, "id", (), lambda v, p: r.text(v, p, pattern=TEMPLATE_ID, hint="lowercase a-z0-9_.-")
    )
    name = r.read(top, "name", (), r.text)
    category = r.read(top, "category", (), lambda v, p: r.choice(v, p, Category, "category"))
    default = r.read(top, "default_locale", (), _locale(r))
    track = r.read(top, "track_links", (), lambda v, p: _boolean(r, v, p))
    variants = r.read(top, "variants", (), lambda v, p: _variants(r, v, p, default))
    if template_id is None or variants is None:
        return None
    default = default or next((v.locale for v in variants if v.locale), "en")
    return Template(
        id=template_id,
        name=name or template_id,
        default_locale=default,
        variants=tuple(v if v.locale else replace(v, locale=default) for v in variants),
        category=category,
        track_links=True if track is None else track,
    )


def _boolean(r: Reader, value: Any, path: Path) -> bool | None:
    if not isinstance(value, bool):
        r.report(path, f"expected true or false, got {describe(value)}")
        return None
    return value


def _locale(r: Reader) -> Any:
    return lambda v, p: r.text(v, p, pattern=LOCALE, hint="a locale such as uk, uk-UA or en")


def _variants(r: Reader, value: Any, path: Path, default: str | None) -> tuple[Variant, ...] | None:
    items = r.items(value, path, what="variants", limit=MAX_VARIANTS)
    built = [_variant(r, item, (*path, i)) for i, item in enumerate(items)]
    # A variant without a locale gets the template's default (see ``_template``), and
    # choose_variant compares locales as uk-ua = uk_UA: a duplicate by those rules could
    # never be chosen.
    default = default or next((v.locale for v in built if v is not None and v.locale), "en")
    seen: dict[tuple[Channel, str], int] = {}
    for index, variant in enumerate(built):
        if variant is None:
            continue
        locale = variant.locale or default
        key = (variant.channel, locale.replace("_", "-").lower())
        if key in seen:
            r.report(
                (*path, index),
                f"a second {variant.channel} variant for locale {locale} "
                f"(the first is variants[{seen[key]}])",
            )
        seen.setdefault(key, index)
    if not items or any(v is None for v in built):
        return None
    return tuple(v for v in built if v is not None)


def _variant(r: Reader, value: Any, path: Path) -> Variant | None:
    if not isinstance(value, dict) or "channel" not in value:
        r.mapping(value, path, required=("channel",))
        return None
    channel = r.choice(value["channel"], (*path, "channel"), Channel, "channel")
    if channel is None:
        return None
    fields = [*(f for group in REQUIRED[channel] for f in group), *OPTIONAL[channel]]
    data = r.mapping(value, path, required=("channel",), optional=("locale", *fields))
    if data is None:
        return None
    locale = r.read(data, "locale", path, _locale(r))
    for group in REQUIRED[channel]:
        if not any(key in data for key in group):
            r.report(path, f"{channel} needs " + " or ".join(f'"{k}"' for k in group))
    content = {k: v for k, v in data.items() if k not in ("channel", "locale")}
    compiled = _compile_all(r, content, path)
    _check_shapes(r, channel, content, path)
    if compiled is None or ("locale" in data and locale is None):
        return None
    return Variant(channel, locale or "", content, compiled)


def _compile_all(
    r: Reader, content: Mapping[str, Any], path: Path
) -> dict[str, BoundTemplate] | None:
    """Compile every string in the variant, keyed by its dotted place (``button.url``)."""
    compiled: dict[str, BoundTemplate] = {}
    ok = True
    for place, text, where in _strings(content, path):
        try:
            compiled[place] = compile_text(text, html=place in HTML_FIELDS)
        except LiquidError as exc:
            r.report(where, f"template error: {first_line(exc)}")
            ok = False
    return compiled if ok else None


def _strings(value: Any, path: Path, place: str = "") -> list[tuple[str, str, Path]]:
    if isinstance(value, str):
        return [(place, value, path)]
    found: list[tuple[str, str, Path]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _strings(item, (*path, key), f"{place}.{key}" if place else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _strings(item, (*path, index), f"{place}[{index}]")
    return found


def _check_shapes(r: Reader, channel: Channel, content: Mapping[str, Any], path: Path) -> None:
    for key, item in content.items():
        where = (*path, key)
        if key == "attachments":
            _attachments(r, item, where)
        elif key == "button":
            r.mapping(item, where, required=("text", "url"))
        elif key == "data":
            if not isinstance(item, dict):
                r.report(where, f"expected a mapping, got {describe(item)}")
        elif not isinstance(item, str):
            r.report(where, f"expected text, got {describe(item)}")


def _attachments(r: Reader, value: Any, path: Path) -> None:
    for index, item in enumerate(r.items(value, path, what="attachments", limit=10)):
        where = (*path, index)
        data = r.mapping(
            item,
            where,
            required=("filename",),
            optional=("path", "content_base64", "content_type"),
        )
        if data is not None and ("path" in data) == ("content_base64" in data):
            r.report(where, 'an attachment needs exactly one of "path" and "content_base64"')


def first_line(exc: Exception) -> str:
    """Liquid's message without the source excerpt it appends."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
