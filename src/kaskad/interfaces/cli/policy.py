"""``kaskad policy``: apply and check the contact pressure policy, ask it about a
notification, show a contact's calendar; ``kaskad suppressions`` for the suppression list."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from kaskad.domain.notifications import NotificationRequest
from kaskad.interfaces.cli.journeys import _fail, _open_app, _read, problem_lines
from kaskad.interfaces.cli.templates import _json
from kaskad.interfaces.http.errors import ApiError
from kaskad.interfaces.http.models import NotificationIn
from kaskad.interfaces.http.notifications import _request
from kaskad.services import policy, policy_views, suppressions
from kaskad.services.errors import Invalid, NotFound, ServiceError

policy_cli = typer.Typer(
    no_args_is_help=True, help="The contact pressure policy: apply, validate, show, explain."
)
suppressions_cli = typer.Typer(no_args_is_help=True, help="The suppression list.")

File = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="The policy file (YAML or JSON)")
]


def _checked(path: Path, kept: timedelta | None = None) -> str:
    text = _read(path)
    try:
        policy.check(text, filename=str(path), kept=kept)
    except Invalid as exc:
        for line in problem_lines(str(path), exc):
            typer.echo(line, err=True)
        raise typer.Exit(2) from None
    return text


@policy_cli.command("apply")
def apply_command(file: File) -> None:
    """Apply the file as the policy's next version (unless unchanged); every worker uses it
    within a few seconds. An invalid file changes nothing (exit code 2)."""
    app = _open_app()
    text = _checked(file, kept=timedelta(days=app.settings.send_log_days))
    applied = policy.apply(app.uow(), source=text, now=app.clock.now())
    state = "new" if applied["created"] else "unchanged"
    typer.echo(f"policy: version {applied['version']} ({state})")


@policy_cli.command("validate")
def validate_command(file: File) -> None:
    """Check a policy file without a database: exit 0 when valid, 2 otherwise."""
    _checked(file)
    typer.echo("valid")


@policy_cli.command("show")
def show_command() -> None:
    """Print the policy in force (the defaults when none was applied)."""
    shown = policy.show(_open_app().uow())
    if not shown["version"]:
        typer.echo("# no policy applied: the defaults are in force (see docs/policies.md)")
        return
    typer.echo(f"# policy version {shown['version']}")
    typer.echo(shown["source"].rstrip("\n"))


@policy_cli.command("explain")
def explain_command(
    contact: Annotated[str, typer.Option(help="The contact's external id")],
    notification: Annotated[
        str, typer.Option(help="The notification as JSON, as POST /v1/notifications takes it")
    ],
    journey: Annotated[
        str | None, typer.Option(help="Ask as this journey's send would (its caps count)")
    ] = None,
) -> None:
    """Would this notification be sent now, and if not why: the verdict for each step, with
    the rule and its numbers. Nothing is stored or sent. Exit code 0 when it would be sent
    now, 1 when deferred, suppressed or unreachable."""
    request = _notification(contact, _json("notification", notification))
    app = _open_app()
    question = policy_views.question_of(request, journey)
    try:
        answer = policy_views.explain(
            app.uow(), contact=contact, question=question, now=app.clock.now()
        )
    except ServiceError as exc:
        raise _fail(exc.message) from None
    for step in answer["steps"]:
        typer.echo(f"step {step['step']} {step['channel']}: {step['verdict']}: {step['reason']}")
        for note in step.get("notes") or ():
            typer.echo(f"    {note}")
    typer.echo(f"=> {answer['verdict']}: {answer['reason']}")
    if answer["verdict"] != "send":
        raise typer.Exit(1)


def _notification(contact: str, raw: dict[str, Any]) -> NotificationRequest:
    try:
        return _request(NotificationIn.model_validate({"contact": contact, **raw}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _fail(f"--notification: {where}: {first['msg']}") from None
    except ApiError as exc:
        raise _fail(f"--notification: {exc.message}") from None


@policy_cli.command("calendar")
def calendar_command(
    contact: Annotated[str, typer.Argument(help="The contact's external id")],
) -> None:
    """What is planned for the contact and why, what it got lately, and the caps used; JSON."""
    app = _open_app()
    try:
        found = policy_views.calendar(app.uow(), contact=contact, now=app.clock.now())
    except NotFound as exc:
        raise _fail(exc.message, 1) from None
    typer.echo(json.dumps(found, indent=2, ensure_ascii=False, default=str))


@suppressions_cli.command("add")
def add_command(
    address: Annotated[str, typer.Argument(help="A phone number or an email address")],
    channel: Annotated[str, typer.Option(help="A channel, or * for all")] = "*",
    reason: Annotated[str, typer.Option(help="Why")] = "added by an operator",
) -> None:
    """Never send to this address again (until removed)."""
    app = _open_app()
    try:
        row = suppressions.add(
            app.uow(), address=address, channel=channel, reason=reason, now=app.clock.now()
        )
    except Invalid as exc:
        raise _fail(exc.message) from None
    typer.echo("added" if row["created"] else "already on the list")


@suppressions_cli.command("remove")
def remove_command(
    address: Annotated[str, typer.Argument(help="A phone number or an email address")],
    channel: Annotated[str, typer.Option(help="A channel, or * for all")] = "*",
) -> None:
    try:
        suppressions.remove(_open_app().uow(), address=address, channel=channel)
    except (Invalid, NotFound) as exc:
        raise _fail(exc.message, 1) from None
    typer.echo("removed")
