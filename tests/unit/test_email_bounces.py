"""Bounces (DSN, RFC 3464) without a server: samples in the forms relays write them, the
Maildir they land in, and the signed webhook they may be posted to."""

from __future__ import annotations

import hashlib
import hmac
import mailbox
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kaskad.adapters.channels.email import DSN_ACTIONS, DsnWebhook, MaildirBounces, parse_dsn
from kaskad.domain.providers import StatusReport, WebhookError
from kaskad.domain.vocabulary import MessageStatus

OURS = "msg_01JD8ZQK5V1T2N3M4P5R6S7T8V"


def dsn(
    *,
    recipients: str,
    returned: str = f"Message-ID: <{OURS}@bank.example>\nX-Kaskad-Message-Id: {OURS}\n",
    returned_type: str = "text/rfc822-headers",
    per_message: str = "Reporting-MTA: dns; mx.bank.example\n"
    "Arrival-Date: Tue, 12 Nov 2024 10:15:00 +0200\n",
    report_type: str = "delivery-status",
) -> bytes:
    text = (
        "From: MAILER-DAEMON@mx.bank.example (Mail Delivery System)\n"
        "To: bounces@bank.example\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="XYZ"\n'
        "\n"
        "--XYZ\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "This is the mail system at host mx.bank.example.\n"
        "\n"
        "--XYZ\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        f"{per_message}\n"
        f"{recipients}\n"
        "--XYZ\n"
        f"Content-Type: {returned_type}\n"
        "\n"
        f"{returned}"
        "From: Bank <noreply@bank.example>\n"
        "To: anna@example.com\n"
        "Subject: Your statement\n"
        "\n"
        "--XYZ--\n"
    )
    return text.replace("\n", "\r\n").encode()


POSTFIX_USER_UNKNOWN = dsn(
    recipients="Final-Recipient: rfc822; anna@example.com\n"
    "Original-Recipient: rfc822;anna@example.com\n"
    "Action: failed\n"
    "Status: 5.1.1\n"
    "Remote-MTA: dns; mx.example.com\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <anna@example.com>: Recipient address\n"
    "    rejected: User unknown in virtual mailbox table\n"
)
DELAYED = dsn(
    recipients="Final-Recipient: rfc822; anna@example.com\n"
    "Action: delayed\n"
    "Status: 4.4.1\n"
    "Diagnostic-Code: X-Postfix; connect to mx.example.com[192.0.2.1]:25: Connection refused\n"
    "Will-Retry-Until: Sat, 16 Nov 2024 10:15:00 +0200\n"
)
DELIVERED = dsn(
    recipients="Final-Recipient: rfc822; anna@example.com\n"
    "Action: delivered\n"
    "Status: 2.0.0\n"
    "Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 4XyZ\n",
    returned=f"Message-ID: <{OURS}@bank.example>\n",  # no kaskad header: the Message-ID names it
)
RELAYED_WHOLE_MESSAGE = dsn(
    recipients="Final-Recipient: rfc822; anna@example.com\nAction: relayed\nStatus: 2.0.0\n",
    returned=f"X-Kaskad-Message-Id: {OURS}\nMessage-ID: <{OURS}@bank.example>\n",
    returned_type="message/rfc822",
    per_message="Reporting-MTA: dns; mx.bank.example\n",
)
TWO_RECIPIENTS = dsn(
    recipients="Final-Recipient: rfc822; anna@example.com\n"
    "Action: failed\nStatus: 5.2.2\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\n"
    "\n"
    "Final-Recipient: rfc822; anna.backup@example.com\n"
    "Action: delivered\nStatus: 2.0.0\n"
)
AUTO_REPLY = (
    b"From: anna@example.com\r\nTo: noreply@bank.example\r\nSubject: Out of office\r\n"
    b"Auto-Submitted: auto-replied\r\nContent-Type: text/plain\r\n\r\nBack on Monday.\r\n"
)
FEEDBACK_REPORT = dsn(recipients="Feedback-Type: abuse\n", report_type="feedback-report")
ARRIVED = datetime(2024, 11, 12, 8, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            POSTFIX_USER_UNKNOWN,
            [
                (
                    MessageStatus.UNDELIVERABLE,
                    "5.1.1 550 5.1.1 <anna@example.com>: Recipient address rejected: "
                    "User unknown in virtual mailbox table",
                )
            ],
            id="postfix-5.1.1",
        ),
        pytest.param(DELAYED, [], id="delayed-4.4.1"),
        pytest.param(
            DELIVERED,
            [(MessageStatus.DELIVERED, "2.0.0 250 2.0.0 Ok: queued as 4XyZ")],
            id="delivered",
        ),
        pytest.param(
            RELAYED_WHOLE_MESSAGE, [(MessageStatus.DELIVERED, "2.0.0")], id="relayed-rfc822"
        ),
        pytest.param(
            TWO_RECIPIENTS,
            [
                (MessageStatus.UNDELIVERABLE, "5.2.2 552 5.2.2 Mailbox full"),
                (MessageStatus.DELIVERED, "2.0.0"),
            ],
            id="two-recipients",
        ),
        pytest.param(AUTO_REPLY, [], id="auto-reply"),
        pytest.param(FEEDBACK_REPORT, [], id="not-a-delivery-report"),
    ],
)
def test_dsn_samples(raw: bytes, expected: list[tuple[MessageStatus, str]]) -> None:
    reports = parse_dsn(raw, "mail")

    assert [(r.status, r.provider_status) for r in reports] == expected
    for report in reports:
        assert report.provider == "mail"
        assert report.message_id == OURS
        assert report.provider_message_id == f"{OURS}@bank.example"
        assert report.at.tzinfo is not None


def test_arrival_date_is_the_time_else_now() -> None:
    (dated,) = parse_dsn(POSTFIX_USER_UNKNOWN, "mail")
    assert dated.at == ARRIVED

    before = datetime.now(UTC)
    (undated,) = parse_dsn(RELAYED_WHOLE_MESSAGE, "mail")
    assert before <= undated.at <= datetime.now(UTC)


MALFORMED = {
    "no-status-part": (
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--B--\r\n",
        "message/delivery-status",
    ),
    "no-recipient": (
        dsn(recipients="", per_message="Reporting-MTA: dns; mx.bank.example\n"),
        "per-recipient",
    ),
    "unknown-action": (
        dsn(recipients="Final-Recipient: rfc822; a@example.com\nAction: vanished\n"),
        "vanished",
    ),
    "no-action": (
        dsn(recipients="Final-Recipient: rfc822; a@example.com\nStatus: 5.0.0\n"),
        "action",
    ),
    "names-no-message": (
        dsn(
            recipients="Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.0.0\n",
            returned="X-Other: 1\n",
        ),
        "names no message",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_dsn_is_an_error(case: str) -> None:
    raw, words = MALFORMED[case]
    with pytest.raises(WebhookError, match=words):
        parse_dsn(raw, "mail")


def test_the_action_table_is_complete_for_rfc3464() -> None:
    assert set(DSN_ACTIONS) == {"failed", "delayed", "delivered", "relayed", "expanded"}
    assert DSN_ACTIONS["delayed"] is None
    assert DSN_ACTIONS["failed"] is MessageStatus.UNDELIVERABLE


def test_maildir_bounces_are_read_once(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(POSTFIX_USER_UNKNOWN)
    box.add(AUTO_REPLY)
    box.add(DELAYED)
    source = MaildirBounces("mail", str(tmp_path / "bounces"))

    first = source.collect()
    assert source.name == "mail-bounces"
    assert [(r.message_id, r.status) for r in first] == [(OURS, MessageStatus.UNDELIVERABLE)]
    assert source.collect() == []
    assert len(mailbox.Maildir(tmp_path / "bounces", create=False)) == 0

    box.add(DELIVERED)  # new mail after the first read is read, and only it
    second = source.collect()
    assert [r.status for r in second] == [MessageStatus.DELIVERED]
    assert source.collect() == []


def test_maildir_sets_unreadable_dsn_aside(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(MALFORMED["unknown-action"][0])
    box.add(DELIVERED)
    source = MaildirBounces("mail", str(tmp_path / "bounces"))

    reports = source.collect()
    assert [r.status for r in reports] == [MessageStatus.DELIVERED]
    assert len(box) == 0
    assert len(box.get_folder("rejected")) == 1
    assert source.collect() == []


def _signed(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_webhook_with_a_good_signature() -> None:
    hook = DsnWebhook("mail", "s3cret")
    headers = {"x-kaskad-signature": _signed(POSTFIX_USER_UNKNOWN, b"s3cret")}

    reports = hook.parse(POSTFIX_USER_UNKNOWN, headers)
    assert hook.name == "mail"
    assert reports == [
        StatusReport(
            provider="mail",
            status=MessageStatus.UNDELIVERABLE,
            at=ARRIVED,
            message_id=OURS,
            provider_message_id=f"{OURS}@bank.example",
            provider_status=reports[0].provider_status,
        )
    ]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"X-Kaskad-Signature": ""}, id="empty"),
        pytest.param({"X-Kaskad-Signature": _signed(POSTFIX_USER_UNKNOWN, b"other")}, id="key"),
        pytest.param({"X-Kaskad-Signature": _signed(DELIVERED, b"s3cret")}, id="other-body"),
        pytest.param(
            {"X-Kaskad-Signature": _signed(POSTFIX_USER_UNKNOWN, b"s3cret")[7:]}, id="no-prefix"
        ),
    ],
)
def test_webhook_refuses_a_bad_or_missing_signature(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookError, match="X-Kaskad-Signature"):
        DsnWebhook("mail", "s3cret").parse(POSTFIX_USER_UNKNOWN, headers)


def test_webhook_without_a_secret_takes_unsigned_bodies() -> None:
    assert [r.status for r in DsnWebhook("mail").parse(DELIVERED, {})] == [MessageStatus.DELIVERED]
    assert DsnWebhook("mail").parse(AUTO_REPLY, {}) == []
