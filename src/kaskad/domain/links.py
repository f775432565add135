"""Signed short-link tokens, and rewriting a message's links into them.

A token names (message, link number, kind) and carries a truncated HMAC-SHA256 tag, so it
cannot be guessed, forged or edited into another message's link without the key. Tokens
go into SMS, where every character costs: a message id (26 base-32 characters) packs into
17 bytes, link number and kind into one or three more, and the tag is 12 bytes (96 bits),
giving 40 characters of URL-safe base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

LinkKind = Literal["click", "open", "unsubscribe"]
KINDS: Final[tuple[LinkKind, ...]] = ("click", "open", "unsubscribe")
TAG_BYTES: Final = 12
ID_PREFIX: Final = "msg_"
_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_ID_CHARS: Final = 26
_ID_BYTES: Final = 17  # 26 × 5 bits = 130 bits
_SMALL_LINK: Final = 63  # links 0–62 fit beside the kind in one byte; 63 escapes to two more


class BadToken(ValueError):
    """A token that was not made with this key, or was changed."""


@dataclass(frozen=True, slots=True)
class LinkRef:
    message_id: str
    link: int
    kind: LinkKind = "click"


def sign_link(key: bytes, ref: LinkRef) -> str:
    body = _pack(ref)
    return _b64(body + _tag(key, body))


def verify_link(key: bytes, token: str) -> LinkRef:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise BadToken("not a link token") from None
    if _b64(raw) != token:
        # The decoder ignores padding, stray bits in the last character and characters
        # outside the alphabet: only the one spelling sign_link makes is a token.
        raise BadToken("not a link token")
    body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
    if len(body) < 1 + _ID_BYTES or not hmac.compare_digest(tag, _tag(key, body)):
        raise BadToken("link token signature does not match")
    return _unpack(body)


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"kaskad-link\x00" + body, hashlib.sha256).digest()[:TAG_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pack(ref: LinkRef) -> bytes:
    if not 0 <= ref.link <= 0xFFFF:
        raise ValueError(f"link number {ref.link} out of range")
    kind = KINDS.index(ref.kind)
    small = ref.link if ref.link < _SMALL_LINK else _SMALL_LINK
    head = bytes([kind << 6 | small])
    if small == _SMALL_LINK:
        head += ref.link.to_bytes(2, "big")
    return head + _pack_id(ref.message_id)


def _unpack(body: bytes) -> LinkRef:
    if body[0] >> 6 >= len(KINDS):
        raise BadToken("unknown link kind")
    kind, small = KINDS[body[0] >> 6], body[0] & 0x3F
    rest = body[1:]
    link = small
    if small == _SMALL_LINK:
        link, rest = int.from_bytes(rest[:2], "big"), rest[2:]
    if len(rest) != _ID_BYTES:
        raise BadToken("malformed link token")
    return LinkRef(_unpack_id(rest), link, kind)


def _pack_id(message_id: str) -> bytes:
    """A kaskad message id as 17 bytes; any other id (tests, imports) is refused."""
    digits = message_id.removeprefix(ID_PREFIX)
    if len(digits) != _ID_CHARS or not message_id.startswith(ID_PREFIX):
        raise ValueError(f"not a message id: {message_id!r}")
    number = 0
    for char in digits:
        index = _ALPHABET.find(char)
        if index < 0:
            raise ValueError(f"not a message id: {message_id!r}")
        number = number << 5 | index
    return number.to_bytes(_ID_BYTES, "big")


def _unpack_id(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    chars = []
    for _ in range(_ID_CHARS):
        number, rest = divmod(number, 32)
        chars.append(_ALPHABET[rest])
    if number:
        raise BadToken("malformed link token")
    return ID_PREFIX + "".join(reversed(chars))


# -- rewriting ---------------------------------------------------------------------------
_URL: Final = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING: Final = ".,;:!?)]}"
_ANCHOR: Final = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
# ``href`` itself, not ``data-href``, which ``\bhref`` would also match.
_HREF: Final = re.compile(r"""((?<![\w-])href\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_NOTRACK: Final = re.compile(r"\bdata-kaskad-notrack\b", re.IGNORECASE)


def rewrite_links(
    text: str, *, html: bool, shorten: Callable[[str], str], skip_prefix: str | None = None
) -> tuple[str, list[str]]:
    """Replace the http(s) links of ``text`` with ``shorten(url)``; return the new text and
    the originals in order. In HTML only ``<a href>`` is rewritten, and an anchor marked
    ``data-kaskad-notrack`` is left alone; in text every URL is, minus trailing punctuation
    (a sentence's full stop is not part of its link)."""
    found: list[str] = []

    def replace(url: str) -> str:
        if skip_prefix and url.startswith(skip_prefix):
            return url
        found.append(url)
        return shorten(url)

    if html:
        return _ANCHOR.sub(lambda m: _rewrite_anchor(m.group(0), replace), text), found
    return _URL.sub(lambda m: _rewrite_plain(m.group(0), replace), text), found


def _rewrite_anchor(tag: str, replace: Callable[[str], str]) -> str:
    if _NOTRACK.search(tag):
        return tag
    match = _HREF.search(tag)
    if match is None:
        return tag
    url = match.group(3).strip().replace("&amp;", "&")
    if not re.match(r"https?://", url, re.IGNORECASE):
        return tag  # mailto:, tel:, anchors and template leftovers stay as they are
    new = replace(url).replace("&", "&amp;")
    return tag[: match.start(3)] + new + tag[match.end(3) :]


def _rewrite_plain(url: str, replace: Callable[[str], str]) -> str:
    stripped = url.rstrip(_TRAILING)
    tail = url[len(stripped) :]
    return replace(stripped) + tail


def open_pixel(html: str, url: str) -> str:
    """``html`` with a 1×1 open-tracking image before ``</body>`` (or at the end)."""
    pixel = f'<img src="{url}" width="1" height="1" alt="" style="display:none">'
    index = html.lower().rfind("</body>")
    if index < 0:
        return html + pixel
    return html[:index] + pixel + html[index:]
