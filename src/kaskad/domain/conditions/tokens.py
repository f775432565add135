"""The tokenizer: condition text to tokens, with the mistakes people make named in the errors.

Tokens are produced lazily so the first error in the text is the one reported, whether it is
a bad character or bad grammar.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Final

from kaskad.domain.conditions.errors import ConditionError

KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false", "null"})

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]*")
_LOOKS_LIKE_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[smhdw])+", re.IGNORECASE)
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")

# Longest first, so "==" is not read as "=" and "<=" not as "<".
_SYMBOLS: Final = (
    "==",
    "!=",
    "<=",
    ">=",
    "<",
    ">",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    "[",
    "]",
    ",",
)
# Operators from other languages, and what to write instead. Longest first, like _SYMBOLS;
# "!=" and "==" are checked in between, so "!" and "=" only match when they stand alone.
_LONG_MISTAKES: Final = {"===": "==", "=>": ">=", "=<": "<=", "<>": "!=", "&&": "and", "||": "or"}
_SHORT_MISTAKES: Final = {"=": "==", "!": "not", "&": "and", "|": "or"}
_ESCAPES: Final = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}
_CURLY_QUOTES: Final = frozenset("“”„‟‘’‚‛«»")


class Kind(Enum):
    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    SYMBOL = "symbol"  # a keyword, an operator or punctuation: ``text`` says which
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # exactly as written
    position: int
    value: int | float | str | None = None  # numbers and strings only

    def is_symbol(self, *texts: str) -> bool:
        return self.kind is Kind.SYMBOL and self.text in texts

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind is Kind.END:
            return "end of condition"
        shown = self.text if len(self.text) <= 30 else self.text[:29] + "…"
        if self.kind is Kind.NUMBER:
            return f"number {shown}"
        if self.kind is Kind.STRING:
            return f"text {shown}"
        return f'"{shown}"'


def tokenize(text: str) -> Iterator[Token]:
    """Yield the tokens of ``text`` and then one END token; raise ConditionError on bad text."""
    position, length = 0, len(text)
    while position < length:
        char = text[position]
        if char.isspace():
            position += 1
            continue
        if char.isdigit() and char.isascii():
            token = _number(text, position)
        elif char.isascii() and (char.isalpha() or char == "_"):
            token = _word(text, position)
        elif char in "\"'":
            token = _string(text, position)
        else:
            token = _symbol(text, position)
        yield token
        position = token.position + len(token.text)
    yield Token(Kind.END, "", length)


def _number(text: str, start: int) -> Token:
    match = _NUMBER.match(text, start)
    assert match is not None  # the caller saw a digit
    end = match.end()
    tail = _NUMBER_TAIL.match(text, end)
    if tail is not None and tail.end() > end:  # "1e3", "3d", "1.", "1.5.2"
        word = text[start : tail.end()]
        if _LOOKS_LIKE_DURATION.fullmatch(word):
            raise ConditionError(
                f'"{word}" is not a number — write a duration as duration("{word}")', start
            )
        raise ConditionError(f'"{word}" is not a number', start)
    written = match.group()
    try:
        value: int | float = float(written) if "." in written else int(written)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        value = math.inf
    if isinstance(value, float) and not math.isfinite(value):
        shown = written if len(written) <= 20 else written[:19] + "…"
        raise ConditionError(f'"{shown}" is too large a number', start)
    return Token(Kind.NUMBER, written, start, value)


def _word(text: str, start: int) -> Token:
    match = _SEGMENT.match(text, start)
    assert match is not None  # the caller saw a letter or "_"
    end = match.end()
    while end < len(text) and text[end] == ".":
        segment = _SEGMENT.match(text, end + 1)
        if segment is None:
            raise ConditionError(
                f'"{text[start : end + 1]}" is not a complete name — expected a name after "."',
                end + 1,
            )
        end = segment.end()
    word = text[start:end]
    first = match.group()
    if first in KEYWORDS:
        if end > match.end():
            raise ConditionError(f'"{first}" is a keyword and cannot start a name', start)
        return Token(Kind.SYMBOL, word, start)
    if word.lower() in KEYWORDS:
        raise ConditionError(f'"{word}" must be written in lower case: "{word.lower()}"', start)
    if word == "None":
        raise ConditionError('"None" is not a value here — write null', start)
    return Token(Kind.NAME, word, start)


def _string(text: str, start: int) -> Token:
    quote = text[start]
    position = start + 1
    parts: list[str] = []
    while position < len(text):
        char = text[position]
        if char == quote:
            return Token(Kind.STRING, text[start : position + 1], start, "".join(parts))
        if char != "\\":
            parts.append(char)
            position += 1
            continue
        escape = text[position + 1 : position + 2]
        if escape in _ESCAPES:
            parts.append(_ESCAPES[escape])
            position += 2
        elif escape == "u" and _HEX4.fullmatch(text, position + 2, position + 6):
            parts.append(chr(int(text[position + 2 : position + 6], 16)))
            position += 6
        elif escape == "u":
            raise ConditionError('"\\u" must be followed by four hex digits', position)
        elif not escape:
            break  # a backslash at the very end: the string is unterminated
        else:
            raise ConditionError(
                f'unknown escape "\\{escape}" — write "\\\\" for a backslash', position
            )
    raise ConditionError(f"unterminated string — close it with {quote}", start)


def _symbol(text: str, start: int) -> Token:
    for mistake, instead in _LONG_MISTAKES.items():
        if text.startswith(mistake, start):
            raise ConditionError(f'"{mistake}" is not an operator — use "{instead}"', start)
    for symbol in _SYMBOLS:
        if text.startswith(symbol, start):
            return Token(Kind.SYMBOL, symbol, start)
    char = text[start]
    if char in _SHORT_MISTAKES:
        instead = _SHORT_MISTAKES[char]
        extra = ' (or "!=" to compare)' if char == "!" else ""
        raise ConditionError(f'"{char}" is not an operator — use "{instead}"{extra}', start)
    raise ConditionError(_bad_character(char), start)


def _bad_character(char: str) -> str:
    shown = f'"{char}"' if char.isprintable() else f"U+{ord(char):04X}"
    if char in _CURLY_QUOTES:
        return f"unexpected character {shown} — use straight quotes, \" or '"
    if char in "{}":
        return f"unexpected character {shown} — write names without braces, e.g. payload.amount"
    if char.isalpha() or char.isdigit():
        return f'unexpected character {shown} — names use Latin letters, digits and "_"'
    return f"unexpected character {shown}"
