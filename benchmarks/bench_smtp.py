"""SMTP throughput: SmtpProvider to a local SMTP server in its own process, four pooled
connections, messages in batches of 100 (what a sender drains at once).

- messages_per_s: messages the server accepted per second.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaskad.adapters.channels.email import SmtpConfig, SmtpProvider  # noqa: E402
from kaskad.domain.providers import OutgoingMessage, SendOutcome  # noqa: E402
from kaskad.domain.vocabulary import Category, Channel  # noqa: E402

FULL, QUICK, BATCH = 3_000, 1_000, 100


def _messages(count: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            id=f"msg_{n:026d}",
            notification_id=f"ntf-{n}",
            contact_id=f"c-{n}",
            channel=Channel.EMAIL,
            provider="mail",
            address=f"customer{n}@example.com",
            content={
                "subject": "Your statement for November",
                "text": "Hello, your statement is ready. " * 20,
                "html": "<p>Hello, your statement is ready.</p>" * 20,
            },
            category=Category.SERVICE,
            attempt=1,
        )
        for n in range(count)
    ]


async def _send(port: int, count: int) -> float:
    provider = SmtpProvider(
        "mail",
        SmtpConfig(port=port, security="none", from_address="Bank <noreply@bank.example>"),
    )
    messages = _messages(count)
    start = time.perf_counter()
    accepted = 0
    try:
        for first in range(0, count, BATCH):
            results = await provider.send(messages[first : first + BATCH])
            accepted += sum(r.outcome is SendOutcome.ACCEPTED for r in results)
    finally:
        await provider.stop()
    if accepted != count:
        raise RuntimeError(f"only {accepted} of {count} accepted")
    return count / (time.perf_counter() - start)


def run(quick: bool) -> dict[str, float]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.smtp_sink", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        port = int(json.loads(server.stdout.readline())["port"])
        rate = asyncio.run(_send(port, QUICK if quick else FULL))
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {"messages_per_s": round(rate, 1)}


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv)))
