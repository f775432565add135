"""Provider routing: which providers may carry a message, in which order, and when a failing
provider is left alone for a while (its circuit breaker).

Pure: the caller passes the random source and ``now``. The engine keeps the breakers (in
memory, per process) and asks these functions before every send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


class RandomSource(Protocol):
    """What routing needs of a random generator (``random.Random`` fits)."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Route:
    """One provider that may carry a channel's messages to the addresses it covers.

    ``prefixes`` empty covers every address. ``cost`` is per message, in one currency
    across a channel's routes; only its order matters. A ``weight`` of 0 makes a standby:
    chosen only after every weighted route of its rank.
    """

    provider: str
    priority: int = 1
    weight: float = 1.0
    cost: float = 0.0
    prefixes: tuple[str, ...] = ()

    def match(self, address: str) -> int | None:
        """How specifically this route covers ``address``: the length of its longest
        matching prefix, 0 for a route without prefixes, None when it does not cover it."""
        if not self.prefixes:
            return 0
        digits = _bare(address)
        lengths = [len(_bare(p)) for p in self.prefixes if digits.startswith(_bare(p))]
        return max(lengths) if lengths else None


def _bare(text: str) -> str:
    """Compare addresses without the E.164 ``+``: a prefix may be written either way."""
    return text.strip().removeprefix("+").lower()


def candidates(routes: Sequence[Route], address: str, rng: RandomSource) -> list[str]:
    """The providers for ``address``, best first: the longest matching prefix, then the
    lowest cost, then the lowest priority number, then a weighted draw among equals.

    Every covering route is listed, so the ones after the first are where a message goes
    when the ones before it fail. A provider named by several routes appears once, at its
    best place.
    """
    ranked: dict[tuple[int, float, int], list[Route]] = {}
    for route in routes:
        length = route.match(address)
        if length is not None:
            ranked.setdefault((-length, route.cost, route.priority), []).append(route)
    ordered: list[str] = []
    for rank in sorted(ranked):
        for provider in _weighted_order(ranked[rank], rng):
            if provider not in ordered:
                ordered.append(provider)
    return ordered


def _weighted_order(routes: list[Route], rng: RandomSource) -> list[str]:
    """A weighted shuffle: each next provider drawn in proportion to its weight from those
    left; standbys (weight 0) follow in the order given."""
    pool = [r for r in routes if r.weight > 0]
    order: list[str] = []
    while pool:
        point = rng.random() * sum(r.weight for r in pool)
        index = len(pool) - 1
        for i, route in enumerate(pool):
            point -= route.weight
            if point < 0:
                index = i
                break
        order.append(pool.pop(index).provider)
    return order + [r.provider for r in routes if r.weight <= 0]


def after(ordered: Sequence[str], provider: str | None) -> list[str]:
    """The candidates starting after ``provider`` (the one that just failed), wrapping
    round, so a retry goes to the next provider and comes back to the first only last."""
    if provider is None or provider not in ordered:
        return list(ordered)
    index = ordered.index(provider) + 1
    return [*ordered[index:], *ordered[:index]]


def first_admitted(ordered: Iterable[str], admits: Callable[[str], bool]) -> str | None:
    """The first provider whose breaker lets a message through, or None when all are open."""
    return next((name for name in ordered if admits(name)), None)


class BreakerPhase(StrEnum):
    CLOSED = "closed"  # sends flow
    OPEN = "open"  # the provider is skipped until the open period ends
    HALF_OPEN = "half_open"  # one probe may go; its answer closes or reopens the breaker


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failures_to_open: int = 5
    open_for: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """One provider's breaker as a value: each method returns the breaker after the event.

    A failure is a send call that raised, timed out or answered every message with a retry;
    any other answer is a success (a provider that refuses a bad number is working).
    """

    settings: BreakerSettings = BreakerSettings()
    phase: BreakerPhase = BreakerPhase.CLOSED
    failures: int = 0
    opened_at: datetime | None = None
    probing: bool = False

    def phase_at(self, now: datetime) -> BreakerPhase:
        """OPEN turns HALF_OPEN by itself once the open period has passed."""
        if (
            self.phase is BreakerPhase.OPEN
            and self.opened_at is not None
            and now >= self.opened_at + self.settings.open_for
        ):
            return BreakerPhase.HALF_OPEN
        return self.phase

    def admits(self, now: datetime) -> bool:
        """Whether a message may go now: always when closed, never when open, and only the
        one probe when half-open."""
        phase = self.phase_at(now)
        if phase is BreakerPhase.CLOSED:
            return True
        return phase is BreakerPhase.HALF_OPEN and not self.probing

    def sent(self, now: datetime) -> CircuitBreaker:
        """A message went through: in half-open, it is the probe and the door shuts behind it."""
        if self.phase_at(now) is BreakerPhase.HALF_OPEN:
            return replace(self, phase=BreakerPhase.HALF_OPEN, probing=True)
        return self

    def withdrawn(self) -> CircuitBreaker:
        """The probe was held back before the provider saw it: the next message may probe."""
        return replace(self, probing=False)

    def succeeded(self) -> CircuitBreaker:
        """The provider answered: closed, the failure count starts again."""
        return replace(self, phase=BreakerPhase.CLOSED, failures=0, opened_at=None, probing=False)

    def failed(self, now: datetime) -> CircuitBreaker:
        """One more failure: the Nth in a row opens; a failed probe opens again at once."""
        phase = self.phase_at(now)
        if phase is BreakerPhase.OPEN:
            return self  # a late answer from before it opened: the open period stands
        failures = self.failures + 1
        if phase is BreakerPhase.HALF_OPEN or failures >= self.settings.failures_to_open:
            return replace(
                self, phase=BreakerPhase.OPEN, failures=failures, opened_at=now, probing=False
            )
        return replace(self, failures=failures)

    def reopens_at(self) -> datetime | None:
        """When an open breaker lets its probe through."""
        if self.phase is not BreakerPhase.OPEN or self.opened_at is None:
            return None
        return self.opened_at + self.settings.open_for
