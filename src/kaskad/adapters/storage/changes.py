"""Writes collected during a use case and flushed at commit with one statement per table.

Engine batches touch hundreds of rows; one ``executemany`` per table and column set is what
lets two cores move thousands of messages a second. Updates to the same row merge, so a
message that goes ``sent`` then ``delivered`` in one batch is written once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, update

from kaskad.adapters.storage import schema

# Parents before children, so foreign keys hold at every statement.
INSERT_ORDER = (
    schema.contacts,
    schema.events,
    schema.runs,
    schema.run_history,
    schema.notifications,
    schema.messages,
    schema.message_statuses,
    schema.outbox,
    schema.decisions,
    schema.sandbox_messages,
    schema.sandbox_reports,
)
KEYS = {
    schema.messages.name: "id",
    schema.notifications.name: "id",
    schema.contacts.name: "id",
    schema.runs.name: "id",
    schema.outbox.name: "message_id",
}


class Changes:
    def __init__(self) -> None:
        self._inserts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._updates: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._deletes: dict[str, set[str]] = defaultdict(set)
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}

    def insert(self, table: Table, row: dict[str, Any]) -> None:
        self._inserts[table.name].append(row)
        key = KEYS.get(table.name)
        if key is not None and row.get(key) is not None:
            self._pending[(table.name, row[key])] = row

    def update(self, table: Table, key: str, values: dict[str, Any]) -> None:
        """Update a row; one inserted in this same unit of work is updated before insert."""
        pending = self._pending.get((table.name, key))
        if pending is not None:
            pending.update(values)
            return
        self._updates[table.name].setdefault(key, {}).update(values)

    def delete(self, table: Table, key: str) -> None:
        self._deletes[table.name].add(key)

    def flush(self, connection: Connection) -> None:
        for table in INSERT_ORDER:
            rows = self._inserts.pop(table.name, None)
            if rows:
                connection.execute(insert(table), rows)
        for name, by_key in self._updates.items():
            _flush_updates(connection, schema.metadata.tables[name], by_key)
        for name, keys in self._deletes.items():
            table = schema.metadata.tables[name]
            key_column = table.c[KEYS[name]]
            for chunk in _chunks(sorted(keys), 500):
                connection.execute(delete(table).where(key_column.in_(chunk)))
        self._inserts.clear()
        self._updates.clear()
        self._deletes.clear()
        self._pending.clear()


def _flush_updates(connection: Connection, table: Table, by_key: dict[str, dict[str, Any]]) -> None:
    key_name = KEYS[table.name]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for key, values in by_key.items():
        columns = tuple(sorted(values))
        groups[columns].append({"k_" + c: v for c, v in values.items()} | {"k__key": key})
    for columns, rows in groups.items():
        statement = (
            update(table)
            .where(table.c[key_name] == bindparam("k__key"))
            .values({c: bindparam("k_" + c) for c in columns})
        )
        connection.execute(statement, rows)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
