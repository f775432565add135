"""The SMPP 3.4 SMS provider: kaskad as an ESME, on its own codec over asyncio.

Throughput on SMPP comes from the window, not from the connection count: ``submit_sm`` PDUs
are written back to back up to ``window`` unanswered ones, and responses are matched by
sequence number whatever order they come in. ``TCP_NODELAY`` is set because otherwise
Nagle's algorithm holds a small PDU until the SMSC's delayed ACK (about 40 ms) whenever
receipts share the socket, and the whole window waits with it.
(docs/smpp-library-choice.md says why this codec is kaskad's own.)

Durability: a ``deliver_sm`` (receipt or MO) is answered only after the ReportSink has
stored it. Everything already read off the socket goes to the sink in one call, so a burst
of receipts costs one database transaction, not one each. If the sink fails, the SMSC gets
a temporary error and delivers again.

Sending: a batch is spread over the bound links; each message's parts go over one link, in
order. The result of a message follows its worst part: a permanent error fails it, a
throttle, a lost connection or a timeout asks for a retry (the whole message is sent again:
SMPP has no way to resend a single part under the same reference), otherwise it is
accepted under the last part's SMSC id (receipts.py explains how the other parts' receipts
still reach the message).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo

from kaskad.adapters.channels.sms import pdus
from kaskad.adapters.channels.sms.inbound import read_inbound
from kaskad.adapters.channels.sms.pdus import DeliverSm, Frame
from kaskad.adapters.channels.sms.receipts import Correlator, Tracked, is_receipt, read_receipt
from kaskad.adapters.channels.sms.submit import (
    Address,
    InvalidMessage,
    LongMessages,
    SubmitTemplate,
    destination_address,
    relative_validity,
    sender_address,
)
from kaskad.adapters.channels.window import PriorityWindow
from kaskad.adapters.logs import mask
from kaskad.domain.providers import (
    InboundMessage,
    OutgoingMessage,
    ReportSink,
    SendOutcome,
    SendResult,
    StatusReport,
)
from kaskad.domain.vocabulary import Channel, MessageStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

BindMode = Literal["transceiver", "transmitter_receiver"]
Role = Literal["transceiver", "transmitter", "receiver"]

RETRY: Final = SendOutcome.RETRY
FAILED: Final = SendOutcome.FAILED
# command_status of a submit_sm_resp (or generic_nack) → what kaskad does about it. Codes
# not listed fail the message (MessageStatus.FAILED): a resend of what the SMSC refused for
# a reason kaskad cannot read would most likely be refused again, and the cascade moves on.
SMPP_ERRORS: Final[Mapping[int, tuple[SendOutcome, MessageStatus, str]]] = {
    0x01: (FAILED, MessageStatus.FAILED, "ESME_RINVMSGLEN: message length is invalid"),
    0x02: (FAILED, MessageStatus.FAILED, "ESME_RINVCMDLEN: command length is invalid"),
    0x03: (FAILED, MessageStatus.FAILED, "ESME_RINVCMDID: invalid command id"),
    0x04: (RETRY, MessageStatus.FAILED, "ESME_RINVBNDSTS: incorrect bind status"),
    0x08: (RETRY, MessageStatus.FAILED, "ESME_RSYSERR: SMSC system error"),
    0x0A: (FAILED, MessageStatus.REJECTED, "ESME_RINVSRCADR: invalid source address"),
    0x0B: (FAILED, MessageStatus.REJECTED, "ESME_RINVDSTADR: invalid destination address"),
    0x0D: (RETRY, MessageStatus.FAILED, "ESME_RBINDFAIL: bind failed"),
    0x14: (RETRY, MessageStatus.FAILED, "ESME_RMSGQFUL: message queue full"),
    0x15: (FAILED, MessageStatus.FAILED, "ESME_RINVSERTYP: invalid service type"),
    0x43: (FAILED, MessageStatus.FAILED, "ESME_RINVESMCLASS: invalid esm_class"),
    0x45: (FAILED, MessageStatus.FAILED, "ESME_RSUBMITFAIL: submit_sm failed"),
    0x48: (FAILED, MessageStatus.REJECTED, "ESME_RINVSRCTON: invalid source TON"),
    0x49: (FAILED, MessageStatus.REJECTED, "ESME_RINVSRCNPI: invalid source NPI"),
    0x50: (FAILED, MessageStatus.REJECTED, "ESME_RINVDSTTON: invalid destination TON"),
    0x51: (FAILED, MessageStatus.REJECTED, "ESME_RINVDSTNPI: invalid destination NPI"),
    0x58: (RETRY, MessageStatus.FAILED, "ESME_RTHROTTLED: throttling error"),
    0x61: (FAILED, MessageStatus.FAILED, "ESME_RINVSCHED: invalid scheduled delivery time"),
    0x62: (FAILED, MessageStatus.FAILED, "ESME_RINVEXPIRY: invalid validity period"),
    0x64: (RETRY, MessageStatus.FAILED, "ESME_RX_T_APPN: temporary application error"),
    0x65: (FAILED, MessageStatus.REJECTED, "ESME_RX_P_APPN: permanent application error"),
    0x66: (FAILED, MessageStatus.REJECTED, "ESME_RX_R_APPN: message rejected"),
    0xC0: (FAILED, MessageStatus.FAILED, "ESME_RINVOPTPARSTREAM: bad optional parameters"),
    0xC1: (FAILED, MessageStatus.FAILED, "ESME_ROPTPARNOTALLWD: optional parameter refused"),
    0xC2: (FAILED, MessageStatus.FAILED, "ESME_RINVPARLEN: invalid parameter length"),
    0xC3: (FAILED, MessageStatus.FAILED, "ESME_RMISSINGOPTPARAM: optional parameter missing"),
    0xC4: (FAILED, MessageStatus.FAILED, "ESME_RINVOPTPARAMVAL: invalid optional parameter"),
    0xFE: (FAILED, MessageStatus.UNDELIVERABLE, "ESME_RDELIVERYFAILURE: delivery failure"),
    0xFF: (FAILED, MessageStatus.FAILED, "ESME_RUNKNOWNERR: unknown error"),
}
# Errors after which the SMSC wants us to slow down, not just to resend later.
BACK_OFF: Final = frozenset({0x14, 0x58})
_BIND_COMMAND: Final[Mapping[Role, int]] = {
    "transceiver": pdus.BIND_TRANSCEIVER,
    "transmitter": pdus.BIND_TRANSMITTER,
    "receiver": pdus.BIND_RECEIVER,
}


@dataclass(frozen=True, slots=True)
class SmppConfig:
    """One SMSC account. ``throughput`` is submit_sm PDUs a second per bind (0: no limit),
    counting each part of a long message, because that is what SMSCs count.
    ``receipt_timezone`` is the zone of the dates in text receipts (SMPP leaves it to the
    SMSC); ``receipt_memory`` bounds how many SMSC ids are remembered for receipts.
    """

    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    bind_mode: BindMode = "transceiver"
    binds: int = 1
    window: int = 10
    throughput: float = 0.0
    enquire_link_seconds: float = 30.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    response_timeout: float = 10.0
    source_addr: str = "kaskad"
    validity: timedelta | None = None
    long_messages: LongMessages = "udh"
    registered_delivery: bool = True
    service_type: str = ""
    throttle_pause: float = 1.0
    receipt_timezone: str = "UTC"
    receipt_memory: int = 500_000

    def __post_init__(self) -> None:
        problems = [
            text
            for broken, text in (
                (self.bind_mode not in ("transceiver", "transmitter_receiver"), "bind_mode"),
                (self.long_messages not in ("udh", "sar", "payload"), "long_messages"),
                (self.binds < 1, "binds must be at least 1"),
                (self.window < 1, "window must be at least 1"),
                (self.throughput < 0, "throughput must not be negative"),
                (len(self.system_id) > 15, "system_id is at most 15 characters"),
                (len(self.password) > 8, "password is at most 8 characters"),
                (len(self.system_type) > 12, "system_type is at most 12 characters"),
                (min(self.enquire_link_seconds, self.response_timeout) <= 0, "timers"),
                (not 0 < self.reconnect_min <= self.reconnect_max, "reconnect_min/max"),
                (self.receipt_memory < 1, "receipt_memory must be at least 1"),
            )
            if broken
        ]
        if problems:
            raise ValueError("invalid SMPP settings: " + "; ".join(problems))
        relative_validity(self.validity)  # raises on a validity SMPP cannot express
        sender_address(self.source_addr)


class Clock(Protocol):
    """Where "now" comes from: the time a receipt without a done date, or an MO, is stamped."""

    def now(self) -> datetime: ...


class SmppProvider:
    """SMS over SMPP 3.4 to one SMSC account, over ``config.binds`` binds.

    ``start`` binds (and keeps rebinding in the background; an SMSC that is down is not an
    error), ``send`` submits a batch, ``stop`` unbinds for good: a stopped provider stays
    stopped.
    """

    channels = frozenset({Channel.SMS})

    def __init__(self, name: str, config: SmppConfig, *, clock: Clock | None = None) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._template = SubmitTemplate(
            service_type=config.service_type,
            validity=config.validity,
            registered_delivery=config.registered_delivery,
            long_messages=config.long_messages,
        )
        self._default_source = sender_address(config.source_addr)
        self._zone: tzinfo = (
            UTC if config.receipt_timezone == "UTC" else ZoneInfo(config.receipt_timezone)
        )
        self._correlator = Correlator(name, config.receipt_memory)
        self._references = itertools.count(random.randrange(256))
        self._links: list[_Link] = []
        self._turn = 0
        self._sink: ReportSink | None = None
        self._stopped = False

    def __repr__(self) -> str:
        return f"SmppProvider({self.name!r}, {self.config.host}:{self.config.port})"

    @property
    def bound(self) -> int:
        """How many connections are bound right now (two per bind in transmitter_receiver)."""
        return sum(1 for link in self._links if link.session is not None)

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    async def start(self, sink: ReportSink) -> None:
        """Connect and bind every link; returns once each has tried, bound or not."""
        if self._links:
            return
        self._sink = sink
        roles: tuple[Role, ...] = (
            ("transceiver",)
            if self.config.bind_mode == "transceiver"
            else ("transmitter", "receiver")
        )
        self._links = [
            _Link(self, number, role) for number in range(self.config.binds) for role in roles
        ]
        for link in self._links:
            link.start()
        await asyncio.gather(*(link.attempted.wait() for link in self._links))

    async def stop(self) -> None:
        """Unbind and close every link; later calls do nothing."""
        if self._stopped:
            return
        self._stopped = True
        await asyncio.gather(*(link.stop() for link in self._links))

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        results: list[SendResult | None] = [None] * len(batch)
        links = [link for link in self._links if link.can_submit]
        plans: list[tuple[int, OutgoingMessage, list[bytes]]] = []
        for position, message in enumerate(batch):
            try:
                plans.append((position, message, self._bodies(message)))
            except InvalidMessage as exc:
                log.info("sms %s to %s refused: %s", message.id, mask(message.address), exc)
                results[position] = SendResult.failed(message.id, str(exc), MessageStatus.REJECTED)
        if plans and not links:
            hint = min((link.delay for link in self._links), default=self.config.reconnect_min)
            for position, message, _ in plans:
                results[position] = SendResult.retry(message.id, "no bind to the SMSC", hint)
        elif plans:
            shares: list[list[tuple[int, OutgoingMessage, list[bytes]]]] = [[] for _ in links]
            for offset, plan in enumerate(plans):
                shares[(self._turn + offset) % len(links)].append(plan)
            self._turn += len(plans)
            await asyncio.gather(
                *(
                    self._send_share(link, share, results)
                    for link, share in zip(links, shares, strict=True)
                )
            )
        done = [result for result in results if result is not None]
        assert len(done) == len(batch), "a message without a result"
        return done

    def _bodies(self, message: OutgoingMessage) -> list[bytes]:
        text = message.content.get("text")
        if not isinstance(text, str) or not text:
            raise InvalidMessage("sms content has no text")
        sender = message.content.get("sender")
        source: Address = sender_address(str(sender)) if sender else self._default_source
        destination = destination_address(message.address)
        return self._template.bodies(source, destination, text, next(self._references))

    async def _send_share(
        self,
        link: _Link,
        share: list[tuple[int, OutgoingMessage, list[bytes]]],
        results: list[SendResult | None],
    ) -> None:
        """Write one link's messages through its window; then collect their answers."""
        session = link.session
        written: list[tuple[int, OutgoingMessage, Tracked, list[asyncio.Future[Frame]]]] = []
        try:
            for position, message, bodies in share:
                if session is None or session.closed:
                    results[position] = SendResult.retry(
                        message.id, "connection to the SMSC lost", link.delay
                    )
                    continue
                tracked = Tracked(message.id, len(bodies))
                parts: list[asyncio.Future[Frame]] = []
                written.append((position, message, tracked, parts))
                for index, body in enumerate(bodies):
                    await link.pacer.wait()
                    try:
                        parts.append(await session.submit(body, tracked, index, message.is_urgent))
                    except ConnectionError:
                        parts.append(_lost())
                        break
            for position, message, tracked, parts in written:
                results[position] = await self._result(link, message, tracked, parts)
        except asyncio.CancelledError:
            # Nobody will read these answers now; a late one finds its future cancelled.
            for *_, parts in written:
                for part in parts:
                    part.cancel()
            raise

    async def _result(
        self,
        link: _Link,
        message: OutgoingMessage,
        tracked: Tracked,
        parts: list[asyncio.Future[Frame]],
    ) -> SendResult:
        worst: SendResult | None = None
        for part in parts:
            try:
                frame = await part
            except ConnectionError:
                outcome = SendResult.retry(message.id, "connection to the SMSC lost", link.delay)
            except TimeoutError:
                outcome = SendResult.retry(
                    message.id,
                    f"no submit_sm_resp in {self.config.response_timeout}s",
                    self.config.reconnect_min,
                )
            else:
                if frame.status == pdus.ESME_ROK:
                    continue
                outcome = self._refused(link, message, frame.status)
            if worst is None or worst.outcome is SendOutcome.RETRY:
                worst = outcome
        if worst is None and len(parts) == len(tracked.ids):
            return SendResult.accepted(message.id, tracked.reported_id or "")
        self._correlator.forget(tracked)
        return worst or SendResult.retry(message.id, "connection to the SMSC lost", link.delay)

    def _refused(self, link: _Link, message: OutgoingMessage, status: int) -> SendResult:
        outcome, final, text = SMPP_ERRORS.get(
            status, (FAILED, MessageStatus.FAILED, f"command_status 0x{status:08x}")
        )
        if status in BACK_OFF:
            link.pacer.pause(self.config.throttle_pause)
        if outcome is SendOutcome.RETRY:
            return SendResult.retry(message.id, text, self.config.throttle_pause)
        log.info("sms %s to %s refused by the SMSC: %s", message.id, mask(message.address), text)
        return SendResult.failed(message.id, text, final)

    async def _store(self, deliveries: Sequence[DeliverSm]) -> list[int]:
        """Hand receipts and MO to the sink; the command_status to answer each one with."""
        assert self._sink is not None, "deliveries before start()"
        now = self._now()
        kinds: list[str] = []
        reports: list[StatusReport] = []
        inbound: list[InboundMessage] = []
        for deliver in deliveries:
            if is_receipt(deliver.esm_class):
                report = self._correlator.report(read_receipt(deliver, self._zone), now)
                if report is None:
                    log.warning("%s: a receipt without a message id, acknowledged", self.name)
                    kinds.append("ignored")
                    continue
                reports.append(report)
                kinds.append("report")
            elif (deliver.esm_class & 0x3C) == 0:
                inbound.append(read_inbound(deliver, self.name, now))
                kinds.append("inbound")
            else:
                kinds.append("ignored")  # an SME acknowledgement: nothing kaskad keeps
        stored = {
            "ignored": True,
            "report": await self._hand(self._sink.reports, reports),
            "inbound": await self._hand(self._sink.inbound, inbound),
        }
        return [pdus.ESME_ROK if stored[kind] else pdus.ESME_RX_T_APPN for kind in kinds]

    async def _hand(self, store: Callable[[Sequence[T]], Awaitable[None]], items: list[T]) -> bool:
        """Whether the sink stored ``items`` (trivially so when there are none)."""
        if not items:
            return True
        try:
            await store(items)
        except Exception:  # whatever the sink's trouble, the SMSC delivers again
            log.exception("%s: could not store %d deliveries", self.name, len(items))
            return False
        return True


def _lost() -> asyncio.Future[Frame]:
    future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
    future.set_exception(ConnectionError("connection to the SMSC lost"))
    return future


class _Pacer:
    """Spaces a bind's submit_sm PDUs to its throughput, and holds them when throttled."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        at = max(self._next, now)
        self._next = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, asyncio.get_running_loop().time() + seconds)


class BindRefused(ConnectionError):
    """The SMSC answered the bind with an error (wrong password, too many binds…)."""


class _Link:
    """One bind kept alive: connect, bind, and after any loss reconnect with backoff."""

    def __init__(self, provider: SmppProvider, number: int, role: Role) -> None:
        self.provider = provider
        self.config = provider.config
        self.role: Role = role
        self.label = f"{provider.name}#{number}/{role}"
        self.session: _Session | None = None
        self.pacer = _Pacer(self.config.throughput)
        self.attempted = asyncio.Event()
        self.delay = self.config.reconnect_min
        self._task: asyncio.Task[None] | None = None

    @property
    def can_submit(self) -> bool:
        return self.role != "receiver" and self.session is not None and not self.session.closed

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"smpp {self.label}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        session, self.session = self.session, None
        if session is not None:
            await session.unbind()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            try:
                session = await self._open()
            except (OSError, TimeoutError, pdus.PduError) as exc:
                failures += 1
                self._backoff(failures)
                log.warning("%s: cannot bind (%s), next try in %.1fs", self.label, exc, self.delay)
                self.attempted.set()
                await asyncio.sleep(self.delay)
                continue
            self.session = session
            self.attempted.set()
            log.info("%s: bound to %s:%d", self.label, self.config.host, self.config.port)
            bound_at = loop.time()
            await asyncio.shield(session.lost)  # cancelling this task must not cancel that
            self.session = None
            # A bind that lived long starts over; one the SMSC keeps dropping backs off further.
            steady = loop.time() - bound_at >= self.config.reconnect_max
            failures = 1 if steady else failures + 1
            self._backoff(failures)
            log.warning("%s: connection lost, rebinding in %.1fs", self.label, self.delay)
            await asyncio.sleep(self.delay)

    def _backoff(self, failures: int) -> None:
        """Exponential, capped, with jitter so many binds do not knock at the same instant."""
        base = min(self.config.reconnect_max, self.config.reconnect_min * 2 ** (failures - 1))
        self.delay = base * random.uniform(0.8, 1.0)

    async def _open(self) -> _Session:
        loop = asyncio.get_running_loop()
        _, session = await asyncio.wait_for(
            loop.create_connection(lambda: _Session(self), self.config.host, self.config.port),
            self.config.response_timeout,
        )
        command = _BIND_COMMAND[self.role]
        body = pdus.bind_body(self.config.system_id, self.config.password, self.config.system_type)
        try:
            frame = await session.request(command, body)
        except BaseException:
            session.abort()
            raise
        if frame.command_id != command | pdus.RESPONSE or frame.status != pdus.ESME_ROK:
            session.abort()
            raise BindRefused(f"bind answered with command_status 0x{frame.status:08x}")
        return session


class _Pending:
    __slots__ = ("deadline", "future", "index", "tracked")

    def __init__(
        self, future: asyncio.Future[Frame], deadline: float, tracked: Tracked | None, index: int
    ) -> None:
        self.future = future
        self.deadline = deadline
        self.tracked = tracked
        self.index = index


class _Session(asyncio.Protocol):
    """One bound TCP connection: framing, the window, keep-alive and deliver_sm handling."""

    def __init__(self, link: _Link) -> None:
        self._link = link
        self._provider = link.provider
        self._config = link.config
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending: dict[int, _Pending] = {}
        self._sequence = 0
        self._window = PriorityWindow(self._config.window)
        self._incoming: list[tuple[int, DeliverSm]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._enquiry: asyncio.Future[Frame] | None = None
        self.last_read = self._loop.time()
        self.lost: asyncio.Future[None] = self._loop.create_future()
        self.closed = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._watcher = self._loop.create_task(self._watch())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        pending, self._pending = self._pending, {}
        for waiting in pending.values():
            if not waiting.future.done():
                waiting.future.set_exception(ConnectionError("connection to the SMSC lost"))
        for _ in range(self._config.window):  # wake whoever waits for a slot: it is over
            self._window.release()
        if self._watcher is not None:
            self._watcher.cancel()
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.last_read = self._loop.time()
        self._buffer += data
        try:
            frames = pdus.take_frames(self._buffer)
        except pdus.PduError as exc:
            log.error("%s: unreadable data from the SMSC (%s), reconnecting", self._link.label, exc)
            self.abort()
            return
        for frame in frames:
            self._dispatch(frame)
        if self._incoming and (self._flusher is None or self._flusher.done()):
            self._flusher = self._loop.create_task(self._flush())

    # -- requests --------------------------------------------------------------------------
    def request(
        self, command_id: int, body: bytes, tracked: Tracked | None = None, index: int = 0
    ) -> asyncio.Future[Frame]:
        """Write a request; its future gets the response, or a timeout, or the loss."""
        future: asyncio.Future[Frame] = self._loop.create_future()
        if self.closed or self._transport is None:
            future.set_exception(ConnectionError("connection to the SMSC lost"))
            return future
        self._sequence = self._sequence % pdus.MAX_SEQUENCE + 1
        deadline = self._loop.time() + self._config.response_timeout
        self._pending[self._sequence] = _Pending(future, deadline, tracked, index)
        self._transport.write(pdus.pdu(command_id, self._sequence, body))
        return future

    async def submit(
        self, body: bytes, tracked: Tracked, index: int, urgent: bool = False
    ) -> asyncio.Future[Frame]:
        """Take a window slot (urgent messages first) and write one submit_sm; the slot
        frees when it is answered."""
        await self._window.acquire(urgent)
        if self.closed:
            self._window.release()  # pass the wake-up on: every waiter learns it is over
            raise ConnectionError("connection to the SMSC lost")
        return self.request(pdus.SUBMIT_SM, body, tracked, index)

    async def unbind(self) -> None:
        """Say goodbye politely, but never wait long for the answer when stopping."""
        if not self.closed:
            answer = self.request(pdus.UNBIND, b"")
            answer.add_done_callback(_consume)
            await asyncio.wait([answer], timeout=min(self._config.response_timeout, 2.0))
        self.abort()
        await self.lost
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    def abort(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()

    # -- what the SMSC sends ---------------------------------------------------------------
    def _dispatch(self, frame: Frame) -> None:
        command_id = frame.command_id
        if command_id & pdus.RESPONSE:
            self._answered(frame)
        elif command_id == pdus.DELIVER_SM:
            try:
                self._incoming.append((frame.sequence, pdus.parse_deliver_sm(frame.body)))
            except pdus.PduError as exc:
                log.error("%s: unreadable deliver_sm (%s)", self._link.label, exc)
                self._write(pdus.GENERIC_NACK, frame.sequence, pdus.ESME_RINVCMDLEN)
        elif command_id == pdus.ENQUIRE_LINK:
            self._write(pdus.ENQUIRE_LINK | pdus.RESPONSE, frame.sequence)
        elif command_id == pdus.UNBIND:
            log.info("%s: the SMSC unbinds", self._link.label)
            self._write(pdus.UNBIND | pdus.RESPONSE, frame.sequence)
            self.abort()
        else:
            self._write(pdus.GENERIC_NACK, frame.sequence, pdus.ESME_RINVCMDID)

    def _answered(self, frame: Frame) -> None:
        waiting = self._pending.pop(frame.sequence, None)
        if waiting is None:
            log.debug("%s: response to no request (seq %d)", self._link.label, frame.sequence)
            return
        if waiting.tracked is not None:
            self._window.release()
            if frame.status == pdus.ESME_ROK:
                # Named now, not when the sender wakes up: a receipt read in the same chunk
                # must already find its message.
                smsc_id = pdus.message_id_of(frame.body)
                self._provider._correlator.accepted(waiting.tracked, waiting.index, smsc_id)
        if not waiting.future.done():
            waiting.future.set_result(frame)

    def _write(self, command_id: int, sequence: int, status: int = pdus.ESME_ROK) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(pdus.pdu(command_id, sequence, b"", status))

    async def _flush(self) -> None:
        """Store what arrived (all of it in one sink call), then answer every deliver_sm."""
        while self._incoming:
            batch, self._incoming = self._incoming, []
            statuses = await self._provider._store([deliver for _, deliver in batch])
            answers = b"".join(
                pdus.pdu(pdus.DELIVER_SM | pdus.RESPONSE, sequence, b"\x00", status)
                for (sequence, _), status in zip(batch, statuses, strict=True)
            )
            if self._transport is not None and not self.closed:
                self._transport.write(answers)

    async def _watch(self) -> None:
        """Expire unanswered requests and probe an idle link with enquire_link."""
        interval = self._config.enquire_link_seconds
        tick = min(0.25, self._config.response_timeout / 4, interval / 4)
        while not self.closed:
            await asyncio.sleep(tick)
            now = self._loop.time()
            self._expire(now)
            if self._enquiry is None and now - self.last_read >= interval:
                self._enquiry = self.request(pdus.ENQUIRE_LINK, b"")
                self._enquiry.add_done_callback(self._enquired)

    def _expire(self, now: float) -> None:
        while self._pending:
            sequence, waiting = next(iter(self._pending.items()))
            if waiting.deadline > now:
                return
            del self._pending[sequence]
            if waiting.tracked is not None:
                self._window.release()
            if not waiting.future.done():
                waiting.future.set_exception(TimeoutError(f"no answer to seq {sequence}"))

    def _enquired(self, answer: asyncio.Future[Frame]) -> None:
        self._enquiry = None
        if not answer.cancelled() and isinstance(answer.exception(), TimeoutError):
            log.warning("%s: enquire_link unanswered, reconnecting", self._link.label)
            self.abort()


def _consume(future: asyncio.Future[Frame]) -> None:
    """Mark an outcome nobody awaits as seen, so asyncio does not report it as lost."""
    if not future.cancelled():
        future.exception()
