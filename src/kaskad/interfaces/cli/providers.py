"""``kaskad providers``: list the configured gateways, and send one test message through
one of them, straight from this process (no database, no queue), reporting what the
gateway answered and, with ``--wait``, its delivery report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.table import Table

from kaskad.adapters.logs import mask
from kaskad.domain.ids import new_id
from kaskad.domain.providers import (
    InboundMessage,
    LiveProvider,
    OutgoingMessage,
    Provider,
    SendOutcome,
    StatusReport,
)
from kaskad.domain.vocabulary import Category, Channel, is_failure
from kaskad.interfaces.cli.journeys import _console, _fail

providers_cli = typer.Typer(no_args_is_help=True, help="Gateways: list, test.")


def _app() -> Any:
    from kaskad.interfaces.cli.main import _app, _settings

    return _app(_settings())


@providers_cli.command("list")
def list_command() -> None:
    """Configured providers, their channels and the channels routed to them."""
    app = _app()
    table = Table("name", "type", "channels", "routed here")
    for name, provider in sorted(app.providers.items()):
        kind = "sandbox" if name == "sandbox" else app.settings.providers[name].type
        routed = sorted(c.value for c, p in app.routing.items() if p == name)
        table.add_row(name, kind, ", ".join(sorted(provider.channels)), ", ".join(routed))
    _console().print(table)


class _Collector:
    """A sink that keeps what the gateway reports during the test."""

    def __init__(self) -> None:
        self.received: list[StatusReport] = []
        self.arrived = asyncio.Event()

    async def reports(self, reports: Sequence[StatusReport]) -> None:
        self.received.extend(reports)
        self.arrived.set()

    async def inbound(self, messages: Sequence[InboundMessage]) -> None:
        for message in messages:
            typer.echo(f"inbound from {mask(message.sender)}: {message.text!r}")


@providers_cli.command("test")
def send_test_command(
    name: Annotated[str, typer.Argument(help="The provider, as named in the settings")],
    to: Annotated[str, typer.Option("--to", help="Phone (E.164) or email address")],
    text: Annotated[str, typer.Option(help="Message text")] = "kaskad test message",
    subject: Annotated[str, typer.Option(help="Email subject")] = "kaskad test message",
    channel: Annotated[Channel | None, typer.Option(help="When the provider has several")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a delivery report")] = 0,
) -> None:
    """Send one message and report: exit 0 when the gateway accepted it (and, with --wait,
    did not report a failure), 1 otherwise."""
    app = _app()
    provider = app.providers.get(name)
    if provider is None:
        raise _fail(f"no provider {name!r}; configured: {', '.join(sorted(app.providers))}")
    chosen = channel or (Channel.EMAIL if "@" in to else Channel.SMS)
    if chosen not in provider.channels:
        raise _fail(f"provider {name!r} does not carry {chosen}")
    content = {"subject": subject, "text": text} if chosen is Channel.EMAIL else {"text": text}
    message = OutgoingMessage(
        id=new_id("msg"),
        notification_id=new_id("ntf"),
        contact_id="test",
        channel=chosen,
        provider=name,
        address=to,
        content=content,
        category=Category.SERVICE,
        attempt=1,
    )
    ok = asyncio.run(_test(provider, message, wait))
    raise typer.Exit(0 if ok else 1)


async def _test(provider: Provider, message: OutgoingMessage, wait: float) -> bool:
    collector = _Collector()
    if isinstance(provider, LiveProvider):
        await provider.start(collector)
    try:
        (result,) = await provider.send([message])
        where = mask(message.address)
        typer.echo(f"{result.outcome.value}: {message.channel} to {where}")
        if result.provider_message_id:
            typer.echo(f"provider message id: {result.provider_message_id}")
        if result.error:
            typer.echo(f"error: {result.error}")
        if result.outcome is not SendOutcome.ACCEPTED:
            return False
        return await _await_report(collector, result.provider_message_id, message.id, wait)
    finally:
        if isinstance(provider, LiveProvider):
            await provider.stop()


async def _await_report(
    collector: _Collector, provider_id: str | None, message_id: str, wait: float
) -> bool:
    if wait <= 0:
        return True
    deadline = asyncio.get_running_loop().time() + wait
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        for report in collector.received:
            if report.message_id == message_id or report.provider_message_id == provider_id:
                typer.echo(f"report: {report.status.value} ({report.provider_status or '-'})")
                return not is_failure(report.status)
        collector.arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector.arrived.wait(), left)
    typer.echo(f"no delivery report within {wait:g} s")
    return False
