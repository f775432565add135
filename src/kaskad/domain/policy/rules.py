"""The contact pressure policy as data: caps, quiet hours, de-duplication, relevance rules.

A ``Policy`` is read once from its document (``document.py``) and then only consulted; every
rule carries the words it was written with, so a decision can quote the rule that made it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Final

from kaskad.domain.durations import format_duration
from kaskad.domain.vocabulary import Category, Channel

# The default order of categories, most important first: a security alert beats a
# transactional receipt beats a service notice beats marketing.
CATEGORY_ORDER: Final[tuple[Category, ...]] = (
    Category.SECURITY,
    Category.TRANSACTIONAL,
    Category.SERVICE,
    Category.MARKETING,
)
NAMED_WINDOWS: Final[Mapping[str, timedelta]] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
}


@dataclass(frozen=True, slots=True)
class CapRule:
    """At most ``limit`` sends matching the selectors in any rolling ``window``.

    Without a channel a rule counts notifications (a Viber message and its SMS fallback are one
    communication); with a channel it counts messages on that channel.
    """

    limit: int
    window: timedelta
    category: Category | None = None
    channel: Channel | None = None
    topic: str | None = None
    journey: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """How decisions quote the rule: ``marketing cap 2/week``, ``all sms cap 3/day``."""
        if self.name:
            return f"cap {self.name!r} {self.limit}/{self.per}"
        parts = [self.category.value if self.category else "all"]
        parts += [p for p in (self.topic, self.channel and self.channel.value) if p]
        if self.journey:
            parts.append(f"in journey {self.journey!r}")
        return f"{' '.join(parts)} cap {self.limit}/{self.per}"

    @property
    def per(self) -> str:
        for word, size in NAMED_WINDOWS.items():
            if size == self.window:
                return word
        return format_duration(self.window)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours, in the contact's time zone, when a category waits instead of being sent.

    ``start`` after ``end`` crosses midnight (21:00–09:00).
    """

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class Selector:
    """Which notifications a relevance rule silences: a category and/or a topic."""

    category: Category | None = None
    topic: str | None = None

    def __str__(self) -> str:
        return " ".join(p for p in (self.category, self.topic) if p)


@dataclass(frozen=True, slots=True)
class RelevanceRule:
    """After an event of type ``after``, notifications matching ``suppress`` are dropped for
    ``duration`` ("no loan offer for 30 days after the loan is repaid")."""

    after: str
    suppress: Selector
    duration: timedelta


def default_quiet_hours() -> dict[Category, QuietHours]:
    return {Category.MARKETING: QuietHours(time(21, 0), time(9, 0))}


def default_validity() -> dict[Category, timedelta]:
    """How long a notification may wait for a free slot before it is dropped."""
    return {
        Category.SECURITY: timedelta(hours=1),
        Category.TRANSACTIONAL: timedelta(days=1),
        Category.SERVICE: timedelta(days=3),
        Category.MARKETING: timedelta(days=7),
    }


@dataclass(frozen=True, slots=True)
class Policy:
    caps: Sequence[CapRule] = ()
    # Categories that caps never hold back; they still count towards the caps of others.
    exempt: frozenset[Category] = frozenset({Category.SECURITY, Category.TRANSACTIONAL})
    quiet_hours: Mapping[Category, QuietHours] = field(default_factory=default_quiet_hours)
    # The same content key to the same contact within this window is sent once.
    dedup_window: timedelta = timedelta(days=1)
    relevance: Sequence[RelevanceRule] = ()
    validity: Mapping[Category, timedelta] = field(default_factory=default_validity)
    order: Sequence[Category] = CATEGORY_ORDER
    default_timezone: str = "UTC"

    def rank(self, category: Category) -> int:
        """Higher is more important."""
        return len(self.order) - self.order.index(category)

    @property
    def horizon(self) -> timedelta:
        """How far back sends and events matter to any rule."""
        spans = [c.window for c in self.caps] + [r.duration for r in self.relevance]
        return max([self.dedup_window, *spans])


DEFAULT_POLICY: Final = Policy()
