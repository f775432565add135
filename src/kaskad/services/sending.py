"""The outbox: claiming sends for providers and recording what the providers answered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.providers import OutgoingMessage, SendOutcome, SendResult
from kaskad.domain.vocabulary import (
    Category,
    Channel,
    MessageStatus,
    Until,
    advances,
    is_failure,
    reaches,
)
from kaskad.services import cascading, rendering, reports
from kaskad.services.rendering import NO_TRACKING, Tracking


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=10)
    max_attempts: int = 8

    def delay(self, attempt: int, hint: float | None) -> timedelta:
        if hint is not None and hint > 0:
            return timedelta(seconds=hint)
        delay: timedelta = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return delay


@dataclass(frozen=True, slots=True)
class Claim:
    """Messages leased for sending, and those refused before any provider saw them (a
    template that could not be rendered), to record as failed."""

    messages: list[OutgoingMessage]
    refused: list[SendResult]


def claim_sends(
    uow: UnitOfWork,
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    tracking: Tracking = NO_TRACKING,
    min_priority: int | None = None,
) -> Claim:
    """Lease due outbox rows to this sender; a sender that dies lets its lease run out, and
    the next one resends with the same client reference (and the content rendered the
    first time)."""
    with uow:
        rows = uow.notifications.claim_outbox(now, limit, min_priority)
        if not rows:
            return Claim([], [])
        messages = uow.notifications.messages_by_ids(r["message_id"] for r in rows)
        # No notification locks here: a claim must never wait on a cascade being advanced,
        # or the two would deadlock over the outbox row (see cascading._supersede).
        owners = uow.notifications.summaries(m["notification_id"] for m in messages.values())
        claimed: list[OutgoingMessage] = []
        live: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for row in rows:
            message = messages[row["message_id"]]
            if message["status"] != MessageStatus.QUEUED.value:
                uow.notifications.dequeue(row["message_id"])
                continue
            owner = owners[message["notification_id"]]
            if message["superseded"] or owner["status"] != "active":
                # Superseded or its cascade ended (completed, failed, contact erased) while a
                # sender that then died held it: sending now could only reach the customer
                # twice, or reach someone who asked to be forgotten.
                cascading.cancel_queued(uow, message, now, superseded=message["superseded"])
                continue
            attempt = row["attempts"] + 1
            uow.notifications.set_outbox(
                row["message_id"], {"lease_until": now + lease, "attempts": attempt}
            )
            live.append((dict(message), {**owner, "attempt": attempt, "priority": row["priority"]}))
        refused = _render(uow, live, tracking)
        for message, owner in live:
            if message["id"] not in refused:
                claimed.append(_outgoing(message, owner))
        uow.commit()
        return Claim(claimed, [SendResult.failed(m, why) for m, why in refused.items()])


def _render(
    uow: UnitOfWork, live: list[tuple[dict[str, Any], dict[str, Any]]], tracking: Tracking
) -> dict[str, str]:
    """Render the templated messages among those claimed, in place; return the reasons of
    those that could not be rendered."""
    templated = [m for m, _ in live if rendering.is_templated(m["content"])]
    if not templated:
        return {}
    categories = {m["notification_id"]: o["category"] for m, o in live}
    done, failed = rendering.render_messages(uow, templated, categories, tracking)
    for message in templated:
        rendered = done.get(message["id"])
        if rendered is None:
            continue
        message["content"] = rendered.content
        uow.notifications.set_message(message["id"], {"content": rendered.content})
        uow.links.add(
            [
                {"message_id": message["id"], "link": index, "url": url}
                for index, url in enumerate(rendered.links)
            ]
        )
    return failed


def _outgoing(message: dict[str, Any], owner: dict[str, Any]) -> OutgoingMessage:
    return OutgoingMessage(
        id=message["id"],
        notification_id=message["notification_id"],
        contact_id=message["contact_id"],
        channel=Channel(message["channel"]),
        provider=message["provider"],
        address=message["address"] or "",
        content=message["content"],
        category=Category(owner["category"]),
        attempt=owner["attempt"],
        priority=owner["priority"],
        # Only a routed message's retry leaves an error on a queued message (see _settle).
        retried_on=message["provider"] if message["error"] else None,
    )


def record_results(
    uow: UnitOfWork, *, results: Sequence[SendResult], now: datetime, retry: RetryPolicy
) -> None:
    """Write what providers answered. Most answers ("accepted") touch only the message and
    the outbox; the cascade is loaded only for answers that can move it (a failure, or a
    provider that reports the message already sent)."""
    ids = [r.message_id for r in results]
    with uow:
        # Serialise with reports and timers on the same cascades, then read fresh.
        uow.notifications.lock_ids(uow.notifications.owners_of(ids))
        messages = uow.notifications.messages_by_ids(ids)
        queued = uow.notifications.outbox_rows(messages)
        moved: list[tuple[dict[str, Any], MessageStatus]] = []
        accepted: list[tuple[str, str, str]] = []
        for result in results:
            message = messages.get(result.message_id)
            if message is None or result.message_id not in queued:
                continue  # already recorded (a resend answered twice) or cancelled meanwhile
            status = _settle(
                uow, message, result, queued[result.message_id]["attempts"], now, retry
            )
            if status is not None and (is_failure(status) or reaches(status, Until.SENT)):
                moved.append((message, status))
            if result.outcome is SendOutcome.ACCEPTED and result.provider_message_id:
                provider = result.provider or message["provider"]
                accepted.append((provider, result.provider_message_id, message["id"]))
        if moved:
            _move_cascades(uow, moved, now)
        if accepted:
            # A receipt that beat this answer (an SMSC's, on its own connection) waits parked.
            reports.apply_early_reports(uow, accepted=accepted, now=now)
        uow.commit()


def _move_cascades(
    uow: UnitOfWork, moved: list[tuple[dict[str, Any], MessageStatus]], now: datetime
) -> None:
    owners = uow.notifications.lock({m["notification_id"] for m, _ in moved})
    tracked = cascading.track(uow, owners.values())
    for message, status in moved:
        item = tracked[message["notification_id"]]
        item.messages[message["step"]] = message  # the copy holding this unit's changes
        transition = item.cascade.on_status(item.state, message["step"], status, now)
        cascading.carry_out(uow, item, transition, now)


def _settle(
    uow: UnitOfWork,
    message: dict[str, Any],
    result: SendResult,
    attempts: int,
    now: datetime,
    retry: RetryPolicy,
) -> MessageStatus | None:
    """Write one result; return the status the cascade should see, if any.

    A routed result (``result.provider`` set) also names its provider on the message: the
    one that took it, refused it, or asked for a retry (the next attempt then starts after
    that provider, marked by the error a queued message keeps until it is accepted).
    """
    message_id = str(message["id"])
    if result.outcome is SendOutcome.DEFERRED:
        _defer(uow, message_id, result, attempts, now)
        return None
    routed: dict[str, Any] = {} if result.provider is None else {"provider": result.provider}
    if result.outcome is SendOutcome.RETRY and attempts < retry.max_attempts:
        delay = retry.delay(attempts, result.retry_after)
        uow.notifications.set_outbox(
            message_id, {"lease_until": None, "due_at": now + delay, "last_error": result.error}
        )
        if routed:
            retried = routed | {"error": result.error or "retry", "updated_at": now}
            message.update(retried)
            uow.notifications.set_message(message_id, retried)
        return None
    uow.notifications.dequeue(message_id)
    if result.outcome is SendOutcome.ACCEPTED:
        extra: dict[str, Any] = {"provider_message_id": result.provider_message_id}
        if routed:
            extra |= routed | {"error": None}
        if result.cost is not None:
            extra |= {"cost": result.cost, "currency": result.currency}
        moves = advances(MessageStatus(str(message["status"])), result.status)
        cascading.set_status(uow, message, result.status, now, applied=moves, extra=extra)
        return result.status if moves else None
    status = result.status if result.outcome is SendOutcome.FAILED else MessageStatus.FAILED
    error = result.error or "provider refused the message"
    if result.outcome is SendOutcome.RETRY:
        error = f"gave up after {attempts} attempts: {error}"
    cascading.set_status(uow, message, status, now, extra=routed | {"error": error})
    return status


def _defer(
    uow: UnitOfWork, message_id: str, result: SendResult, attempts: int, now: datetime
) -> None:
    """Back to the outbox until the provider has room; no provider saw it, so the attempt
    claimed for it is given back."""
    wait = timedelta(seconds=max(0.0, result.retry_after or 0.0))
    uow.notifications.set_outbox(
        message_id,
        {"lease_until": None, "due_at": now + wait, "attempts": max(0, attempts - 1)},
    )
