"""Time-ordered, unguessable identifiers (ULID-like) with a readable prefix.

Time order keeps B-tree inserts local on PostgreSQL; 80 random bits keep ids unguessable.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rest = divmod(number, 32)
        chars.append(_ALPHABET[rest])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode(millis, 10)}{_encode80(randomness)}"


# Two digits per 10 bits: a batch of ids costs a few table lookups each.
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]


def _encode80(number: int) -> str:
    pairs = _PAIRS
    return (
        pairs[number >> 70]
        + pairs[(number >> 60) & 1023]
        + pairs[(number >> 50) & 1023]
        + pairs[(number >> 40) & 1023]
        + pairs[(number >> 30) & 1023]
        + pairs[(number >> 20) & 1023]
        + pairs[(number >> 10) & 1023]
        + pairs[number & 1023]
    )


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids as ``new_id`` makes them, with one clock read and one call for
    randomness: a batch of 1,000 events should not pay for 1,000 of each."""
    head = f"{prefix}_{_encode(time.time_ns() // 1_000_000, 10)}"
    noise = os.urandom(10 * count)
    big = int.from_bytes
    return [head + _encode80(big(noise[i : i + 10], "big")) for i in range(0, 10 * count, 10)]
