"""SMPP throughput: SmppProvider.send against the SMSC peer process, receipts flowing back.

One bind, window 10, no throughput limit; the messages go in batches of 500 (what a
sender drains from the outbox at once) and every submit_sm asks for a receipt, which the
peer sends at once, so submits and receipts share the socket the whole time. The sink only
counts, so the figures are the provider's and the protocol's, not a database's.

- submit_per_s: messages accepted per second, first submit to last submit_sm_resp;
- receipts_per_s: receipts stored per second, first submit to last receipt.

    .venv/bin/python benchmarks/bench_smpp.py [--quick]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.peers, from a checkout

from tests.peers.smsc import SmscPeer, running_smsc

from kaskad.adapters.channels.sms import SmppConfig, SmppProvider
from kaskad.domain.providers import (
    InboundMessage,
    OutgoingMessage,
    SendOutcome,
    StatusReport,
)
from kaskad.domain.vocabulary import Category, Channel

FULL = 20_000
QUICK = 5_000
BATCH = 500
WINDOW = 10


class CountingSink:
    """Counts receipts and wakes the benchmark when the last one is in."""

    def __init__(self, expected: int) -> None:
        self.count = 0
        self.expected = expected
        self.all_in = asyncio.Event()

    async def reports(self, reports: Sequence[StatusReport]) -> None:
        self.count += len(reports)
        if self.count >= self.expected:
            self.all_in.set()

    async def inbound(self, messages: Sequence[InboundMessage]) -> None:
        return None


def messages(count: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            id=f"bench-{n}",
            notification_id=f"ntf-{n}",
            contact_id=f"contact-{n % 1000}",
            channel=Channel.SMS,
            provider="smpp",
            address=f"+38050{n % 10_000_000:07d}",
            content={"text": f"Your confirmation code is {n % 1_000_000:06d}"},
            category=Category.SECURITY,
            attempt=1,
        )
        for n in range(count)
    ]


async def measure(peer: SmscPeer, count: int) -> dict[str, float]:
    config = SmppConfig(
        port=peer.smpp_port,
        system_id=peer.system_id,
        password=peer.password,
        binds=1,
        window=WINDOW,
    )
    provider = SmppProvider("smpp", config)
    sink = CountingSink(count)
    batch = messages(count)
    await provider.start(sink)
    try:
        if provider.bound != 1:
            raise RuntimeError("the SMSC peer refused the bind")
        started = time.perf_counter()
        for first in range(0, count, BATCH):
            results = await provider.send(batch[first : first + BATCH])
            if any(r.outcome is not SendOutcome.ACCEPTED for r in results):
                raise RuntimeError(f"not accepted: {results[0]}")
        submitted = time.perf_counter() - started
        await asyncio.wait_for(sink.all_in.wait(), timeout=120)
        received = time.perf_counter() - started
    finally:
        await provider.stop()
    return {"submit_per_s": count / submitted, "receipts_per_s": count / received}


async def _run(count: int) -> dict[str, float]:
    async with running_smsc() as peer:
        return await measure(peer, count)


def run(quick: bool) -> dict[str, float]:
    """Start the peer, send ``QUICK`` or ``FULL`` messages, stop the peer; the two rates."""
    return asyncio.run(_run(QUICK if quick else FULL))


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv[1:])))
