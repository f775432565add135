"""Journeys, their versions, runs and run history, in SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, or_, select

from kaskad.adapters.storage import schema as s
from kaskad.adapters.storage.changes import Changes
from kaskad.adapters.storage.repositories import (
    Row,
    _dicts,
    _first,
    _select_in,
    claim_due_rows,
    next_due_of,
)

LIVE = ("active", "paused")


class JourneyRepository:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, journey_id: str, *, lock: bool = False) -> Row | None:
        query = select(s.journeys).where(s.journeys.c.id == journey_id)
        if lock and self._c.dialect.name == "postgresql":
            query = query.with_for_update()
        return _first(self._c.execute(query))

    def all(self) -> list[Row]:
        return _dicts(self._c.execute(select(s.journeys).order_by(s.journeys.c.id)))

    def insert(self, row: dict[str, Any]) -> None:
        self._c.execute(s.journeys.insert(), row)

    def update(self, journey_id: str, values: dict[str, Any]) -> None:
        self._c.execute(s.journeys.update().where(s.journeys.c.id == journey_id).values(values))

    def add_version(self, row: dict[str, Any]) -> None:
        self._c.execute(s.journey_versions.insert(), row)

    def version(self, journey_id: str, version: int) -> Row | None:
        query = select(s.journey_versions).where(
            s.journey_versions.c.journey_id == journey_id,
            s.journey_versions.c.version == version,
        )
        return _first(self._c.execute(query))

    def versions(self, journey_id: str) -> list[Row]:
        columns = s.journey_versions.c
        query = (
            select(columns.version, columns.digest, columns.created_at)
            .where(columns.journey_id == journey_id)
            .order_by(columns.version)
        )
        return _dicts(self._c.execute(query))

    def active_of_kind(self, kind: str) -> list[Row]:
        query = select(s.journeys).where(
            s.journeys.c.status == "active", s.journeys.c.trigger_kind == kind
        )
        return _dicts(self._c.execute(query.order_by(s.journeys.c.id)))

    def live(self) -> list[Row]:
        """Journeys whose runs may still move: active and paused ones (a small table)."""
        query = select(s.journeys).where(s.journeys.c.status.in_(LIVE))
        return _dicts(self._c.execute(query.order_by(s.journeys.c.id)))


class RunRepository:
    def __init__(self, connection: Connection, changes: Changes, locks_rows: bool) -> None:
        self._c = connection
        self._changes = changes
        self._locks = locks_rows

    def add(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.runs, row)

    def set(self, run_id: str, values: dict[str, Any]) -> None:
        self._changes.update(s.runs, run_id, values)

    def add_history(self, row: dict[str, Any]) -> None:
        self._changes.insert(s.run_history, row)

    def get(self, run_id: str) -> Row | None:
        return _first(self._c.execute(select(s.runs).where(s.runs.c.id == run_id)))

    def claim_due(self, now: datetime, limit: int) -> list[Row]:
        return claim_due_rows(self._c, s.runs, now, limit, locks=self._locks)

    def next_due(self) -> datetime | None:
        return next_due_of(self._c, s.runs)

    def of_contacts(self, contact_ids: Iterable[str], *, also_journeys: Sequence[str]) -> list[Row]:
        """Locked: the contacts' active runs, and all their runs of ``also_journeys``."""
        c = s.runs.c
        wanted = c.status == "active"
        if also_journeys:
            wanted = or_(wanted, c.journey_id.in_(list(also_journeys)))
        query = select(s.runs).where(wanted).order_by(c.id)
        if self._locks:
            query = query.with_for_update()
        return _select_in(self._c, query, c.contact_id, contact_ids)

    def active_of_journey(self, journey_id: str) -> list[Row]:
        query = select(s.runs).where(s.runs.c.journey_id == journey_id, s.runs.c.status == "active")
        if self._locks:
            query = query.with_for_update()
        return _dicts(self._c.execute(query.order_by(s.runs.c.id)))

    def entries_of(self, contact_ids: Iterable[str], journey_ids: Sequence[str]) -> list[Row]:
        """When these contacts entered these journeys, and each run's status."""
        c = s.runs.c
        query = select(c.contact_id, c.journey_id, c.entered_at, c.status).where(
            c.journey_id.in_(list(journey_ids))
        )
        return _select_in(self._c, query, c.contact_id, contact_ids)

    def wake(self, run_ids: Sequence[str], now: datetime) -> None:
        """Make active runs due now: something they may be waiting for has changed."""
        for run_id in sorted(set(run_ids)):
            self._changes.update(s.runs, run_id, {"due_at": now})

    def history(self, run_id: str) -> list[Row]:
        query = (
            select(s.run_history)
            .where(s.run_history.c.run_id == run_id)
            .order_by(s.run_history.c.id)
        )
        return _dicts(self._c.execute(query))

    def of_contact(self, contact_id: str) -> list[Row]:
        query = (
            select(s.runs)
            .where(s.runs.c.contact_id == contact_id)
            .order_by(s.runs.c.entered_at.desc())
        )
        return _dicts(self._c.execute(query))

    def status_counts(self, journey_id: str) -> list[Row]:
        columns = s.runs.c
        query = (
            select(columns.version, columns.status, func.count().label("runs"))
            .where(columns.journey_id == journey_id)
            .group_by(columns.version, columns.status)
        )
        return _dicts(self._c.execute(query))

    def step_counts(self, journey_id: str) -> list[Row]:
        h, r = s.run_history.c, s.runs.c
        query = (
            select(r.version, h.step, h.kind, func.count().label("count"))
            .select_from(s.run_history.join(s.runs, r.id == h.run_id))
            .where(r.journey_id == journey_id)
            .group_by(r.version, h.step, h.kind)
        )
        return _dicts(self._c.execute(query))

    def waiting_counts(self, journey_id: str) -> list[Row]:
        columns = s.runs.c
        query = (
            select(columns.version, columns.position, func.count().label("runs"))
            .where(columns.journey_id == journey_id, columns.status == "active")
            .group_by(columns.version, columns.position)
        )
        return _dicts(self._c.execute(query))


class ScheduleRepository:
    """The next firing of each scheduled or date-triggered journey, per time zone."""

    def __init__(self, connection: Connection, locks_rows: bool) -> None:
        self._c = connection
        self._locks = locks_rows

    def all(self) -> list[Row]:
        table = s.journey_schedules
        return _dicts(self._c.execute(select(table).order_by(table.c.journey_id)))

    def put(self, row: dict[str, Any]) -> None:
        self.remove(row["journey_id"])
        self._c.execute(s.journey_schedules.insert(), row)

    def set(self, journey_id: str, values: dict[str, Any]) -> None:
        table = s.journey_schedules
        self._c.execute(table.update().where(table.c.journey_id == journey_id).values(values))

    def remove(self, journey_id: str) -> None:
        table = s.journey_schedules
        self._c.execute(delete(table).where(table.c.journey_id == journey_id))

    def claim_due(self, now: datetime) -> Row | None:
        """One due firing (its contacts are walked a page at a time)."""
        rows = claim_due_rows(self._c, s.journey_schedules, now, 1, locks=self._locks)
        return rows[0] if rows else None

    def next_due(self) -> datetime | None:
        return next_due_of(self._c, s.journey_schedules)


def contact_zones(connection: Connection) -> set[str]:
    """The time zones contacts live in; a contact without one lives in UTC."""
    query = select(s.contacts.c.timezone).distinct().where(s.contacts.c.erased_at.is_(None))
    return {zone or "UTC" for (zone,) in connection.execute(query)}


def contacts_in_zones(
    connection: Connection, zones: Sequence[str], after: str | None, limit: int
) -> list[Row]:
    """A page of the contacts living in ``zones``, in id order, after the id ``after``."""
    c = s.contacts.c
    in_zone: ColumnElement[bool] = c.timezone.in_(list(zones))
    if "UTC" in zones:
        in_zone = or_(in_zone, c.timezone.is_(None))
    query = select(s.contacts).where(and_(in_zone, c.erased_at.is_(None)))
    if after is not None:
        query = query.where(c.id > after)
    return _dicts(connection.execute(query.order_by(c.id).limit(limit)))
