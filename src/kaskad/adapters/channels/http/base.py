"""What every HTTP provider shares: one pooled async client, a timeout on every call, a few
quick retries on 429/5xx and dropped connections, and one reading of HTTP answers.

A provider subclass says how to build its request (``call``) and how to read its success
(``accepted``); failures are read here, the same way for every provider, unless the
provider's documented error body says better (``refusal``). A retry that would wait longer
than ``max_inline_wait`` goes back to the engine, which retries from the outbox with its own
backoff, so a slow provider never holds a worker.
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpx

from kaskad.adapters.channels.window import PriorityWindow
from kaskad.domain.providers import (
    OutgoingMessage,
    PermanentSendError,
    RetryableSendError,
    SendOutcome,
    SendResult,
)
from kaskad.domain.vocabulary import Channel, MessageStatus

# Answers a provider gives when it is busy or broken, not because of the message.
RETRYABLE_STATUS: Final = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How one provider's HTTP client behaves; every field has a setting of the same name."""

    base_url: str
    timeout: float = 10.0
    connections: int = 50
    retries: int = 2
    backoff: float = 0.2
    max_inline_wait: float = 2.0
    verify: bool | str = True  # False, True or a CA bundle file
    http2: bool = False


class HttpProvider(abc.ABC):
    """A provider reached over HTTP. Messages of a batch go out concurrently, each on its
    own request, over one pooled client per event loop."""

    name: str
    channels: frozenset[Channel]

    def __init__(
        self,
        name: str,
        options: HttpOptions,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.options = options
        self._sleep = sleep
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._window: PriorityWindow | None = None

    # -- what a provider says -------------------------------------------------------------

    @abc.abstractmethod
    async def call(self, client: httpx.AsyncClient, message: OutgoingMessage) -> httpx.Response:
        """Send one message; raise ``PermanentSendError`` for content the provider cannot
        take (no template, no button URL) before any request is made."""

    @abc.abstractmethod
    def accepted(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        """Read a 2xx answer: the provider's id for the message, its price if it says."""

    def refusal(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        """Read a non-2xx answer. The default goes by the status code alone."""
        return read_failure(message, response)

    # -- the shared part ------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (a client cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            o = self.options
            self._client = httpx.AsyncClient(
                base_url=o.base_url,
                timeout=httpx.Timeout(o.timeout),
                limits=httpx.Limits(
                    max_connections=o.connections, max_keepalive_connections=o.connections
                ),
                verify=o.verify,
                http2=o.http2,
                transport=self._transport,
            )
            self._loop = loop
            self._window = PriorityWindow(o.connections)
        return self._client

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        return await asyncio.gather(*(self.send_one(m) for m in batch))

    async def send_one(self, message: OutgoingMessage) -> SendResult:
        wait = self.options.backoff
        for attempt in range(self.options.retries + 1):
            try:
                result = await self._attempt(message)
            except PermanentSendError as exc:
                return SendResult.failed(message.id, str(exc), exc.status)
            except RetryableSendError as exc:
                result = SendResult.retry(message.id, str(exc), exc.retry_after)
            if result.outcome is not SendOutcome.RETRY or attempt == self.options.retries:
                return result
            pause = result.retry_after if result.retry_after is not None else wait
            if pause > self.options.max_inline_wait:
                return result
            await self._sleep(pause)
            wait *= 2
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover

    async def _attempt(self, message: OutgoingMessage) -> SendResult:
        client = self.client()
        # At most ``connections`` requests at once, urgent ones first: beyond that they would
        # wait in the client's pool in arrival order, an OTP behind a whole campaign.
        window = self._window
        assert window is not None
        await window.acquire(message.is_urgent)
        try:
            response = await self.call(client, message)
        except httpx.TimeoutException as exc:
            return SendResult.retry(message.id, f"{self.name}: no answer in time ({exc!r})")
        except httpx.TransportError as exc:
            return SendResult.retry(message.id, f"{self.name}: connection failed ({exc!r})")
        finally:
            window.release()
        if response.is_success:
            return self.accepted(message, response)
        return self.refusal(message, response)

    async def stop(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.aclose()
        self._client = None


def read_failure(message: OutgoingMessage, response: httpx.Response) -> SendResult:
    """A non-2xx answer by its status: busy or broken is a retry (``Retry-After`` kept),
    a refusal of the message itself is a failure. 401/403 are retried: a wrong key is
    fixed by an operator, and the message should still go once it is."""
    code = response.status_code
    why = f"HTTP {code}: {snippet(response)}"
    if code in RETRYABLE_STATUS or code >= 500 or code in (401, 403):
        return SendResult.retry(message.id, why, retry_after(response))
    status = MessageStatus.REJECTED if code in (400, 422) else MessageStatus.FAILED
    return SendResult.failed(message.id, why, status)


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - current).total_seconds())


def snippet(response: httpx.Response, limit: int = 200) -> str:
    """The start of an error body for the message's history; never the request (it may
    carry the address and the text)."""
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")
