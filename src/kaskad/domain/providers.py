"""What the engine and a provider adapter say to each other: a small protocol and values.

Retry decisions are values (``SendOutcome``), not exceptions, so a batch of sends can come
back with some accepted, some to retry and some failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl

from kaskad.domain.vocabulary import URGENT_PRIORITY, Category, Channel, MessageStatus


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to hand to a provider. ``id`` is the client reference: the same on resend."""

    id: str
    notification_id: str
    contact_id: str
    channel: Channel
    provider: str
    address: str
    content: Mapping[str, Any]
    category: Category
    attempt: int
    # The provider whose retry ended the previous attempt, for a routed message: the next
    # attempt goes to the provider after it.
    retried_on: str | None = None
    # The notification's priority: a provider with a queue of its own (an SMPP window, a pool
    # of connections) lets urgent messages (``is_urgent``) go ahead of the bulk waiting there.
    priority: int = 0

    @property
    def is_urgent(self) -> bool:
        return self.priority >= URGENT_PRIORITY


class SendOutcome(StrEnum):
    ACCEPTED = "accepted"
    RETRY = "retry"
    FAILED = "failed"
    # Held back before any provider saw it (over a provider's rate): back in the outbox
    # until its slot, without using up an attempt.
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class SendResult:
    message_id: str
    outcome: SendOutcome
    provider_message_id: str | None = None
    status: MessageStatus = MessageStatus.SUBMITTED
    error: str | None = None
    retry_after: float | None = None
    cost: float | None = None
    currency: str | None = None
    # The provider a routed message went to, so the message row names the one that took it
    # (reports are matched by provider and provider id). None: the message's own provider.
    provider: str | None = None
    # The address is dead for good (an unregistered push token, a number that does not
    # exist): kaskad removes it from the contact so no later message tries it again.
    address_invalid: bool = False

    @classmethod
    def accepted(cls, message_id: str, provider_message_id: str, **kw: Any) -> SendResult:
        return cls(message_id, SendOutcome.ACCEPTED, provider_message_id, **kw)

    @classmethod
    def retry(cls, message_id: str, error: str, retry_after: float | None = None) -> SendResult:
        return cls(message_id, SendOutcome.RETRY, error=error, retry_after=retry_after)

    @classmethod
    def failed(
        cls, message_id: str, error: str, status: MessageStatus = MessageStatus.FAILED
    ) -> SendResult:
        return cls(message_id, SendOutcome.FAILED, status=status, error=error)

    @classmethod
    def dead_address(cls, message_id: str, error: str) -> SendResult:
        return cls(
            message_id,
            SendOutcome.FAILED,
            status=MessageStatus.UNDELIVERABLE,
            error=error,
            address_invalid=True,
        )

    @classmethod
    def deferred(cls, message_id: str, wait: float, why: str) -> SendResult:
        return cls(message_id, SendOutcome.DEFERRED, error=why, retry_after=wait)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A provider's word on a message, matched by our id or by the provider's id."""

    provider: str
    status: MessageStatus
    at: datetime
    message_id: str | None = None
    provider_message_id: str | None = None
    provider_status: str | None = None
    cost: float | None = None
    currency: str | None = None


class Provider(Protocol):
    """An adapter to one gateway. ``send`` takes a batch; providers that can't batch loop."""

    name: str
    channels: frozenset[Channel]

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]: ...


class WebhookError(ValueError):
    """A webhook body that cannot be read."""


class BadSignature(WebhookError):
    """A webhook whose signature is missing or does not match: rejected, nothing changes."""


class WebhookParser(Protocol):
    """Turns a provider's callback into status reports through its status mapping table."""

    name: str

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[StatusReport]: ...


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a customer sent to us (an SMS MO, a reply): stored and tied to the contact."""

    provider: str
    channel: Channel
    sender: str
    recipient: str
    text: str
    at: datetime
    provider_message_id: str | None = None
    # The provider's id of our message this answers (a WhatsApp reply's context, the call a
    # keypress was made on), when the provider says.
    in_reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One call a provider made to ``/v1/webhooks/{provider}``, as the reader needs it: the
    full URL (Twilio signs it), headers with lower-case names, the query and the raw body."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body as a dict (the last value wins)."""
        try:
            return dict(parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError as exc:
            raise WebhookError(f"the form body is not UTF-8: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Callback:
    """What one webhook call carried. ``answer`` is what the provider expects back, when it
    expects more than 200 OK: a verification challenge, a voice call's next instructions."""

    reports: Sequence[StatusReport] = ()
    inbound: Sequence[InboundMessage] = ()
    answer: tuple[str, bytes] | None = None  # (media type, body)


class CallbackReader(Protocol):
    """Reads a provider's webhook calls: checks the signature first (``BadSignature``), then
    maps statuses through the provider's table and replies into inbound messages."""

    name: str

    def read(self, request: WebhookRequest) -> Callback: ...


class ParsedReports:
    """A ``WebhookParser`` (reports only, body and headers) as a ``CallbackReader``."""

    def __init__(self, parser: WebhookParser) -> None:
        self.name = parser.name
        self._parser = parser

    def read(self, request: WebhookRequest) -> Callback:
        if request.method != "POST":
            raise WebhookError(f"{self.name} webhooks are POSTed")
        return Callback(reports=self._parser.parse(request.body, request.headers))


class ReportSink(Protocol):
    """Where a provider that holds its own connection (SMPP) hands what arrives on it.

    Both calls return only once what they were given is stored, so the provider may
    acknowledge it to the peer (``deliver_sm_resp``) knowing nothing is lost.
    """

    async def reports(self, reports: Sequence[StatusReport]) -> None: ...

    async def inbound(self, messages: Sequence[InboundMessage]) -> None: ...


@runtime_checkable
class LiveProvider(Provider, Protocol):
    """A provider with a lifetime: it connects on ``start`` and reports through the sink."""

    async def start(self, sink: ReportSink) -> None: ...

    async def stop(self) -> None: ...


class SendError(Exception):
    """A send that did not go through; adapters turn these into ``SendResult`` values."""


class RetryableSendError(SendError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    def __init__(self, message: str, status: MessageStatus = MessageStatus.FAILED) -> None:
        super().__init__(message)
        self.status = status


class BounceSource(Protocol):
    """A mailbox of asynchronous bounces (DSN) the engine reads now and then."""

    name: str

    def collect(self) -> list[StatusReport]: ...
