"""Crash safety of journey runs: ``kill -9`` the server while runs wait and while they send,
restart it on the same database, and every run finishes with each of its messages sent once.

The journey: an ``order_paid`` event → SMS confirmation → wait 3 s → SMS reminder. Each
variant has its own contacts, journey and event type, so the variants share the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from kaskad.adapters.storage.database import create_db_engine
from kaskad.adapters.storage.schema import runs
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.services.journeys import apply_journey
from tests.e2e.conftest import Deployment, wait_until

pytestmark = pytest.mark.e2e

COUNT = 10


def journey(variant: str) -> str:
    return f"""
id: crash-{variant}
name: Crash test {variant}
trigger: {{event: paid_{variant}}}
steps:
  - send:
      category: transactional
      cascade: [{{channel: sms, content: {{text: "confirmed {variant}"}}}}]
  - wait: 3s
  - send:
      category: transactional
      cascade: [{{channel: sms, content: {{text: "reminder {variant}"}}}}]
"""


def run_statuses(deployment: Deployment, variant: str) -> Counter[str]:
    engine = create_db_engine(deployment.database_url)
    try:
        with engine.connect() as conn:
            query = select(runs.c.status).where(runs.c.journey_id == f"crash-{variant}")
            return Counter(str(s) for (s,) in conn.execute(query))
    finally:
        engine.dispose()


def received(client: httpx.Client, phones: set[str]) -> Counter[tuple[str, str]]:
    r = client.get("/v1/sandbox/messages", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return Counter(
        (m["address"], m["content"]["text"]) for m in r.json()["messages"] if m["address"] in phones
    )


def confirmations_sent(client: httpx.Client, phones: set[str], variant: str) -> bool:
    texts = received(client, phones)
    return sum(n for (_, text), n in texts.items() if text == f"confirmed {variant}") == COUNT


KILL_POINTS: dict[str, Callable[[httpx.Client, set[str], str], bool] | None] = {
    "during_send": None,  # right after the events: runs are entering and sending
    "during_wait": confirmations_sent,  # every run waits its 3 s
}


def apply(deployment: Deployment, variant: str) -> None:
    engine = create_db_engine(deployment.database_url)
    try:
        now = datetime.now(UTC)
        apply_journey(UnitOfWork(engine), source=journey(variant), activate=True, now=now)
    finally:
        engine.dispose()


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_kill_9_mid_journey_and_restart_sends_each_message_once(
    deployment: Deployment, kill_point: str
) -> None:
    variant = kill_point.replace("_", "")
    number = list(KILL_POINTS).index(kill_point) + 1
    contacts = {f"j{variant}-{i:02d}": f"+38067{number}{i:06d}" for i in range(COUNT)}
    phones = set(contacts.values())
    apply(deployment, variant)

    first = deployment.start_server(f"journey-{kill_point}-1")
    try:
        with deployment.client(first) as client:
            r = client.post(
                "/v1/contacts:batch",
                json={"contacts": [{"external_id": c, "phone": p} for c, p in contacts.items()]},
            )
            assert r.status_code == 200, r.text
            for contact in contacts:
                event = {"contact": contact, "type": f"paid_{variant}", "id": f"{contact}-1"}
                r = client.post("/v1/events", json=event)
                assert r.status_code == 202, r.text
            wait_for = KILL_POINTS[kill_point]
            if wait_for is not None:
                wait_until(
                    lambda: wait_for(client, phones, variant),
                    15,
                    interval=0.05,
                    what=kill_point,
                    describe=first.stderr_tail,
                )
        assert run_statuses(deployment, variant) == {"active": COUNT}
        first.kill9()
    finally:
        first.stop()

    second = deployment.start_server(f"journey-{kill_point}-2")
    try:
        with deployment.client(second) as client:
            wait_until(
                lambda: run_statuses(deployment, variant) == {"completed": COUNT},
                25,
                interval=0.1,
                what="every run to complete after the restart",
                describe=second.stderr_tail,
            )
            expected = {
                (phone, f"{kind} {variant}")
                for phone in phones
                for kind in ("confirmed", "reminder")
            }

            def all_sent() -> bool:
                return set(received(client, phones)) == expected

            wait_until(all_sent, 15, interval=0.1, what="both messages of every run")
            twice = {k: n for k, n in received(client, phones).items() if n != 1}
            assert twice == {}, f"sent more than once: {twice}"
    finally:
        second.stop()
    assert second.problems() == [], second.stderr_tail()
