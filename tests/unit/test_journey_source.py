"""Reading journey documents: YAML or JSON to plain data, the line of every path, and refusals."""

from __future__ import annotations

import json

import pytest

from kaskad.domain.journeys.source import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_STEPS,
    JourneyError,
    Problem,
    line_of,
    load_source,
    render_path,
)

YAML_DOC = """\
id: j
name: J
steps:
  - wait: 2d
  - send:
      category: service
      cascade:
        - channel: sms
          content: {text: hi}
"""


def test_yaml_gives_data_and_the_line_of_each_path() -> None:
    source = load_source(YAML_DOC, filename="j.yaml")
    assert source.filename == "j.yaml"
    assert source.data["steps"][1]["send"]["cascade"][0]["content"] == {"text": "hi"}
    assert source.lines[()] == 1
    assert source.lines[("name",)] == 2
    assert source.lines[("steps", 0)] == 4
    assert source.lines[("steps", 0, "wait")] == 4
    assert source.lines[("steps", 1, "send")] == 5
    assert source.lines[("steps", 1, "send", "category")] == 6
    assert source.lines[("steps", 1, "send", "cascade", 0, "channel")] == 8
    assert source.lines[("steps", 1, "send", "cascade", 0, "content", "text")] == 9


def test_json_gives_the_same_data_and_lines() -> None:
    text = (
        '{"id": "j",\n "steps": [\n  {"wait": "2d"},\n'
        '  {"send": {"category":\n    "service"}}\n ]\n}'
    )
    source = load_source(text)
    assert source.data == {"id": "j", "steps": [{"wait": "2d"}, {"send": {"category": "service"}}]}
    assert source.lines[("id",)] == 1
    assert source.lines[("steps",)] == 2
    assert source.lines[("steps", 0, "wait")] == 3
    assert source.lines[("steps", 1, "send")] == 4
    assert source.lines[("steps", 1, "send", "category")] == 4


def test_text_starting_with_a_brace_may_still_be_yaml() -> None:
    assert load_source("{id: j, steps: [{wait: 2d}]}").data == {
        "id": "j",
        "steps": [{"wait": "2d"}],
    }
    # Not JSON (a trailing comma), but a YAML flow mapping all the same.
    assert load_source('{"a": [1, 2,]}').data == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("at: 10:00", "10:00"),  # YAML 1.1 would read the base-60 number 600
        ("at: 1:30:00", "1:30:00"),
        ("at: 2026-12-01", "2026-12-01"),  # dates stay as written
        ("at: 2026-12-01 10:00:00", "2026-12-01 10:00:00"),
        ("at: 42", 42),
        ("at: 0x10", 16),
        ("at: 2.5", 2.5),
        ("at: yes", True),
        ("at: false", False),
        ("at: ~", None),
        ("at: '007'", "007"),
        ("at: !!str 12", "12"),
    ],
)
def test_yaml_scalars_become_plain_values(text: str, value: object) -> None:
    assert load_source(text).data == {"at": value}


def _problem(text: str) -> Problem:
    with pytest.raises(JourneyError) as info:
        load_source(text, filename="j.yaml")
    assert info.value.filename == "j.yaml"
    assert len(info.value.problems) == 1
    return info.value.problems[0]


@pytest.mark.parametrize(
    ("text", "path", "line", "message"),
    [
        ("", "", None, "the document is empty"),
        ("# only a comment\n", "", None, "the document is empty"),
        ("id: j\nname: x: y\n", "", 2, "mapping values are not allowed here"),
        (
            "steps:\n  - wait: 2d\n   - wait: 3d\n",
            "",
            3,
            "while parsing a block collection, expected <block end>, but found "
            "'<block sequence start>'",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "",
            2,
            "expected a single document in the stream, but found another document",
        ),
        ("a: 1\nb: 2\na: 3\n", "a", 3, 'duplicate key "a" (first on line 1)'),
        ("a:\n  b: 1\n  b: 2\n", "a.b", 3, 'duplicate key "b" (first on line 2)'),
        ("a: &x [1]\nb: *x\n", "b", 2, "aliases (*name) are not supported in journeys"),
        ("a: &x [*x]\n", "a[0]", 1, "aliases (*name) are not supported in journeys"),
        (
            "a: !!python/object:os.system x\n",
            "a",
            1,
            "the tag !!python/object:os.system is not supported in journeys",
        ),
        ("a: !custom 1\n", "a", 1, "the tag !custom is not supported in journeys"),
        ("a: !!set {x, y}\n", "a", 1, "the tag !!set is not supported in journeys"),
        ("a: !!binary aGk=\n", "a", 1, "the tag !!binary is not supported in journeys"),
        (
            "base: {x: 1}\nc:\n  <<: {x: 1}\n",
            "c",
            3,
            "merge keys (<<) are not supported in journeys",
        ),
        ("? [a]\n: 1\n", "", 1, "keys must be text, not a list or a mapping"),
        ("a:\n  1: x\n", "a", 2, "keys must be text; quote 1"),
        ("a: .nan\n", "a", 1, ".nan is not a finite number"),
        ("a: -.inf\n", "a", 1, "-.inf is not a finite number"),
        ("a: 1\nb: '\x07'\n", "", 2, "character #x0007 is not allowed in YAML"),
        ('{"a": 1,\n "a": 2}', "a", 2, 'duplicate key "a" (first on line 1)'),
        ('{"a": 1\n"b": 2}', "", 2, "Expecting ',' delimiter"),
        ('{"a": NaN}', "", None, "NaN is not a number a journey accepts"),
        ('{"a": -Infinity}', "", None, "-Infinity is not a number a journey accepts"),
    ],
)
def test_refusals(text: str, path: str, line: int | None, message: str) -> None:
    assert _problem(text) == Problem(path, line, message)


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 20_000 + "]" * 20_000,
        '{"a": ' + "[" * 20_000 + "]" * 20_000 + "}",
        "a: " + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2),
        '{"a": ' + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2) + "}",
    ],
)
def test_deep_nesting_is_refused_not_a_crash(text: str) -> None:
    assert "nested more than 64 levels deep" in _problem(text).message


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1
    assert load_source("a: " + "[" * depth + "]" * depth).data["a"]


def test_a_document_over_256_kb_is_refused() -> None:
    text = "a: '" + "x" * (MAX_BYTES - 6) + "'\n"
    assert len(text.encode()) == MAX_BYTES
    assert load_source(text).data["a"].startswith("xxx")
    problem = _problem("a: '" + "x" * (MAX_BYTES - 5) + "'\n")
    assert problem == Problem("", None, "the document is larger than 256 KB")


def test_the_size_limit_counts_bytes_not_characters() -> None:
    text = "a: '" + "ї" * (MAX_BYTES // 2) + "'\n"  # two bytes each in UTF-8
    assert len(text) < MAX_BYTES
    assert _problem(text).message == "the document is larger than 256 KB"


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_more_than_200_steps_are_refused(fmt: str) -> None:
    steps = [{"wait": "1d"}] * (MAX_STEPS + 1)
    if fmt == "json":
        text = json.dumps({"id": "j", "steps": steps})
    else:
        text = "id: j\nsteps:\n" + "  - wait: 1d\n" * (MAX_STEPS + 1)
    problem = _problem(text)
    assert problem.path == "steps"
    assert problem.line == (1 if fmt == "json" else 2)
    assert problem.message == "a journey has at most 200 steps, this one has 201"


def test_200_steps_are_fine() -> None:
    text = "id: j\nsteps:\n" + "  - wait: 1d\n" * MAX_STEPS
    assert len(load_source(text).data["steps"]) == MAX_STEPS


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("id",), "id"),
        (("steps", 3, "wait", "timeout"), "steps[3].wait.timeout"),
        (("steps", 0, "branch", 1, "else"), "steps[0].branch[1].else"),
        (
            ("steps", 2, "update", "attributes", "first name"),
            'steps[2].update.attributes["first name"]',
        ),
        ((0,), "[0]"),
    ],
)
def test_render_path(path: tuple[str | int, ...], text: str) -> None:
    assert render_path(path) == text


def test_line_of_falls_back_to_the_nearest_written_ancestor() -> None:
    lines = {(): 1, ("steps",): 4, ("steps", 0): 5}
    assert line_of(lines, ("steps", 0, "send", "category")) == 5
    assert line_of(lines, ("trigger",)) == 1
    assert line_of({}, ("steps",)) is None


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (
            Problem("steps[3].wait.timeout", 17, '"2 dayz" is not a duration'),
            'steps[3].wait.timeout (line 17): "2 dayz" is not a duration',
        ),
        (Problem("id", None, "missing"), "id: missing"),
        (Problem("", 1, "the document is empty"), "journey (line 1): the document is empty"),
    ],
)
def test_problem_text(problem: Problem, text: str) -> None:
    assert str(problem) == text


def test_error_text_names_the_file_and_says_when_problems_were_left_out() -> None:
    problems = [Problem("id", 1, "a"), Problem("name", 2, "b")]
    assert str(JourneyError(problems)) == "id (line 1): a\nname (line 2): b"
    named = JourneyError(problems, filename="x.yaml", truncated=True)
    assert str(named).splitlines() == [
        "x.yaml: id (line 1): a",
        "x.yaml: name (line 2): b",
        "x.yaml: (only the first 2 problems are shown)",
    ]
    assert named.problems == tuple(problems)
