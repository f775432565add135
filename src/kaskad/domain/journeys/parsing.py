"""Reading a journey's list of steps: ids first, then each step's body and where it leads.

Ids are collected before any body is read, because a ``goto`` may name a step further down
and a ``wait: {send: ID}`` must name one further up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kaskad.domain.journeys.loops import Edge, find_loops
from kaskad.domain.journeys.reader import (
    ATTRIBUTE,
    Reader,
    describe,
    did_you_mean,
    quote,
    unknown_key,
)
from kaskad.domain.journeys.sends import SURVEY_KEYS, read_send, read_survey
from kaskad.domain.journeys.source import MAX_STEPS, Path
from kaskad.domain.journeys.steps import (
    EXIT,
    EXIT_INDEX,
    STEP_KINDS,
    BranchCase,
    BranchStep,
    ExitStep,
    JourneyStep,
    SplitStep,
    SplitVariant,
    UpdateStep,
    WaitStep,
)
from kaskad.domain.journeys.waits import WAIT_KEYS, SendsBefore, read_wait

# Ids are named in conditions as ``steps.ID.seen``, so they are identifiers; the ids given to
# steps without one (``step-3``) have a hyphen and can never clash with a written id.
STEP_ID: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
VARIANT: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_WEIGHT: Final = 1_000_000
MAX_REASON: Final = 200

_BODY_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "send": ("category", "priority", "cascade", "content_key", "topic"),
    "survey": SURVEY_KEYS,
    "wait": WAIT_KEYS,
    "update": ("attributes",),
}
_BAD: Final = -1  # a target that could not be resolved (and was reported)


@dataclass(frozen=True, slots=True)
class _Raw:
    """A step as written, before its body is read: enough to resolve ids and targets."""

    index: int
    id: str
    kind: str | None  # None when the step has no single known kind (already reported)
    data: Mapping[str, Any]

    @property
    def path(self) -> Path:
        return ("steps", self.index)


def read_steps(reader: Reader, value: Any) -> tuple[tuple[JourneyStep, ...], dict[str, int]]:
    """The steps in list order and the index of each id; problems go to ``reader``.

    The steps are complete only when ``reader`` noted no problem.
    """
    items = reader.items(value, ("steps",), what="steps", limit=MAX_STEPS)
    raws = [_raw(reader, index, item) for index, item in enumerate(items)]
    ids = _index_ids(reader, raws)
    steps = _StepReader(reader, raws, ids)
    built = [steps.step(raw) for raw in raws]
    for path, message in find_loops(
        steps.edges, [raw.id for raw in raws], pauses=steps.pauses, soft_waits=steps.soft_waits
    ):
        reader.report(path, message)
    return tuple(step for step in built if step is not None), ids


def _raw(reader: Reader, index: int, item: Any) -> _Raw:
    path: Path = ("steps", index)
    auto = f"step-{index + 1}"
    if not isinstance(item, dict):
        reader.report(path, f"a step is a mapping such as {{wait: 2d}}, got {describe(item)}")
        return _Raw(index, auto, None, {})
    written = item.get("id")
    valid = "id" in item and reader.text(written, (*path, "id"), pattern=STEP_ID, hint=_ID_HINT)
    if valid and written == EXIT:
        reader.report((*path, "id"), '"exit" is reserved for goto: exit')
    step_id = written if isinstance(written, str) else auto
    kinds = [key for key in item if key in STEP_KINDS]
    others = [key for key in item if key not in (*STEP_KINDS, "id", "goto")]
    if not kinds:
        if len(others) == 1:
            expected = ", ".join(STEP_KINDS)
            reader.report(
                (*path, others[0]), f'unknown step "{others[0]}" — expected one of {expected}'
            )
        else:
            for key in others:
                reader.report((*path, key), unknown_key(key, ("id", "goto", *STEP_KINDS)))
            reader.report(path, f"a step needs one of {', '.join(STEP_KINDS)}")
        return _Raw(index, step_id, None, item)
    if len(kinds) > 1:
        reader.report(path, f"a step does one thing; this one has {' and '.join(kinds)}")
    for key in others:
        reader.report((*path, key), _misplaced(key, kinds[0]))
    return _Raw(index, step_id, kinds[0] if len(kinds) == 1 else None, item)


_ID_HINT: Final = "an id is letters, digits and _, and does not start with a digit"


def _misplaced(key: str, kind: str) -> str:
    if key in _BODY_KEYS.get(kind, ()):
        return f'"{key}" belongs inside {kind} (indent it under "{kind}:")'
    return unknown_key(key, ("id", "goto"))


def _index_ids(reader: Reader, raws: list[_Raw]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for raw in raws:
        if raw.id in ids:
            first = ids[raw.id]
            reader.report((*raw.path, "id"), f'duplicate id "{raw.id}" — steps[{first}] has it')
        else:
            ids[raw.id] = raw.index
    return ids


class _StepReader:
    """Reads each step's body once every id is known, and keeps the graph for the loop check."""

    def __init__(self, reader: Reader, raws: list[_Raw], ids: Mapping[str, int]) -> None:
        self.r = reader
        self.raws = raws
        self.ids = ids
        self.edges: list[Edge] = []
        self.pauses: set[int] = set()  # waits that always take time
        self.soft_waits: set[int] = set()  # waits that can go on at once
        self.written_ids = [step_id for step_id in ids if STEP_ID.match(step_id)]
        self.sends = frozenset(raw.id for raw in raws if raw.kind in ("send", "survey"))

    def step(self, raw: _Raw) -> JourneyStep | None:
        if raw.kind is None:
            return None
        path: Path = (*raw.path, raw.kind)
        body = raw.data[raw.kind]
        if raw.kind == "exit":
            if "goto" in raw.data:
                self.r.report((*raw.path, "goto"), "an exit step ends the run; remove the goto")
            reason = self._reason(body, path)
            return ExitStep(raw.id, reason) if reason is not None else None
        follow, follow_path = self._next(raw)
        if raw.kind == "branch":
            return self._branch(raw, body, follow, follow_path)
        if raw.kind == "split":
            return self._split(raw, body, follow, follow_path)
        self._edge(raw.index, follow, follow_path)
        if raw.kind == "send":
            send = read_send(self.r, raw.id, body, path, follow)
            return send if follow != _BAD else None
        if raw.kind == "survey":
            self.pauses.add(raw.index)  # it waits for the answer or its timeout
            survey = read_survey(self.r, raw.id, body, path, follow)
            return survey if follow != _BAD else None
        if raw.kind == "wait":
            sends = SendsBefore(raw.index, self.ids, self.sends)
            wait, takes_time = read_wait(self.r, body, path, sends)
            (self.pauses if takes_time else self.soft_waits).add(raw.index)
            return WaitStep(raw.id, wait, follow) if wait is not None and follow != _BAD else None
        attributes = self._update(body, path)
        return UpdateStep(raw.id, attributes, follow) if attributes and follow != _BAD else None

    # Targets -------------------------------------------------------------------------------

    def _next(self, raw: _Raw) -> tuple[int | None, Path]:
        """Where the run goes after this step: its goto, else the step below (None at the end)."""
        if "goto" in raw.data:
            path: Path = (*raw.path, "goto")
            return self._target(raw.data["goto"], path), path
        following = raw.index + 1
        return (following if following < len(self.raws) else None), raw.path

    def _target(self, value: Any, path: Path) -> int | None:
        if value == EXIT:
            return EXIT_INDEX
        if not isinstance(value, str):
            self.r.report(path, f'expected a step id or "exit", got {describe(value)}')
            return _BAD
        if value not in self.ids:
            hint = did_you_mean(value, [*self.written_ids, EXIT])
            self.r.report(path, f"no step has the id {quote(value)}{hint}")
            return _BAD
        return self.ids[value]

    def _edge(self, source: int, target: int | None, path: Path) -> None:
        if target is not None and target >= 0:
            self.edges.append(Edge(source, target, path))

    # Branch and split ----------------------------------------------------------------------

    def _branch(
        self, raw: _Raw, body: Any, follow: int | None, follow_path: Path
    ) -> BranchStep | None:
        path: Path = (*raw.path, "branch")
        items = self.r.items(body, path, what="cases")
        cases: list[BranchCase | None] = []
        otherwise, otherwise_path = follow, follow_path
        for position, item in enumerate(items):
            case_path: Path = (*path, position)
            if isinstance(item, dict) and "else" in item:
                self.r.mapping(item, case_path, required=("else",))
                if position != len(items) - 1:
                    self.r.report((*case_path, "else"), "else must be the last case")
                otherwise_path = (*case_path, "else")
                otherwise = self._target(item["else"], otherwise_path)
            else:
                cases.append(self._case(raw, item, case_path))
        if items and not cases:
            self.r.report(path, "a branch needs at least one case with when")
        self._edge(raw.index, otherwise, otherwise_path)
        done = tuple(case for case in cases if case is not None)
        if not done or len(done) < len(cases) or _BAD in (otherwise, follow):
            return None
        return BranchStep(raw.id, done, otherwise, follow)

    def _case(self, raw: _Raw, item: Any, path: Path) -> BranchCase | None:
        case = self.r.mapping(item, path, required=("when", "goto"))
        if case is None:
            return None
        when = self.r.read(case, "when", path, self.r.condition)
        goto = self._target(case["goto"], (*path, "goto")) if "goto" in case else _BAD
        self._edge(raw.index, goto, (*path, "goto"))
        return BranchCase(when, goto) if when is not None and goto != _BAD else None

    def _split(
        self, raw: _Raw, body: Any, follow: int | None, follow_path: Path
    ) -> SplitStep | None:
        path: Path = (*raw.path, "split")
        items = self.r.items(body, path, what="variants")
        variants = [
            self._variant(raw, item, (*path, position), follow, follow_path)
            for position, item in enumerate(items)
        ]
        done = tuple(variant for variant in variants if variant is not None)
        names = [variant.name for variant in done]
        for position, variant in enumerate(variants):
            if variant is not None and names.count(variant.name) > 1:
                self.r.report((*path, position, "variant"), f"{quote(variant.name)} is repeated")
        if done and not any(variant.weight for variant in done):
            self.r.report(path, "a split needs at least one variant with a weight above 0")
        if not done or len(done) < len(variants) or follow == _BAD:
            return None
        return SplitStep(raw.id, done, follow)

    def _variant(
        self, raw: _Raw, item: Any, path: Path, follow: int | None, follow_path: Path
    ) -> SplitVariant | None:
        data = self.r.mapping(item, path, required=("variant", "weight"), optional=("goto",))
        if data is None:
            return None
        name = self.r.read(
            data, "variant", path, lambda v, p: self.r.text(v, p, pattern=VARIANT, hint=_VARIANT)
        )
        weight = self.r.read(
            data, "weight", path, lambda v, p: self.r.integer(v, p, minimum=0, maximum=MAX_WEIGHT)
        )
        goto, goto_path = follow, follow_path
        if "goto" in data:
            goto_path = (*path, "goto")
            goto = self._target(data["goto"], goto_path)
        self._edge(raw.index, goto, goto_path)
        if name is None or weight is None or goto == _BAD:
            return None
        return SplitVariant(name, weight, goto)

    # Update and exit -----------------------------------------------------------------------

    def _update(self, body: Any, path: Path) -> dict[str, Any] | None:
        data = self.r.mapping(body, path, required=("attributes",))
        if data is None or "attributes" not in data:
            return None
        attributes_path: Path = (*path, "attributes")
        attributes = data["attributes"]
        if not isinstance(attributes, dict):
            self.r.report(attributes_path, f"expected a mapping, got {describe(attributes)}")
            return None
        if not attributes:
            self.r.report(attributes_path, "needs at least one attribute to set")
            return None
        bad = [key for key in attributes if not isinstance(key, str) or not ATTRIBUTE.match(key)]
        for key in bad:
            self.r.report((*attributes_path, key), f"{quote(str(key))} is not an attribute name")
        return None if bad else attributes

    def _reason(self, body: Any, path: Path) -> str | None:
        reason = self.r.text(body, path)
        if reason is not None and len(reason) > MAX_REASON:
            self.r.report(path, f"a reason has at most {MAX_REASON} characters")
            return None
        return reason


_VARIANT: Final = "a variant name is letters, digits and _.-"
