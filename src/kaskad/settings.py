"""Settings from ``KASKAD_*`` environment variables and an optional TOML file (``KASKAD_CONFIG``).

Environment variables win over the file. In production mode kaskad refuses to start with a
missing or default secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kaskad.domain.vocabulary import Channel

DEVELOPMENT_SECRET = "development-only-secret-change-me"  # noqa: S105 - the known default
SANDBOX_OUTCOMES = ("delivered", "seen", "clicked", "undelivered", "undeliverable", "failed")


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

    @property
    def secret(self) -> str:
        return self.secret_key.get_secret_value() if self.secret_key else DEVELOPMENT_SECRET

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
