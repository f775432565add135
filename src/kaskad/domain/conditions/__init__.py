"""Conditions: the small, safe expression language of triggers, branches, goals and segments.

``payload.amount >= 1000 and contact.region == "Kyiv"`` is tokenized and parsed by hand into a
tree of frozen dataclasses (``nodes``), then evaluated by walking that tree over nested
mappings. Nothing is handed to Python's ``eval``, ``compile`` or ``ast``, and a name can only
read a key of a mapping, never an attribute, so a condition written by anyone can only read
the data it is given. The user documentation is ``docs/conditions.md``.
"""

from kaskad.domain.conditions.condition import Condition
from kaskad.domain.conditions.errors import ConditionError
from kaskad.domain.conditions.functions import FUNCTIONS, Function
from kaskad.domain.conditions.nodes import (
    Arithmetic,
    ArithOp,
    Call,
    Compare,
    CompareOp,
    ListLiteral,
    Literal,
    Logical,
    LogicOp,
    Name,
    Node,
    Unary,
    UnaryOp,
    children,
    walk,
)
from kaskad.domain.conditions.parser import MAX_DEPTH, MAX_LENGTH, MAX_LIST_ITEMS, parse

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_LIST_ITEMS",
    "ArithOp",
    "Arithmetic",
    "Call",
    "Compare",
    "CompareOp",
    "Condition",
    "ConditionError",
    "Function",
    "ListLiteral",
    "Literal",
    "LogicOp",
    "Logical",
    "Name",
    "Node",
    "Unary",
    "UnaryOp",
    "children",
    "parse",
    "walk",
]
