"""SMTP throughput: SmtpProvider.send to a plain SMTP server in a process of its own
(``tests/peers/smtp_sink.py``, on 127.0.0.1, no TLS), four pooled connections, messages in
batches of 100 (what a sender drains at once), each a text + HTML alternative.

- messages_per_s: messages the server accepted per second.

    .venv/bin/python benchmarks/bench_smtp.py [--quick]
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.peers, from a checkout

from kaskad.adapters.channels.email import SmtpConfig, SmtpProvider  # noqa: E402
from kaskad.domain.providers import OutgoingMessage, SendOutcome  # noqa: E402
from kaskad.domain.vocabulary import Category, Channel  # noqa: E402

FULL, QUICK, BATCH = 3_000, 1_000, 100


def _messages(count: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            id=f"msg_bench{n:020d}",
            notification_id=f"ntf_bench{n}",
            contact_id=f"cnt_bench{n}",
            channel=Channel.EMAIL,
            provider="mail",
            address=f"customer{n}@example.com",
            content={
                "subject": "Your statement for November",
                "text": "Hello, your statement is ready. " * 20,
                "html": "<p>Hello, your statement is ready.</p>" * 20,
                "unsubscribe_url": f"https://bank.example/u/{n}",
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
    accepted = 0
    start = time.perf_counter()
    try:
        for first in range(0, count, BATCH):
            results = await provider.send(messages[first : first + BATCH])
            accepted += sum(r.outcome is SendOutcome.ACCEPTED for r in results)
        elapsed = time.perf_counter() - start
    finally:
        await provider.stop()
    if accepted != count:
        raise RuntimeError(f"only {accepted} of {count} messages accepted")
    return count / elapsed


def run(quick: bool) -> dict[str, float]:
    sink = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.smtp_sink", "--port", "0"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert sink.stdout is not None
        line = sink.stdout.readline()
        if not line:
            raise RuntimeError("the SMTP sink did not start")
        port = int(json.loads(line)["port"])
        rate = asyncio.run(_send(port, QUICK if quick else FULL))
    finally:
        sink.terminate()  # this pid only
        try:
            sink.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait()
    return {"messages_per_s": round(rate, 1)}


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv)))
