"""Reading a policy document (YAML or JSON), every problem reported by path and line.

```yaml
caps:
  marketing: 2/week            # shorthand: a category, a channel or "all"
  all: [2/day, 5/week]
  - ...                        # or a list of rules with selectors (see docs/policies.md)
quiet_hours: {marketing: "21:00-09:00", service: never}
dedup_window: 24h
relevance:
  - {after: loan_repaid, suppress: {topic: loan_offer}, for: 30d}
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from kaskad.domain.contacts import InvalidContact, validate_timezone
from kaskad.domain.journeys.reader import Reader, describe, did_you_mean, quote, suggest
from kaskad.domain.journeys.source import JourneyError, Path, Problem, load_source
from kaskad.domain.policy.rules import (
    CATEGORY_ORDER,
    NAMED_WINDOWS,
    CapRule,
    Policy,
    QuietHours,
    RelevanceRule,
    Selector,
    default_quiet_hours,
    default_validity,
)
from kaskad.domain.vocabulary import TOPIC, TOPIC_HINT, Category, Channel

_LIMIT: Final = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")
_RANGE: Final = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})\s*$")
MAX_RULES: Final = 200
_TOP: Final = (
    "caps",
    "exempt",
    "quiet_hours",
    "dedup_window",
    "relevance",
    "validity",
    "order",
    "default_timezone",
)


@dataclass(frozen=True, slots=True)
class _PolicyProblem(Problem):
    def __str__(self) -> str:
        # A problem of the document as a whole belongs to the policy, not to a journey.
        return str(Problem(self.path or "policy", self.line, self.message))


class PolicyError(JourneyError):
    """A policy that cannot be used, with every problem found."""

    def __init__(
        self,
        problems: Sequence[Problem],
        *,
        filename: str | None = None,
        truncated: bool = False,
    ) -> None:
        named = [_PolicyProblem(p.path, p.line, p.message) for p in problems]
        super().__init__(named, filename=filename, truncated=truncated)


def load_policy(text: str, *, filename: str = "<policy>") -> Policy:
    try:
        source = load_source(text, filename=filename)
    except JourneyError as exc:
        raise PolicyError(exc.problems, filename=filename) from None
    return parse_policy(source.data, source.lines, filename=filename)


def parse_policy(
    data: Any, lines: Mapping[Path, int] | None = None, *, filename: str = "<policy>"
) -> Policy:
    reader = Reader(dict(lines or {}))
    policy = _policy(reader, data)
    if reader.problems or policy is None:
        error = reader.error(filename)
        raise PolicyError(error.problems, filename=filename, truncated=error.truncated)
    return policy


def _policy(r: Reader, data: Any) -> Policy | None:
    top = r.mapping(data, (), optional=_TOP)
    if top is None:
        return None
    caps = _caps(r, top["caps"], ("caps",)) if "caps" in top else []
    exempt = r.read(top, "exempt", (), lambda v, p: _categories(r, v, p, empty=True))
    quiet = r.read(top, "quiet_hours", (), lambda v, p: _quiet(r, v, p))
    dedup = r.read(top, "dedup_window", (), r.duration)
    relevance = r.read(top, "relevance", (), lambda v, p: _relevance(r, v, p))
    validity = r.read(top, "validity", (), lambda v, p: _validity(r, v, p))
    order = r.read(top, "order", (), lambda v, p: _order(r, v, p))
    zone = r.read(top, "default_timezone", (), lambda v, p: _zone(r, v, p))
    base = Policy()
    return Policy(
        caps=tuple(caps),
        exempt=frozenset(exempt) if exempt is not None else base.exempt,
        quiet_hours=quiet if quiet is not None else base.quiet_hours,
        dedup_window=dedup or base.dedup_window,
        relevance=tuple(relevance or ()),
        validity=validity if validity is not None else base.validity,
        order=tuple(order) if order else base.order,
        default_timezone=zone or base.default_timezone,
    )


def _caps(r: Reader, value: Any, path: Path) -> list[CapRule]:
    if isinstance(value, dict):
        return _shorthand_caps(r, value, path)
    rules: list[CapRule] = []
    for index, item in enumerate(r.items(value, path, what="cap rules", limit=MAX_RULES)):
        rule = _cap(r, item, (*path, index))
        if rule is not None:
            rules.append(rule)
    return rules


def _shorthand_caps(r: Reader, value: dict[str, Any], path: Path) -> list[CapRule]:
    """``{marketing: 2/week, all: [2/day, 5/week], sms: 3/day}``."""
    rules: list[CapRule] = []
    channels = {c.value for c in Channel}
    for key, limits in value.items():
        where = (*path, key)
        category = Category(key) if key in {c.value for c in Category} else None
        channel = Channel(key) if key in channels else None
        if category is None and channel is None and key != "all":
            names = [*(c.value for c in Category), *channels, "all"]
            r.report(
                where,
                f"{quote(str(key))} is not a category, a channel or all" + suggest(key, names),
            )
            continue
        written = limits if isinstance(limits, list) else [limits]
        for index, limit in enumerate(written):
            at = (*where, index) if isinstance(limits, list) else where
            parsed = _limit(r, limit, at)
            if parsed is not None:
                rules.append(CapRule(parsed[0], parsed[1], category=category, channel=channel))
    return rules


def _cap(r: Reader, item: Any, path: Path) -> CapRule | None:
    data = r.mapping(
        item,
        path,
        required=("limit",),
        optional=("category", "channel", "topic", "journey", "name"),
    )
    if data is None:
        return None
    limit = r.read(data, "limit", path, lambda v, p: _limit(r, v, p))
    category = None
    if data.get("category", "all") != "all":
        category = r.read(data, "category", path, lambda v, p: r.choice(v, p, Category, "category"))
    channel = r.read(data, "channel", path, lambda v, p: r.choice(v, p, Channel, "channel"))
    topic = r.read(data, "topic", path, lambda v, p: _topic(r, v, p))
    journey = r.read(data, "journey", path, r.text)
    name = r.read(data, "name", path, r.text)
    if limit is None:
        return None
    return CapRule(limit[0], limit[1], category, channel, topic, journey, name)


def _limit(r: Reader, value: Any, path: Path) -> tuple[int, timedelta] | None:
    """``2/week``: a count and a rolling window (hour, day, week, month or a duration)."""
    match = _LIMIT.match(value) if isinstance(value, str) else None
    if match is None:
        shown = quote(value) if isinstance(value, str) else describe(value)
        r.report(path, f"{shown} is not a limit (write e.g. 2/week, 5/day or 3/12h)")
        return None
    count, per = int(match.group(1)), match.group(2)
    if not 1 <= count <= 10_000:
        r.report(path, f"{count} is out of range (1 to 10000)")
        return None
    window = NAMED_WINDOWS.get(per)
    if window is None and not per[0].isdigit():
        # A word that is not a named window ("wek") can never be a duration either.
        r.report(
            path,
            f"{quote(value)} is not a limit: the window is hour, day, week, month or a "
            f"duration such as 12h{did_you_mean(per, NAMED_WINDOWS)}",
        )
        return None
    if window is None:
        window = r.duration(per, path)
    return (count, window) if window is not None else None


def _topic(r: Reader, value: Any, path: Path) -> str | None:
    return r.text(value, path, pattern=TOPIC, hint=TOPIC_HINT)


def _categories(r: Reader, value: Any, path: Path, *, empty: bool) -> list[Category] | None:
    if not isinstance(value, list) or (not value and not empty):
        r.report(path, f"expected a list of categories, got {describe(value)}")
        return None
    found = [r.choice(v, (*path, i), Category, "category") for i, v in enumerate(value)]
    return [c for c in found if c is not None]


def _order(r: Reader, value: Any, path: Path) -> list[Category] | None:
    order = _categories(r, value, path, empty=False)
    if order is not None and sorted(order) != sorted(CATEGORY_ORDER):
        r.report(path, "list every category exactly once, most important first")
        return None
    return order


def _quiet(r: Reader, value: Any, path: Path) -> dict[Category, QuietHours] | None:
    """Per category ``"21:00-09:00"``, ``{from, to}`` or ``never``; unnamed ones keep the
    defaults (marketing 21:00–09:00)."""
    if not isinstance(value, dict):
        r.report(path, f"expected a mapping of categories to hours, got {describe(value)}")
        return None
    quiet = default_quiet_hours()
    for key, hours in value.items():
        where = (*path, key)
        category = r.choice(key, where, Category, "category")
        if category is None:
            continue
        if hours == "never":
            quiet.pop(category, None)
            continue
        if category is Category.SECURITY:
            r.report(where, "security messages are never held back by quiet hours")
            continue
        parsed = _hours(r, hours, where)
        if parsed is not None:
            quiet[category] = parsed
    return quiet


def _hours(r: Reader, value: Any, path: Path) -> QuietHours | None:
    if isinstance(value, str) and (match := _RANGE.match(value)):
        start = r.time_of_day(match.group(1), path)
        end = r.time_of_day(match.group(2), path)
    elif isinstance(value, dict) and r.mapping(value, path, required=("from", "to")) is not None:
        start = r.read(value, "from", path, r.time_of_day)
        end = r.read(value, "to", path, r.time_of_day)
    else:
        if not isinstance(value, dict):
            r.report(path, f'{describe(value)} is not quiet hours (write e.g. "21:00-09:00")')
        return None
    if start is None or end is None:
        return None
    if start == end:
        r.report(path, "quiet hours that start when they end are empty; write never instead")
        return None
    return QuietHours(start, end)


def _relevance(r: Reader, value: Any, path: Path) -> list[RelevanceRule]:
    rules: list[RelevanceRule] = []
    for index, item in enumerate(r.items(value, path, what="relevance rules", limit=MAX_RULES)):
        where = (*path, index)
        data = r.mapping(item, where, required=("after", "suppress", "for"))
        if data is None:
            continue
        after = r.read(data, "after", where, r.event_type)
        suppress = r.read(data, "suppress", where, lambda v, p: _selector(r, v, p))
        duration = r.read(data, "for", where, r.duration)
        if after and suppress and duration:
            rules.append(RelevanceRule(after, suppress, duration))
    return rules


def _selector(r: Reader, value: Any, path: Path) -> Selector | None:
    data = r.mapping(value, path, optional=("category", "topic"))
    if data is None:
        return None
    if not data:
        r.report(path, "name a category, a topic or both")
        return None
    category = r.read(data, "category", path, lambda v, p: r.choice(v, p, Category, "category"))
    topic = r.read(data, "topic", path, lambda v, p: _topic(r, v, p))
    if ("category" in data and category is None) or ("topic" in data and topic is None):
        return None
    return Selector(category, topic)


def _validity(r: Reader, value: Any, path: Path) -> dict[Category, timedelta] | None:
    if not isinstance(value, dict):
        r.report(path, f"expected a mapping of categories to durations, got {describe(value)}")
        return None
    validity = default_validity()
    for key, duration in value.items():
        category = r.choice(key, (*path, key), Category, "category")
        parsed = r.duration(duration, (*path, key))
        if category is not None and parsed is not None:
            validity[category] = parsed
    return validity


def _zone(r: Reader, value: Any, path: Path) -> str | None:
    name = r.text(value, path)
    if name is None:
        return None
    try:
        return validate_timezone(name)
    except InvalidContact:
        r.report(path, f"{quote(name)} is not an IANA time zone (e.g. Europe/Kyiv)")
        return None
