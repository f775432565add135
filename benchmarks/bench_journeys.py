"""Journey figures: runs waiting on timers (size, worker memory, claim), timers falling due
at once (drain rate, lateness), and event → first send under a paced HTTP load.

PostgreSQL only. Runs are entered through the real services first (events recorded with
``record_events``), and those rows are the templates the bulk loads copy in SQL
(``INSERT … SELECT generate_series``): the same columns, the same JSON shapes, the same
history lines, only ids, contacts, times and the trigger's id and payload changed.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench_engine import CASCADE_TABLES, QUIET_SANDBOX, claim_probe
from bench_util import Proc, cpu_seconds, family, kaskad_argv
from sqlalchemy import text
from sqlalchemy.sql import sqltypes

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App
from kaskad.domain.ids import new_id
from kaskad.services import events as event_service
from kaskad.services import journeys as journey_service
from kaskad.services import runs as run_service


@dataclass(frozen=True)
class JourneyPlan:
    waiting_runs: int  # runs waiting on a 30-day timer (size, memory, claim)
    due_runs: int  # runs whose timer ends at once, drained by 1 and by 2 workers
    drain_max_s: float  # a drain stops there; the rate is what was done by then
    sms_runs: int  # the variant whose next step is an SMS send
    late_rate: int  # runs falling due per second in the lateness run (at most)
    late_seconds: int  # … spread over this many seconds
    event_rate: int  # POST /v1/events per second, paced
    event_seconds: int
    warmup_seconds: int


FULL_JOURNEYS = JourneyPlan(
    waiting_runs=1_000_000,
    due_runs=100_000,
    drain_max_s=45,
    sms_runs=10_000,
    late_rate=1000,
    late_seconds=20,
    event_rate=500,
    event_seconds=15,
    warmup_seconds=3,
)
QUICK_JOURNEYS = JourneyPlan(
    waiting_runs=100_000,
    due_runs=10_000,
    drain_max_s=12,
    sms_runs=2_000,
    late_rate=1000,
    late_seconds=6,
    event_rate=500,
    event_seconds=5,
    warmup_seconds=2,
)

# -- the journeys -------------------------------------------------------------------------
WAITING = "bench-waiting"  # wait 30d, then an SMS: the runs that sit on a timer
WELCOME = "bench-welcome"  # an SMS at once: event → first send
_SMS = """      category: service
      cascade:
        - channel: sms
          content: {text: "Welcome to the bank. Reply STOP to opt out."}
"""
SOURCES = {
    WAITING: f"""id: {WAITING}
name: Bench, a month's wait then an SMS
trigger:
  event: bench.signup
reentry: always
steps:
  - id: pause
    wait: 30d
  - id: hello
    send:
{_SMS}""",
    WELCOME: f"""id: {WELCOME}
name: Bench, an SMS on the event
trigger:
  event: bench.order
reentry: always
steps:
  - id: hello
    send:
{_SMS}""",
}


def _drain_source(journey_id: str, event: str, sms: bool) -> str:
    """A short wait (loaded as already ending), then a cheap step or an SMS, then a month."""
    middle = (
        "  - id: hello\n    send:\n" + _SMS
        if sms
        else "  - id: mark\n    update: {attributes: {bench_stage: second}}\n"
    )
    return (
        f"id: {journey_id}\nname: Bench, a timer then {'an SMS' if sms else 'an update'}\n"
        f"trigger:\n  event: {event}\nreentry: always\nsteps:\n"
        "  - id: pause\n    wait: 1h\n" + middle + "  - id: later\n    wait: 30d\n"
    )


DRAINS = {  # journey id: (trigger event, sms?)
    "bench-drain-1w": ("bench.drain1", False),
    "bench-drain-2w": ("bench.drain2", False),
    "bench-late": ("bench.late", False),
    "bench-drain-sms": ("bench.drainsms", True),
}
for _id, (_event, _sms) in DRAINS.items():
    SOURCES[_id] = _drain_source(_id, _event, _sms)
TRIGGERS = {WAITING: "bench.signup", WELCOME: "bench.order"} | {k: v[0] for k, v in DRAINS.items()}
RUN_TABLES = ("run_history", "runs")


def apply_journeys(app: App) -> None:
    for source in SOURCES.values():
        journey_service.apply_journey(app.uow(), source=source, activate=True, now=app.clock.now())


def drop_runs(app: App, journey_ids: list[str]) -> None:
    mine = "SELECT id FROM runs WHERE journey_id = ANY(:ids)"
    with app.db.begin() as conn:
        conn.execute(
            text(f"DELETE FROM run_history WHERE run_id IN ({mine})"), {"ids": journey_ids}
        )
        conn.execute(text(f"DELETE FROM runs WHERE id IN ({mine})"), {"ids": journey_ids})


def empty_runs(app: App) -> None:
    with app.db.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(RUN_TABLES + CASCADE_TABLES)}"))


# -- entering for real, then copying in SQL ----------------------------------------------
def enter_for_real(app: App, journey_id: str, count: int, tag: str) -> dict[str, Any]:
    """Enter ``count`` runs through ``record_events`` (contacts bench-1 … bench-<count>);
    returns the first run's row and its history lines, the template of the bulk loads."""
    items = [
        event_service.EventIn(
            f"bench-{i}", TRIGGERS[journey_id], f"{tag}-{i}", None, {"plan": "basic", "n": i}
        )
        for i in range(1, count + 1)
    ]
    event_service.record_events(
        app.uow(), events=items, create_contacts=False, routing=app.routing, now=app.clock.now()
    )
    with app.db.connect() as conn:
        run = (
            conn.execute(
                text("SELECT * FROM runs WHERE journey_id = :j ORDER BY id LIMIT 1"),
                {"j": journey_id},
            )
            .mappings()
            .one()
        )
        lines = (
            conn.execute(
                text("SELECT * FROM run_history WHERE run_id = :r ORDER BY id"), {"r": run["id"]}
            )
            .mappings()
            .all()
        )
    kinds = [line["kind"] for line in lines]
    if run["status"] != "active" or run["due_at"] is None or kinds != ["enter", "wait"]:
        raise RuntimeError(f"{journey_id}: unexpected run after entry: {dict(run)} {kinds}")
    return {"run": dict(run), "history": [dict(line) for line in lines]}


_ISO = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00'"
_MINUTE = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"


def clone_runs(
    app: App,
    template: dict[str, Any],
    *,
    count: int,
    tag: str,
    first_due: datetime,
    spacing: timedelta,
    due_in_trigger: bool = True,
) -> float:
    """Insert ``count`` runs shaped like ``template`` (a run waiting on a timer, with its
    ``enter`` and ``wait`` history lines), due from ``first_due`` one every ``spacing``.

    Every column of the schema is copied from the template except: the ids; the contact
    (taken in turn from all contacts); the times (each run entered its wait's duration
    before its due time; the waiting JSON's ``until`` and the wait line's text follow);
    and the trigger JSON's id (``<tag>-<n>``), ``payload.n`` and, with ``due_in_trigger``,
    ``payload.due_ms`` (the due time in epoch milliseconds, for lateness). Rows go in in
    the order of their ids and times, as new runs do. One transaction per table,
    foreign-key triggers off (the rows are consistent by construction). Returns seconds."""
    run = template["run"]
    enter, wait = template["history"]
    head, _, _ = wait["text"].partition(" (until ")
    with app.db.connect() as conn:
        contacts = int(conn.execute(text("SELECT count(*) FROM contacts")).scalar_one())
    params: dict[str, Any] = {
        "count": count,
        "contacts": contacts,
        "first_due": first_due,
        "spacing_us": spacing / timedelta(microseconds=1),
        "wait_us": (run["due_at"] - run["entered_at"]) / timedelta(microseconds=1),
        # Ids like new_id's (prefix, 10 characters of the time now, 16 more): they sort
        # after every id already there, as the ids of new runs do.
        "prefix": new_id("run")[:14] + tag[:4].ljust(4, "0"),
        "tag": tag,
        "trigger": json.dumps(run["trigger"]),
        "wait_head": head + " (until ",
    }
    due = "(:first_due + (g - 1) * :spacing_us * interval '1 microsecond')"
    entered = f"({due} - :wait_us * interval '1 microsecond')"
    trigger = "jsonb_set(CAST(:trigger AS jsonb), '{id}', to_jsonb(:tag || '-' || g))"
    trigger = f"jsonb_set({trigger}, '{{payload,n}}', to_jsonb(g))"
    if due_in_trigger:
        epoch_ms = f"round(extract(epoch FROM {due}) * 1000, 3)"
        trigger = f"jsonb_set({trigger}, '{{payload,due_ms}}', to_jsonb({epoch_ms}))"
    trigger = f"jsonb_set({trigger}, '{{occurred_at}}', to_jsonb({_ISO.format(entered)}))"
    varied = {
        "id": "(:prefix || lpad(to_hex(g), 12, '0'))",
        "contact_id": "who",
        "due_at": due,
        "trigger": trigger,
        "entered_at": entered,
        "updated_at": entered,
    }
    if run.get("waiting") is not None:
        varied["waiting"] = (
            f"jsonb_set(CAST(:t_waiting AS jsonb), '{{until}}', to_jsonb({_ISO.format(due)}))"
        )
    dialect = app.db.dialect

    def copied(table: Any, name: str, param: str, value: Any) -> str:
        """The template's value of a column, as a typed parameter."""
        column_type = table.c[name].type
        is_json = isinstance(column_type, sqltypes.JSON)
        params[param] = json.dumps(value) if is_json and value is not None else value
        return f"CAST(:{param} AS {column_type.compile(dialect=dialect)})"

    runs_table = schema.metadata.tables["runs"]
    run_columns = [c.name for c in runs_table.columns]
    run_values = []
    for name in run_columns:
        if name == "waiting" and "waiting" in varied:
            params["t_waiting"] = json.dumps(run["waiting"])
        run_values.append(varied.get(name) or copied(runs_table, name, f"t_{name}", run[name]))

    # History: two lines per run, enter then wait, as entering writes them; each column
    # the template's value for that line, but the run, the contact, the time and the
    # wait line's text.
    history_table = schema.metadata.tables["run_history"]
    history_columns = [c.name for c in history_table.columns if c.name != "id"]
    line_values = []
    for name in history_columns:
        if name == "run_id":
            line_values.append(varied["id"])
        elif name == "contact_id":
            line_values.append("who")
        elif name == "at":
            line_values.append(entered)
        elif name == "text":
            minute = _MINUTE.format(due)
            params["t_enter_text"] = enter["text"]
            line_values.append(
                f"CASE h % 2 WHEN 1 THEN :t_enter_text ELSE :wait_head || {minute} || ' UTC)' END"
            )
        else:
            first = copied(history_table, name, f"enter_{name}", enter[name])
            second = copied(history_table, name, f"wait_{name}", wait[name])
            line_values.append(f"CASE h % 2 WHEN 1 THEN {first} ELSE {second} END")

    # Run g goes to contact number g mod (number of contacts), in id order; the rows are
    # sorted (narrow rows, in memory) before the expressions are computed.
    def numbered(lines: int) -> str:
        g = "h" if lines == 1 else "(h + 1) / 2"
        return f"""
            (SELECT h, {g} AS g, c.id AS who
             FROM generate_series(1, {lines} * :count) AS h
             JOIN (SELECT id, (row_number() OVER (ORDER BY id) - 1)::int AS k
                   FROM contacts) AS c ON c.k = ({g}) % :contacts
             ORDER BY h) AS s
        """

    insert_runs = (
        f"INSERT INTO runs ({', '.join(run_columns)}) "
        f"SELECT {', '.join(run_values)} FROM {numbered(1)}"
    )
    insert_history = (
        f"INSERT INTO run_history ({', '.join(history_columns)}) "
        f"SELECT {', '.join(line_values)} FROM {numbered(2)}"
    )

    def insert(statement: str) -> None:
        with app.db.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("SET LOCAL work_mem = '256MB'"))
            conn.execute(text(statement), params)

    # The two tables at once, on two connections: they share nothing.
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(insert, insert_runs), pool.submit(insert, insert_history)]:
            future.result()
    return time.perf_counter() - start


def vacuum_analyze(app: App, tables: tuple[str, ...] = RUN_TABLES, *, vacuum: bool = True) -> float:
    start = time.perf_counter()
    with app.db.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            conn.execute(text(f"{'VACUUM ANALYZE' if vacuum else 'ANALYZE'} {table}"))
    return time.perf_counter() - start


def run_sizes(app: App) -> dict[str, Any]:
    """Bytes of runs and run_history (heap, TOAST, each index), and the counts."""
    sizes: dict[str, Any] = {}
    with app.db.connect() as conn:
        for table in RUN_TABLES:
            total = conn.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar_one()
            heap = conn.execute(text(f"SELECT pg_table_size('{table}')")).scalar_one()
            rows = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            indexes = conn.execute(
                text(
                    "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) "
                    "FROM pg_index WHERE indrelid = CAST(:t AS regclass) ORDER BY 1"
                ),
                {"t": table},
            ).all()
            sizes[table] = {
                "rows": int(rows),
                "total_bytes": int(total),
                "table_bytes": int(heap),
                "indexes": {name: int(size) for name, size in indexes},
            }
    return sizes


# -- the worker: memory and the claim ------------------------------------------------------
def rss_kib(pids: set[int]) -> tuple[int, int]:
    """VmRSS and RssAnon (heap and stacks, without mapped code) of these processes, in KiB."""
    rss = anon = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = dict(re.findall(r"^(VmRSS|RssAnon):\s+(\d+) kB", status, re.M))
        rss += int(found.get("VmRSS", 0))
        anon += int(found.get("RssAnon", 0))
    return rss, anon


def sample_rss(procs: list[Proc], seconds: float) -> list[dict[str, Any]]:
    """VmRSS and RssAnon of each worker (with its children) every 0.25 s for ``seconds``:
    the median of each."""
    samples: list[list[tuple[int, int]]] = [[] for _ in procs]
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        for proc, found in zip(procs, samples, strict=True):
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            found.append(rss_kib(family(proc.pid)))
        time.sleep(0.25)
    return [
        {
            "rss_kib": statistics.median(r for r, _ in found),
            "anon_kib": statistics.median(a for _, a in found),
        }
        for found in samples
    ]


def start_worker(env: dict[str, str], log_dir: Path, name: str) -> Proc:
    return Proc(name, kaskad_argv("worker"), env | QUIET_SANDBOX, log_dir)


def log_problems(proc: Proc) -> str | None:
    """The first error line of a worker's log, if any."""
    try:
        lines = proc.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if "Traceback" in line or '"level": "ERROR"' in line or " ERROR " in line:
            return line[:300]
    return None


def runs_claim_probe(app: App, rounds: int = 100, budget_s: float = 4.0) -> dict[str, Any]:
    """The runs loop's claim and ``next_due`` with nothing due, and whether both queries use
    ix_runs_due."""
    found = claim_probe(
        app,
        claim=lambda: run_service.advance_due(
            app.uow(), routing=app.routing, now=app.clock.now(), limit=500
        ),
        next_due=lambda: run_service.next_due(app.uow()),
        table="runs",
        rounds=rounds,
        budget_s=budget_s,
    )
    plans = found["plans"]
    uses_index = len(plans) == 2 and all(
        any("ix_runs_due" in line for line in plan) for plan in plans.values()
    )
    return found | {"uses_ix_runs_due": uses_index}


# -- draining runs that fall due ---------------------------------------------------------
def _pending(app: App, journey_id: str, before: datetime | None = None) -> int:
    """Runs of the journey still waiting on a timer due by ``before`` (default: now): a
    resumed run waits a month, so these are the ones not resumed yet (ix_runs_due)."""
    query = "SELECT count(*) FROM runs WHERE due_at <= :before AND journey_id = :j"
    with app.db.connect() as conn:
        found = conn.execute(
            text(query), {"j": journey_id, "before": before or app.clock.now()}
        ).scalar_one()
    return int(found)


def _resume_times(app: App, journey_id: str) -> list[datetime]:
    """The time of every resume line of the journey's runs (its batch's claim time)."""
    query = (
        "SELECT h.at FROM run_history h JOIN runs r ON r.id = h.run_id "
        "WHERE r.journey_id = :j AND h.kind = 'resume' ORDER BY h.at"
    )
    with app.db.connect() as conn:
        return [at for (at,) in conn.execute(text(query), {"j": journey_id})]


def _sent(app: App) -> int:
    with app.db.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM sandbox_messages")).scalar_one())


def drain(
    app: App,
    env: dict[str, str],
    log_dir: Path,
    *,
    journey_id: str,
    expected: int,
    workers: int,
    max_seconds: float,
    count_sent: bool = False,
) -> dict[str, Any]:
    """Start ``workers`` worker processes on ``expected`` runs all due, and wait (polling
    every 0.5 s) until every one has resumed or ``max_seconds`` have passed since the first
    resumed (the runs not reached by then are deleted).

    The rate is read from run_history afterwards: the resume lines written before the
    last batch's, over the time from the first batch's claim to the last one's (each
    batch's lines carry its claim time). The worker processes' CPU is counted over the
    drain."""
    procs: list[Proc] = []
    spawn = time.perf_counter()
    done = 0
    first_seen: float | None = None
    finished: float | None = None
    cpu0 = cpu1 = 0.0
    error = None
    try:
        for i in range(workers):
            procs.append(start_worker(env, log_dir, f"worker-{journey_id}-{i}"))
        while True:
            time.sleep(0.5)
            done = expected - _pending(app, journey_id)
            now = time.perf_counter()
            if first_seen is None and done:
                first_seen = now
                cpu0 = cpu_seconds([p.pid for p in procs])
            if done >= expected:
                finished = now
                cpu1 = cpu_seconds([p.pid for p in procs])
                break
            if first_seen is not None and now - first_seen > max_seconds:
                cpu1 = cpu_seconds([p.pid for p in procs])
                break
            if now - spawn > max_seconds + 60:
                error = f"no run resumed within {now - spawn:.0f}s"
                break
            dead = [p for p in procs if not p.alive()]
            if dead:
                error = f"{dead[0].name} exited:\n{dead[0].tail()}"
                break
        sent = _sent(app) if count_sent else None
    finally:
        for proc in procs:
            proc.stop()
    # Runs a stopped drain did not reach would be taken by the next workers started: gone.
    with app.db.begin() as conn:
        conn.execute(
            text("DELETE FROM runs WHERE journey_id = :j AND due_at <= now()"), {"j": journey_id}
        )
    problems = [p for p in (log_problems(proc) for proc in procs) if p]
    times = _resume_times(app, journey_id)
    resumed = len(times)
    span = (times[-1] - times[0]).total_seconds() if times else 0.0
    before_last = sum(1 for at in times if at < times[-1]) if times else 0
    rate = before_last / span if span > 0.2 else None
    per_second = sorted(Counter(at.replace(microsecond=0) for at in times).items())
    result: dict[str, Any] = {
        "workers": workers,
        "expected": expected,
        "resumed": resumed,
        "drained": resumed >= expected,
        "error": error,
        "log_problems": problems,
        "steps_per_s": None if rate is None else round(rate, 1),
        "claim_span_s": round(span, 3),
        "batches": len(set(times)),
        "per_second_full": [n for _, n in per_second[1:-1]],
        "first_seen_after_s": None if first_seen is None else round(first_seen - spawn, 2),
        "drain_s_incl_startup": None if finished is None else round(finished - spawn, 2),
        "worker_cpu_ms_per_step": round((cpu1 - cpu0) * 1000 / resumed, 3) if resumed else None,
    }
    if sent is not None:
        result["sandbox_messages"] = sent
    return result


def wait_resumed(app: App, journey_id: str, before: datetime, timeout: float, proc: Proc) -> bool:
    """Wait until no run of the journey due by ``before`` is left waiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.clock.now() >= before and _pending(app, journey_id, before) == 0:
            return True
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        time.sleep(0.2)
    return False


def lateness(
    app: App,
    env: dict[str, str],
    log_dir: Path,
    template: dict[str, Any],
    *,
    rate: int,
    seconds: int,
) -> dict[str, Any]:
    """One worker; once it has resumed a first run (it is up), ``rate × seconds`` runs are
    loaded falling due from 3 s later, one every 1/rate s. Lateness is each resume line's
    time (the claim of its batch) minus the run's due time (kept in its trigger JSON)."""
    journey_id = template["run"]["journey_id"]
    count = rate * seconds
    proc = start_worker(env, log_dir, "worker-lateness")
    try:
        ready = app.clock.now()
        clone_runs(app, template, count=1, tag="lrdy", first_due=ready, spacing=_MS)
        if not wait_resumed(app, journey_id, ready, 60, proc):
            raise RuntimeError(f"the worker did not resume a due run within 60 s:\n{proc.tail()}")
        first_due = app.clock.now() + timedelta(seconds=3)
        spacing = timedelta(seconds=1) / rate
        load_s = clone_runs(
            app, template, count=count, tag="late", first_due=first_due, spacing=spacing
        )
        loaded_at = app.clock.now()
        last_due = first_due + spacing * (count - 1)
        drained = wait_resumed(app, journey_id, last_due, seconds + 60, proc)
    finally:
        proc.stop()
    with app.db.connect() as conn:
        late_ms = [
            float(v)
            for (v,) in conn.execute(
                text(
                    "SELECT extract(epoch FROM h.at) * 1000 "
                    "       - (r.trigger -> 'payload' ->> 'due_ms')::float8 "
                    "FROM run_history h JOIN runs r ON r.id = h.run_id "
                    "WHERE r.journey_id = :j AND h.kind = 'resume' "
                    "AND r.trigger ->> 'id' LIKE 'late-%'"
                ),
                {"j": journey_id},
            )
        ]
    late_ms.sort()
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "runs": count,
        "resumed": len(late_ms),
        "drained": drained,
        "load_s": round(load_s, 2),
        "loaded_before_first_due_s": round((first_due - loaded_at).total_seconds(), 2),
        "p50_ms": _pct(late_ms, 50),
        "p90_ms": _pct(late_ms, 90),
        "p99_ms": _pct(late_ms, 99),
        "max_ms": round(late_ms[-1], 1) if late_ms else None,
        "log_problems": [p for p in [log_problems(proc)] if p],
    }


_MS = timedelta(milliseconds=1)


def _pct(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return round(ordered[index], 1)


# -- event → first send ------------------------------------------------------------------
def event_latencies(app: App, tag: str) -> dict[str, Any]:
    """Per event of this run (keys ``<tag>-…``): the sandbox's accepted_at of the first
    message of the run it started, minus the event's received_at."""
    query = """
        SELECT e.key, e.received_at, min(sm.accepted_at) AS accepted_at
        FROM events e
        LEFT JOIN runs r ON r.contact_id = e.contact_id AND r.journey_id = :j
                        AND r.trigger ->> 'id' = e.key
        LEFT JOIN notifications n ON n.run_id = r.id
        LEFT JOIN messages m ON m.notification_id = n.id
        LEFT JOIN sandbox_messages sm ON sm.client_ref = m.id
        WHERE e.key LIKE :pattern AND e.type = 'bench.order'
        GROUP BY e.key, e.received_at
    """
    with app.db.connect() as conn:
        rows = conn.execute(text(query), {"j": WELCOME, "pattern": tag + "-%"}).all()
    latencies = sorted(
        (accepted - received).total_seconds() * 1000
        for _key, received, accepted in rows
        if accepted is not None
    )
    received = [r[1] for r in rows]
    span = (max(received) - min(received)).total_seconds() if len(received) > 1 else 0.0
    return {
        "events": len(rows),
        "sent": len(latencies),
        "not_sent": len(rows) - len(latencies),
        "received_span_s": round(span, 2),
        "events_per_s": round(len(rows) / span, 1) if span else None,
        "p50_ms": _pct(latencies, 50),
        "p90_ms": _pct(latencies, 90),
        "p99_ms": _pct(latencies, 99),
        "max_ms": round(latencies[-1], 1) if latencies else None,
    }


def wait_sent(app: App, tag: str, timeout: float) -> int:
    """Wait until every event of this run has its message in the sandbox; returns how many
    were still missing at the end."""
    query = """
        SELECT count(*) FROM events e
        WHERE e.key LIKE :pattern AND NOT EXISTS (
            SELECT 1 FROM runs r JOIN notifications n ON n.run_id = r.id
            JOIN messages m ON m.notification_id = n.id
            JOIN sandbox_messages sm ON sm.client_ref = m.id
            WHERE r.contact_id = e.contact_id AND r.journey_id = :j
              AND r.trigger ->> 'id' = e.key)
    """
    deadline = time.monotonic() + timeout
    while True:
        with app.db.connect() as conn:
            missing = int(
                conn.execute(text(query), {"j": WELCOME, "pattern": tag + "-%"}).scalar_one()
            )
        if missing == 0 or time.monotonic() > deadline:
            return missing
        time.sleep(0.5)
