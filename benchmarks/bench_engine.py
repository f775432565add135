"""Engine figures: accepting notifications, the worker's send throughput, pending timers."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from bench_util import Proc, cpu_seconds, kaskad_argv
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App, build
from kaskad.domain.cascades import Step
from kaskad.domain.ids import new_id
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.vocabulary import Category, Channel
from kaskad.services import cascading, contacts, notifications, timers
from kaskad.settings import Settings

# Sandbox reports far in the future: the worker does nothing but send while we measure.
QUIET_SANDBOX = {
    "KASKAD_SANDBOX__SENT_AFTER": "3600",
    "KASKAD_SANDBOX__DELIVERED_AFTER": "3601",
    "KASKAD_SANDBOX__SEEN_AFTER": "3602",
    "KASKAD_SANDBOX__CLICKED_AFTER": "3603",
}
# Tables the cascade runs fill; emptied between runs so each starts from the same state.
CASCADE_TABLES = (
    "verifications",  # one-time codes point at their notifications
    "sandbox_reports",
    "sandbox_messages",
    "decisions",
    "outbox",
    "message_statuses",
    "messages",
    "notifications",
)
SMS_TEXT = "Your code is 123456. It expires in 10 minutes."


def open_app(url: str) -> App:
    return build(Settings(database_url=url, log_level="WARNING"))


# -- contacts -----------------------------------------------------------------------------
def seed_contacts(app: App, count: int, batch: int = 1000) -> float:
    """Contacts bench-1 … bench-<count> with phones; returns seconds taken."""
    start = time.perf_counter()
    for first in range(1, count + 1, batch):
        patches = [
            contacts.ContactPatch(external_id=f"bench-{i}", phone=f"+38050{i:07d}")
            for i in range(first, min(first + batch, count + 1))
        ]
        contacts.upsert_contacts(
            app.uow(), patches=patches, default_region=None, now=app.clock.now()
        )
    return time.perf_counter() - start


def _empty_cascade_tables(app: App, conn: Connection) -> None:
    if app.db.dialect.name == "postgresql":
        conn.execute(text(f"TRUNCATE {', '.join(CASCADE_TABLES)}"))
    else:
        for table in CASCADE_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


def reset_cascades(app: App) -> None:
    with app.db.begin() as conn:
        _empty_cascade_tables(app, conn)
    # No ANALYZE here: statistics saying "empty" would make PostgreSQL plan the inserts'
    # foreign-key checks as sequential scans, and everything after grow quadratically.


def analyze(app: App) -> None:
    with app.db.begin() as conn:
        conn.execute(text("ANALYZE"))


# -- accepting ----------------------------------------------------------------------------
def accept_many(
    app: App, count: int, *, contacts_count: int, threads: int, tag: str, max_seconds: float
) -> dict[str, Any]:
    """Accept up to ``count`` one-step sms notifications through ``accept_notification`` from
    ``threads`` threads, stopping early after ``max_seconds``."""
    steps = [Step(Channel.SMS, {"text": SMS_TEXT}, timeout=timedelta(hours=24))]
    deadline = time.perf_counter() + max_seconds

    def work(offset: int) -> int:
        done = 0
        for i in range(offset, count, threads):
            if time.perf_counter() > deadline:
                break
            request = NotificationRequest(
                contact=f"bench-{i % contacts_count + 1}",
                category=Category.TRANSACTIONAL,
                priority=80,
                steps=steps,
                idempotency_key=f"{tag}-{i}",
            )
            notifications.accept_notification(
                app.uow(), request=request, routing=app.routing, now=app.clock.now()
            )
            done += 1
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        accepted = sum(pool.map(work, range(threads)))
    seconds = time.perf_counter() - start
    return {
        "accepted": accepted,
        "seconds": round(seconds, 3),
        "per_s": round(accepted / seconds, 1),
        "threads": threads,
        "stopped_early": accepted < count,
    }


# Columns holding ids (or keys unique with them) that a clone must make its own, and which
# rows to copy: those of the originals picked by {picked} (a list of notification ids).
_CLONED = {
    "notifications": (("id", "idempotency_key"), "id IN ({picked})"),
    "messages": (("id", "notification_id"), "notification_id IN ({picked})"),
    "message_statuses": (("message_id",), "message_id IN ({messages})"),
    "outbox": (("message_id",), "message_id IN ({messages})"),
    "decisions": (("notification_id", "message_id"), "notification_id IN ({picked})"),
}
_SERIAL_ID = ("message_statuses", "decisions")


def clone_accepted(app: App, target: int) -> int:
    """Copy the accepted notifications (each with its message, statuses, outbox row and
    decision) until there are ``target``: rows exactly as accept_notification wrote them,
    with ids suffixed ``.c<n>``, inserted in bulk. Returns the number of notifications."""
    analyze(app)  # plans for the foreign-key checks below that know the tables' sizes
    with app.db.begin() as conn:
        original = conn.execute(text("SELECT count(*) FROM notifications")).scalar_one()
        total, copy = original, 0
        while total < target:
            copy += 1
            take = min(original, target - total)
            picked = (
                f"SELECT id FROM notifications WHERE id NOT LIKE '%.c%' ORDER BY id LIMIT {take}"
            )
            messages = f"SELECT id FROM messages WHERE notification_id IN ({picked})"
            for name, (keys, where) in _CLONED.items():
                columns = [
                    c.name
                    for c in schema.metadata.tables[name].columns
                    if not (c.name == "id" and name in _SERIAL_ID)  # the database numbers these
                ]
                select_list = ", ".join(f"{c} || '.c{copy}'" if c in keys else c for c in columns)
                conn.execute(
                    text(
                        f"INSERT INTO {name} ({', '.join(columns)}) SELECT {select_list} "
                        f"FROM {name} WHERE " + where.format(picked=picked, messages=messages)
                    )
                )
            total += take
        counted = conn.execute(text("SELECT count(*) FROM notifications")).scalar_one()
    analyze(app)
    return int(counted)


def snapshot(app: App) -> None:
    """Keep a copy of the accepted notifications so later runs start from the same rows."""
    with app.db.begin() as conn:
        for table in CASCADE_TABLES:
            conn.execute(text(f"DROP TABLE IF EXISTS bench_snap_{table}"))
            conn.execute(text(f"CREATE TABLE bench_snap_{table} AS SELECT * FROM {table}"))


def restore(app: App) -> None:
    """Back to the snapshot: the same queued messages, an empty sandbox."""
    with app.db.begin() as conn:
        _empty_cascade_tables(app, conn)
        for table in reversed(CASCADE_TABLES):
            conn.execute(text(f"INSERT INTO {table} SELECT * FROM bench_snap_{table}"))
    analyze(app)


def drop_snapshot(app: App) -> None:
    with app.db.begin() as conn:
        for table in CASCADE_TABLES:
            conn.execute(text(f"DROP TABLE IF EXISTS bench_snap_{table}"))


# -- counting what the sandbox received ---------------------------------------------------
class Counter:
    """Counts sandbox_messages and outbox rows on a connection of its own (plain driver, so
    SQLite polling never takes the write lock)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self._pg: psycopg.Connection[Any] | None = None
        self._sqlite: sqlite3.Connection | None = None
        if parsed.get_backend_name() == "postgresql":
            dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self._pg = psycopg.connect(dsn, autocommit=True)
        else:
            self._sqlite = sqlite3.connect(str(parsed.database), isolation_level=None)
            self._sqlite.execute("PRAGMA busy_timeout=30000")

    def counts(self) -> tuple[int, int]:
        query = "SELECT (SELECT count(*) FROM sandbox_messages), (SELECT count(*) FROM outbox)"
        if self._pg is not None:
            row = self._pg.execute(query).fetchone()
        else:
            assert self._sqlite is not None
            row = self._sqlite.execute(query).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()


def measure_workers(
    url: str,
    env: dict[str, str],
    *,
    expected: int,
    workers: int,
    log_dir: Path,
    tag: str,
) -> dict[str, Any]:
    """Start ``workers`` `kaskad worker` processes and time until the sandbox has received
    ``expected`` messages (and until the outbox is empty: every send result recorded).

    The clock starts at the first poll (every 0.2 s) that sees a message in the sandbox, so
    process start-up is left out; the messages already there then are left out too."""
    counter = Counter(url)
    sent0, queued0 = counter.counts()
    if sent0 != 0 or queued0 != expected:
        raise RuntimeError(f"expected 0 sent and {expected} queued, found {sent0}/{queued0}")
    deadline_s = max(90.0, expected / 150)
    procs: list[Proc] = []
    first: tuple[float, int] | None = None
    t_sent = t_recorded = None
    sent = queued = 0
    cpu0 = cpu1 = 0.0
    error = None
    spawn = time.perf_counter()
    try:
        for i in range(workers):
            argv = kaskad_argv("worker")
            procs.append(Proc(f"worker-{tag}-{i}", argv, env | QUIET_SANDBOX, log_dir))
        while True:
            sent, queued = counter.counts()
            now = time.perf_counter()
            if first is None and sent > 0:
                first = (now, sent)
                cpu0 = cpu_seconds([p.pid for p in procs])
            if t_sent is None and sent >= expected:
                t_sent = now
                cpu1 = cpu_seconds([p.pid for p in procs])
            if t_sent is not None and queued == 0:
                t_recorded = now
                break
            if now - spawn > deadline_s:
                error = f"timed out after {deadline_s:.0f}s at {sent}/{expected} sent"
                break
            dead = [p for p in procs if not p.alive()]
            if dead:
                error = f"{dead[0].name} exited:\n{dead[0].tail()}"
                break
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.stop()
        counter.close()
    result: dict[str, Any] = {
        "workers": workers,
        "expected": expected,
        "sent": sent,
        "error": error,
        "wall_s_incl_startup": round((t_sent or time.perf_counter()) - spawn, 3),
    }
    if first is not None:
        t0, c0 = first
        end = t_sent if t_sent is not None else time.perf_counter()
        span = end - t0
        done = (expected if t_sent is not None else sent) - c0
        result |= {
            "first_seen_after_s": round(t0 - spawn, 3),
            "first_seen_count": c0,
            "measured_s": round(span, 3),
            "sent_per_s": round(done / span, 1) if span > 0.4 else None,
            "worker_cpu_ms_per_message": round((cpu1 - cpu0) * 1000 / done, 3)
            if t_sent is not None and done > 0
            else None,
        }
        if t_recorded is not None:
            result["recorded_per_s"] = round((expected - c0) / (t_recorded - t0), 1)
    return result


# -- timers -------------------------------------------------------------------------------
def _timer_rows(
    app: App, count: int, contacts_count: int
) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Rows for ``count`` notifications in the shape an accepted one-step sms cascade has once
    its message went out: active with its timer a day ahead (spread over an hour, as real
    traffic would be), its message submitted, its queued and submitted statuses and its send
    decision. Timestamps and JSON are already text, as the database stores them."""
    postgres = app.db.dialect.name == "postgresql"
    now = app.clock.now()

    def stamp(value: datetime) -> str:
        # timestamptz on PostgreSQL; naive UTC text with microseconds on SQLite (UTCDateTime).
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") + ("+00" if postgres else "")

    steps = json.dumps(
        cascading.steps_to_json([Step(Channel.SMS, {"text": SMS_TEXT}, provider="sandbox")])
    )
    content = json.dumps({"text": SMS_TEXT})
    with app.uow() as uow:
        found = uow.contacts.by_external_ids([f"bench-{i + 1}" for i in range(contacts_count)])
    people = [(found[e]["id"], found[e]["phone"]) for e in sorted(found)]
    columns = {
        "notifications": "id contact_id idempotency_key category priority steps status "
        "current_step due_at created_at updated_at",
        "messages": "id notification_id contact_id step channel provider address content "
        "status superseded provider_message_id created_at updated_at",
        "message_statuses": "message_id contact_id status at applied",
        "decisions": "contact_id notification_id step kind reason at",
    }
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in columns}
    at = stamp(now)
    # Ids as new_id makes them (prefix, 10 time characters, 16 more), cheaper to make in bulk.
    clock = new_id("x")[2:12]
    reason = "send sms, waiting up to 24h for delivered"
    for i in range(count):
        contact_id, phone = people[i % len(people)]
        nid, mid, pid = (f"{p}_{clock}{i:016x}" for p in ("ntf", "msg", "sbx"))
        due = stamp(now + timedelta(days=1, milliseconds=i * 36))
        rows["notifications"].append(
            (nid, contact_id, f"timer-{i}", "transactional", 80, steps, "active", 0, due, at, at)
        )
        rows["messages"].append(
            (
                mid,
                nid,
                contact_id,
                0,
                "sms",
                "sandbox",
                phone,
                content,
                "submitted",
                False,
                pid,
                at,
                at,
            )
        )
        rows["message_statuses"].append((mid, contact_id, "queued", at, True))
        rows["message_statuses"].append((mid, contact_id, "submitted", at, True))
        rows["decisions"].append((contact_id, nid, 0, "send", reason, at))
    return {name: (columns[name].split(), rows[name]) for name in columns}


def _copy_text(row: tuple[Any, ...]) -> str:
    """One row in COPY's text format (the values here hold no tabs, newlines or backslashes)."""
    fields = (("t" if v else "f") if isinstance(v, bool) else str(v) for v in row)
    return "\t".join(fields) + "\n"


def insert_pending_timers(app: App, count: int, *, contacts_count: int) -> float:
    """Bulk-insert ``count`` notifications waiting on timers (see ``_timer_rows``) straight
    through the driver, without per-row foreign key checks: COPY on PostgreSQL, executemany
    in one transaction on SQLite.
    Returns seconds taken (ANALYZE included)."""
    start = time.perf_counter()
    tables = _timer_rows(app, count, contacts_count)
    raw = app.db.raw_connection()
    try:
        driver: Any = raw.driver_connection
        # The rows are consistent by construction: skip the per-row foreign key checks.
        if app.db.dialect.name == "postgresql":
            driver.execute("SET LOCAL session_replication_role = replica")
            for name, (columns, rows) in tables.items():
                with (
                    driver.cursor() as cursor,
                    cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy,
                ):
                    for first in range(0, len(rows), 10_000):
                        copy.write("".join(map(_copy_text, rows[first : first + 10_000])))
            driver.commit()
        else:
            driver.execute("PRAGMA foreign_keys=OFF")
            try:
                driver.execute("BEGIN")
                for name, (columns, rows) in tables.items():
                    marks = ", ".join("?" * len(columns))
                    driver.executemany(
                        f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", rows
                    )
                driver.execute("COMMIT")
            finally:
                driver.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()
    analyze(app)
    return time.perf_counter() - start


@contextmanager
def _captured(app: App) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def listener(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        statements.append((statement, params))

    event.listen(app.db, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(app.db, "before_cursor_execute", listener)


def explain(app: App, statement: str, params: Any) -> list[str]:
    postgres = app.db.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
    with app.db.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, params).fetchall()
        conn.rollback()
    return [str(r[0]) if postgres else str(r[-1]) for r in rows]


def _next_due(app: App) -> None:
    with app.uow() as uow:
        uow.notifications.next_due()


def claim_probe(
    app: App,
    *,
    claim: Callable[[], int],
    next_due: Callable[[], object],
    table: str,
    rounds: int = 100,
    budget_s: float = 4.0,
) -> dict[str, Any]:
    """Time a loop's two steps with nothing due, as the worker runs them (each its own
    transaction): ``claim`` and ``next_due`` (when to wake next); and show the plan of each
    one's query on ``table``."""
    claim_ms: list[float] = []
    next_ms: list[float] = []
    until = time.perf_counter() + budget_s
    while len(claim_ms) < rounds and (len(claim_ms) < 5 or time.perf_counter() < until):
        start = time.perf_counter()
        claimed = claim()
        claim_ms.append((time.perf_counter() - start) * 1000)
        if claimed:
            raise RuntimeError(f"{claimed} rows of {table} were due; the probe expects none")
        start = time.perf_counter()
        next_due()
        next_ms.append((time.perf_counter() - start) * 1000)
    plans: dict[str, list[str]] = {}
    sql: dict[str, str] = {}
    for name, step in (("claim", claim), ("next_due", next_due)):
        with _captured(app) as statements:
            step()
        found = next(((s, p) for s, p in statements if f"FROM {table}" in s), None)
        if found is not None:
            sql[name] = " ".join(found[0].split())
            plans[name] = explain(app, *found)
    ordered = sorted(claim_ms)
    return {
        "claim_ms_median": round(statistics.median(claim_ms), 3),
        "claim_ms_p99": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 3),
        "next_due_ms_median": round(statistics.median(next_ms), 3),
        "rounds": len(claim_ms),
        "sql": sql,
        "plans": plans,
    }


def timer_claim_probe(app: App, rounds: int = 100, budget_s: float = 4.0) -> dict[str, Any]:
    """The timer loop's claim (``advance_due``) and ``next_due``, with nothing due."""
    return claim_probe(
        app,
        claim=lambda: timers.advance_due(app.uow(), now=app.clock.now(), limit=500),
        next_due=lambda: _next_due(app),
        table="notifications",
        rounds=rounds,
        budget_s=budget_s,
    )


def waiting_timers(app: App) -> int:
    with app.uow() as uow:
        return uow.notifications.waiting_count()
