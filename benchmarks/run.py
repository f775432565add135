"""kaskad's benchmark suite (`make bench`): HTTP intake, cascade throughput, pending timers.

Runs on PostgreSQL (a database of its own, kaskad_bench_<random>, created through
KASKAD_BENCH_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test and dropped WITH
(FORCE) at the end) and on SQLite (a file in a temporary directory), against 127.0.0.1
only; every process it starts is stopped by its pid. Each figure is printed with its ratio
to the target, and all of them go to benchmarks/results/latest.json.

1. Single events: `kaskad api --workers 1` and `--workers 2` under `wrk -t2 -c32 -d15s`
   (lua/events.lua: a unique id per request, contacts spread over 10,000 external ids);
   the better of the two is the figure. Non-2xx responses and socket errors flag it.
2. Batches: wrk posting /v1/events:batch with 1,000 unique events per request.
3. Cascade throughput: one-step sms notifications accepted through accept_notification
   for up to 40 s (20 s on SQLite), then copied in SQL up to the count; `kaskad worker`
   (1, and 2 on PostgreSQL) sends them to the sandbox, whose status reports are put an hour
   away; the rate runs from the first 0.2 s poll that sees a message in sandbox_messages
   (start-up left out) to the poll that sees them all.
4. Timers: 100,000 notifications waiting on a timer a day ahead, bulk-inserted in the
   shape accept_notification leaves them, then (3) again; the ratio is against the mean of
   the runs without timers before and after. The timer loop's queries are timed and
   EXPLAINed with nothing due.

Server and worker CPU per request/message are reported too: they vary much less than the
rates when other work shares the machine.

    .venv/bin/python benchmarks/run.py [--quick] [--only postgresql|sqlite] [--skip-http]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from bench_engine import (  # noqa: E402
    accept_many,
    clone_accepted,
    drop_snapshot,
    insert_pending_timers,
    measure_workers,
    open_app,
    reset_cascades,
    restore,
    seed_contacts,
    snapshot,
    timer_claim_probe,
    waiting_timers,
)
from bench_http import WrkResult, api_server, ensure_wrk, run_wrk  # noqa: E402
from bench_util import (  # noqa: E402
    Figure,
    Proc,
    busy_share,
    cpu_seconds,
    family,
    fmt,
    kaskad_argv,
    loadavg,
    machine,
    run_checked,
    say,
    section,
    source_commit,
    stop_all,
)

RESULTS = HERE / "results" / "latest.json"
ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"

TARGET_EVENTS_PER_S = 2000.0
TARGET_P99_MS = 50.0
TARGET_BATCH_EVENTS_PER_S = 20_000.0
TARGET_MESSAGES_PER_S = 1000.0
TARGET_TIMER_RATIO = 0.9


@dataclass(frozen=True)
class Plan:
    http_seconds: int
    warmup_seconds: int
    contacts: int
    cascade: dict[str, int]
    timers: int
    accept_threads: dict[str, int]
    accept_seconds: dict[str, float]  # then what was accepted is copied up to the count


FULL = Plan(
    http_seconds=15,
    warmup_seconds=3,
    contacts=10_000,
    cascade={"postgresql": 20_000, "sqlite": 15_000},
    timers=100_000,
    accept_threads={"postgresql": 4, "sqlite": 1},
    accept_seconds={"postgresql": 40, "sqlite": 20},
)
QUICK = Plan(
    http_seconds=5,
    warmup_seconds=2,
    contacts=10_000,
    cascade={"postgresql": 4_000, "sqlite": 4_000},
    timers=20_000,
    accept_threads={"postgresql": 4, "sqlite": 1},
    accept_seconds={"postgresql": 10, "sqlite": 5},
)


class Suite:
    def __init__(self, plan: Plan, wrk: str | None, work_dir: Path) -> None:
        self.plan = plan
        self.wrk = wrk
        self.work_dir = work_dir
        self.log_dir = work_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.figures: list[Figure] = []
        self.details: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.http_skipped = False

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        say(figure.line())
        return figure

    # -- one database ----------------------------------------------------------------------
    def run_database(self, kind: str, url: str) -> None:
        details: dict[str, Any] = self.details.setdefault(kind, {})
        env = base_env() | {"KASKAD_DATABASE_URL": url, "KASKAD_LOG_LEVEL": "WARNING"}
        with section(f"{kind}: setup"):
            run_checked(kaskad_argv("db", "upgrade"), env)
            out = run_checked(kaskad_argv("apikey", "create", "--name", "bench"), env)
            key = out.strip().splitlines()[-1]
            app = open_app(url)
            seconds = seed_contacts(app, self.plan.contacts)
            say(f"  migrated; API key created; {self.plan.contacts:,} contacts in {seconds:.1f}s")
            details["busy_share_before"] = round(busy_share(1.0), 3)
            say(f"  machine CPU busy (other processes) before: {details['busy_share_before']:.0%}")
        try:
            if self.wrk is not None:
                self.http(kind, env, key, details)
            else:
                why = "skipped" if self.http_skipped else "wrk missing"
                for key, label in (
                    ("events_single_per_s", "events/s single"),
                    ("events_batch_per_s", "events/s batch"),
                ):
                    self.add(Figure(kind, key, f"{label} ({why})", None))
            self.cascades(kind, url, env, app, details)
        finally:
            app.db.dispose()

    # -- 1 & 2: HTTP -----------------------------------------------------------------------
    def http(self, kind: str, env: dict[str, str], key: str, details: dict[str, Any]) -> None:
        assert self.wrk is not None
        plan = self.plan
        single: dict[int, WrkResult] = {}
        with section(f"{kind}: POST /v1/events, one event per request (wrk -t2 -c32)"):
            for workers in (1, 2):
                with api_server(env, workers, self.log_dir) as (base, server):
                    args = [key, f"warm{workers}", str(plan.contacts)]
                    self._wrk("events.lua", base, plan.warmup_seconds, 2, 32, args)
                    if workers == 1:
                        floor = self._wrk(
                            "plain.lua", base + "/healthz", plan.warmup_seconds, 2, 32, args, server
                        )
                        details["healthz"] = floor.as_json()
                    args[1] = f"single{workers}"
                    result = self._wrk(
                        "events.lua", base, plan.http_seconds, 2, 32, args, server=server
                    )
                single[workers] = result
                say(
                    f"  --workers {workers}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms,"
                    f" p90 {result.p90_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                    f"non-2xx {result.non2xx}, socket errors {sum(result.socket_errors.values())},"
                    f" server CPU {fmt(result.server_cpu_ms_per_request, 'ms')}/request"
                )
                if workers == 1:
                    say(
                        f"    (for scale: GET /healthz, no database, {floor.rps:,.0f} req/s, "
                        f"server CPU {fmt(floor.server_cpu_ms_per_request, 'ms')}/request)"
                    )
                if result.first_error:
                    say(f"    first error: {result.first_error}")
            best = max(single, key=lambda w: (single[w].errors == 0, single[w].rps))
            other = 3 - best
            say(f"  better: --workers {best} ({single[best].rps / single[other].rps:.2f}×)")
            details["single"] = {str(w): r.as_json() for w, r in single.items()}
            details["single_best_workers"] = best
            chosen = single[best]
            flags = _http_flags(chosen)
            self.add(
                Figure(
                    kind,
                    "events_single_per_s",
                    f"events/s single (HTTP, --workers {best})",
                    round(chosen.rps, 1),
                    "",
                    TARGET_EVENTS_PER_S,
                    flags=flags,
                    extra={
                        "server_cpu_ms_per_request": chosen.server_cpu_ms_per_request,
                        "by_workers": {w: round(r.rps, 1) for w, r in single.items()},
                    },
                )
            )
            self.add(
                Figure(
                    kind,
                    "events_single_server_cpu_ms",
                    "server CPU per single-event request",
                    chosen.server_cpu_ms_per_request,
                    "ms",
                    extra={"healthz_ms": details["healthz"]["server_cpu_ms_per_request"]},
                )
            )
            self.add(
                Figure(
                    kind,
                    "events_single_p99_ms",
                    f"p99 latency single (--workers {best})",
                    chosen.p99_ms,
                    "ms",
                    TARGET_P99_MS,
                    higher_is_better=False,
                    flags=flags,
                )
            )
        with section(f"{kind}: POST /v1/events:batch, 1,000 events per request (wrk -t2 -c4)"):
            with api_server(env, best, self.log_dir) as (base, server):
                args = [key, "warmb", str(plan.contacts), "1000"]
                self._wrk("batch.lua", base, plan.warmup_seconds, 2, 4, args, timeout=30)
                args[1] = "batch"
                batch = self._wrk(
                    "batch.lua", base, plan.http_seconds, 2, 4, args, server=server, timeout=30
                )
            say(
                f"  --workers {best}: {batch.rps:,.2f} req/s, p50 {batch.p50_ms:.0f} ms, "
                f"p99 {batch.p99_ms:.0f} ms, non-2xx {batch.non2xx}, server CPU "
                f"{fmt(batch.server_cpu_ms_per_request, 'ms')}/request"
            )
            if batch.first_error:
                say(f"    first error: {batch.first_error}")
            details["batch"] = batch.as_json() | {"workers": best}
            self.add(
                Figure(
                    kind,
                    "events_batch_per_s",
                    f"events/s batch (1,000/request, --workers {best})",
                    round(batch.rps * 1000, 1),
                    "",
                    TARGET_BATCH_EVENTS_PER_S,
                    flags=_http_flags(batch),
                    extra={"server_cpu_ms_per_request": batch.server_cpu_ms_per_request},
                )
            )

    def _wrk(
        self,
        script: str,
        base: str,
        seconds: int,
        threads: int,
        connections: int,
        args: list[str],
        server: Proc | None = None,
        timeout: int = 5,
    ) -> WrkResult:
        assert self.wrk is not None
        pids = family(server.pid) if server is not None else set()
        cpu0 = cpu_seconds(pids)
        result = run_wrk(
            self.wrk,
            script,
            base,
            seconds=seconds,
            threads=threads,
            connections=connections,
            args=args,
            timeout_s=timeout,
        )
        if server is not None and result.requests:
            used = cpu_seconds(pids) - cpu0
            result.server_cpu_ms_per_request = round(used * 1000 / result.requests, 3)
        return result

    # -- 3 & 4: the engine -----------------------------------------------------------------
    def cascades(
        self, kind: str, url: str, env: dict[str, str], app: Any, details: dict[str, Any]
    ) -> None:
        plan = self.plan
        target = plan.cascade[kind]
        threads = plan.accept_threads[kind]
        runs: dict[str, dict[str, Any]] = {}
        with section(f"{kind}: cascade throughput, {target:,} one-step sms notifications"):
            reset_cascades(app)
            empty = timer_claim_probe(app)
            accept = accept_many(
                app,
                target,
                contacts_count=min(2000, plan.contacts),
                threads=threads,
                tag=f"{kind[:2]}{secrets.token_hex(3)}",
                max_seconds=plan.accept_seconds[kind],
            )
            say(
                f"  accepted {accept['accepted']:,} through accept_notification in "
                f"{accept['seconds']:.1f}s: {accept['per_s']:,.0f}/s ({threads} thread"
                f"{'s' * (threads > 1)})"
            )
            count = accept["accepted"]
            if accept["stopped_early"]:
                count = clone_accepted(app, target)
                accept["cloned_to"] = count
                say(
                    f"  stopped at {plan.accept_seconds[kind]:.0f}s; copied them in SQL up to "
                    f"{count:,}"
                    " (rows as accept_notification wrote them, with new ids)"
                )
            details["accept"] = accept
            details["queued"] = count
            snapshot(app)
            self.add(
                Figure(
                    kind,
                    "notifications_accepted_per_s",
                    f"notifications accepted/s (service, {threads} thread{'s' * (threads > 1)})",
                    accept["per_s"],
                )
            )
            workers_runs = [1, 2] if kind == "postgresql" else [1]
            for workers in workers_runs:
                runs[f"{workers}w"] = self._send_run(kind, url, env, app, count, workers)
        with section(f"{kind}: the same with {plan.timers:,} pending timers"):
            say(
                f"  timer claim, nothing pending: median {empty['claim_ms_median']:.2f} ms "
                f"(next_due {empty['next_due_ms_median']:.2f} ms)"
            )
            restore(app)
            seconds = insert_pending_timers(app, plan.timers, contacts_count=plan.contacts)
            say(f"  inserted {plan.timers:,} pending timers in {seconds:.1f}s (+ ANALYZE)")
            loaded = timer_claim_probe(app)
            pending = waiting_timers(app)
            say(
                f"  timer claim, {pending:,} pending ({plan.timers:,} + {count:,} just accepted), "
                f"nothing due: median {loaded['claim_ms_median']:.2f} ms, "
                f"p99 {loaded['claim_ms_p99']:.2f} ms "
                f"(next_due {loaded['next_due_ms_median']:.2f} ms)"
            )
            for name, plan_lines in loaded["plans"].items():
                for line in plan_lines:
                    say(f"    {name} plan: {line}")
            with_timers = self._send_run(kind, url, env, app, count, 1, restored=True)
            # The baseline again, right after, so drift in the machine's load shows.
            say("  again without the timers, for the comparison:")
            runs["1w_again"] = self._send_run(kind, url, env, app, count, 1)
            drop_snapshot(app)
            details["cascade"] = runs
            details["timers"] = {
                "inserted": plan.timers,
                "pending_during_run": pending,
                "insert_seconds": round(seconds, 2),
                "claim_probe_empty": empty,
                "claim_probe_loaded": loaded,
                "run": with_timers,
            }
        baselines = [r.get("rate") for r in (runs["1w"], runs["1w_again"])]
        rates = [r for r in baselines if r]
        base = sum(rates) / len(rates) if rates else None
        for workers in workers_runs:
            run = runs[f"{workers}w"]
            value = run.get("rate")
            if workers == 1:
                value = None if base is None else round(base, 1)
            self.add(
                Figure(
                    kind,
                    f"messages_per_s_{workers}w",
                    f"messages/s to sandbox ({workers} worker{'s' * (workers > 1)}"
                    + (", mean of 2 runs)" if workers == 1 else ")"),
                    value,
                    "",
                    TARGET_MESSAGES_PER_S,
                    flags=[r["error"] for r in (run, runs["1w_again"]) if r["error"]]
                    if workers == 1
                    else ([run["error"]] if run["error"] else []),
                    extra={"runs": baselines if workers == 1 else [value]},
                )
            )
        loaded_rate = with_timers.get("rate")
        flags = [with_timers["error"]] if with_timers["error"] else []
        thousands = f"{plan.timers // 1000}k"
        self.add(
            Figure(
                kind,
                "messages_per_s_1w_timers",
                f"messages/s, 1 worker, {thousands} timers pending",
                loaded_rate,
                "",
                TARGET_MESSAGES_PER_S,
                flags=flags,
            )
        )
        ratio = loaded_rate / base if base and loaded_rate else None
        self.add(
            Figure(
                kind,
                "timers_throughput_ratio",
                f"throughput with/without {thousands} timers",
                None if ratio is None else round(ratio, 3),
                "×",
                TARGET_TIMER_RATIO,
                flags=flags,
            )
        )
        cpu = runs["1w"].get("worker_cpu_ms_per_message")
        self.add(Figure(kind, "worker_cpu_ms_per_message", "worker CPU per message", cpu, "ms"))
        self.add(
            Figure(
                kind,
                "timer_claim_ms",
                f"timer claim, nothing due, {pending // 1000}k pending",
                loaded["claim_ms_median"],
                "ms",
                extra={"p99_ms": loaded["claim_ms_p99"], "empty_ms": empty["claim_ms_median"]},
            )
        )
        self.add(
            Figure(
                kind,
                "timer_next_due_ms",
                f"next-timer lookup (next_due), {pending // 1000}k pending",
                loaded["next_due_ms_median"],
                "ms",
                extra={"empty_ms": empty["next_due_ms_median"]},
            )
        )
        details["busy_share_after"] = round(busy_share(1.0), 3)
        say(f"  machine CPU busy (other processes) after: {details['busy_share_after']:.0%}")

    def _send_run(
        self,
        kind: str,
        url: str,
        env: dict[str, str],
        app: Any,
        count: int,
        workers: int,
        *,
        restored: bool = False,
    ) -> dict[str, Any]:
        if not restored:
            restore(app)
        load = loadavg()
        tag = f"{kind[:2]}-{workers}w-{secrets.token_hex(2)}"
        send = measure_workers(
            url, env, expected=count, workers=workers, log_dir=self.log_dir, tag=tag
        )
        send["loadavg_before"] = load
        send["rate"] = rate = send.get("sent_per_s")
        say(
            f"  {workers} worker{'s' * (workers > 1)}: {fmt(rate)} messages/s to the sandbox "
            f"({send['sent']:,} in {send.get('measured_s', 0):.1f}s from the first seen; "
            f"start-up {send.get('first_seen_after_s', 0):.1f}s; all results recorded "
            f"{fmt(send.get('recorded_per_s'))}/s; worker CPU "
            f"{fmt(send.get('worker_cpu_ms_per_message'), 'ms')}/message; load {load:.1f})"
        )
        if send["error"]:
            say(f"  ERROR: {send['error']}")
        return send

    # -- output ----------------------------------------------------------------------------
    def summary(self) -> None:
        say("\n" + "═" * 100)
        say(f"{'database':<11}{'figure':<46}{'value':>14}  {'target':>12}  {'ratio':>6}  status")
        say("─" * 100)
        for f in self.figures:
            target = (
                ""
                if f.target is None
                else ("≥" if f.higher_is_better else "≤") + fmt(f.target, f.unit)
            )
            ratio = "" if f.ratio is None else f"{f.ratio:.2f}×"
            say(
                f"{f.database:<11}{f.label:<46}{fmt(f.value, f.unit):>14}  {target:>12}  "
                f"{ratio:>6}  {f.status}"
            )
        say("═" * 100)
        missed = [f for f in self.figures if f.status in ("MISSED", "FLAGGED")]
        say(f"{len(missed)} of {sum(f.target is not None for f in self.figures)} targets missed")
        for note in self.notes:
            say("note: " + note)


def _http_flags(result: WrkResult) -> list[str]:
    flags = []
    if result.non2xx:
        flags.append(f"{result.non2xx:,} non-2xx responses")
    socket = sum(result.socket_errors.values())
    if socket:
        flags.append(f"{socket:,} socket errors {result.socket_errors}")
    return flags


# -- databases ----------------------------------------------------------------------------
def admin_url() -> str:
    url = os.environ.get("KASKAD_BENCH_POSTGRES_URL") or ADMIN_DEFAULT
    if "@127.0.0.1" not in url and "@localhost" not in url:
        raise SystemExit(f"the benchmark only talks to 127.0.0.1, not {url!r}")
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_postgres() -> tuple[str, str] | None:
    name = f"kaskad_bench_{secrets.token_hex(4)}"
    admin = admin_url()
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        say(f"PostgreSQL not reachable at {admin} ({exc}): skipping the PostgreSQL figures")
        return None
    base, _, _ = admin.rpartition("/")
    return f"{base}/{name}", name


def drop_postgres(name: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def base_env() -> dict[str, str]:
    """The environment for kaskad processes: ours, without any KASKAD_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KASKAD_")}


def _on_signal(signum: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, small counts")
    parser.add_argument("--only", choices=("postgresql", "sqlite"))
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    # In-process settings must not pick up the caller's KASKAD_* configuration either.
    for name in [k for k in os.environ if k.startswith("KASKAD_") and "BENCH" not in k]:
        del os.environ[name]
    signal.signal(signal.SIGTERM, _on_signal)

    started = time.perf_counter()
    info = machine()
    info["kaskad_commit"] = source_commit(HERE.parent)
    say("kaskad benchmark suite" + (" (quick)" if args.quick else ""))
    say(
        f"machine: {info['nproc']} CPUs · {info['cpu_model']} · {info['ram_gib']} GiB RAM · "
        f"Linux {info['kernel']} · Python {info['python']}"
    )
    if info["kaskad_commit"]:
        say(f"kaskad at commit {info['kaskad_commit'][:12]} (plus any uncommitted changes)")
    background = busy_share(1.0)
    info["busy_share_at_start"] = round(background, 3)
    info["loadavg_at_start"] = loadavg()
    say(f"CPU busy before starting (other processes): {background:.0%}; load {loadavg():.2f}")

    wrk = None if args.skip_http else ensure_wrk()
    work_dir = Path(tempfile.mkdtemp(prefix="kaskad-bench-"))
    suite = Suite(plan, wrk, work_dir)
    suite.http_skipped = args.skip_http
    if background > 0.15:
        suite.notes.append(
            f"the machine was {background:.0%} busy before the run: figures may be noisy"
        )
    postgres: tuple[str, str] | None = None
    failed = False
    try:
        for kind in ("postgresql", "sqlite"):
            if args.only not in (None, kind):
                continue
            if kind == "postgresql":
                postgres = create_postgres()
                if postgres is None:
                    continue
                url = postgres[0]
                say(f"\nPostgreSQL database {postgres[1]}")
            else:
                url = f"sqlite:///{work_dir / 'kaskad.db'}"
                say(f"\nSQLite file {work_dir / 'kaskad.db'}")
            try:
                suite.run_database(kind, url)
            except Exception as exc:  # noqa: BLE001 - report it and go on to the next database
                failed = True
                say(f"\n{kind} benchmark failed: {type(exc).__name__}: {exc}")
                traceback.print_exc()
                suite.notes.append(f"{kind}: the run failed ({type(exc).__name__}); see above")
                stop_all()
    except KeyboardInterrupt:
        say("\ninterrupted: cleaning up")
        failed = True
    finally:
        stop_all()
        if postgres is not None:
            try:
                drop_postgres(postgres[1])
                say(f"dropped PostgreSQL database {postgres[1]}")
            except psycopg.Error as exc:
                say(f"could not drop {postgres[1]}: {exc}")
        if failed:
            say(f"logs of the kaskad processes kept in {work_dir / 'logs'}")
            with contextlib.suppress(OSError):
                (work_dir / "kaskad.db").unlink(missing_ok=True)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
        busy_end = busy_share(1.0)
        info["busy_share_at_end"] = round(busy_end, 3)
        if busy_end > 0.15:
            suite.notes.append(
                f"the machine was {busy_end:.0%} busy after the run: figures may be noisy"
            )
        elapsed = time.perf_counter() - started
        suite.summary()
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "duration_s": round(elapsed, 1),
                    "complete": not failed,
                    "plan": plan.__dict__,
                    "machine": info,
                    "figures": [f.as_json() for f in suite.figures],
                    "details": suite.details,
                    "notes": suite.notes,
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
        say(f"figures written to {RESULTS.relative_to(HERE.parent)}; took {elapsed / 60:.1f} min")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
