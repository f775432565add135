"""Templates and their versions, tracked links and clicks, early reports, inbound messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, tuple_

from kaskad.adapters.storage import schema as s
from kaskad.adapters.storage.changes import Changes
from kaskad.adapters.storage.repositories import Row, _dicts, _first


class TemplateRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, template_id: str, *, lock: bool = False) -> Row | None:
        query = select(s.templates).where(s.templates.c.id == template_id)
        if lock and self._c.dialect.name == "postgresql":
            query = query.with_for_update()
        return _first(self._c.execute(query))

    def all(self) -> list[Row]:
        return _dicts(self._c.execute(select(s.templates).order_by(s.templates.c.id)))

    def insert(self, row: dict[str, Any]) -> None:
        self._c.execute(s.templates.insert(), row)

    def update(self, template_id: str, values: dict[str, Any]) -> None:
        self._c.execute(s.templates.update().where(s.templates.c.id == template_id).values(values))

    def add_version(self, row: dict[str, Any]) -> None:
        self._c.execute(s.template_versions.insert(), row)

    def version(self, template_id: str, version: int) -> Row | None:
        columns = s.template_versions.c
        query = select(s.template_versions).where(
            columns.template_id == template_id, columns.version == version
        )
        return _first(self._c.execute(query))

    def versions(self, template_id: str) -> list[Row]:
        columns = s.template_versions.c
        query = (
            select(columns.version, columns.digest, columns.created_at)
            .where(columns.template_id == template_id)
            .order_by(columns.version)
        )
        return _dicts(self._c.execute(query))

    def live_versions(self, template_ids: Iterable[str]) -> dict[str, int]:
        ids = sorted(set(template_ids))
        if not ids:
            return {}
        query = select(s.templates.c.id, s.templates.c.version).where(s.templates.c.id.in_(ids))
        return {row.id: row.version for row in self._c.execute(query)}


class LinkRepository:
    """The original URL behind each short link, and the clicks and opens recorded."""

    def __init__(self, connection: Connection, changes: Changes) -> None:
        self._c = connection
        self._changes = changes

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            self._changes.insert(s.message_links, row)

    def url(self, message_id: str, link: int) -> str | None:
        columns = s.message_links.c
        query = select(columns.url).where(columns.message_id == message_id, columns.link == link)
        return self._c.execute(query).scalar_one_or_none()

    def of_messages(self, message_ids: Sequence[str]) -> dict[str, list[str]]:
        if not message_ids:
            return {}
        columns = s.message_links.c
        query = (
            select(columns.message_id, columns.url)
            .where(columns.message_id.in_(sorted(set(message_ids))))
            .order_by(columns.message_id, columns.link)
        )
        found: dict[str, list[str]] = {}
        for row in self._c.execute(query):
            found.setdefault(row.message_id, []).append(row.url)
        return found

    def add_click(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.clicks, row)

    def clicks_of(self, message_ids: Sequence[str]) -> list[Row]:
        if not message_ids:
            return []
        query = (
            select(s.clicks)
            .where(s.clicks.c.message_id.in_(sorted(set(message_ids))))
            .order_by(s.clicks.c.id)
        )
        return _dicts(self._c.execute(query))


class EarlyReportRepository:
    def __init__(self, connection: Connection, changes: Changes) -> None:
        self._c = connection
        self._changes = changes

    def park(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.early_reports, row)

    def take(self, refs: Iterable[tuple[str, str]]) -> list[Row]:
        """Remove and return the parked reports for these (provider, provider id) pairs."""
        pairs = sorted(set(refs))
        if not pairs:
            return []
        columns = s.early_reports.c
        match = tuple_(columns.provider, columns.provider_message_id).in_(pairs)
        rows = _dicts(self._c.execute(select(s.early_reports).where(match).order_by(columns.id)))
        if rows:
            self._c.execute(delete(s.early_reports).where(columns.id.in_([r["id"] for r in rows])))
        return rows

    def purge(self, before: datetime) -> int:
        """Forget reports whose send never got an answer naming them (kept a week)."""
        query = delete(s.early_reports).where(s.early_reports.c.received_at < before)
        return int(self._c.execute(query).rowcount or 0)


class InboundRepository:
    def __init__(self, connection: Connection, changes: Changes) -> None:
        self._c = connection
        self._changes = changes

    def add(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.inbound_messages, row)

    def known(self, provider: str, refs: Iterable[str]) -> set[str]:
        """Provider ids already stored: a peer that resends an MO we acknowledged late."""
        ids = sorted(set(refs))
        if not ids:
            return set()
        columns = s.inbound_messages.c
        query = select(columns.provider_message_id).where(
            columns.provider == provider, columns.provider_message_id.in_(ids)
        )
        return {str(r) for r in self._c.execute(query).scalars()}

    def latest_message(
        self, contact_id: str, channel: str, since: datetime, statuses: Sequence[str]
    ) -> Row | None:
        """The last message sent to a contact on a channel since ``since``: what a reply
        that names no message answers. Read through the (contact, created_at) index."""
        columns = s.messages.c
        query = (
            select(
                columns.id,
                columns.notification_id,
                columns.contact_id,
                columns.channel,
                columns.step,
                columns.content,
                columns.created_at,
            )
            .where(
                columns.contact_id == contact_id,
                columns.created_at >= since,
                columns.channel == channel,
                columns.status.in_(list(statuses)),
            )
            .order_by(columns.created_at.desc(), columns.step.desc())
            .limit(1)
        )
        return _first(self._c.execute(query))

    def of_contact(self, contact_id: str, limit: int = 100) -> list[Row]:
        columns = s.inbound_messages.c
        query = (
            select(s.inbound_messages)
            .where(columns.contact_id == contact_id)
            .order_by(columns.received_at.desc())
            .limit(limit)
        )
        return _dicts(self._c.execute(query))

    def recent(self, limit: int = 100) -> list[Row]:
        query = (
            select(s.inbound_messages)
            .order_by(s.inbound_messages.c.received_at.desc())
            .limit(limit)
        )
        return _dicts(self._c.execute(query))
