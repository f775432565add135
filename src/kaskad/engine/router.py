"""Routing at send time: each claimed message of a routed channel goes to the best provider
whose circuit breaker lets it through; a message whose last attempt ended in a retry goes to
the provider after the one that failed.

Breakers live in memory, per worker process: a process that starts again trusts every
provider until they fail again, and two workers learn about an outage each on its own.
The message id stays the client reference on every provider.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from kaskad.domain.providers import OutgoingMessage, SendOutcome, SendResult
from kaskad.domain.routing import (
    BreakerPhase,
    BreakerSettings,
    CircuitBreaker,
    RandomSource,
    Route,
    after,
    candidates,
    first_admitted,
)
from kaskad.domain.vocabulary import Channel

log = logging.getLogger(__name__)


def per_message(message_id: str) -> RandomSource:
    """The weighted draw seeded by the client reference: a message resent after a crash
    goes to the same provider as before (while the breakers agree), which can recognise
    the reference, instead of reaching the customer through another one."""
    return random.Random(message_id)


@dataclass(frozen=True, slots=True)
class Failover:
    """A message sent elsewhere than its first choice, and why (for logs and metrics)."""

    channel: Channel
    source: str
    target: str
    reason: str


@dataclass(frozen=True, slots=True)
class Routed:
    """What routing made of a claim: the messages with their providers, the ids that were
    routed (their results name the provider), those no provider may take now, and the
    failovers."""

    messages: list[OutgoingMessage]
    routed: set[str]
    blocked: list[SendResult]
    failovers: list[Failover]


class Router:
    def __init__(
        self,
        routes: Mapping[Channel, Sequence[Route]],
        defaults: Mapping[Channel, str],
        breaker: BreakerSettings,
        rng: Callable[[str], RandomSource] = per_message,
    ) -> None:
        self._routes = {channel: list(r) for channel, r in routes.items() if r}
        self._defaults = defaults
        self._settings = breaker
        self._rng = rng
        self.breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, provider: str) -> CircuitBreaker:
        return self.breakers.get(provider) or CircuitBreaker(self._settings)

    def routable(self, message: OutgoingMessage) -> bool:
        """A channel with routes, and a message left to the channel's default (a step that
        named another provider keeps it), or one routing already moved."""
        if message.channel not in self._routes:
            return False
        return message.retried_on is not None or message.provider == self._defaults.get(
            message.channel
        )

    def route(self, claimed: Sequence[OutgoingMessage], now: datetime) -> Routed:
        out = Routed([], set(), [], [])
        for message in claimed:
            if not self.routable(message):
                out.messages.append(message)
                continue
            ordered = candidates(
                self._routes[message.channel], message.address, self._rng(message.id)
            )
            ordered = after(ordered, message.retried_on)
            chosen = first_admitted(ordered, lambda name: self.breaker(name).admits(now))
            if chosen is None:
                out.blocked.append(self._blocked(message, ordered, now))
                continue
            self.breakers[chosen] = self.breaker(chosen).sent(now)
            out.messages.append(replace(message, provider=chosen))
            out.routed.add(message.id)
            failover = _failover(message, ordered, chosen)
            if failover is not None:
                out.failovers.append(failover)
        return out

    def _blocked(self, message: OutgoingMessage, ordered: list[str], now: datetime) -> SendResult:
        """Every provider's breaker is open: a retry when the first of them lets a probe by
        (an attempt used, so a long outage ends in the cascade's next step)."""
        reopen = [at for name in ordered if (at := self.breaker(name).reopens_at()) is not None]
        wait = max(1.0, (min(reopen) - now).total_seconds()) if reopen else 1.0
        return SendResult.retry(
            message.id, f"every {message.channel} provider is failing (circuit open)", wait
        )

    def withdrawn(self, provider: str) -> None:
        """Nothing of a routed batch reached the provider (held over its rate)."""
        if provider in self.breakers:
            self.breakers[provider] = self.breakers[provider].withdrawn()

    def answered(self, provider: str, results: Sequence[SendResult], now: datetime) -> bool:
        """One send call's answer moves the provider's breaker: a call whose every message
        must be retried (an error, a timeout, throttling) is a failure. True when this
        answer opened the breaker."""
        if not results:
            return False
        breaker = self.breaker(provider)
        if all(r.outcome is SendOutcome.RETRY for r in results):
            updated = self.breakers[provider] = breaker.failed(now)
            opened = updated.opened_at != breaker.opened_at
            if opened:
                log.warning(
                    "provider %s circuit open after %d failure(s); a probe after %s",
                    provider,
                    updated.failures,
                    updated.reopens_at(),
                )
            return opened
        self.breakers[provider] = breaker.succeeded()
        if breaker.phase is not BreakerPhase.CLOSED:
            log.info("provider %s answers again; circuit closed", provider)
        return False


def _failover(message: OutgoingMessage, ordered: list[str], chosen: str) -> Failover | None:
    if message.retried_on is not None and chosen != message.retried_on:
        return Failover(message.channel, message.retried_on, chosen, "retry")
    if ordered and chosen != ordered[0]:
        return Failover(message.channel, ordered[0], chosen, "circuit open")
    return None


def summarise(failovers: Sequence[Failover]) -> Counter[Failover]:
    """Failovers counted by kind, so a batch in an outage logs one line per pair, not per
    message (and never an address)."""
    return Counter(failovers)
