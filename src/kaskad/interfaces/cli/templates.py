"""``kaskad templates``: apply and check template files, list and show templates, preview
a template for a sample contact and event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kaskad.domain.vocabulary import Channel
from kaskad.interfaces.cli.journeys import _console, _fail, _open_app, _read, problem_lines
from kaskad.services import previews, templates
from kaskad.services.errors import Invalid, NotFound
from kaskad.services.previews import Pricing

templates_cli = typer.Typer(
    no_args_is_help=True, help="Templates: apply, validate, list, show, preview."
)

Files = Annotated[
    list[Path],
    typer.Argument(exists=True, dir_okay=False, help="Template files (YAML or JSON)"),
]


def _checked(files: list[Path]) -> tuple[list[tuple[Path, str]], list[str]]:
    sources, problems = [], []
    for path in files:
        text = _read(path)
        try:
            templates.check(text, filename=str(path))
        except Invalid as exc:
            problems.extend(problem_lines(str(path), exc))
        sources.append((path, text))
    return sources, problems


@templates_cli.command("apply")
def apply_command(files: Files) -> None:
    """Store each file as its template's next version (unless unchanged); messages sent
    from then on render with it. Every file is checked first: if any is invalid, nothing
    is stored (exit code 2)."""
    sources, problems = _checked(files)
    if problems:
        for line in problems:
            typer.echo(line, err=True)
        raise _fail("nothing stored: fix the problems above")
    app = _open_app()
    for path, text in sources:
        applied = templates.apply_template(
            app.uow(), source=text, now=app.clock.now(), filename=str(path)
        )
        state = "new" if applied.created else "unchanged"
        typer.echo(f"{applied.id}: version {applied.version} ({state})")


@templates_cli.command("validate")
def validate_command(files: Files) -> None:
    """Check template files without a database: exit 0 when all are valid, 2 otherwise."""
    _, problems = _checked(files)
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        raise typer.Exit(2)
    typer.echo(f"{len(files)} valid")


@templates_cli.command("list")
def list_command() -> None:
    """Every template with its live version."""
    rows = templates.list_templates(_open_app().uow())
    table = Table("id", "name", "version", "updated")
    for row in rows:
        table.add_row(row["id"], row["name"], str(row["version"]), row["updated_at"].isoformat())
    _console().print(table)


@templates_cli.command("show")
def show_command(
    template_id: Annotated[str, typer.Argument(help="The template id")],
    version: Annotated[int | None, typer.Option(help="Show this version")] = None,
) -> None:
    """Print a template's source (the live version, or --version)."""
    try:
        found = templates.get_template(_open_app().uow(), template_id=template_id, version=version)
    except NotFound as exc:
        raise _fail(exc.message, 1) from None
    typer.echo(f"# {template_id} version {found['version']}")
    typer.echo(found["source"].rstrip("\n"))


@templates_cli.command("preview")
def preview_command(
    template_id: Annotated[str, typer.Argument(help="The template id")],
    contact: Annotated[str, typer.Option(help="Sample contact as JSON")] = "{}",
    event: Annotated[str, typer.Option(help="Sample event data as JSON")] = "{}",
    channel: Annotated[Channel | None, typer.Option(help="Only this channel")] = None,
    locale: Annotated[str | None, typer.Option(help="What this locale would get")] = None,
    file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Preview this file instead")
    ] = None,
) -> None:
    """Render every variant for a sample, with SMS encoding, segments and cost, missing
    variables and warnings, as JSON."""
    samples = {name: _json(name, value) for name, value in (("contact", contact), ("event", event))}
    app = _open_app()
    try:
        result = previews.preview(
            app.uow(),
            template_id=template_id,
            source=_read(file) if file else None,
            contact=samples["contact"],
            event=samples["event"],
            channel=channel,
            locale=locale,
            tracking=app.tracking,
            pricing=Pricing(app.settings.sms_segment_price, app.settings.sms_price_currency),
        )
    except (Invalid, NotFound) as exc:
        raise _fail(exc.message) from None
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))


def _json(name: str, value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise _fail(f"--{name}: not JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise _fail(f"--{name}: expected a JSON object")
    return parsed
