"""Reading what customers send: keywords that change consent, ratings, keypresses, free text.

Pure: the inbound service gives a message's text, its channel and the rating scale of the
message it answers (if that message asked for a rating), and gets back what the text means.
A keyword wins over a rating, so a customer who answers a survey with STOP is opted out,
not counted as a score; a rating is read only when the answered message asked for one, so a
"5" sent out of the blue stays text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Final

from kaskad.domain.contacts import InvalidContact, normalise_phone
from kaskad.domain.vocabulary import Category, Channel

# The content key by which a message asks for a rating: replies to it are read as scores.
RATING_SCALE_KEY: Final = "rating_scale"
CONSENT_CHANGED: Final = "consent.changed"
SURVEY_ANSWERED: Final = "survey.answered"
MESSAGE_RECEIVED: Final = "message.received"
KEYPRESS: Final = "keypress"

DEFAULT_STOP: Final = (
    "STOP",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "СТОП",
    "ОТПИСАТЬСЯ",
    "ВІДПИСАТИСЯ",
)
DEFAULT_STOP_ALL: Final = ("STOP ALL", "СТОП ВСЕ", "СТОП ВСЁ", "СТОП УСЕ", "СТОП ВСІ")
DEFAULT_START: Final = ("START", "UNSTOP", "SUBSCRIBE", "СТАРТ", "ПОДПИСАТЬСЯ", "ПІДПИСАТИСЯ")
DEFAULT_STOP_CATEGORIES: Final = (Category.MARKETING, Category.SERVICE)
DEFAULT_REPLY_WINDOW: Final = timedelta(days=2)


class InboundKind(StrEnum):
    """What kaskad read in an inbound message (stored as ``inbound_messages.kind``)."""

    TEXT = "text"
    KEYWORD = "keyword"
    RATING = "rating"
    KEYPRESS = "keypress"


class Keyword(StrEnum):
    STOP = "stop"  # opt out on the channel it came on
    STOP_ALL = "stop_all"  # opt out on every channel
    START = "start"  # opt back in on the channel it came on


# -- keywords ------------------------------------------------------------------------------

# Punctuation customers add around a keyword ("Stop.", "«СТОП»!") is not part of it.
_EDGES: Final = " \t\r\n.,;:!?¡¿'\"«»„“”‘’`()[]{}-–—"


def keyword_key(text: str) -> str:
    """The form keywords are compared in: case-folded, without any whitespace, without the
    punctuation at either end, ``ё`` read as ``е``. "Stop  all!" and "STOPALL" are one key."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    return "".join(folded.strip(_EDGES).split())


@dataclass(frozen=True, slots=True)
class Keywords:
    """The words that change consent, by what they do. Build with ``Keywords.of``."""

    by_key: Mapping[str, Keyword] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        *,
        stop: Iterable[str] = DEFAULT_STOP,
        stop_all: Iterable[str] = DEFAULT_STOP_ALL,
        start: Iterable[str] = DEFAULT_START,
    ) -> Keywords:
        """Raises ``ValueError`` when one word is given two meanings or is empty."""
        by_key: dict[str, Keyword] = {}
        meanings = ((Keyword.STOP, stop), (Keyword.STOP_ALL, stop_all), (Keyword.START, start))
        for meaning, words in meanings:
            _add(by_key, meaning, words)
        return cls(by_key)

    def match(self, text: str) -> Keyword | None:
        return self.by_key.get(keyword_key(text))


def _add(by_key: dict[str, Keyword], meaning: Keyword, words: Iterable[str]) -> None:
    for word in words:
        key = keyword_key(word)
        if not key:
            raise ValueError(f"{word!r} is not a keyword: it has no letters")
        if by_key.get(key, meaning) is not meaning:
            raise ValueError(f"{word!r} is both a {by_key[key]} and a {meaning} keyword")
        by_key[key] = meaning


# -- ratings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatingScale:
    """The scores a question accepts: CSAT 1–5, NPS 0–10."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high <= 10:
            raise ValueError(f"a rating scale runs within 0..10, not {self.low}..{self.high}")

    def content(self) -> dict[str, int]:
        """What a message asking for a rating carries under ``RATING_SCALE_KEY``."""
        return {"min": self.low, "max": self.high}

    @classmethod
    def of_content(cls, content: Mapping[str, Any] | None) -> RatingScale | None:
        """The scale a message's content asks for, or None (also for a malformed one)."""
        value = (content or {}).get(RATING_SCALE_KEY)
        if not isinstance(value, Mapping):
            return None
        low, high = value.get("min"), value.get("max")
        if not isinstance(low, int) or not isinstance(high, int):
            return None
        try:
            return cls(low, high)
        except ValueError:
            return None


CSAT: Final = RatingScale(1, 5)
NPS: Final = RatingScale(0, 10)
SCALES: Final[Mapping[str, RatingScale]] = {"csat": CSAT, "nps": NPS}

_STARS: Final = frozenset("⭐★🌟✨✩☆")
_DECORATION: Final = frozenset("\ufe0f\u20e3\u200d ")  # emoji variation, keycap, joiner
_STAR_WORDS: Final = (
    r"stars?|points?|pts|"
    r"зв[её]зд[аы]?|зірк[аи]?|зірок|балл(?:а|ов)?|бал(?:а|и|ів)?|⭐|★"
)
_NUMBER: Final = re.compile(
    rf"^(?P<n>\d{{1,2}})(?:\s*(?:/|of|out\s+of|из|з)\s*\d{{1,2}})?(?:\s*(?:{_STAR_WORDS}))?$"
)


def read_rating(text: str, scale: RatingScale) -> int | None:
    """A score on ``scale`` in a reply: ``5``, ``5 stars``, ``4/5``, ``5️⃣``, ``🔟``, ``⭐⭐⭐⭐``;
    None when the text is anything else or the number is off the scale."""
    cleaned = unicodedata.normalize("NFKC", text).casefold().strip(" \t\r\n.!")
    if cleaned == "🔟":
        value: int | None = 10
    elif cleaned and set(cleaned) <= _STARS | _DECORATION:
        value = sum(1 for char in cleaned if char in _STARS) or None
    else:
        match = _NUMBER.match("".join(c for c in cleaned if c not in "\ufe0f\u20e3"))
        value = int(match["n"]) if match else None
    if value is None or not scale.low <= value <= scale.high:
        return None
    return value


# -- keypresses ----------------------------------------------------------------------------

_DIGITS: Final = re.compile(r"^[0-9*#]{1,32}$")


def read_digits(text: str) -> str | None:
    """The keys pressed on a call (``1``, ``12#``), as the provider reported them."""
    digits = "".join(text.split())
    return digits if _DIGITS.match(digits) else None


# -- one inbound message -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """What an inbound message means; ``text`` is what the customer sent, trimmed."""

    kind: InboundKind
    text: str
    keyword: Keyword | None = None
    rating: int | None = None
    digits: str | None = None


def read_inbound(
    text: str,
    *,
    channel: Channel,
    keywords: Keywords | None,
    scale: RatingScale | None = None,
) -> Reading:
    """Read one inbound message. On a call, what arrives is the keys pressed; elsewhere a
    keyword (when ``keywords`` are on) comes first, then a rating (when the answered
    message asked for one on ``scale``), and anything else is free text."""
    trimmed = text.strip()
    if channel is Channel.VOICE:
        digits = read_digits(trimmed)
        if digits is not None:
            return Reading(InboundKind.KEYPRESS, trimmed, digits=digits)
        return Reading(InboundKind.TEXT, trimmed)
    keyword = keywords.match(trimmed) if keywords is not None else None
    if keyword is not None:
        return Reading(InboundKind.KEYWORD, trimmed, keyword=keyword)
    rating = read_rating(trimmed, scale) if scale is not None else None
    if rating is not None:
        return Reading(InboundKind.RATING, trimmed, rating=rating)
    return Reading(InboundKind.TEXT, trimmed)


# -- consent -------------------------------------------------------------------------------

Consents = Mapping[str, Mapping[str, bool]]


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """The contact's consents after a keyword, and what the keyword said."""

    consents: dict[str, dict[str, bool]]
    channel: str  # a channel, or "*" for every channel
    categories: tuple[Category, ...]
    granted: bool
    changed: bool


def consent_change(
    consents: Consents,
    keyword: Keyword,
    channel: Channel,
    categories: Sequence[Category] = DEFAULT_STOP_CATEGORIES,
) -> ConsentChange:
    """STOP opts out of ``categories`` on ``channel``; STOP ALL on every channel (the
    channels that said yes explicitly too, since a channel's own answer outranks "*");
    START opts back in on ``channel``. Categories not listed (security, transactional by
    default) keep going, as the contact's bank must still reach them."""
    after = {name: dict(values) for name, values in consents.items()}
    granted = keyword is Keyword.START
    scope = "*" if keyword is Keyword.STOP_ALL else channel.value
    targets = [scope] if scope != "*" else ["*", *(name for name in after if name != "*")]
    for target in targets:
        for category in categories:
            after.setdefault(target, {})[category.value] = granted
    changed = after != {name: dict(values) for name, values in consents.items()}
    return ConsentChange(after, scope, tuple(categories), granted, changed)


# -- the rules one deployment reads inbound messages by --------------------------------------


@dataclass(frozen=True, slots=True)
class TwoWayRules:
    """From the ``two_way`` settings: which keywords act, what STOP opts out of, how far back
    a reply looks for the message it answers, and the optional confirmations sent back."""

    keywords: Keywords | None = field(default_factory=Keywords.of)
    stop_categories: tuple[Category, ...] = DEFAULT_STOP_CATEGORIES
    reply_window: timedelta = DEFAULT_REPLY_WINDOW
    stop_reply: str | None = None
    start_reply: str | None = None

    @classmethod
    def of(
        cls,
        *,
        keywords: bool = True,
        stop_keywords: Iterable[str] = DEFAULT_STOP,
        stop_all_keywords: Iterable[str] = DEFAULT_STOP_ALL,
        start_keywords: Iterable[str] = DEFAULT_START,
        stop_categories: Iterable[str] = tuple(c.value for c in DEFAULT_STOP_CATEGORIES),
        reply_window_seconds: float = DEFAULT_REPLY_WINDOW.total_seconds(),
        stop_reply: str | None = None,
        start_reply: str | None = None,
    ) -> TwoWayRules:
        """From plain settings values (``TwoWaySettings.model_dump()``)."""
        words = Keywords.of(stop=stop_keywords, stop_all=stop_all_keywords, start=start_keywords)
        return cls(
            keywords=words if keywords else None,
            stop_categories=tuple(Category(c) for c in stop_categories),
            reply_window=timedelta(seconds=reply_window_seconds),
            stop_reply=stop_reply or None,
            start_reply=start_reply or None,
        )

    def confirmation(self, keyword: Keyword) -> str | None:
        return self.start_reply if keyword is Keyword.START else self.stop_reply


# -- addresses -----------------------------------------------------------------------------

_SCHEME: Final = re.compile(r"^[a-z]+:", re.IGNORECASE)


def sender_phone(sender: str) -> str | None:
    """A phone channel's sender in E.164 (``whatsapp:+380…`` and bare ``380…`` too), or
    None when it is not a phone number (a short code, an alphanumeric sender)."""
    raw = _SCHEME.sub("", sender.strip())
    if raw.isdigit():
        raw = "+" + raw
    try:
        return normalise_phone(raw)
    except InvalidContact:
        return None
