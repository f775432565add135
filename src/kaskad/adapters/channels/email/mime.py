"""The email a message becomes: text and/or HTML, attachments, the headers that tie a bounce
back to its message, one-click unsubscribe (RFC 8058), and a DKIM signature.

Content keys read: ``subject`` (required), ``text`` and/or ``html``, ``from``, ``reply_to``,
``attachments``, ``unsubscribe_url``, ``headers``. Keys starting with ``$`` belong to
kaskad itself and any other key is ignored. Anything that cannot become a sound email
raises ``InvalidEmail``: sending the same content again would fail the same way.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Mapping
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from pathlib import Path
from typing import Any, Final, cast

import dkim  # type: ignore[import-untyped]

from kaskad.domain.providers import OutgoingMessage

KASKAD_ID_HEADER: Final = "X-Kaskad-Message-Id"
# Signed when present; the unsubscribe headers are signed so no relay can swap the link.
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
# Headers kaskad sets itself; ``content["headers"]`` may not replace them.
RESERVED_HEADERS: Final = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "dkim-signature",
        "list-unsubscribe",
        "list-unsubscribe-post",
        KASKAD_ID_HEADER.lower(),
    }
)
_FIELD_NAME: Final = re.compile(r"^[!-9;-~]+$")  # printable ASCII but ':' (RFC 5322 ftext)
_TOKEN: Final = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+$")  # a MIME type or subtype (RFC 6838)
_WIRE: Final = compat32.clone(linesep="\r\n")
_NO_DOMAIN: Final = "kaskad.invalid"


class InvalidEmail(ValueError):
    """Content that cannot become an email; sending it again would not help."""


class InvalidRecipient(InvalidEmail):
    """The message's address is not an email address."""


def mailbox(value: str) -> str:
    """The bare address of ``"Bank <noreply@bank.example>"``: ``noreply@bank.example``."""
    if "\r" in value or "\n" in value:
        raise InvalidEmail("an address has a line break")
    found = [address for _, address in getaddresses([value]) if address]
    if len(found) != 1 or found[0].count("@") != 1:
        raise InvalidEmail(f"not a single email address: {value!r}")
    local, _, domain = found[0].partition("@")
    if not local or "." not in domain.strip("."):
        raise InvalidEmail(f"not a single email address: {value!r}")
    return found[0]


def message_id(our_id: str, sender: str) -> str:
    """The Message-ID (without brackets): the client reference at the sender's domain,
    so a resend carries the same one and a bounce names the message."""
    domain = mailbox(sender).rpartition("@")[2] if sender else _NO_DOMAIN
    return f"{our_id}@{domain}"


def sender_of(message: OutgoingMessage, default: str) -> str:
    return str(message.content.get("from") or default)


def build(
    message: OutgoingMessage,
    *,
    sender: str,
    reply_to: str | None,
    attachments_dir: Path | None,
) -> Message:
    """The email for ``message``, from ``sender`` unless the content names another.

    Built on the email package's compat32 classes: headers are checked here, so the
    header registry's parsing (four times the cost of the whole message) is not needed.
    Non-ASCII headers become RFC 2047 encoded words and non-ASCII bodies base64: the email
    is 7-bit clean and needs no 8BITMIME from the relay.
    """
    content = message.content
    subject = content.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidEmail("email content has no subject")
    _one_line(subject, "subject")
    text, html = content.get("text"), content.get("html")
    if not text and not html:
        raise InvalidEmail("email content has neither text nor html")
    from_value = sender_of(message, sender)
    try:
        mailbox(message.address)
    except InvalidEmail as exc:
        raise InvalidRecipient(f"recipient: {exc}") from exc
    headers: list[tuple[str, str | Header]] = [
        ("From", _address_header(from_value)),
        ("To", message.address),
        ("Subject", _text_header(subject)),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", f"<{message_id(message.id, from_value)}>"),
        (KASKAD_ID_HEADER, message.id),
    ]
    answer_to = content.get("reply_to") or reply_to
    if answer_to:
        headers.append(("Reply-To", _address_header(str(answer_to))))
    unsubscribe = content.get("unsubscribe_url")
    if unsubscribe:
        url = _one_line(str(unsubscribe), "unsubscribe_url")
        if not url.isascii() or any(c in url for c in " <>"):
            raise InvalidEmail("unsubscribe_url must be an ASCII URL without spaces or <>")
        headers.append(("List-Unsubscribe", f"<{url}>"))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    headers.extend((k, _text_header(v)) for k, v in _extra_headers(content.get("headers")).items())

    if text and html:
        body: Message = MIMEMultipart(
            "alternative", _subparts=[_text(str(text), "plain"), _text(str(html), "html")]
        )
    else:
        body = _text(str(text), "plain") if text else _text(str(html), "html")
    attachments = [_attachment(item, attachments_dir) for item in content.get("attachments") or ()]
    email = MIMEMultipart("mixed", _subparts=[body, *attachments]) if attachments else body
    for part in email.walk():
        del part["MIME-Version"]
    email["MIME-Version"] = "1.0"  # once, on the outermost part
    for name, value in headers:
        email[name] = cast(str, value)  # compat32 takes a Header as well
    return email


def render(email: Message) -> bytes:
    """The email as sent on the wire: CRLF line ends, long headers folded."""
    return email.as_bytes(policy=_WIRE)


def _text(body: str, subtype: str) -> MIMEText:
    # 7bit only where it is safe: ASCII with no line past SMTP's 998 octets.
    plain = body.isascii() and all(len(line) <= 998 for line in body.splitlines())
    return MIMEText(body, subtype, "us-ascii" if plain else "utf-8")  # utf-8 → base64


def _text_header(value: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8")


def _address_header(value: str) -> str:
    address = mailbox(value)
    name = parseaddr(value)[0]
    return formataddr((name, address), charset="utf-8")


def _one_line(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise InvalidEmail(f"{what} has a line break")
    return value


def _extra_headers(raw: Any) -> dict[str, str]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidEmail("headers must be a mapping of name to value")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        name, value = _one_line(str(name), "a header name"), str(value)
        _one_line(value, f"header {name!r}")
        if not _FIELD_NAME.match(name):
            raise InvalidEmail(f"{name!r} is not a header name")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidEmail(f"header {name!r} is set by kaskad")
        headers[name] = value
    return headers


def _attachment(item: Any, directory: Path | None) -> MIMEBase:
    if not isinstance(item, Mapping) or not item.get("filename"):
        raise InvalidEmail("an attachment needs a filename")
    filename = _one_line(str(item["filename"]), "an attachment filename")
    if item.get("content_base64") is not None:
        try:
            data = base64.b64decode(str(item["content_base64"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidEmail(f"attachment {filename!r}: content_base64 is not base64") from exc
    elif item.get("path"):
        data = _read(directory, str(item["path"]), filename)
    else:
        raise InvalidEmail(f"attachment {filename!r} has neither path nor content_base64")
    kind = str(item.get("content_type") or mimetypes.guess_type(filename)[0] or "")
    maintype, _, subtype = (kind or "application/octet-stream").partition("/")
    if not _TOKEN.match(maintype) or not _TOKEN.match(subtype):
        raise InvalidEmail(f"attachment {filename!r}: content_type {kind!r} is not type/subtype")
    part = MIMEBase(maintype, subtype)
    part.set_payload(data)
    encoders.encode_base64(part)  # byte for byte, whatever the type
    name: str | tuple[str, str, str] = filename if filename.isascii() else ("utf-8", "", filename)
    part.add_header("Content-Disposition", "attachment", filename=name)
    return part


def _read(directory: Path | None, relative: str, filename: str) -> bytes:
    if directory is None:
        raise InvalidEmail(f"attachment {filename!r}: no attachments_dir is configured")
    base = directory.resolve()
    path = (base / relative).resolve()  # resolves "..", and symlinks pointing out
    if not path.is_relative_to(base) or path == base:
        raise InvalidEmail(f"attachment {filename!r}: path is outside attachments_dir")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidEmail(f"attachment {filename!r}: cannot read it ({exc.strerror})") from exc


def sign(raw: bytes, *, selector: str, domain: str, key: bytes) -> bytes:
    """``raw`` with a DKIM-Signature header in front (relaxed/relaxed, rsa-sha256)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    present = {
        line.split(b":", 1)[0].strip().lower()
        for line in head.split(b"\r\n")
        if line and line[:1] not in (b" ", b"\t")
    }
    try:
        signature = dkim.sign(
            raw,
            selector.encode(),
            domain.encode(),
            key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[h for h in DKIM_HEADERS if h in present],
        )
    except dkim.DKIMException as exc:
        raise InvalidEmail(f"DKIM signing failed: {exc}") from exc
    return bytes(signature) + raw


def check_dkim_key(key: bytes) -> None:
    """Raise ``InvalidEmail`` unless ``key`` is an RSA private key (PEM) DKIM can sign with."""
    try:
        dkim.crypto.parse_pem_private_key(key)
    except (dkim.crypto.UnparsableKeyError, ValueError, IndexError) as exc:
        raise InvalidEmail(f"dkim_private_key is not an RSA private key in PEM: {exc}") from exc
