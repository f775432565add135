"""Repositories: the queries each use case needs, in SQLAlchemy Core.

Writes go through ``Changes`` so a use case's rows reach the database in a few statements.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Result,
    Select,
    String,
    and_,
    any_,
    case,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kaskad.adapters.storage import schema as s
from kaskad.adapters.storage.changes import Changes

Row = dict[str, Any]

_PG_INSERT_EVENTS = text(
    "INSERT INTO events (id, contact_id, key, type, occurred_at, received_at, payload) "
    "SELECT id, contact_id, key, type, occurred_at, received_at, payload "
    "FROM json_to_recordset(CAST(:rows AS json)) AS r(id varchar, contact_id varchar, "
    "key varchar, type varchar, occurred_at timestamptz, received_at timestamptz, payload jsonb) "
    "ON CONFLICT DO NOTHING RETURNING key, contact_id"
)


def _dicts(result: Result[Any]) -> list[Row]:
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


def _first(result: Result[Any]) -> Row | None:
    row = result.mappings().first()
    return dict(row) if row is not None else None


def _insert_ignoring_conflicts(connection: Connection, table: Any) -> Any:
    if connection.dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    if connection.dialect.name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    return sa_insert(table)  # pragma: no cover - only the two databases are supported


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _select_in(
    connection: Connection, query: Select[Any], column: Any, keys: Iterable[Any]
) -> list[Row]:
    """Run ``query`` for ``column IN keys``, in chunks so long lists stay within SQL limits.

    PostgreSQL gets ``= ANY(array)``: one parameter instead of hundreds, so the statement
    text (and its prepared plan) is the same whatever the number of keys.
    """
    rows: list[Row] = []
    postgres = connection.dialect.name == "postgresql"
    for chunk in _chunks(sorted(set(keys))):
        if postgres:
            match = column == any_(literal(list(chunk), ARRAY(column.type)))
        else:
            match = column.in_(chunk)
        rows.extend(_dicts(connection.execute(query.where(match))))
    return rows


def claim_due_rows(
    connection: Connection, table: Any, now: datetime, limit: int, *, locks: bool
) -> list[Row]:
    """Rows of a timer table whose ``due_at`` has come, earliest first. On PostgreSQL they
    are locked and skipped by other workers: many workers, each due row to one of them."""
    query: Select[Any] = (
        select(table)
        .where(table.c.due_at.is_not(None), table.c.due_at <= now)
        .order_by(table.c.due_at)
        .limit(limit)
    )
    if locks:
        query = query.with_for_update(skip_locked=True)
    return _dicts(connection.execute(query))


def next_due_of(connection: Connection, table: Any) -> datetime | None:
    """The earliest ``due_at`` of a timer table."""
    # The condition matches the partial index; without it SQLite scans the table.
    query = select(func.min(table.c.due_at)).where(table.c.due_at.is_not(None))
    value: datetime | None = connection.execute(query).scalar_one_or_none()
    return value


class ContactRepository:
    def __init__(self, connection: Connection, changes: Changes) -> None:
        self._c = connection
        self._changes = changes

    def by_external_id(self, external_id: str) -> Row | None:
        query = select(s.contacts).where(s.contacts.c.external_id == external_id)
        return _first(self._c.execute(query))

    def by_external_ids(self, external_ids: Sequence[str]) -> dict[str, Row]:
        rows = _select_in(self._c, select(s.contacts), s.contacts.c.external_id, external_ids)
        return {r["external_id"]: r for r in rows}

    def ids_by_external_ids(self, external_ids: Sequence[str]) -> dict[str, str]:
        """Contact ids only: no personal data to decode on the event path."""
        query = select(s.contacts.c.id, s.contacts.c.external_id)
        rows = _select_in(self._c, query, s.contacts.c.external_id, external_ids)
        return {r["external_id"]: r["id"] for r in rows}

    def by_ids(self, ids: Iterable[str]) -> dict[str, Row]:
        rows = _select_in(self._c, select(s.contacts), s.contacts.c.id, ids)
        return {r["id"]: r for r in rows}

    def ids_by_phones(self, phones: Iterable[str]) -> dict[str, str]:
        """Contact ids by E.164 phone; erased contacts are no one's."""
        columns = s.contacts.c
        query = select(columns.phone, columns.id).where(columns.erased_at.is_(None))
        return {r["phone"]: r["id"] for r in _select_in(self._c, query, columns.phone, phones)}

    def insert_missing(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert contacts whose external id is new; a concurrent insert of the same one wins."""
        if rows:
            self._c.execute(_insert_ignoring_conflicts(self._c, s.contacts), list(rows))

    def insert(self, row: dict[str, Any]) -> None:
        self._c.execute(s.contacts.insert(), row)

    def update(self, contact_id: str, values: dict[str, Any]) -> None:
        self._c.execute(s.contacts.update().where(s.contacts.c.id == contact_id).values(values))

    def set(self, contact_id: str, values: dict[str, Any]) -> None:
        """Update at commit, batched with the other contacts changed in this unit of work."""
        self._changes.update(s.contacts, contact_id, values)

    def erase_history(self, contact_id: str) -> None:
        """Drop personal data from messages and events; keep rows for anonymised counts."""
        self._c.execute(
            s.messages.update()
            .where(s.messages.c.contact_id == contact_id)
            .values(address=None, content={})
        )
        self._c.execute(
            s.events.update().where(s.events.c.contact_id == contact_id).values(payload={})
        )

    def counts(self, contact_id: str) -> dict[str, int]:
        query = (
            select(s.messages.c.channel, func.count())
            .where(s.messages.c.contact_id == contact_id)
            .group_by(s.messages.c.channel)
        )
        return {str(channel): int(n) for channel, n in self._c.execute(query)}


class EventRepository:
    def __init__(self, connection: Connection, changes: Changes) -> None:
        self._c = connection
        self._changes = changes

    def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """Insert events, skipping (key, contact) pairs already stored; return those inserted."""
        if not rows:
            return set()
        if self._c.dialect.name == "postgresql":
            return self._insert_new_postgres(rows)
        statement = _insert_ignoring_conflicts(self._c, s.events).returning(
            s.events.c.key, s.events.c.contact_id
        )
        inserted = self._c.execute(statement, list(rows))
        return {(r.key, r.contact_id) for r in inserted}

    def _insert_new_postgres(self, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """The whole batch as one JSON parameter, in a statement whose text never changes.

        A multi-row VALUES list has a placeholder per value: psycopg re-parses thousands of
        them on every call and PostgreSQL plans each length anew; per-column arrays cost
        as much again in psycopg's Python array dumper. One JSON text is built in C.
        """
        document = json.dumps(
            [
                r
                | {
                    "occurred_at": r["occurred_at"].isoformat(),
                    "received_at": r["received_at"].isoformat(),
                }
                for r in rows
            ],
            separators=(",", ":"),
        )
        inserted = self._c.execute(_PG_INSERT_EVENTS, {"rows": document})
        return {(key, contact) for key, contact in inserted}

    def ids_for(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        for chunk in _chunks(sorted(set(pairs))):
            query = select(s.events.c.id, s.events.c.key, s.events.c.contact_id).where(
                or_(*(and_(s.events.c.key == k, s.events.c.contact_id == c) for k, c in chunk))
            )
            found.update({(r.key, r.contact_id): r.id for r in self._c.execute(query)})
        return found

    def count(self) -> int:
        return int(self._c.execute(select(func.count()).select_from(s.events)).scalar_one())


class NotificationRepository:
    def __init__(self, connection: Connection, changes: Changes, locks_rows: bool) -> None:
        self._c = connection
        self._changes = changes
        self._locks = locks_rows

    # -- notifications -------------------------------------------------------------------
    def id_for_key(self, contact_id: str, key: str) -> str | None:
        query = select(s.notifications.c.id).where(
            s.notifications.c.contact_id == contact_id,
            s.notifications.c.idempotency_key == key,
        )
        return self._c.execute(query).scalar_one_or_none()

    def get(self, notification_id: str) -> Row | None:
        query = select(s.notifications).where(s.notifications.c.id == notification_id)
        return _first(self._c.execute(query))

    def summaries(self, ids: Iterable[str]) -> dict[str, Row]:
        """Category and status of notifications, without locking them."""
        columns = s.notifications.c
        query = select(columns.id, columns.category, columns.status)
        return {r["id"]: r for r in _select_in(self._c, query, columns.id, ids)}

    def data_of(self, ids: Iterable[str]) -> dict[str, Any]:
        """What templates see as ``event``, per notification."""
        columns = s.notifications.c
        query = select(columns.id, columns.data)
        return {r["id"]: r["data"] for r in _select_in(self._c, query, columns.id, ids)}

    def lock_ids(self, ids: Iterable[str]) -> None:
        """Lock notifications without loading them (PostgreSQL; SQLite is already locked)."""
        if self._locks:
            query = select(s.notifications.c.id).order_by(s.notifications.c.id).with_for_update()
            _select_in(self._c, query, s.notifications.c.id, ids)

    def lock(self, ids: Iterable[str]) -> dict[str, Row]:
        """Load notifications for update, in id order so two workers never deadlock."""
        query = select(s.notifications).order_by(s.notifications.c.id)
        if self._locks:
            query = query.with_for_update()
        rows = _select_in(self._c, query, s.notifications.c.id, ids)
        return {r["id"]: r for r in rows}

    def active_of(self, contact_id: str) -> dict[str, Row]:
        query = select(s.notifications.c.id).where(
            s.notifications.c.contact_id == contact_id,
            s.notifications.c.status.in_(("active", "deferred")),
        )
        return self.lock(self._c.execute(query).scalars())

    def claim_due(self, now: datetime, limit: int) -> list[Row]:
        return claim_due_rows(self._c, s.notifications, now, limit, locks=self._locks)

    def add(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.notifications, row)

    def set(self, notification_id: str, values: dict[str, Any]) -> None:
        self._changes.update(s.notifications, notification_id, values)

    def next_due(self) -> datetime | None:
        return next_due_of(self._c, s.notifications)

    def waiting_count(self) -> int:
        query = select(func.count()).where(s.notifications.c.due_at.is_not(None))
        return int(self._c.execute(query).scalar_one())

    # -- messages ------------------------------------------------------------------------
    def messages_of(self, notification_ids: Iterable[str]) -> list[Row]:
        query = select(s.messages).order_by(s.messages.c.notification_id, s.messages.c.step)
        return _select_in(self._c, query, s.messages.c.notification_id, notification_ids)

    def owners_of(self, message_ids: Iterable[str]) -> list[str]:
        """The notifications these messages belong to."""
        query = select(s.messages.c.notification_id).distinct()
        rows = _select_in(self._c, query, s.messages.c.id, message_ids)
        return [r["notification_id"] for r in rows]

    def messages_by_ids(self, ids: Iterable[str]) -> dict[str, Row]:
        rows = _select_in(self._c, select(s.messages), s.messages.c.id, ids)
        return {r["id"]: r for r in rows}

    def messages_by_provider_ref(self, provider: str, refs: Iterable[str]) -> dict[str, Row]:
        query = select(s.messages).where(s.messages.c.provider == provider)
        rows = _select_in(self._c, query, s.messages.c.provider_message_id, refs)
        return {r["provider_message_id"]: r for r in rows}

    def add_message(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.messages, row)

    def set_message(self, message_id: str, values: dict[str, Any]) -> None:
        self._changes.update(s.messages, message_id, values)

    def add_status(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.message_statuses, row)

    def statuses_of(self, message_ids: Iterable[str]) -> list[Row]:
        query = select(s.message_statuses).order_by(s.message_statuses.c.id)
        return _select_in(self._c, query, s.message_statuses.c.message_id, message_ids)

    # -- outbox --------------------------------------------------------------------------
    def enqueue(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.outbox, row)

    def outbox_rows(self, message_ids: Iterable[str], *, lock: bool = False) -> dict[str, Row]:
        """Outbox rows by message; ``lock`` waits for a sender that is claiming them."""
        query = select(s.outbox)
        if lock and self._locks:
            query = query.with_for_update()
        rows = _select_in(self._c, query, s.outbox.c.message_id, message_ids)
        return {r["message_id"]: r for r in rows}

    def claim_outbox(self, now: datetime, limit: int, min_priority: int | None = None) -> list[Row]:
        """Due, unleased outbox rows, highest priority first; ``min_priority`` only those
        at or above it (the urgent lane a busy sender still takes)."""
        query: Select[Any] = (
            select(s.outbox)
            .where(
                s.outbox.c.due_at <= now,
                or_(s.outbox.c.lease_until.is_(None), s.outbox.c.lease_until <= now),
                *([s.outbox.c.priority >= min_priority] if min_priority is not None else []),
            )
            .order_by(s.outbox.c.priority.desc(), s.outbox.c.due_at)
            .limit(limit)
        )
        if self._locks:
            query = query.with_for_update(skip_locked=True)
        return list(_dicts(self._c.execute(query)))

    def set_outbox(self, message_id: str, values: dict[str, Any]) -> None:
        self._changes.update(s.outbox, message_id, values)

    def dequeue(self, message_id: str) -> None:
        self._changes.delete(s.outbox, message_id)

    def next_outbox_due(self) -> datetime | None:
        """When the next queued message may be claimed: its due time, or its lease's end."""
        o = s.outbox.c
        ready = case((o.lease_until > o.due_at, o.lease_until), else_=o.due_at)
        value: datetime | None = self._c.execute(select(func.min(ready))).scalar_one_or_none()
        return value

    def outbox_depth(self) -> int:
        return int(self._c.execute(select(func.count()).select_from(s.outbox)).scalar_one())

    # -- decisions -----------------------------------------------------------------------
    def add_decision(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.decisions, row)

    def decisions_of(self, notification_id: str) -> list[Row]:
        query = (
            select(s.decisions)
            .where(s.decisions.c.notification_id == notification_id)
            .order_by(s.decisions.c.id)
        )
        return list(_dicts(self._c.execute(query)))

    # -- the contact timeline ------------------------------------------------------------
    def timeline(self, contact_id: str, limit: int, before: datetime | None) -> list[Row]:
        """Events, message statuses, decisions and journey steps of one contact, newest first."""
        m, st, ev, de, rh = s.messages, s.message_statuses, s.events, s.decisions, s.run_history
        null = literal(None, String())
        parts = [
            select(
                ev.c.received_at.label("at"),
                literal("event", String()).label("kind"),
                ev.c.id.label("ref"),
                ev.c.type.label("name"),
                ev.c.key.label("text"),
                null.label("channel"),
            ).where(ev.c.contact_id == contact_id),
            select(
                st.c.at,
                literal("message", String()),
                st.c.message_id,
                st.c.status,
                st.c.provider_status,
                m.c.channel,
            )
            .join(m, m.c.id == st.c.message_id)
            .where(st.c.contact_id == contact_id),
            select(
                de.c.at,
                literal("decision", String()),
                de.c.notification_id,
                de.c.kind,
                de.c.reason,
                null,
            ).where(de.c.contact_id == contact_id),
            select(
                rh.c.at,
                literal("journey", String()),
                rh.c.run_id,
                rh.c.kind,
                s.runs.c.journey_id + literal(": ", String()) + rh.c.text,
                null,
            )
            .join(s.runs, s.runs.c.id == rh.c.run_id)
            .where(s.runs.c.contact_id == contact_id),
        ]
        if before is not None:
            parts = [p.where(p.selected_columns[0] < before) for p in parts]
        union = union_all(*parts).subquery()
        query = select(union).order_by(union.c.at.desc()).limit(limit)
        return _dicts(self._c.execute(query))


class SandboxRepository:
    """The sandbox provider's own store: what it accepted and the reports it will send."""

    def __init__(self, connection: Connection, changes: Changes, locks_rows: bool) -> None:
        self._c = connection
        self._changes = changes
        self._locks = locks_rows

    def outcomes_for(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        wanted = set(keys)
        table = s.sandbox_outcomes
        rows = _select_in(self._c, select(table), table.c.address, {a for _, a in wanted})
        found = {(r["channel"], r["address"]): r["outcome"] for r in rows}
        return {key: outcome for key, outcome in found.items() if key in wanted}

    def set_outcome(self, channel: str, address: str, outcome: str, now: datetime) -> None:
        table = s.sandbox_outcomes
        self._c.execute(
            table.delete().where(table.c.channel == channel, table.c.address == address)
        )
        self._c.execute(
            table.insert().values(channel=channel, address=address, outcome=outcome, updated_at=now)
        )

    def accepted(self, client_refs: Iterable[str]) -> dict[str, Row]:
        rows = _select_in(
            self._c, select(s.sandbox_messages), s.sandbox_messages.c.client_ref, client_refs
        )
        return {r["client_ref"]: r for r in rows}

    def by_provider_ids(self, ids: Iterable[str]) -> dict[str, Row]:
        column = s.sandbox_messages.c.provider_message_id
        rows = _select_in(self._c, select(s.sandbox_messages), column, ids)
        return {r["provider_message_id"]: r for r in rows}

    def count_resends(self, client_refs: Iterable[str]) -> None:
        for ref in client_refs:
            self._c.execute(
                s.sandbox_messages.update()
                .where(s.sandbox_messages.c.client_ref == ref)
                .values(attempts=s.sandbox_messages.c.attempts + 1)
            )

    def accept(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.sandbox_messages, row)

    def schedule_report(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.sandbox_reports, row)

    def claim_due_reports(self, now: datetime, limit: int) -> list[Row]:
        query: Select[Any] = (
            select(s.sandbox_reports)
            .where(s.sandbox_reports.c.due_at <= now)
            .order_by(s.sandbox_reports.c.due_at, s.sandbox_reports.c.id)
            .limit(limit)
        )
        if self._locks:
            query = query.with_for_update(skip_locked=True)
        return list(_dicts(self._c.execute(query)))

    def next_report_due(self) -> datetime | None:
        query = select(func.min(s.sandbox_reports.c.due_at))
        value: datetime | None = self._c.execute(query).scalar_one_or_none()
        return value

    def delete_reports(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(list(ids)):
            self._c.execute(s.sandbox_reports.delete().where(s.sandbox_reports.c.id.in_(chunk)))

    def received(self, channel: str | None, address: str | None, limit: int) -> list[Row]:
        query = select(s.sandbox_messages).order_by(s.sandbox_messages.c.accepted_at.desc())
        if channel:
            query = query.where(s.sandbox_messages.c.channel == channel)
        if address:
            query = query.where(s.sandbox_messages.c.address == address)
        return list(_dicts(self._c.execute(query.limit(limit))))


class ApiKeyRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, row: dict[str, Any]) -> None:
        self._c.execute(s.api_keys.insert(), row)

    def active_by_hash(self, key_hash: str) -> Row | None:
        query = select(s.api_keys).where(
            s.api_keys.c.key_hash == key_hash, s.api_keys.c.revoked_at.is_(None)
        )
        return _first(self._c.execute(query))

    def revoke_named(self, name: str, now: datetime) -> int:
        result = self._c.execute(
            s.api_keys.update()
            .where(s.api_keys.c.name == name, s.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount)

    def list(self) -> list[Row]:
        return list(_dicts(self._c.execute(select(s.api_keys).order_by(s.api_keys.c.created_at))))
