"""The SMTP provider against a real SMTP server (aiosmtpd on 127.0.0.1, STARTTLS or implicit
TLS with a throwaway certificate, AUTH): what arrives (headers, parts, attachments byte for
byte, a DKIM signature that verifies), pooled connections and the concurrency limit,
temporary and permanent refusals, a connection dropped under a message, bad credentials."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import logging
import socket
import subprocess
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim  # type: ignore[import-untyped]
import pytest
from aiosmtpd.controller import Controller

from kaskad.adapters.channels.email import SmtpConfig, SmtpProvider
from kaskad.domain.ids import new_id
from kaskad.domain.providers import OutgoingMessage, SendOutcome, SendResult
from kaskad.domain.vocabulary import Category, Channel, MessageStatus
from tests.peers.smtp_server import PASSWORD, USER, SmtpServer, smtp_server

TO = "anna@example.com"
FROM = "Bank <noreply@bank.example>"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path) as running:
        yield running


def config(server: SmtpServer, **overrides: Any) -> SmtpConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "starttls",
        "username": USER,
        "password": PASSWORD,
        "from_address": FROM,
        "ca_file": str(server.cert),
        "timeout": 10,
    }
    return SmtpConfig(**(values | overrides))


def outgoing(
    content: dict[str, Any], address: str = TO, message_id: str | None = None
) -> OutgoingMessage:
    return OutgoingMessage(
        id=message_id or new_id("msg"),
        notification_id=new_id("ntf"),
        contact_id=new_id("cnt"),
        channel=Channel.EMAIL,
        provider="mail",
        address=address,
        content=content,
        category=Category.MARKETING,
        attempt=1,
    )


def send_all(
    provider: SmtpProvider, *batches: Sequence[OutgoingMessage]
) -> list[Sequence[SendResult]]:
    """Each batch through one provider, in order, on one event loop; then stop it."""

    async def main() -> list[Sequence[SendResult]]:
        try:
            return [await asyncio.wait_for(provider.send(batch), 30) for batch in batches]
        finally:
            await provider.stop()

    return asyncio.run(main())


def received(server: SmtpServer, index: int = -1) -> EmailMessage:
    raw = server.recorder.messages[index]["raw"]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


SIMPLE = {"subject": "Your statement", "text": "Hello Anna"}


def test_headers_and_alternative_parts_arrive(server: SmtpServer) -> None:
    message = outgoing(
        {
            "subject": "Your November statement",
            "text": "Hello Anna, your statement is ready.",
            "html": "<p>Hello Anna, your <b>statement</b> is ready.</p>",
            "unsubscribe_url": "https://bank.example/u/abc123",
            "reply_to": "care@bank.example",
            "headers": {"X-Campaign": "november"},
            "$template": "statement",  # kaskad's own key: not an email header
        }
    )
    ((result,),) = send_all(SmtpProvider("mail", config(server)), [message])

    assert result.outcome is SendOutcome.ACCEPTED
    assert result.status is MessageStatus.SENT
    assert result.provider_message_id == f"{message.id}@bank.example"
    (envelope,) = server.recorder.messages
    assert envelope["from"] == "noreply@bank.example"
    assert envelope["to"] == [TO]
    mail = received(server)
    assert mail["From"] == FROM
    assert mail["To"] == TO
    assert mail["Subject"] == "Your November statement"
    assert mail["Message-ID"] == f"<{message.id}@bank.example>"
    assert mail["X-Kaskad-Message-Id"] == message.id
    assert mail["Reply-To"] == "care@bank.example"
    assert mail["List-Unsubscribe"] == "<https://bank.example/u/abc123>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["X-Campaign"] == "november"
    assert mail["Date"] is not None
    assert "$template" not in mail.as_string()
    assert mail.get_content_type() == "multipart/alternative"
    assert mail.get_all("MIME-Version") == ["1.0"]
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().strip() == "Hello Anna, your statement is ready."
    assert "<b>statement</b>" in html.get_content()


def test_html_only_non_ascii_and_sender_from_content(server: SmtpServer) -> None:
    message = outgoing(
        {
            "subject": "Виписка за листопад готова — перегляньте її в застосунку банку",
            "html": "<p>Вітаємо, Анно!</p>",
            "from": "Кредити <loans@credit.example>",
        }
    )
    ((result,),) = send_all(SmtpProvider("mail", config(server)), [message])

    assert result.provider_message_id == f"{message.id}@credit.example"
    raw = server.recorder.messages[0]["raw"]
    assert raw.isascii()  # encoded words and a transfer encoding, as SMTP without 8BITMIME needs
    mail = received(server)
    assert mail.get_content_type() == "text/html"
    assert mail["Subject"] == message.content["subject"]
    assert mail["From"] == "Кредити <loans@credit.example>"
    assert "Вітаємо, Анно!" in mail.get_content()
    assert server.recorder.messages[0]["from"] == "loans@credit.example"


def test_attachments_by_path_and_base64_arrive_byte_exact(
    server: SmtpServer, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    (files / "statements").mkdir(parents=True)
    pdf = bytes(range(256)) * 40 + b"%%EOF"
    (files / "statements" / "nov.pdf").write_bytes(pdf)
    csv = b"date;amount\r\n2024-11-01;-12.50\n"
    message = outgoing(
        {
            "subject": "Statement",
            "text": "Attached.",
            "attachments": [
                {"filename": "nov.pdf", "path": "statements/nov.pdf"},
                {
                    "filename": "lines.csv",
                    "content_type": "text/csv",
                    "content_base64": base64.b64encode(csv).decode(),
                },
            ],
        }
    )
    provider = SmtpProvider("mail", config(server, attachments_dir=str(files)))
    ((result,),) = send_all(provider, [message])

    assert result.outcome is SendOutcome.ACCEPTED
    mail = received(server)
    assert mail.get_content_type() == "multipart/mixed"
    assert mail.get_all("MIME-Version") == ["1.0"]
    assert [p for p in mail.walk() if p is not mail and "MIME-Version" in p] == []
    parts = {part.get_filename(): part for part in mail.iter_attachments()}
    assert set(parts) == {"nov.pdf", "lines.csv"}
    assert parts["nov.pdf"].get_content_type() == "application/pdf"
    assert parts["nov.pdf"].get_payload(decode=True) == pdf
    assert parts["lines.csv"].get_content_type() == "text/csv"
    assert parts["lines.csv"].get_payload(decode=True) == csv


@pytest.mark.parametrize(
    ("attachment", "words"),
    [
        ({"filename": "x.txt", "path": "../secret.txt"}, "outside attachments_dir"),
        ({"filename": "x.txt", "path": "/etc/hostname"}, "outside attachments_dir"),
        ({"filename": "x.txt", "path": "missing.txt"}, "cannot read"),
        ({"filename": "x.txt", "content_base64": "not base64!"}, "not base64"),
        ({"path": "a.txt"}, "needs a filename"),
    ],
)
def test_bad_attachment_fails_without_a_connection(
    server: SmtpServer, tmp_path: Path, attachment: dict[str, str], words: str
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (tmp_path / "secret.txt").write_text("not for customers")
    provider = SmtpProvider("mail", config(server, attachments_dir=str(files)))
    message = outgoing({"subject": "S", "text": "T", "attachments": [attachment]})
    ((result,),) = send_all(provider, [message])

    assert result.outcome is SendOutcome.FAILED
    assert result.status is MessageStatus.FAILED
    assert words in (result.error or "")
    assert provider.connections_opened == 0
    assert server.recorder.messages == []


@pytest.mark.parametrize(
    ("content", "address", "status"),
    [
        ({"subject": "S", "text": "T", "headers": {"X-Evil": "a\r\nBcc: x@y.example"}}, TO, "F"),
        ({"subject": "S", "text": "T", "headers": {"Bad\nName": "v"}}, TO, "F"),
        ({"subject": "S", "text": "T", "headers": {"Message-ID": "<mine@x.example>"}}, TO, "F"),
        ({"subject": "Hi\r\nBcc: x@y.example", "text": "T"}, TO, "F"),
        ({"subject": "S", "text": "T", "unsubscribe_url": "https://x\r\nBcc: a@b.c"}, TO, "F"),
        ({"text": "no subject"}, TO, "F"),
        ({"subject": "no body"}, TO, "F"),
        ({"subject": "S", "text": "T"}, "not-an-address", "R"),
        ({"subject": "S", "text": "T"}, "anna@example.com\r\nRCPT TO:<x@y.example>", "R"),
    ],
)
def test_content_that_cannot_be_an_email_fails(
    server: SmtpServer, content: dict[str, Any], address: str, status: str
) -> None:
    provider = SmtpProvider("mail", config(server))
    ((result,),) = send_all(provider, [outgoing(content, address=address)])

    assert result.outcome is SendOutcome.FAILED
    expected = MessageStatus.REJECTED if status == "R" else MessageStatus.FAILED
    assert result.status is expected
    assert result.error
    assert server.recorder.messages == []


def _dkim_key(directory: Path) -> tuple[bytes, bytes]:
    """A private key (PEM) and its DNS TXT record, from the openssl command line."""
    key = directory / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_signature_verifies(server: SmtpServer, tmp_path: Path) -> None:
    private, record = _dkim_key(tmp_path)
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record if name == b"mail2024._domainkey.bank.example." else b""

    provider = SmtpProvider(
        "mail",
        config(
            server,
            dkim_selector="mail2024",
            dkim_domain="bank.example",
            dkim_private_key=private,
        ),
    )
    message = outgoing(SIMPLE | {"html": "<p>Hi</p>", "unsubscribe_url": "https://b.example/u"})
    ((result,),) = send_all(provider, [message])

    assert result.outcome is SendOutcome.ACCEPTED
    raw = server.recorder.messages[0]["raw"]
    assert dkim.verify(raw, dnsfunc=dns)
    assert asked == [b"mail2024._domainkey.bank.example."]
    signature = received(server)["DKIM-Signature"]
    signed = {h.strip().lower() for h in signature.split("h=")[1].split(";")[0].split(":")}
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe"} <= signed
    assert {"list-unsubscribe-post", "mime-version", "content-type"} <= signed
    # A relay that changes the subject breaks the signature.
    tampered = raw.replace(b"Subject: Your statement", b"Subject: Your statemenT")
    assert tampered != raw
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_connections_are_pooled_across_messages_and_batches(server: SmtpServer) -> None:
    provider = SmtpProvider("mail", config(server, concurrency=2))
    batches = [[outgoing(SIMPLE) for _ in range(10)] for _ in range(3)]
    answered = send_all(provider, *batches)

    assert all(r.outcome is SendOutcome.ACCEPTED for results in answered for r in results)
    assert len(server.recorder.messages) == 30
    assert 1 <= provider.connections_opened <= 2
    assert len(server.recorder.peers) == provider.connections_opened
    assert server.recorder.open_peers == set()  # stop said QUIT on every one


def test_concurrency_limit_is_respected(server: SmtpServer) -> None:
    """DATA is held until three transactions are in flight at once; never more than three."""
    recorder = server.recorder
    state = {"now": 0, "most": 0}
    three_in: asyncio.Event | None = None

    async def handle_DATA(smtp: Any, session: Any, envelope: Any) -> str:
        nonlocal three_in
        three_in = three_in or asyncio.Event()
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])
        if state["now"] >= 3:
            three_in.set()
        try:
            await asyncio.wait_for(three_in.wait(), 5)
        finally:
            state["now"] -= 1
        recorder.messages.append({"raw": envelope.content, "to": envelope.rcpt_tos})
        return "250 OK"

    recorder.handle_DATA = handle_DATA  # type: ignore[method-assign]
    provider = SmtpProvider("mail", config(server, concurrency=3))
    (results,) = send_all(provider, [outgoing(SIMPLE) for _ in range(12)])

    assert [r.outcome for r in results] == [SendOutcome.ACCEPTED] * 12
    assert state["most"] == 3
    assert recorder.most_open == 3
    assert provider.connections_opened == 3


def test_implicit_tls(tmp_path: Path) -> None:
    with smtp_server(tmp_path, implicit_tls=True) as tls_server:
        provider = SmtpProvider("mail", config(tls_server, security="tls"))
        ((result,),) = send_all(provider, [outgoing(SIMPLE)])
        assert result.outcome is SendOutcome.ACCEPTED
        assert len(tls_server.recorder.messages) == 1


def test_untrusted_certificate_is_a_retry_unless_verification_is_off(server: SmtpServer) -> None:
    strict = SmtpProvider("mail", config(server, ca_file=None))
    ((refused,),) = send_all(strict, [outgoing(SIMPLE)])
    assert refused.outcome is SendOutcome.RETRY
    assert "cannot connect" in (refused.error or "")
    assert server.recorder.messages == []

    lax = SmtpProvider("mail", config(server, ca_file=None, verify_tls=False))
    ((taken,),) = send_all(lax, [outgoing(SIMPLE)])
    assert taken.outcome is SendOutcome.ACCEPTED


def test_wrong_password_fails_clearly_and_is_never_logged(
    server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kaskad")
    provider = SmtpProvider("mail", config(server, password="Wr0ngPassw0rd"))
    message = outgoing(SIMPLE)
    ((result,),) = send_all(provider, [message])

    assert result.message_id == message.id
    assert result.outcome is SendOutcome.FAILED
    assert result.status is MessageStatus.FAILED
    assert "authentication refused" in (result.error or "")
    assert "535" in (result.error or "")
    assert server.recorder.messages == []
    assert "Wr0ngPassw0rd" not in caplog.text
    assert "authentication refused" in caplog.text
    assert "Wr0ngPassw0rd" not in repr(provider.config)


def test_temporary_refusal_then_acceptance(server: SmtpServer) -> None:
    server.recorder.script[TO] = ["451 4.7.1 Greylisted, try again later"]
    provider = SmtpProvider("mail", config(server))
    message = outgoing(SIMPLE)
    first, second = send_all(provider, [message], [message])

    assert first[0].outcome is SendOutcome.RETRY
    assert first[0].retry_after is not None
    assert first[0].retry_after > 0
    assert "451" in (first[0].error or "")
    assert "Greylisted" in (first[0].error or "")
    assert second[0].outcome is SendOutcome.ACCEPTED
    assert second[0].provider_message_id == f"{message.id}@bank.example"
    assert len(server.recorder.messages) == 1
    assert provider.connections_opened == 1  # the refusal left the connection usable


@pytest.mark.parametrize(
    ("reply", "outcome", "status"),
    [
        ("550 5.1.1 No such user here", SendOutcome.FAILED, MessageStatus.REJECTED),
        ("553 5.1.3 Bad recipient address syntax", SendOutcome.FAILED, MessageStatus.REJECTED),
        ("552 5.2.2 Mailbox full", SendOutcome.FAILED, MessageStatus.FAILED),
        ("452 4.2.2 Over quota", SendOutcome.RETRY, MessageStatus.SUBMITTED),
    ],
)
def test_recipient_refusals_map_through_the_table(
    server: SmtpServer, reply: str, outcome: SendOutcome, status: MessageStatus
) -> None:
    server.recorder.script["gone@example.com"] = [reply]
    provider = SmtpProvider("mail", config(server))
    ((refused, fine),) = send_all(
        provider, [outgoing(SIMPLE, address="gone@example.com"), outgoing(SIMPLE)]
    )

    assert refused.outcome is outcome
    assert refused.status is status
    assert reply.split(" ", 2)[2] in (refused.error or "")
    assert reply[:3] in (refused.error or "")
    assert fine.outcome is SendOutcome.ACCEPTED
    assert [m["to"] for m in server.recorder.messages] == [[TO]]


def test_a_connection_dropped_under_a_message_is_replaced_once(server: SmtpServer) -> None:
    recorder = server.recorder
    drops = {"left": 0}

    async def handle_MAIL(
        smtp: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if drops["left"]:
            drops["left"] -= 1
            smtp.transport.close()
            return "421 4.3.2 Closing"
        envelope.mail_from = address
        return "250 OK"

    recorder.handle_MAIL = handle_MAIL  # type: ignore[attr-defined]
    provider = SmtpProvider("mail", config(server, concurrency=1))

    async def main() -> tuple[Sequence[SendResult], Sequence[SendResult], Sequence[SendResult]]:
        try:
            first = await provider.send([outgoing(SIMPLE)])
            drops["left"] = 1  # the pooled connection breaks under the next message
            second = await provider.send([outgoing(SIMPLE)])
            drops["left"] = 2  # the pooled one and the fresh one both break
            third = await provider.send([outgoing(SIMPLE)])
            return first, second, third
        finally:
            await provider.stop()

    first, second, third = asyncio.run(asyncio.wait_for(main(), 30))
    assert first[0].outcome is SendOutcome.ACCEPTED
    assert second[0].outcome is SendOutcome.ACCEPTED
    assert third[0].outcome is SendOutcome.RETRY
    assert "connection lost" in (third[0].error or "")
    assert len(recorder.messages) == 2
    assert provider.connections_opened == 3  # first, its replacement, one more replacement


def test_relay_down_is_a_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        provider = SmtpProvider(
            "mail", SmtpConfig(port=port, security="none", from_address=FROM, timeout=5)
        )
        ((result,),) = send_all(provider, [outgoing(SIMPLE)])
    assert result.outcome is SendOutcome.RETRY
    assert result.retry_after
    assert "cannot connect" in (result.error or "")


def test_resend_keeps_the_message_id(server: SmtpServer) -> None:
    message = outgoing(SIMPLE)
    send_all(SmtpProvider("mail", config(server)), [message])
    send_all(SmtpProvider("mail", config(server)), [message])

    ids = [received(server, i)["Message-ID"] for i in (0, 1)]
    assert ids == [f"<{message.id}@bank.example>"] * 2


def test_a_stopped_provider_stays_stopped(server: SmtpServer) -> None:
    provider = SmtpProvider("mail", config(server))

    async def main() -> Sequence[SendResult]:
        await provider.stop()
        await provider.stop()
        return await provider.send([outgoing(SIMPLE)])

    (result,) = asyncio.run(main())
    assert result.outcome is SendOutcome.RETRY
    assert provider.connections_opened == 0


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"security": "ssl"}, "security"),
        ({"concurrency": 0}, "concurrency"),
        ({"timeout": 0}, "timeout"),
        ({"port": 70000}, "port"),
        ({"password": None}, "username and password"),
        ({"security": "none"}, "in clear"),
        ({"dkim_selector": "s1"}, "DKIM"),
        (
            {"dkim_selector": "s1", "dkim_domain": "bank.example", "dkim_private_key": b"x"},
            "not an RSA private key",
        ),
        ({"from_address": "Bank"}, "from_address"),
        ({"attachments_dir": "/nonexistent/kaskad"}, "attachments_dir"),
    ],
)
def test_config_is_checked(overrides: dict[str, Any], words: str) -> None:
    values: dict[str, Any] = {
        "host": "smtp.bank.example",
        "username": USER,
        "password": PASSWORD,
        "from_address": FROM,
    }
    with pytest.raises(ValueError, match=words):
        SmtpConfig(**(values | overrides))


def test_long_lines_and_non_ascii_filenames_stay_within_smtp_limits(
    server: SmtpServer, tmp_path: Path
) -> None:
    html = "<p>" + "x" * 3000 + "</p>"  # one line, longer than SMTP's 998 octets
    message = outgoing(
        {
            "subject": "S",
            "html": html,
            "attachments": [
                {"filename": "виписка.txt", "content_base64": base64.b64encode(b"ok").decode()}
            ],
        }
    )
    ((result,),) = send_all(SmtpProvider("mail", config(server)), [message])

    assert result.outcome is SendOutcome.ACCEPTED
    raw = server.recorder.messages[0]["raw"]
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    mail = received(server)
    body = mail.get_body(("html",))
    assert body is not None
    assert body.get_content().strip() == html
    (attachment,) = mail.iter_attachments()
    assert attachment.get_filename() == "виписка.txt"
    assert attachment.get_payload(decode=True) == b"ok"


def test_relay_without_starttls_fails_clearly(tmp_path: Path) -> None:
    """A relay that offers no STARTTLS: no message gets through, so none waits for it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    plain = Controller(object(), hostname="127.0.0.1", port=port)
    plain.start()
    try:
        provider = SmtpProvider(
            "mail", SmtpConfig(port=port, username=USER, password=PASSWORD, from_address=FROM)
        )
        ((result,),) = send_all(provider, [outgoing(SIMPLE)])
    finally:
        plain.stop()
    assert result.outcome is SendOutcome.FAILED
    assert "does not offer STARTTLS" in (result.error or "")
