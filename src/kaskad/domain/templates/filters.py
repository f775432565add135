"""Liquid filters for marketers: money and masked phone numbers, in the variant's locale."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from liquid.filter import with_context

# Grouping and decimal separators per language. Typography would group Ukrainian digits with
# a narrow no-break space, but that one character would push an SMS out of GSM-7 into UCS-2
# (70 characters a segment instead of 160): a plain space it is.
SEPARATORS: Final[dict[str, tuple[str, str]]] = {
    "uk": (" ", ","),
    "ru": (" ", ","),
    "pl": (" ", ","),
    "de": (".", ","),
    "en": (",", "."),
}
DEFAULT_SEPARATORS: Final = (",", ".")
LOCALE_KEY: Final = "_kaskad_locale"


def _language(locale: Any) -> str:
    return str(locale or "").replace("_", "-").split("-")[0].lower()


def format_money(value: Any, currency: str = "", locale: str | None = None) -> str:
    """``1234.5`` → ``1 234,50 UAH`` (uk) or ``1,234.50 UAH`` (en)."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(value)
    if not amount.is_finite():  # "NaN" quantizes to NaN, which cannot be compared with 0
        return str(value)
    group, point = SEPARATORS.get(_language(locale), DEFAULT_SEPARATORS)
    sign = "-" if amount < 0 else ""
    whole, _, cents = f"{abs(amount):.2f}".partition(".")
    grouped = ""
    while len(whole) > 3:
        grouped = group + whole[-3:] + grouped
        whole = whole[:-3]
    text = f"{sign}{whole}{grouped}{point}{cents}"
    return f"{text} {currency}" if currency else text


@with_context
def money(value: Any, currency: str = "", *, context: Any) -> str:
    return format_money(value, str(currency), context.resolve(LOCALE_KEY, default=None))


def phone_mask(value: Any) -> str:
    """``+380501234567`` → ``+38050***4567``: enough to recognise, not to dial."""
    text = str(value or "")
    digits = [c for c in text if c.isdigit()]
    if len(digits) < 7:
        return "***"
    return (
        ("+" if text.startswith("+") else "") + "".join(digits[:5]) + "***" + "".join(digits[-4:])
    )


FILTERS: Final = {"money": money, "phone_mask": phone_mask}
