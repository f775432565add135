"""Each provider under the contract, beside a real peer that plays its gateway.

A harness starts the provider and its peer, knows which addresses the peer accepts,
throttles or refuses, and can make the peer report what became of a message. The contract
itself (``test_provider_contract.py``) is written once against this interface.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from kaskad.adapters.channels.sandbox import (
    SandboxDelays,
    SandboxProvider,
    SandboxWebhook,
    report_body,
)
from kaskad.adapters.storage.database import create_db_engine
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.ids import new_id
from kaskad.domain.providers import OutgoingMessage, Provider, SendResult, StatusReport
from kaskad.domain.vocabulary import Category, Channel
from kaskad.engine.clock import VirtualClock


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
