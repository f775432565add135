"""The engine loop: timers, the outbox and the sandbox's reports, each claimed in batches.

Every step is one short transaction run in a thread; provider calls happen between
transactions, never inside one. Loops sleep until woken (in-process signal or PostgreSQL
NOTIFY) or until the poll interval passes, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine as DbEngine

from kaskad.adapters import metrics
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.providers import (
    BounceSource,
    InboundMessage,
    LiveProvider,
    OutgoingMessage,
    Provider,
    SendResult,
    StatusReport,
)
from kaskad.domain.routing import BreakerSettings, Route
from kaskad.domain.vocabulary import URGENT_PRIORITY, Channel
from kaskad.engine.clock import Clock, VirtualClock
from kaskad.engine.router import Failover, Router, summarise
from kaskad.engine.sink import EngineSink
from kaskad.engine.throttle import Gate, ProviderLimits
from kaskad.services import inbound, reports, runs, sandbox, sending, timers, triggers
from kaskad.services.rendering import NO_TRACKING, Tracking

log = logging.getLogger(__name__)
T = TypeVar("T")
EARLY_REPORTS_KEPT = timedelta(days=7)
HOUSEKEEPING_EVERY = 3600.0  # seconds
SWITCH_INTERVAL_S = 0.0005
# Priorities from here up (transactional and security by default) are claimed even when a
# sender is full of bulk sends.


@dataclass(frozen=True, slots=True)
class EngineConfig:
    claim_batch: int = 500
    poll_interval: float = 0.5
    lease: timedelta = timedelta(seconds=30)
    retry: sending.RetryPolicy = field(default_factory=sending.RetryPolicy)
    provider_concurrency: int = 256
    sandbox_reports: bool = True
    # Which provider each channel's messages go to, for the sends journey runs make.
    routing: Mapping[Channel, str] = field(default_factory=dict)
    # How often bounce mailboxes are read, in seconds.
    bounce_interval: float = 10.0
    tracking: Tracking = NO_TRACKING
    # Sends older than this leave the send log (no cap looks back that far).
    send_log_kept: timedelta = timedelta(days=90)
    # Several providers per channel (least-cost routing and failover); a channel without
    # routes sends through ``routing`` alone.
    routes: Mapping[Channel, Sequence[Route]] = field(default_factory=dict)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    # Per provider: rate, in-flight window, call timeout.
    limits: Mapping[str, ProviderLimits] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        db: DbEngine,
        *,
        clock: Clock,
        providers: Mapping[str, Provider],
        config: EngineConfig,
        observe: bool = True,
        bounces: Sequence[BounceSource] = (),
    ) -> None:
        self._db = db
        self._bounces = list(bounces)
        self._observe = observe
        self._clock = clock
        self._providers = providers
        self._config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: dict[str, asyncio.Event] = {}
        self._limits = {name: asyncio.Semaphore(config.provider_concurrency) for name in providers}
        self._gates = {name: Gate(limits) for name, limits in config.limits.items()}
        self.router = Router(config.routes, config.routing, config.breaker)
        self.sink = EngineSink(self._apply_reports, self._record_inbound)
        self._housekeeping_at = 0.0
        # Each lane claims on a thread of its own: an OTP's claim must queue neither behind
        # a bulk claim nor behind the transactions recording results in the shared pool.
        self._bulk = _Lane("bulk")
        self._urgent = _Lane("urgent")

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self._db, wake=self.wake, observe=self._observe)

    # -- one step each ---------------------------------------------------------------------
    def advance_timers(self) -> int:
        with _timed("timers", self._observe):
            return timers.advance_due(
                self.uow(), now=self._clock.now(), limit=self._config.claim_batch
            )

    def advance_runs(self) -> int:
        with _timed("runs", self._observe):
            return runs.advance_due(
                self.uow(),
                routing=self._config.routing,
                now=self._clock.now(),
                limit=self._config.claim_batch,
            )

    def fire_schedules(self) -> int:
        with _timed("schedules", self._observe):
            return triggers.fire_due(
                self.uow(),
                routing=self._config.routing,
                now=self._clock.now(),
                limit=self._config.claim_batch,
            )

    def deliver_sandbox_reports(self) -> int:
        with _timed("reports", self._observe):
            return sandbox.deliver_due_reports(
                self.uow(), now=self._clock.now(), limit=self._config.claim_batch
            )

    def _apply_reports(self, items: list[StatusReport]) -> None:
        with _timed("provider_reports", self._observe):
            reports.apply_reports(self.uow(), reports=items, now=self._clock.now())

    def _record_inbound(self, items: list[InboundMessage]) -> None:
        with _timed("inbound", self._observe):
            inbound.record_inbound(
                self.uow(), messages=items, routing=self._config.routing, now=self._clock.now()
            )

    def collect_bounces(self) -> int:
        """Read every bounce mailbox once and apply what it held."""
        found = [report for source in self._bounces for report in source.collect()]
        if found:
            self._apply_reports(found)
        return len(found)

    async def start_providers(self) -> None:
        """Connect the providers that hold their own connection (SMPP binds)."""
        for provider in self._providers.values():
            if isinstance(provider, LiveProvider):
                await provider.start(self.sink)

    async def stop_providers(self) -> None:
        for provider in self._providers.values():
            if isinstance(provider, LiveProvider):
                try:
                    await provider.stop()
                except Exception:
                    log.exception("provider %s did not stop cleanly", provider.name)

    def claim_sends(self, limit: int, min_priority: int | None = None) -> sending.Claim:
        with _timed("outbox", self._observe):
            claim = sending.claim_sends(
                self.uow(),
                now=self._clock.now(),
                limit=limit,
                lease=self._config.lease,
                tracking=self._config.tracking,
                min_priority=min_priority,
            )
        if claim.refused:
            # Failed before any provider saw them (a template that could not be rendered):
            # recorded now, so their cascades move on to the next channel.
            sending.record_results(
                self.uow(),
                results=claim.refused,
                now=self._clock.now(),
                retry=self._config.retry,
            )
        return claim

    async def send_claimed(self, claimed: Sequence[OutgoingMessage]) -> None:
        routed = self.router.route(claimed, self._clock.now())
        self._note_failovers(routed.failovers)
        if routed.blocked:
            await asyncio.to_thread(self._record, routed.blocked)
        by_provider: dict[str, list[OutgoingMessage]] = {}
        for message in routed.messages:
            by_provider.setdefault(message.provider, []).append(message)
        await asyncio.gather(
            *(self._send(name, batch, routed.routed) for name, batch in by_provider.items())
        )

    async def _send(
        self, name: str, batch: list[OutgoingMessage], routed: Collection[str] = ()
    ) -> None:
        provider = self._providers.get(name)
        if provider is None:
            results: Sequence[SendResult] = [
                SendResult.retry(m.id, f"provider {name!r} is not configured here") for m in batch
            ]
        else:
            results = await self._limited(name, provider, batch)
        if routed:
            # The message row must name the provider that took it: reports match on it.
            results = [replace(r, provider=name) if r.message_id in routed else r for r in results]
        for result in results if self._observe else ():
            metrics.SENDS.labels(name, result.outcome.value).inc()
        await asyncio.to_thread(self._record, results)

    def _record(self, results: Sequence[SendResult]) -> None:
        sending.record_results(
            self.uow(), results=results, now=self._clock.now(), retry=self._config.retry
        )

    async def _limited(
        self, name: str, provider: Provider, batch: list[OutgoingMessage]
    ) -> list[SendResult]:
        """Send within the provider's limits: over its rate, messages are deferred (not
        failed); within its window, calls wait for room; every call's answer moves its
        breaker."""
        gate = self._gates.get(name)
        if gate is None:
            async with self._limits[name]:
                answer = list(await _guarded(provider, batch))
            self._answered(name, answer)
            return answer
        admitted, held = gate.admit(batch, self._clock.now().timestamp())
        if not admitted:
            self.router.withdrawn(name)
        chunks = gate.chunks(admitted) if admitted else []
        answers = await asyncio.gather(*(self._call(name, provider, gate, c) for c in chunks))
        return held + [result for answer in answers for result in answer]

    async def _call(
        self, name: str, provider: Provider, gate: Gate, chunk: list[OutgoingMessage]
    ) -> Sequence[SendResult]:
        window = gate.window
        if window is not None:
            await window.acquire(len(chunk))
        try:
            async with self._limits[name]:
                answer = await _guarded(provider, chunk, gate.limits.timeout)
        finally:
            if window is not None:
                await window.release(len(chunk))
        self._answered(name, answer)
        return answer

    def _answered(self, name: str, answer: Sequence[SendResult]) -> None:
        if self.router.answered(name, answer, self._clock.now()) and self._observe:
            metrics.CIRCUIT_OPENED.labels(name).inc()

    def _note_failovers(self, failovers: Sequence[Failover]) -> None:
        """One log line per kind of failover in a claim, counted in metrics; never an
        address. Each message's row names the provider that took it."""
        if not self._observe:
            return
        for failover, count in summarise(failovers).items():
            log.warning(
                "failover: %d %s message(s) from %s to %s (%s)",
                count,
                failover.channel,
                failover.source,
                failover.target,
                failover.reason,
            )
            metrics.FAILOVERS.labels(
                failover.channel.value, failover.source, failover.target, failover.reason
            ).inc(count)

    async def drain_outbox_once(self) -> int:
        claim = await asyncio.to_thread(self.claim_sends, self._config.claim_batch)
        if claim.messages:
            await self.send_claimed(claim.messages)
        return len(claim.messages) + len(claim.refused)

    async def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Do everything due now until nothing is left; for tests and simulations."""
        total = 0
        for _ in range(max_rounds):
            done = self.advance_timers() + self.fire_schedules() + self.advance_runs()
            done += await self.drain_outbox_once()
            if self._config.sandbox_reports:
                done += self.deliver_sandbox_reports()
            if done == 0:
                return total
            total += done
        raise RuntimeError(f"engine still busy after {max_rounds} rounds")

    def next_due(self) -> datetime | None:
        """The earliest moment any work falls due: where a virtual clock jumps next."""
        with self.uow() as uow:
            candidates = [
                uow.notifications.next_due(),
                uow.runs.next_due(),
                uow.schedules.next_due(),
                uow.notifications.next_outbox_due(),
            ]
            if self._config.sandbox_reports:
                candidates.append(uow.sandbox.next_report_due())
        return min((c for c in candidates if c is not None), default=None)

    async def run_until(self, clock: VirtualClock, until: datetime) -> int:
        """Do everything due up to ``until``, jumping the virtual clock from one due time to
        the next: days of a journey pass in milliseconds, in order."""
        total = await self.run_until_idle()
        while (due := self.next_due()) is not None and due <= until:
            clock.set(max(due, clock.now()))
            total += await self.run_until_idle()
        clock.set(max(until, clock.now()))
        return total + await self.run_until_idle()

    # -- running for real ----------------------------------------------------------------
    def wake(self, kinds: Collection[str] | None = None) -> None:
        """Thread-safe: tell the loops for these kinds of work (all when None) that work may
        be due. Waking only the loop concerned spares the others a claim that finds nothing."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for name, event in self._events.items():
            if kinds is None or name in kinds or (name == "urgent" and "outbox" in kinds):
                loop.call_soon_threadsafe(event.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        # The loop thread (sockets to gateways, wake-ups) shares the GIL with the threads
        # writing results and receipts; Python's default 5 ms turns lets one long write
        # hold an OTP's submit for many of them. Shorter turns keep the loop responsive.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        loops: dict[str, Callable[[], Awaitable[float]]] = {
            "timers": self._timer_loop,
            "runs": self._runs_loop,
            "outbox": self._outbox_loop,
            "urgent": self._urgent_loop,
        }
        if self._config.sandbox_reports:
            loops["reports"] = self._reports_loop
        if self._bounces:
            loops["bounces"] = self._bounce_loop
        await self.start_providers()
        tasks = []
        for name, body in loops.items():
            event = asyncio.Event()
            self._events[name] = event
            tasks.append(asyncio.create_task(self._forever(body, event, stop)))
        await stop.wait()
        for event in self._events.values():
            event.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.stop_providers()

    async def _forever(
        self,
        body: Callable[[], Awaitable[float]],
        event: asyncio.Event,
        stop: asyncio.Event,
    ) -> None:
        """Run ``body`` until stopped; it returns how long it may sleep (0 when busy)."""
        while not stop.is_set():
            try:
                pause = await body()
            except Exception:
                # A database hiccup must not end the loop; the work stays in the database.
                log.exception("engine loop error; retrying")
                pause = self._config.poll_interval
            if pause > 0 and not stop.is_set():
                await _wait(event, pause)

    def _pause_until(self, due: datetime | None) -> float:
        """Sleep until the next timer, but never past the poll interval."""
        poll = self._config.poll_interval
        if due is None:
            return poll
        return min(poll, max(0.001, (due - self._clock.now()).total_seconds()))

    def housekeeping(self) -> int:
        """Forget parked receipts whose send never got an answer naming them (a week on), and
        sends older than any cap counts."""
        now = self._clock.now()
        with self.uow() as uow:
            purged = uow.early_reports.purge(now - EARLY_REPORTS_KEPT)
            purged += uow.policy.purge_sends(now - self._config.send_log_kept)
            uow.commit()
        return purged

    async def _timer_loop(self) -> float:
        if time.monotonic() >= self._housekeeping_at:
            self._housekeeping_at = time.monotonic() + HOUSEKEEPING_EVERY
            await asyncio.to_thread(self.housekeeping)
        if await asyncio.to_thread(self.advance_timers) >= self._config.claim_batch:
            return 0
        return self._pause_until(await asyncio.to_thread(self._next, "timers"))

    async def _runs_loop(self) -> float:
        fired = await asyncio.to_thread(self.fire_schedules)
        if await asyncio.to_thread(self.advance_runs) >= self._config.claim_batch or fired:
            return 0
        return self._pause_until(await asyncio.to_thread(self._next, "runs"))

    async def _reports_loop(self) -> float:
        if await asyncio.to_thread(self.deliver_sandbox_reports) >= self._config.claim_batch:
            return 0
        return self._pause_until(await asyncio.to_thread(self._next, "reports"))

    async def _bounce_loop(self) -> float:
        await asyncio.to_thread(self.collect_bounces)
        return self._config.bounce_interval

    def _next(self, kind: str) -> datetime | None:
        with self.uow() as uow:
            if kind == "timers":
                return uow.notifications.next_due()
            if kind == "runs":
                due = [d for d in (uow.runs.next_due(), uow.schedules.next_due()) if d]
                return min(due, default=None)
            return uow.sandbox.next_report_due()

    async def _outbox_loop(self) -> float:
        """Claim while there is capacity; sends run as tasks so claiming never waits on them."""
        return await self._drain_lane(self._bulk, None, self._config.claim_batch * 4)

    async def _urgent_loop(self) -> float:
        """The urgent lane: transactional and security messages claimed by a loop and a
        thread of their own, beside the bulk claims and whatever they hold, so an OTP
        never waits for a campaign's batch to be claimed or sent."""
        return await self._drain_lane(self._urgent, URGENT_PRIORITY, self._config.claim_batch)

    async def _drain_lane(self, lane: _Lane, min_priority: int | None, capacity: int) -> float:
        free = capacity - lane.in_flight
        if free <= 0:
            return self._config.poll_interval
        claim = await asyncio.get_running_loop().run_in_executor(
            lane.thread, self.claim_sends, min(free, self._config.claim_batch), min_priority
        )
        claimed = claim.messages
        if not claimed:
            return 0 if claim.refused else self._config.poll_interval
        task = asyncio.create_task(self.send_claimed(claimed))
        lane.tasks[task] = len(claimed)
        task.add_done_callback(lambda done: self._sent(lane, done))
        return 0 if len(claimed) >= self._config.claim_batch // 2 else 0.001

    def _sent(self, lane: _Lane, task: asyncio.Task[None]) -> None:
        lane.tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "send batch failed; leases will expire and it will be retried",
                exc_info=task.exception(),
            )
        self.wake(("outbox", "urgent", "reports"))  # room for more; the sandbox reports


async def _guarded(
    provider: Provider, batch: list[OutgoingMessage], timeout: float | None = None
) -> Sequence[SendResult]:
    """A provider that raises (or, with a timeout, does not answer in time) gets its batch
    retried, not lost."""
    try:
        return await asyncio.wait_for(provider.send(batch), timeout)
    except TimeoutError:
        log.warning("provider %s did not answer within %ss; will retry", provider.name, timeout)
        return [SendResult.retry(m.id, f"no answer within {timeout}s") for m in batch]
    except Exception as exc:  # noqa: BLE001 - any adapter failure becomes a retry value
        log.warning("provider %s raised %s; will retry", provider.name, type(exc).__name__)
        return [SendResult.retry(m.id, f"{type(exc).__name__}: {exc}") for m in batch]


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    event.clear()


class _Lane:
    """One way messages leave the outbox: its claiming thread and its sends in flight."""

    def __init__(self, name: str) -> None:
        self.thread = ThreadPoolExecutor(1, thread_name_prefix=f"kaskad-claim-{name}")
        self.tasks: dict[asyncio.Task[None], int] = {}

    @property
    def in_flight(self) -> int:
        return sum(self.tasks.values())


class _timed:
    def __init__(self, kind: str, observe: bool = True) -> None:
        self._kind = kind
        self._observe = observe
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        if self._observe:
            metrics.CLAIM_SECONDS.labels(self._kind).observe(time.perf_counter() - self._start)
