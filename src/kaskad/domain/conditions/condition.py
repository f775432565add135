"""A parsed condition: its text, its tree, and the questions callers ask of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kaskad.domain.conditions.evaluation import evaluate_node
from kaskad.domain.conditions.functions import FUNCTIONS
from kaskad.domain.conditions.nodes import Call, Name, Node, walk
from kaskad.domain.conditions.values import truthy


@dataclass(frozen=True, slots=True)
class Condition:
    """A condition as written (``source``) and as parsed (``root``); made by ``parse``."""

    source: str
    root: Node

    def evaluate(self, scope: Mapping[str, Any], *, now: datetime | None = None) -> bool:
        """Whether the condition holds for ``scope`` (nested mappings: payload, contact, …).

        Data never makes this raise: missing names are null, and mismatched types make a
        comparison false. ``now`` is the caller's clock (a naive one is taken as UTC); it is
        required, whatever the data, when the condition uses ``days_since`` or ``hours_since``,
        so a missing clock is found by the first test rather than by the first odd event.
        """
        if now is None:
            timed = sorted(name for name in self.functions() if FUNCTIONS[name].needs_now)
            if timed:
                used = ", ".join(f"{name}()" for name in timed)
                raise ValueError(f"the condition uses {used}: pass now= to evaluate it")
        elif now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return truthy(evaluate_node(self.root, scope, now))

    def names(self) -> frozenset[str]:
        """The dotted names the condition reads, e.g. ``{"payload.amount", "contact.region"}``."""
        return frozenset(node.dotted for node in walk(self.root) if isinstance(node, Name))

    def functions(self) -> frozenset[str]:
        """The functions the condition calls, e.g. ``{"days_since"}``."""
        return frozenset(node.function for node in walk(self.root) if isinstance(node, Call))
