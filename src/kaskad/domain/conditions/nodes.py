"""The syntax tree of a condition: plain frozen values with no behaviour of their own.

The evaluator walks this tree; a compiler to SQL (for segments over many contacts) can walk the
same tree later. That is why operators are string enums with stable values, ``and``/``or`` keep
all their operands in one node (``a or b or c`` maps to one SQL ``OR``), and no node holds a
Python callable: a function call is just its whitelisted name and its arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias


class UnaryOp(StrEnum):
    NOT = "not"
    NEG = "-"


class LogicOp(StrEnum):
    AND = "and"
    OR = "or"


class ArithOp(StrEnum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"


class CompareOp(StrEnum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"


LiteralValue: TypeAlias = bool | int | float | str | None


@dataclass(frozen=True, slots=True)
class Literal:
    """``1000``, ``12.5``, ``"Kyiv"``, ``true``, ``null``; ``-3`` is folded into one literal."""

    value: LiteralValue


@dataclass(frozen=True, slots=True)
class Name:
    """A dotted path such as ``payload.amount``, looked up through nested mappings."""

    path: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    op: UnaryOp
    operand: Node


@dataclass(frozen=True, slots=True)
class Logical:
    """``and``/``or`` over two or more operands; an operand is never a Logical of the same op."""

    op: LogicOp
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Arithmetic:
    op: ArithOp
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call:
    """A call of a whitelisted function; the parser has checked the name and the argument count."""

    function: str
    args: tuple[Node, ...]


Node: TypeAlias = Literal | Name | ListLiteral | Unary | Logical | Arithmetic | Compare | Call


def children(node: Node) -> tuple[Node, ...]:
    match node:
        case Literal() | Name():
            return ()
        case ListLiteral(items):
            return items
        case Unary(_, operand):
            return (operand,)
        case Logical(_, operands):
            return operands
        case Arithmetic(_, left, right) | Compare(_, left, right):
            return (left, right)
        case Call(_, args):
            return args


def walk(root: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children; iterative, so depth never matters."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))
