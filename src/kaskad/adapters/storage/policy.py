"""What the contact pressure policy reads and writes: the send log, the calendar of deferred
notifications, the events relevance rules name, the suppression list and policy versions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    Connection,
    Integer,
    String,
    bindparam,
    delete,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy import type_coerce as typed

from kaskad.adapters.storage import schema as s
from kaskad.adapters.storage.changes import Changes
from kaskad.adapters.storage.repositories import Row, _dicts, _first, _select_in
from kaskad.adapters.storage.types import UTCDateTime, json_type

DEFERRED = "deferred"


class PolicyRepository:
    def __init__(self, connection: Connection, changes: Changes, locks: bool) -> None:
        self._c = connection
        self._changes = changes
        self._locks = locks

    # -- what a contact got and has planned ------------------------------------------------
    def lock_contact(self, contact_id: str) -> None:
        """Serialise policy decisions per contact: two workers deciding for one contact at
        once would both see the last free slot of a cap."""
        if self._locks:  # SQLite: the unit of work already holds the database's one write lock
            self._c.execute(_LOCK, {"contact": contact_id})

    def lock_contacts(self, contact_ids: Iterable[str]) -> None:
        """As ``lock_contact``, for many, in id order against deadlocks."""
        if not self._locks:
            return
        # NO KEY UPDATE: rows referencing the contact (a notification just inserted) hold a
        # KEY SHARE lock on it, which this must not wait for; two deciders still take turns.
        query = select(s.contacts.c.id).order_by(s.contacts.c.id).with_for_update(key_share=True)
        _select_in(self._c, query, s.contacts.c.id, contact_ids)

    def locked_history(
        self, contact_id: str, since: datetime, event_types: Sequence[str], addresses: Sequence[str]
    ) -> list[Row]:
        """``lock_contact`` then ``history``. On PostgreSQL both go in one round trip
        (pipeline mode): the history statement starts after the lock is granted, so it sees
        what the previous holder committed."""
        if not self._locks:
            return self.history(contact_id, since, event_types, addresses)
        raw = self._c.connection.driver_connection
        params = {
            "contact": contact_id,
            "since": since,
            "types": sorted(set(event_types)),
            "addresses": [a for a in addresses if a],
        }
        with raw.pipeline():  # type: ignore[union-attr]
            raw.execute(_PG_LOCK, params)  # type: ignore[union-attr]
            cursor = raw.execute(_PG_HISTORY, params)  # type: ignore[union-attr]
        return [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    def history(
        self, contact_id: str, since: datetime, event_types: Sequence[str], addresses: Sequence[str]
    ) -> list[Row]:
        """In one statement, one round trip per decision: sends since ``since`` (kind ``s``),
        deferred notifications (``p``), events of the types given (``e``) and suppression-list
        entries for the contact's addresses (``x``: ``ref`` the channel, ``topic`` the reason,
        ``content_key`` the address)."""
        params = {
            "contact": contact_id,
            "since": since,
            "types": sorted(set(event_types)) or [""],
            "addresses": [a for a in addresses if a] or [""],
        }
        return _dicts(self._c.execute(_HISTORY, params))

    def lock_plans(self, notification_ids: Sequence[str]) -> set[str]:
        """Of these deferred notifications, those this transaction may move: one a timer is
        working on right now is skipped (it is being judged again anyway)."""
        if not notification_ids:
            return set()
        n = s.notifications
        query = select(n.c.id).where(n.c.status == DEFERRED).order_by(n.c.id)
        if self._locks:
            query = query.with_for_update(skip_locked=True)
        return {r["id"] for r in _select_in(self._c, query, n.c.id, notification_ids)}

    def log_send(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.send_log, row)

    def sends_since(self, contact_ids: Iterable[str], since: datetime) -> list[Row]:
        log = s.send_log
        query = select(log).where(log.c.at > since).order_by(log.c.at)
        return _select_in(self._c, query, log.c.contact_id, contact_ids)

    def planned(self, contact_ids: Iterable[str]) -> list[Row]:
        """Deferred notifications: the slots they hold in their contacts' calendars."""
        n = s.notifications
        query = select(n).where(n.c.status == DEFERRED).order_by(n.c.due_at)
        return _select_in(self._c, query, n.c.contact_id, contact_ids)

    def events_since(
        self, contact_ids: Iterable[str], types: Sequence[str], since: datetime
    ) -> list[Row]:
        if not types:
            return []
        e = s.events
        query = select(e.c.contact_id, e.c.type, e.c.occurred_at).where(
            e.c.occurred_at > since, e.c.type.in_(sorted(set(types)))
        )
        return _select_in(self._c, query, e.c.contact_id, contact_ids)

    def count_sends(self) -> int:
        return int(self._c.execute(select(func.count()).select_from(s.send_log)).scalar_one())

    def purge_sends(self, before: datetime) -> int:
        result = self._c.execute(delete(s.send_log).where(s.send_log.c.at < before))
        return int(result.rowcount or 0)

    # -- the suppression list ----------------------------------------------------------------
    def suppressed(self, addresses: Iterable[str]) -> list[Row]:
        return _select_in(
            self._c, select(s.suppressions), s.suppressions.c.address, [a for a in addresses if a]
        )

    def suppressions(self, limit: int, after: tuple[str, str] | None = None) -> list[Row]:
        t = s.suppressions
        query = select(t).order_by(t.c.address, t.c.channel).limit(limit)
        if after is not None:
            query = query.where(
                (t.c.address > after[0]) | ((t.c.address == after[0]) & (t.c.channel > after[1]))
            )
        return _dicts(self._c.execute(query))

    def suppression(self, address: str, channel: str) -> Row | None:
        t = s.suppressions
        query = select(t).where(t.c.address == address, t.c.channel == channel)
        return _first(self._c.execute(query))

    def add_suppression(self, row: dict[str, Any]) -> None:
        self._c.execute(s.suppressions.insert(), row)

    def remove_suppression(self, address: str, channel: str) -> bool:
        t = s.suppressions
        result = self._c.execute(delete(t).where(t.c.address == address, t.c.channel == channel))
        return bool(result.rowcount)

    # -- policy versions ---------------------------------------------------------------------
    def latest(self) -> Row | None:
        t = s.policies
        return _first(self._c.execute(select(t).order_by(t.c.version.desc()).limit(1)))

    def latest_version(self) -> int:
        value = self._c.execute(select(func.max(s.policies.c.version))).scalar_one_or_none()
        return int(value or 0)

    def add_version(self, row: dict[str, Any]) -> None:
        self._c.execute(s.policies.insert(), row)

    def versions(self) -> list[Row]:
        t = s.policies
        query = select(t.c.version, t.c.digest, t.c.created_at).order_by(t.c.version)
        return _dicts(self._c.execute(query))


def _history() -> Any:
    log, n, e, x = s.send_log, s.notifications, s.events, s.suppressions
    contact: Any = bindparam("contact")
    since: Any = bindparam("since")
    nothing = null()
    sends = select(
        literal("s", String).label("kind"),
        log.c.notification_id.label("ref"),
        log.c.at.label("at"),
        log.c.category,
        log.c.channel,
        log.c.topic,
        log.c.content_key,
        log.c.journey_id,
        typed(nothing, Integer).label("priority"),
        typed(nothing, Boolean).label("personal"),
        typed(nothing, UTCDateTime()).label("created_at"),
        typed(nothing, json_type()).label("steps"),
        typed(nothing, Integer).label("current_step"),
        typed(nothing, UTCDateTime()).label("valid_until"),
    ).where(log.c.contact_id == contact, log.c.at > since)
    planned = select(
        literal("p", String),
        n.c.id,
        n.c.due_at,
        n.c.category,
        nothing,
        n.c.topic,
        n.c.content_key,
        n.c.journey_id,
        n.c.priority,
        n.c.personal,
        n.c.created_at,
        n.c.steps,
        n.c.current_step,
        n.c.valid_until,
    ).where(n.c.contact_id == contact, n.c.status == DEFERRED)
    events = select(literal("e", String), e.c.type, e.c.occurred_at, *[nothing] * 11).where(
        e.c.contact_id == contact,
        e.c.occurred_at > since,
        e.c.type.in_(bindparam("types", expanding=True)),
    )
    listed = select(
        literal("x", String),
        x.c.channel,
        x.c.created_at,
        nothing,
        nothing,
        x.c.reason,
        x.c.address,
        *[nothing] * 7,
    ).where(x.c.address.in_(bindparam("addresses", expanding=True)))
    return union_all(sends, planned, events, listed)


# Built once: the statement's shape never changes, only its parameters.
_HISTORY: Final = _history()
_LOCK: Final = (
    select(s.contacts.c.id)
    .where(s.contacts.c.id == bindparam("contact"))
    .with_for_update(key_share=True)
)

HISTORY_COLUMNS: Final = (
    "kind",
    "ref",
    "at",
    "category",
    "channel",
    "topic",
    "content_key",
    "journey_id",
    "priority",
    "personal",
    "created_at",
    "steps",
    "current_step",
    "valid_until",
)
# The same statements in PostgreSQL's own words, for the driver's pipeline: arrays instead
# of expanding IN lists, so the text never changes and the server keeps it prepared.
_PG_LOCK: Final = "SELECT id FROM contacts WHERE id = %(contact)s FOR NO KEY UPDATE"
_PG_HISTORY: Final = """\
SELECT 's', notification_id, at, category, channel, topic, content_key, journey_id,
       NULL::int, NULL::bool, NULL::timestamptz, NULL::jsonb, NULL::int, NULL::timestamptz
  FROM send_log WHERE contact_id = %(contact)s AND at > %(since)s
UNION ALL
SELECT 'p', id, due_at, category, NULL, topic, content_key, journey_id,
       priority, personal, created_at, steps, current_step, valid_until
  FROM notifications WHERE contact_id = %(contact)s AND status = 'deferred'
UNION ALL
SELECT 'e', type, occurred_at, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL
  FROM events
 WHERE contact_id = %(contact)s AND occurred_at > %(since)s AND type = ANY(%(types)s)
UNION ALL
SELECT 'x', channel, created_at, NULL, NULL, reason, address, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL
  FROM suppressions WHERE address = ANY(%(addresses)s)
"""
