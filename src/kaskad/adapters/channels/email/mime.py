"""Building the email a message becomes: multipart text and HTML, attachments, the headers
that tie a bounce back to its message, one-click unsubscribe, and a DKIM signature."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any, Final

import dkim  # type: ignore[import-untyped]

from kaskad.domain.providers import OutgoingMessage

DKIM_HEADERS: Final = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)
KASKAD_ID_HEADER: Final = "X-Kaskad-Message-Id"


class InvalidEmail(ValueError):
    """Content that cannot become an email; sending it again would not help."""


def message_id(message: OutgoingMessage, sender: str) -> str:
    """The client reference as the Message-ID: a resend carries the same one."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "kaskad.invalid"
    return f"{message.id}@{domain}"


def build(
    message: OutgoingMessage,
    *,
    sender: str,
    reply_to: str | None,
    attachments_dir: Path | None,
) -> EmailMessage:
    content = message.content
    subject = content.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidEmail("email content has no subject")
    text, html = content.get("text"), content.get("html")
    if not text and not html:
        raise InvalidEmail("email content has neither text nor html")
    email = EmailMessage()
    email["From"] = str(content.get("from") or sender)
    email["To"] = message.address
    email["Subject"] = subject
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = f"<{message_id(message, str(email['From']))}>"
    email[KASKAD_ID_HEADER] = message.id
    if content.get("reply_to") or reply_to:
        email["Reply-To"] = str(content.get("reply_to") or reply_to)
    if content.get("unsubscribe_url"):
        email["List-Unsubscribe"] = f"<{content['unsubscribe_url']}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in _extra_headers(content.get("headers")).items():
        email[name] = value
    email.set_content(str(text or _strip_html(str(html))))
    if html:
        email.add_alternative(str(html), subtype="html")
    for item in content.get("attachments") or ():
        _attach(email, item, attachments_dir)
    return email


def _extra_headers(raw: Any) -> dict[str, str]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidEmail("headers must be a mapping")
    headers = {}
    for name, value in raw.items():
        if any(c in f"{name}{value}" for c in "\r\n") or not str(name).strip():
            raise InvalidEmail(f"header {name!r} has a line break")
        headers[str(name)] = str(value)
    return headers


def _attach(email: EmailMessage, item: Any, directory: Path | None) -> None:
    if not isinstance(item, Mapping) or not item.get("filename"):
        raise InvalidEmail("an attachment needs a filename")
    filename = str(item["filename"])
    if item.get("content_base64"):
        try:
            data = base64.b64decode(str(item["content_base64"]), validate=True)
        except ValueError as exc:
            raise InvalidEmail(f"attachment {filename}: not base64") from exc
    else:
        data = _read(directory, str(item.get("path") or ""), filename)
    kind = str(item.get("content_type") or mimetypes.guess_type(filename)[0] or "")
    maintype, _, subtype = (kind or "application/octet-stream").partition("/")
    email.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)


def _read(directory: Path | None, relative: str, filename: str) -> bytes:
    if directory is None:
        raise InvalidEmail(f"attachment {filename}: no attachments_dir is configured")
    base = directory.resolve()
    path = (base / relative).resolve()
    if not relative or not path.is_relative_to(base):
        raise InvalidEmail(f"attachment {filename}: path outside attachments_dir")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidEmail(f"attachment {filename}: {exc.strerror}") from exc


def _strip_html(html: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", html)


def sign(raw: bytes, *, selector: str, domain: str, key: bytes) -> bytes:
    """The message with a DKIM-Signature header prepended (relaxed/relaxed, rsa-sha256)."""
    present = {
        line.split(b":", 1)[0].strip().lower() for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n")
    }
    signed = [h for h in DKIM_HEADERS if h in present]
    signature = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=signed,
    )
    return bytes(signature) + raw
