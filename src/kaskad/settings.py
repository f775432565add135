"""Settings from ``KASKAD_*`` environment variables and an optional TOML file (``KASKAD_CONFIG``).

Environment variables win over the file. In production mode kaskad refuses to start with a
missing or default secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kaskad.domain.verifications import check_alphabet
from kaskad.domain.vocabulary import Channel

DEVELOPMENT_SECRET = "development-only-secret-change-me"  # noqa: S105 - the known default
SANDBOX_OUTCOMES = (
    "delivered",
    "seen",
    "clicked",
    "undelivered",
    "undeliverable",
    "failed",
    "throttled",
)


class SandboxSettings(BaseSettings):
    """Delays (seconds after the send) at which the sandbox reports each status."""

    sent_after: float = 0.2
    delivered_after: float = 1.0
    seen_after: float = 3.0
    clicked_after: float = 5.0
    default_outcome: str = "delivered"
    # Weights for a random outcome per message, e.g. {"delivered": 6, "undelivered": 2,
    # "seen": 2}; empty means every message gets ``default_outcome``.
    random_mix: dict[str, float] = Field(default_factory=dict)

    @field_validator("default_outcome")
    @classmethod
    def _known_outcome(cls, value: str) -> str:
        if value not in SANDBOX_OUTCOMES:
            raise ValueError(f"unknown sandbox outcome {value!r}; one of {SANDBOX_OUTCOMES}")
        return value

    @field_validator("random_mix")
    @classmethod
    def _known_mix(cls, value: dict[str, float]) -> dict[str, float]:
        for outcome, weight in value.items():
            if outcome not in SANDBOX_OUTCOMES or weight < 0:
                raise ValueError(f"bad sandbox mix entry {outcome!r}: {weight}")
        return value


class OtpSettings(BaseModel):
    """One-time codes (POST /v1/verifications) — see docs/otp.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code_length: int = Field(6, ge=4, le=12)
    alphabet: str = "0123456789"
    expiry_seconds: float = Field(300, gt=0, le=86400)
    max_attempts: int = Field(5, ge=1, le=20)
    # How long each step of the cascade waits to be delivered before the next channel.
    step_timeout_seconds: float = Field(30, gt=0, le=3600)
    # {code} and {minutes} are filled in; a voice call reads the code one character at a time.
    text: str = "Your code is {code}. It expires in {minutes} minutes."
    push_title: str = "Verification code"
    email_subject: str = "Your verification code"
    # Against SMS pumping: codes per phone and per client IP in a rolling window (0 = off).
    phone_limit: int = Field(5, ge=0)
    phone_window_seconds: float = Field(900, gt=0)
    ip_limit: int = Field(20, ge=0)
    ip_window_seconds: float = Field(3600, gt=0)

    @field_validator("alphabet")
    @classmethod
    def _usable_alphabet(cls, value: str) -> str:
        return check_alphabet(value)

    @field_validator("text")
    @classmethod
    def _has_code(cls, value: str) -> str:
        if "{code}" not in value:
            raise ValueError("the OTP text needs {code}")
        return value


class _Secretive(BaseModel):
    """Provider settings name where secrets live (an env var or a file), never the secret:
    a settings file is shared, copied and committed; the environment and mounted files are
    where deployments keep secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def secret(self, name: str) -> str | None:
        env = getattr(self, f"{name}_env", None)
        path = getattr(self, f"{name}_file", None)
        if env:
            value = os.environ.get(env)
            if value is None:
                raise ValueError(f"{name}_env names {env}, which is not set")
            return value
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise ValueError(f"{name}_file {path!r}: {exc.strerror}") from exc
        return None


class SmppProviderSettings(_Secretive):
    """One SMPP 3.4 connection set (an SMSC account) — see docs/providers.md."""

    type: Literal["smpp"]
    host: str
    port: int = 2775
    system_id: str
    password_env: str | None = None
    password_file: str | None = None
    system_type: str = ""
    bind_mode: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    binds: int = Field(1, ge=1, le=32)
    window: int = Field(10, ge=1, le=1000)
    throughput: float = Field(0, ge=0, description="messages/s per bind; 0 = unlimited")
    enquire_link_seconds: float = Field(30, gt=0)
    reconnect_min_seconds: float = Field(1, gt=0)
    reconnect_max_seconds: float = Field(60, gt=0)
    response_timeout_seconds: float = Field(10, gt=0)
    source_addr: str = ""
    validity_seconds: float | None = Field(None, gt=0)
    long_messages: Literal["udh", "sar", "payload"] = "udh"
    registered_delivery: bool = True
    service_type: str = ""
    # The zone of the dates in the SMSC's text receipts (SMPP leaves it to the SMSC).
    receipt_timezone: str = "UTC"


class SmtpProviderSettings(_Secretive):
    """One SMTP relay — see docs/providers.md."""

    type: Literal["smtp"]
    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    from_address: str
    reply_to: str | None = None
    timeout_seconds: float = Field(30, gt=0)
    concurrency: int = Field(4, ge=1, le=100)
    verify_tls: bool = True
    ca_file: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: str | None = None
    attachments_dir: str | None = None
    # Where asynchronous bounces (DSN) arrive: a Maildir kaskad reads, and/or a webhook
    # (POST /v1/webhooks/{name}) signed with the secret named here.
    bounce_maildir: str | None = None
    bounce_webhook_secret_env: str | None = None
    bounce_webhook_secret_file: str | None = None

    @model_validator(mode="after")
    def _dkim_complete(self) -> Self:
        dkim = (self.dkim_selector, self.dkim_domain, self.dkim_key_file)
        if any(dkim) and not all(dkim):
            raise ValueError("DKIM needs dkim_selector, dkim_domain and dkim_key_file together")
        return self


class _HttpProviderSettings(_Secretive):
    """What every HTTP provider shares: where it is and how its client behaves."""

    base_url: str
    timeout_seconds: float = Field(10, gt=0)
    connections: int = Field(50, ge=1, le=1000)
    # Quick retries inside one send on 429/5xx/dropped connections; past these (or a
    # Retry-After longer than max_inline_wait_seconds) the engine retries from the outbox.
    retries: int = Field(2, ge=0, le=10)
    backoff_seconds: float = Field(0.2, ge=0)
    max_inline_wait_seconds: float = Field(2, ge=0)
    verify_tls: bool = True
    ca_file: str | None = None


class WebhookProviderSettings(_HttpProviderSettings):
    """A generic provider: kaskad POSTs JSON to the customer's own URL, HMAC-signed."""

    type: Literal["webhook"]
    channels: list[Channel] = Field(default_factory=lambda: [Channel.PUSH])
    secret_env: str | None = None
    secret_file: str | None = None


ProviderSettings = Annotated[
    SmppProviderSettings | SmtpProviderSettings | WebhookProviderSettings,
    Field(discriminator="type"),
]
HttpProviderSettings = WebhookProviderSettings


class RouteSettings(BaseModel):
    """One provider of a channel's routes — see "Routing and failover" in docs/providers.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    # Lower goes first among routes of equal prefix and cost.
    priority: int = Field(1, ge=0)
    # Share among routes of equal prefix, cost and priority; 0 is a standby.
    weight: float = Field(1.0, ge=0)
    # Per message; only the order matters, so use one currency across a channel's routes.
    cost: float = Field(0.0, ge=0)
    # Address prefixes this route covers (E.164 for phones, with or without "+"); none
    # covers every address.
    prefixes: list[str] = Field(default_factory=list)

    @field_validator("prefixes")
    @classmethod
    def _plain_prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix.strip() or prefix.strip() != prefix or prefix == "+":
                raise ValueError(f"prefix {prefix!r}: an address's start, such as '+38050'")
        return value


class ProviderLimitsSettings(BaseModel):
    """How much one provider takes (``[provider_limits.NAME]``), for any provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit: float | None = Field(None, gt=0, description="messages/s in this process")
    burst: int | None = Field(None, ge=1, description="messages at once after a quiet spell")
    window: int | None = Field(None, ge=1, description="messages in flight, unanswered")
    timeout_seconds: float | None = Field(None, gt=0, description="one send call, at most")


class BreakerConfig(BaseModel):
    """When a failing provider is skipped: after ``failures_to_open`` failed calls in a row,
    for ``open_seconds``, then one probe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failures_to_open: int = Field(5, ge=1)
    open_seconds: float = Field(30.0, gt=0)


class TwoWaySettings(BaseModel):
    """What customers send back — see docs/two-way.md: keywords that change consent, how a
    reply finds the message it answers, and the confirmations sent back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Act on keywords at all; off, STOP and START are stored as plain text.
    keywords: bool = True
    # Compared without case, whitespace or surrounding punctuation ("Stop all!" = STOPALL).
    stop_keywords: list[str] = Field(
        default_factory=lambda: [
            "STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT",
            "СТОП", "ОТПИСАТЬСЯ", "ВІДПИСАТИСЯ",
        ]
    )  # fmt: skip
    stop_all_keywords: list[str] = Field(
        default_factory=lambda: ["STOP ALL", "СТОП ВСЕ", "СТОП ВСЁ", "СТОП УСЕ", "СТОП ВСІ"]
    )
    start_keywords: list[str] = Field(
        default_factory=lambda: [
            "START", "UNSTOP", "SUBSCRIBE", "СТАРТ", "ПОДПИСАТЬСЯ", "ПІДПИСАТИСЯ",
        ]
    )  # fmt: skip
    # What STOP opts out of (security and transactional messages still go by default).
    stop_categories: list[Literal["security", "transactional", "service", "marketing"]] = Field(
        default=["marketing", "service"], min_length=1
    )
    # A reply that names no message answers the latest one sent to the contact on its
    # channel within this window.
    reply_window_seconds: float = Field(172800, gt=0, le=30 * 86400)
    # Sent back on the channel the keyword came on, when set.
    stop_reply: str | None = Field(None, max_length=1000)
    start_reply: str | None = Field(None, max_length=1000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KASKAD_", env_nested_delimiter="__", extra="forbid"
    )

    mode: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///var/kaskad.db"
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: SecretStr | None = None
    log_level: str = "INFO"
    log_json: bool = True

    default_phone_region: str | None = None
    create_unknown_contacts: bool = True

    channels: dict[Channel, str] = Field(default_factory=lambda: dict.fromkeys(Channel, "sandbox"))
    sandbox_enabled: bool = True
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    otp: OtpSettings = Field(default_factory=OtpSettings)
    two_way: TwoWaySettings = Field(default_factory=TwoWaySettings)
    # Real gateways by name, e.g. [providers.smsc] type = "smpp" ...; route channels to them
    # with ``channels``.
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    # Several providers for a channel, chosen per address by prefix, cost, priority and
    # weight, with failover (e.g. [[routes.sms]] provider = "smsc_a" ...). A channel with
    # routes ignores ``channels`` for messages left to its default.
    routes: dict[Channel, list[RouteSettings]] = Field(default_factory=dict)
    provider_limits: dict[str, ProviderLimitsSettings] = Field(default_factory=dict)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)

    # Where customers reach kaskad's short links (/r/...), open pixels and one-click
    # unsubscribe: kaskad's public address. Unset, it is http://host:port.
    public_url: str | None = None
    # Signs short links and unsubscribe tokens; falls back to the secret key.
    link_signing_key: SecretStr | None = None
    # Rewrite links in rendered templates as tracked short links (a template may opt out).
    track_links: bool = True
    # For the cost estimate of template previews: the price of one SMS segment.
    sms_segment_price: float | None = Field(None, ge=0)
    sms_price_currency: str | None = Field(None, min_length=3, max_length=3)

    # The contact pressure policy (caps, quiet hours...), applied as its next version when
    # `serve` or `worker` starts; `kaskad policy apply` and PUT /v1/policy do the same.
    policy_file: Path | None = None
    # How long the send log (what caps count) is kept; longer than the longest cap window.
    send_log_days: int = Field(90, ge=1, le=3650)

    poll_interval: float = 0.5
    claim_batch: int = 500
    provider_concurrency: int = 256
    send_lease_seconds: float = 30.0
    retry_base_seconds: float = 2.0
    max_send_attempts: int = 8
    api_key_cache_seconds: float = 30.0
    # Single events arriving within this window share one transaction (0 turns it off).
    event_group_window_ms: float = 2.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("KASKAD_CONFIG")
        if config:
            if not Path(config).is_file():
                raise ValueError(f"KASKAD_CONFIG={config!r}: no such file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        sources.append(file_secret_settings)
        return tuple(sources)

    @field_validator("default_phone_region")
    @classmethod
    def _upper_region(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Self:
        if self.mode != "production":
            return self
        secret = self.secret_key.get_secret_value() if self.secret_key else ""
        if not secret or secret == DEVELOPMENT_SECRET or len(secret) < 32:
            raise ValueError(
                "KASKAD_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production (it verifies signed webhook callbacks)"
            )
        return self

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, value: dict[str, object]) -> dict[str, object]:
        for name in value:
            if name == "sandbox" or not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(
                    f"provider name {name!r}: letters, digits, - and _ only, not 'sandbox'"
                )
        return value

    @model_validator(mode="after")
    def _routes_name_providers(self) -> Self:
        known = set(self.providers) | ({"sandbox"} if self.sandbox_enabled else set())
        for channel, routes in self.routes.items():
            if not routes:
                raise ValueError(f"routes.{channel}: list at least one route, or leave it out")
            for route in routes:
                if route.provider not in known:
                    raise ValueError(
                        f"routes.{channel}: provider {route.provider!r} is not configured"
                        + (" (the sandbox is disabled)" if route.provider == "sandbox" else "")
                    )
        for name in self.provider_limits:
            if name not in known:
                raise ValueError(f"provider_limits.{name}: no provider of that name")
        return self

    @property
    def link_key(self) -> bytes:
        key = self.link_signing_key.get_secret_value() if self.link_signing_key else self.secret
        return key.encode()

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def secret(self) -> str:
        return self.secret_key.get_secret_value() if self.secret_key else DEVELOPMENT_SECRET

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
