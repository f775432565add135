"""The contact pressure policy at work: the facts each decision needs, read once per
transaction and contact, and the policy in force, read from the database.

``gate_for`` hands a cascade the policy's say on each step it is about to send. Facts are read
with the contact's row locked (PostgreSQL), so two workers deciding for one contact at once
take turns: the second sees the first one's send and never takes the same last slot.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.cascades import Gate, Step
from kaskad.domain.contacts import timezone_for_phone
from kaskad.domain.durations import format_duration
from kaskad.domain.policy import (
    DEFAULT_POLICY,
    Candidate,
    Facts,
    Happened,
    Planned,
    Policy,
    PolicyError,
    Sent,
    Verdict,
    evaluate,
    load_policy,
    needs_history,
    replan,
)
from kaskad.domain.vocabulary import Category, Channel
from kaskad.services.errors import Invalid, invalid_document

Row = Mapping[str, Any]
MEMO: Final = "policy"
# How long a process trusts the policy it read before checking for a newer version.
RECHECK_SECONDS: Final = 5.0


# -- the policy in force ---------------------------------------------------------------------
@dataclass
class _Cached:
    version: int
    policy: Policy
    checked: float


_CACHE: dict[str, _Cached] = {}
_CACHE_LOCK = threading.Lock()


def current(uow: UnitOfWork) -> Policy:
    """The latest applied policy (the defaults before any), rechecked every few seconds."""
    now = time.monotonic()
    with _CACHE_LOCK:
        cached = _CACHE.get(uow.database)
    if cached is not None and now - cached.checked < RECHECK_SECONDS:
        return cached.policy
    version = uow.policy.latest_version()
    if cached is None or cached.version != version:
        row = uow.policy.latest()
        policy = load_policy(row["source"]) if row else DEFAULT_POLICY
        cached = _Cached(version, policy, now)
    else:
        cached = _Cached(version, cached.policy, now)
    with _CACHE_LOCK:
        _CACHE[uow.database] = cached
    return cached.policy


def forget(uow: UnitOfWork) -> None:
    with _CACHE_LOCK:
        _CACHE.pop(uow.database, None)


def forget_all() -> None:
    """Drop every cached policy (tests that empty a database between runs)."""
    with _CACHE_LOCK:
        _CACHE.clear()
    _EMPTY_LIST.clear()


def check(source: str, *, filename: str = "<policy>", kept: timedelta | None = None) -> Policy:
    """The policy in ``source``, or every problem in it. ``kept`` is how long the send log
    is kept (``send_log_days``): a cap or de-duplication window longer than that would count
    sends that are gone, and allow more than it says."""
    try:
        policy = load_policy(source, filename=filename)
    except PolicyError as exc:
        raise invalid_document("invalid_policy", exc) from None
    if kept is not None:
        _check_kept(policy, kept)
    return policy


def _check_kept(policy: Policy, kept: timedelta) -> None:
    windows = [(f"{c.label} window", c.window) for c in policy.caps]
    windows.append(("the de-duplication window", policy.dedup_window))
    for what, window in windows:
        if window > kept:
            message = (
                f"{what} ({format_duration(window)}) is longer than the send log is kept "
                f"({format_duration(kept)}, send_log_days): raise send_log_days or shorten "
                "the window"
            )
            path = "caps" if "cap" in what else "dedup_window"
            problem = {"path": path, "line": None, "message": message}
            raise Invalid("invalid_policy", message, [problem])


def apply(
    uow: UnitOfWork, *, source: str, now: datetime, kept: timedelta | None = None
) -> dict[str, Any]:
    """Store a new version of the policy; the same text as the version in force changes
    nothing."""
    check(source, kept=kept)
    digest = hashlib.sha256(source.encode()).hexdigest()
    with uow:
        latest = uow.policy.latest()
        if latest is not None and latest["digest"] == digest:
            return {"version": latest["version"], "created": False}
        version = (latest["version"] if latest else 0) + 1
        uow.policy.add_version(
            {"version": version, "source": source, "digest": digest, "created_at": now}
        )
        uow.commit()
    forget(uow)
    return {"version": version, "created": True}


def show(uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        latest = uow.policy.latest()
        versions = uow.policy.versions()
    return {
        "version": latest["version"] if latest else 0,
        "source": latest["source"] if latest else None,
        "versions": versions,
    }


# -- facts and the gate ----------------------------------------------------------------------
def zone_of(contact: Row | None, policy: Policy) -> tzinfo:
    """The contact's time zone; else its phone number's country's; else the policy's default."""
    name = contact.get("timezone") if contact else None
    if not name and contact and contact.get("phone"):
        name = _phone_zone(contact["phone"])
    return ZoneInfo(name or policy.default_timezone)


# A phone's country time zone, remembered: parsing the number costs more than the decision.
_phone_zone = functools.lru_cache(maxsize=65536)(timezone_for_phone)

Listed = tuple[str, str, str]
"""A suppression-list entry: address, channel (or ``*``), reason."""


@dataclass
class Gatekeeper:
    """One transaction's policy decisions: the policy, and facts read per contact."""

    uow: UnitOfWork
    policy: Policy
    facts: dict[str, Facts] = field(default_factory=dict)
    listed: dict[str, list[Listed]] = field(default_factory=dict)
    contacts: dict[str, Row | None] = field(default_factory=dict)

    def gate(self, row: Row, contact: Row | None, messages: Mapping[int, Row]) -> Gate:
        self.contacts[row["contact_id"]] = contact

        def decide(index: int, step: Step, now: datetime) -> Verdict:
            candidate = candidate_of(row, step.channel, first=not messages)
            history = needs_history(self.policy, candidate)
            facts = self.facts_for(contact, step.channel, row["contact_id"], now, history=history)
            return evaluate(self.policy, facts, candidate, now)

        return decide

    def facts_for(
        self,
        contact: Row | None,
        channel: Channel,
        contact_id: str,
        now: datetime,
        *,
        history: bool = True,
    ) -> Facts:
        """The facts for one decision; only what a rule looks at is read (and locked)."""
        known = self.facts.get(contact_id)
        if known is None and history:
            known = self._read(contact, contact_id, now)
            self.facts[contact_id] = known
        address = _address(contact, channel)
        if known is None:
            known = Facts(zone_of(contact, self.policy))
            entries = _listed(self.uow, [address] if address else [])
        else:
            entries = self.listed.get(contact_id, [])
        reason = _suppression(entries, address, channel)
        if reason is None:
            return known
        return Facts(known.zone, known.sent, known.planned, known.events, reason)

    def forget(self, contact_id: str) -> bool:
        """The contact's facts changed in this transaction (a send, a deferral): read again.
        True when the contact had other notifications planned, which may have to move."""
        known = self.facts.pop(contact_id, None)
        return known is not None and bool(known.planned)

    def replan(self, contact_id: str, now: datetime) -> None:
        """Move the contact's planned notifications whose slot a higher-ranked one took."""
        if contact_id not in self.contacts:
            return
        contact = self.contacts[contact_id]
        facts = self.facts_for(contact, Channel.SMS, contact_id, now)
        moves = replan(self.policy, facts, now) if facts.planned else []
        free = self.uow.policy.lock_plans([m.notification_id for m in moves])
        for move in (m for m in moves if m.notification_id in free):
            self.uow.notifications.set(move.notification_id, {"due_at": move.at, "updated_at": now})
            self.uow.notifications.add_decision(
                {
                    "contact_id": contact_id,
                    "notification_id": move.notification_id,
                    "message_id": None,
                    "step": None,
                    "kind": "defer",
                    "reason": move.reason,
                    "at": now,
                }
            )
        if moves:
            self.forget(contact_id)

    def _read(self, contact: Row | None, contact_id: str, now: datetime) -> Facts:
        uow, policy = self.uow, self.policy
        uow.flush()  # what this transaction already decided counts too
        types = [rule.after for rule in policy.relevance]
        addresses = [a for k in ("phone", "email") if contact and (a := contact.get(k))]
        rows = uow.policy.locked_history(contact_id, now - policy.horizon, types, addresses)
        sent = [sent_of(r) for r in rows if r["kind"] == "s"]
        planned = [p for r in rows if r["kind"] == "p" and (p := _planned(r)) is not None]
        events = [Happened(r["ref"], r["at"]) for r in rows if r["kind"] == "e"]
        self.listed[contact_id] = [
            (r["content_key"], r["ref"], r["topic"]) for r in rows if r["kind"] == "x"
        ]
        return Facts(zone_of(contact, policy), sent, planned, events)


def _suppression(entries: list[Listed], address: str | None, channel: Channel) -> str | None:
    for listed_address, listed_channel, reason in entries:
        if listed_address == address and listed_channel in ("*", channel.value):
            return f"the address is on the suppression list ({reason})"
    return None


# Whether the suppression list is empty, per database: most deployments keep it short or
# empty, and a transactional message should not pay a query to learn that.
_EMPTY_LIST: dict[str, tuple[bool, float]] = {}


def _listed(uow: UnitOfWork, addresses: list[str]) -> list[Listed]:
    if not addresses:
        return []
    known = _EMPTY_LIST.get(uow.database)
    if known is not None and known[0] and time.monotonic() - known[1] < RECHECK_SECONDS:
        return []
    rows = uow.policy.suppressed(addresses)
    if not rows:
        _EMPTY_LIST[uow.database] = (not uow.policy.suppressions(1), time.monotonic())
    return [(r["address"], r["channel"], r["reason"]) for r in rows]


def list_changed(uow: UnitOfWork) -> None:
    """An address was added to the suppression list: stop trusting that it is empty."""
    _EMPTY_LIST.pop(uow.database, None)


def gatekeeper(uow: UnitOfWork) -> Gatekeeper:
    """This transaction's gatekeeper (one per unit of work, so facts are read once)."""
    keeper = uow.memo.get(MEMO)
    if not isinstance(keeper, Gatekeeper):
        keeper = Gatekeeper(uow, current(uow))
        uow.memo[MEMO] = keeper
    return keeper


def candidate_of(row: Row, channel: Channel, *, first: bool) -> Candidate:
    return Candidate(
        notification_id=row["id"],
        category=Category(row["category"]),
        priority=row["priority"],
        channel=channel,
        created_at=row["created_at"],
        valid_until=row.get("valid_until"),
        personal=bool(row.get("personal", True)),
        topic=row.get("topic"),
        content_key=row.get("content_key"),
        journey=row.get("journey_id"),
        first=first,
    )


def log_send(uow: UnitOfWork, notification: Row, message: Row, now: datetime) -> None:
    """Record a message handed to the outbox in the send log caps and de-duplication read."""
    uow.policy.log_send(
        {
            "contact_id": notification["contact_id"],
            "notification_id": notification["id"],
            "message_id": message["id"],
            "category": notification["category"],
            "channel": message["channel"],
            "topic": notification.get("topic"),
            "content_key": notification.get("content_key"),
            "journey_id": notification.get("journey_id"),
            "at": now,
        }
    )
    keeper = uow.memo.get(MEMO)
    if isinstance(keeper, Gatekeeper):
        keeper.forget(notification["contact_id"])


def _address(contact: Row | None, channel: Channel) -> str | None:
    if contact is None:
        return None
    if channel is Channel.EMAIL:
        return contact.get("email")
    if channel is Channel.PUSH:
        return None
    return contact.get("phone")


def sent_of(row: Row) -> Sent:
    """A send-log row (or a history row of kind ``s``, which names it ``ref``)."""
    return Sent(
        notification_id=row["ref"] if "ref" in row else row["notification_id"],
        at=row["at"],
        category=Category(row["category"]),
        channel=Channel(row["channel"]),
        topic=row["topic"],
        content_key=row["content_key"],
        journey=row["journey_id"],
    )


def _planned(row: Row) -> Planned | None:
    """A deferred notification from a history row of kind ``p``."""
    steps = row["steps"] or []
    index = row["current_step"]
    if row["at"] is None or not 0 <= index < len(steps):
        return None
    return Planned(
        notification_id=row["ref"],
        at=row["at"],
        category=Category(row["category"]),
        priority=row["priority"],
        channel=Channel(steps[index]["channel"]),
        created_at=row["created_at"],
        personal=bool(row["personal"]),
        topic=row["topic"],
        content_key=row["content_key"],
        journey=row["journey_id"],
        valid_until=row["valid_until"],
    )
