"""Loops in a journey: a run may go round one only if every round waits.

A worker advances a run until it has to wait. A loop of sends and branches with no wait in it
would never hand the run back: the worker would spin, and every round would queue another
notification. Such a loop is refused when the journey is saved.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from kaskad.domain.journeys.source import Path

_OPEN: Final = 1
_DONE: Final = 2


@dataclass(frozen=True, slots=True)
class Edge:
    """A way from one step to another, and where it is written (the step, a goto, an else)."""

    source: int
    target: int
    path: Path


def find_loops(
    edges: Sequence[Edge],
    ids: Sequence[str],
    *,
    pauses: Collection[int],
    soft_waits: Collection[int] = (),
) -> list[tuple[Path, str]]:
    """One problem per way back into a loop that has no step in ``pauses``.

    ``pauses`` are the waits that always take time (a duration, a time of day, an event).
    Waits that can go on at once (``soft_waits``: a date already past, a send whose cascade
    has ended) do not break a loop, and the message says so when a loop goes through one.
    """
    graph: dict[int, list[Edge]] = {}
    for edge in edges:
        if edge.source not in pauses and edge.target not in pauses:
            graph.setdefault(edge.source, []).append(edge)
    state: dict[int, int] = {}
    found: list[tuple[Path, str]] = []
    for start in range(len(ids)):
        if start not in state and start not in pauses:
            for edge, loop in _back_edges(start, graph, state):
                found.append((edge.path, _message(ids[edge.target], loop, soft_waits)))
    return found


def _back_edges(
    start: int, graph: Mapping[int, list[Edge]], state: dict[int, int]
) -> Iterator[tuple[Edge, list[int]]]:
    """Depth first from ``start``: each edge back to a step on the current trail closes a loop.

    Without recursion, so two hundred steps in a row cannot reach Python's recursion limit.
    """
    trail = [start]
    pending = [iter(graph.get(start, ()))]
    state[start] = _OPEN
    while pending:
        edge = next(pending[-1], None)
        if edge is None:
            state[trail.pop()] = _DONE
            pending.pop()
        elif state.get(edge.target) == _OPEN:
            yield edge, trail[trail.index(edge.target) :]
        elif edge.target not in state:
            state[edge.target] = _OPEN
            trail.append(edge.target)
            pending.append(iter(graph.get(edge.target, ())))


def _message(target: str, loop: Sequence[int], soft_waits: Collection[int]) -> str:
    if any(index in soft_waits for index in loop):
        return (
            f'loops back to "{target}" without a wait that always takes time (a wait for a date '
            "or for a send can go on at once) — a run would spin forever"
        )
    return f'loops back to "{target}" without a wait — a run would spin forever'
