"""The ``kaskad`` command."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from kaskad.adapters import logs
from kaskad.bootstrap import App, ConfigurationError, build
from kaskad.interfaces.cli import contacts_import, demo, journeys, policy, providers, templates
from kaskad.services import apikeys
from kaskad.services import policy as policy_service
from kaskad.services.errors import Invalid
from kaskad.settings import Settings

cli = typer.Typer(no_args_is_help=True, help="kaskad: omnichannel messaging orchestrator.")
db_cli = typer.Typer(no_args_is_help=True, help="Database schema.")
key_cli = typer.Typer(no_args_is_help=True, help="API keys.")
contacts_cli = typer.Typer(no_args_is_help=True, help="Contacts.")
cli.add_typer(db_cli, name="db")
cli.add_typer(key_cli, name="apikey")
cli.add_typer(contacts_cli, name="contacts")
cli.add_typer(journeys.journeys_cli, name="journeys")
cli.add_typer(templates.templates_cli, name="templates")
cli.add_typer(providers.providers_cli, name="providers")
cli.add_typer(policy.policy_cli, name="policy")
cli.add_typer(policy.suppressions_cli, name="suppressions")
err = Console(stderr=True)
log = logging.getLogger("kaskad")

HostOpt = Annotated[str | None, typer.Option(help="Bind address (default KASKAD_HOST)")]
PortOpt = Annotated[int | None, typer.Option(help="Port (default KASKAD_PORT)")]


def _settings(**overrides: object) -> Settings:
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except (ValidationError, ValueError) as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    logs.configure(settings.log_level, json_output=settings.log_json)
    return settings


def _app(settings: Settings) -> App:
    try:
        app = build(settings)
    except ConfigurationError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    sandboxed = sorted(c.value for c, p in settings.channels.items() if p == "sandbox")
    if settings.mode == "production" and sandboxed:
        log.warning(
            "production mode with sandbox channels (%s): nothing reaches customers on them",
            ", ".join(sandboxed),
        )
    return app


@cli.command()
def serve(host: HostOpt = None, port: PortOpt = None, migrate: bool = True) -> None:
    """API + engine + sandbox in one process (migrates the database first)."""
    import uvicorn

    from kaskad.interfaces.http.app import create_app

    settings = _settings(host=host, port=port)
    app = _app(settings)
    if migrate:
        app.migrate()
    _apply_policy_file(app)
    uvicorn.run(
        create_app(app, run_engine=True),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


def _apply_policy_file(app: App) -> None:
    """The settings' policy file becomes the policy in force (a new version if it changed)."""
    path = app.settings.policy_file
    if path is None:
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"[red]policy_file {path}:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        applied = policy_service.apply(
            app.uow(),
            source=text,
            now=app.clock.now(),
            kept=timedelta(days=app.settings.send_log_days),
        )
    except Invalid as exc:
        for line in journeys.problem_lines(str(path), exc):
            err.print(line)
        raise typer.Exit(2) from None
    log.info("policy file %s is version %s", path.name, applied["version"])


@cli.command()
def api(
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[int, typer.Option(help="HTTP worker processes")] = 1,
) -> None:
    """The HTTP API alone; run any number beside `kaskad worker` on PostgreSQL."""
    import uvicorn

    settings = _settings(host=host, port=port)
    _app(settings)  # fail fast on bad configuration
    uvicorn.run(
        "kaskad.interfaces.http.app:api_factory",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
    )


@cli.command()
def worker(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus /metrics on this port (KASKAD_HOST)")
    ] = None,
) -> None:
    """The engine alone: timers, outbox senders and the sandbox's reports."""
    from prometheus_client import start_http_server

    from kaskad.adapters.metrics import REGISTRY
    from kaskad.interfaces.http.app import _listener

    settings = _settings()
    app = _app(settings)
    if metrics_port is not None:
        start_http_server(metrics_port, addr=settings.host, registry=REGISTRY)
    if not app.migrations_current():
        err.print("[red]the database schema is not current:[/red] run `kaskad db upgrade`")
        raise typer.Exit(2)
    _apply_policy_file(app)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        listener = _listener(app)
        try:
            await app.engine.run(stop)
        finally:
            if listener is not None:
                listener.stop()

    asyncio.run(main())


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    app = _app(_settings())
    app.migrate()
    typer.echo("database is at the newest schema")


@db_cli.command("current")
def db_current() -> None:
    """Exit 0 when the schema is current, 1 when migrations are pending."""
    app = _app(_settings())
    current = app.migrations_current()
    typer.echo("current" if current else "migrations pending: run `kaskad db upgrade`")
    raise typer.Exit(0 if current else 1)


@key_cli.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who the key is for")],
    replace: Annotated[bool, typer.Option(help="Revoke older keys of this name")] = False,
) -> None:
    """Create an API key; the key is printed once, as the last line."""
    app = _app(_settings())
    try:
        key = apikeys.create_api_key(app.uow(), name=name, now=app.clock.now(), replace=replace)
    except Invalid as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    typer.echo(f"created API key {name!r} (stored hashed; it cannot be shown again):")
    typer.echo(key)


@key_cli.command("revoke")
def apikey_revoke(name: Annotated[str, typer.Option(help="Revoke every key of this name")]) -> None:
    app = _app(_settings())
    count = apikeys.revoke_api_keys(app.uow(), name=name, now=app.clock.now())
    typer.echo(f"revoked {count} key(s) named {name!r}")
    raise typer.Exit(0 if count else 1)


@contacts_cli.command("import")
def contacts_import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file")],
    skip_invalid: Annotated[
        bool, typer.Option(help="Import the valid rows even when some are rejected")
    ] = False,
) -> None:
    """Import contacts from CSV (see docs/api.md for the columns). All rows or none, unless
    --skip-invalid; rejected rows are listed with their reasons."""
    app = _app(_settings())
    code = contacts_import.run(app, file, skip_invalid=skip_invalid, console=Console())
    raise typer.Exit(code)


@cli.command("demo")
def demo_command() -> None:
    """Seed demo contacts, create a demo API key and print a tour (used by `make run`)."""
    settings = _settings()
    app = _app(settings)
    app.migrate()
    demo.seed(app, Console())


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
