"""The generic webhook provider (``type = "webhook"``) from its settings."""

from __future__ import annotations

from kaskad.adapters.channels.http.webhook import WebhookProvider, WebhookReader
from kaskad.domain.providers import CallbackReader, Provider
from kaskad.engine.clock import Clock, SystemClock
from kaskad.settings import WebhookProviderSettings
from kaskad.wiring import WIRING, http_options, required_secret


def provider(name: str, s: WebhookProviderSettings, clock: Clock) -> Provider:
    """Signatures carry wall-clock time whatever clock the engine runs on: a receiver checks
    them against its own clock."""
    del clock
    return WebhookProvider(
        name,
        http_options(s),
        secret=required_secret(s, "secret"),
        channels=frozenset(s.channels),
        now=SystemClock().now,
    )


def reader(name: str, s: WebhookProviderSettings) -> CallbackReader | None:
    return WebhookReader(name, required_secret(s, "secret"), SystemClock().now)


WIRING["webhook"] = (provider, reader)
