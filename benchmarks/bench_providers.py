"""HTTP providers under load: status callbacks into kaskad's webhook, and sends out of
kaskad's outbox to a fake provider process.

Webhook intake (PostgreSQL): messages are made ready in the database, each handed to a
provider with a provider id of its own, as if sent; then wrk posts one signed delivery
callback per message to `POST /v1/webhooks/<provider>` of a `kaskad api` process. Each
callback is checked (signature, then body), matched to its message and applied in the
database (group commit), and answered. Figures: callbacks/s, latency p50/p99, and the share
of messages that ended `delivered` (every callback must have landed).
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from bench_engine import accept_many, clone_accepted, reset_cascades, seed_contacts  # noqa: E402
from sqlalchemy import text  # noqa: E402

from kaskad.interfaces.http.webhooks import sign  # noqa: E402

CONTACTS = 2_000
SECRET = "bench-" + secrets.token_hex(16)

# A provider's callbacks: (file line per message, path, signature header, content type).
Signer = Callable[[str, str], str]


def sandbox_callback(message_id: str, provider_id: str) -> str:
    """One sandbox delivery report, signed as the sandbox signs them (HMAC-SHA256 of the
    body with the secret key, ``X-Kaskad-Signature``)."""
    done = datetime.now(UTC).isoformat()
    body = json.dumps(
        {
            "results": [
                {
                    "messageId": provider_id,
                    "clientRef": message_id,
                    "status": "DELIVERED",
                    "doneAt": done,
                    "price": {"amount": 0.01, "currency": "EUR"},
                }
            ]
        },
        separators=(",", ":"),
    )
    return f"{sign(SECRET, body.encode())}\t{body}"


def prepare_messages(app: Any, count: int, provider: str) -> list[tuple[str, str]]:
    """``count`` SMS messages handed to ``provider`` (status submitted, a provider id each,
    nothing left in the outbox); their (message id, provider id)."""
    seed_contacts(app, CONTACTS)
    reset_cascades(app)
    tag = f"wh{secrets.token_hex(3)}"
    accepted = accept_many(
        app, min(count, 20_000), contacts_count=CONTACTS, threads=2, tag=tag, max_seconds=60
    )
    if accepted["accepted"] < count:
        clone_accepted(app, count)
    with app.db.begin() as conn:
        conn.execute(text("DELETE FROM outbox"))
        conn.execute(
            text(
                "UPDATE messages SET status = 'submitted', provider = :p, "
                "provider_message_id = 'pm-' || id"
            ),
            {"p": provider},
        )
        conn.execute(text("ANALYZE messages"))
        rows = conn.execute(text("SELECT id, provider_message_id FROM messages")).all()
    return [(r[0], r[1]) for r in rows]


def write_callbacks(
    messages: list[tuple[str, str]], make: Callable[[str, str], str], path: Path
) -> None:
    with path.open("w") as out:
        for message_id, provider_id in messages:
            out.write(make(message_id, provider_id) + "\n")


def delivered(app: Any) -> int:
    """Messages a callback moved to delivered."""
    with app.db.connect() as conn:
        done = conn.execute(
            text("SELECT count(*) FROM messages WHERE status = 'delivered'")
        ).scalar_one()
    return int(done)


def settle(seconds: float = 1.0) -> None:
    """Let the last answered callbacks' transactions finish before counting."""
    time.sleep(seconds)
