"""A unit of work: one transaction, its repositories, and the writes it collects."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, text

from kaskad.adapters.storage.changes import Changes
from kaskad.adapters.storage.journeys import (
    JourneyRepository,
    RunRepository,
    ScheduleRepository,
)
from kaskad.adapters.storage.policy import PolicyRepository
from kaskad.adapters.storage.repositories import (
    ApiKeyRepository,
    ContactRepository,
    EventRepository,
    NotificationRepository,
    SandboxRepository,
)
from kaskad.adapters.storage.templates import (
    EarlyReportRepository,
    InboundRepository,
    LinkRepository,
    TemplateRepository,
)
from kaskad.adapters.storage.verifications import VerificationRepository

_WRITERS: dict[str, threading.RLock] = {}
_WRITERS_GUARD = threading.Lock()


def _sqlite_writer(engine: Engine) -> threading.RLock | None:
    """One lock per SQLite database file and process, taken before ``BEGIN IMMEDIATE``.

    SQLite has one writer. Threads that lose the race for it sleep in SQLite's busy handler
    for up to 100 ms at a time; queueing on a lock instead hands the database over at once.
    """
    if engine.dialect.name != "sqlite":
        return None
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(str(engine.url.database), threading.RLock())


class UnitOfWork:
    """``with uow: ...; uow.commit()``; leaving the block without commit rolls back."""

    def __init__(
        self,
        engine: Engine,
        wake: Callable[[Collection[str]], None] | None = None,
        *,
        observe: bool = True,
    ) -> None:
        self._engine = engine
        # Which database this is, for caches of what it stores (passwords hidden).
        self.database = engine.url.render_as_string(hide_password=True)
        self._wake = wake
        self._observe = observe
        self._work: set[str] = set()
        self._writer: threading.RLock | None = None
        self._connection: Connection | None = None
        self.changes = Changes()
        self._after_commit: list[Callable[[], None]] = []

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._connection

    @property
    def locks_rows(self) -> bool:
        """PostgreSQL locks rows (SKIP LOCKED); SQLite already holds the one write lock."""
        return self._engine.dialect.name == "postgresql"

    def __enter__(self) -> Self:
        writer = _sqlite_writer(self._engine)
        if writer is not None:
            writer.acquire()
        self._writer = writer
        self._connection = self._engine.connect()
        self._connection.begin()
        self.changes = Changes()
        self._after_commit = []
        self._work = set()
        conn = self._connection
        self.contacts = ContactRepository(conn, self.changes)
        self.events = EventRepository(conn, self.changes)
        self.notifications = NotificationRepository(conn, self.changes, self.locks_rows)
        self.sandbox = SandboxRepository(conn, self.changes, self.locks_rows)
        self.api_keys = ApiKeyRepository(conn)
        self.journeys = JourneyRepository(conn)
        self.runs = RunRepository(conn, self.changes, self.locks_rows)
        self.schedules = ScheduleRepository(conn, self.locks_rows)
        self.templates = TemplateRepository(conn)
        self.links = LinkRepository(conn, self.changes)
        self.early_reports = EarlyReportRepository(conn, self.changes)
        self.inbound = InboundRepository(conn, self.changes)
        self.policy = PolicyRepository(conn, self.changes, self.locks_rows)
        self.verifications = VerificationRepository(conn, self.locks_rows)
        # What services remember for the length of this transaction (facts already read).
        self.memo: dict[str, Any] = {}
        return self

    def flush(self) -> None:
        self.changes.flush(self.connection)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (metrics, logs).

        A unit of work that does not ``observe`` (a simulation) drops them: what it does
        must not show in the process's metrics and logs.
        """
        if self._observe:
            self._after_commit.append(callback)

    def work_added(self, kind: str = "outbox") -> None:
        """This transaction queued work of a kind (``outbox``, ``runs``): wake the workers'
        loops for it when it commits, and only those."""
        self._work.add(kind)

    def commit(self) -> None:
        self.flush()
        work, self._work = sorted(self._work), set()
        if work and self._engine.dialect.name == "postgresql":
            # Delivered to LISTENing workers at commit, never before.
            self.connection.execute(
                text("SELECT pg_notify('kaskad_work', :kinds)"), {"kinds": ",".join(work)}
            )
        self.connection.commit()
        if work and self._wake is not None:
            self._wake(work)
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self.connection, None
        try:
            if connection.in_transaction():
                connection.rollback()
        finally:
            connection.close()
            if self._writer is not None:
                self._writer.release()
