"""The SMPP provider against a real SMSC process on 127.0.0.1 (``tests/peers/smsc.py``).

Every test starts its own SMSC process and stops it by pid; waits are on conditions with a
deadline, never fixed sleeps. No database: a recording sink stands in for kaskad's storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from kaskad.adapters.channels.sms import SmppConfig, SmppProvider
from kaskad.domain.providers import (
    InboundMessage,
    OutgoingMessage,
    SendOutcome,
    SendResult,
    StatusReport,
)
from kaskad.domain.vocabulary import Category, Channel, MessageStatus
from tests.peers.smsc import SmscPeer, start_smsc

PHONE = "+380501234567"
LONG_GSM = "Your card *1234 was charged 1 250,00 UAH at SILPO KYIV. " * 4  # 224 septets
LONG_UCS2 = "Ваш платіж на суму 1 250,00 грн підтверджено. Дякуємо! 🎉 " * 3  # 3 parts
ESME_RINVDSTADR = 0x0B


class RecordingSink:
    """Stores what the provider hands over; can be held shut or made to fail."""

    def __init__(self) -> None:
        self.stored: list[StatusReport] = []
        self.mo: list[InboundMessage] = []
        self.calls = 0
        self.waiting = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.failures = 0

    async def reports(self, reports: Sequence[StatusReport]) -> None:
        await self._store()
        self.stored.extend(reports)

    async def inbound(self, messages: Sequence[InboundMessage]) -> None:
        await self._store()
        self.mo.extend(messages)

    async def _store(self) -> None:
        self.calls += 1
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is locked")

    def for_message(self, message_id: str) -> list[StatusReport]:
        return [r for r in self.stored if r.message_id == message_id]


def run(scenario: Coroutine[Any, Any, None]) -> None:
    """Run a scenario on a fresh event loop, bounded in time."""

    async def bounded() -> None:
        async with asyncio.timeout(60):
            await scenario

    asyncio.run(bounded())


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 10.0
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def sms(number: int, text: str, address: str = PHONE, **content: str) -> OutgoingMessage:
    return OutgoingMessage(
        id=f"msg-{number}",
        notification_id=f"ntf-{number}",
        contact_id="contact-1",
        channel=Channel.SMS,
        provider="smpp",
        address=address,
        content={"text": text, **content},
        category=Category.TRANSACTIONAL,
        attempt=1,
    )


def settings(peer: SmscPeer, **overrides: Any) -> SmppConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": peer.smpp_port,
        "system_id": peer.system_id,
        "password": peer.password,
        "reconnect_min": 0.05,
        "reconnect_max": 0.4,
        "response_timeout": 5.0,
        "throttle_pause": 0.05,
    }
    return SmppConfig(**(values | overrides))


@contextlib.asynccontextmanager
async def started(
    peer: SmscPeer, sink: RecordingSink, **overrides: Any
) -> AsyncIterator[SmppProvider]:
    provider = SmppProvider("smpp", settings(peer, **overrides))
    await provider.start(sink)
    try:
        yield provider
    finally:
        await provider.stop()


async def until_delivered(sink: RecordingSink, results: Sequence[SendResult]) -> None:
    """Every result has a delivery report, by kaskad's id or by the SMSC's id."""

    def done() -> bool:
        delivered = [r for r in sink.stored if r.status is MessageStatus.DELIVERED]
        ids = {r.message_id for r in delivered} | {r.provider_message_id for r in delivered}
        return all(r.message_id in ids or r.provider_message_id in ids for r in results)

    await eventually(done, "a delivery receipt for every message")


def texts_received(state: dict[str, Any]) -> Counter[str]:
    return Counter(m["text"] for m in state["messages"])


@pytest.fixture
def smsc() -> Iterator[SmscPeer]:
    with start_smsc() as peer:
        yield peer


# -- sending -------------------------------------------------------------------------------
def test_short_and_long_messages_reach_the_smsc_whole(smsc: SmscPeer) -> None:
    batch = [
        sms(1, "Your code is 482913"),
        sms(2, LONG_GSM),
        sms(3, "Код підтвердження: 482913"),
        sms(4, LONG_UCS2),
    ]

    async def scenario() -> None:
        sink = RecordingSink()
        async with started(smsc, sink) as provider:
            results = await provider.send(batch)
            assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 4
            await until_delivered(sink, results)
            state = await smsc.ask("state")
        received = {m["text"]: m for m in state["messages"]}
        assert set(received) == {m.content["text"] for m in batch}
        for message, (coding, parts) in zip(batch, [(0, 1), (0, 2), (8, 1), (8, 3)], strict=True):
            arrived = received[message.content["text"]]
            assert (arrived["data_coding"], arrived["parts"], arrived["broken"]) == (
                coding,
                parts,
                False,
            )
            assert arrived["method"] == ("udh" if parts > 1 else "single")
            assert (arrived["destination"], arrived["source"]) == ("380501234567", "kaskad")
        submits = state["submits"]
        assert len(submits) == 7
        assert {
            (s["dest_ton"], s["dest_npi"], s["source_ton"], s["source_npi"]) for s in submits
        } == {(1, 1, 5, 0)}
        assert all(s["registered_delivery"] == 1 for s in submits)
        assert sorted(s["esm_class"] for s in submits) == [0, 0] + [0x40] * 5
        by_id = {r.message_id: r for r in results}
        # the send result names the last part; every receipt names the message
        assert by_id["msg-4"].provider_message_id == received[LONG_UCS2]["message_ids"][-1]
        for message in batch:
            reports = sink.for_message(message.id)
            assert reports[-1].status is MessageStatus.DELIVERED
            assert {r.provider_message_id for r in reports} <= {
                by_id[message.id].provider_message_id,
                *received[message.content["text"]]["message_ids"],
            }
        assert len(sink.for_message("msg-4")) == 3

    run(scenario())


@pytest.mark.parametrize(("mode", "submits", "esm_class"), [("sar", 2, 0), ("payload", 1, 0)])
def test_other_ways_of_sending_long_messages(
    smsc: SmscPeer, mode: str, submits: int, esm_class: int
) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        async with started(smsc, sink, long_messages=mode) as provider:
            (result,) = await provider.send([sms(1, LONG_GSM)])
            assert result.outcome is SendOutcome.ACCEPTED
            await until_delivered(sink, [result])
            state = await smsc.ask("state")
        (message,) = state["messages"]
        assert (message["text"], message["method"]) == (LONG_GSM, mode)
        assert len(state["submits"]) == submits
        assert {s["esm_class"] for s in state["submits"]} == {esm_class}

    run(scenario())


def test_sender_and_validity(smsc: SmscPeer) -> None:
    batch = [
        sms(1, "from the bank", sender="MyBank"),
        sms(2, "from a short code", sender="7111"),
        sms(3, "from a number", sender="+380441234567"),
        sms(4, "from the default"),
    ]

    async def scenario() -> None:
        sink = RecordingSink()
        overrides = {"source_addr": "Kaskad", "validity": timedelta(hours=2)}
        async with started(smsc, sink, **overrides) as provider:
            results = await provider.send(batch)
            assert all(r.outcome is SendOutcome.ACCEPTED for r in results)
            state = await smsc.ask("state")
        senders = [(s["source"], s["source_ton"], s["source_npi"]) for s in state["submits"]]
        assert sorted(senders) == sorted(
            [("MyBank", 5, 0), ("7111", 3, 0), ("380441234567", 1, 1), ("Kaskad", 5, 0)]
        )
        assert {s["validity"] for s in state["submits"]} == {"000000020000000R"}

    run(scenario())


def test_messages_no_smsc_could_take_fail_without_a_send(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        async with started(smsc, RecordingSink()) as provider:
            results = await provider.send(
                [sms(1, ""), sms(2, "hi", address="anna@bank.ua"), sms(3, "hi", sender="")]
            )
            state = await smsc.ask("summary")
        assert [(r.outcome, r.status) for r in results[:2]] == [
            (SendOutcome.FAILED, MessageStatus.REJECTED)
        ] * 2
        assert results[2].outcome is SendOutcome.ACCEPTED  # an empty sender means the default
        assert state["submitted"] == 1

    run(scenario())


# -- receipts ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "behaviour",
    [
        {"receipt_form": "tlv"},
        {"receipt_form": "text"},
        {"receipt_form": "text", "text_id": "decimal"},
        {"receipt_form": "both", "text_id": "decimal"},
    ],
)
def test_receipts_are_matched_to_their_message(smsc: SmscPeer, behaviour: dict[str, str]) -> None:
    async def scenario() -> None:
        await smsc.ask("configure", **behaviour)
        sink = RecordingSink()
        async with started(smsc, sink) as provider:
            results = await provider.send([sms(n, f"code {n}") for n in range(5)])
            await until_delivered(sink, results)
        for result in results:
            (report,) = sink.for_message(result.message_id)
            assert report.provider_message_id == result.provider_message_id
            assert (report.provider, report.provider_status) == ("smpp", "DELIVRD")

    run(scenario())


def test_failed_delivery_is_reported_with_its_error(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        await smsc.ask("route", destination="380509999999", stat="UNDELIV", err="012")
        sink = RecordingSink()
        async with started(smsc, sink) as provider:
            (result,) = await provider.send([sms(1, "hello", address="+380509999999")])
            await eventually(lambda: bool(sink.stored), "the receipt")
        (report,) = sink.stored
        assert (report.message_id, report.status) == ("msg-1", MessageStatus.UNDELIVERABLE)
        assert report.provider_status == "UNDELIV err:012"
        assert report.provider_message_id == result.provider_message_id

    run(scenario())


def test_receipt_before_the_submit_response_still_names_the_smsc_id(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        await smsc.ask("configure", early_receipts=True)
        sink = RecordingSink()
        async with started(smsc, sink) as provider:
            results = await provider.send([sms(n, f"code {n}") for n in range(5)])
            await eventually(lambda: len(sink.stored) == 5, "five receipts")
        reported = {r.provider_message_id: r for r in sink.stored}
        for result in results:
            assert result.outcome is SendOutcome.ACCEPTED
            report = reported[result.provider_message_id]
            assert report.status is MessageStatus.DELIVERED
            assert report.message_id in (None, result.message_id)

    run(scenario())


def test_deliver_sm_is_answered_only_once_stored(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        sink.gate.clear()
        async with started(smsc, sink) as provider:
            await provider.send([sms(1, "hello")])
            await eventually(lambda: sink.waiting == 1, "the sink to be asked")
            held = await smsc.ask("state")
            assert (held["receipts_sent"], held["deliver_resps"]) == (1, {})
            sink.gate.set()
            await eventually(lambda: len(sink.stored) == 1, "the receipt to be stored")

            async def answered() -> bool:
                return bool((await smsc.ask("state"))["deliver_resps"])

            await eventually(answered, "the deliver_sm_resp")
            state = await smsc.ask("state")
        assert list(state["deliver_resps"].values()) == [0]

    run(scenario())


def test_receipts_the_sink_could_not_store_are_refused_for_redelivery(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        sink.failures = 1
        async with started(smsc, sink) as provider:
            await provider.send([sms(1, "hello")])

            async def answered() -> bool:
                return bool((await smsc.ask("state"))["deliver_resps"])

            await eventually(answered, "the deliver_sm_resp")
            state = await smsc.ask("state")
        assert list(state["deliver_resps"].values()) == [0x64]  # ESME_RX_T_APPN
        assert sink.stored == []

    run(scenario())


def test_receipts_arriving_together_are_stored_in_one_call(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        sink.gate.clear()
        async with started(smsc, sink) as provider:
            results = await provider.send([sms(n, f"code {n}") for n in range(200)])
            assert all(r.outcome is SendOutcome.ACCEPTED for r in results)
            await eventually(lambda: sink.waiting == 1, "the first sink call")

            async def all_sent() -> bool:
                return int((await smsc.ask("summary"))["receipts_sent"]) == 200

            await eventually(all_sent, "every receipt to be sent")
            sink.gate.set()
            await until_delivered(sink, results)
        # one call for what came first, then at most a few for everything read meanwhile
        assert sink.calls <= 3

    run(scenario())


# -- SMSC refusals -------------------------------------------------------------------------
def test_permanent_error_fails_the_message_as_rejected(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        await smsc.ask("route", destination="380000000000", command_status=ESME_RINVDSTADR)
        async with started(smsc, RecordingSink()) as provider:
            bad, good = await provider.send(
                [sms(1, "hello", address="+380000000000"), sms(2, "hello")]
            )
        assert (bad.outcome, bad.status) == (SendOutcome.FAILED, MessageStatus.REJECTED)
        assert bad.error is not None
        assert "ESME_RINVDSTADR" in bad.error
        assert good.outcome is SendOutcome.ACCEPTED

    run(scenario())


def test_throttled_messages_come_back_to_retry_then_go(smsc: SmscPeer) -> None:
    batch = [sms(n, f"code {n}") for n in range(6)]

    async def scenario() -> None:
        await smsc.ask("throttle", count=3)
        async with started(smsc, RecordingSink()) as provider:
            first = await provider.send(batch)
            retry = [r for r in first if r.outcome is SendOutcome.RETRY]
            assert len(retry) == 3
            assert all(r.error and "THROTTLED" in r.error and r.retry_after for r in retry)
            again = await provider.send([m for m in batch if m.id in {r.message_id for r in retry}])
            assert all(r.outcome is SendOutcome.ACCEPTED for r in again)
            state = await smsc.ask("state")
        assert texts_received(state) == Counter(m.content["text"] for m in batch)

    run(scenario())


def test_dropped_connection_sends_in_flight_messages_back_and_reconnects(smsc: SmscPeer) -> None:
    batch = [sms(n, f"code {n}") for n in range(30)]

    async def scenario() -> None:
        await smsc.ask("drop", after=5)
        sink = RecordingSink()
        async with started(smsc, sink, window=10) as provider:
            first = await provider.send(batch)
            accepted = [r for r in first if r.outcome is SendOutcome.ACCEPTED]
            retry = [r for r in first if r.outcome is SendOutcome.RETRY]
            assert len(accepted) == 5
            assert len(retry) == 25
            assert all(r.error == "connection to the SMSC lost" for r in retry)
            await eventually(lambda: provider.bound == 1, "the provider to bind again")
            resend = [m for m in batch if m.id in {r.message_id for r in retry}]
            again = await provider.send(resend)
            assert all(r.outcome is SendOutcome.ACCEPTED for r in again)
            state = await smsc.ask("state")
        assert [b["accepted"] for b in state["binds"]] == [True, True]
        assert state["drops"] == 1
        # every message arrived exactly once: nothing lost, nothing twice
        assert texts_received(state) == Counter(m.content["text"] for m in batch)

    run(scenario())


def test_unanswered_submit_times_out_to_a_retry(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        await smsc.ask("configure", submit_delay=3.0)
        async with started(smsc, RecordingSink(), response_timeout=0.3) as provider:
            started_at = time.monotonic()
            (result,) = await provider.send([sms(1, "hello")])
            elapsed = time.monotonic() - started_at
        assert result.outcome is SendOutcome.RETRY
        assert result.error is not None
        assert "submit_sm_resp" in result.error
        assert elapsed < 2.0

    run(scenario())


# -- inbound -------------------------------------------------------------------------------
def test_mobile_originated_sms_becomes_an_inbound_message(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        async with started(smsc, sink):
            ukrainian = await smsc.ask(
                "mo", source="380501234567", destination="7111", text="Так, підтверджую",
                data_coding=8,
            )  # fmt: skip
            await smsc.ask("mo", source="380671112233", destination="7111", text="STOP €")
            await eventually(lambda: len(sink.mo) == 2, "two inbound messages")

            async def answered() -> bool:
                state = await smsc.ask("state")
                return str(ukrainian["sequence"]) in state["deliver_resps"]

            await eventually(answered, "the deliver_sm_resp")
        first, second = sink.mo
        assert (first.sender, first.recipient, first.text) == (
            "+380501234567",
            "7111",
            "Так, підтверджую",
        )
        assert (first.provider, first.channel) == ("smpp", Channel.SMS)
        assert (second.sender, second.text) == ("+380671112233", "STOP €")
        assert sink.stored == []

    run(scenario())


# -- binds ---------------------------------------------------------------------------------
def test_window_bounds_the_messages_in_flight(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        await smsc.ask("configure", submit_delay=0.05)
        async with started(smsc, RecordingSink(), window=4) as provider:
            results = await provider.send([sms(n, f"code {n}") for n in range(40)])
            state = await smsc.ask("summary")
        assert all(r.outcome is SendOutcome.ACCEPTED for r in results)
        assert state["max_inflight"] == 4  # filled, never overfilled

    run(scenario())


def test_messages_are_spread_over_several_binds(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        async with started(smsc, sink, binds=3) as provider:
            assert provider.bound == 3
            results = await provider.send([sms(n, f"code {n}") for n in range(30)])
            await until_delivered(sink, results)
            state = await smsc.ask("state")
        assert state["bound"] == ["transceiver"] * 3
        per_session = Counter(s["session"] for s in state["submits"])
        assert sorted(per_session.values()) == [10, 10, 10]

    run(scenario())


def test_transmitter_and_receiver_binds(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        sink = RecordingSink()
        async with started(smsc, sink, bind_mode="transmitter_receiver") as provider:
            assert provider.bound == 2
            results = await provider.send([sms(n, f"code {n}") for n in range(3)])
            await until_delivered(sink, results)
            await smsc.ask("mo", source="380501234567", destination="7111", text="YES")
            await eventually(lambda: len(sink.mo) == 1, "the inbound message")
            state = await smsc.ask("state")
        assert sorted(b["mode"] for b in state["binds"]) == ["receiver", "transmitter"]
        # receipts come on the receiver, responses on the transmitter: either may be first
        assert {r.provider_message_id for r in sink.stored} == {
            r.provider_message_id for r in results
        }

    run(scenario())


def test_enquire_link_keeps_an_idle_bind_alive(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        await smsc.ask("configure", inactivity=0.5)
        async with started(smsc, RecordingSink(), enquire_link_seconds=0.1) as provider:

            async def probed() -> bool:
                return int((await smsc.ask("summary"))["enquire_links"]) >= 12

            await eventually(probed, "a dozen enquire_link")
            state = await smsc.ask("summary")
            assert provider.bound == 1
        assert (state["drops"], len(state["binds"])) == (0, 1)

    run(scenario())


def test_idle_bind_without_enquire_link_is_dropped_and_rebound(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        await smsc.ask("configure", inactivity=0.3)
        async with started(smsc, RecordingSink(), enquire_link_seconds=30) as provider:

            async def rebound() -> bool:
                state = await smsc.ask("summary")
                return state["drops"] >= 1 and len(state["binds"]) >= 2

            await eventually(rebound, "the SMSC to drop the idle bind and the provider to rebind")
            await eventually(lambda: provider.bound == 1, "the new bind")
            (result,) = await provider.send([sms(1, "still here")])
        assert result.outcome is SendOutcome.ACCEPTED

    run(scenario())


def test_wrong_password_does_not_stop_start(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        async with started(smsc, RecordingSink(), password="wrong") as provider:
            assert provider.bound == 0
            (result,) = await provider.send([sms(1, "hello")])

            async def retried() -> bool:
                return len((await smsc.ask("summary"))["binds"]) >= 2

            await eventually(retried, "a second bind attempt")
        assert (result.outcome, result.error) == (SendOutcome.RETRY, "no bind to the SMSC")
        assert result.retry_after is not None

    run(scenario())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_smsc_down_at_start_is_bound_once_it_is_up() -> None:
    port = free_port()
    absent = SmscPeer(smpp_port=port, control_port=0, pid=0, system_id="kaskad", password="secret")

    async def scenario() -> None:
        sink = RecordingSink()
        async with started(absent, sink) as provider:
            assert provider.bound == 0
            with start_smsc(port=port) as peer:
                await eventually(lambda: provider.bound == 1, "the bind after the SMSC started")
                (result,) = await provider.send([sms(1, "hello")])
                assert result.outcome is SendOutcome.ACCEPTED
                await until_delivered(sink, [result])
                state = await peer.ask("summary")
        assert state["binds"] == [{"system_id": "kaskad", "mode": "transceiver", "accepted": True}]

    run(scenario())


def test_stop_unbinds_and_is_idempotent(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        provider = SmppProvider("smpp", settings(smsc))
        await provider.start(RecordingSink())
        assert provider.bound == 1
        await provider.stop()
        await provider.stop()
        assert provider.bound == 0
        (result,) = await provider.send([sms(1, "after stop")])
        assert result.outcome is SendOutcome.RETRY
        state = await smsc.ask("summary")
        assert (state["unbinds"], state["bound"]) == (1, [])

    run(scenario())


def test_throughput_limit_spaces_the_submits(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        async with started(smsc, RecordingSink(), throughput=50) as provider:
            started_at = time.monotonic()
            results = await provider.send([sms(n, f"code {n}") for n in range(26)])
            elapsed = time.monotonic() - started_at
        assert all(r.outcome is SendOutcome.ACCEPTED for r in results)
        assert elapsed >= 0.45  # 25 gaps of 20 ms, less a little for the clock

    run(scenario())


# -- what the SMSC asks of kaskad ----------------------------------------------------------
ENQUIRE_LINK, UNBIND, DATA_SM, RESPONSE = 0x15, 0x06, 0x103, 0x80000000


async def responses(peer: SmscPeer) -> list[tuple[int, int]]:
    return [(command, status) for command, status in (await peer.ask("summary"))["responses"]]


def test_smsc_requests_are_answered(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        async with started(smsc, RecordingSink()):
            await smsc.ask("send", command_id=ENQUIRE_LINK)
            await smsc.ask("send", command_id=DATA_SM, body="00")

            async def answered() -> bool:
                return len(await responses(smsc)) == 2

            await eventually(answered, "two responses")
            seen = await responses(smsc)
        assert sorted(seen) == [
            (RESPONSE, 0x03),
            (ENQUIRE_LINK | RESPONSE, 0),
        ]  # generic_nack first

    run(scenario())


def test_unbind_from_the_smsc_is_answered_and_the_provider_binds_again(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        async with started(smsc, RecordingSink()) as provider:
            await smsc.ask("send", command_id=UNBIND)

            async def rebound() -> bool:
                return len((await smsc.ask("summary"))["binds"]) == 2

            await eventually(rebound, "a second bind")
            await eventually(lambda: provider.bound == 1, "the provider to be bound")
            (result,) = await provider.send([sms(1, "after the unbind")])
            seen = await responses(smsc)
        assert seen == [(UNBIND | RESPONSE, 0)]
        assert result.outcome is SendOutcome.ACCEPTED

    run(scenario())


def test_garbage_from_the_smsc_resets_the_connection(smsc: SmscPeer) -> None:
    async def scenario() -> None:
        async with started(smsc, RecordingSink()) as provider:
            await smsc.ask("raw", hex="00000004" + "00" * 12)  # command_length 4: impossible

            async def rebound() -> bool:
                return len((await smsc.ask("summary"))["binds"]) == 2

            await eventually(rebound, "a new connection")
            await eventually(lambda: provider.bound == 1, "the provider to be bound")
            (result,) = await provider.send([sms(1, "after the garbage")])
        assert result.outcome is SendOutcome.ACCEPTED

    run(scenario())
