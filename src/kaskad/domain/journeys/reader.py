"""Reading plain journey data field by field, collecting every problem with its path and line.

Each ``Reader`` method checks one kind of value and returns it parsed, or None after noting a
problem. A None never stands for a real value, so callers build a dataclass only when all of
its parts came back; the journey as a whole is refused when any problem was noted.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from enum import StrEnum
from typing import Any, Final, TypeVar

from kaskad.domain.conditions import Condition, ConditionError, parse
from kaskad.domain.durations import DurationError, parse_duration
from kaskad.domain.journeys.source import (
    MAX_PROBLEMS,
    JourneyError,
    Lines,
    Path,
    Problem,
    line_of,
    render_path,
)
from kaskad.domain.journeys.timing import parse_time_of_day

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")

# The same names POST /v1/events accepts, so a journey can wait for any event it can receive.
EVENT_TYPE: Final = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
# Attribute names are read in conditions as ``contact.NAME``, so they are identifiers.
ATTRIBUTE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_ZERO: Final = re.compile(r"^[+-]?0+(?:\.0+)?[smhdw]?$")


@dataclass(frozen=True, slots=True)
class Written:
    """A parsed condition and where it was written, kept for the checks that need all steps."""

    path: Path
    condition: Condition
    in_trigger: bool


class Reader:
    """Collects problems while a journey is read."""

    def __init__(self, lines: Lines | None = None) -> None:
        self.lines: Lines = lines or {}
        self.problems: list[Problem] = []
        self.truncated = False
        self.conditions: list[Written] = []

    def report(self, path: Path, message: str) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.truncated = True
            return
        self.problems.append(Problem(render_path(path), line_of(self.lines, path), message))

    def error(self, filename: str | None = None) -> JourneyError:
        """The problems in the order of the document, as an editor would list them."""
        ordered = sorted(self.problems, key=lambda problem: problem.line or 0)
        return JourneyError(ordered, filename=filename, truncated=self.truncated)

    # Shapes --------------------------------------------------------------------------------

    def mapping(
        self,
        value: Any,
        path: Path,
        *,
        required: Collection[str] = (),
        optional: Collection[str] = (),
    ) -> dict[str, Any] | None:
        """A mapping with only the keys given; reports unknown and missing keys."""
        allowed = [*required, *optional]
        if not isinstance(value, dict):
            keys = ", ".join(allowed)
            self.report(path, f"expected a mapping ({keys}), got {describe(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.report((*path, key), unknown_key(key, allowed))
        for key in required:
            if key not in value:
                self.report(path, f'missing "{key}"')
        return value

    def read(
        self, data: Mapping[str, Any], key: str, path: Path, parse: Callable[[Any, Path], T]
    ) -> T | None:
        """``parse`` the value at ``key`` if it is there; a missing key was reported already."""
        if key not in data:
            return None
        return parse(data[key], (*path, key))

    def items(self, value: Any, path: Path, *, what: str, limit: int | None = None) -> list[Any]:
        """A non-empty list; each item is then checked by the caller."""
        if not isinstance(value, list):
            self.report(path, f"expected a list of {what}, got {describe(value)}")
            return []
        if not value:
            self.report(path, f"expected a list of {what}, got an empty list")
        if limit is not None and len(value) > limit:
            self.report(path, f"expected at most {limit} {what}, got {len(value)}")
        return value

    # Scalars -------------------------------------------------------------------------------

    def text(
        self, value: Any, path: Path, *, pattern: re.Pattern[str] | None = None, hint: str = ""
    ) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.report(path, f"expected text, got {describe(value)}")
            return None
        if pattern is not None and not pattern.match(value):
            self.report(path, f"{quote(value)} is not valid{': ' + hint if hint else ''}")
            return None
        return value

    def event_type(self, value: Any, path: Path) -> str | None:
        return self.text(
            value, path, pattern=EVENT_TYPE, hint="an event type is letters, digits and _.:-"
        )

    def attribute(self, value: Any, path: Path) -> str | None:
        name = self.text(value, path)
        if name is None:
            return None
        if name.startswith("contact."):
            self.report(path, f'write the attribute name alone: "{name.removeprefix("contact.")}"')
            return None
        if not ATTRIBUTE.match(name):
            self.report(path, f"{quote(name)} is not an attribute name (letters, digits and _)")
            return None
        return name

    def integer(self, value: Any, path: Path, *, minimum: int, maximum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.report(path, f"expected a whole number, got {describe(value)}")
            return None
        if not minimum <= value <= maximum:
            self.report(path, f"{value} is out of range ({minimum} to {maximum})")
            return None
        return value

    def choice(self, value: Any, path: Path, kind: type[E], what: str) -> E | None:
        """One of an enum's values, the same words the HTTP API accepts."""
        names = [member.value for member in kind]
        if isinstance(value, str) and value in names:
            return kind(value)
        shown = quote(value) if isinstance(value, str) else describe(value)
        self.report(path, f"{shown} is not a {what}{suggest(value, names)}")
        return None

    def duration(self, value: Any, path: Path) -> timedelta | None:
        """A positive duration, by the same rules as a cascade step's timeout."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.report(path, f"expected a duration such as 2d, got {describe(value)}")
            return None
        try:
            return parse_duration(value)
        except DurationError as exc:
            self.report(path, _requote(value, str(exc)))
            return None

    def offset(self, value: Any, path: Path) -> timedelta | None:
        """A signed duration: ``-3d`` is three days before, ``2h`` two hours after, ``0`` on."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.report(path, f"expected an offset such as -3d, got {describe(value)}")
            return None
        text = str(value).strip()
        if _ZERO.match(text):
            return timedelta(0)
        sign = -1 if text.startswith("-") else 1
        magnitude = text[1:] if text[:1] in ("-", "+") else text
        try:
            return sign * parse_duration(magnitude)
        except DurationError:
            self.report(path, f"{quote(text)} is not an offset (e.g. -3d or 2h, at most 3650d)")
            return None

    def time_of_day(self, value: Any, path: Path) -> time | None:
        try:
            return parse_time_of_day(value)
        except ValueError as exc:
            self.report(path, _requote(value, str(exc)))
            return None

    def condition(self, value: Any, path: Path, *, in_trigger: bool = False) -> Condition | None:
        """A condition in the expression language; kept so step names can be checked later."""
        if not isinstance(value, str) or not value.strip():
            self.report(path, f"expected a condition, got {describe(value)}")
            return None
        try:
            condition = parse(value)
        except ConditionError as exc:
            self.report(path, str(exc))
            return None
        self.conditions.append(Written(path, condition, in_trigger))
        return condition


def describe(value: Any) -> str:
    """What a value is, in the words of the format rather than Python's."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"text {quote(value)}" if value.strip() else "empty text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def quote(value: str) -> str:
    """Double quotes, as YAML and JSON write text; long text is cut."""
    shown = value if len(value) <= 60 else value[:57] + "..."
    return json.dumps(shown, ensure_ascii=False)


def suggest(value: Any, options: Collection[str]) -> str:
    """`` — did you mean "x"?`` for a near miss, else the list of what is allowed."""
    return did_you_mean(value, options) or " — expected one of " + ", ".join(options)


def did_you_mean(value: Any, options: Collection[str]) -> str:
    """`` — did you mean "x"?`` for a near miss, else nothing."""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
        if close:
            return f' — did you mean "{close[0]}"?'
    return ""


def unknown_key(key: str, allowed: Collection[str]) -> str:
    return f'unknown key "{key}"{suggest(key, allowed)}'


def _requote(value: Any, message: str) -> str:
    """A parser's message with the value in the format's double quotes instead of Python's."""
    written = repr(value)
    if isinstance(value, str) and message.startswith(written):
        return quote(value) + message[len(written) :]
    return message
