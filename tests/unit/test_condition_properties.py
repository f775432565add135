"""Property tests: random conditions parse to the tree they were built from, random data never
breaks evaluation, and no text whatever makes the parser fail other than with ConditionError,
or take long.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kaskad.domain.conditions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    Arithmetic,
    ArithOp,
    Call,
    Compare,
    CompareOp,
    ConditionError,
    ListLiteral,
    Literal,
    Logical,
    LogicOp,
    Name,
    Node,
    Unary,
    UnaryOp,
    parse,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# A small pool of segments, so that random names often meet random data. "in" and "not" are
# keywords: fine after a dot, never first.
SEGMENTS = ["payload", "contact", "amount", "region", "tags", "x", "in", "not"]
FIRST_SEGMENTS = [s for s in SEGMENTS if s not in ("in", "not")]
# Generous: parsing 2,000 characters takes milliseconds, but the machine may be busy.
QUICK = timedelta(seconds=2)


@dataclass(frozen=True)
class Generated:
    """Condition text with the tree it must parse to, and how deep it nests."""

    text: str
    node: Node
    frames: int  # brackets, calls and prefix operators around the deepest leaf
    depth: int  # depth of the tree; a leaf is 0
    names: frozenset[str] = frozenset()


def _leaf(text: str, value: Any) -> Generated:
    return Generated(text, Literal(value), 0, 0)


def _quote(text: str, quote: str) -> str:
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return quote + escaped + quote


integers = st.integers(0, 10**12).map(lambda i: _leaf(str(i), i))
negatives = st.integers(1, 10**6).map(lambda i: _leaf(f"-{i}", -i))
decimals = st.tuples(st.integers(0, 10**6), st.integers(0, 999)).map(
    lambda p: _leaf(f"{p[0]}.{p[1]:03d}", float(f"{p[0]}.{p[1]:03d}"))
)
strings = st.tuples(st.text(max_size=12), st.sampled_from(["'", '"'])).map(
    lambda p: _leaf(_quote(p[0], p[1]), p[0])
)
constants = st.sampled_from([("true", True), ("false", False), ("null", None)]).map(
    lambda p: _leaf(*p)
)
names = st.tuples(
    st.sampled_from(FIRST_SEGMENTS), st.lists(st.sampled_from(SEGMENTS), max_size=2)
).map(
    lambda p: Generated(
        ".".join([p[0], *p[1]]), Name((p[0], *p[1])), 0, 0, frozenset({".".join([p[0], *p[1]])})
    )
)
leaves = st.one_of(integers, negatives, decimals, strings, constants, names)


def _union(*parts: Generated) -> frozenset[str]:
    return frozenset().union(*(p.names for p in parts))


def _logical(op: LogicOp, left: Generated, right: Generated) -> Generated:
    operands: list[Node] = []
    depth = 0
    for part in (left, right):
        if isinstance(part.node, Logical) and part.node.op is op:
            operands.extend(part.node.operands)
            depth = max(depth, part.depth - 1)
        else:
            operands.append(part.node)
            depth = max(depth, part.depth)
    return Generated(
        f"({left.text} {op.value} {right.text})",
        Logical(op, tuple(operands)),
        1 + max(left.frames, right.frames),
        1 + depth,
        _union(left, right),
    )


def _binary(op: str, left: Generated, right: Generated) -> Generated:
    node: Node
    if op in {o.value for o in CompareOp}:
        node = Compare(CompareOp(op), left.node, right.node)
    else:
        node = Arithmetic(ArithOp(op), left.node, right.node)
    return Generated(
        f"({left.text} {op} {right.text})",
        node,
        1 + max(left.frames, right.frames),
        1 + max(left.depth, right.depth),
        _union(left, right),
    )


def _negate(part: Generated) -> Generated:
    literal = part.node
    if isinstance(literal, Literal) and part.text[0].isdigit():  # "-5" is one literal
        assert isinstance(literal.value, int | float)
        return Generated(f"(-{part.text})", Literal(-literal.value), 1, 0)
    return Generated(
        f"(-{part.text})",
        Unary(UnaryOp.NEG, part.node),
        2 + part.frames,
        1 + part.depth,
        part.names,
    )


def _not(part: Generated) -> Generated:
    node = Unary(UnaryOp.NOT, part.node)
    return Generated(f"(not {part.text})", node, 2 + part.frames, 1 + part.depth, part.names)


def _list(items: list[Generated]) -> Generated:
    return Generated(
        "[" + ", ".join(i.text for i in items) + "]",
        ListLiteral(tuple(i.node for i in items)),
        1 + max((i.frames for i in items), default=0),
        1 + max((i.depth for i in items), default=0),
        _union(*items),
    )


def _call(name: str, args: list[Generated]) -> Generated:
    return Generated(
        f"{name}(" + ", ".join(a.text for a in args) + ")",
        Call(name, tuple(a.node for a in args)),
        1 + max(a.frames for a in args),
        1 + max(a.depth for a in args),
        _union(*args),
    )


def _calls(children: st.SearchStrategy[Generated]) -> st.SearchStrategy[Generated]:
    def one(name: str) -> st.SearchStrategy[Generated]:
        function = FUNCTIONS[name]
        args = st.lists(children, min_size=function.arity, max_size=function.arity)
        if function.check_literal is not None:  # literal dates and durations are checked
            args = args.filter(lambda a: not isinstance(a[0].node, Literal))
        return args.map(lambda a: _call(name, a))

    return st.sampled_from(sorted(FUNCTIONS)).flatmap(one)


def _extend(children: st.SearchStrategy[Generated]) -> st.SearchStrategy[Generated]:
    pairs = st.tuples(children, children)
    return st.one_of(
        st.tuples(st.sampled_from(list(LogicOp)), pairs).map(lambda p: _logical(p[0], *p[1])),
        st.tuples(st.sampled_from([o.value for o in CompareOp]), pairs).map(
            lambda p: _binary(p[0], *p[1])
        ),
        st.tuples(st.sampled_from([o.value for o in ArithOp]), pairs).map(
            lambda p: _binary(p[0], *p[1])
        ),
        children.map(_not),
        children.map(_negate),
        st.lists(children, max_size=4).map(_list),
        _calls(children),
    )


conditions = st.recursive(leaves, _extend, max_leaves=20).filter(
    lambda g: g.frames <= MAX_DEPTH and g.depth <= MAX_DEPTH and len(g.text) <= MAX_LENGTH
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["2026-11-23", "2026-11-23T10:00:00Z", "2026-11-23T10:00:00+02:00"]),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
    st.dates(),
)
data = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(SEGMENTS), inner, max_size=3)
    ),
    max_leaves=12,
)
scopes = st.dictionaries(st.sampled_from(SEGMENTS), data, max_size=4)

SETTINGS = settings(max_examples=300, deadline=QUICK, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(conditions)
def test_well_formed_conditions_parse_to_the_tree_they_were_built_from(g: Generated) -> None:
    condition = parse(g.text)
    assert condition.root == g.node
    assert condition.names() == g.names
    assert condition.source == g.text


@SETTINGS
@given(conditions, scopes)
def test_evaluation_never_fails_on_data(g: Generated, scope: Mapping[str, Any]) -> None:
    result = parse(g.text).evaluate(scope, now=NOW)
    assert result is True or result is False


@SETTINGS
@given(conditions, conditions, scopes)
def test_logic_follows_the_operands(
    first: Generated, second: Generated, scope: Mapping[str, Any]
) -> None:
    assume(max(first.frames, first.depth, second.frames, second.depth) < MAX_DEPTH)
    assume(len(first.text) + len(second.text) + 5 <= MAX_LENGTH)
    a = parse(first.text).evaluate(scope, now=NOW)
    b = parse(second.text).evaluate(scope, now=NOW)
    assert parse(f"not {first.text}").evaluate(scope, now=NOW) is (not a)
    assert parse(f"{first.text} and {second.text}").evaluate(scope, now=NOW) is (a and b)
    assert parse(f"{first.text} or {second.text}").evaluate(scope, now=NOW) is (a or b)


@SETTINGS
@given(conditions, scopes)
def test_a_comparison_with_null_is_false_unless_it_asks_about_null(
    g: Generated, scope: Mapping[str, Any]
) -> None:
    scope = {**scope, "x": None}
    for op in ("<", "<=", ">", ">=", "in", "not in"):
        assert parse(f"x {op} {g.text}").evaluate(scope, now=NOW) is False
        assert parse(f"{g.text} {op} x").evaluate(scope, now=NOW) is False
    assert parse(f"x == {g.text}").evaluate(scope, now=NOW) is False or g.node == Literal(None)


def _check_only_condition_errors(text: str) -> None:
    started = time.perf_counter()
    error: ConditionError | None = None
    try:
        condition = parse(text)
    except ConditionError as caught:
        error = caught
    else:
        assert condition.source == text
        assert condition.evaluate({}, now=NOW) in (True, False)
    assert time.perf_counter() - started < QUICK.total_seconds()
    if error is not None:
        assert 0 <= error.position <= len(text)
        assert error.message
        assert str(error) == f"{error.message} (at column {error.position + 1})"


PIECES = [
    *("and", "or", "not", "in", "true", "false", "null", "None", "AND"),
    *("==", "!=", "<", "<=", ">", ">=", "=", "!", "&&", "<>", "+", "-", "*", "/", "%"),
    *("(", ")", "[", "]", ",", ".", '"', "'", "\\", "\\u", "“"),
    *("1", "12.5", "1e3", "3d", "x", "payload.amount", "contact.", "_a"),
    *("exists(", "lower(", "len(", "date(", "days_since(", "duration(", "foo(", '"2d"'),
    *(" ", "\n", "\t", "\x00", "é", "к", "{"),
]


@settings(max_examples=500, deadline=QUICK)
@given(st.text(max_size=MAX_LENGTH + 10))
def test_any_text_parses_or_raises_condition_error(text: str) -> None:
    _check_only_condition_errors(text)


@settings(max_examples=1000, deadline=QUICK)
@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_any_token_soup_parses_or_raises_condition_error(text: str) -> None:
    _check_only_condition_errors(text)


@settings(max_examples=300, deadline=QUICK)
@given(conditions, st.data())
def test_damaged_conditions_parse_or_raise_condition_error(
    g: Generated, draw: st.DataObject
) -> None:
    at = draw.draw(st.integers(0, len(g.text)))
    cut = draw.draw(st.integers(0, 3))
    insert = draw.draw(st.sampled_from(["", *PIECES]))
    damaged = g.text[:at] + insert + g.text[at + cut :]
    assume(damaged != g.text)
    _check_only_condition_errors(damaged)


WORST_CASES = {
    "open parentheses": "(" * MAX_LENGTH,
    "open brackets": "[" * MAX_LENGTH,
    "nots": "not " * (MAX_LENGTH // 4),
    "minuses": "-" * MAX_LENGTH,
    "calls": "len(" * (MAX_LENGTH // 4),
    "long sum": "+".join(["1"] * (MAX_LENGTH // 2)),
    "long or": " or ".join(["x"] * (MAX_LENGTH // 5)),
    "long and": "and".join(["(x)"] * (MAX_LENGTH // 6)),
    "big list": "[" + ",".join(["1"] * 999) + "]",
    "nested lists at the limit": "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH,
    "big number": "9" * MAX_LENGTH,
    "big decimal": "9" * (MAX_LENGTH - 2) + ".9",
    "long string": '"' + "a" * (MAX_LENGTH - 2) + '"',
    "unterminated string": '"' + "\\\\" * (MAX_LENGTH // 2 - 1),
    "long name": "a" + ".a" * (MAX_LENGTH // 2 - 1),
    "escapes": '"' + "\\u0041" * ((MAX_LENGTH - 2) // 6) + '"',
    "spaces": " " * MAX_LENGTH,
    "chained comparisons": "<".join(["1"] * (MAX_LENGTH // 2)),
    "deep arithmetic in parentheses": "(" * 31 + "1" + "+1)" * 31,
}


@pytest.mark.parametrize("text", WORST_CASES.values(), ids=WORST_CASES.keys())
def test_worst_cases_are_quick(text: str) -> None:
    assert len(text) <= MAX_LENGTH
    _check_only_condition_errors(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("x == " + "9" * (MAX_LENGTH - 5), False),
        ("9" * (MAX_LENGTH - 10) + " * 9 > 0", True),
        ("x == " + "9" * 300 + ".9", False),
        ("x * " + "9" * 300 + " > 1" + "0" * 300, True),
        ("x * " + "9" * 400 + " == null", True),  # the product does not fit a float
    ],
)
def test_big_numbers_stay_numbers(text: str, value: bool) -> None:
    assert parse(text).evaluate({"x": 1.5}) is value


def test_decimals_beyond_floating_point_are_refused() -> None:
    with pytest.raises(ConditionError, match="too large a number") as caught:
        parse("x == " + "9" * 400 + ".9")
    assert caught.value.position == 5
