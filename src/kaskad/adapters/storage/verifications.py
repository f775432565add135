"""Verifications (one-time codes): rows, the counts rate limits read, and expired codes."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, text

from kaskad.adapters.storage import schema as s
from kaskad.adapters.storage.repositories import Row, _dicts, _first

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:space, :key)")
# The first half of every advisory lock key verifications take, so they never meet others.
_LOCK_SPACE = 0x6F7470  # "otp"


class VerificationRepository:
    def __init__(self, connection: Connection, locks_rows: bool) -> None:
        self._c = connection
        self._locks = locks_rows

    def add(self, row: dict[str, Any]) -> None:
        self._c.execute(s.verifications.insert(), row)

    def get(self, verification_id: str, *, lock: bool = False) -> Row | None:
        query = select(s.verifications).where(s.verifications.c.id == verification_id)
        if lock and self._locks:
            query = query.with_for_update()
        return _first(self._c.execute(query))

    def set(self, verification_id: str, values: dict[str, Any]) -> None:
        table = s.verifications
        self._c.execute(table.update().where(table.c.id == verification_id).values(values))

    def serialise(self, keys: Iterable[str]) -> None:
        """Hold one transaction-long lock per rate-limit key (PostgreSQL), in one order so two
        requests never deadlock: the count and the insert after it are then one step, and
        concurrent requests for one phone cannot all slip under its limit. SQLite already
        has a single writer."""
        if not self._locks:
            return
        for key in sorted(set(keys)):
            number = zlib.crc32(key.encode()) - 2**31  # a signed 32-bit key
            self._c.execute(_ADVISORY_LOCK, {"space": _LOCK_SPACE, "key": number})

    def contact_by_phone(self, phone: str) -> Row | None:
        """The oldest contact with this E.164 phone: one answer however many share it."""
        columns = s.contacts.c
        query = (
            select(s.contacts)
            .where(columns.phone == phone, columns.erased_at.is_(None))
            .order_by(columns.created_at, columns.id)
            .limit(1)
        )
        return _first(self._c.execute(query))

    def recent(self, column: str, key: str, since: datetime, limit: int) -> list[datetime]:
        """Creation times of the latest ``limit`` verifications with this phone or IP key."""
        table = s.verifications
        query = (
            select(table.c.created_at)
            .where(table.c[column] == key, table.c.created_at > since)
            .order_by(table.c.created_at.desc())
            .limit(limit)
        )
        return list(self._c.execute(query).scalars())

    def pending_of(self, contact_id: str) -> list[Row]:
        """The contact's live codes, locked: a newer verification supersedes them."""
        table = s.verifications
        query = (
            select(table)
            .where(table.c.contact_id == contact_id, table.c.status == "pending")
            .order_by(table.c.id)
        )
        if self._locks:
            query = query.with_for_update()
        return _dicts(self._c.execute(query))

    def claim_expired(self, now: datetime, limit: int) -> list[Row]:
        """Pending verifications past their expiry, which no check will settle now: another
        transaction busy with one skips it (PostgreSQL)."""
        table = s.verifications
        query = (
            select(table)
            .where(table.c.status == "pending", table.c.expires_at <= now)
            .order_by(table.c.expires_at)
            .limit(limit)
        )
        if self._locks:
            query = query.with_for_update(skip_locked=True)
        return _dicts(self._c.execute(query))
