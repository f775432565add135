"""A journey definition: trigger, re-entry rule, goal, exits and steps, read and checked.

``load_definition`` turns the YAML or JSON of docs/journeys.md into frozen values, or raises
``JourneyError`` listing every problem with its path and line. Everything that can be known
before a run starts is checked here (ids, targets, durations, cascades, conditions, loops
without a wait), so the engine can trust a saved definition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any, Final

from kaskad.domain.conditions import Condition
from kaskad.domain.journeys.cron import CronSpec, parse_cron
from kaskad.domain.journeys.parsing import STEP_ID, read_steps
from kaskad.domain.journeys.reader import Reader, describe, did_you_mean, unknown_key
from kaskad.domain.journeys.rules import ONCE, Reentry, parse_reentry
from kaskad.domain.journeys.source import JourneyError, Lines, Path, load_source
from kaskad.domain.journeys.steps import JourneyStep

JOURNEY_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
MAX_NAME: Final = 200
MAX_ACTIVE_RUNS: Final = 1000
TRIGGER_KINDS: Final = ("event", "segment", "schedule", "date", "api")

_TOP_REQUIRED: Final = ("id", "name", "trigger", "steps")
_TOP_OPTIONAL: Final = ("reentry", "max_active_runs", "goal", "exit_on")
_WHERE_KINDS: Final = ("event", "schedule", "date")


@dataclass(frozen=True, slots=True)
class EventTrigger:
    """An event of ``type`` is recorded and ``where`` holds (payload, contact, event)."""

    type: str
    where: Condition | None


@dataclass(frozen=True, slots=True)
class SegmentTrigger:
    """``condition`` on the contact becomes true (it was false, or the contact is new)."""

    condition: Condition


@dataclass(frozen=True, slots=True)
class ScheduleTrigger:
    """The cron time comes round on the contact's own clock, and ``where`` holds."""

    cron: CronSpec
    where: Condition | None


@dataclass(frozen=True, slots=True)
class DateTrigger:
    """``offset`` from the date in a contact attribute, at ``at`` (midnight when None)."""

    attribute: str
    offset: timedelta
    at: time | None
    where: Condition | None


@dataclass(frozen=True, slots=True)
class ApiTrigger:
    """``POST /v1/journeys/{id}/runs`` names the contact."""


Trigger = EventTrigger | SegmentTrigger | ScheduleTrigger | DateTrigger | ApiTrigger


@dataclass(frozen=True, slots=True)
class EventMatch:
    """An event that ends a run: the goal (counted as a conversion) or one of ``exit_on``."""

    type: str
    where: Condition | None = None


@dataclass(frozen=True, slots=True)
class JourneyDefinition:
    """One version of a journey. ``steps`` are in list order; each one's ``next`` is an index."""

    id: str
    name: str
    trigger: Trigger
    reentry: Reentry
    max_active_runs: int
    goal: EventMatch | None
    exit_on: tuple[EventMatch, ...]
    steps: tuple[JourneyStep, ...]
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {step.id: position for position, step in enumerate(self.steps)}
        if len(index) != len(self.steps):
            raise ValueError("step ids must be unique")
        object.__setattr__(self, "_index", index)

    def step_by_id(self, step_id: str) -> JourneyStep:
        """The step with this id; ``KeyError`` when there is none."""
        return self.steps[self._index[step_id]]

    def index_of(self, step_id: str) -> int:
        """The position of the step with this id; ``KeyError`` when there is none."""
        return self._index[step_id]


def load_definition(text: str, *, filename: str = "<journey>") -> JourneyDefinition:
    """Parse and check a journey document (YAML or JSON)."""
    source = load_source(text, filename=filename)
    try:
        return parse_definition(source.data, source.lines)
    except JourneyError as exc:
        raise JourneyError(exc.problems, filename=filename, truncated=exc.truncated) from None


def parse_definition(data: Any, lines: Lines | None = None) -> JourneyDefinition:
    """Check plain journey data and build the definition; ``lines`` come from ``load_source``.

    Raises ``JourneyError`` with every problem found (up to ``MAX_PROBLEMS``).
    """
    r = Reader(lines)
    top = r.mapping(data, (), required=_TOP_REQUIRED, optional=_TOP_OPTIONAL)
    if top is None:
        raise r.error()
    journey_id = r.read(top, "id", (), lambda v, p: r.text(v, p, pattern=JOURNEY_ID, hint=_ID))
    name = r.read(top, "name", (), lambda v, p: _name(r, v, p))
    trigger = r.read(top, "trigger", (), lambda v, p: _trigger(r, v, p))
    reentry = r.read(top, "reentry", (), lambda v, p: _reentry(r, v, p)) or ONCE
    max_active_runs = r.read(
        top, "max_active_runs", (), lambda v, p: r.integer(v, p, minimum=1, maximum=MAX_ACTIVE_RUNS)
    )
    goal = r.read(top, "goal", (), lambda v, p: _event_match(r, v, p, where=True))
    exit_on = r.read(top, "exit_on", (), lambda v, p: _exit_on(r, v, p))
    steps, ids = read_steps(r, top["steps"]) if "steps" in top else ((), {})
    _check_step_names(r, ids)
    if r.problems or journey_id is None or name is None or trigger is None:
        raise r.error()
    return JourneyDefinition(
        id=journey_id,
        name=name,
        trigger=trigger,
        reentry=reentry,
        max_active_runs=max_active_runs or 1,
        goal=goal,
        exit_on=exit_on or (),
        steps=steps,
    )


_ID: Final = "a journey id is lower-case letters, digits, _ and -, starting with a letter or digit"


def _name(r: Reader, value: Any, path: Path) -> str | None:
    name = r.text(value, path)
    if name is not None and len(name) > MAX_NAME:
        r.report(path, f"a name has at most {MAX_NAME} characters")
        return None
    return name


def _reentry(r: Reader, value: Any, path: Path) -> Reentry | None:
    try:
        return parse_reentry(value)
    except ValueError as exc:
        r.report(path, str(exc))
        return None


def _trigger(r: Reader, value: Any, path: Path) -> Trigger | None:
    if not isinstance(value, dict):
        r.report(
            path,
            f"expected a mapping with one of {', '.join(TRIGGER_KINDS)}, got {describe(value)}",
        )
        return None
    for key in value:
        if key not in (*TRIGGER_KINDS, "where"):
            r.report((*path, key), unknown_key(key, (*TRIGGER_KINDS, "where")))
    kinds = [key for key in value if key in TRIGGER_KINDS]
    if len(kinds) != 1:
        found = f"; this one has {' and '.join(kinds)}" if kinds else ""
        r.report(path, f"a trigger has exactly one of {', '.join(TRIGGER_KINDS)}{found}")
        return None
    kind = kinds[0]
    body, body_path = value[kind], (*path, kind)
    where: Condition | None = None
    if "where" in value:
        if kind not in _WHERE_KINDS:
            r.report((*path, "where"), f"a {kind} trigger takes no where")
            return None
        where = r.condition(value["where"], (*path, "where"), in_trigger=True)
        if where is None:
            return None
    if kind == "event":
        event = r.event_type(body, body_path)
        return EventTrigger(event, where) if event is not None else None
    if kind == "segment":
        condition = r.condition(body, body_path, in_trigger=True)
        return SegmentTrigger(condition) if condition is not None else None
    if kind == "schedule":
        return _schedule(r, body, body_path, where)
    if kind == "date":
        return _date(r, body, body_path, where)
    if body is not True:
        r.report(body_path, f"write api: true to start runs through the API, not {describe(body)}")
        return None
    return ApiTrigger()


def _schedule(r: Reader, body: Any, path: Path, where: Condition | None) -> ScheduleTrigger | None:
    data = r.mapping(body, path, required=("cron",))
    if data is None or "cron" not in data:
        return None
    cron = data["cron"]
    if r.text(cron, (*path, "cron")) is None:
        return None
    try:
        return ScheduleTrigger(parse_cron(cron), where)
    except ValueError as exc:
        r.report((*path, "cron"), str(exc))
        return None


def _date(r: Reader, body: Any, path: Path, where: Condition | None) -> DateTrigger | None:
    data = r.mapping(body, path, required=("attribute",), optional=("offset", "at"))
    if data is None:
        return None
    attribute = r.read(data, "attribute", path, r.attribute)
    offset = r.read(data, "offset", path, r.offset)
    at = r.read(data, "at", path, r.time_of_day)
    if attribute is None or ("offset" in data and offset is None) or ("at" in data and at is None):
        return None
    return DateTrigger(attribute, offset or timedelta(0), at, where)


def _event_match(r: Reader, value: Any, path: Path, *, where: bool) -> EventMatch | None:
    data = r.mapping(value, path, required=("event",), optional=("where",) if where else ())
    if data is None:
        return None
    event = r.read(data, "event", path, r.event_type)
    condition = r.read(data, "where", path, r.condition)
    if event is None or ("where" in data and condition is None):
        return None
    return EventMatch(event, condition)


def _exit_on(r: Reader, value: Any, path: Path) -> tuple[EventMatch, ...] | None:
    if not isinstance(value, list):
        r.report(path, f"expected a list such as [{{event: loan_repaid}}], got {describe(value)}")
        return None
    matches = [
        _event_match(r, item, (*path, position), where=True) for position, item in enumerate(value)
    ]
    done = tuple(match for match in matches if match is not None)
    return done if len(done) == len(matches) else None


def _check_step_names(r: Reader, ids: Mapping[str, int]) -> None:
    """``steps.ID`` in a condition must name a step; a trigger has no steps to read yet."""
    named = [step_id for step_id in ids if STEP_ID.match(step_id)]
    for written in r.conditions:
        for name in sorted(written.condition.names()):
            parts = name.split(".")
            if parts[0] == "reply" and written.in_trigger:
                r.report(written.path, f'a trigger cannot read "{name}": no run has started yet')
            if parts[0] != "steps":
                continue
            if written.in_trigger:
                r.report(written.path, f'a trigger cannot read "{name}": no run has started yet')
            elif len(parts) < 2:
                r.report(written.path, '"steps" needs a step id, as in steps.ID.seen')
            elif parts[1] not in ids:
                hint = did_you_mean(parts[1], named)
                r.report(written.path, f'"{name}": no step has the id "{parts[1]}"{hint}')
