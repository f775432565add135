"""Email through a real SMTP server (aiosmtpd on 127.0.0.1): STARTTLS and implicit TLS with
authentication, what arrives (headers, parts, attachments, a DKIM signature that verifies),
connection reuse, temporary and permanent refusals; and bounces (DSN) read back."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import mailbox
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dkim  # type: ignore[import-untyped]
import pytest

from kaskad.adapters.channels.email import (
    DsnWebhook,
    MaildirBounces,
    SmtpConfig,
    SmtpProvider,
    parse_dsn,
)
from kaskad.domain.ids import new_id
from kaskad.domain.providers import OutgoingMessage, SendOutcome, SendResult, WebhookError
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


def send(provider: SmtpProvider, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
    async def main() -> Sequence[SendResult]:
        try:
            return await asyncio.wait_for(provider.send(batch), 30)
        finally:
            await provider.stop()

    return asyncio.run(main())


def received(server: SmtpServer, index: int = -1) -> email.message.EmailMessage:
    raw = server.recorder.messages[index]["raw"]
    parsed: email.message.EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[assignment]
    return parsed


def test_multipart_mail_with_attachments_and_one_click_unsubscribe(
    server: SmtpServer, tmp_path: Path
) -> None:
    (tmp_path / "tariffs").mkdir()
    pdf = b"%PDF-1.4 tariff " + bytes(range(256))
    (tmp_path / "tariffs" / "2026.pdf").write_bytes(pdf)
    provider = SmtpProvider("mail", config(server, attachments_dir=str(tmp_path)))
    message = outgoing(
        {
            "subject": "Ваш новий тариф",
            "text": "Plain text",
            "html": "<p>HTML</p>",
            "unsubscribe_url": "https://k.bank.example/u/TOKEN",
            "attachments": [
                {"filename": "tariff.pdf", "path": "tariffs/2026.pdf"},
                {"filename": "note.txt", "content_base64": base64.b64encode(b"hi").decode()},
            ],
            "$template": "tariff_change",
        }
    )
    (result,) = send(provider, [message])
    assert result.outcome is SendOutcome.ACCEPTED
    assert result.status is MessageStatus.SENT
    assert result.provider_message_id == f"{message.id}@bank.example"
    got = received(server)
    assert got["Subject"] == "Ваш новий тариф"
    assert got["From"] == FROM
    assert got["Message-ID"] == f"<{message.id}@bank.example>"
    assert got["X-Kaskad-Message-Id"] == message.id
    assert got["List-Unsubscribe"] == "<https://k.bank.example/u/TOKEN>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = got.get_body(("plain",))
    assert body is not None
    assert body.get_content().strip() == "Plain text"
    html = got.get_body(("html",))
    assert html is not None
    assert "<p>HTML</p>" in html.get_content()
    files = {a.get_filename(): a.get_payload(decode=True) for a in got.iter_attachments()}
    assert files == {"tariff.pdf": pdf, "note.txt": b"hi"}
    assert server.recorder.messages[-1]["from"] == "noreply@bank.example"


def test_dkim_signature_verifies(server: SmtpServer, tmp_path: Path) -> None:
    key_path = tmp_path / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(key_path), "2048"], check=True, capture_output=True
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key_path), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    provider = SmtpProvider(
        "mail",
        config(
            server,
            dkim_selector="k1",
            dkim_domain="bank.example",
            dkim_private_key=key_path.read_bytes(),
        ),
    )
    send(provider, [outgoing({"subject": "Signed", "text": "Hello"})])
    raw = server.recorder.messages[-1]["raw"]
    assert raw.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"k1._domainkey.bank.example." else b""

    assert dkim.verify(raw, dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"Hello", b"Hullo"), dnsfunc=dns)


def test_connections_are_reused_and_bounded(server: SmtpServer) -> None:
    provider = SmtpProvider("mail", config(server, concurrency=2))
    results = send(provider, [outgoing({"subject": f"n{i}", "text": "x"}) for i in range(12)])
    assert {r.outcome for r in results} == {SendOutcome.ACCEPTED}
    assert len(server.recorder.messages) == 12
    assert len(server.recorder.peers) <= 2
    assert server.recorder.most_open <= 2
    assert provider.connections_opened <= 2


def test_temporary_refusal_is_a_retry_then_it_goes_through(server: SmtpServer) -> None:
    server.recorder.script[TO] = ["451 4.7.1 Try again later"]
    provider = SmtpProvider("mail", config(server))
    message = outgoing({"subject": "Later", "text": "x"})
    (first,) = send(provider, [message])
    assert first.outcome is SendOutcome.RETRY
    assert first.error == "SMTP 451: 4.7.1 Try again later"
    (second,) = send(SmtpProvider("mail", config(server)), [message])
    assert second.outcome is SendOutcome.ACCEPTED
    assert len(server.recorder.messages) == 1


def test_permanent_refusal_fails_the_message(server: SmtpServer) -> None:
    server.recorder.script["nobody@example.com"] = ["550 5.1.1 No such user"]
    provider = SmtpProvider("mail", config(server))
    (result,) = send(provider, [outgoing({"subject": "x", "text": "x"}, "nobody@example.com")])
    assert result.outcome is SendOutcome.FAILED
    assert result.status is MessageStatus.REJECTED
    assert "No such user" in str(result.error)


def test_wrong_password_waits_instead_of_failing(server: SmtpServer) -> None:
    provider = SmtpProvider("mail", config(server, password="wrong"))
    (result,) = send(provider, [outgoing({"subject": "x", "text": "x"})])
    assert result.outcome is SendOutcome.RETRY
    assert "authentication refused: 535" in str(result.error)
    assert server.recorder.messages == []


def test_bad_content_is_refused_before_any_connection(server: SmtpServer) -> None:
    provider = SmtpProvider("mail", config(server))
    results = send(
        provider,
        [
            outgoing({"text": "no subject"}),
            outgoing({"subject": "x", "text": "y", "headers": {"X-Evil": "a\r\nBcc: x@y"}}),
            outgoing(
                {
                    "subject": "x",
                    "text": "y",
                    "attachments": [{"filename": "p", "path": "../etc/passwd"}],
                }
            ),
        ],
    )
    assert [r.outcome for r in results] == [SendOutcome.FAILED] * 3
    assert provider.connections_opened == 0


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(tmp_path: Path) -> None:
    with smtp_server(tmp_path, implicit_tls=True) as tls:
        provider = SmtpProvider("mail", config(tls, security="tls"))
        (result,) = send(provider, [outgoing({"subject": "TLS", "text": "x"})])
        assert result.outcome is SendOutcome.ACCEPTED
        assert len(tls.recorder.messages) == 1


# -- bounces -----------------------------------------------------------------------------
def dsn(
    action: str, status: str, message_id: str, *, report_type: str = "delivery-status"
) -> bytes:
    return (
        "From: MAILER-DAEMON@relay.example\r\n"
        "To: noreply@bank.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example\r\n"
        "Arrival-Date: Tue, 24 Nov 2026 10:00:00 +0200\r\n\r\n"
        f"Final-Recipient: rfc822; {TO}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{message_id}@bank.example>\r\n"
        f"X-Kaskad-Message-Id: {message_id}\r\n"
        "Subject: Your tariff\r\n\r\n"
        "--B--\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("action", "status", "expected"),
    [
        ("failed", "5.1.1", MessageStatus.UNDELIVERABLE),
        ("delivered", "2.0.0", MessageStatus.DELIVERED),
        ("relayed", "2.0.0", MessageStatus.DELIVERED),
        ("delayed", "4.4.1", None),
    ],
)
def test_dsn_actions_map_to_statuses(
    action: str, status: str, expected: MessageStatus | None
) -> None:
    ours = new_id("msg")
    reports = parse_dsn(dsn(action, status, ours), "mail")
    if expected is None:
        assert reports == []
        return
    (report,) = reports
    assert (report.status, report.message_id, report.provider) == (expected, ours, "mail")
    assert report.provider_status is not None
    assert report.provider_status.startswith(status)
    assert report.at.isoformat() == "2026-11-24T08:00:00+00:00"


def test_not_a_dsn_is_skipped_and_a_broken_one_refused() -> None:
    auto_reply = b"From: anna@example.com\r\nSubject: Out of office\r\n\r\nBack Monday.\r\n"
    assert parse_dsn(auto_reply, "mail") == []
    nameless = dsn("failed", "5.1.1", "msg_x").replace(b"X-Kaskad-Message-Id: msg_x\r\n", b"")
    with pytest.raises(WebhookError):
        parse_dsn(nameless.replace(b"<msg_x@", b"<other@"), "mail")


def test_maildir_bounces_are_read_once(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    ours = new_id("msg")
    box.add(dsn("failed", "5.1.1", ours))
    box.add(b"From: x@example.com\r\nSubject: hi\r\n\r\nnot a bounce\r\n")
    source = MaildirBounces("mail", str(tmp_path / "bounces"))
    (report,) = source.collect()
    assert report.message_id == ours
    assert source.collect() == []


def test_dsn_webhook_checks_its_signature() -> None:
    body = dsn("failed", "5.1.1", new_id("msg"))
    hook = DsnWebhook("mail", "hook-secret")
    good = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert len(hook.parse(body, {"X-Kaskad-Signature": good})) == 1
    with pytest.raises(WebhookError):
        hook.parse(body, {"X-Kaskad-Signature": "sha256=" + "0" * 64})
    with pytest.raises(WebhookError):
        hook.parse(body, {})
