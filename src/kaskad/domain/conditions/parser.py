"""The parser: tokens to a syntax tree, by precedence climbing (a Pratt parser).

Each binary operator has a binding power; an operand is parsed with the power of the operator
on its left, and stops at any operator that binds no tighter. Limits on length, nesting and
list size keep parsing linear and the tree shallow, whatever text arrives over the API.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from kaskad.domain.conditions.condition import Condition
from kaskad.domain.conditions.errors import ConditionError
from kaskad.domain.conditions.functions import FUNCTIONS
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
)
from kaskad.domain.conditions.tokens import Kind, Token, tokenize

MAX_LENGTH: Final = 2000
MAX_DEPTH: Final = 32
MAX_LIST_ITEMS: Final = 1000

# Binding powers, lowest first. "not" binds between "and" and the comparisons, so
# "not a == b" is "not (a == b)"; unary minus binds tightest, so "-a * b" is "(-a) * b".
_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _NEGATE = range(1, 8)

_LOGIC: Final = {"or": (LogicOp.OR, _OR), "and": (LogicOp.AND, _AND)}
_COMPARISONS: Final = {op.value: op for op in CompareOp if op is not CompareOp.NOT_IN}
_ARITHMETIC: Final = {
    "+": (ArithOp.ADD, _SUM),
    "-": (ArithOp.SUB, _SUM),
    "*": (ArithOp.MUL, _PRODUCT),
    "/": (ArithOp.DIV, _PRODUCT),
    "%": (ArithOp.MOD, _PRODUCT),
}
_CONSTANTS: Final = {"true": True, "false": False, "null": None}
_TOO_DEEP: Final = f"the condition is nested too deeply (at most {MAX_DEPTH} levels)"

# The parser returns each node with its depth (a leaf is 0), so the depth limit costs nothing.
_Parsed = tuple[Node, int]


def parse(text: str) -> Condition:
    """Parse a condition; raise ConditionError, naming the position, if it is not one."""
    if not isinstance(text, str):
        raise ConditionError(f"a condition must be text, not {type(text).__name__}", 0)
    if len(text) > MAX_LENGTH:
        raise ConditionError(
            f"the condition is too long ({len(text):,} characters; at most {MAX_LENGTH:,})",
            MAX_LENGTH,
        )
    if not text.strip():
        raise ConditionError("the condition is empty", 0)
    return Condition(source=text, root=_Parser(text).parse())


class _Parser:
    def __init__(self, text: str) -> None:
        self._tokens = tokenize(text)
        self._ahead: deque[Token] = deque()
        self._nesting = 0

    def parse(self) -> Node:
        node, _ = self._expression(0)
        token = self._peek()
        if token.is_symbol(")", "]"):
            opener = "(" if token.text == ")" else "["
            raise ConditionError(
                f'unexpected "{token.text}" — no "{opener}" to close', token.position
            )
        if token.kind is not Kind.END:
            raise _unexpected(token, "an operator or the end of the condition")
        return node

    # Tokens

    def _peek(self, offset: int = 0) -> Token:
        while len(self._ahead) <= offset:
            if self._ahead and self._ahead[-1].kind is Kind.END:
                return self._ahead[-1]
            self._ahead.append(next(self._tokens))
        return self._ahead[offset]

    def _next(self) -> Token:
        token = self._peek()
        if token.kind is not Kind.END:
            self._ahead.popleft()
        return token

    def _close(self, closer: str, opener: Token, expected: str) -> None:
        token = self._next()
        if token.is_symbol(closer):
            return
        if token.kind is Kind.END:
            raise ConditionError(
                f'unexpected end of condition — the "{opener.text}" at column '
                f"{opener.position + 1} is never closed",
                token.position,
            )
        raise _unexpected(token, expected)

    @contextmanager
    def _nested(self, token: Token) -> Iterator[None]:
        """Count brackets, calls and prefix operators: they are what makes the parser recurse."""
        self._nesting += 1
        if self._nesting > MAX_DEPTH:
            raise ConditionError(_TOO_DEEP, token.position)
        try:
            yield
        finally:
            self._nesting -= 1

    # Grammar

    def _expression(self, min_power: int) -> _Parsed:
        left, depth = self._prefix(min_power)
        while True:
            token = self._peek()
            if token.kind is not Kind.SYMBOL:
                return left, depth
            if token.text in _LOGIC:
                logic, power = _LOGIC[token.text]
                if power <= min_power:
                    return left, depth
                self._next()
                right, right_depth = self._expression(power)
                left, depth = _logical(logic, (left, depth), (right, right_depth))
            elif token.text in _COMPARISONS or token.text == "not":
                if min_power >= _COMPARE:
                    return left, depth
                compare = self._comparison_operator()
                right, right_depth = self._expression(_COMPARE)
                left, depth = Compare(compare, left, right), 1 + max(depth, right_depth)
                following = self._peek()
                if following.is_symbol(*_COMPARISONS) or (
                    following.is_symbol("not") and self._peek(1).is_symbol("in")
                ):
                    raise ConditionError(
                        'comparisons cannot be chained — join them with "and", '
                        "e.g. a < b and b < c",
                        following.position,
                    )
            elif token.text in _ARITHMETIC:
                arithmetic, power = _ARITHMETIC[token.text]
                if power <= min_power:
                    return left, depth
                self._next()
                right, right_depth = self._expression(power)
                left, depth = Arithmetic(arithmetic, left, right), 1 + max(depth, right_depth)
            else:
                return left, depth
            if depth > MAX_DEPTH:
                raise ConditionError(_TOO_DEEP, token.position)

    def _comparison_operator(self) -> CompareOp:
        token = self._next()
        if token.text != "not":
            return _COMPARISONS[token.text]
        if self._peek().is_symbol("in"):
            self._next()
            return CompareOp.NOT_IN
        raise ConditionError(
            'unexpected "not" — expected an operator (did you mean "not in"?)', token.position
        )

    def _prefix(self, min_power: int) -> _Parsed:
        token = self._next()
        if token.kind is Kind.NUMBER or token.kind is Kind.STRING:
            return Literal(token.value), 0
        if token.kind is Kind.NAME:
            if self._peek().is_symbol("("):
                return self._call(token)
            return Name(tuple(token.text.split("."))), 0
        if token.kind is Kind.SYMBOL and token.text in _CONSTANTS:
            return Literal(_CONSTANTS[token.text]), 0
        if token.is_symbol("("):
            with self._nested(token):
                inner = self._expression(0)
                self._close(")", token, 'an operator or ")"')
            return inner
        if token.is_symbol("["):
            return self._list(token)
        if token.is_symbol("-"):
            number = self._peek()
            if number.kind is Kind.NUMBER and isinstance(number.value, int | float):
                self._next()
                return Literal(-number.value), 0
            with self._nested(token):
                operand, depth = self._expression(_NEGATE)
            return Unary(UnaryOp.NEG, operand), depth + 1
        if token.is_symbol("not"):
            if min_power > _NOT:
                raise ConditionError(
                    'unexpected "not" — write it before the whole comparison, '
                    "e.g. not (a == b), or use parentheses",
                    token.position,
                )
            with self._nested(token):
                operand, depth = self._expression(_NOT)
            return Unary(UnaryOp.NOT, operand), depth + 1
        if token.kind is Kind.END:
            raise ConditionError("unexpected end of condition — expected a value", token.position)
        raise _unexpected(token, "a value")

    def _list(self, opener: Token) -> _Parsed:
        items: list[Node] = []
        depth = 0
        with self._nested(opener):
            while not self._peek().is_symbol("]"):
                if len(items) == MAX_LIST_ITEMS:
                    raise ConditionError(
                        f"a list can hold at most {MAX_LIST_ITEMS:,} items", self._peek().position
                    )
                item, item_depth = self._expression(0)
                items.append(item)
                depth = max(depth, item_depth)
                if not self._peek().is_symbol(","):
                    break
                self._next()
            self._close("]", opener, '"," or "]"')
        return ListLiteral(tuple(items)), depth + 1

    def _call(self, name: Token) -> _Parsed:
        function = FUNCTIONS.get(name.text)
        if function is None:
            raise ConditionError(_unknown_function(name.text), name.position)
        opener = self._next()
        args: list[Node] = []
        first_position = self._peek().position
        depth = 0
        with self._nested(opener):
            while not self._peek().is_symbol(")"):
                arg, arg_depth = self._expression(0)
                args.append(arg)
                depth = max(depth, arg_depth)
                if not self._peek().is_symbol(","):
                    break
                self._next()
            self._close(")", opener, '"," or ")"')
        if len(args) != function.arity:
            plural = "" if function.arity == 1 else "s"
            raise ConditionError(
                f"{name.text}() takes {function.arity} argument{plural} ({len(args)} given)",
                name.position,
            )
        if function.check_literal is not None and isinstance(args[0], Literal):
            problem = function.check_literal(args[0].value)
            if problem is not None:
                raise ConditionError(problem, first_position)
        return Call(name.text, tuple(args)), depth + 1


def _logical(op: LogicOp, left: _Parsed, right: _Parsed) -> _Parsed:
    """Join two operands, flattening ``(a or b) or c`` into one node of three."""
    operands: list[Node] = []
    depth = 0
    for node, node_depth in (left, right):
        if isinstance(node, Logical) and node.op is op:
            operands.extend(node.operands)
            depth = max(depth, node_depth - 1)
        else:
            operands.append(node)
            depth = max(depth, node_depth)
    return Logical(op, tuple(operands)), depth + 1


def _unexpected(token: Token, expected: str) -> ConditionError:
    return ConditionError(f"unexpected {token.describe()} — expected {expected}", token.position)


def _unknown_function(name: str) -> str:
    close = difflib.get_close_matches(name, FUNCTIONS, n=1)
    if close:
        return f'unknown function "{name}" — did you mean "{close[0]}"?'
    return f'unknown function "{name}" — available: {", ".join(sorted(FUNCTIONS))}'
