"""Should this message go now, later, or never? One pure function over one contact's facts.

The service layer loads the facts (what was sent lately, what is planned, which events
happened, the contact's time zone) and asks ``evaluate``; the answer is a ``Verdict`` whose
reason quotes the rule and its numbers, so every decision can be explained to a person.

Admission rules (relevance, de-duplication, caps of categories, topics and journeys) judge a
notification once, at its first message. Quiet hours and channel caps judge every message,
the fallbacks too: an SMS fallback at 23:00 waits for the morning like any marketing SMS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from kaskad.domain.durations import format_duration
from kaskad.domain.journeys.timing import next_time_of_day
from kaskad.domain.policy.rules import CapRule, Policy, QuietHours, Selector
from kaskad.domain.vocabulary import Category, Channel


class VerdictKind(StrEnum):
    SEND = "send"
    DEFER = "defer"  # a later slot within the validity window
    SUPPRESS = "suppress"  # the whole notification is dropped
    SKIP = "skip"  # this channel step is passed over; the cascade tries the next one


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    reason: str
    until: datetime | None = None
    # What each rule found, for ``policy explain``.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A message the engine is about to send, with what the rules look at."""

    notification_id: str
    category: Category
    priority: int
    channel: Channel
    created_at: datetime
    valid_until: datetime | None = None
    personal: bool = True
    topic: str | None = None
    content_key: str | None = None
    journey: str | None = None
    # No earlier message of this notification went out: admission rules apply.
    first: bool = True


@dataclass(frozen=True, slots=True)
class Sent:
    """A message that went to the contact (from the send log)."""

    notification_id: str
    at: datetime
    category: Category
    channel: Channel
    topic: str | None = None
    content_key: str | None = None
    journey: str | None = None


@dataclass(frozen=True, slots=True)
class Planned:
    """Another notification of the contact deferred to ``at``: a slot it holds in the calendar,
    which a candidate of lower rank must leave to it."""

    notification_id: str
    at: datetime
    category: Category
    priority: int
    channel: Channel
    created_at: datetime
    personal: bool = True
    topic: str | None = None
    content_key: str | None = None
    journey: str | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Happened:
    type: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Facts:
    """One contact's recent history, as much as the policy's rules look back."""

    zone: tzinfo
    sent: Sequence[Sent] = ()
    planned: Sequence[Planned] = ()
    events: Sequence[Happened] = ()
    # Why the candidate's address is on the suppression list, if it is.
    suppressed: str | None = None
    notes: list[str] = field(default_factory=list)


Occupied = Sent | Planned


def outranks(policy: Policy, planned: Planned, candidate: Candidate) -> bool:
    """A strict order: category, then priority, then personal over mass, then first come."""

    def key(c: Planned | Candidate) -> tuple[int, int, int]:
        return (policy.rank(c.category), c.priority, int(c.personal))

    if key(planned) != key(candidate):
        return key(planned) > key(candidate)
    if planned.created_at != candidate.created_at:
        return planned.created_at < candidate.created_at
    return planned.notification_id < candidate.notification_id


def needs_history(policy: Policy, c: Candidate) -> bool:
    """Whether any rule would look at the contact's sends, plans or events: a transactional
    message under caps it is exempt from needs none of them, and is decided without reading
    (or locking) anything."""
    if _caps_for(policy, c):
        return True
    if not c.first:
        return False
    return c.content_key is not None or any(_selects(r.suppress, c) for r in policy.relevance)


def evaluate(policy: Policy, facts: Facts, candidate: Candidate, now: datetime) -> Verdict:
    if facts.suppressed is not None:
        return Verdict(VerdictKind.SKIP, f"{candidate.channel} skipped: {facts.suppressed}")
    if candidate.first:
        dropped = _irrelevant(policy, facts, candidate, now) or _duplicate(
            policy, facts, candidate, now
        )
        if dropped is not None:
            return Verdict(VerdictKind.SUPPRESS, dropped)
    return _schedule(policy, facts, candidate, now)


def _irrelevant(policy: Policy, facts: Facts, c: Candidate, now: datetime) -> str | None:
    for rule in policy.relevance:
        if not _selects(rule.suppress, c):
            continue
        recent = [e.at for e in facts.events if e.type == rule.after and now - e.at < rule.duration]
        if recent:
            at = _local(max(recent), facts.zone)
            return (
                f"suppressed: no {rule.suppress} for {format_duration(rule.duration)} "
                f"after {rule.after} (happened {at})"
            )
    return None


def _selects(selector: Selector, c: Candidate) -> bool:
    return (selector.category is None or selector.category is c.category) and (
        selector.topic is None or selector.topic == c.topic
    )


def _duplicate(policy: Policy, facts: Facts, c: Candidate, now: datetime) -> str | None:
    if c.content_key is None:
        return None
    window = policy.dedup_window
    for sent in facts.sent:
        same = sent.content_key == c.content_key and sent.notification_id != c.notification_id
        if same and now - sent.at < window:
            return (
                f"suppressed: duplicate of {c.content_key!r} sent on {sent.channel} "
                f"{_local(sent.at, facts.zone)} (one per {format_duration(window)})"
            )
    for other in facts.planned:
        if other.content_key == c.content_key and other.notification_id != c.notification_id:
            return (
                f"suppressed: duplicate of {c.content_key!r} already planned on "
                f"{other.channel} for {_local(other.at, facts.zone)}"
            )
    return None


def _schedule(policy: Policy, facts: Facts, c: Candidate, now: datetime) -> Verdict:
    """Now if every cap and the quiet hours allow it, else the first slot that does."""
    caps = _caps_for(policy, c)
    occupied = _occupied(policy, facts, c)
    counted = [(rule, _counted(rule, occupied, c)) for rule in caps]
    quiet = policy.quiet_hours.get(c.category)
    notes = [_usage(rule, times, now) for rule, times in counted]
    blocking = _blocking(counted, now, facts.zone) or _quiet_reason(
        quiet, now, facts.zone, c.category
    )
    if blocking is None:
        return Verdict(VerdictKind.SEND, "within policy", notes=tuple(notes))
    deadline = _deadline(policy, c)
    slot = _next_slot(counted, quiet, facts.zone, now, deadline)
    if slot is None:
        when = _local(deadline, facts.zone)
        kind = VerdictKind.SUPPRESS if c.first else VerdictKind.SKIP
        what = "dropped" if c.first else f"{c.channel} skipped"
        reason = f"{what}: {blocking}; no free slot before {when} (valid until)"
        return Verdict(kind, reason, notes=tuple(notes))
    reason = f"deferred: {blocking}; next slot {_local(slot, facts.zone)}"
    return Verdict(VerdictKind.DEFER, reason, until=slot, notes=tuple(notes))


def _deadline(policy: Policy, c: Candidate) -> datetime:
    if c.valid_until is not None:
        return c.valid_until
    return c.created_at + policy.validity.get(c.category, timedelta(days=1))


def _caps_for(policy: Policy, c: Candidate) -> list[CapRule]:
    if c.category in policy.exempt:
        return []
    return [
        rule
        for rule in policy.caps
        if (rule.category is None or rule.category is c.category)
        and (rule.channel is None or rule.channel is c.channel)
        and (rule.topic is None or rule.topic == c.topic)
        and (rule.journey is None or rule.journey == c.journey)
        # A fallback belongs to a notification already admitted: only channel caps judge it.
        and (c.first or rule.channel is not None)
    ]


def _occupied(policy: Policy, facts: Facts, c: Candidate) -> list[Occupied]:
    """What counts against the candidate: every send, and the planned slots of notifications
    that outrank it."""
    mine = c.notification_id
    planned = [p for p in facts.planned if p.notification_id != mine and outranks(policy, p, c)]
    return [*facts.sent, *planned]


def _counted(rule: CapRule, occupied: Iterable[Occupied], c: Candidate) -> list[datetime]:
    """Times of what the rule counts; one time per notification unless it caps a channel."""
    if rule.channel is None:
        occupied = [o for o in occupied if o.notification_id != c.notification_id]
    firsts: dict[str, datetime] = {}
    times: list[datetime] = []
    for o in occupied:
        if not _matches(rule, o):
            continue
        if rule.channel is not None:
            times.append(o.at)
        elif o.notification_id not in firsts or o.at < firsts[o.notification_id]:
            firsts[o.notification_id] = o.at
    return sorted(times + list(firsts.values()))


def _matches(rule: CapRule, o: Occupied) -> bool:
    return (
        (rule.category is None or rule.category is o.category)
        and (rule.channel is None or rule.channel is o.channel)
        and (rule.topic is None or rule.topic == o.topic)
        and (rule.journey is None or rule.journey == o.journey)
    )


def _in_window(times: Sequence[datetime], rule: CapRule, at: datetime) -> list[datetime]:
    """What falls in any window holding ``at``: (at - window, at + window). A slot must leave
    room in the windows of the planned sends after it too, or it would push them out."""
    return [t for t in times if at - rule.window < t < at + rule.window]


Counted = Sequence[tuple[CapRule, list[datetime]]]
"""Each cap with the times of what it counts."""


def _blocking(counted: Counted, at: datetime, zone: tzinfo) -> str | None:
    for rule, times in counted:
        inside = _in_window(times, rule, at)
        if len(inside) >= rule.limit:
            return f"{rule.label} reached ({_tally(sorted(inside), at, zone)})"
    return None


def _tally(inside: Sequence[datetime], at: datetime, zone: tzinfo) -> str:
    """What fills a cap, in words: sends before ``at``, and slots planned after it (the
    calendar's deferred notifications that outrank this one)."""
    sent = [t for t in inside if t <= at]
    planned = len(inside) - len(sent)
    if not sent:
        return f"{planned} planned from {_local(inside[0], zone)}"
    words = f"{len(sent)} sent since {_local(sent[0], zone)}"
    return f"{words}, {planned} planned" if planned else words


def _usage(rule: CapRule, times: list[datetime], now: datetime) -> str:
    inside = _in_window(times, rule, now)
    return f"{rule.label}: {len(inside)} of {rule.limit} used"


def _quiet_end(quiet: QuietHours | None, at: datetime, zone: tzinfo) -> datetime | None:
    """When the quiet hours holding ``at`` end, or None when ``at`` is not in them."""
    if quiet is None or quiet.start == quiet.end:
        return None
    local_at = at.astimezone(zone)
    local = local_at.time()
    if quiet.start < quiet.end:
        inside = quiet.start <= local < quiet.end
    else:
        inside = local >= quiet.start or local < quiet.end
    if not inside:
        return None
    end = next_time_of_day(at, quiet.end, zone)
    # ``next_time_of_day`` means the first of a local time that happens twice. Inside the
    # repeated hour of a fall-back day that first one has passed, but the clock shows the end
    # again within the hour; waiting for tomorrow's would hold the message a whole day.
    for day in (local_at.date(), local_at.date() + timedelta(days=1)):
        wall = datetime.combine(day, quiet.end)
        again = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if at < again < end and again.astimezone(zone).replace(tzinfo=None) == wall:
            return again
    return end


def _quiet_reason(
    quiet: QuietHours | None, at: datetime, zone: tzinfo, category: Category
) -> str | None:
    if _quiet_end(quiet, at, zone) is None:
        return None
    return f"quiet hours {quiet} ({_zone_name(zone)}) for {category}"


def _next_slot(
    counted: Counted,
    quiet: QuietHours | None,
    zone: tzinfo,
    now: datetime,
    deadline: datetime,
) -> datetime | None:
    """The earliest moment every rule allows, at or before ``deadline``.

    Whether a moment is free changes only when a counted send leaves a window (its time plus
    the window) or the quiet hours end, so those moments are the only ones to try.
    """
    moments = {now}
    for rule, times in counted:
        moments.update(t + rule.window for t in times if t + rule.window > now)
    for moment in sorted(moments):
        slot = _quiet_end(quiet, moment, zone) or moment
        if slot > deadline:
            return None
        if _blocking(counted, slot, zone) is None:
            return slot
    return None


@dataclass(frozen=True, slots=True)
class Move:
    """A planned notification whose slot was taken by one of higher rank: its new slot."""

    notification_id: str
    at: datetime
    reason: str


def replan(policy: Policy, facts: Facts, now: datetime) -> list[Move]:
    """Judge the contact's planned notifications again, highest rank first, each at its own
    slot: those whose slot a higher-ranked notification has taken move to the next free one.
    A plan that has become impossible stays: it is dropped, with its reason, when it falls due."""
    planned = list(facts.planned)
    moves: list[Move] = []
    sent_ids = {s.notification_id for s in facts.sent}
    ranked = sorted(planned, key=lambda p: _rank_key(policy, p), reverse=True)
    for plan in ranked:
        candidate = _as_candidate(plan, first=plan.notification_id not in sent_ids)
        current = Facts(facts.zone, facts.sent, planned, facts.events)
        verdict = evaluate(policy, current, candidate, max(now, plan.at))
        if verdict.kind is not VerdictKind.DEFER or verdict.until is None:
            continue
        if verdict.until == plan.at:
            continue
        moved = replace(plan, at=verdict.until)
        planned = [moved if p is plan else p for p in planned]
        reason = verdict.reason.replace("deferred:", "moved:", 1)
        moves.append(Move(plan.notification_id, verdict.until, reason))
    return moves


def _rank_key(policy: Policy, p: Planned) -> tuple[int, int, int, float]:
    return (policy.rank(p.category), p.priority, int(p.personal), -p.created_at.timestamp())


def _as_candidate(p: Planned, *, first: bool) -> Candidate:
    return Candidate(
        notification_id=p.notification_id,
        category=p.category,
        priority=p.priority,
        channel=p.channel,
        created_at=p.created_at,
        valid_until=p.valid_until,
        personal=p.personal,
        topic=p.topic,
        content_key=p.content_key,
        journey=p.journey,
        first=first,
    )


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def _local(at: datetime, zone: tzinfo) -> str:
    """A time as the contact's clock shows it, which is how rules are written."""
    return f"{at.astimezone(zone):%a %d %b %H:%M} ({_zone_name(zone)})"
