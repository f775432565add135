"""Who goes where and who may come back: sticky A/B/n splits and journey re-entry.

Both are pure answers to questions the engine asks with data it has already loaded: the split
needs only ids, re-entry only the contact's earlier entries into the journey, the number of
its runs still going, and ``now``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from kaskad.domain.durations import format_duration, parse_duration
from kaskad.domain.journeys.timing import as_utc

# 64 bits of the digest: the modulo bias over any sane total weight is below 1e-15.
_HASH_BYTES: Final = 8
_BARE_NUMBER = re.compile(r"^\s*[0-9]+(?:\.[0-9]+)?\s*$")


def choose_variant(
    variants: Sequence[tuple[str, int]], *, contact_id: str, journey_id: str, split_id: str
) -> str:
    """The contact's variant of a split, chosen by weight and the same on every call.

    The choice is a hash of the ids, not a random draw, so a contact who reaches the split
    again (a retried step, a re-entry, a new version of the journey) lands in the same
    variant as long as the variants and weights are unchanged. SHA-256 rather than ``hash()``
    because Python salts string hashes per process.

    Weights are whole numbers; a variant with weight 0 is never chosen, which pauses it
    without deleting it. At least one weight must be positive and names must be distinct.
    """
    _check_variants(variants)
    total = sum(weight for _, weight in variants)
    key = "\x00".join((journey_id, split_id, contact_id)).encode()
    digest = hashlib.sha256(key).digest()
    point = int.from_bytes(digest[:_HASH_BYTES], "big") % total
    cumulative = 0
    for name, weight in variants:
        cumulative += weight
        if point < cumulative:
            return name
    raise AssertionError("unreachable: point is below the total weight")


def _check_variants(variants: Sequence[tuple[str, int]]) -> None:
    if not variants:
        raise ValueError("a split needs at least one variant")
    names = [name for name, _ in variants]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"split variants must have distinct names; repeated: {duplicates}")
    for name, weight in variants:
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ValueError(f"variant {name!r} has weight {weight!r}; use a whole number >= 0")
    if not any(weight for _, weight in variants):
        raise ValueError("a split needs at least one variant with a positive weight")


class ReentryKind(StrEnum):
    ONCE = "once"
    ALWAYS = "always"
    EVERY = "every"


@dataclass(frozen=True, slots=True)
class Reentry:
    """A journey's ``reentry`` rule: enter once ever, any time, or at most once per interval."""

    kind: ReentryKind
    interval: timedelta | None = None  # only, and always, for EVERY

    def __post_init__(self) -> None:
        if (self.kind is ReentryKind.EVERY) != (self.interval is not None):
            raise ValueError("reentry needs an interval for 'every' and none otherwise")
        if self.interval is not None and self.interval <= timedelta(0):
            raise ValueError("reentry interval must be positive")

    def __str__(self) -> str:
        """As written in the journey: ``once``, ``always`` or a duration such as ``30d``."""
        if self.interval is not None:
            return format_duration(self.interval)
        return self.kind.value


ONCE: Final = Reentry(ReentryKind.ONCE)
ALWAYS: Final = Reentry(ReentryKind.ALWAYS)


def parse_reentry(value: str) -> Reentry:
    """``once``, ``always`` or a duration with a unit ("30d": at most one entry per 30 days).

    A bare number is refused: durations elsewhere read it as seconds, and "reentry: 30"
    meaning thirty seconds is never what was meant.
    """
    if not isinstance(value, str):
        raise ValueError(f"reentry {value!r} must be once, always or a duration such as 30d")
    text = value.strip().lower()
    if text == ReentryKind.ONCE:
        return ONCE
    if text == ReentryKind.ALWAYS:
        return ALWAYS
    if _BARE_NUMBER.match(text):
        raise ValueError(f"reentry {value!r} needs a unit, e.g. {text.strip()}d")
    try:
        interval = parse_duration(text)
    except ValueError:
        raise ValueError(
            f"reentry {value!r} must be once, always or a duration such as 30d"
        ) from None
    return Reentry(ReentryKind.EVERY, interval)


@dataclass(frozen=True, slots=True)
class Verdict:
    """An answer with its reason; the reason is shown to people in the run's timeline."""

    allowed: bool
    reason: str


def may_enter(
    rule: Reentry,
    *,
    previous_entries: Sequence[datetime],
    active_runs: int,
    max_active_runs: int,
    now: datetime,
) -> Verdict:
    """Whether a contact may start a new run of a journey now.

    ``previous_entries`` are the starts of the contact's earlier runs of this journey (any
    version); ``active_runs`` counts those not yet finished. The re-entry rule is checked
    first because it is the lasting reason; the active-run limit second.

    For "every 30d" the window is closed at its end: an entry exactly 30 days after the last
    one is allowed.
    """
    if max_active_runs < 1:
        raise ValueError(f"max_active_runs must be at least 1, got {max_active_runs}")
    if active_runs < 0:
        raise ValueError(f"active_runs cannot be negative, got {active_runs}")
    now = as_utc(now)
    entries = sorted(as_utc(entry, "a previous entry") for entry in previous_entries)
    verdict = _reentry_verdict(rule, entries, now)
    if not verdict.allowed:
        return verdict
    if active_runs >= max_active_runs:
        runs = "1 run" if active_runs == 1 else f"{active_runs} runs"
        return Verdict(False, f"{runs} already active (max_active_runs: {max_active_runs})")
    return verdict


def _reentry_verdict(rule: Reentry, entries: Sequence[datetime], now: datetime) -> Verdict:
    if not entries:
        return Verdict(True, "first entry")
    if rule.kind is ReentryKind.ONCE:
        return Verdict(False, f"already entered once on {_when(entries[0])} (reentry: once)")
    if rule.interval is None:
        return Verdict(True, "reentry: always")
    last = entries[-1]
    label = format_duration(rule.interval)
    next_entry = last + rule.interval
    if now < next_entry:
        return Verdict(
            False,
            f"entered {_ago(now - last)}; reentry every {label} allows the next entry "
            f"on {_when(next_entry)}",
        )
    return Verdict(True, f"last entered {_ago(now - last)}; reentry every {label} allows it")


def _when(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(elapsed: timedelta) -> str:
    """Whole units, rounded down: 71 hours is "2 days ago", which is what has fully passed."""
    seconds = max(0, int(elapsed.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"
