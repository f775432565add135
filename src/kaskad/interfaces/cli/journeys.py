"""``kaskad journeys``: apply and check journey files, list and show journeys, change their
status, and simulate one for a made-up contact."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from kaskad.bootstrap import App
from kaskad.interfaces import simulation
from kaskad.services import journeys, run_views
from kaskad.services.definitions import check
from kaskad.services.errors import Invalid, NotFound
from kaskad.services.journeys import JourneyStatus

journeys_cli = typer.Typer(
    no_args_is_help=True, help="Journeys: apply, validate, list, show, publish, simulate."
)

Files = Annotated[
    list[Path],
    typer.Argument(exists=True, dir_okay=False, help="Journey files (YAML or JSON)"),
]
JourneyId = Annotated[str, typer.Argument(help="The journey id")]


def _open_app() -> App:
    # Imported here: main imports this module to register the commands.
    from kaskad.interfaces.cli.main import _app, _settings

    return _app(_settings())


def _console() -> Console:
    # Piped output is not cut to 80 columns: a timeline line should stay on one line.
    return Console(width=None if sys.stdout.isatty() else 160)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def problem_lines(filename: str, exc: Invalid) -> list[str]:
    """``FILE: steps[3].wait (line 17): message``, one per problem."""
    if not isinstance(exc.details, list) or not exc.details:
        return [f"{filename}: {exc.message}"]
    lines = []
    for problem in exc.details:
        where = problem.get("path") or "journey"
        if problem.get("line") is not None:
            where += f" (line {problem['line']})"
        lines.append(f"{filename}: {where}: {problem['message']}")
    return lines


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise _fail(f"{path}: {exc.strerror}") from None


def _checked(files: Sequence[Path]) -> tuple[list[tuple[Path, str]], list[str]]:
    """Every file read and checked: the sources, and the problems of all of them."""
    sources, problems = [], []
    for path in files:
        text = _read(path)
        try:
            check(text, filename=str(path))
        except Invalid as exc:
            problems.extend(problem_lines(str(path), exc))
        sources.append((path, text))
    return sources, problems


# -- files -------------------------------------------------------------------------------


@journeys_cli.command("apply")
def apply_command(
    files: Files,
    draft: Annotated[
        bool, typer.Option("--draft", help="Store the versions without making them live")
    ] = False,
) -> None:
    """Store each file as its journey's next version (unless it is the latest already) and
    make it live. Every file is checked first: if any is invalid, its problems are printed
    and nothing is stored (exit code 2)."""
    sources, problems = _checked(files)
    if problems:
        for line in problems:
            typer.echo(line, err=True)
        raise _fail("nothing stored: fix the problems above")
    app = _open_app()
    for path, text in sources:
        applied = journeys.apply_journey(
            app.uow(), source=text, activate=not draft, now=app.clock.now(), filename=str(path)
        )
        state = "new" if applied.created else "unchanged"
        if applied.created and draft:
            state += ", not live"
        typer.echo(f"{applied.id}: version {applied.version} ({state}), {applied.status}")


@journeys_cli.command("validate")
def validate_command(files: Files) -> None:
    """Check journey files without a database: exit 0 when all are valid, 2 otherwise."""
    bad = False
    for path in files:
        text = _read(path)
        try:
            definition = check(text, filename=str(path))
        except Invalid as exc:
            bad = True
            for line in problem_lines(str(path), exc):
                typer.echo(line, err=True)
            continue
        kind = type(definition.trigger).__name__.removesuffix("Trigger").lower()
        typer.echo(f"{path}: ok ({definition.id}: {len(definition.steps)} steps, {kind} trigger)")
    raise typer.Exit(2 if bad else 0)


# -- stored journeys ---------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


@journeys_cli.command("list")
def list_command() -> None:
    """The journeys, their status and versions."""
    rows = journeys.list_journeys(_open_app().uow())
    console = _console()
    if not rows:
        console.print("no journeys yet: `kaskad journeys apply FILE`")
        return
    table = Table("id", "name", "status", "live", "latest", "updated")
    for row in rows:
        live = str(row["version"]) if row["version"] is not None else "—"
        table.add_row(
            row["id"],
            row["name"],
            row["status"],
            live,
            str(row["latest"]),
            _when(row["updated_at"]),
        )
    console.print(table)


@journeys_cli.command("show")
def show_command(
    journey_id: JourneyId,
    source: Annotated[bool, typer.Option("--source", help="Print the source instead")] = False,
    version: Annotated[
        int | None, typer.Option(help="With --source: this version (default the latest)")
    ] = None,
) -> None:
    """Status, versions and, per version, how many runs entered each step, wait there now
    and ended there."""
    app = _open_app()
    try:
        if source:
            stored = run_views.journey_source(app.uow(), journey_id=journey_id, version=version)
            typer.echo(stored["source"], nl=False)
            return
        view = run_views.journey_overview(app.uow(), journey_id=journey_id)
    except NotFound as exc:
        raise _fail(exc.message, 1) from None
    row = view["journey"]
    console = _console()
    live = f"live version {row['version']}" if row["version"] is not None else "no live version"
    console.print(f"[bold]{row['id']}[/bold] — {row['name']}", highlight=False)
    console.print(f"{row['status']}, {live}, latest {row['latest']}", highlight=False)
    for stored in reversed(view["versions"]):
        _print_version(console, stored)


def _print_version(console: Console, version: Mapping[str, Any]) -> None:
    tag = " (live)" if version["live"] else ""
    totals = ", ".join(
        f"{version[k]} {k}" for k in ("active", "completed", "exited", "converted", "failed")
    )
    console.print(
        f"\nversion {version['version']}{tag}, stored {_when(version['created_at'])}: "
        f"{version['entered']} entered; {totals}",
        highlight=False,
    )
    if not version["entered"] and not version["live"]:
        return
    table = Table("step", "kind", "entered", "waiting", "completed", "exited", "converted")
    for step in version["steps"]:
        table.add_row(
            step["step"],
            step["kind"],
            *(str(step[k]) for k in ("entered", "waiting", "completed", "exited", "converted")),
        )
    console.print(table)


def _status_command(journey_id: str, status: JourneyStatus, *, publish: bool = False) -> None:
    app = _open_app()
    try:
        row = journeys.set_status(
            app.uow(), journey_id=journey_id, status=status, now=app.clock.now(), publish=publish
        )
    except NotFound as exc:
        raise _fail(exc.message, 1) from None
    except Invalid as exc:
        raise _fail(exc.message, 2) from None
    live = f"live version {row['version']}" if row["version"] is not None else "no live version"
    typer.echo(f"{row['id']}: {row['status']}, {live}")


@journeys_cli.command("publish")
def publish_command(journey_id: JourneyId) -> None:
    """Make the latest version live and the journey active."""
    _status_command(journey_id, JourneyStatus.ACTIVE, publish=True)


@journeys_cli.command("pause")
def pause_command(journey_id: JourneyId) -> None:
    """Stop new runs from entering; runs in flight go on."""
    _status_command(journey_id, JourneyStatus.PAUSED)


@journeys_cli.command("resume")
def resume_command(journey_id: JourneyId) -> None:
    """Let new runs enter again."""
    _status_command(journey_id, JourneyStatus.ACTIVE)


@journeys_cli.command("archive")
def archive_command(journey_id: JourneyId) -> None:
    """Retire the journey: no new runs, and the runs in flight end."""
    _status_command(journey_id, JourneyStatus.ARCHIVED)


# -- simulation --------------------------------------------------------------------------


def json_option(name: str, value: str | None, default: Any) -> Any:
    """The value of a JSON option: JSON text, or ``@FILE`` to read it from a file."""
    if value is None:
        return default
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"{name}: cannot read {value[1:]!r}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"--start: {value!r} is not an ISO time such as 2026-03-02T12:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@journeys_cli.command("simulate")
def simulate_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Journey file")],
    contact: Annotated[
        str | None,
        typer.Option(help='The contact as JSON (or @FILE), e.g. {"phone": "+380501234567"}'),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(help='Events as a JSON list (or @FILE): [{"type", "payload", "at": "+2d"}]'),
    ] = None,
    outcomes: Annotated[
        str | None,
        typer.Option(help='Sandbox outcomes as JSON: [{"channel": "viber", "outcome": "seen"}]'),
    ] = None,
    replies: Annotated[
        str | None,
        typer.Option(
            help='What the contact sends, as JSON: [{"channel": "sms", "text": "5", "at": "+1h"}]'
        ),
    ] = None,
    horizon: Annotated[str, typer.Option(help="How long to run, at most 366d")] = "30d",
    start: Annotated[
        str | None, typer.Option(help="Start time, ISO (UTC without an offset); default now")
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="For an api trigger: the entry data as JSON")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Run the journey for one contact on a throwaway database and a virtual clock and
    print what would happen: steps, messages, skipped channels. Nothing is stored or sent."""
    text = _read(file)
    try:
        result = simulation.simulate(
            text,
            contact=json_option("--contact", contact, {}),
            events=json_option("--events", events, []),
            outcomes=json_option("--outcomes", outcomes, []),
            replies=json_option("--replies", replies, []),
            horizon=simulation.parse_horizon(horizon),
            start=_start(start),
            data=json_option("--data", data, {}),
            filename=str(file),
        )
    except Invalid as exc:
        if exc.code == "invalid_journey":
            for line in problem_lines(str(file), exc):
                typer.echo(line, err=True)
            raise typer.Exit(2) from None
        raise _fail(f"error: {exc.message}") from None
    if as_json:
        typer.echo(result.as_json())
        return
    print_simulation(_console(), result)


def _clock(moment: datetime, zone: tzinfo, *, weekday: bool = True) -> str:
    local = moment.astimezone(zone)
    text = local.strftime("%a %Y-%m-%d %H:%M" if weekday else "%Y-%m-%d %H:%M")
    return text + local.strftime(":%S") if local.second or local.microsecond else text


def print_simulation(console: Console, result: simulation.Simulation) -> None:
    zone = ZoneInfo(result.timezone)
    runs = {run.id: number for number, run in enumerate(result.runs, start=1)}
    console.print(
        f"[bold]{result.journey}[/bold] for {result.contact} ({result.timezone}), "
        f"{_clock(result.start, zone)} to {_clock(result.end, zone)}",
        highlight=False,
    )
    table = Table(f"time ({result.timezone})", "UTC", "run", "step", "what", "details")
    for item in result.timeline:
        table.add_row(
            _clock(item.at, zone),
            _clock(item.at, UTC, weekday=False),
            str(runs[item.run]) if item.run in runs else "",
            item.step or "",
            _what(item),
            item.text,
        )
    if result.timeline:
        console.print(table, markup=False, highlight=False)
    if not result.runs:
        console.print("no run started", highlight=False)
    for run in result.runs:
        ended = f" at {_clock(run.ended_at, zone)}: {run.ended_reason}" if run.ended_at else ""
        variant = f", variant {run.variant}" if run.variant else ""
        console.print(
            f"run {runs[run.id]} ({run.id}): {run.status}{variant}{ended}",
            highlight=False,
            markup=False,
        )


def _what(item: simulation.Item) -> str:
    if item.kind == "message":
        return f"{item.channel} message, {item.name}"
    if item.kind == "event":
        return f"reply on {item.channel}" if item.name == "reply" else f"event {item.name}"
    if item.kind == "decision":
        return f"cascade: {item.name}"
    return item.name
