"""Asynchronous bounces: delivery status notifications (RFC 3464) mapped to statuses.

A DSN names our message through the headers it returns (``X-Kaskad-Message-Id``, or the
``Message-ID`` kaskad set from the same client reference). ``failed`` becomes
``undeliverable``; ``delivered``/``relayed`` become ``delivered``; a ``delayed`` DSN says
the relay is still trying and gives no report. Mail that is not a DSN (an auto-reply in
the bounce mailbox) is skipped, not an error.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import mailbox
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any, Final

from kaskad.adapters.channels.email.mime import KASKAD_ID_HEADER
from kaskad.domain.providers import StatusReport, WebhookError
from kaskad.domain.vocabulary import MessageStatus

DSN_ACTIONS: Final[Mapping[str, MessageStatus | None]] = {
    "failed": MessageStatus.UNDELIVERABLE,
    "delivered": MessageStatus.DELIVERED,
    "relayed": MessageStatus.DELIVERED,
    "expanded": MessageStatus.DELIVERED,
    "delayed": None,
}
SIGNATURE_HEADER: Final = "x-kaskad-signature"


def parse_dsn(raw: bytes, provider: str) -> list[StatusReport]:
    report = email.message_from_bytes(raw, policy=email.policy.compat32)
    if report.get_content_type() != "multipart/report":
        return []
    if str(report.get_param("report-type") or "").lower() != "delivery-status":
        return []
    status_part = _part(report, "message/delivery-status")
    if status_part is None:
        raise WebhookError("a delivery report without a message/delivery-status part")
    ours = _our_message_id(report)
    if ours is None:
        raise WebhookError("a delivery report that names no kaskad message")
    groups = _status_groups(status_part)
    arrival = _arrival(groups[0] if groups else {})
    reports = []
    for fields in groups[1:]:
        action = fields.get("action", "").strip().lower()
        status = DSN_ACTIONS.get(action)
        if status is None:
            continue
        code = fields.get("status", "").strip()
        diagnostic = fields.get("diagnostic-code", "").split(";", 1)[-1].strip()
        reports.append(
            StatusReport(
                provider=provider,
                status=status,
                at=arrival,
                message_id=ours,
                provider_status=f"{code} {diagnostic}".strip()[:200] or action,
            )
        )
    return reports


def _part(message: Message, kind: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == kind:
            return part
    return None


def _status_groups(part: Message) -> list[dict[str, str]]:
    """The per-message fields, then one group per recipient (RFC 3464 §2.1)."""
    payload: Any = part.get_payload()
    if isinstance(payload, list):  # parsed into header blocks
        return [{k.lower(): str(v) for k, v in block.items()} for block in payload]
    groups: list[dict[str, str]] = []
    for block in str(payload).replace("\r\n", "\n").strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            if value:
                fields[name.strip().lower()] = value.strip()
        groups.append(fields)
    return groups


def _our_message_id(report: Message) -> str | None:
    for kind in ("text/rfc822-headers", "message/rfc822"):
        part = _part(report, kind)
        if part is None:
            continue
        payload: Any = part.get_payload()
        returned: Any = (
            payload[0]
            if isinstance(payload, list)
            else email.message_from_string(str(payload), policy=email.policy.compat32)
        )
        ours = returned.get(KASKAD_ID_HEADER)
        if ours:
            return str(ours).strip()
        message_id = str(returned.get("Message-ID") or "").strip().strip("<>")
        if message_id.startswith("msg_"):
            return message_id.split("@", 1)[0]
    return None


def _arrival(fields: Mapping[str, str]) -> datetime:
    value = fields.get("arrival-date")
    if value:
        try:
            at = parsedate_to_datetime(value)
            return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
        except (TypeError, ValueError):
            pass
    return datetime.now(UTC)


class MaildirBounces:
    """A bounce mailbox in Maildir form, read by the engine now and then. Each mail is
    removed once read, so nothing is applied twice; unreadable ones go to ``.rejected``."""

    def __init__(self, provider: str, path: str) -> None:
        self.name = f"{provider}-bounces"
        self._provider = provider
        self._box = mailbox.Maildir(path, create=True)

    def collect(self) -> list[StatusReport]:
        found: list[StatusReport] = []
        for key in list(self._box.iterkeys()):
            try:
                raw = self._box.get_bytes(key)
            except KeyError:
                continue
            try:
                found.extend(parse_dsn(raw, self._provider))
            except WebhookError:
                self._keep_aside(raw)
            self._box.discard(key)
        return found

    def _keep_aside(self, raw: bytes) -> None:
        folder = (
            self._box.add_folder("rejected")
            if "rejected" not in self._box.list_folders()
            else self._box.get_folder("rejected")
        )
        folder.add(raw)


class DsnWebhook:
    """Bounces posted by a relay to ``/v1/webhooks/{provider}``: the raw DSN as the body,
    signed ``X-Kaskad-Signature: sha256=<HMAC of the body>`` when a secret is set."""

    def __init__(self, provider: str, secret: str | None) -> None:
        self.name = provider
        self._secret = secret

    def parse(self, body: bytes, headers: Mapping[str, str]) -> list[StatusReport]:
        if self._secret is not None:
            given = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER, "")
            expected = "sha256=" + hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(given, expected):
                raise WebhookError("X-Kaskad-Signature does not match the body")
        return parse_dsn(body, self.name)
