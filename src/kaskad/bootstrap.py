"""Builds kaskad's object graph from Settings. Nothing here runs at import time."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine as DbEngine

from kaskad.adapters.channels.email import DsnWebhook, MaildirBounces, SmtpConfig, SmtpProvider
from kaskad.adapters.channels.sandbox import SandboxDelays, SandboxProvider, SandboxWebhook
from kaskad.adapters.channels.sms.smpp import SmppConfig, SmppProvider
from kaskad.adapters.storage.database import create_db_engine, is_current, upgrade
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.providers import (
    BounceSource,
    CallbackReader,
    ParsedReports,
    Provider,
    WebhookParser,
)
from kaskad.domain.routing import BreakerSettings, Route
from kaskad.domain.two_way import TwoWayRules
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import Clock, SystemClock
from kaskad.engine.runner import Engine, EngineConfig
from kaskad.engine.throttle import ProviderLimits
from kaskad.services import inbound
from kaskad.services.rendering import Tracking
from kaskad.services.sending import RetryPolicy
from kaskad.settings import (
    ProviderSettings,
    Settings,
    SmppProviderSettings,
    SmtpProviderSettings,
)
from kaskad.wiring import http_callback_reader, http_provider


class ConfigurationError(ValueError):
    pass


@dataclass
class App:
    settings: Settings
    db: DbEngine
    clock: Clock
    providers: Mapping[str, Provider]
    webhooks: Mapping[str, CallbackReader]
    routing: Mapping[Channel, str]
    engine: Engine
    tracking: Tracking
    api_keys: dict[str, tuple[str, float]] = field(default_factory=dict)

    def uow(self) -> UnitOfWork:
        return self.engine.uow()

    def migrate(self) -> None:
        upgrade(self.db)

    def migrations_current(self) -> bool:
        return is_current(self.db)


def _provider(name: str, configured: ProviderSettings, clock: Clock) -> Provider:
    """A real gateway from its settings; a missing secret is a configuration error."""
    try:
        if isinstance(configured, SmppProviderSettings):
            return _smpp(name, configured, clock)
        if isinstance(configured, SmtpProviderSettings):
            return _smtp(name, configured)
        return http_provider(name, configured, clock)
    except ValueError as exc:
        raise ConfigurationError(f"provider {name!r}: {exc}") from exc


def _callback_readers(settings: Settings) -> dict[str, CallbackReader]:
    """The webhooks of the HTTP providers: each checks its provider's signature."""
    readers: dict[str, CallbackReader] = {}
    for name, configured in settings.providers.items():
        if isinstance(configured, SmppProviderSettings | SmtpProviderSettings):
            continue
        try:
            reader = http_callback_reader(name, configured)
        except ValueError as exc:
            raise ConfigurationError(f"provider {name!r}: {exc}") from exc
        if reader is not None:
            readers[name] = reader
    return readers


def _smpp(name: str, c: SmppProviderSettings, clock: Clock) -> Provider:
    config = SmppConfig(
        host=c.host,
        port=c.port,
        system_id=c.system_id,
        password=c.secret("password") or "",
        system_type=c.system_type,
        bind_mode=c.bind_mode,
        binds=c.binds,
        window=c.window,
        throughput=c.throughput,
        enquire_link_seconds=c.enquire_link_seconds,
        reconnect_min=c.reconnect_min_seconds,
        reconnect_max=c.reconnect_max_seconds,
        response_timeout=c.response_timeout_seconds,
        source_addr=c.source_addr or "kaskad",
        validity=timedelta(seconds=c.validity_seconds) if c.validity_seconds else None,
        long_messages=c.long_messages,
        registered_delivery=c.registered_delivery,
        service_type=c.service_type,
        receipt_timezone=c.receipt_timezone,
    )
    return SmppProvider(name, config, clock=clock)


def _smtp(name: str, c: SmtpProviderSettings) -> Provider:
    key_file = c.dkim_key_file
    try:
        key = Path(key_file).read_bytes() if key_file else None
    except OSError as exc:
        raise ValueError(f"dkim_key_file {key_file!r}: {exc.strerror}") from exc
    config = SmtpConfig(
        host=c.host,
        port=c.port,
        security=c.security,
        username=c.username,
        password=c.secret("password"),
        from_address=c.from_address,
        reply_to=c.reply_to,
        timeout=c.timeout_seconds,
        concurrency=c.concurrency,
        verify_tls=c.verify_tls,
        ca_file=c.ca_file,
        dkim_selector=c.dkim_selector,
        dkim_domain=c.dkim_domain,
        dkim_private_key=key,
        attachments_dir=c.attachments_dir,
    )
    return SmtpProvider(name, config)


def _bounces(settings: Settings) -> tuple[list[BounceSource], dict[str, WebhookParser]]:
    """Bounce mailboxes to read, and DSN webhooks, of the SMTP providers."""
    sources: list[BounceSource] = []
    hooks: dict[str, WebhookParser] = {}
    for name, c in settings.providers.items():
        if not isinstance(c, SmtpProviderSettings):
            continue
        if c.bounce_maildir:
            sources.append(MaildirBounces(name, c.bounce_maildir))
        try:
            secret = c.secret("bounce_webhook_secret")
        except ValueError as exc:
            raise ConfigurationError(f"provider {name!r}: {exc}") from exc
        if secret:  # unsigned, anyone could mark anyone's mail undeliverable
            hooks[name] = DsnWebhook(name, secret)
    return sources, hooks


def _routes(settings: Settings, providers: Mapping[str, Provider]) -> dict[Channel, list[Route]]:
    """The routes as domain values; a provider that cannot carry the channel is refused."""
    routes: dict[Channel, list[Route]] = {}
    for channel, configured in settings.routes.items():
        for r in configured:
            if channel not in providers[r.provider].channels:
                raise ConfigurationError(
                    f"routes.{channel}: provider {r.provider!r} does not carry {channel}"
                )
        routes[channel] = [
            Route(r.provider, r.priority, r.weight, r.cost, tuple(r.prefixes)) for r in configured
        ]
    return routes


def _limits(settings: Settings) -> dict[str, ProviderLimits]:
    return {
        name: ProviderLimits(c.rate_limit, c.burst, c.window, c.timeout_seconds)
        for name, c in settings.provider_limits.items()
    }


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    db: DbEngine | None = None,
    observe: bool = True,
) -> App:
    """Everything kaskad needs, from settings. ``observe=False`` (a simulation) keeps what
    the App does out of the process's metrics and logs."""
    clock = clock or SystemClock()
    db = db or create_db_engine(settings.database_url)
    providers: dict[str, Provider] = {}
    webhooks: dict[str, CallbackReader] = {}
    if settings.sandbox_enabled:
        sb = settings.sandbox
        providers["sandbox"] = SandboxProvider(
            db,
            delays=SandboxDelays(
                sent=sb.sent_after,
                delivered=sb.delivered_after,
                seen=sb.seen_after,
                clicked=sb.clicked_after,
            ),
            default_outcome=sb.default_outcome,
            random_mix=sb.random_mix,
            clock=clock,
            rng=rng,
        )
        webhooks["sandbox"] = SandboxWebhook()  # reports, and keys pressed on calls
    for name, configured in settings.providers.items():
        providers[name] = _provider(name, configured, clock)
    bounces, dsn_hooks = _bounces(settings)
    webhooks.update({name: ParsedReports(hook) for name, hook in dsn_hooks.items()})
    webhooks.update(_callback_readers(settings))
    for channel, name in settings.channels.items():
        if name not in providers:
            raise ConfigurationError(
                f"channel {channel} routes to provider {name!r}, which is not configured"
                + (" (the sandbox is disabled)" if name == "sandbox" else "")
            )
    tracking = Tracking(
        key=settings.link_key, base_url=settings.base_url, enabled=settings.track_links
    )
    engine = Engine(
        db,
        clock=clock,
        providers=providers,
        observe=observe,
        bounces=bounces,
        config=EngineConfig(
            claim_batch=settings.claim_batch,
            poll_interval=settings.poll_interval,
            lease=timedelta(seconds=settings.send_lease_seconds),
            retry=RetryPolicy(
                base=timedelta(seconds=settings.retry_base_seconds),
                max_attempts=settings.max_send_attempts,
            ),
            provider_concurrency=settings.provider_concurrency,
            sandbox_reports=settings.sandbox_enabled,
            routing=dict(settings.channels),
            tracking=tracking,
            send_log_kept=timedelta(days=settings.send_log_days),
            routes=_routes(settings, providers),
            breaker=BreakerSettings(
                failures_to_open=settings.breaker.failures_to_open,
                open_for=timedelta(seconds=settings.breaker.open_seconds),
            ),
            limits=_limits(settings),
        ),
    )
    try:
        rules = TwoWayRules.of(**settings.two_way.model_dump())
    except ValueError as exc:
        raise ConfigurationError(f"two_way: {exc}") from exc
    inbound.configure(engine.uow(), rules=rules, routing=dict(settings.channels))
    return App(
        settings=settings,
        db=db,
        clock=clock,
        providers=providers,
        webhooks=webhooks,
        routing=dict(settings.channels),
        engine=engine,
        tracking=tracking,
    )
