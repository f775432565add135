"""Batched writes: many rows in one statement on PostgreSQL, the same rows on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from kaskad.adapters.storage import changes, schema
from kaskad.adapters.storage.unit_of_work import UnitOfWork

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def contact(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"ctc_{n:04d}",
        "external_id": f"c-{n}",
        "phone": None,
        "email": None,
        "push_tokens": [],
        "locale": None,
        "timezone": None,
        "attributes": {"n": n, "name": 'Кафе "Львів" \\ №1', "tags": ["a", None], "nested": {}},
        "consents": {},
        "created_at": T0,
        "updated_at": T0,
        **extra,
    }


def stored(db: Engine) -> list[tuple[Any, ...]]:
    c = schema.contacts.c
    query = select(c.id, c.attributes, c.updated_at, c.erased_at, c.timezone).order_by(c.id)
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def test_many_inserts_and_updates_round_trip_exactly(db: Engine) -> None:
    uow = UnitOfWork(db)
    with uow:
        for n in range(5):
            uow.changes.insert(schema.contacts, contact(n))
        uow.commit()
    later = T0 + timedelta(hours=1, microseconds=7)
    with uow:
        for n in (1, 3):
            uow.contacts.set(f"ctc_{n:04d}", {"attributes": {"n": -n}, "updated_at": later})
        uow.contacts.set("ctc_0004", {"timezone": "Europe/Kyiv"})  # another column set
        uow.commit()
    rows = stored(db)
    assert [r[1]["n"] for r in rows] == [0, -1, 2, -3, 4]
    assert rows[0][1] == contact(0)["attributes"]
    assert [r[2] for r in rows] == [T0, later, T0, later, T0]
    assert [r[4] for r in rows] == [None, None, None, None, "Europe/Kyiv"]
    assert {r[3] for r in rows} == {None}


def test_only_the_tables_own_columns_reach_sql() -> None:
    with pytest.raises(KeyError, match="no_such_column"):
        changes._columns(schema.contacts, [contact(1), contact(2, no_such_column=1)])
    assert changes._columns(schema.contacts, [contact(1)])[:2] == ("id", "external_id")


@pytest.mark.parametrize(
    ("row", "error"),
    [({"created_at": datetime(2026, 3, 2, 9, 0)}, ValueError)],  # a naive datetime
)
def test_bad_rows_are_refused_and_nothing_is_written(
    db: Engine, row: dict[str, Any], error: type[Exception]
) -> None:
    def write() -> None:
        with UnitOfWork(db) as uow:
            uow.changes.insert(schema.contacts, contact(2, **row))
            uow.changes.insert(schema.contacts, contact(1))
            uow.commit()

    # PostgreSQL's batched path raises the error itself; SQLAlchemy wraps it on SQLite.
    with pytest.raises((error, SQLAlchemyError)):
        write()
    assert stored(db) == []
