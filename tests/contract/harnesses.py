"""Each provider under the contract, beside a real peer that plays its gateway.

A harness starts the provider and its peer, knows which addresses the peer accepts,
throttles or refuses, and can make the peer report what became of a message. The contract
itself (``test_provider_contract.py``) is written once against this interface.
"""

from __future__ import annotations

import abc
import asyncio
import email
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from kaskad.adapters.channels.email import SmtpConfig, SmtpProvider, parse_dsn
from kaskad.adapters.channels.sandbox import (
    SandboxDelays,
    SandboxProvider,
    SandboxWebhook,
    report_body,
)
from kaskad.adapters.channels.sms import SmppConfig, SmppProvider
from kaskad.adapters.storage.database import create_db_engine
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.ids import new_id
from kaskad.domain.providers import (
    InboundMessage,
    OutgoingMessage,
    Provider,
    SendOutcome,
    SendResult,
    StatusReport,
)
from kaskad.domain.vocabulary import Category, Channel
from kaskad.engine.clock import VirtualClock
from tests.peers.smsc import start_smsc
from tests.peers.smtp_server import PASSWORD, USER, smtp_server


class Harness(abc.ABC):
    channel: Channel
    content: ClassVar[dict[str, Any]]
    ok_address: str
    retry_address: str
    permanent_address: str
    # Whether the peer itself refuses a second copy of a client reference (the sandbox, an
    # HTTP API with an idempotency key) or the protocol has no such key (SMPP).
    idempotent_resend: bool

    @abc.abstractmethod
    async def start(self) -> Provider: ...

    @abc.abstractmethod
    async def restart(self) -> Provider:
        """A new provider instance, as a new process after a crash would build."""

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def reports_for(self, results: Sequence[SendResult]) -> list[StatusReport]:
        """Make the peer report delivery of these accepted sends; what kaskad parsed."""

    @abc.abstractmethod
    def received(self, message: OutgoingMessage) -> int:
        """How many copies of this message the peer received."""

    def message(
        self, address: str, attempt: int = 1, message_id: str | None = None
    ) -> OutgoingMessage:
        return OutgoingMessage(
            id=message_id or new_id("msg"),
            notification_id=new_id("ntf"),
            contact_id=new_id("cnt"),
            channel=self.channel,
            provider="contract",
            address=address,
            content=self.content,
            category=Category.TRANSACTIONAL,
            attempt=attempt,
        )


class SandboxHarness(Harness):
    channel = Channel.SMS
    content: ClassVar[dict[str, Any]] = {"text": "Your code is 1234"}
    ok_address = "+380501110001"
    retry_address = "+380501110002"
    permanent_address = "+380501110003"
    idempotent_resend = True

    def __init__(self, sqlite_template: Path, tmp_path: Path) -> None:
        path = tmp_path / "contract.db"
        path.write_bytes(sqlite_template.read_bytes())
        self.db = create_db_engine(f"sqlite:///{path}")
        self.clock = VirtualClock()

    def _build(self) -> Provider:
        return SandboxProvider(self.db, delays=SandboxDelays(sent=1, delivered=2), clock=self.clock)

    async def start(self) -> Provider:
        with UnitOfWork(self.db) as uow:
            uow.sandbox.set_outcome("sms", self.retry_address, "throttled", self.clock.now())
            uow.sandbox.set_outcome("sms", self.permanent_address, "failed", self.clock.now())
            uow.commit()
        return self._build()

    async def restart(self) -> Provider:
        return self._build()

    async def stop(self) -> None:
        self.db.dispose()

    async def reports_for(self, results: Sequence[SendResult]) -> list[StatusReport]:
        self.clock.advance(timedelta(seconds=5))
        with UnitOfWork(self.db) as uow:
            rows = uow.sandbox.claim_due_reports(self.clock.now(), 1000)
            accepted = uow.sandbox.by_provider_ids(r["provider_message_id"] for r in rows)
            body = report_body(rows, accepted)
            uow.sandbox.delete_reports([r["id"] for r in rows])
            uow.commit()
        return SandboxWebhook().parse(body, {})

    def received(self, message: OutgoingMessage) -> int:
        # The sandbox refuses a client reference it has: a resend never reaches anyone.
        with UnitOfWork(self.db) as uow:
            return len(uow.sandbox.accepted([message.id]))


class SmppHarness(Harness):
    """The SMPP provider beside the SMSC peer process; receipts come on the bind."""

    channel = Channel.SMS
    content: ClassVar[dict[str, Any]] = {"text": "Your code is 1234"}
    ok_address = "+380501110001"
    retry_address = "+380501110002"
    permanent_address = "+380501110003"
    idempotent_resend = False  # SMPP has no idempotency key: a resend is a second SMS

    def __init__(self) -> None:
        self._peer_cm = start_smsc(system_id="kaskad", password="secret")
        self.peer = self._peer_cm.__enter__()
        self.peer.call("route", destination=self.permanent_address[1:], command_status=11)
        self.sink = _Sink()
        self._providers: list[SmppProvider] = []

    async def _build(self) -> Provider:
        provider = SmppProvider(
            "smsc",
            SmppConfig(
                port=self.peer.smpp_port,
                system_id="kaskad",
                password="secret",
                reconnect_min=0.05,
                reconnect_max=0.2,
            ),
        )
        self._providers.append(provider)
        await provider.start(self.sink)
        return provider

    async def start(self) -> Provider:
        return await self._build()

    async def restart(self) -> Provider:
        return await self._build()

    async def stop(self) -> None:
        self._peer_cm.__exit__(None, None, None)

    async def reports_for(self, results: Sequence[SendResult]) -> list[StatusReport]:
        wanted = {r.provider_message_id for r in results}
        for _ in range(500):
            if wanted <= {r.provider_message_id for r in self.sink.received}:
                break
            await asyncio.sleep(0.01)
        return list(self.sink.received)

    def received(self, message: OutgoingMessage) -> int:
        state = self.peer.call("state")
        return sum(1 for m in state["messages"] if m["destination"] == message.address[1:])

    def message(
        self, address: str, attempt: int = 1, message_id: str | None = None
    ) -> OutgoingMessage:
        sent = super().message(address, attempt, message_id)
        if address == self.retry_address:
            self.peer.call("throttle", count=1)
        return sent


class SmtpHarness(Harness):
    """The SMTP provider beside an aiosmtpd server (STARTTLS, AUTH). SMTP has no synchronous
    receipt: delivery comes back as a DSN, so ``reports_for`` has the relay's "delivered"
    DSN for each accepted message read by ``parse_dsn``, as the bounce mailbox would."""

    channel = Channel.EMAIL
    content: ClassVar[dict[str, Any]] = {"subject": "Your statement", "text": "It is ready."}
    ok_address = "anna@example.com"
    retry_address = "busy@example.com"
    permanent_address = "nobody@example.com"
    # An SMTP server takes a second copy; the same Message-ID lets mail clients fold the two.
    idempotent_resend = False

    def __init__(self, tmp_path: Path) -> None:
        self._server_cm = smtp_server(tmp_path)
        self.server = self._server_cm.__enter__()
        self.server.recorder.script[self.retry_address] = ["451 4.7.1 Try again later"] * 100
        self.server.recorder.script[self.permanent_address] = ["550 5.1.1 No such user"] * 100

    def _build(self) -> Provider:
        return SmtpProvider(
            "mail",
            SmtpConfig(
                port=self.server.port,
                username=USER,
                password=PASSWORD,
                from_address="Bank <noreply@bank.example>",
                ca_file=str(self.server.cert),
                timeout=10,
            ),
        )

    async def start(self) -> Provider:
        return self._build()

    async def restart(self) -> Provider:
        return self._build()

    async def stop(self) -> None:
        self._server_cm.__exit__(None, None, None)

    async def reports_for(self, results: Sequence[SendResult]) -> list[StatusReport]:
        reports: list[StatusReport] = []
        for result in results:
            if result.outcome is SendOutcome.ACCEPTED and result.provider_message_id:
                dsn = _delivered_dsn(self.ok_address, result.provider_message_id)
                reports.extend(parse_dsn(dsn, "mail"))
        return reports

    def received(self, message: OutgoingMessage) -> int:
        wanted = f"{message.id}@bank.example"
        return sum(
            1
            for m in self.server.recorder.messages
            if email.message_from_bytes(m["raw"]).get("Message-ID", "").strip("<> ") == wanted
        )


class _Sink:
    def __init__(self) -> None:
        self.received: list[StatusReport] = []

    async def reports(self, reports: Sequence[StatusReport]) -> None:
        self.received.extend(reports)

    async def inbound(self, messages: Sequence[InboundMessage]) -> None:
        return None


def _delivered_dsn(recipient: str, message_id: str) -> bytes:
    """What a relay sends back for a delivery notification (NOTIFY=SUCCESS): the returned
    headers carry only the Message-ID."""
    return (
        "From: MAILER-DAEMON@relay.example\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{message_id}>\r\n\r\n"
        "--B--\r\n"
    ).encode()
