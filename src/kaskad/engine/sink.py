"""Where providers with their own connection (SMPP) hand receipts and inbound messages.

Calls arriving while a transaction is being written wait for the next one, which takes
everything gathered meanwhile: at a thousand receipts a second the database sees a few
dozen transactions, not a thousand. Each call returns once its items are committed, so the
provider acknowledges them to its peer only when nothing can be lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from kaskad.domain.providers import InboundMessage, StatusReport

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(self, write: Callable[[list[T]], object], max_batch: int = 2000) -> None:
        self._write = write
        self._max = max_batch
        self._pending: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def put(self, items: Sequence[T]) -> None:
        if not items:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((items, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._pending:
            taken, size = 0, 0
            while taken < len(self._pending) and size < self._max:
                size += len(self._pending[taken][0])
                taken += 1
            batch, self._pending = self._pending[:taken], self._pending[taken:]
            items = [item for chunk, _ in batch for item in chunk]
            try:
                await asyncio.to_thread(self._write, items)
            except Exception as exc:  # noqa: BLE001 - every waiter learns what happened
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)


class EngineSink:
    """The ``ReportSink`` the engine gives its live providers."""

    def __init__(
        self,
        apply_reports: Callable[[list[StatusReport]], object],
        record_inbound: Callable[[list[InboundMessage]], object],
    ) -> None:
        self._reports = GroupCommit(apply_reports)
        self._inbound = GroupCommit(record_inbound)

    async def reports(self, reports: Sequence[StatusReport]) -> None:
        await self._reports.put(reports)

    async def inbound(self, messages: Sequence[InboundMessage]) -> None:
        await self._inbound.put(messages)
