"""Group commit for single-event requests.

Each ``POST /v1/events`` is tiny; a transaction per request would spend most of its time in
round trips and commits. Requests that arrive within a short window are written together in
one transaction, and each gets its own answer. The first request of a window leads: it
waits for the window to pass, then writes the whole group. No background task is needed, so
nothing outlives a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

from kaskad.services.errors import ServiceError

In = TypeVar("In")
Out = TypeVar("Out")


class GroupCommit(Generic[In, Out]):
    def __init__(
        self,
        write: Callable[[Sequence[In]], Sequence[Out]],
        *,
        window: float = 0.002,
        max_batch: int = 500,
    ) -> None:
        self._write = write
        self._window = window
        self._max = max_batch
        self._open: list[tuple[In, asyncio.Future[Out]]] | None = None

    async def submit(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        group = self._open
        if group is not None and len(group) < self._max:
            group.append((item, future))
            return await future
        group = [(item, future)]
        self._open = group
        if self._window > 0:
            # Let the requests already on their way join this transaction.
            await asyncio.sleep(self._window)
        if self._open is group:
            self._open = None
        await self._commit(group)
        return await future

    async def _commit(self, group: list[tuple[In, asyncio.Future[Out]]]) -> None:
        """Settle every future of the group, with a result or an exception."""
        try:
            results = await run_in_threadpool(self._write, [item for item, _ in group])
        except ServiceError as exc:
            if len(group) == 1:
                group[0][1].set_exception(exc)
                return
            # One bad item must not fail its neighbours: write each on its own.
            for item, future in group:
                await self._commit([(item, future)])
            return
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            for _, future in group:
                future.set_exception(exc)
            return
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)
