"""Templates: per-channel, per-locale content rendered with sandboxed Liquid."""

from kaskad.domain.templates.definition import (
    HTML_FIELDS,
    Template,
    TemplateError,
    Variant,
    load_template,
    parse_template,
)
from kaskad.domain.templates.filters import format_money, phone_mask
from kaskad.domain.templates.render import (
    Rendered,
    RenderError,
    choose_variant,
    render,
    variables,
)

__all__ = [
    "HTML_FIELDS",
    "RenderError",
    "Rendered",
    "Template",
    "TemplateError",
    "Variant",
    "choose_variant",
    "format_money",
    "load_template",
    "parse_template",
    "phone_mask",
    "render",
    "variables",
]
