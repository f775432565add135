"""A window of in-flight sends that lets urgent messages go first.

A provider holds at most N unanswered sends (an SMPP window, a pool of HTTP connections).
With a plain semaphore, a one-time code claimed while a campaign drains queues behind every
bulk message already waiting for a slot: thousands of them, seconds. Here the next free
slot goes to the oldest urgent waiter, then to the oldest of the others.
"""

from __future__ import annotations

import asyncio
from collections import deque


class PriorityWindow:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a window holds at least one send")
        self._free = size
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._bulk: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(not f.done() for f in (*self._urgent, *self._bulk))

    async def acquire(self, urgent: bool = False) -> None:
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._bulk
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot came with the cancellation: pass it on
            else:
                future.cancel()
            raise

    def release(self) -> None:
        """Free one slot: to the next waiter (urgent first), else back to the window."""
        for queue in (self._urgent, self._bulk):
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self._free += 1
