"""Reading the policy back for people: "would this be sent now, and if not why" and a
contact's calendar (what was sent, what is planned, what the caps have left)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.policy import Candidate, CapRule, Facts, Policy, VerdictKind, evaluate
from kaskad.domain.vocabulary import Category
from kaskad.services import cascading, policy
from kaskad.services.errors import Invalid, NotFound


@dataclass(frozen=True, slots=True)
class Question:
    """The notification ``explain`` is asked about."""

    category: Category
    priority: int
    steps: Sequence[Step]
    content_key: str | None = None
    topic: str | None = None
    valid_until: datetime | None = None
    personal: bool = True
    journey: str | None = None


def explain(uow: UnitOfWork, *, contact: str, question: Question, now: datetime) -> dict[str, Any]:
    """What the engine would do with this notification now, step by step, writing nothing."""
    with uow:
        row = uow.contacts.by_external_id(contact)
        if row is None:
            # Named in the body, like POST /v1/notifications: 422 (a path's unknown id is 404).
            raise Invalid("contact_not_found", f"no contact with external id {contact!r}")
        keeper = policy.gatekeeper(uow)
        reach = cascading.reachability(row)
        steps: list[dict[str, Any]] = []
        verdict: dict[str, Any] | None = None
        for index, step in enumerate(question.steps):
            unreachable = reach.why_unreachable(step.channel, question.category)
            if unreachable is not None:
                steps.append(_step(index, step, "skip", f"{step.channel} skipped: {unreachable}"))
                continue
            facts = keeper.facts_for(row, step.channel, row["id"], now)
            found = evaluate(keeper.policy, facts, _candidate(question, step, now), now)
            steps.append(
                _step(index, step, found.kind.value, found.reason)
                | {"until": found.until, "notes": list(found.notes)}
            )
            if found.kind is not VerdictKind.SKIP:
                verdict = steps[-1]
                break
        # Read only: the contact's lock and nothing else is released by rolling back.
    if verdict is None:
        verdict = {"verdict": "fail", "reason": "no step can reach the contact", "until": None}
    return {
        "contact": contact,
        "verdict": verdict["verdict"],
        "reason": verdict["reason"],
        "until": verdict.get("until"),
        "channel": verdict.get("channel"),
        "steps": steps,
    }


def question_of(request: NotificationRequest, journey: str | None = None) -> Question:
    """The question ``explain`` answers about a notification as the API takes it; ``journey``
    asks as that journey's send would, so its per-journey caps count."""
    return Question(
        category=request.category,
        priority=request.priority,
        steps=request.steps,
        content_key=request.content_key,
        topic=request.topic,
        valid_until=request.valid_until,
        personal=request.personal,
        journey=journey,
    )


def _candidate(question: Question, step: Step, now: datetime) -> Candidate:
    return Candidate(
        notification_id="(explain)",
        category=question.category,
        priority=question.priority,
        channel=step.channel,
        created_at=now,
        valid_until=question.valid_until,
        personal=question.personal,
        topic=question.topic,
        content_key=question.content_key,
        journey=question.journey,
    )


def _step(index: int, step: Step, verdict: str, reason: str) -> dict[str, Any]:
    return {"step": index, "channel": step.channel.value, "verdict": verdict, "reason": reason}


def calendar(uow: UnitOfWork, *, contact: str, now: datetime) -> dict[str, Any]:
    """The contact's recent sends, planned notifications with the reason each waits, how much
    of each cap is used, its quiet hours and the relevance rules silencing it now."""
    with uow:
        row = uow.contacts.by_external_id(contact)
        if row is None:
            raise NotFound("contact_not_found", f"no contact with external id {contact!r}")
        rules = policy.current(uow)
        zone = policy.zone_of(row, rules)
        since = now - rules.horizon
        sent = uow.policy.sends_since([row["id"]], since)
        planned = uow.policy.planned([row["id"]])
        reasons = {
            n["id"]: _last_deferral(uow.notifications.decisions_of(n["id"])) for n in planned
        }
        types = [r.after for r in rules.relevance]
        events = uow.policy.events_since([row["id"]], types, since)
    facts = Facts(zone, [policy.sent_of(r) for r in sent])
    return {
        "contact": contact,
        "timezone": str(getattr(zone, "key", zone)),
        "now": now,
        "planned": [_planned(n, reasons.get(n["id"])) for n in planned],
        "sent": [_sent(r) for r in reversed(sent)],
        "caps": [_cap_use(rule, facts, now) for rule in rules.caps],
        "quiet_hours": {c.value: str(q) for c, q in rules.quiet_hours.items()},
        "relevance": _silenced(rules, events, now),
    }


def _last_deferral(decisions: Sequence[Any]) -> str | None:
    found = [d["reason"] for d in decisions if d["kind"] == "defer"]
    return found[-1] if found else None


def _planned(row: Any, reason: str | None) -> dict[str, Any]:
    steps = row["steps"] or []
    index = row["current_step"]
    channel = steps[index]["channel"] if 0 <= index < len(steps) else None
    return {
        "notification": row["id"],
        "at": row["due_at"],
        "channel": channel,
        "category": row["category"],
        "priority": row["priority"],
        "topic": row["topic"],
        "content_key": row["content_key"],
        "valid_until": row["valid_until"],
        "reason": reason,
    }


def _sent(row: Any) -> dict[str, Any]:
    keys = ("notification_id", "message_id", "at", "channel", "category", "topic", "content_key")
    return {k: row[k] for k in keys}


def _cap_use(rule: CapRule, facts: Facts, now: datetime) -> dict[str, Any]:
    used = {
        s.notification_id if rule.channel is None else f"{s.notification_id}/{i}"
        for i, s in enumerate(facts.sent)
        if now - s.at < rule.window
        and (rule.category is None or rule.category is s.category)
        and (rule.channel is None or rule.channel is s.channel)
        and (rule.topic is None or rule.topic == s.topic)
        and (rule.journey is None or rule.journey == s.journey)
    }
    return {"rule": rule.label, "used": len(used), "limit": rule.limit}


def _silenced(rules: Policy, events: Sequence[Any], now: datetime) -> list[dict[str, Any]]:
    silenced = []
    for rule in rules.relevance:
        times = [e["occurred_at"] for e in events if e["type"] == rule.after]
        if times and now - max(times) < rule.duration:
            silenced.append(
                {
                    "suppress": str(rule.suppress),
                    "after": rule.after,
                    "until": max(times) + rule.duration,
                }
            )
    return silenced
