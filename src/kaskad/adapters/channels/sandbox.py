"""The sandbox provider: plays a real gateway for every channel, on kaskad's own database.

It accepts sends (refusing a client reference it already has, as a careful gateway does),
then reports sent / delivered / seen / clicked / failed after configurable delays, in its
own webhook format, through the same webhook parsing and status mapping real providers use.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.ids import new_id
from kaskad.domain.providers import (
    Callback,
    InboundMessage,
    OutgoingMessage,
    SendResult,
    StatusReport,
    WebhookError,
    WebhookRequest,
)
from kaskad.domain.vocabulary import Channel, MessageStatus

NAME: Final = "sandbox"
THROTTLE_S: Final = 1.0
# The number the sandbox calls and texts from, as a recipient of customers' replies.
CALLER_ID: Final = "sandbox"
# A call answered and these keys pressed (``keypress:1``): reported as CLICKED, and the keys
# reach kaskad as an inbound message on the call, as real voice providers send them.
KEYPRESS_PREFIX: Final = "keypress:"
_DTMF: Final = "DTMF:"  # the sandbox's own report of the keys, split in two when posted

# The sandbox's webhook status names and what they mean to kaskad.
SANDBOX_STATUS: Final[Mapping[str, MessageStatus]] = {
    "SENT": MessageStatus.SENT,
    "DELIVERED": MessageStatus.DELIVERED,
    "SEEN": MessageStatus.SEEN,
    "CLICKED": MessageStatus.CLICKED,
    "UNDELIVERABLE": MessageStatus.UNDELIVERABLE,
    "REJECTED": MessageStatus.REJECTED,
    "EXPIRED": MessageStatus.EXPIRED,
    "FAILED": MessageStatus.FAILED,
}
# Price per message, reported with the delivery as real gateways do.
PRICE: Final[Mapping[Channel, float]] = {
    Channel.SMS: 0.03,
    Channel.VIBER: 0.012,
    Channel.WHATSAPP: 0.02,
    Channel.EMAIL: 0.0005,
    Channel.PUSH: 0.0,
    Channel.VOICE: 0.05,
}


class SandboxDelays:
    def __init__(
        self,
        *,
        sent: float = 0.2,
        delivered: float = 1.0,
        seen: float = 3.0,
        clicked: float = 5.0,
    ) -> None:
        self.sent = timedelta(seconds=sent)
        self.delivered = timedelta(seconds=delivered)
        self.seen = timedelta(seconds=seen)
        self.clicked = timedelta(seconds=clicked)

    def schedule(self, outcome: str) -> list[tuple[str, timedelta]]:
        """The reports an outcome produces and when, after acceptance."""
        if outcome.startswith(KEYPRESS_PREFIX):
            digits = outcome.removeprefix(KEYPRESS_PREFIX)
            return [
                ("SENT", self.sent),
                ("DELIVERED", self.delivered),
                (_DTMF + digits, self.clicked),
            ]
        plans: dict[str, list[tuple[str, timedelta]]] = {
            "delivered": [("SENT", self.sent), ("DELIVERED", self.delivered)],
            "seen": [("SENT", self.sent), ("DELIVERED", self.delivered), ("SEEN", self.seen)],
            "clicked": [
                ("SENT", self.sent),
                ("DELIVERED", self.delivered),
                ("SEEN", self.seen),
                ("CLICKED", self.clicked),
            ],
            "undelivered": [("SENT", self.sent)],
            "undeliverable": [("SENT", self.sent), ("UNDELIVERABLE", self.delivered)],
        }
        return plans.get(outcome, [])


class SandboxProvider:
    name = NAME
    channels = frozenset(Channel)

    def __init__(
        self,
        engine: Engine,
        *,
        delays: SandboxDelays,
        default_outcome: str = "delivered",
        random_mix: Mapping[str, float] | None = None,
        clock: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._delays = delays
        self._default = default_outcome
        self._mix = {k: v for k, v in (random_mix or {}).items() if v > 0}
        self._clock = clock
        self._rng = rng or random.Random()

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        return await asyncio.to_thread(self.accept, batch)

    def accept(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        now = self._now()
        results: list[SendResult] = []
        with UnitOfWork(self._engine) as uow:
            known = uow.sandbox.accepted(m.id for m in batch)
            chosen = uow.sandbox.outcomes_for((m.channel.value, m.address) for m in batch)
            resent = [m.id for m in batch if m.id in known]
            uow.sandbox.count_resends(resent)
            for message in batch:
                if message.id in known:
                    previous = known[message.id]
                    results.append(SendResult.accepted(message.id, previous["provider_message_id"]))
                    continue
                outcome = chosen.get((message.channel.value, message.address)) or self._pick()
                results.append(self._accept_one(uow, message, outcome, now))
            uow.commit()
        return results

    def _pick(self) -> str:
        if not self._mix:
            return self._default
        outcomes, weights = zip(*self._mix.items(), strict=True)
        return str(self._rng.choices(outcomes, weights)[0])

    def _accept_one(
        self, uow: UnitOfWork, message: OutgoingMessage, outcome: str, now: datetime
    ) -> SendResult:
        if outcome == "failed":
            return SendResult.failed(
                message.id, "sandbox: rejected by the gateway", MessageStatus.REJECTED
            )
        if outcome == "throttled":
            # A gateway over its rate: nothing accepted, try again shortly.
            return SendResult.retry(message.id, "sandbox: throttled", retry_after=THROTTLE_S)
        provider_id = new_id("sbx")
        uow.sandbox.accept(
            {
                "client_ref": message.id,
                "provider_message_id": provider_id,
                "channel": message.channel.value,
                "address": message.address,
                "content": dict(message.content),
                "outcome": outcome,
                "accepted_at": now,
                "attempts": 1,
            }
        )
        for status, delay in self._delays.schedule(outcome):
            uow.sandbox.schedule_report(
                {"provider_message_id": provider_id, "status": status, "due_at": now + delay}
            )
        return SendResult.accepted(message.id, provider_id)


def report_body(
    rows: Sequence[Mapping[str, Any]], accepted: Mapping[str, Mapping[str, Any]]
) -> bytes:
    """Build the sandbox webhook body for due reports, as the gateway would post it."""
    results = []
    for row in rows:
        origin = accepted.get(row["provider_message_id"])
        item: dict[str, Any] = {
            "messageId": row["provider_message_id"],
            "clientRef": origin["client_ref"] if origin else None,
            "status": row["status"],
            "doneAt": row["due_at"].isoformat(),
        }
        if origin and row["status"] == "DELIVERED":
            item["price"] = {"amount": PRICE[Channel(origin["channel"])], "currency": "EUR"}
        if row["status"].startswith(_DTMF):
            item["status"] = "CLICKED"
            item["digits"] = row["status"].removeprefix(_DTMF)
            item["from"] = origin["address"] if origin else None
        results.append(item)
    return json.dumps({"results": results}).encode()


def keypresses(body: bytes) -> list[InboundMessage]:
    """The keys pressed on calls in a sandbox webhook body, as inbound messages on the call
    (``in_reply_to`` its id), the shape every voice provider's keypress takes."""
    try:
        items = json.loads(body)["results"]
        return [_keypress(item) for item in items if item.get("digits") and item.get("from")]
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookError(f"not a sandbox report: {exc}") from exc


def _keypress(item: Mapping[str, Any]) -> InboundMessage:
    call = str(item["messageId"])
    return InboundMessage(
        provider=NAME,
        channel=Channel.VOICE,
        sender=str(item["from"]),
        recipient=CALLER_ID,
        text=str(item["digits"]),
        at=_done_at(item),
        provider_message_id=f"{call}:dtmf",
        in_reply_to=call,
    )


def _done_at(item: Mapping[str, Any]) -> datetime:
    at = datetime.fromisoformat(item["doneAt"]) if item.get("doneAt") else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at or datetime.now(UTC)


class SandboxWebhook:
    """Parses the sandbox's delivery reports through ``SANDBOX_STATUS``; as a callback
    reader (``read``) it also yields the keys pressed on calls as inbound messages."""

    name = NAME

    def read(self, request: WebhookRequest) -> Callback:
        if request.method != "POST":
            raise WebhookError("sandbox webhooks are POSTed")
        return Callback(
            reports=self.parse(request.body, request.headers), inbound=keypresses(request.body)
        )

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[StatusReport]:
        try:
            data = json.loads(body)
            items = data["results"]
            return [self._report(item) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookError(f"not a sandbox report: {exc}") from exc

    @staticmethod
    def _report(item: Mapping[str, Any]) -> StatusReport:
        code = str(item["status"]).upper()
        if code not in SANDBOX_STATUS:
            raise WebhookError(f"unknown sandbox status {code!r}")
        price = item.get("price") or {}
        return StatusReport(
            provider=NAME,
            status=SANDBOX_STATUS[code],
            at=_done_at(item),
            message_id=item.get("clientRef"),
            provider_message_id=item.get("messageId"),
            provider_status=code,
            cost=price.get("amount"),
            currency=price.get("currency"),
        )
