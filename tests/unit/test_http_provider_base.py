"""The shared part of HTTP providers: how answers are read, quick retries, Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from kaskad.adapters.channels.http.base import (
    HttpOptions,
    HttpProvider,
    read_failure,
    retry_after,
    snippet,
)
from kaskad.adapters.channels.http.signatures import hmac_base64, hmac_hex, require
from kaskad.domain.providers import (
    BadSignature,
    Callback,
    OutgoingMessage,
    ParsedReports,
    PermanentSendError,
    SendOutcome,
    SendResult,
    StatusReport,
    WebhookError,
    WebhookRequest,
)
from kaskad.domain.vocabulary import Category, Channel, MessageStatus

MESSAGE = OutgoingMessage(
    id="msg_1",
    notification_id="ntf_1",
    contact_id="cnt_1",
    channel=Channel.PUSH,
    provider="p",
    address="token",
    content={"title": "Hi"},
    category=Category.SERVICE,
    attempt=1,
)


def answer(code: int, body: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(code, text=body, headers=headers or {})


@pytest.mark.parametrize(
    ("code", "outcome", "status"),
    [
        (429, SendOutcome.RETRY, MessageStatus.SUBMITTED),
        (500, SendOutcome.RETRY, MessageStatus.SUBMITTED),
        (502, SendOutcome.RETRY, MessageStatus.SUBMITTED),
        (503, SendOutcome.RETRY, MessageStatus.SUBMITTED),
        (504, SendOutcome.RETRY, MessageStatus.SUBMITTED),
        (408, SendOutcome.RETRY, MessageStatus.SUBMITTED),
        (401, SendOutcome.RETRY, MessageStatus.SUBMITTED),
        (403, SendOutcome.RETRY, MessageStatus.SUBMITTED),
        (400, SendOutcome.FAILED, MessageStatus.REJECTED),
        (422, SendOutcome.FAILED, MessageStatus.REJECTED),
        (404, SendOutcome.FAILED, MessageStatus.FAILED),
        (410, SendOutcome.FAILED, MessageStatus.FAILED),
    ],
)
def test_a_refusal_is_read_by_its_status(
    code: int, outcome: SendOutcome, status: MessageStatus
) -> None:
    result = read_failure(MESSAGE, answer(code, '{"error": "x"}'))
    assert (result.outcome, result.status) == (outcome, status)
    assert result.error is not None
    assert result.error.startswith(f"HTTP {code}")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("7", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("soon", None),
        ("Tue, 24 Nov 2026 12:00:30 GMT", 30.0),
        ("Tue, 24 Nov 2026 11:00:00 GMT", 0.0),
    ],
)
def test_retry_after_reads_seconds_and_dates(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()
    headers = {"retry-after": header} if header is not None else {}
    assert retry_after(answer(429, headers=headers), now=now) == expected


def test_snippet_cuts_long_bodies_to_one_line() -> None:
    assert snippet(answer(500, "a\nb")) == "a b"
    assert snippet(answer(500, "x" * 300), limit=10) == "x" * 10 + "…"


class Scripted(HttpProvider):
    """A provider whose gateway answers from a script, one answer per request."""

    channels = frozenset({Channel.PUSH})

    def __init__(self, script: list[Callable[[httpx.Request], httpx.Response]], **kw: float):
        self.requests: list[httpx.Request] = []
        self.slept: list[float] = []
        steps = iter(script)

        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return next(steps)(request)

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        options = HttpOptions(base_url="http://gateway.test", retries=2, backoff=0.1, **kw)
        super().__init__("scripted", options, sleep=sleep, transport=httpx.MockTransport(handle))

    async def call(self, client: httpx.AsyncClient, message: OutgoingMessage) -> httpx.Response:
        if message.content.get("refuse"):
            raise PermanentSendError("no title")
        return await client.post("/send", json={"ref": message.id})

    def accepted(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
        return SendResult.accepted(message.id, response.json()["id"])


def ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": "gw-1"})


def busy(seconds: str | None = None) -> Callable[[httpx.Request], httpx.Response]:
    headers = {"retry-after": seconds} if seconds else {}
    return lambda _: httpx.Response(429, headers=headers)


def dropped(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def slow(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


def send(provider: Scripted, message: OutgoingMessage = MESSAGE) -> SendResult:
    async def go() -> SendResult:
        try:
            return (await provider.send([message]))[0]
        finally:
            await provider.stop()

    return asyncio.run(go())


def test_quick_retries_back_off_then_succeed() -> None:
    provider = Scripted([busy(), dropped, ok])
    result = send(provider)
    assert result.outcome is SendOutcome.ACCEPTED
    assert result.provider_message_id == "gw-1"
    assert provider.slept == [0.1, 0.2]
    assert len(provider.requests) == 3


def test_retry_after_is_honoured_within_the_inline_limit() -> None:
    provider = Scripted([busy("1.5"), ok], max_inline_wait=2.0)
    assert send(provider).outcome is SendOutcome.ACCEPTED
    assert provider.slept == [1.5]


def test_a_long_retry_after_goes_back_to_the_outbox() -> None:
    provider = Scripted([busy("30"), ok], max_inline_wait=2.0)
    result = send(provider)
    assert result.outcome is SendOutcome.RETRY
    assert result.retry_after == 30.0
    assert provider.slept == []
    assert len(provider.requests) == 1


def test_retries_run_out_into_a_retry_result() -> None:
    provider = Scripted([slow, slow, slow])
    result = send(provider)
    assert result.outcome is SendOutcome.RETRY
    assert result.error is not None
    assert "no answer in time" in result.error
    assert len(provider.requests) == 3


def test_a_permanent_refusal_is_not_retried() -> None:
    provider = Scripted([lambda _: httpx.Response(400, text="bad number"), ok])
    result = send(provider)
    assert (result.outcome, result.status) == (SendOutcome.FAILED, MessageStatus.REJECTED)
    assert len(provider.requests) == 1


def test_content_the_provider_cannot_take_fails_before_any_request() -> None:
    provider = Scripted([ok])
    message = OutgoingMessage(**_fields(refuse=True))  # type: ignore[arg-type]
    result = send(provider, message)
    assert result.outcome is SendOutcome.FAILED
    assert result.error == "no title"
    assert provider.requests == []


def _fields(**content: object) -> dict[str, object]:
    names = OutgoingMessage.__dataclass_fields__
    fields = {name: getattr(MESSAGE, name) for name in names}
    fields["content"] = {**MESSAGE.content, **content}
    return fields


def test_dead_address_result_asks_for_the_address_to_be_dropped() -> None:
    result = SendResult.dead_address("msg_1", "Unregistered")
    assert result.outcome is SendOutcome.FAILED
    assert result.status is MessageStatus.UNDELIVERABLE
    assert result.address_invalid


@pytest.mark.parametrize(
    ("given", "fails"),
    [(None, True), ("", True), ("wrong", True), ("EXPECTED", True), ("expected", False)],
)
def test_a_signature_header_must_match_exactly(given: str | None, fails: bool) -> None:
    headers = {"x-signature": given} if given is not None else {}
    if fails:
        with pytest.raises(BadSignature):
            require(headers, "X-Signature", "expected")
    else:
        require(headers, "X-Signature", "expected")


def test_hmac_helpers_match_known_values() -> None:
    # RFC 4231 test case 2 (HMAC-SHA256) and RFC 2202 test case 2 (HMAC-SHA1).
    data = b"what do ya want for nothing?"
    assert hmac_hex("Jefe", data) == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert hmac_base64("Jefe", data) == "7/zfauXrL6LSdBbV8YTfnCWafHk="


def test_a_form_body_reads_as_a_dict() -> None:
    request = WebhookRequest("POST", "http://k/v1/webhooks/t", {}, {}, b"A=1&B=two+words&C=")
    assert request.form() == {"A": "1", "B": "two words", "C": ""}
    with pytest.raises(WebhookError):
        WebhookRequest("POST", "u", {}, {}, b"\xff\xfe").form()


class Reports:
    name = "old"

    def parse(self, body: bytes, headers: object) -> list[StatusReport]:
        at = datetime(2026, 11, 24, tzinfo=UTC)
        return [StatusReport("old", MessageStatus.DELIVERED, at, message_id=body.decode())]


def test_a_reports_parser_reads_posts_only() -> None:
    reader = ParsedReports(Reports())
    callback = reader.read(WebhookRequest("POST", "u", {}, {}, b"msg_9"))
    assert isinstance(callback, Callback)
    assert callback.reports[0].message_id == "msg_9"
    assert callback.inbound == ()
    assert callback.answer is None
    with pytest.raises(WebhookError):
        reader.read(WebhookRequest("GET", "u", {}, {}, b""))


def test_http_date_header_helper_round_trips() -> None:
    when = datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC)
    header = format_datetime(when, usegmt=True)
    now = (when - timedelta(seconds=10)).timestamp()
    assert retry_after(answer(503, headers={"retry-after": header}), now=now) == 10.0


def test_an_urgent_message_overtakes_the_bulk_waiting_for_a_connection() -> None:
    """With every connection busy, the next free one goes to the OTP, not to the campaign
    queued before it."""
    order: list[str] = []
    gate = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        order.append(request.url.path)
        await gate.wait()
        return httpx.Response(200, json={"id": request.url.path})

    class Paced(HttpProvider):
        channels = frozenset({Channel.PUSH})

        async def call(self, client: httpx.AsyncClient, message: OutgoingMessage) -> httpx.Response:
            return await client.post(f"/{message.id}")

        def accepted(self, message: OutgoingMessage, response: httpx.Response) -> SendResult:
            return SendResult.accepted(message.id, response.json()["id"])

    def message(ref: str, priority: int) -> OutgoingMessage:
        fields = _fields()
        fields.update(id=ref, priority=priority)
        return OutgoingMessage(**fields)  # type: ignore[arg-type]

    async def go() -> None:
        provider = Paced(
            "paced",
            HttpOptions(base_url="http://gateway.test", connections=1),
            transport=httpx.MockTransport(handle),
        )
        bulk = asyncio.create_task(provider.send([message(f"b{i}", 20) for i in range(3)]))
        while not order:  # the campaign holds the connection and queues the rest
            await asyncio.sleep(0)
        otp = asyncio.create_task(provider.send([message("otp", 100)]))
        while provider._window is None or provider._window.waiting < 3:
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(bulk, otp)
        await provider.stop()

    asyncio.run(go())
    assert order == ["/b0", "/otp", "/b1", "/b2"]
