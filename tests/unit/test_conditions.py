"""The condition language: grammar, precedence, null and type rules, functions, errors, limits."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest

from kaskad.domain.conditions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_LIST_ITEMS,
    Arithmetic,
    ArithOp,
    Call,
    Compare,
    CompareOp,
    Condition,
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
    parser,
    walk,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def n(dotted: str) -> Name:
    return Name(tuple(dotted.split(".")))


def lit(value: Any) -> Literal:
    return Literal(value)


def cmp(op: str, left: Node, right: Node) -> Compare:
    return Compare(CompareOp(op), left, right)


def ar(op: str, left: Node, right: Node) -> Arithmetic:
    return Arithmetic(ArithOp(op), left, right)


def both(op: str, *operands: Node) -> Logical:
    return Logical(LogicOp(op), operands)


def holds(source: str, scope: Mapping[str, Any] | None = None) -> bool:
    return parse(source).evaluate(scope or {}, now=NOW)


# --- The tree: literals, names and precedence -------------------------------------------------


@pytest.mark.parametrize(
    ("source", "root"),
    [
        ("1000", lit(1000)),
        ("12.5", lit(12.5)),
        ("-3", lit(-3)),
        ("- 3.5", lit(-3.5)),
        ("007", lit(7)),
        ('"Kyiv"', lit("Kyiv")),
        ("'Kyiv'", lit("Kyiv")),
        ('"it\'s"', lit("it's")),
        ("'say \"hi\"'", lit('say "hi"')),
        (r'"a\"b"', lit('a"b')),
        (r"'a\'b'", lit("a'b")),
        (r'"back\\slash"', lit("back\\slash")),
        (r'"line\nbreak\ttab\rreturn"', lit("line\nbreak\ttab\rreturn")),
        (r'"\u0410\u00e9"', lit("Аé")),
        ('""', lit("")),
        ('"two\nlines"', lit("two\nlines")),
        ("true", lit(True)),
        ("false", lit(False)),
        ("null", lit(None)),
        ("[]", ListLiteral(())),
        ('[1, 2, "a"]', ListLiteral((lit(1), lit(2), lit("a")))),
        ("[1, 2,]", ListLiteral((lit(1), lit(2)))),
        ("[[1], [null]]", ListLiteral((ListLiteral((lit(1),)), ListLiteral((lit(None),))))),
        ("[contact.region, 'x']", ListLiteral((n("contact.region"), lit("x")))),
        ("payload", n("payload")),
        ("payload.amount", n("payload.amount")),
        ("steps.viber_offer.clicked", n("steps.viber_offer.clicked")),
        ("_x.A_1.b2", n("_x.A_1.b2")),
        ("payload.in.not", n("payload.in.not")),  # keywords are fine after the first segment
        ("len", n("len")),  # a function name without a call is just a name
        ("exists(x)", Call("exists", (n("x"),))),
        ("starts_with(a, 'b')", Call("starts_with", (n("a"), lit("b")))),
        ('duration("2d")', Call("duration", (lit("2d"),))),
        ("-x", Unary(UnaryOp.NEG, n("x"))),
        ("-(3)", Unary(UnaryOp.NEG, lit(3))),
        ("- -3", Unary(UnaryOp.NEG, lit(-3))),
        ("not x", Unary(UnaryOp.NOT, n("x"))),
        ("not not x", Unary(UnaryOp.NOT, Unary(UnaryOp.NOT, n("x")))),
        ("  a\n\tor\r\n b  ", both("or", n("a"), n("b"))),
        ("a\u00a0and b", both("and", n("a"), n("b"))),  # a pasted non-breaking space
        ("a==1", cmp("==", n("a"), lit(1))),
        ("a>=-1", cmp(">=", n("a"), lit(-1))),
        ("a-1", ar("-", n("a"), lit(1))),
    ],
    ids=repr,
)
def test_parses_to_the_tree(source: str, root: Node) -> None:
    condition = parse(source)
    assert condition.root == root
    assert condition.source == source


@pytest.mark.parametrize(
    ("source", "root"),
    [
        # or < and
        ("a or b and c", both("or", n("a"), both("and", n("b"), n("c")))),
        ("a and b or c", both("or", both("and", n("a"), n("b")), n("c"))),
        ("(a or b) and c", both("and", both("or", n("a"), n("b")), n("c"))),
        # and/or keep all their operands in one node
        ("a or b or c", both("or", n("a"), n("b"), n("c"))),
        ("a and b and c and d", both("and", n("a"), n("b"), n("c"), n("d"))),
        ("(a or b) or (c or d)", both("or", n("a"), n("b"), n("c"), n("d"))),
        ("a and (b or c) and d", both("and", n("a"), both("or", n("b"), n("c")), n("d"))),
        # and < not
        ("not a and b", both("and", Unary(UnaryOp.NOT, n("a")), n("b"))),
        ("a and not b", both("and", n("a"), Unary(UnaryOp.NOT, n("b")))),
        ("not (a and b)", Unary(UnaryOp.NOT, both("and", n("a"), n("b")))),
        # not < comparison
        ("not a == 1", Unary(UnaryOp.NOT, cmp("==", n("a"), lit(1)))),
        ("not a in [1]", Unary(UnaryOp.NOT, cmp("in", n("a"), ListLiteral((lit(1),))))),
        # comparison < + -
        ("a + 1 == b - 2", cmp("==", ar("+", n("a"), lit(1)), ar("-", n("b"), lit(2)))),
        ("a + 1 in b", cmp("in", ar("+", n("a"), lit(1)), n("b"))),
        ("a not in b", cmp("not in", n("a"), n("b"))),
        # + - < * / %
        ("1 + 2 * 3", ar("+", lit(1), ar("*", lit(2), lit(3)))),
        ("1 * 2 + 3", ar("+", ar("*", lit(1), lit(2)), lit(3))),
        ("a % 2 - b / 4", ar("-", ar("%", n("a"), lit(2)), ar("/", n("b"), lit(4)))),
        ("(1 + 2) * 3", ar("*", ar("+", lit(1), lit(2)), lit(3))),
        # left associative
        ("10 - 4 - 3", ar("-", ar("-", lit(10), lit(4)), lit(3))),
        ("12 / 3 / 2", ar("/", ar("/", lit(12), lit(3)), lit(2))),
        ("8 % 5 * 3", ar("*", ar("%", lit(8), lit(5)), lit(3))),
        # * < unary minus
        ("-a * b", ar("*", Unary(UnaryOp.NEG, n("a")), n("b"))),
        ("a * -b", ar("*", n("a"), Unary(UnaryOp.NEG, n("b")))),
        ("2 - -1", ar("-", lit(2), lit(-1))),
        # a comparison in parentheses may be compared again
        ("(a < b) == true", cmp("==", cmp("<", n("a"), n("b")), lit(True))),
        # calls and lists take whole expressions
        (
            "len([a + 1, not b]) > 1",
            cmp(
                ">",
                Call("len", (ListLiteral((ar("+", n("a"), lit(1)), Unary(UnaryOp.NOT, n("b")))),)),
                lit(1),
            ),
        ),
    ],
    ids=repr,
)
def test_precedence(source: str, root: Node) -> None:
    assert parse(source).root == root


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">=", "in", "not in"])
def test_every_comparison_operator_parses(op: str) -> None:
    assert parse(f"a {op} b").root == cmp(op, n("a"), n("b"))


# --- Evaluation -------------------------------------------------------------------------------

SCOPE: Mapping[str, Any] = {
    "payload": {"amount": 1500, "currency": "UAH", "fee": 12.5, "tags": ["vip", "new"]},
    "contact": {
        "region": "Kyiv",
        "age": 34,
        "locale": "uk",
        "vip": True,
        "score": 0,
        "nickname": "",
        "cards": [],
        "limits": {"daily": 1000},
        "last_login": "2026-10-01T09:30:00Z",
        "birthday": "1990-11-23",
    },
    "steps": {"viber_offer": {"status": "delivered", "seen": True, "clicked": False}},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # comparisons of numbers
        ("payload.amount == 1500", True),
        ("payload.amount == 1500.0", True),
        ("payload.amount != 1500", False),
        ("payload.amount != 1000", True),
        ("payload.amount > 1000", True),
        ("payload.amount > 1500", False),
        ("payload.amount >= 1500", True),
        ("payload.amount < 1500", False),
        ("payload.amount <= 1500", True),
        ("payload.amount < 2000", True),
        ("payload.fee == 12.5", True),
        ("-payload.fee == -12.5", True),
        # comparisons of text: exact, case-sensitive, ordered as text
        ('contact.region == "Kyiv"', True),
        ('contact.region == "kyiv"', False),
        ('contact.region != "Lviv"', True),
        ('"apple" < "banana"', True),
        ('"10" < "9"', True),  # text order, not number order
        ('contact.last_login > "2026-09-30"', True),  # ISO texts compare as text
        # comparisons of lists and booleans
        ("[1, 2] == [1, 2]", True),
        ("[1, 2] == [2, 1]", False),
        ("[1, [2, null]] == [1, [2, null]]", True),
        ("[1, 2] != [1]", True),
        ("contact.vip == true", True),
        ("steps.viber_offer.clicked == false", True),
        ("true != false", True),
        ("contact.limits == contact.limits", True),
        # in and not in: lists, substrings, mapping keys
        ('contact.region in ["Kyiv", "Lviv"]', True),
        ('contact.region in ["Odesa", "Lviv"]', False),
        ('contact.region not in ["Odesa", "Lviv"]', True),
        ('contact.region not in ["Kyiv"]', False),
        ('"vip" in payload.tags', True),
        ('"gold" not in payload.tags', True),
        ("1500 in [1000, 1500.0]", True),
        ('"yi" in contact.region', True),
        ('"Yi" in contact.region', False),
        ('"Lv" not in contact.region', True),
        ('"daily" in contact.limits', True),
        ('"weekly" not in contact.limits', True),
        ("[1] in [[1], [2]]", True),
        ("1 not in []", True),
        # arithmetic
        ("1 + 2 == 3", True),
        ("10 - 4 - 3 == 3", True),
        ("2 * 3 + 1 == 7", True),
        ("2 * (3 + 1) == 8", True),
        ("7 / 2 == 3.5", True),
        ("6 / 3 == 2", True),
        ("7 % 3 == 1", True),
        ("-7 % 3 == 2", True),  # the remainder has the sign of the divisor
        ("-2 * -3 == 6", True),
        ("payload.amount * 2 > 2999", True),
        ("payload.amount - payload.fee == 1487.5", True),
        ("0.1 + 0.2 > 0.3", True),  # decimals are binary floating point, as in JSON
        ("0.1 + 0.2 == 0.3", False),
        # and / or / not over truthiness
        ("true and true", True),
        ("true and false", False),
        ("false or true", True),
        ("false or false", False),
        ("not false", True),
        ("not true", False),
        ("not not contact.vip", True),
        ("contact.vip and payload.amount", True),
        ("contact.score or contact.nickname or contact.cards", False),
        ("not contact.score and not contact.nickname and not contact.cards", True),
        ("not contact.limits", False),
        ('"x" and 1 and 0.5 and [0]', True),
        ("payload.amount > 1000 and contact.age >= 21 or false", True),
        ("false and true or true", True),  # (false and true) or true
        ("false and (true or true)", False),
        ("not payload.amount == 1", True),  # not (amount == 1)
        ("steps.viber_offer.seen and not steps.viber_offer.clicked", True),
        ('steps.viber_offer.status in ["delivered", "seen", "clicked"]', True),
        # bare values are judged by truthiness
        ("payload.amount", True),
        ("contact.score", False),
        ("contact.nickname", False),
        ("contact.cards", False),
        ("payload.tags", True),
        ("missing", False),
        ("0", False),
        ("0.0", False),
        ('""', False),
        ("[]", False),
        ("[null]", True),
        ("null", False),
    ],
    ids=repr,
)
def test_evaluates(source: str, expected: bool) -> None:
    assert holds(source, SCOPE) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # a missing name anywhere along the path is null, never an error
        ("missing == null", True),
        ("payload.missing == null", True),
        ("payload.amount.deeper == null", True),  # a number has no keys
        ("payload.tags.first == null", True),  # nor does a list
        ("contact.region.length == null", True),  # nor does a text
        ("nothing.at.all.here == null", True),
        ("payload.amount == null", False),
        ("payload.amount != null", True),
        ("missing != null", False),
        ("null == null", True),
        ("null != null", False),
        ("null == missing", True),
        ("null != payload.amount", True),
        ("exists(payload.amount)", True),
        ("exists(payload.missing)", False),
        ("not exists(payload.missing)", True),
        # any other comparison with null is false, both ways round
        ("payload.missing == 0", False),
        ("payload.missing != 0", False),
        ("payload.missing < 1000", False),
        ("payload.missing <= 1000", False),
        ("payload.missing > 1000", False),
        ("payload.missing >= 1000", False),
        ("1000 > payload.missing", False),
        ("payload.missing == payload.other", False),  # two unknowns are not equal
        ('payload.missing == ""', False),
        ("payload.missing == false", False),
        ('payload.missing in ["a"]', False),
        ('payload.missing not in ["a"]', False),
        ('"a" in payload.missing', False),
        ('"a" not in payload.missing', False),
        ("null in [null]", False),
        # so arithmetic on null is null, and its comparisons are false
        ("payload.missing + 1 == null", True),
        ("payload.missing + 1 > 0", False),
        ("-payload.missing == null", True),
        # not of a false comparison is true: null comparisons are false, not unknown
        ("not payload.missing > 1000", True),
        ("payload.missing < 1000 or payload.missing >= 1000", False),
    ],
    ids=repr,
)
def test_null_rules(source: str, expected: bool) -> None:
    assert holds(source, SCOPE) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # no conversion between types: a mismatch is false, both for == and for !=
        ('payload.amount == "1500"', False),
        ('payload.amount != "1500"', False),
        ('payload.amount > "1000"', False),
        ('payload.amount <= "1000"', False),
        ('"b" > 1', False),
        ("true == 1", False),
        ("false == 0", False),
        ("true != 1", False),
        ("1 == true", False),
        ("true > false", False),  # booleans have no order
        ("true < 2", False),
        ("[1] < [2]", False),  # nor do lists
        ('[1] == "[1]"', False),
        ("[1] == [true]", False),  # not inside lists either
        ("true in [1, 2]", False),
        ("1 in [true]", False),
        ('1 in ["1"]', False),
        ('1 not in ["1"]', True),  # a list gives a plain answer for any item
        ("1 in 12", False),  # a number is not a container
        ("1 not in 12", False),
        ('1 in "123"', False),  # only text is found in text
        ('1 not in "123"', False),
        ("1 in contact.limits", False),  # mapping keys are texts
        ('date("2026-01-01") == "2026-01-01"', False),
        ('date("2026-01-01") > "2025-01-01"', False),
        ('date("2026-01-01") > 5', False),
        ("contact.limits > contact.limits", False),
        # arithmetic on non-numbers is null
        ('"a" + "b" == null', True),
        ('"a" + "b" == "ab"', False),
        ('"1" + 1 == null', True),
        ("true + 1 == null", True),
        ("[1] + [2] == null", True),
        ("-true == null", True),
        ('-"a" == null', True),
        ('date("2026-01-02") - date("2026-01-01") == null', True),
        # division by zero is null
        ("1 / 0 == null", True),
        ("1 % 0 == null", True),
        ("1.5 / 0 == null", True),
        ("1 / 0 > 0", False),
        ("1 / 0 != 0", False),
    ],
    ids=repr,
)
def test_type_mismatch_is_false_never_an_error(source: str, expected: bool) -> None:
    assert holds(source, SCOPE) is expected


def test_names_never_reach_attributes() -> None:
    scope = {
        "payload": SimpleNamespace(amount=5, __class__=None),
        "contact": MappingProxyType({"region": "Kyiv"}),
        "event": "text",
    }
    assert holds("payload.amount == null", scope)
    assert holds("not exists(payload.amount)", scope)
    assert holds("event.upper == null", scope)
    assert holds("exists(payload)", scope)
    assert holds('contact.region == "Kyiv"', scope)  # any Mapping will do


@pytest.mark.parametrize("source", ['__import__("os")', "eval('1')", "open('x')", "getattr(a, b)"])
def test_python_functions_are_out_of_reach(source: str) -> None:
    with pytest.raises(ConditionError, match="unknown function"):
        parse(source)


@pytest.mark.parametrize(
    "source", ["payload.__class__", "payload.__dict__", "payload.amount.__class__.__mro__"]
)
def test_dunder_names_are_just_missing_keys(source: str) -> None:
    condition = parse(source + " == null")
    assert condition.evaluate({"payload": {"amount": 1}}) is True


class Status(StrEnum):
    DELIVERED = "delivered"


@pytest.mark.parametrize(
    ("source", "scope", "expected"),
    [
        ("x == 0.1", {"x": Decimal("0.1")}, True),  # Decimal meets a JSON float
        ("x + 0.5 == 1", {"x": Decimal("0.5")}, True),
        ("x > 1", {"x": Decimal("NaN")}, False),
        ("x == 1", {"x": Decimal("sNaN")}, False),
        ("x", {"x": Decimal("sNaN")}, True),
        ("x", {"x": Decimal("0.00")}, False),
        ("x + 1 == null", {"x": Decimal("sNaN")}, True),
        ("x == x", {"x": float("nan")}, False),
        ("x > 1", {"x": float("inf")}, True),
        ("x - x == null", {"x": float("inf")}, True),  # not-a-number results are null
        ("x * 2 == null", {"x": 1e308}, True),  # so are results too large to hold
        ("x / 1 == null", {"x": 10**400}, True),
        ('x == "delivered"', {"x": Status.DELIVERED}, True),
        ('x in ["delivered"]', {"x": Status.DELIVERED}, True),
        ("x == [1, 2]", {"x": (1, 2)}, True),  # tuples are lists
        ('"a" in x', {"x": ("a",)}, True),
        ('x == date("2026-11-23")', {"x": date(2026, 11, 23)}, True),
        ('x == date("2026-11-23T10:00:00Z")', {"x": datetime(2026, 11, 23, 10)}, True),
        ('x < date("2026-11-23T10:00:00+02:00")', {"x": datetime(2026, 11, 23, 9)}, False),
        ("x > y", {"x": datetime(2026, 1, 2), "y": datetime(2026, 1, 1, tzinfo=UTC)}, True),
        ("x == y", {"x": datetime(2026, 1, 1), "y": date(2026, 1, 1)}, True),
        (
            "x < y",
            {"x": datetime.min.replace(tzinfo=timezone(timedelta(hours=14))), "y": NOW},
            True,
        ),
        ("x == y", {"x": object(), "y": object()}, False),  # opaque values equal nothing
        ("x != y", {"x": object(), "y": object()}, False),
        ("x", {"x": object()}, True),
        ("x", {"x": {}}, False),
    ],
    ids=repr,
)
def test_values_from_python(source: str, scope: Mapping[str, Any], expected: bool) -> None:
    assert holds(source, scope) is expected


# --- Functions --------------------------------------------------------------------------------

CONTACT = {
    "contact": {
        "email": "Olena@Bank.example",
        "phone": "+380501234567",
        "tags": ["vip"],
        "limits": {"daily": 1000},
        "last_login": "2026-10-24T12:00:00Z",
        "signup": "2026-11-22",
        "naive": "2026-11-23T06:00:00",
        "kyiv": "2026-11-23T10:00:00+02:00",
        "seen_at": datetime(2026, 11, 23, 11, 30, tzinfo=UTC),
        "born": date(2026, 11, 21),
        "garbage": "not a date",
        "number": 20261123,
    }
}


FUNCTION_CASES = [
    ("exists(contact.email)", True),
    ("exists(contact.missing)", False),
    ("exists(null)", False),
    ("exists(false)", True),
    ("exists(0)", True),
    ('lower(contact.email) == "olena@bank.example"', True),
    ('upper(contact.email) == "OLENA@BANK.EXAMPLE"', True),
    ('lower("ÀÉ") == "àé"', True),
    ("lower(contact.number) == null", True),
    ("upper(contact.missing) == null", True),
    ("len(contact.email) == 18", True),
    ("len(contact.tags) == 1", True),
    ("len(contact.limits) == 1", True),
    ("len([]) == 0", True),
    ('len("") == 0', True),
    ("len(contact.number) == null", True),
    ("len(contact.missing) == null", True),
    ('starts_with(contact.phone, "+380")', True),
    ('starts_with(contact.phone, "+48")', False),
    ("starts_with(contact.phone, 380)", False),
    ('starts_with(contact.missing, "+")', False),
    ('ends_with(contact.email, "@Bank.example")', True),
    ('ends_with(lower(contact.email), "@bank.example")', True),
    ('ends_with(contact.email, "@other.example")', False),
    ('ends_with(null, "")', False),
    ('contains(contact.tags, "vip")', True),
    ('contains(contact.tags, "gold")', False),
    ('contains(contact.email, "Bank")', True),
    ('contains(contact.limits, "daily")', True),
    ('contains(contact.missing, "x")', False),
    ("contains(contact.email, 1)", False),
    ('not contains(contact.missing, "x")', True),
    ('date(contact.signup) == date("2026-11-22T00:00:00Z")', True),
    ('date(contact.naive) == date("2026-11-23T06:00:00+00:00")', True),  # naive is UTC
    ('date(contact.kyiv) == date("2026-11-23T08:00:00Z")', True),
    ('date(contact.seen_at) > date("2026-11-23")', True),
    ('date(contact.born) < date("2026-11-22")', True),
    ("date(contact.garbage) == null", True),
    ("date(contact.number) == null", True),
    ("date(contact.missing) == null", True),
    ('date("20261123") == date("2026-11-23")', True),
    ("days_since(contact.last_login) == 30", True),
    ("days_since(contact.last_login) > 29.9", True),
    ("days_since(contact.signup) == 1.5", True),
    ("days_since(contact.seen_at) * 24 == 0.5", True),
    ("days_since(contact.born) == 2.5", True),
    ('days_since("2026-11-24") == -0.5', True),  # dates in the future are negative
    ("days_since(contact.garbage) == null", True),
    ("days_since(contact.garbage) > 30", False),
    ("days_since(contact.missing) > 30", False),
    ("hours_since(contact.seen_at) == 0.5", True),
    ("hours_since(contact.naive) == 6", True),
    ("hours_since(contact.kyiv) == 4", True),
    ("hours_since(contact.missing) == null", True),
    ('duration("2d") == 172800', True),
    ('duration("1h30m") == 5400', True),
    ('duration("1.5s") == 1.5', True),
    ("duration(60) == 60", True),
    ('hours_since(contact.seen_at) * 3600 < duration("1h")', True),
    ("duration(contact.missing) == null", True),
    ("duration(contact.garbage) == null", True),
    ("duration(contact.tags) == null", True),
    ("duration(0 - 5) == null", True),
    ("duration(1 == 1) == null", True),
]


@pytest.mark.parametrize(("source", "expected"), FUNCTION_CASES, ids=repr)
def test_functions(source: str, expected: bool) -> None:
    assert holds(source, CONTACT) is expected


def test_every_function_is_tested_and_documented() -> None:
    called = {
        node.function
        for source, _ in FUNCTION_CASES
        for node in walk(parse(source).root)
        if isinstance(node, Call)
    }
    assert called == set(FUNCTIONS)
    for name, function in FUNCTIONS.items():
        assert function.name == name
        assert function.summary


def test_time_functions_need_now() -> None:
    condition = parse("exists(x) and days_since(x) > 1 or hours_since(x) > 1")
    with pytest.raises(ValueError, match=r"days_since\(\), hours_since\(\)") as caught:
        condition.evaluate({})  # even though exists(x) is false and nothing is called
    assert not isinstance(caught.value, ConditionError)
    assert condition.evaluate({"x": "2026-11-20"}, now=NOW) is True


def test_conditions_without_time_functions_need_no_now() -> None:
    assert parse('date(x) > date("2026-01-01")').evaluate({"x": "2026-05-01"}) is True


def test_a_naive_now_is_utc() -> None:
    condition = parse("hours_since(x) == 2")
    assert condition.evaluate({"x": "2026-11-23T10:00:00Z"}, now=datetime(2026, 11, 23, 12))


# --- Errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("", "the condition is empty", 1),
        (" \n ", "the condition is empty", 1),
        ("payload.amount >=", "unexpected end of condition — expected a value", 18),
        ("a and", "unexpected end of condition — expected a value", 6),
        ("and a", 'unexpected "and" — expected a value', 1),
        ("a == 1 and or b", 'unexpected "or" — expected a value', 12),
        ("a == )", 'unexpected ")" — expected a value', 6),
        ("a in not b", 'unexpected "not" — write it before the whole comparison', 6),
        ("a == not b", 'unexpected "not" — write it before the whole comparison', 6),
        ("-not a", 'unexpected "not" — write it before the whole comparison', 2),
        ("not in a", 'unexpected "in" — expected a value', 5),
        ("a 1", "unexpected number 1 — expected an operator or the end of the condition", 3),
        (
            'payload.amount >= 1000 contact.region == "Kyiv"',
            'unexpected "contact.region" — expected an operator or the end of the condition',
            24,
        ),
        ("a 'x'", "unexpected text 'x' — expected an operator or the end of the condition", 3),
        ("a not b", 'unexpected "not" — expected an operator (did you mean "not in"?)', 3),
        ("a == b not c", 'unexpected "not" — expected an operator (did you mean "not in"?)', 8),
        ("a == 1)", 'unexpected ")" — no "(" to close', 7),
        ("a]", 'unexpected "]" — no "[" to close', 2),
        ("(a == 1", 'unexpected end of condition — the "(" at column 1 is never closed', 8),
        ("[1, (2", 'unexpected end of condition — the "(" at column 5 is never closed', 7),
        ("x in [1, 2", 'unexpected end of condition — the "[" at column 6 is never closed', 11),
        ("lower(x", 'unexpected end of condition — the "(" at column 6 is never closed', 8),
        ("(a b)", 'unexpected "b" — expected an operator or ")"', 4),
        ("[1 2]", 'unexpected number 2 — expected "," or "]"', 4),
        ("[1,,2]", 'unexpected "," — expected a value', 4),
        ("[,]", 'unexpected "," — expected a value', 2),
        ("lower(x y)", 'unexpected "y" — expected "," or ")"', 9),
        ("lower(,)", 'unexpected "," — expected a value', 7),
        ("a < b < c", "comparisons cannot be chained", 7),
        ("1 == a == b", "comparisons cannot be chained", 8),
        ("a in b not in c", "comparisons cannot be chained", 8),
        ("a and b < c > d", "comparisons cannot be chained", 13),
        ("a = 1", '"=" is not an operator — use "=="', 3),
        ("a === 1", '"===" is not an operator — use "=="', 3),
        ("a => 1", '"=>" is not an operator — use ">="', 3),
        ("a =< 1", '"=<" is not an operator — use "<="', 3),
        ("a <> 1", '"<>" is not an operator — use "!="', 3),
        ("a && b", '"&&" is not an operator — use "and"', 3),
        ("a || b", '"||" is not an operator — use "or"', 3),
        ("a & b", '"&" is not an operator — use "and"', 3),
        ("a | b", '"|" is not an operator — use "or"', 3),
        ("!a", '"!" is not an operator — use "not" (or "!=" to compare)', 1),
        ("a ** 2", 'unexpected "*" — expected a value', 4),
        ("foo(1)", 'unknown function "foo"', 1),
        ("a and lenght(x) > 1", 'unknown function "lenght" — did you mean "len"?', 7),
        ("contact.lower(x)", 'unknown function "contact.lower"', 1),
        ("exists()", "exists() takes 1 argument (0 given)", 1),
        ("x or lower(a, b)", "lower() takes 1 argument (2 given)", 6),
        ("starts_with(a)", "starts_with() takes 2 arguments (1 given)", 1),
        ('contains(a, "b", "c")', "contains() takes 2 arguments (3 given)", 1),
        ('"abc', 'unterminated string — close it with "', 1),
        ("a == 'abc", "unterminated string — close it with '", 6),
        ("a == 'it\\'", "unterminated string — close it with '", 6),
        ('"abc\\', 'unterminated string — close it with "', 1),
        ('a == "x\\q"', 'unknown escape "\\q" — write "\\\\" for a backslash', 8),
        ('"\\u12"', '"\\u" must be followed by four hex digits', 2),
        ("1e3 > 2", '"1e3" is not a number', 1),
        ("x > 1.", '"1." is not a number', 5),
        ("x > 1.2.3", '"1.2.3" is not a number', 5),
        ("x > 12abc", '"12abc" is not a number', 5),
        ("x > 3d", '"3d" is not a number — write a duration as duration("3d")', 5),
        ("x > 1h30m", '"1h30m" is not a number — write a duration as duration("1h30m")', 5),
        ("x > .5", 'unexpected character "."', 5),
        ("payload.", '"payload." is not a complete name — expected a name after "."', 9),
        ("payload..x", '"payload." is not a complete name — expected a name after "."', 9),
        ("payload.1st", '"payload." is not a complete name', 9),
        ("not.x", '"not" is a keyword and cannot start a name', 1),
        ("null.x == 1", '"null" is a keyword and cannot start a name', 1),
        ("x == True", '"True" must be written in lower case: "true"', 6),
        ("a AND b", '"AND" must be written in lower case: "and"', 3),
        ("x == NULL", '"NULL" must be written in lower case: "null"', 6),
        ("x == None", '"None" is not a value here — write null', 6),
        ("x == “Kyiv”", 'unexpected character "“" — use straight quotes', 6),
        ("x == ‘Kyiv’", 'unexpected character "‘" — use straight quotes', 6),
        ("{{ payload.x }}", 'unexpected character "{" — write names without braces', 1),
        ("місто == 1", 'unexpected character "м" — names use Latin letters', 1),
        ("x == ٣", 'unexpected character "٣" — names use Latin letters', 6),
        ("x @ 1", 'unexpected character "@"', 3),
        ("x\x00", "unexpected character U+0000", 2),
        ('duration("2 dayz")', '"2 dayz" is not a duration', 10),
        ('x > duration("0s")', '"0s" is not a positive duration', 14),
        ('duration("4000d")', '"4000d" is longer than the maximum', 10),
        ("duration(true)", 'duration() takes a text such as "2d"', 10),
        ('date("2026-13-01")', '"2026-13-01" is not a date — use ISO 8601', 6),
        ('days_since("yesterday") > 1', '"yesterday" is not a date', 12),
        ("hours_since(5)", "this is not a date", 13),
    ],
    ids=repr,
)
def test_errors_name_the_problem_and_the_place(source: str, message: str, column: int) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(source)
    error = caught.value
    assert error.message.startswith(message)
    assert error.position == column - 1
    assert str(error) == f"{error.message} (at column {column})"


def test_the_first_error_in_the_text_is_the_one_reported() -> None:
    with pytest.raises(ConditionError) as caught:
        parse('a == and "unterminated')
    assert caught.value.message.startswith('unexpected "and"')


def test_condition_error_is_a_value_error_that_survives_pickling() -> None:
    error = ConditionError('unexpected "and" — expected a value', 4)
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.position, str(copy)) == (
        error.message,
        4,
        'unexpected "and" — expected a value (at column 5)',
    )


def test_only_text_is_a_condition() -> None:
    with pytest.raises(ConditionError, match="must be text, not bool"):
        parse(True)  # type: ignore[arg-type]


# --- Limits -----------------------------------------------------------------------------------


def test_length_limit() -> None:
    longest = "x == " + '"' + "a" * (MAX_LENGTH - 7) + '"'
    assert len(longest) == MAX_LENGTH
    assert parse(longest).evaluate({"x": "a" * (MAX_LENGTH - 7)}) is True
    with pytest.raises(ConditionError, match=r"too long \(2,001 characters; at most 2,000\)") as e:
        parse(longest + " ")
    assert e.value.position == MAX_LENGTH


def _nested(kind: str, levels: int) -> str:
    return {
        "parentheses": "(" * levels + "x" + ")" * levels,
        "lists": "[" * levels + "]" * levels,
        "calls": "lower(" * levels + "x" + ")" * levels,
        "not": "not " * levels + "x",
        "minus": "- " * levels + "x",
        "sum": " + ".join(["1"] * (levels + 1)),
        "product": " * ".join(["x"] * (levels + 1)),
        "mixed": "(not " * (levels // 2) + "x" + ")" * (levels // 2),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("parentheses", True),  # "a"
        ("lists", True),  # [[…[]…]] holds one item
        ("calls", True),  # lower(…("a")…) == "a"
        ("not", True),  # an even number of nots
        ("minus", False),  # -"a" is null
        ("sum", True),  # 33
        ("product", False),  # "a" * "a" is null
        ("mixed", True),
    ],
)
def test_nesting_limit(kind: str, value: bool) -> None:
    deepest = parse(_nested(kind, MAX_DEPTH))
    assert deepest.evaluate({"x": "a"}) is value
    too_deep = _nested(kind, MAX_DEPTH + (2 if kind == "mixed" else 1))
    with pytest.raises(ConditionError, match="nested too deeply") as caught:
        parse(too_deep)
    assert 0 < caught.value.position < len(too_deep)


def test_or_and_and_chains_do_not_count_as_nesting() -> None:
    many = " or ".join(f"x == {i}" for i in range(150))
    assert parse(many).evaluate({"x": 149}) is True


def test_list_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1,000 one-digit items and their commas are just over the length limit, so the list
    # limit is a second fence: raise the first one to reach it.
    monkeypatch.setattr(parser, "MAX_LENGTH", 10 * MAX_LENGTH)
    largest = "[" + ",".join(["1"] * MAX_LIST_ITEMS) + "]"
    condition = parse(f"1 in {largest}")
    assert isinstance(condition.root, Compare)
    assert isinstance(condition.root.right, ListLiteral)
    assert len(condition.root.right.items) == MAX_LIST_ITEMS
    with pytest.raises(ConditionError, match="a list can hold at most 1,000 items") as caught:
        parse("[" + ",".join(["1"] * (MAX_LIST_ITEMS + 1)) + "]")
    assert caught.value.position == 1 + 2 * MAX_LIST_ITEMS


def test_a_list_as_long_as_the_length_limit_allows_parses() -> None:
    largest = "[" + ",".join(["7"] * ((MAX_LENGTH - 1) // 2)) + "]"
    assert len(largest) == MAX_LENGTH - 1
    condition = parse(largest)
    assert isinstance(condition.root, ListLiteral)
    assert len(condition.root.items) == 999
    assert condition.evaluate({}) is True


# --- The Condition value ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "names", "functions"),
    [
        ("true", set(), set()),
        (
            'payload.amount >= 1000 and contact.region == "Kyiv"',
            {"payload.amount", "contact.region"},
            set(),
        ),
        (
            "steps.viber_offer.seen and not steps.viber_offer.clicked",
            {"steps.viber_offer.seen", "steps.viber_offer.clicked"},
            set(),
        ),
        ("days_since(contact.last_login) > 30", {"contact.last_login"}, {"days_since"}),
        ("lower(a) in [b, upper(a), -c.d]", {"a", "b", "c.d"}, {"lower", "upper"}),
        ("event.type == 'payment' or event.type == 'refund'", {"event.type"}, set()),
    ],
)
def test_names_and_functions(source: str, names: set[str], functions: set[str]) -> None:
    condition = parse(source)
    assert condition.names() == frozenset(names)
    assert condition.functions() == frozenset(functions)


def test_conditions_are_frozen_comparable_values() -> None:
    first, second = parse("a == 1"), parse("a == 1")
    assert first == second
    assert hash(first) == hash(second)
    assert first != parse("a==1")  # same tree, different text
    assert first.root == parse("a==1").root
    assert isinstance(first, Condition)
    with pytest.raises(AttributeError):
        first.source = "b == 2"  # type: ignore[misc]


# --- The documentation ------------------------------------------------------------------------

DOCS = Path(__file__).parents[2] / "docs" / "conditions.md"


def _doc_examples() -> list[str]:
    """The conditions of the Examples section: blocks of lines between comments."""
    section = DOCS.read_text(encoding="utf-8").split("## Examples", 1)[1].split("```text", 1)[1]
    examples: list[str] = []
    for line in section.split("```", 1)[0].splitlines():
        if line.startswith("#"):
            if not examples or examples[-1]:  # a comment may take several lines
                examples.append("")
        elif line.strip():
            examples[-1] += line + "\n"
    return examples


def _doc_errors() -> list[tuple[str, ...]]:
    section = DOCS.read_text(encoding="utf-8").split("## Errors", 1)[1].split("##", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [tuple(cell.strip().strip("`") for cell in row.strip("|").split(" | ")) for row in rows]


def test_the_documented_examples_parse() -> None:
    examples = _doc_examples()
    assert len(examples) >= 6
    for example in examples:
        assert parse(example).names()


def test_the_documented_errors_are_the_real_ones() -> None:
    rows = _doc_errors()
    assert len(rows) >= 8
    for source, error in rows:
        with pytest.raises(ConditionError) as caught:
            parse(source)
        assert str(caught.value) == error
