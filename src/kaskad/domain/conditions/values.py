"""What values mean to a condition: truthiness, equality, order, membership and arithmetic.

Every rule here is total: whatever the scope holds, the answer is a value or null, never an
exception, because a condition runs on data nobody has checked (event payloads, attributes).
Types are never converted: ``"42" == 42`` is false, and bool is not a number.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, TypeAlias, TypeGuard

from kaskad.domain.conditions.nodes import ArithOp, CompareOp

Number: TypeAlias = int | float | Decimal

_ARITHMETIC: Final[Mapping[ArithOp, Callable[[Any, Any], Any]]] = {
    ArithOp.ADD: operator.add,
    ArithOp.SUB: operator.sub,
    ArithOp.MUL: operator.mul,
    ArithOp.DIV: operator.truediv,
    ArithOp.MOD: operator.mod,
}
_ORDER: Final[Mapping[CompareOp, Callable[[Any, Any], bool]]] = {
    CompareOp.LT: operator.lt,
    CompareOp.LE: operator.le,
    CompareOp.GT: operator.gt,
    CompareOp.GE: operator.ge,
}


def is_number(value: object) -> TypeGuard[Number]:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def truthy(value: object) -> bool:
    """null, false, 0, "", [] and {} are false; anything else (a date, an object) is true."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, Decimal):
        return not value.is_zero()  # "!= 0" would raise for Decimal("sNaN")
    if is_number(value):
        return value != 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value) > 0
    return True


def to_datetime(value: object) -> datetime | None:
    """An aware datetime from an ISO 8601 text, a datetime or a date; naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _kind(value: object) -> str | None:
    """Values of the same kind can be compared; None means "opaque", comparable to nothing."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, date):  # datetime is a date too
        return "time"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return None


def _numbers(left: Number, right: Number) -> tuple[Number, Number]:
    # Decimal refuses to mix with float; JSON gives floats, so the Decimal side gives way.
    if isinstance(left, Decimal) and isinstance(right, float):
        return _float(left), right
    if isinstance(left, float) and isinstance(right, Decimal):
        return left, _float(right)
    return left, right


def _float(value: Decimal) -> float:
    return math.nan if value.is_nan() else float(value)  # float() refuses a signaling NaN


def equal(left: object, right: object) -> bool:
    """Strict, structural equality: same kind and same value (inside lists, null equals null)."""
    kind = _kind(left)
    if kind is None or kind != _kind(right):
        return False
    try:
        if is_number(left) and is_number(right):
            a, b = _numbers(left, right)
            return bool(a == b)
        if isinstance(left, date) and isinstance(right, date):
            return to_datetime(left) == to_datetime(right)
        if isinstance(left, list | tuple) and isinstance(right, list | tuple):
            return len(left) == len(right) and all(map(equal, left, right))
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            return left.keys() == right.keys() and all(equal(v, right[k]) for k, v in left.items())
    except (ArithmeticError, TypeError):  # Decimal("sNaN"), datetimes at the edge of time
        return False
    return bool(left == right)


def comparable(left: object, right: object) -> bool:
    """Whether ``==`` and ``!=`` can say anything about the two: both known, of one kind."""
    kind = _kind(left)
    return kind is not None and kind != "null" and kind == _kind(right)


def order(op: CompareOp, left: object, right: object) -> bool:
    """``< <= > >=`` on two numbers, two texts or two dates; anything else is false."""
    compare = _ORDER[op]
    try:
        if is_number(left) and is_number(right):
            return compare(*_numbers(left, right))
        if isinstance(left, str) and isinstance(right, str):
            return compare(left, right)
        if isinstance(left, date) and isinstance(right, date):
            return compare(to_datetime(left), to_datetime(right))
    except (ArithmeticError, TypeError):  # Decimal("NaN"), datetimes at the edge of time
        return False
    return False


def member(item: object, container: object) -> bool | None:
    """``item in container`` for a list, a text (substring) or a mapping (key); None if neither.

    None (not False) lets ``not in`` be false too when the question makes no sense.
    """
    if item is None:
        return None
    if isinstance(container, list | tuple):
        return any(equal(item, element) for element in container)
    if isinstance(container, str | Mapping) and isinstance(item, str):
        return item in container
    return None


def arithmetic(op: ArithOp, left: object, right: object) -> Number | None:
    """``+ - * / %`` on numbers; null for anything else, for division by zero and overflow."""
    if not (is_number(left) and is_number(right)):
        return None
    try:
        result: Number = _ARITHMETIC[op](*_numbers(left, right))
    except ArithmeticError:  # ZeroDivisionError, OverflowError, decimal.InvalidOperation
        return None
    return result if _finite(result) else None


def negate(value: object) -> Number | None:
    if not is_number(value):
        return None
    try:
        result = -value
    except ArithmeticError:  # Decimal("sNaN")
        return None
    return result if _finite(result) else None


def _finite(value: Number) -> bool:
    if isinstance(value, int):
        return True  # math.isfinite() would convert it to float, and overflow
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
