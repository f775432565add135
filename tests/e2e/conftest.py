"""End-to-end fixtures: the real ``kaskad`` executable as a subprocess, on SQLite and PostgreSQL.

Each test module gets a fresh database per backend (a SQLite file, or a PostgreSQL database
``kaskad_e2e_<random>`` created beside KASKAD_TEST_POSTGRES_URL and dropped WITH (FORCE)),
migrated with ``kaskad db upgrade`` and given an API key by ``kaskad apikey create``.
Servers run ``kaskad serve`` on a free port; their stdout and stderr go to files in the
test's temporary directory. Every process started here is stopped here, by its own pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import private_postgres_database

KASKAD = Path(sys.executable).parent / "kaskad"
READY_TIMEOUT = 30.0
T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    *,
    interval: float = 0.05,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{describe()}" if describe is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KASKAD_")}
    env.update(
        {
            "KASKAD_DATABASE_URL": database_url,
            "KASKAD_POLL_INTERVAL": "0.1",
            "KASKAD_SANDBOX__SENT_AFTER": "0.1",
            "KASKAD_SANDBOX__DELIVERED_AFTER": "0.3",
            "KASKAD_LOG_JSON": "true",
            "KASKAD_LOG_LEVEL": "INFO",
            # A sender killed mid-send holds its outbox lease; keep it short so a restarted
            # server resends within the test's time budget (default 30s).
            "KASKAD_SEND_LEASE_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(KASKAD), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, (
        f"kaskad {' '.join(args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


class Server:
    """One ``kaskad serve`` subprocess (or ``kaskad api``: the HTTP API without the engine)."""

    def __init__(self, env: dict[str, str], logs: Path, name: str, command: str = "serve") -> None:
        self.command = command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = logs / f"{name}.stdout.log"
        self.stderr_path = logs / f"{name}.stderr.log"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(KASKAD), command, "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        self.pid = self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stderr_tail(self, lines: int = 40) -> str:
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return f"--- {self.stderr_path} (last {lines} lines) ---\n" + "\n".join(
            text.splitlines()[-lines:]
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        def ready() -> bool:
            if not self.running():
                code = self.process.returncode
                raise AssertionError(
                    f"kaskad {self.command} exited with {code}\n{self.stderr_tail()}"
                )
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=1.0)
            except httpx.TransportError:
                return False
            return response.status_code == 200 and response.json() == {"status": "ready"}

        wait_until(ready, timeout, interval=0.05, what="/readyz", describe=self.stderr_tail)

    def stop(self) -> None:
        """Terminate (graceful shutdown), then kill this pid if it does not exit in time."""
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self.running(), self.stderr_tail()
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL

    def log_entries(self) -> list[dict[str, Any]]:
        """stderr as JSON log entries; a line that is not JSON becomes a ``raw`` entry."""
        entries: list[dict[str, Any]] = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except ValueError:
                entries.append({"level": "raw", "msg": line})
        return entries

    def problems(self) -> list[dict[str, Any]]:
        """Log entries at error level or above, and anything not logged as JSON."""
        return [
            e
            for e in self.log_entries()
            if e.get("level") in {"error", "critical", "raw"} or "exc" in e
        ]


@dataclass
class Deployment:
    """A migrated database with an API key, and the servers started on it."""

    database_url: str
    backend: str
    api_key: str
    env: dict[str, str]
    logs: Path
    servers: list[Server] = field(default_factory=list)

    def start_server(self, name: str | None = None, command: str = "serve") -> Server:
        name = name or f"{command}-{len(self.servers) + 1}"
        for attempt in range(3):
            # free_port() can race with another process taking the port: try another one.
            log_name = f"{name}-retry{attempt}" if attempt else name
            server = Server(self.env, self.logs, log_name, command)
            self.servers.append(server)
            try:
                server.wait_ready()
            except BaseException:
                server.stop()
                lost_port = "address already in use" in server.stderr_tail().lower()
                if lost_port and attempt < 2:
                    continue
                raise
            return server
        raise AssertionError("unreachable")

    def client(self, server: Server) -> httpx.Client:
        return httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=15.0,
        )

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def e2e_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database for this test module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e-sqlite') / 'kaskad.db'}"
        return
    with private_postgres_database("kaskad_e2e") as url:
        yield url


@pytest.fixture(scope="module")
def deployment(
    e2e_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    backend = "sqlite" if e2e_database_url.startswith("sqlite") else "postgres"
    logs = tmp_path_factory.mktemp(f"e2e-logs-{backend}")
    env = _base_env(e2e_database_url)
    run_cli(env, "db", "upgrade")
    created = run_cli(env, "apikey", "create", "--name", "e2e")
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ksk_"), created.stdout
    deployment = Deployment(e2e_database_url, backend, key, env, logs)
    try:
        yield deployment
    finally:
        deployment.stop_all()
