"""Per-provider limits: a send rate (token bucket) and a window of messages in flight.

Both live in memory, per worker process: with several workers, each keeps its own bucket,
so a provider's rate is shared out by giving each worker its part (``rate_limit`` divided
by the number of workers). Messages over the rate are not failed: they go back to the
outbox until their slot (see ``Gate.admit``), without using up an attempt.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from kaskad.domain.providers import OutgoingMessage, SendResult


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """``rate_limit`` messages per second (None: unlimited), ``burst`` messages at once
    after a quiet spell (None: one second's worth), ``window`` messages handed to the
    provider and not yet answered (None: unlimited), ``timeout`` seconds for one send call
    before it counts as failed (None: the adapter's own timeouts)."""

    rate_limit: float | None = None
    burst: int | None = None
    window: int | None = None
    timeout: float | None = None


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up. Time is passed in, in seconds
    of any monotonic scale, so the bucket follows the engine's clock (a virtual one in
    tests)."""

    def __init__(self, rate: float, burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1, math.ceil(rate)))
        self._tokens = self.burst
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        if self._at is None or now > self._at:
            self._at = now

    def waits(self, now: float, count: int) -> list[float]:
        """Take what the bucket holds for ``count`` messages; the wait of each message left
        over, as if the ones before it took the next tokens."""
        self._refill(now)
        waits: list[float] = []
        missing = 1 - self._tokens if self._tokens < 1 else 0.0
        for _ in range(count):
            if self._tokens >= 1:
                self._tokens -= 1
                waits.append(0.0)
                missing = 1 - self._tokens
                continue
            waits.append(missing / self.rate)
            missing += 1
        return waits


class Window:
    """At most ``size`` messages in flight to one provider; a batch takes its share whole,
    so two batches never each hold half and wait for each other."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._changed = asyncio.Condition()

    async def acquire(self, count: int) -> None:
        count = min(count, self.size)
        async with self._changed:
            await self._changed.wait_for(lambda: self.used + count <= self.size)
            self.used += count

    async def release(self, count: int) -> None:
        async with self._changed:
            self.used -= min(count, self.size)
            self._changed.notify_all()


class Gate:
    """One provider's limits at work in the engine."""

    def __init__(self, limits: ProviderLimits) -> None:
        self.limits = limits
        self.bucket = TokenBucket(limits.rate_limit, limits.burst) if limits.rate_limit else None
        self.window = Window(limits.window) if limits.window else None

    def admit(
        self, batch: Sequence[OutgoingMessage], now: float
    ) -> tuple[list[OutgoingMessage], list[SendResult]]:
        """The messages that may go now, and the rest deferred to their slots. Waiting in
        the outbox rather than in memory keeps a long wait from outliving the lease."""
        if self.bucket is None:
            return list(batch), []
        admitted: list[OutgoingMessage] = []
        held: list[SendResult] = []
        for message, wait in zip(batch, self.bucket.waits(now, len(batch)), strict=True):
            if wait <= 0:
                admitted.append(message)
            else:
                held.append(SendResult.deferred(message.id, wait, "over the provider's rate"))
        return admitted, held

    def chunks(self, batch: list[OutgoingMessage]) -> list[list[OutgoingMessage]]:
        """A batch cut to the window, so each call fits in flight."""
        size = self.limits.window or len(batch) or 1
        return [batch[i : i + size] for i in range(0, len(batch), size)]
