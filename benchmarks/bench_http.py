"""HTTP figures: `kaskad api` under wrk, single events and batches of 1,000."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_util import LOCALHOST, Proc, free_port, kaskad_argv, say, wait_http

LUA = Path(__file__).parent / "lua"


def ensure_wrk() -> str | None:
    """wrk's path, installing it with apt-get when missing; None when it cannot be had."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        say("wrk is not installed and apt-get is not available: skipping the HTTP figures")
        return None
    say("wrk not found: trying `apt-get install -y wrk` …")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    install = [apt, "install", "-y", "-q", "wrk"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:  # a stale package list: update it once and try again
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=300)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300)
    found = shutil.which("wrk")
    if found is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        say("could not install wrk (" + " / ".join(tail) + "): skipping the HTTP figures")
    return found


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: dict[str, int]
    first_error: str | None = None
    raw: str = field(default="", repr=False)
    server_cpu_ms_per_request: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + sum(self.socket_errors.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.rps, 1),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "non2xx": self.non2xx,
            "socket_errors": self.socket_errors,
            "first_error": self.first_error,
            "server_cpu_ms_per_request": self.server_cpu_ms_per_request,
        }


_RESULT = re.compile(r"^BENCH_RESULT (.*)$", re.M)
_FIRST_ERROR = re.compile(r"^BENCH_FIRST_ERROR (.*)$", re.M)
_TEXT_P99 = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _to_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    wrk: str,
    script: str,
    base_url: str,
    *,
    seconds: int,
    threads: int,
    connections: int,
    args: list[str],
    timeout_s: int = 5,
) -> WrkResult:
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout_s}s",
        "--latency",
        "-s",
        str(LUA / script),
        base_url,
        "--",
        *args,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    match = _RESULT.search(out)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{out}\n{done.stderr}")
    values = {k: int(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    p99_ms = values["p99_us"] / 1000
    text_p99 = _TEXT_P99.search(out)  # wrk's own latency distribution, as a cross-check
    if text_p99 is not None:
        p99_ms = _to_ms(*text_p99.groups())
    error = _FIRST_ERROR.search(out)
    return WrkResult(
        requests=values["requests"],
        seconds=values["duration_us"] / 1e6,
        p50_ms=values["p50_us"] / 1000,
        p90_ms=values["p90_us"] / 1000,
        p99_ms=round(p99_ms, 3),
        max_ms=values["max_us"] / 1000,
        non2xx=values["non2xx"],
        socket_errors={k: values[k] for k in ("connect", "read", "write", "timeout")},
        first_error=error.group(1) if error else None,
        raw=out,
    )


@contextlib.contextmanager
def api_server(env: dict[str, str], workers: int, log_dir: Path) -> Iterator[tuple[str, Proc]]:
    port = free_port()
    argv = kaskad_argv("api", "--host", LOCALHOST, "--port", str(port), "--workers", str(workers))
    proc = Proc(f"api-{workers}w-{port}", argv, env | {"KASKAD_LOG_LEVEL": "WARNING"}, log_dir)
    try:
        base = f"http://{LOCALHOST}:{port}"
        wait_http(base + "/healthz", proc)
        if workers > 1:
            time.sleep(1.5)  # the other workers finish importing
        proc.remember_children()
        yield base, proc
    finally:
        proc.stop()
