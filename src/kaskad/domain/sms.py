"""How a text travels as SMS: GSM 03.38 or UCS-2, how many units and segments it takes.

An SMS carries 140 octets: 160 septets of the GSM 7-bit default alphabet, or 70 UTF-16 code
units. One character outside the GSM alphabet (``ç``, a Cyrillic letter, an emoji) turns the
whole message into UCS-2, which is why ``non_gsm`` names the culprits: a template author can
replace them and pay for one segment instead of three. Long messages are cut into parts of
153 septets / 67 units (the concatenation header takes the rest), never between the two
septets of an escape-table character or the two code units of a surrogate pair, because a
handset cannot glue those back together.

GSM-7 bytes here are *unpacked* septets, one per octet, with the escape character 0x1B
before escape-table characters: what an SMPP ``submit_sm`` with ``data_coding`` 0 carries.
The SMSC packs them for the air interface.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"

DATA_CODING: Final = {GSM7: 0, UCS2: 8}
SINGLE: Final = {GSM7: 160, UCS2: 70}
PER_PART: Final = {GSM7: 153, UCS2: 67}

# GSM 03.38 basic character set, by septet value 0x00..0x7F. 0x1B is the escape to the
# extension table and stands for no character of its own. 0x09 is the capital "Ç": the
# small "ç" is not in the alphabet (a frequent mistake of tables copied from the web).
_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each of these costs two septets, 0x1B and the code below.
_ESCAPED: Final = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_ESC: Final = 0x1B

# Text to septets goes through str.translate (a string of septets, ASCII once encoded) and
# the alphabet check through one regex, so sending keeps its per-message work in C loops,
# which matters at thousands of messages a second. Decoding (inbound SMS) is rarer.
_TO_SEPTETS: Final[dict[int, str]] = {
    **{ord(ch): chr(code) for code, ch in enumerate(_BASIC) if code != _ESC},
    **{ord(ch): chr(_ESC) + chr(code) for ch, code in _ESCAPED.items()},
}
_FROM_BASIC: Final[dict[int, str]] = {code: ch for code, ch in enumerate(_BASIC) if code != _ESC}
_FROM_ESCAPED: Final[dict[int, str]] = {code: ch for ch, code in _ESCAPED.items()}
_NOT_GSM: Final = re.compile(
    "[^" + re.escape("".join(ch for ch in _BASIC if ch != "\x1b") + "".join(_ESCAPED)) + "]"
)


@dataclass(frozen=True, slots=True)
class SmsShape:
    """What a text costs as SMS; computed once, shown to template authors and used to send."""

    encoding: str
    data_coding: int
    characters: int
    units: int
    segments: int
    per_segment: int
    non_gsm: tuple[str, ...]


def shape(text: str) -> SmsShape:
    """The encoding, size and segment count of ``text`` as one SMS message."""
    culprits = _non_gsm(text)
    encoding = UCS2 if culprits else GSM7
    payload = text.encode("utf-16-be") if culprits else _septets(text)
    width = _unit_bytes(encoding)
    units = len(payload) // width
    if units <= SINGLE[encoding]:
        segments, per_segment = 1, SINGLE[encoding]
    else:
        segments, per_segment = len(_cuts(payload, encoding)), PER_PART[encoding]
    return SmsShape(
        encoding=encoding,
        data_coding=DATA_CODING[encoding],
        characters=len(text),
        units=units,
        segments=segments,
        per_segment=per_segment,
        non_gsm=culprits,
    )


def encode(text: str, encoding: str) -> bytes:
    """Unpacked GSM-7 septets (escape 0x1B before extension characters) or UTF-16-BE.

    Raises ``ValueError`` when GSM-7 is asked for a text that has characters outside it.
    """
    if encoding == GSM7:
        if _NOT_GSM.search(text):
            raise ValueError(f"not in the GSM 03.38 alphabet: {_non_gsm(text)!r}")
        return _septets(text)
    if encoding == UCS2:
        return text.encode("utf-16-be")
    raise ValueError(f"unknown SMS encoding {encoding!r}")


def decode(payload: bytes, encoding: str) -> str:
    """The text of an encoded payload: the inverse of ``encode`` (used for inbound SMS too).

    Septets outside the table (an escape followed by an unassigned code) decode to the
    basic-table character, as GSM 03.38 asks receivers to do.
    """
    if encoding == UCS2:
        return payload.decode("utf-16-be", errors="replace")
    if encoding != GSM7:
        raise ValueError(f"unknown SMS encoding {encoding!r}")
    chars: list[str] = []
    escaped = False
    for septet in payload:
        code = septet & 0x7F
        if escaped:
            escaped = False
            chars.append(_FROM_ESCAPED.get(code) or _FROM_BASIC.get(code, " "))
        elif code == _ESC:
            escaped = True
        else:
            chars.append(_FROM_BASIC[code])
    return "".join(chars)


def split(text: str, encoding: str) -> list[bytes]:
    """The encoded payload of each part; one element when the text fits one SMS."""
    payload = encode(text, encoding)
    if len(payload) // _unit_bytes(encoding) <= SINGLE[encoding]:
        return [payload]
    bounds = _cuts(payload, encoding)
    return [payload[start:end] for start, end in bounds]


def _septets(text: str) -> bytes:
    """GSM-7 septets of a text already known to be inside the alphabet."""
    return text.translate(_TO_SEPTETS).encode("ascii")


def _non_gsm(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_NOT_GSM.findall(text)))


def _unit_bytes(encoding: str) -> int:
    return 1 if encoding == GSM7 else 2


def _cuts(payload: bytes, encoding: str) -> list[tuple[int, int]]:
    """Part boundaries in bytes, moved back one unit where a cut would split a pair."""
    width = _unit_bytes(encoding)
    step = PER_PART[encoding] * width
    bounds: list[tuple[int, int]] = []
    start, size = 0, len(payload)
    while start < size:
        end = min(start + step, size)
        if end < size and _splits_pair(payload, end, encoding):
            end -= width
        bounds.append((start, end))
        start = end
    return bounds


def _splits_pair(payload: bytes, end: int, encoding: str) -> bool:
    if encoding == GSM7:
        return payload[end - 1] == _ESC
    return 0xD8 <= payload[end - 2] <= 0xDB  # a high surrogate waits for its low half
