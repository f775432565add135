"""Policy benchmark: the cost of the contact pressure policy per message on PostgreSQL with a
large send log, and what it takes off the rate notifications are accepted at.

Contacts and send-log rows are written in SQL (generate_series): the figures are about
reading them, not about writing them. Every probe is its own transaction, as each send is.
"""

from __future__ import annotations

import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from kaskad.bootstrap import App
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.vocabulary import Category, Channel, Until
from kaskad.services import notifications, policy

PREFIX = "pol"


def seed(app: App, *, contacts: int, log_rows: int) -> dict[str, float]:
    """``contacts`` contacts opted in to marketing and ``log_rows`` sends spread over them and
    over the last 30 days."""
    started = time.perf_counter()
    with app.db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contacts (id, external_id, phone, push_tokens, attributes, "
                "consents, created_at, updated_at) "
                "SELECT 'ctc_' || :p || g, :p || '-' || g, '+38067' || lpad(g::text, 7, '0'), "
                "'[]', '{}', '{\"*\": {\"marketing\": true}}', now(), now() "
                "FROM generate_series(1, :n) g"
            ),
            {"p": PREFIX, "n": contacts},
        )
    seeded = time.perf_counter()
    with app.db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO send_log (contact_id, notification_id, message_id, category, "
                "channel, topic, content_key, journey_id, at) "
                "SELECT 'ctc_' || :p || (1 + g % :c), 'ntf_log_' || g, 'msg_log_' || g, "
                "(ARRAY['marketing','service','transactional','security'])[1 + g % 4], "
                "(ARRAY['sms','viber','email','push'])[1 + (g / 4) % 4], "
                "CASE WHEN g % 10 = 0 THEN 'loan_offer' END, 'offer-' || (g % 5000), NULL, "
                "now() - (g % 2592000) * interval '1 second' "
                "FROM generate_series(1, :n) g"
            ),
            {"p": PREFIX, "c": contacts, "n": log_rows},
        )
    # VACUUM as autovacuum would have by the time a log grows this big: it sets the
    # visibility map, without which no scan is index-only.
    with app.db.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("VACUUM ANALYZE contacts"))
        conn.execute(text("VACUUM ANALYZE send_log"))
    done = time.perf_counter()
    return {"contacts_s": round(seeded - started, 1), "send_log_s": round(done - seeded, 1)}


def full_policy(now: datetime) -> str:
    """Every kind of rule, with caps high enough that messages still go: the whole
    evaluation runs for each one. Quiet hours an hour long, twelve hours from now."""
    local = now.astimezone(ZoneInfo("Europe/Kyiv")) + timedelta(hours=12)
    start = local.strftime("%H:00")
    end = (local + timedelta(hours=1)).strftime("%H:00")
    return f"""caps:
  - {{limit: 1000/week, category: marketing}}
  - {{limit: 1000/day}}
  - {{limit: 5000/week}}
  - {{limit: 1000/day, channel: sms}}
  - {{limit: 1000/month, topic: loan_offer}}
quiet_hours:
  marketing: "{start}-{end}"
  service: "{start}-{end}"
dedup_window: 24h
relevance:
  - {{after: loan_repaid, suppress: {{topic: loan_offer}}, for: 30d}}
  - {{after: atm_withdrawal, suppress: {{topic: deposit_offer}}, for: 3d}}
"""


NO_POLICY = "quiet_hours: {marketing: never}\n"


def probe(app: App, *, contacts: int, count: int, seed_: int = 7) -> dict[str, Any]:
    """Time the policy's decision for one marketing SMS to a random contact, each in its own
    transaction: the contact's lock, reading its sends, plans and events, and the rules."""
    rng = random.Random(seed_)
    times: list[float] = []
    rows_read: list[int] = []
    for i in range(count):
        external = f"{PREFIX}-{rng.randint(1, contacts)}"
        with app.uow() as uow:
            contact = uow.contacts.by_external_id(external)
            assert contact is not None
            now = datetime.now(UTC)
            row = {
                "id": f"ntf_probe_{i}",
                "contact_id": contact["id"],
                "category": "marketing",
                "priority": 20,
                "created_at": now,
                "content_key": f"probe-{i}",
                "topic": "loan_offer" if i % 2 else "card_offer",
            }
            keeper = policy.gatekeeper(uow)
            gate = keeper.gate(row, contact, {})
            step = Step(Channel.SMS, {"text": "x"}, Until.SENT)
            started = time.perf_counter()
            verdict = gate(0, step, now)
            times.append((time.perf_counter() - started) * 1000)
            facts = keeper.facts[contact["id"]]
            rows_read.append(len(facts.sent))
            assert verdict.kind.value in ("send", "defer", "suppress")
    times.sort()
    return {
        "probes": count,
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        "max_ms": round(times[-1], 3),
        "sends_read_per_contact": round(statistics.mean(rows_read), 1),
    }


def accept_rate(app: App, *, contacts: int, count: int, threads: int, tag: str) -> dict[str, Any]:
    """Accept ``count`` one-step marketing SMS notifications (each with a content key and a
    topic) from ``threads`` threads; notifications accepted per second."""
    steps = [Step(Channel.SMS, {"text": "Offer"}, Until.SENT)]

    def work(offset: int) -> int:
        for i in range(offset, count, threads):
            request = NotificationRequest(
                contact=f"{PREFIX}-{i * 7919 % contacts + 1}",
                category=Category.MARKETING,
                priority=20,
                steps=steps,
                content_key=f"{tag}-{i}",
                topic="card_offer",
            )
            notifications.accept_notification(
                app.uow(), request=request, routing=app.routing, now=datetime.now(UTC)
            )
        return count // threads

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    seconds = time.perf_counter() - started
    return {"accepted": count, "seconds": round(seconds, 2), "per_s": round(count / seconds, 1)}


def apply(app: App, source: str) -> None:
    policy.apply(app.uow(), source=source, now=datetime.now(UTC))
