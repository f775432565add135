"""Reading a journey document: YAML or JSON text to plain data, with the line of every value.

Problems in a journey are reported by path and line (``steps[3].wait.timeout (line 17)``),
so the parser keeps a map from each path to the line it was written on. YAML is read with
``yaml.SafeLoader`` through its node tree rather than ``yaml.safe_load``: the nodes carry
their marks, and walking them ourselves lets us refuse what a journey never needs and what
could hurt (aliases, which can expand a small file into a huge one; custom tags; duplicate
keys, which YAML would silently resolve to the last one).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import yaml

Path = tuple[str | int, ...]
"""Where a value sits: ``("steps", 3, "wait", "timeout")``; list indexes are 0-based."""

Lines = Mapping[Path, int]

MAX_BYTES: Final = 256 * 1024
MAX_STEPS: Final = 200
MAX_PROBLEMS: Final = 50
# Deep enough for any content a channel takes, shallow enough that walking it never
# approaches Python's recursion limit.
MAX_DEPTH: Final = 64

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_YAML = "tag:yaml.org,2002:"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a journey, where it was written and what to do about it."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path or "journey"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


class JourneyError(ValueError):
    """A journey that cannot be used, with every problem found (up to ``MAX_PROBLEMS``).

    All problems at once, not the first: fixing a journey one error per upload is slow.
    """

    def __init__(
        self,
        problems: Sequence[Problem],
        *,
        filename: str | None = None,
        truncated: bool = False,
    ) -> None:
        self.problems = tuple(problems)
        self.filename = filename
        self.truncated = truncated
        super().__init__(self._text())

    def _text(self) -> str:
        named = self.filename and not self.filename.startswith("<")
        prefix = f"{self.filename}: " if named else ""
        lines = [prefix + str(problem) for problem in self.problems]
        if self.truncated:
            lines.append(f"{prefix}(only the first {len(self.problems)} problems are shown)")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Source:
    """A parsed document: the data, and the 1-based line of each path in it."""

    data: Any
    lines: Lines
    filename: str = "<journey>"


def render_path(path: Path) -> str:
    """``("steps", 3, "wait", "timeout")`` as ``steps[3].wait.timeout``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


def line_of(lines: Lines, path: Path) -> int | None:
    """The line of ``path``, or of its nearest written ancestor (a missing key's mapping)."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def load_source(text: str, *, filename: str = "<journey>") -> Source:
    """Parse a journey document; a JSON object is read as JSON, anything else as YAML.

    Raises ``JourneyError`` for text that is too large, not well-formed, uses YAML features
    a journey has no use for, or lists more than ``MAX_STEPS`` steps.
    """
    # Every character is at least one byte: a long text is refused before encoding it.
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        _fail(None, f"the document is larger than {MAX_BYTES // 1024} KB", filename)
    if text.lstrip().startswith("{"):
        data, lines = _read_json(text, filename)
    else:
        data, lines = _read_yaml(text, filename)
    steps = data.get("steps") if isinstance(data, dict) else None
    if isinstance(steps, list) and len(steps) > MAX_STEPS:
        _fail(
            lines.get(("steps",)),
            f"a journey has at most {MAX_STEPS} steps, this one has {len(steps)}",
            filename,
            path=("steps",),
        )
    return Source(data, lines, filename)


def _fail(line: int | None, message: str, filename: str, path: Path = ()) -> NoReturn:
    raise JourneyError([Problem(render_path(path), line, message)], filename=filename)


# YAML ----------------------------------------------------------------------------------------


def _read_yaml(text: str, filename: str) -> tuple[Any, dict[Path, int]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = ", ".join(part for part in (exc.context, exc.problem) if part)
        _fail(mark.line + 1 if mark else None, message or "not valid YAML", filename)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        _fail(line, f"character #x{exc.character:04x} is not allowed in YAML", filename)
    except RecursionError:
        _fail(None, f"the document is nested more than {MAX_DEPTH} levels deep", filename)
    if root is None:
        _fail(None, "the document is empty", filename)
    walker = _YamlWalker(filename)
    data = walker.value(root, (), root.start_mark.line + 1, 0)
    return data, walker.lines


class _YamlWalker:
    """Nodes to plain data: dicts with string keys, lists, str, int, float, bool and None."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: dict[Path, int] = {}
        self._seen: set[int] = set()
        # Scalars only: a constructor keeps no state for them, and knows YAML's spellings
        # of numbers and booleans (0x1f, 1_000, .inf, yes/no).
        self._constructor = yaml.constructor.SafeConstructor()

    def value(self, node: yaml.Node, path: Path, line: int, depth: int) -> Any:
        self.lines[path] = line
        if id(node) in self._seen:
            # The composer shares one node between an anchor and its aliases.
            self._fail(path, line, "aliases (*name) are not supported in journeys")
        self._seen.add(id(node))
        if depth > MAX_DEPTH:
            self._fail(path, line, f"the document is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode) and node.tag == _YAML + "map":
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode) and node.tag == _YAML + "seq":
            return [
                self.value(item, (*path, index), item.start_mark.line + 1, depth + 1)
                for index, item in enumerate(node.value)
            ]
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path, line)
        return self._fail(path, line, f"the tag {_tag(node)} is not supported in journeys")

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _YAML + "merge":
                self._fail(path, line, "merge keys (<<) are not supported in journeys")
            if not isinstance(key_node, yaml.ScalarNode):
                self._fail(path, line, "keys must be text, not a list or a mapping")
            key = self._scalar(key_node, path, line)
            if not isinstance(key, str):
                self._fail(path, line, f"keys must be text; quote {key_node.value}")
            if key in result:
                first = self.lines[(*path, key)]
                self._fail((*path, key), line, f'duplicate key "{key}" (first on line {first})')
            self.lines[(*path, key)] = line
            result[key] = self.value(value_node, (*path, key), line, depth + 1)
        return result

    def _scalar(self, node: yaml.ScalarNode, path: Path, line: int) -> Any:
        tag = node.tag.removeprefix(_YAML)
        if tag == "str":
            return node.value
        if tag in ("int", "float") and ":" in node.value:
            # YAML 1.1 reads 10:00 as the base-60 number 600; YAML 1.2 and people read text.
            return node.value
        if tag == "timestamp":
            # Dates stay as written: a journey's data must stay plain JSON-like values.
            return node.value
        if tag in ("int", "float", "bool", "null"):
            value = self._constructor.construct_object(node)
            if isinstance(value, float) and not math.isfinite(value):
                self._fail(path, line, f"{node.value} is not a finite number")
            return value
        return self._fail(path, line, f"the tag {_tag(node)} is not supported in journeys")

    def _fail(self, path: Path, line: int, message: str) -> NoReturn:
        _fail(line, message, self.filename, path)


def _tag(node: yaml.Node) -> str:
    return "!!" + node.tag.removeprefix(_YAML) if node.tag.startswith(_YAML) else node.tag


# JSON ----------------------------------------------------------------------------------------


def _read_json(text: str, filename: str) -> tuple[Any, dict[Path, int]]:
    """JSON first, for its plain errors; a YAML flow mapping (``{a: 1}``) is YAML after all."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        try:
            return _read_yaml(text, filename)
        except JourneyError:
            _fail(exc.lineno, exc.msg, filename)
    except RecursionError:
        _fail(None, f"the document is nested more than {MAX_DEPTH} levels deep", filename)
    except ValueError as exc:  # NaN or Infinity
        _fail(None, str(exc), filename)
    return data, _JsonLines(text, filename).read()


class _JsonLines:
    """The line of every value in JSON text, and its duplicate keys, which ``json`` ignores.

    The walk runs on text ``json`` has accepted, so it only needs to find where each value
    starts; scalars are skipped with the standard decoder.
    """

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.lines: dict[Path, int] = {}
        self._decoder = json.JSONDecoder()
        self._line = 1
        self._counted_to = 0

    def read(self) -> dict[Path, int]:
        self._value(self._skip(0), (), 0)
        return self.lines

    def _value(self, index: int, path: Path, depth: int) -> int:
        """Note the line of the value at ``index``; return the index just after it."""
        self.lines[path] = self._line_at(index)
        if depth > MAX_DEPTH:
            _fail(
                self.lines[path],
                f"the document is nested more than {MAX_DEPTH} levels deep",
                self.filename,
                path,
            )
        char = self.text[index]
        if char == "{":
            return self._object(index + 1, path, depth)
        if char == "[":
            return self._array(index + 1, path, depth)
        _, end = self._decoder.raw_decode(self.text, index)
        return end

    def _object(self, index: int, path: Path, depth: int) -> int:
        seen: set[str] = set()
        index = self._skip(index)
        while self.text[index] != "}":
            key, index = self._decoder.raw_decode(self.text, index)
            line = self._line_at(index)
            if key in seen:
                first = self.lines[(*path, key)]
                message = f'duplicate key "{key}" (first on line {first})'
                _fail(line, message, self.filename, (*path, key))
            seen.add(key)
            index = self._skip(self._skip(index) + 1)  # past the colon
            index = self._value(index, (*path, key), depth + 1)
            self.lines[(*path, key)] = line
            index = self._after_item(index)
        return index + 1

    def _array(self, index: int, path: Path, depth: int) -> int:
        position = 0
        index = self._skip(index)
        while self.text[index] != "]":
            index = self._after_item(self._value(index, (*path, position), depth + 1))
            position += 1
        return index + 1

    def _after_item(self, index: int) -> int:
        index = self._skip(index)
        return self._skip(index + 1) if self.text[index] == "," else index

    def _skip(self, index: int) -> int:
        while self.text[index] in " \t\r\n":
            index += 1
        return index

    def _line_at(self, index: int) -> int:
        # The walk only moves forward, so lines are counted once over the whole text.
        self._line += self.text.count("\n", self._counted_to, index)
        self._counted_to = index
        return self._line


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number a journey accepts")
