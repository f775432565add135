"""The generic webhook provider: kaskad POSTs each message as JSON to the customer's own URL
(an in-app inbox, a custom push service), signed, and takes status callbacks back.

Both ways the signature is ``X-Kaskad-Signature: sha256=<hex HMAC-SHA256 of
"{X-Kaskad-Timestamp}.{raw body}" with the shared secret>``; the timestamp (Unix seconds)
is signed too, so a captured request cannot be replayed after ``REPLAY_WINDOW``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx

from kaskad.adapters.channels.http.base import HttpOptions, HttpProvider
from kaskad.adapters.channels.http.signatures import hmac_hex, require
from kaskad.domain.providers import (
    BadSignature,
    Callback,
    OutgoingMessage,
    SendResult,
    StatusReport,
    WebhookError,
    WebhookRequest,
)
from kaskad.domain.vocabulary import Channel, MessageStatus

REPLAY_WINDOW: Final = timedelta(minutes=5)
# What a receiver may report: kaskad's own words, one to one.
WEBHOOK_STATUS: Final[dict[str, MessageStatus]] = {
    s.value: s
    for s in (
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.SEEN,
        MessageStatus.CLICKED,
        MessageStatus.FAILED,
        MessageStatus.REJECTED,
        MessageStatus.EXPIRED,
        MessageStatus.UNDELIVERABLE,
    )
}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac_hex(secret, timestamp.encode() + b"." + body)


class WebhookProvider(HttpProvider):
    def __init__(
        self,
        name: str,
        options: HttpOptions,
        *,
        secret: str,
        channels: frozenset[Channel],
        now: Callable[[], datetime],
        **kw: Any,
    ) -> None:
        super().__init__(name, options, **kw)
        self.channels = channels
        self._secret = secret
        self._now = now

    async def call(self, client: httpx.AsyncClient, message: OutgoingMessage) -> httpx.Response:
        body = json.dumps(
            {
                "id": message.id,
                "notification_id": message.notification_id,
                "contact_id": message.contact_id,
                "channel": message.channel.value,
                "address": message.address,
                "category": message.category.value,
                "attempt": message.attempt,
                "content": dict(message.content),
            },
            separators=(",", ":"),
        ).encode()
        stamp = str(int(self._now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.id,
            "X-Kaskad-Timestamp": stamp,
            "X-Kaskad-Signature": signature(self._secret, stamp, body),
        }
        return await client.post(self.options.base_url, content=body, headers=headers)

    def accepted(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        """The receiver may name the message its own way (``{"id": …}``); else our id."""
        try:
            given = response.json().get("id") if response.content else None
        except (ValueError, AttributeError):
            given = None
        return SendResult.accepted(message.id, str(given or message.id))


class WebhookReader:
    """Status callbacks from the receiver: ``{"reports": [{"id": <kaskad message id>,
    "status": "delivered", "at": "2026-11-24T12:00:00Z"}]}``, signed as above."""

    def __init__(self, name: str, secret: str, now: Callable[[], datetime]) -> None:
        self.name = name
        self._secret = secret
        self._now = now

    def read(self, request: WebhookRequest) -> Callback:
        if request.method != "POST":
            raise WebhookError(f"{self.name} callbacks are POSTed")
        self._check(request)
        try:
            items = json.loads(request.body)["reports"]
            return Callback(reports=[self._report(item) for item in items])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookError(f"not a {self.name} callback: {exc}") from exc

    def _check(self, request: WebhookRequest) -> None:
        stamp = request.headers.get("x-kaskad-timestamp", "")
        if not stamp.isdigit():
            raise BadSignature("no X-Kaskad-Timestamp (Unix seconds)")
        require(request.headers, "X-Kaskad-Signature", signature(self._secret, stamp, request.body))
        sent = datetime.fromtimestamp(int(stamp), UTC)
        if abs(self._now() - sent) > REPLAY_WINDOW:
            raise BadSignature("X-Kaskad-Timestamp is more than 5 minutes off")

    def _report(self, item: Mapping[str, Any]) -> StatusReport:
        status = WEBHOOK_STATUS.get(str(item["status"]).lower())
        if status is None:
            known = ", ".join(sorted(WEBHOOK_STATUS))
            raise WebhookError(f"unknown status {item['status']!r}; one of {known}")
        at = datetime.fromisoformat(item["at"]) if item.get("at") else self._now()
        return StatusReport(
            provider=self.name,
            status=status,
            at=at if at.tzinfo else at.replace(tzinfo=UTC),
            message_id=str(item["id"]),
            provider_status=str(item["status"]),
        )
