"""The generic webhook provider beside a receiver process (tests/peers/fakes/webhook_receiver)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from kaskad.adapters.channels.http.base import HttpOptions
from kaskad.adapters.channels.http.webhook import WebhookProvider, WebhookReader, signature
from kaskad.domain.providers import (
    OutgoingMessage,
    Provider,
    SendOutcome,
    SendResult,
    StatusReport,
    WebhookRequest,
)
from kaskad.domain.vocabulary import Channel
from tests.contract.harnesses import Harness
from tests.peers.http_peer import run_fake

SECRET = "receiver-shared-secret"


def now() -> datetime:
    return datetime.now(UTC)


def signed_callback(reports: list[dict[str, Any]], secret: str = SECRET) -> WebhookRequest:
    """A status callback as the receiver posts it to /v1/webhooks/NAME."""
    body = json.dumps({"reports": reports}).encode()
    stamp = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "x-kaskad-timestamp": stamp,
        "x-kaskad-signature": signature(secret, stamp, body),
    }
    return WebhookRequest("POST", "http://kaskad/v1/webhooks/inbox", headers, {}, body)


class WebhookHarness(Harness):
    channel = Channel.PUSH
    content: ClassVar[dict[str, Any]] = {"title": "Card payment", "text": "UAH 1,200 at Silpo"}
    ok_address = "device-1"
    retry_address = "busy-1"
    permanent_address = "bad-1"
    idempotent_resend = True  # the receiver refuses a repeated Idempotency-Key

    def __init__(self) -> None:
        self._peer_cm = run_fake(
            "tests.peers.fakes.webhook_receiver:app", env={"FAKE_WEBHOOK_SECRET": SECRET}
        )
        self.peer = self._peer_cm.__enter__()

    def _build(self) -> Provider:
        async def no_wait(_: float) -> None:
            return None

        return WebhookProvider(
            "inbox",
            HttpOptions(base_url=f"{self.peer.url}/inbox", connections=4),
            secret=SECRET,
            channels=frozenset({Channel.PUSH}),
            now=now,
            sleep=no_wait,
        )

    async def start(self) -> Provider:
        return self._build()

    async def restart(self) -> Provider:
        return self._build()

    async def stop(self) -> None:
        self._peer_cm.__exit__(None, None, None)

    async def reports_for(self, results: Sequence[SendResult]) -> list[StatusReport]:
        accepted = [r for r in results if r.outcome is SendOutcome.ACCEPTED]
        items = [{"id": r.message_id, "status": "delivered"} for r in accepted]
        reader = WebhookReader("inbox", SECRET, now)
        return list(reader.read(signed_callback(items)).reports)

    def received(self, message: OutgoingMessage) -> int:
        return sum(1 for m in self.peer.state()["received"] if m["id"] == message.id)
