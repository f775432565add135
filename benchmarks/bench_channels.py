"""The real channels under load: SMS from kaskad's outbox to an SMSC over SMPP, with OTPs
cutting through a bulk campaign, and email to an SMTP server.

SMPP (PostgreSQL): a bulk campaign of marketing SMS is queued in the outbox; a `kaskad
worker` drains it over one bind with a window of 10 to the SMSC peer process, which sends
a delivery receipt for every message on the same connection. While it drains, OTPs are
posted to a `kaskad api` process, one every 50 ms; each OTP's latency runs from the API's
answer (the client's clock) to the moment the SMSC read its submit_sm off the socket (the
peer's clock; both are this machine's wall clock).

- submit_per_s: submit_sm accepted per second, between 10% and 90% of the campaign
  (sustained, without start-up and tail);
- delivered_per_s: messages whose receipts kaskad stored as delivered, per second, first
  submit to the last delivery;
- otp_p50_ms / otp_p99_ms: API accepted → submit_sm on the socket.

SMTP: ``bench_smtp.run`` — SmtpProvider to a local SMTP server process.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the benchmark helpers; tests.peers

import httpx  # noqa: E402
from bench_engine import (  # noqa: E402
    accept_many,
    clone_accepted,
    open_app,
    reset_cascades,
    seed_contacts,
)
from bench_util import LOCALHOST, Proc, free_port, kaskad_argv, say, wait_http  # noqa: E402
from sqlalchemy import text  # noqa: E402
from tests.peers.smsc import SmscPeer, start_smsc  # noqa: E402

from kaskad.services import apikeys, contacts  # noqa: E402

BULK = {"full": 100_000, "quick": 20_000}
CONTACTS = 2_000
OTP_EVERY_S = 0.05
OTP_PREFIX = "38067"
WINDOW = 10
PASSWORD_ENV = "KASKAD_BENCH_SMSC_PASSWORD"


def smpp(url: str, env: dict[str, str], log_dir: Path, *, quick: bool) -> dict[str, Any]:
    bulk = BULK["quick" if quick else "full"]
    app = open_app(url)
    seed_contacts(app, CONTACTS)
    reset_cascades(app)
    tag = f"smpp{secrets.token_hex(3)}"
    accepted = accept_many(
        app, min(bulk, 20_000), contacts_count=CONTACTS, threads=2, tag=tag, max_seconds=60
    )
    queued = clone_accepted(app, bulk) if accepted["accepted"] < bulk else accepted["accepted"]
    _as_campaign(app)
    otp_contacts = _otp_contacts(app, 2_000)
    key = apikeys.create_api_key(app.uow(), name=tag, now=app.clock.now())
    say(f"  queued {queued:,} marketing SMS for the SMSC; {len(otp_contacts):,} OTP contacts")
    with start_smsc(system_id="kaskad", password="secret") as peer:
        return _drain(peer, url, env, log_dir, key, queued, otp_contacts)


def _as_campaign(app: Any) -> None:
    """The accepted notifications become a marketing campaign on the SMSC provider."""
    with app.db.begin() as conn:
        conn.execute(text("UPDATE notifications SET category = 'marketing', priority = 20"))
        conn.execute(text("UPDATE messages SET provider = 'smsc'"))
        conn.execute(text("UPDATE outbox SET provider = 'smsc', priority = 20"))
        conn.execute(text("ANALYZE"))


def _otp_contacts(app: Any, count: int) -> list[str]:
    patches = [
        contacts.ContactPatch(external_id=f"otp-{i}", phone=f"+{OTP_PREFIX}{i:07d}")
        for i in range(count)
    ]
    contacts.upsert_contacts(app.uow(), patches=patches, default_region=None, now=app.clock.now())
    return [p.external_id for p in patches]


def _env(base: dict[str, str], url: str, peer: SmscPeer) -> dict[str, str]:
    provider = {
        "type": "smpp",
        "host": LOCALHOST,
        "port": peer.smpp_port,
        "system_id": peer.system_id,
        "password_env": PASSWORD_ENV,
        "window": WINDOW,
        "binds": 1,
        "source_addr": "Bank",
    }
    channels = {"sms": "smsc", "email": "sandbox", "viber": "sandbox", "push": "sandbox"}
    return base | {
        "KASKAD_DATABASE_URL": url,
        "KASKAD_LOG_LEVEL": "WARNING",
        "KASKAD_PROVIDERS": json.dumps({"smsc": provider}),
        "KASKAD_CHANNELS": json.dumps(channels),
        PASSWORD_ENV: peer.password,
    }


def _drain(
    peer: SmscPeer,
    url: str,
    base_env: dict[str, str],
    log_dir: Path,
    key: str,
    queued: int,
    otp_contacts: list[str],
) -> dict[str, Any]:
    env = _env(base_env, url, peer)
    port = free_port()
    api = Proc("smpp-api", kaskad_argv("api", "--port", str(port)), env, log_dir)
    wait_http(f"http://{LOCALHOST}:{port}/healthz", api)
    try:
        worker = Proc("smpp-worker", kaskad_argv("worker"), env, log_dir)
        try:
            return _measure(peer, url, port, key, queued, otp_contacts, worker)
        finally:
            worker.stop()
    finally:
        api.stop()


def _measure(
    peer: SmscPeer,
    url: str,
    port: int,
    key: str,
    queued: int,
    otp_contacts: list[str],
    worker: Proc,
) -> dict[str, Any]:
    marks: dict[float, float] = {}
    sent: dict[str, float] = {}
    with httpx.Client(
        base_url=f"http://{LOCALHOST}:{port}", headers={"Authorization": f"Bearer {key}"}
    ) as client:
        started = time.time()
        deadline = started + 600
        next_otp = started
        while time.time() < deadline:
            if not worker.alive():
                raise RuntimeError(f"the worker exited:\n{worker.tail()}")
            submits = int(peer.call("arrivals")["submits"]) - len(sent)
            share = submits / queued
            for mark in (0.1, 0.9, 1.0):
                if share >= mark and mark not in marks:
                    marks[mark] = time.time()
            if 1.0 in marks:
                break
            if 0.02 < share < 0.85 and time.time() >= next_otp and len(sent) < len(otp_contacts):
                _otp(client, otp_contacts[len(sent)], sent)
                next_otp += OTP_EVERY_S
            else:
                time.sleep(0.01)
        delivered_at = _wait_delivered(url, queued + len(sent), deadline)
        first = _first_submit(peer)
    arrivals = peer.call("arrivals", destinations=[_digits(c) for c in sent])["arrivals"]
    latencies = sorted(
        (arrivals[_digits(c)] - at) * 1000 for c, at in sent.items() if _digits(c) in arrivals
    )
    sustained = 0.8 * queued / (marks[0.9] - marks[0.1]) if 0.1 in marks and 0.9 in marks else None
    return {
        "queued": queued,
        "submit_per_s": round(sustained, 1) if sustained else None,
        "delivered_per_s": round((queued + len(sent)) / (delivered_at - first), 1)
        if delivered_at and first
        else None,
        "otps": len(sent),
        "otps_seen": len(latencies),
        "otp_p50_ms": _pct(latencies, 50),
        "otp_p99_ms": _pct(latencies, 99),
        "otp_max_ms": round(latencies[-1], 1) if latencies else None,
        "error": None if 1.0 in marks else "the campaign did not drain within 600 s",
    }


def _otp(client: httpx.Client, contact: str, sent: dict[str, float]) -> None:
    body = {
        "contact": contact,
        "category": "security",
        "cascade": [{"channel": "sms", "content": {"text": "Your code is 482913"}}],
    }
    response = client.post("/v1/notifications", json=body)
    response.raise_for_status()
    sent[contact] = time.time()


def _digits(contact: str) -> str:
    return f"{OTP_PREFIX}{int(contact.removeprefix('otp-')):07d}"


def _wait_delivered(url: str, expected: int, deadline: float) -> float | None:
    from kaskad.adapters.storage.database import create_db_engine

    engine = create_db_engine(url)
    try:
        while time.time() < deadline:
            with engine.connect() as conn:
                done = conn.execute(
                    text("SELECT count(*) FROM messages WHERE status = 'delivered'")
                ).scalar_one()
            if done >= expected:
                return time.time()
            time.sleep(0.5)
        return None
    finally:
        engine.dispose()


def _first_submit(peer: SmscPeer) -> float | None:
    first: float | None = peer.call("arrivals")["first_at"]
    return first


def _pct(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return round(ordered[index], 1)


if __name__ == "__main__":
    import os
    import tempfile

    from kaskad.adapters.storage.database import create_db_engine, upgrade

    target = os.environ["KASKAD_BENCH_URL"]  # a PostgreSQL database of its own
    upgrade(create_db_engine(target))
    logs = Path(tempfile.mkdtemp(prefix="kaskad-channels-"))
    keep = {k: v for k, v in os.environ.items() if not k.startswith("KASKAD_")}
    print(json.dumps(smpp(target, keep, logs, quick="--quick" in sys.argv), indent=2))
