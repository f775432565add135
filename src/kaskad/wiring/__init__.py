"""From the settings of an HTTP provider to the adapter and its webhook reader.

Each provider type has a module here with ``provider(name, settings, clock)`` and
``reader(name, settings)``; ``WIRING`` maps the settings' ``type`` to them. Secrets are read
here (``settings.secret``), once, at start, and handed to the adapter; they never reach a log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kaskad.adapters.channels.http.base import HttpOptions
from kaskad.domain.providers import CallbackReader, Provider
from kaskad.engine.clock import Clock
from kaskad.settings import HttpProviderSettings

ProviderBuilder = Callable[[str, Any, Clock], Provider]
ReaderBuilder = Callable[[str, Any], CallbackReader | None]

# type -> (provider builder, webhook reader builder); each provider's module adds itself.
WIRING: dict[str, tuple[ProviderBuilder, ReaderBuilder]] = {}


def http_options(s: HttpProviderSettings, *, http2: bool = False) -> HttpOptions:
    return HttpOptions(
        base_url=s.base_url.rstrip("/"),
        timeout=s.timeout_seconds,
        connections=s.connections,
        retries=s.retries,
        backoff=s.backoff_seconds,
        max_inline_wait=s.max_inline_wait_seconds,
        verify=s.ca_file or s.verify_tls,
        http2=http2,
    )


def required_secret(s: HttpProviderSettings, name: str) -> str:
    """A secret the provider cannot work without: ``NAME_env`` or ``NAME_file`` must be set."""
    value = s.secret(name)
    if not value:
        raise ValueError(f"set {name}_env or {name}_file")
    return value


def _wiring(s: HttpProviderSettings) -> tuple[ProviderBuilder, ReaderBuilder]:
    _load()
    try:
        return WIRING[s.type]
    except KeyError:
        raise ValueError(f"provider type {s.type!r} is not available in this build") from None


def http_provider(name: str, s: HttpProviderSettings, clock: Clock) -> Provider:
    return _wiring(s)[0](name, s, clock)


def http_callback_reader(name: str, s: HttpProviderSettings) -> CallbackReader | None:
    return _wiring(s)[1](name, s)


def _load() -> None:
    """Import the provider modules, which fill ``WIRING`` (kept out of import time so a
    deployment without HTTP providers never loads them)."""
    from kaskad.wiring import modules  # noqa: F401
