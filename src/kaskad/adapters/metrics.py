"""Prometheus metrics. Process-local; scrape every process (each API and worker)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_ACCEPTED = Counter(
    "kaskad_events_accepted", "Events accepted (duplicates excluded)", registry=REGISTRY
)
NOTIFICATIONS_ACCEPTED = Counter(
    "kaskad_notifications_accepted", "Notifications accepted", ["category"], registry=REGISTRY
)
MESSAGES = Counter(
    "kaskad_messages",
    "Message status changes applied, by channel and status",
    ["channel", "status"],
    registry=REGISTRY,
)
DECISIONS = Counter("kaskad_decisions", "Decisions logged, by kind", ["kind"], registry=REGISTRY)
RUNS_ENTERED = Counter("kaskad_runs_entered", "Journey runs started", registry=REGISTRY)
RUNS_ENDED = Counter(
    "kaskad_runs_ended", "Journey runs ended, by how they ended", ["status"], registry=REGISTRY
)
SENDS = Counter(
    "kaskad_provider_sends", "Provider send results", ["provider", "outcome"], registry=REGISTRY
)
FAILOVERS = Counter(
    "kaskad_provider_failovers",
    "Messages routed past their first provider, by channel, from, to and reason",
    ["channel", "source", "target", "reason"],
    registry=REGISTRY,
)
CIRCUIT_OPENED = Counter(
    "kaskad_provider_circuit_opened",
    "Times a provider's circuit breaker opened (in this process)",
    ["provider"],
    registry=REGISTRY,
)
CLAIM_SECONDS = Histogram(
    "kaskad_claim_seconds",
    "Time to claim and advance one batch of due work",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "kaskad_queue_depth", "Rows waiting, by queue (outbox, timers)", ["queue"], registry=REGISTRY
)
