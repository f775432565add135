"""Waking workers: PostgreSQL ``LISTEN/NOTIFY`` when there is one, polling always.

A notification is a hint, never the only path: a worker that misses one still finds the
work on its next poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection

import psycopg

CHANNEL = "kaskad_work"
log = logging.getLogger(__name__)


class PostgresListener:
    """Runs ``LISTEN`` on its own connection in a thread and calls ``on_notify``."""

    def __init__(self, dsn: str, on_notify: Callable[[Collection[str] | None], None]) -> None:
        self._dsn = dsn
        self._on_notify = on_notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kaskad-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=1.0, stop_after=1):
                            # The payload names the kinds of work queued ("outbox,runs").
                            self._on_notify(notify.payload.split(",") if notify.payload else None)
            except psycopg.Error as exc:
                log.warning("listen connection lost, polling meanwhile: %s", exc)
                self._stop.wait(2.0)
