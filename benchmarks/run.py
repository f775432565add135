"""kaskad's benchmark suite (`make bench`): HTTP intake, cascades, pending timers, journeys.

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

Journeys (PostgreSQL only; SQLite is skipped for them, and the output says why). Runs are
entered through record_events first; the bulk loads copy those rows in SQL (INSERT …
SELECT generate_series), ids, contacts, times and trigger ids changed:
5. Runs waiting on a timer: 1,000,000 (100,000 with --quick) runs of a journey `wait: 30d`
   then an SMS, with their `enter` and `wait` history lines. Database bytes per run
   ((pg_total_relation_size of runs + run_history) / runs after VACUUM ANALYZE, target
   ≤1 KB, per relation printed); worker memory per run (VmRSS of three fresh `kaskad worker`
   processes with the runs against three with 10 runs, target ≤0.05 bytes a run; RssAnon
   and a worker that lived through the load are printed beside it); the runs claim and
   next_due timed and EXPLAINed with nothing due (flagged unless both use ix_runs_due).
6. Runs falling due at once: 100,000 (10,000) runs whose wait has ended, next step an
   `update` then `wait: 30d`, drained by 1 and by 2 workers (each for at most 45 s, 12 s):
   run steps/s = resume lines in run_history per second between the first and the last
   batch's claim (target ≥2,000). Lateness: runs falling due over 20 s (6 s) at half the
   1-worker rate, at most 1,000/s; lateness = resume line time − due time, target p99
   ≤1 s. The same drain with an SMS send as the next step is reported too.
7. Event → first send: a journey started by an event whose first step is an SMS; wrk posts
   /v1/events at a fixed 500/s (lua/paced_events.lua: delay() on a schedule per thread)
   to `kaskad api --workers 1` beside one `kaskad worker` for 15 s (5 s); per event,
   sandbox_messages.accepted_at of its run's first message − events.received_at (target
   p99 ≤100 ms). Flagged when the rate received falls below 90% of the rate offered.

Channels (last, PostgreSQL: they empty the cascade tables):
8. SMS over SMPP from the outbox: 100,000 (20,000) marketing SMS drained by `kaskad worker`
   over one bind, window 10, to the SMSC peer process (tests/peers/smsc.py), a receipt for
   each on the same bind; submit_sm/s between 10% and 90% of the drain (target ≥1,000).
   Meanwhile OTPs are posted to `kaskad api` every 50 ms; latency = the SMSC reading its
   submit_sm − the API's answer (targets p50 ≤10 ms, p99 ≤50 ms). Then the SMPP provider
   alone (bench_smpp.py) and SmtpProvider to a local SMTP server process (bench_smtp.py,
   target ≥300 emails/s).

HTTP providers (PostgreSQL):
10. Webhook intake: messages made ready as handed to a provider, each with a provider id;
   wrk (lua/webhooks.lua) posts one signed delivery callback per message (made ahead, HMAC
   over the body) to `POST /v1/webhooks/sandbox` of `kaskad api --workers 2` for 15 s (5 s);
   each is checked, matched, applied (group commit) and answered. Targets ≥2,000
   callbacks/s and p99 ≤200 ms; flagged if fewer messages ended delivered than callbacks
   were answered.

Server and worker CPU per request/message are reported too: they vary much less than the
rates when other work shares the machine.

    .venv/bin/python benchmarks/run.py [--quick] [--only postgresql|sqlite] [--skip-http]
                                       [--only-journeys] [--only-channels]
                                       [--only-policy] [--only-providers]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_channels  # noqa: E402
import bench_policy  # noqa: E402
import bench_providers  # noqa: E402
import bench_smpp  # noqa: E402
import bench_smtp  # noqa: E402
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
from bench_journeys import (  # noqa: E402
    DRAINS,
    FULL_JOURNEYS,
    QUICK_JOURNEYS,
    SOURCES,
    WAITING,
    JourneyPlan,
    apply_journeys,
    clone_runs,
    drain,
    drop_runs,
    empty_runs,
    enter_for_real,
    event_latencies,
    lateness,
    log_problems,
    run_sizes,
    runs_claim_probe,
    sample_rss,
    start_worker,
    vacuum_analyze,
    wait_sent,
)
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
TARGET_RUN_BYTES = 1024.0  # database bytes per run waiting on a timer (runs + run_history)
TARGET_RSS_BYTES_PER_RUN = 0.05  # worker memory per waiting run: none (50 KB for a million)
TARGET_STEPS_PER_S = 2000.0
TARGET_LATENESS_P99_MS = 1000.0
TARGET_EVENT_SEND_P99_MS = 100.0
TARGET_SMPP_PER_S = 1000.0
TARGET_OTP_P50_MS = 10.0
TARGET_OTP_P99_MS = 50.0
TARGET_SMTP_PER_S = 300.0
TARGET_CALLBACKS_PER_S = 2000.0
TARGET_CALLBACK_P99_MS = 200.0

JOURNEYS_ON_POSTGRESQL_ONLY = (
    "PostgreSQL only: their targets are about a deployment with `kaskad api` and several "
    "`kaskad worker` processes claiming with FOR UPDATE SKIP LOCKED, and the sizes are "
    "PostgreSQL's (pg_total_relation_size); SQLite runs the API and the engine in one process"
)
TEMPLATE_RUNS = 10  # runs entered through the real service, copied for the bulk loads
RSS_SETTLE_S = 4.0  # a worker's start-up, before its memory is sampled
RSS_SAMPLE_S = 3.0
LATE_SHARE = 0.5  # the lateness run's rate, as a share of the measured 1-worker rate
EVENT_THREADS = 2
EVENT_CONNECTIONS = 32


@dataclass(frozen=True)
class Plan:
    http_seconds: int
    warmup_seconds: int
    contacts: int
    cascade: dict[str, int]
    timers: int
    accept_threads: dict[str, int]
    accept_seconds: dict[str, float]  # then what was accepted is copied up to the count
    journeys: JourneyPlan
    policy_log_rows: int = 10_000_000
    policy_contacts: int = 1_000_000
    policy_probes: int = 3_000
    policy_accepts: int = 4_000
    webhook_callbacks: int = 60_000
    webhook_seconds: int = 15


FULL = Plan(
    http_seconds=15,
    warmup_seconds=3,
    contacts=10_000,
    cascade={"postgresql": 20_000, "sqlite": 15_000},
    timers=100_000,
    accept_threads={"postgresql": 4, "sqlite": 1},
    accept_seconds={"postgresql": 40, "sqlite": 20},
    journeys=FULL_JOURNEYS,
)
QUICK = Plan(
    http_seconds=5,
    warmup_seconds=2,
    contacts=10_000,
    cascade={"postgresql": 4_000, "sqlite": 4_000},
    timers=20_000,
    accept_threads={"postgresql": 4, "sqlite": 1},
    accept_seconds={"postgresql": 10, "sqlite": 5},
    journeys=QUICK_JOURNEYS,
    policy_log_rows=1_000_000,
    policy_contacts=100_000,
    policy_probes=1_000,
    policy_accepts=1_500,
    webhook_callbacks=20_000,
    webhook_seconds=5,
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
        self.only_journeys = False
        self.only_channels = False
        self.only_policy = False
        self.only_providers = False

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
            key = api_key = out.strip().splitlines()[-1]
            app = open_app(url)
            seconds = seed_contacts(app, self.plan.contacts)
            say(f"  migrated; API key created; {self.plan.contacts:,} contacts in {seconds:.1f}s")
            details["busy_share_before"] = round(busy_share(1.0), 3)
            say(f"  machine CPU busy (other processes) before: {details['busy_share_before']:.0%}")
        try:
            if self.only_policy:
                self.policy(kind, app, details.setdefault("policy", {}))
                return
            if self.only_providers:
                self.providers(kind, env, app, details.setdefault("providers", {}))
                return
            if self.only_channels:
                self.channels(kind, url, env, details.setdefault("channels", {}))
                return
            if not self.only_journeys:
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
            if kind == "postgresql":
                self.journeys(kind, env, app, api_key, details.setdefault("journeys", {}))
                if not self.only_journeys:
                    self.channels(kind, url, env, details.setdefault("channels", {}))
                    self.policy(kind, app, details.setdefault("policy", {}))
                    self.providers(kind, env, app, details.setdefault("providers", {}))
            else:
                say(f"\n── {kind}: journeys: skipped ({JOURNEYS_ON_POSTGRESQL_ONLY})")
                self.notes.append(
                    f"{kind}: journey figures skipped ({JOURNEYS_ON_POSTGRESQL_ONLY})"
                )
        finally:
            app.db.dispose()

    # -- 10: HTTP providers ---------------------------------------------------------------------
    def providers(self, kind: str, env: dict[str, str], app: Any, details: dict[str, Any]) -> None:
        """Signed provider callbacks into the webhook (wrk)."""
        plan = self.plan
        if self.wrk is None:
            self.add(Figure(kind, "webhook_callbacks_per_s", "callbacks/s (wrk missing)", None))
            return
        count = plan.webhook_callbacks
        with section(f"{kind}: signed status callbacks into POST /v1/webhooks (wrk -t2 -c32)"):
            messages = bench_providers.prepare_messages(app, count, "sandbox")
            lines = self.work_dir / "callbacks.txt"
            bench_providers.write_callbacks(messages, bench_providers.sandbox_callback, lines)
            say(f"  {len(messages):,} messages handed to the provider; one callback each")
            signed = env | {"KASKAD_SECRET_KEY": bench_providers.SECRET}
            with api_server(signed, 2, self.log_dir) as (base, server):
                args = [str(lines), "/v1/webhooks/sandbox", "X-Kaskad-Signature", "2"]
                result = self._wrk(
                    "webhooks.lua", base, plan.webhook_seconds, 2, 32, args, server=server
                )
            bench_providers.settle()
            landed = bench_providers.delivered(app)
            details["webhooks"] = result.as_json() | {"messages_delivered": landed}
            say(
                f"  {result.rps:,.0f} callbacks/s, p50 {result.p50_ms:.1f} ms, p99 "
                f"{result.p99_ms:.1f} ms, non-2xx {result.non2xx}, server CPU "
                f"{fmt(result.server_cpu_ms_per_request, 'ms')}/callback; "
                f"{landed:,} messages delivered by {result.requests:,} callbacks"
            )
            if result.first_error:
                say(f"    first error: {result.first_error}")
            flags = _http_flags(result)
            if result.requests > len(messages):
                flags.append("more requests than callbacks: some were repeats")
            elif landed < result.requests - result.errors:
                flags.append(f"only {landed:,} of {result.requests:,} callbacks applied")
            self.add(
                Figure(kind, "webhook_callbacks_per_s",
                       "signed status callbacks/s into the webhook (api --workers 2)",
                       round(result.rps, 1), "", TARGET_CALLBACKS_PER_S, flags=flags)
            )  # fmt: skip
            self.add(
                Figure(kind, "webhook_callback_p99_ms", "callback answered, p99",
                       result.p99_ms, "ms", TARGET_CALLBACK_P99_MS, False, flags=flags)
            )  # fmt: skip

    # -- 9: the contact pressure policy ----------------------------------------------------------
    def policy(self, kind: str, app: Any, details: dict[str, Any]) -> None:
        plan = self.plan
        rows, people = plan.policy_log_rows, plan.policy_contacts
        with section(f"{kind}: policy, {rows:,} sends in the log over {people:,} contacts"):
            took = bench_policy.seed(app, contacts=people, log_rows=rows)
            say(
                f"  contacts in {took['contacts_s']}s, "
                f"send log in {took['send_log_s']}s (+ VACUUM ANALYZE)"
            )
            bench_policy.apply(app, bench_policy.NO_POLICY)
            off = bench_policy.accept_rate(
                app, contacts=people, count=plan.policy_accepts, threads=2, tag="off"
            )
            bench_policy.apply(app, bench_policy.full_policy(app.clock.now()))
            probe = bench_policy.probe(app, contacts=people, count=plan.policy_probes)
            on = bench_policy.accept_rate(
                app, contacts=people, count=plan.policy_accepts, threads=2, tag="on"
            )
            details.update({"seed": took, "probe": probe, "accept_off": off, "accept_on": on})
            say(
                f"  decision per message: p50 {probe['p50_ms']} ms, p99 {probe['p99_ms']} ms, "
                f"max {probe['max_ms']} ms ({probe['sends_read_per_contact']} sends read each)"
            )
            say(f"  accepted/s: policy off {off['per_s']:,.0f}, every rule on {on['per_s']:,.0f}")
            self.add(
                Figure(
                    kind,
                    "policy_decision_p99_ms",
                    f"policy decision p99 per message ({rows:,} sends in the log)",
                    probe["p99_ms"],
                    "ms",
                    target=1.0,
                    higher_is_better=False,
                )
            )
            drop = 1 - on["per_s"] / off["per_s"] if off["per_s"] else None
            self.add(
                Figure(
                    kind,
                    "policy_throughput_drop",
                    "drop in notifications accepted/s with every rule on",
                    round(drop * 100, 1) if drop is not None else None,
                    "%",
                    target=20.0,
                    higher_is_better=False,
                )
            )

    # -- 8: the real channels (SMPP, SMTP) ------------------------------------------------------
    def channels(self, kind: str, url: str, env: dict[str, str], details: dict[str, Any]) -> None:
        """SMS through the SMSC peer (from the outbox, OTPs during a bulk drain), SMPP alone,
        and SMTP; last, because it empties the cascade tables."""
        quick = self.plan is QUICK
        with section(f"{kind}: SMS over SMPP from the outbox, OTPs during a bulk drain"):
            drained = bench_channels.smpp(url, env, self.log_dir, quick=quick)
            details["smpp_drain"] = drained
            flags = [drained["error"]] if drained["error"] else []
            say(
                f"  {drained['queued']:,} bulk SMS; {drained['otps_seen']} of "
                f"{drained['otps']} OTPs seen by the SMSC; delivered "
                f"{fmt(drained['delivered_per_s'])}/s; OTP max {fmt(drained['otp_max_ms'], 'ms')}"
            )
            for key, label, value, unit, target, higher in (
                ("smpp_submit_per_s", "SMS/s outbox → SMSC (1 bind, window 10)",
                 drained["submit_per_s"], "", TARGET_SMPP_PER_S, True),
                ("otp_p50_ms", "OTP API → submit_sm p50, bulk draining",
                 drained["otp_p50_ms"], "ms", TARGET_OTP_P50_MS, False),
                ("otp_p99_ms", "OTP API → submit_sm p99, bulk draining",
                 drained["otp_p99_ms"], "ms", TARGET_OTP_P99_MS, False),
            ):  # fmt: skip
                self.add(Figure(kind, key, label, value, unit, target, higher, list(flags)))
        with section("SMPP provider alone and SMTP (no database)"):
            alone = bench_smpp.run(quick)
            details["smpp_provider"] = alone
            self.add(
                Figure("-", "smpp_provider_per_s", "SMS/s, SMPP provider alone, receipts back",
                       alone["submit_per_s"], "", TARGET_SMPP_PER_S)
            )  # fmt: skip
            mail = bench_smtp.run(quick)
            details["smtp"] = mail
            self.add(
                Figure("-", "smtp_per_s", "emails/s to a local SMTP server",
                       mail["messages_per_s"], "", TARGET_SMTP_PER_S)
            )  # fmt: skip

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

    # -- 5, 6 & 7: journeys (PostgreSQL) -----------------------------------------------------
    def journeys(
        self, kind: str, env: dict[str, str], app: Any, key: str, details: dict[str, Any]
    ) -> None:
        plan = self.plan.journeys
        with section(f"{kind}: journeys, {plan.waiting_runs:,} runs waiting on a 30-day timer"):
            empty_runs(app)
            apply_journeys(app)
            templates = {WAITING: enter_for_real(app, WAITING, TEMPLATE_RUNS, "real")}
            for journey_id in DRAINS:
                templates[journey_id] = enter_for_real(app, journey_id, 1, f"shape-{journey_id}")
            # The drains' real runs gave their shape; they would wait an hour: gone.
            drop_runs(app, list(DRAINS))
            say(
                f"  {len(SOURCES)} journeys applied; {TEMPLATE_RUNS} runs entered through "
                f"record_events (the template: status active, the wait's JSON, due_at, "
                f"trigger JSON, `enter` and `wait` history lines)"
            )
            self._waiting_runs(kind, env, app, templates[WAITING], details)
        with section(f"{kind}: journeys, {plan.due_runs:,} runs falling due at once"):
            self._due_runs(kind, env, app, templates, details)
        if self.wrk is None:
            why = "skipped" if self.http_skipped else "wrk missing"
            self.add(Figure(kind, "journey_event_send_p99_ms", f"event → first send ({why})", None))
            return
        with section(
            f"{kind}: journeys, event → first send at {plan.event_rate} events/s "
            "(api --workers 1, 1 worker)"
        ):
            self._event_to_send(kind, env, app, key, details)

    def _waiting_runs(
        self,
        kind: str,
        env: dict[str, str],
        app: Any,
        template: dict[str, Any],
        details: dict[str, Any],
    ) -> None:
        plan = self.plan.journeys
        count = plan.waiting_runs
        # Worker memory: three workers started with only the templates waiting, then three
        # started with all the runs; one of the first three also lives through the load.
        group = [start_worker(env, self.log_dir, f"worker-rss-empty-{i}") for i in range(3)]
        try:
            time.sleep(RSS_SETTLE_S)
            rss_empty = sample_rss(group, RSS_SAMPLE_S)
            while len(group) > 1:
                group.pop().stop()
            load_s = clone_runs(
                app,
                template,
                count=count - TEMPLATE_RUNS,
                tag="wait",
                first_due=app.clock.now() + timedelta(days=30),
                spacing=min(timedelta(milliseconds=1), timedelta(seconds=60) / count),
                due_in_trigger=False,
            )
            vacuum_s = vacuum_analyze(app)
            say(
                f"  loaded {count - TEMPLATE_RUNS:,} more like them in SQL in {load_s:.1f}s "
                f"(INSERT … SELECT generate_series, runs and run_history at once); VACUUM "
                f"ANALYZE {vacuum_s:.1f}s"
            )
            (rss_same,) = sample_rss(group, RSS_SAMPLE_S)
        finally:
            for worker in group:
                worker.stop()
        group = [start_worker(env, self.log_dir, f"worker-rss-loaded-{i}") for i in range(3)]
        try:
            time.sleep(RSS_SETTLE_S)
            rss_loaded = sample_rss(group, RSS_SAMPLE_S)
        finally:
            for worker in group:
                worker.stop()
        sizes = run_sizes(app)
        runs = sizes["runs"]["rows"]
        total = sizes["runs"]["total_bytes"] + sizes["run_history"]["total_bytes"]
        per_run = round(total / runs, 1)
        say(
            f"  {runs:,} runs, {sizes['run_history']['rows']:,} history lines: "
            f"{total / 2**20:,.0f} MiB, {per_run:,.0f} bytes a run; by relation, per run:"
        )
        breakdown: dict[str, float] = {}
        for table in ("runs", "run_history"):
            part = sizes[table]
            indexes = sum(part["indexes"].values())
            breakdown[table] = round(part["table_bytes"] / runs, 1)
            breakdown |= {name: round(size / runs, 1) for name, size in part["indexes"].items()}
            say(
                f"    {table}: table {part['table_bytes'] / runs:,.0f} (rows "
                f"{part['rows'] / runs:.0f} a run), indexes {indexes / runs:,.0f}: "
                + ", ".join(f"{n} {v / runs:,.0f}" for n, v in part["indexes"].items())
            )
        memory = _memory(rss_empty, rss_loaded, rss_same, runs)
        say(
            f"  worker memory ({RSS_SAMPLE_S:.0f}s of samples after {RSS_SETTLE_S:.0f}s of "
            f"start-up), VmRSS of 3 workers started with {TEMPLATE_RUNS} runs waiting: "
            + " / ".join(f"{r['rss_kib']:,.0f}" for r in rss_empty)
            + f" KiB; with {runs:,}: "
            + " / ".join(f"{r['rss_kib']:,.0f}" for r in rss_loaded)
            + f" KiB; difference of the means {memory['rss_diff_kib']:+,.0f} KiB = "
            f"{memory['rss_bytes_per_run']:+.3f} bytes a run (workers started alike differ by "
            f"up to {memory['rss_spread_kib']:,.0f} KiB)"
        )
        say(
            f"    anonymous memory (RssAnon: heap and stacks, no mapped code) "
            f"{memory['anon_diff_kib']:+,.0f} KiB = {memory['anon_bytes_per_run']:+.3f} bytes a "
            f"run; a worker started before the load and still running after it: VmRSS "
            f"{memory['same_rss_kib']:+,.0f} KiB, RssAnon {memory['same_anon_kib']:+,.0f} KiB"
        )
        probe = runs_claim_probe(app)
        say(
            f"  runs claim with {runs:,} waiting, nothing due: median "
            f"{probe['claim_ms_median']:.2f} ms, p99 {probe['claim_ms_p99']:.2f} ms "
            f"(next_due {probe['next_due_ms_median']:.2f} ms), as advance_due runs it"
        )
        for name, plan_lines in probe["plans"].items():
            for line in plan_lines:
                say(f"    {name} plan: {line}")
        details["waiting"] = {
            "runs": runs,
            "load_s": round(load_s, 2),
            "vacuum_analyze_s": round(vacuum_s, 2),
            "sizes": sizes,
            "bytes_per_run": breakdown,
            "memory": memory
            | {"empty": rss_empty, "loaded": rss_loaded, "same_worker_after": rss_same},
            "claim_probe": probe,
        }
        thousands = _count(runs)
        self.add(
            Figure(
                kind,
                "journey_bytes_per_waiting_run",
                f"database bytes per waiting run ({thousands})",
                per_run,
                "B",
                TARGET_RUN_BYTES,
                higher_is_better=False,
                extra={"per_relation": breakdown, "load_s": round(load_s, 2)},
            )
        )
        noise = (
            [
                f"within the spread of workers started alike ({memory['rss_spread_kib']:,.0f} "
                f"KiB): too few runs to tell"
            ]
            if memory["rss_bytes_per_run"] > TARGET_RSS_BYTES_PER_RUN
            and abs(memory["rss_diff_kib"]) <= memory["rss_spread_kib"]
            else []
        )
        self.add(
            Figure(
                kind,
                "journey_worker_rss_bytes_per_run",
                f"worker RSS per waiting run ({thousands} vs 0)",
                memory["rss_bytes_per_run"],
                "B",
                TARGET_RSS_BYTES_PER_RUN,
                higher_is_better=False,
                flags=noise,
                extra=memory,
            )
        )
        self.add(
            Figure(
                kind,
                "journey_runs_claim_ms",
                f"runs claim, nothing due, {thousands} waiting",
                probe["claim_ms_median"],
                "ms",
                flags=[] if probe["uses_ix_runs_due"] else ["a plan does not use ix_runs_due"],
                extra={"p99_ms": probe["claim_ms_p99"], "next_due_ms": probe["next_due_ms_median"]},
            )
        )

    def _due_runs(
        self,
        kind: str,
        env: dict[str, str],
        app: Any,
        templates: dict[str, dict[str, Any]],
        details: dict[str, Any],
    ) -> None:
        plan = self.plan.journeys
        count = plan.due_runs
        drains: dict[str, dict[str, Any]] = {}
        for workers in (1, 2):
            journey_id = f"bench-drain-{workers}w"
            load_s = self._load_due(app, templates[journey_id], count)
            say(
                f"  {count:,} runs due now loaded in {load_s:.1f}s (+ ANALYZE), beside the "
                f"{plan.waiting_runs:,} waiting; the step after their wait: `update` (a contact "
                f"attribute), then `wait: 30d`"
            )
            result = drain(
                app,
                env,
                self.log_dir,
                journey_id=journey_id,
                expected=count,
                workers=workers,
                max_seconds=plan.drain_max_s,
            )
            drains[f"{workers}w"] = result
            self._say_drain(result, "run steps/s")
        capacity = drains["1w"]["steps_per_s"] or 0.0
        rate = min(plan.late_rate, max(50, int(capacity * LATE_SHARE / 50) * 50))
        say(
            f"  lateness: {rate:,} runs/s falling due for {plan.late_seconds}s "
            f"(at most {plan.late_rate:,}/s and {LATE_SHARE:.0%} of 1 worker's rate), 1 worker"
        )
        late = lateness(
            app,
            env,
            self.log_dir,
            templates["bench-late"],
            rate=rate,
            seconds=plan.late_seconds,
        )
        say(
            f"    {late['resumed']:,} of {late['runs']:,} resumed; lateness (resume − due): "
            f"p50 {fmt(late['p50_ms'], 'ms')}, p90 {fmt(late['p90_ms'], 'ms')}, "
            f"p99 {fmt(late['p99_ms'], 'ms')}, max {fmt(late['max_ms'], 'ms')} "
            f"(loaded in {late['load_s']:.1f}s, {late['loaded_before_first_due_s']:.1f}s before "
            f"the first fell due)"
        )
        sms_s = self._load_due(app, templates["bench-drain-sms"], plan.sms_runs)
        say(
            f"  variant: {plan.sms_runs:,} runs due now whose next step is an SMS send to the "
            f"sandbox, then `wait: 30d` (loaded in {sms_s:.1f}s), 1 worker:"
        )
        sms = drain(
            app,
            env,
            self.log_dir,
            journey_id="bench-drain-sms",
            expected=plan.sms_runs,
            workers=1,
            max_seconds=plan.drain_max_s,
            count_sent=True,
        )
        self._say_drain(sms, "run steps/s (each with an SMS)")
        details["due"] = {"drains": drains, "lateness": late, "sms": sms}
        for workers in (1, 2):
            result = drains[f"{workers}w"]
            self.add(
                Figure(
                    kind,
                    f"journey_steps_per_s_{workers}w",
                    f"run steps/s, {_count(count)} due ({workers} worker{'s' * (workers > 1)})",
                    result["steps_per_s"],
                    "",
                    TARGET_STEPS_PER_S,
                    flags=_drain_flags(result),
                    extra={
                        "drain_s_incl_startup": result["drain_s_incl_startup"],
                        "worker_cpu_ms_per_step": result["worker_cpu_ms_per_step"],
                    },
                )
            )
        late_flags = [] if late["drained"] else [f"{late['resumed']}/{late['runs']} resumed"]
        late_flags += late["log_problems"]
        self.add(
            Figure(
                kind,
                "journey_lateness_p99_ms",
                f"timer lateness p99 at {rate:,} runs/s due",
                late["p99_ms"],
                "ms",
                TARGET_LATENESS_P99_MS,
                higher_is_better=False,
                flags=late_flags,
                extra={k: late[k] for k in ("p50_ms", "p90_ms", "max_ms", "rate_per_s")},
            )
        )
        self.add(
            Figure(
                kind,
                "journey_steps_per_s_sms",
                f"run steps/s with an SMS each, {_count(plan.sms_runs)} due",
                sms["steps_per_s"],
                "",
                flags=_drain_flags(sms),
                extra={"sandbox_messages": sms.get("sandbox_messages")},
            )
        )

    def _load_due(self, app: Any, template: dict[str, Any], count: int) -> float:
        """``count`` runs all due by now (one every microsecond up to now), then ANALYZE."""
        spacing = timedelta(microseconds=1)
        start = time.perf_counter()
        clone_runs(
            app,
            template,
            count=count,
            tag="due",
            first_due=app.clock.now() - spacing * count,
            spacing=spacing,
        )
        vacuum_analyze(app, ("runs",), vacuum=False)
        return time.perf_counter() - start

    def _say_drain(self, result: dict[str, Any], what: str) -> None:
        workers = result["workers"]
        state = (
            f"all {result['resumed']:,} resumed"
            if result["drained"]
            else f"stopped at {result['resumed']:,} of {result['expected']:,}"
        )
        sent = (
            f"; {result['sandbox_messages']:,} messages in the sandbox"
            if "sandbox_messages" in result
            else ""
        )
        full = result["per_second_full"]
        spread = f"{min(full):,}–{max(full):,}" if full else "—"
        if result["drained"]:
            drained = f"drained {fmt(result['drain_s_incl_startup'], 's')} after the start"
        elif result["steps_per_s"]:
            projected = result["expected"] / result["steps_per_s"]
            drained = f"all {result['expected']:,} would take {fmt(projected, 's')}"
        else:
            drained = "not drained"
        say(
            f"    {workers} worker{'s' * (workers > 1)}: {fmt(result['steps_per_s'])} {what} "
            f"({state}{sent}; {result['batches']} batches over {result['claim_span_s']:.1f}s; "
            f"full seconds {spread}; {drained}; worker CPU "
            f"{fmt(result['worker_cpu_ms_per_step'], 'ms')}/step)"
        )
        if result["error"]:
            say(f"    ERROR: {result['error']}")
        for line in result["log_problems"]:
            say(f"    in the worker's log: {line}")

    def _event_to_send(
        self, kind: str, env: dict[str, str], app: Any, key: str, details: dict[str, Any]
    ) -> None:
        plan = self.plan.journeys
        # The waiting and drained runs are gone: each event's contact has only its own runs.
        empty_runs(app)
        per_thread = plan.event_rate / EVENT_THREADS
        worker = start_worker(env, self.log_dir, "worker-events")
        try:
            with api_server(env, 1, self.log_dir) as (base, server):
                warm = [key, "jwarm", str(self.plan.contacts), f"{per_thread:g}", "bench.order"]
                self._wrk(
                    "paced_events.lua",
                    base,
                    plan.warmup_seconds,
                    EVENT_THREADS,
                    EVENT_CONNECTIONS,
                    warm,
                )
                args = [key, "jrun", str(self.plan.contacts), f"{per_thread:g}", "bench.order"]
                worker_cpu0 = cpu_seconds(family(worker.pid))
                result = self._wrk(
                    "paced_events.lua",
                    base,
                    plan.event_seconds,
                    EVENT_THREADS,
                    EVENT_CONNECTIONS,
                    args,
                    server=server,
                )
            missing = wait_sent(app, "jrun", timeout=30)
            worker_cpu = cpu_seconds(family(worker.pid)) - worker_cpu0
            problems = [p for p in [log_problems(worker)] if p]
        finally:
            worker.stop()
        latency = event_latencies(app, "jrun")
        worker_ms = round(worker_cpu * 1000 / latency["events"], 3) if latency["events"] else None
        say(
            f"  wrk -t{EVENT_THREADS} -c{EVENT_CONNECTIONS}, paced at {plan.event_rate}/s for "
            f"{plan.event_seconds}s: {result.rps:,.0f} req/s, HTTP p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms, non-2xx {result.non2xx}, socket errors "
            f"{sum(result.socket_errors.values())}; CPU per event: API "
            f"{fmt(result.server_cpu_ms_per_request, 'ms')}, worker {fmt(worker_ms, 'ms')}"
        )
        say(
            f"  {latency['events']:,} events ({fmt(latency['events_per_s'])}/s as received), "
            f"{latency['sent']:,} first messages in the sandbox; event received → message "
            f"accepted by the sandbox: p50 {fmt(latency['p50_ms'], 'ms')}, p90 "
            f"{fmt(latency['p90_ms'], 'ms')}, p99 {fmt(latency['p99_ms'], 'ms')}, max "
            f"{fmt(latency['max_ms'], 'ms')}"
        )
        flags = _http_flags(result) + problems
        if missing:
            flags.append(f"{missing:,} events without a message after 30 s")
        if latency["events_per_s"] and latency["events_per_s"] < plan.event_rate * 0.9:
            flags.append(f"offered {latency['events_per_s']:,.0f}/s, not {plan.event_rate}/s")
        details["event_to_send"] = {
            "wrk": result.as_json(),
            "latency": latency,
            "worker_cpu_ms_per_event": worker_ms,
        }
        self.add(
            Figure(
                kind,
                "journey_event_send_p99_ms",
                f"event → first send p99 at {plan.event_rate}/s",
                latency["p99_ms"],
                "ms",
                TARGET_EVENT_SEND_P99_MS,
                higher_is_better=False,
                flags=flags,
                extra={k: latency[k] for k in ("p50_ms", "p90_ms", "max_ms", "events")}
                | {
                    "api_cpu_ms_per_event": result.server_cpu_ms_per_request,
                    "worker_cpu_ms_per_event": worker_ms,
                },
            )
        )
        self.add(
            Figure(
                kind,
                "journey_events_per_s",
                "events/s offered (paced), journey started each",
                latency["events_per_s"],
                "",
                extra={"wrk_rps": round(result.rps, 1)},
            )
        )

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


def _memory(
    empty: list[dict[str, Any]], loaded: list[dict[str, Any]], same: dict[str, Any], runs: int
) -> dict[str, float]:
    """Worker memory with ``runs`` waiting against (nearly) none: differences of the means."""
    out: dict[str, float] = {}
    for key, name in (("rss_kib", "rss"), ("anon_kib", "anon")):
        diff = statistics.mean(r[key] for r in loaded) - statistics.mean(r[key] for r in empty)
        out[f"{name}_diff_kib"] = round(diff, 1)
        out[f"{name}_bytes_per_run"] = round(diff * 1024 / runs, 4)
        out[f"same_{name}_kib"] = round(same[key] - empty[0][key], 1)
        spread = max(max(r[key] for r in g) - min(r[key] for r in g) for g in (empty, loaded))
        out[f"{name}_spread_kib"] = round(spread, 1)
    return out


def _count(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1000:g}k"


def _drain_flags(result: dict[str, Any]) -> list[str]:
    flags = [result["error"]] if result["error"] else []
    return flags + result["log_problems"]


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
    parser.add_argument(
        "--only-journeys",
        action="store_true",
        help="the journey figures alone (PostgreSQL; setup, then straight to them)",
    )
    parser.add_argument(
        "--only-policy",
        action="store_true",
        help="the policy figures alone (PostgreSQL)",
    )
    parser.add_argument(
        "--only-providers",
        action="store_true",
        help="the HTTP provider figures alone (PostgreSQL)",
    )
    parser.add_argument(
        "--only-channels",
        action="store_true",
        help="the SMPP and SMTP figures alone (PostgreSQL)",
    )
    args = parser.parse_args()
    if args.only_journeys or args.only_channels or args.only_policy or args.only_providers:
        args.only = "postgresql"
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
    suite.only_journeys = args.only_journeys
    suite.only_channels = args.only_channels
    suite.only_policy = args.only_policy
    suite.only_providers = args.only_providers
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
                    "plan": asdict(plan),
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
