"""Runs a fake HTTP provider (an ASGI app under ``tests/peers/fakes``) as its own process.

The test binds the listening socket on 127.0.0.1 and hands its file descriptor to the server
process, so the port is known before the process starts and no two tests race for one.
uvicorn serves HTTP/1.1; hypercorn serves HTTP/2 over TLS (APNs). Each fake answers
``GET /_fake/health`` and is steered through ``/_fake/...`` control routes of its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakePeer:
    url: str
    pid: int
    verify: bool | str = True

    def control(self, path: str, **body: Any) -> Any:
        """POST to the fake's control route ``/_fake/{path}``; its JSON answer."""
        with httpx.Client(verify=self.verify, timeout=10) as client:
            r = client.post(f"{self.url}/_fake/{path}", json=body)
        r.raise_for_status()
        return r.json()

    def state(self) -> Any:
        with httpx.Client(verify=self.verify, timeout=10) as client:
            r = client.get(f"{self.url}/_fake/state")
        r.raise_for_status()
        return r.json()


@contextmanager
def run_fake(
    app: str,
    *,
    server: Literal["uvicorn", "hypercorn"] = "uvicorn",
    tls: tuple[Path, Path] | None = None,
    env: dict[str, str] | None = None,
    startup_seconds: float = 20.0,
) -> Iterator[FakePeer]:
    """Start ``app`` ("module:attribute") on a fresh 127.0.0.1 port; stop it afterwards.

    ``tls`` is (certificate, key) files; the peer's ``verify`` is then the certificate, which
    the client trusts as its CA (the tests' certificates are self-signed).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    port = sock.getsockname()[1]
    fd = sock.fileno()
    if server == "uvicorn":
        cmd = [sys.executable, "-m", "tests.peers.serve_fake", app, str(fd)]
        if tls:
            cmd += [str(tls[0]), str(tls[1])]
    else:
        cmd = [sys.executable, "-m", "hypercorn", app, "--bind", f"fd://{fd}"]
        cmd += ["--log-level", "warning"]
        if tls:
            cmd += ["--certfile", str(tls[0]), "--keyfile", str(tls[1])]
    process_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(cmd, pass_fds=[fd], env=process_env, cwd=ROOT)
    sock.close()
    scheme = "https" if tls else "http"
    peer = FakePeer(f"{scheme}://127.0.0.1:{port}", proc.pid, str(tls[0]) if tls else True)
    try:
        _wait_healthy(peer, proc, startup_seconds)
        yield peer
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_healthy(peer: FakePeer, proc: subprocess.Popen[bytes], limit: float) -> None:
    """Poll the health route until the server answers (the socket already accepts, so this
    only waits for the process to import its app)."""
    deadline = time.monotonic() + limit
    http2 = peer.url.startswith("https")
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"fake provider exited with {proc.returncode}")
        try:
            with httpx.Client(verify=peer.verify, timeout=2, http2=http2) as client:
                if client.get(f"{peer.url}/_fake/health").status_code == 200:
                    return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("fake provider did not start in time")
        time.sleep(0.05)
