"""Rendering a template for one contact: choose the variant, fill it, check the result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from liquid.exceptions import LiquidError, ResourceLimitError, UndefinedError

from kaskad.domain.templates.definition import HTML_FIELDS, Template, Variant, first_line
from kaskad.domain.templates.engine import compile_text
from kaskad.domain.templates.filters import LOCALE_KEY
from kaskad.domain.vocabulary import Channel

VIBER_TEXT_LIMIT: Final = 1000
PUSH_TITLE_LIMIT: Final = 65


class RenderError(ValueError):
    """The template cannot be rendered for this contact; the message must not go out."""

    def __init__(self, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True, slots=True)
class Rendered:
    channel: Channel
    locale: str
    content: Mapping[str, Any]
    variables_missing: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def choose_variant(template: Template, channel: Channel, locale: str | None) -> Variant:
    """Exact locale, then its language, then the template's default, then the first."""
    options = [v for v in template.variants if v.channel is channel]
    if not options:
        raise RenderError(f"template {template.id!r} has no {channel} variant")
    for target in (_norm(locale or ""), _norm(template.default_locale)):
        if not target:
            continue
        exact = [v for v in options if _norm(v.locale) == target]
        same_language = [
            v for v in options if _norm(v.locale).split("-")[0] == target.split("-")[0]
        ]
        if exact or same_language:
            return (exact or same_language)[0]
    return options[0]


def _norm(locale: str) -> str:
    return locale.replace("_", "-").lower()


def render(
    template: Template,
    *,
    channel: Channel,
    locale: str | None,
    scope: Mapping[str, Any],
    strict: bool = True,
) -> Rendered:
    variant = choose_variant(template, channel, locale)
    context = {**scope, LOCALE_KEY: variant.locale}
    missing = tuple(sorted(_missing(variant, scope)))
    content = _fill(variant.fields, "", variant, context, strict)
    return Rendered(
        channel=channel,
        locale=variant.locale,
        content=content,
        variables_missing=missing,
        warnings=tuple(warnings(channel, content)),
    )


def _fill(value: Any, place: str, variant: Variant, context: dict[str, Any], strict: bool) -> Any:
    if isinstance(value, str):
        return _text(variant, place, value, context, strict)
    if isinstance(value, dict):
        return {
            k: _fill(v, f"{place}.{k}" if place else str(k), variant, context, strict)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_fill(v, f"{place}[{i}]", variant, context, strict) for i, v in enumerate(value)]
    return value


def _text(variant: Variant, place: str, text: str, context: dict[str, Any], strict: bool) -> str:
    compiled = (
        variant.compiled[place]
        if strict
        else compile_text(text, html=place in HTML_FIELDS, strict=False)
    )
    try:
        return str(compiled.render(**context))
    except UndefinedError as exc:
        reason = first_line(exc)
        if not reason.endswith(" is undefined"):  # "index out of range"
            raise RenderError(f"{place}: {reason}") from None
        # Liquid quotes a missing top-level name ('event') but not a dotted path.
        name = reason.removesuffix(" is undefined").strip("'")
        raise RenderError(f"{place}: missing variable {name}", (name,)) from None
    except ResourceLimitError as exc:
        raise RenderError(f"{place}: {first_line(exc)}") from None
    except LiquidError as exc:
        raise RenderError(f"{place}: {first_line(exc)}") from None


def variables(template: Template) -> set[str]:
    """Every dotted variable the template reads from outside (``contact.first_name``)."""
    found: set[str] = set()
    for variant in template.variants:
        for compiled in variant.compiled.values():
            found.update(str(p) for p in compiled.global_variable_paths())
    return found


def _missing(variant: Variant, scope: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for compiled in variant.compiled.values():
        for path in compiled.global_variable_paths():
            if not _resolves(scope, str(path)):
                names.add(str(path))
    return names


def _resolves(scope: Mapping[str, Any], path: str) -> bool:
    value: Any = scope
    for part in path.replace("[", ".").replace("]", "").split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return value is not None


def warnings(channel: Channel, content: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    if channel is Channel.VIBER:
        text = str(content.get("text") or "")
        if len(text) > VIBER_TEXT_LIMIT:
            found.append(f"Viber text is {len(text)} characters; Viber allows {VIBER_TEXT_LIMIT}")
        image = content.get("image_url")
        if image and not str(image).startswith("https://"):
            found.append("Viber images must be https URLs")
        button = content.get("button") or {}
        if button and not (button.get("text") and button.get("url")):
            found.append("a Viber button needs both text and url")
    if channel is Channel.EMAIL:
        if not content.get("text"):
            found.append("no plain-text part: some mail clients and spam filters want one")
        if not str(content.get("subject") or "").strip():
            found.append("the subject renders empty")
    if channel is Channel.PUSH and len(str(content.get("title") or "")) > PUSH_TITLE_LIMIT:
        found.append(f"push titles over {PUSH_TITLE_LIMIT} characters are cut on most phones")
    return found
