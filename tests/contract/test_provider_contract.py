"""The provider contract: what every adapter promises the engine, checked against a real
peer for each (the sandbox on its database, an SMSC process, an SMTP server).

- one result per message, in order, naming the message it answers;
- delivery reports that name the message (by kaskad's id or the provider's) with a status
  from kaskad's lifecycle, through the provider's one mapping table;
- a temporary refusal is a retry, a permanent one a failure with a failure status;
- a resend after a crash carries the same client reference, and where the peer can refuse
  a duplicate the customer gets one copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from kaskad.domain.providers import SendOutcome
from kaskad.domain.vocabulary import MessageStatus, is_failure
from tests.contract.harnesses import Harness, SandboxHarness, SmppHarness, SmtpHarness
from tests.contract.http_webhook import WebhookHarness

T = TypeVar("T")
HARNESSES: dict[str, Callable[[pytest.FixtureRequest, Path], Harness]] = {
    "sandbox": lambda request, tmp: SandboxHarness(request.getfixturevalue("sqlite_template"), tmp),
    "smpp": lambda _request, _tmp: SmppHarness(),
    "smtp": lambda _request, tmp: SmtpHarness(tmp),
    "webhook": lambda _request, _tmp: WebhookHarness(),
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    built = HARNESSES[request.param](request, tmp_path)
    yield built
    asyncio.run(built.stop())


def _run(harness: Harness, body: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(body(), timeout=60))


def test_one_result_per_message_in_order(harness: Harness) -> None:
    async def body() -> list[tuple[str, SendOutcome, str | None]]:
        provider = await harness.start()
        try:
            batch = [harness.message(harness.ok_address) for _ in range(3)]
            results = await provider.send(batch)
            assert [r.message_id for r in results] == [m.id for m in batch]
            return [(r.message_id, r.outcome, r.provider_message_id) for r in results]
        finally:
            await _stop(provider)

    answered = _run(harness, body)
    assert [outcome for _, outcome, _ in answered] == [SendOutcome.ACCEPTED] * 3
    provider_ids = [ref for _, _, ref in answered]
    assert all(provider_ids)
    assert len(set(provider_ids)) == 3


def test_delivery_reports_name_the_message(harness: Harness) -> None:
    async def body() -> None:
        provider = await harness.start()
        try:
            batch = [harness.message(harness.ok_address) for _ in range(2)]
            results = await provider.send(batch)
            reports = await harness.reports_for(results)
        finally:
            await _stop(provider)
        by_ours = {r.message_id: r for r in results}
        by_theirs = {r.provider_message_id: r.message_id for r in results}
        delivered = set()
        for report in reports:
            named = report.message_id or by_theirs.get(report.provider_message_id)
            assert named in by_ours, f"report names no message sent: {report}"
            assert report.status in MessageStatus
            assert report.at.tzinfo is not None
            if report.status is MessageStatus.DELIVERED:
                delivered.add(named)
        assert delivered == set(by_ours)

    _run(harness, body)


def test_temporary_refusal_is_a_retry(harness: Harness) -> None:
    async def body() -> None:
        provider = await harness.start()
        try:
            (result,) = await provider.send([harness.message(harness.retry_address)])
        finally:
            await _stop(provider)
        assert result.outcome is SendOutcome.RETRY
        assert result.error

    _run(harness, body)


def test_permanent_refusal_fails_with_a_failure_status(harness: Harness) -> None:
    async def body() -> None:
        provider = await harness.start()
        try:
            (result,) = await provider.send([harness.message(harness.permanent_address)])
        finally:
            await _stop(provider)
        assert result.outcome is SendOutcome.FAILED
        assert is_failure(result.status)
        assert result.error

    _run(harness, body)


def test_resend_after_a_crash_keeps_the_client_reference(harness: Harness) -> None:
    async def body() -> None:
        provider = await harness.start()
        first = harness.message(harness.ok_address)
        try:
            (before,) = await provider.send([first])
        finally:
            await _stop(provider)
        again = await harness.restart()  # the sender died before recording the answer
        resend = harness.message(harness.ok_address, attempt=2, message_id=first.id)
        try:
            (after,) = await again.send([resend])
        finally:
            await _stop(again)
        assert before.outcome is SendOutcome.ACCEPTED
        assert after.outcome is SendOutcome.ACCEPTED
        assert after.message_id == first.id
        if harness.idempotent_resend:
            assert after.provider_message_id == before.provider_message_id
            assert harness.received(first) == 1
        else:
            assert harness.received(first) >= 1

    _run(harness, body)


async def _stop(provider: object) -> None:
    stop = getattr(provider, "stop", None)
    if stop is not None:
        await stop()
