"""Asynchronous bounces: delivery status notifications (RFC 3464) turned into status reports.

A DSN names our message through the headers it returns (a ``text/rfc822-headers`` or
``message/rfc822`` part): ``X-Kaskad-Message-Id``, or else the ``Message-ID`` kaskad made
from the same client reference (``<message id>@<sender domain>``).

Each recipient's ``Action`` maps through ``DSN_ACTIONS``: ``failed`` → undeliverable,
``delivered``/``relayed``/``expanded`` → delivered. A ``delayed`` DSN says the relay is still
trying: it gives no report (the message stays ``sent``; a later DSN settles it).
``Status`` and ``Diagnostic-Code`` become ``provider_status`` (``5.1.1 550 5.1.1 User
unknown``); ``at`` is the DSN's ``Arrival-Date``, or now.

Mail that is not a DSN (an auto-reply landing in the bounce mailbox) gives no report; a DSN
that cannot be read (no status part, no recipient, an unknown action, no message named)
raises ``WebhookError``.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import logging
import mailbox
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any, Final

from kaskad.adapters.channels.email.mime import KASKAD_ID_HEADER
from kaskad.domain.providers import StatusReport, WebhookError
from kaskad.domain.vocabulary import MessageStatus

log = logging.getLogger(__name__)

DSN_ACTIONS: Final[Mapping[str, MessageStatus | None]] = {
    "failed": MessageStatus.UNDELIVERABLE,
    "delivered": MessageStatus.DELIVERED,
    "relayed": MessageStatus.DELIVERED,  # handed to a system that sends no DSN
    "expanded": MessageStatus.DELIVERED,  # delivered to a list or alias
    "delayed": None,  # still trying: no report
}
SIGNATURE_HEADER: Final = "X-Kaskad-Signature"
_PROVIDER_STATUS_MAX: Final = 200


def parse_dsn(raw: bytes, provider: str) -> list[StatusReport]:
    """The reports in one DSN, one per recipient with a final action; [] for other mail."""
    report = email.message_from_bytes(raw, policy=email.policy.compat32)
    if report.get_content_type() != "multipart/report":
        return []
    if str(report.get_param("report-type") or "").lower() != "delivery-status":
        return []
    status_part = _first(report, "message/delivery-status")
    if status_part is None:
        raise WebhookError("delivery report without a message/delivery-status part")
    groups = _field_groups(status_part)
    if len(groups) < 2:
        raise WebhookError("delivery report without a per-recipient section")
    ours, theirs = _named_message(report)
    arrival = _arrival(groups[0])
    reports: list[StatusReport] = []
    for fields in groups[1:]:
        action = fields.get("action", "").strip().lower()
        if action not in DSN_ACTIONS:
            raise WebhookError(f"delivery report with action {action or '(none)'!r}")
        status = DSN_ACTIONS[action]
        if status is None:
            continue
        reports.append(
            StatusReport(
                provider=provider,
                status=status,
                at=arrival,
                message_id=ours,
                provider_message_id=theirs,
                provider_status=_provider_status(fields) or action,
            )
        )
    return reports


def _first(message: Message, kind: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == kind:
            return part
    return None


def _field_groups(part: Message) -> list[dict[str, str]]:
    """The per-message fields, then one group per recipient (RFC 3464 §2.1)."""
    payload: Any = part.get_payload()
    if isinstance(payload, list):  # the parser read the blocks as header sets
        blocks: list[Message] = payload
    else:
        blocks = [
            email.message_from_string(block + "\n\n", policy=email.policy.compat32)
            for block in str(payload).replace("\r\n", "\n").strip().split("\n\n")
        ]
    groups = [{k.lower(): " ".join(str(v).split()) for k, v in b.items()} for b in blocks]
    return [fields for fields in groups if fields]  # blank lines make empty blocks


def _named_message(report: Message) -> tuple[str, str | None]:
    """Our message id, and its Message-ID if returned, from the returned headers."""
    for kind in ("text/rfc822-headers", "message/rfc822"):
        part = _first(report, kind)
        if part is None:
            continue
        payload: Any = part.get_payload()
        if isinstance(payload, list) and payload:
            returned: Message = payload[0]
        else:
            text = payload if isinstance(payload, str) else str(payload or "")
            returned = email.message_from_string(text, policy=email.policy.compat32)
        header_id = str(returned.get("Message-ID") or "").strip().strip("<>").strip()
        ours = str(returned.get(KASKAD_ID_HEADER) or "").strip()
        if not ours and "@" in header_id:
            ours = header_id.rpartition("@")[0]
        if ours:
            return ours, header_id or None
    raise WebhookError("delivery report that names no message (no returned headers)")


def _provider_status(fields: Mapping[str, str]) -> str:
    code = fields.get("status", "").strip()
    diagnostic = fields.get("diagnostic-code", "")
    # "smtp; 550 5.1.1 <anna@example.com>: User unknown": the part after the type.
    diagnostic = diagnostic.split(";", 1)[-1].strip()
    return f"{code} {diagnostic}".strip()[:_PROVIDER_STATUS_MAX]


def _arrival(fields: Mapping[str, str]) -> datetime:
    value = fields.get("arrival-date")
    if value:
        try:
            at = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return datetime.now(UTC)
        return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return datetime.now(UTC)


class MaildirBounces:
    """A bounce mailbox in Maildir form (where the relay delivers DSNs to the envelope
    sender), read by the engine now and then. Each mail is removed once read, so nothing is
    applied twice; a DSN that cannot be read is moved to the ``.rejected`` folder for a
    person to look at, and other mail (auto-replies) is dropped."""

    def __init__(self, provider: str, path: str) -> None:
        self.name = f"{provider}-bounces"
        self._provider = provider
        self._box = mailbox.Maildir(path, factory=None, create=True)

    def collect(self) -> list[StatusReport]:
        found: list[StatusReport] = []
        for key in list(self._box.iterkeys()):
            try:
                raw = self._box.get_bytes(key)
            except KeyError:  # taken by another reader meanwhile
                continue
            try:
                found.extend(parse_dsn(raw, self._provider))
            except WebhookError as exc:
                log.warning("bounce mailbox %s: unreadable DSN set aside: %s", self.name, exc)
                self._rejected().add(raw)
            self._box.discard(key)
        return found

    def _rejected(self) -> mailbox.Maildir:
        if "rejected" in self._box.list_folders():
            return self._box.get_folder("rejected")
        return self._box.add_folder("rejected")


class DsnWebhook:
    """DSNs posted by a relay to ``/v1/webhooks/{provider}``: the raw RFC 822 DSN as the
    body. With a secret, ``X-Kaskad-Signature: sha256=<hex HMAC-SHA256 of the body>`` is
    required."""

    def __init__(self, provider: str, secret: str | bytes | None = None) -> None:
        self.name = provider
        self._secret = secret.encode() if isinstance(secret, str) else secret

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[StatusReport]:
        if self._secret is not None:
            _check_signature(self._secret, body, headers)
        return parse_dsn(body, self.name)


def _check_signature(secret: bytes, body: bytes, headers: Mapping[str, str]) -> None:
    given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
    if not given:
        raise WebhookError(f"{SIGNATURE_HEADER} header is missing")
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        raise WebhookError(f"{SIGNATURE_HEADER} does not match the body")
