"""Shared helpers for the benchmark suite: processes we start, the machine, figures."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

BIN = Path(sys.executable).parent
LOCALHOST = "127.0.0.1"


# -- processes ----------------------------------------------------------------------------
class Proc:
    """A process this suite started; stopped by its pid (and its descendants' pids)."""

    started: list[Proc] = []  # noqa: RUF012 - a registry shared on purpose

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.pid = self.popen.pid
        self._family: set[int] = set()
        Proc.started.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def remember_children(self) -> None:
        """Note the pids of the process's descendants (uvicorn's workers, say)."""
        self._family |= descendants(self.pid)

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            self.remember_children()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        for pid in sorted(self._family):
            _stop_pid(pid, timeout=5.0)
        self._family.clear()
        self._log.close()
        with contextlib.suppress(ValueError):
            Proc.started.remove(self)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stop_pid(pid: int, timeout: float) -> None:
    if not _pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.05)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def stop_all() -> None:
    for proc in list(reversed(Proc.started)):
        proc.stop(timeout=10)


def kaskad_argv(*args: str) -> list[str]:
    exe = BIN / "kaskad"
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "kaskad", *args]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: Proc, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # 127.0.0.1 only
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f}s:\n{proc.tail()}")


def run_checked(argv: list[str], env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


# -- the machine --------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count() or 0,
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def source_commit(root: Path) -> str | None:
    """The commit checked out in ``root`` (read from .git, no git command run)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


def busy_share(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over ``seconds`` (run while the suite itself is idle)."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    total = total1 - total0
    return 0.0 if total <= 0 else 1.0 - (idle1 - idle0) / total


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# -- figures ------------------------------------------------------------------------------
@dataclass
class Figure:
    database: str
    key: str
    label: str
    value: float | None
    unit: str = ""
    target: float | None = None
    higher_is_better: bool = True
    flags: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.target:
            return None
        return self.value / self.target

    @property
    def meets(self) -> bool | None:
        ratio = self.ratio
        if ratio is None:
            return None
        return ratio >= 1.0 if self.higher_is_better else ratio <= 1.0

    @property
    def status(self) -> str:
        if self.value is None:
            return "SKIPPED"
        if self.flags:
            return "FLAGGED"
        meets = self.meets
        if meets is None:
            return "info"
        return "ok" if meets else "MISSED"

    def line(self) -> str:
        text = f"  {self.label:<44} {fmt(self.value, self.unit):>14}"
        ratio = self.ratio
        if ratio is not None:
            bound = "≥" if self.higher_is_better else "≤"
            text += f"  ({ratio:.2f}× target {bound}{fmt(self.target, self.unit)})"
        status = self.status
        if status not in ("info",):
            text += f"  {status}"
        if self.flags:
            text += "  [" + "; ".join(self.flags) + "]"
        return text

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        data["status"] = self.status
        return data


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit in ("ms", "s"):
        number = f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    elif unit == "×":
        number = f"{value:.2f}"
    elif 0 < abs(value) < 1:
        number = f"{value:.2g}"  # e.g. bytes per run: 0.012, not 0.0
    elif abs(value) >= 100 or float(value).is_integer():
        number = f"{value:,.0f}"
    else:
        number = f"{value:,.1f}"
    return f"{number} {unit}".rstrip() if unit and unit != "×" else number + unit


@contextlib.contextmanager
def section(title: str) -> Iterator[None]:
    print(f"\n── {title} " + "─" * max(0, 74 - len(title)), flush=True)
    start = time.perf_counter()
    yield
    print(f"   ({time.perf_counter() - start:.0f}s)", flush=True)


def say(text: str) -> None:
    print(text, flush=True)


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: set[int] | list[int]) -> float:
    """User + system CPU seconds used so far by these processes (those still running)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def family(pid: int) -> set[int]:
    return {pid} | descendants(pid)
