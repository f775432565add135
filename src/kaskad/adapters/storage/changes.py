"""Writes collected during a use case and flushed at commit with one statement per table.

Engine batches touch hundreds of rows; one ``executemany`` per table and column set is what
lets two cores move thousands of messages a second. Updates to the same row merge, so a
message that goes ``sent`` then ``delivered`` in one batch is written once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, TextClause, bindparam, delete, insert, text, update

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
    schema.message_links,
    schema.clicks,
    schema.early_reports,
    schema.inbound_messages,
    schema.send_log,
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
            if rows and connection.dialect.name == "postgresql" and len(rows) > 1:
                _insert_from_json(connection, table, rows)
            elif rows:
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


def _insert_from_json(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: all rows as one JSON parameter, spread into the table's row type.

    An ``executemany`` costs a round of Python work per row in the driver; one JSON text is
    built in C and parsed by the server. Columns no row names keep their server default.
    """
    columns = _columns(table, rows)
    names = ", ".join(f'"{c}"' for c in columns)
    statement = _statement(
        ("insert", table.name, columns),
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} '  # noqa: S608 - metadata names
        f'FROM json_populate_recordset(NULL::"{table.name}", CAST(:rows AS json))',
    )
    connection.execute(statement, {"rows": _json(rows)})


def _update_from_json(
    connection: Connection, table: Table, key_name: str, rows: list[dict[str, Any]]
) -> None:
    """PostgreSQL: one UPDATE … FROM the rows given as one JSON parameter."""
    columns = [c for c in _columns(table, rows) if c != key_name]
    assignments = ", ".join(f'"{c}" = r."{c}"' for c in columns)
    statement = _statement(
        ("update", table.name, tuple(columns)),
        f'UPDATE "{table.name}" AS t SET {assignments} '  # noqa: S608 - metadata names
        f'FROM json_populate_recordset(NULL::"{table.name}", CAST(:rows AS json)) AS r '
        f'WHERE t."{key_name}" = r."{key_name}"',
    )
    connection.execute(statement, {"rows": _json(rows)})


_STATEMENTS: dict[tuple[Any, ...], TextClause] = {}


def _statement(key: tuple[Any, ...], sql: str) -> TextClause:
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS.setdefault(key, text(sql))
    return statement


def _columns(table: Table, rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The columns the rows name, checked against the table: only its own names reach SQL."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    unknown = [name for name in seen if name not in table.c]
    if unknown:
        raise KeyError(f"{table.name} has no column {unknown[0]!r}")
    return tuple(seen)


def _json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_json_value, separators=(",", ":"), allow_nan=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC datetimes")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


def _flush_updates(connection: Connection, table: Table, by_key: dict[str, dict[str, Any]]) -> None:
    key_name = KEYS[table.name]
    if connection.dialect.name == "postgresql" and len(by_key) > 1:
        groups_pg: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for key, values in by_key.items():
            groups_pg[tuple(sorted(values))].append(values | {key_name: key})
        for rows in groups_pg.values():
            _update_from_json(connection, table, key_name, rows)
        return
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
