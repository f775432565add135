"""Evaluation: a walk over the syntax tree with the scope in hand.

Names resolve only through nested mappings, so a condition can read data and nothing else:
no attributes, no methods, no Python. The parser bounds the depth of the tree, so the
recursion here is bounded too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kaskad.domain.conditions import values
from kaskad.domain.conditions.functions import FUNCTIONS
from kaskad.domain.conditions.nodes import (
    Arithmetic,
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
)


def resolve(scope: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path``, or None when any step is missing or not a mapping."""
    value: Any = scope
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def evaluate_node(node: Node, scope: Mapping[str, Any], now: datetime | None) -> Any:
    match node:
        case Literal(value):
            return value
        case Name(path):
            return resolve(scope, path)
        case Logical(op, operands):
            # Short-circuit, so "exists(x) and days_since(x) > 3" never looks at a missing x.
            if op is LogicOp.AND:
                return all(values.truthy(evaluate_node(o, scope, now)) for o in operands)
            return any(values.truthy(evaluate_node(o, scope, now)) for o in operands)
        case Unary(op, operand):
            value = evaluate_node(operand, scope, now)
            return not values.truthy(value) if op is UnaryOp.NOT else values.negate(value)
        case Compare(op, left, right):
            return _compare(op, left, right, scope, now)
        case Arithmetic(op, left, right):
            return values.arithmetic(
                op, evaluate_node(left, scope, now), evaluate_node(right, scope, now)
            )
        case ListLiteral(items):
            return [evaluate_node(item, scope, now) for item in items]
        case Call(function, args):
            arguments = [evaluate_node(arg, scope, now) for arg in args]
            return FUNCTIONS[function].apply(arguments, now)


def _compare(
    op: CompareOp, left: Node, right: Node, scope: Mapping[str, Any], now: datetime | None
) -> bool:
    # "x == null" and "x != null" are the only questions one can ask about null; they are
    # told apart by the literal in the text, as SQL tells IS NULL from "=".
    if op in (CompareOp.EQ, CompareOp.NE) and (_is_null(left) or _is_null(right)):
        other = left if _is_null(right) else right
        is_null = evaluate_node(other, scope, now) is None
        return is_null if op is CompareOp.EQ else not is_null
    a = evaluate_node(left, scope, now)
    b = evaluate_node(right, scope, now)
    if a is None or b is None:
        return False
    match op:
        case CompareOp.EQ:
            return values.equal(a, b)
        case CompareOp.NE:
            return values.comparable(a, b) and not values.equal(a, b)
        case CompareOp.IN:
            return values.member(a, b) is True
        case CompareOp.NOT_IN:
            return values.member(a, b) is False
        case _:
            return values.order(op, a, b)


def _is_null(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None
