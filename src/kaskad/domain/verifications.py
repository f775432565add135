"""One-time codes: generation, keyed hashing, and the verification as a small state machine.

A verification is ``pending`` until one check settles it: ``approved`` (the right code in
time), ``expired`` (too late, or a newer verification for the same contact took over) or
``failed`` (the attempts ran out). Only a keyed hash of the code is kept, and only while
the verification is pending; every check compares hashes in constant time. Pumping limits
(codes per phone and per IP in a window) are judged here from the times the caller counted.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from kaskad.domain.vocabulary import Channel

MASK: Final = "******"
DIGITS: Final = "0123456789"
# IPv6 clients get a /64 each from their provider: counting single addresses would let one
# customer line rotate through billions of them.
IPV6_PREFIX: Final = 64

RandBelow = Callable[[int], int]


class VerificationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EXPIRED = "expired"
    FAILED = "failed"
    SUPERSEDED = "superseded"


class CheckResult(StrEnum):
    APPROVED = "approved"
    WRONG_CODE = "wrong_code"
    EXPIRED = "expired"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    ALREADY_APPROVED = "already_approved"


# What a check of a verification already settled answers, whatever the code.
_SETTLED: Final[dict[VerificationStatus, CheckResult]] = {
    VerificationStatus.APPROVED: CheckResult.ALREADY_APPROVED,
    VerificationStatus.FAILED: CheckResult.TOO_MANY_ATTEMPTS,
    VerificationStatus.EXPIRED: CheckResult.EXPIRED,
    VerificationStatus.SUPERSEDED: CheckResult.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class VerificationState:
    status: VerificationStatus
    attempts: int
    max_attempts: int
    expires_at: datetime

    @property
    def attempts_left(self) -> int:
        return max(self.max_attempts - self.attempts, 0)

    @property
    def settled(self) -> bool:
        return self.status is not VerificationStatus.PENDING

    def seen_at(self, now: datetime) -> VerificationStatus:
        """The status as a reader sees it: a pending code past its expiry is expired even
        before any check has written that down."""
        if self.status is VerificationStatus.PENDING and now >= self.expires_at:
            return VerificationStatus.EXPIRED
        return self.status


def check(
    state: VerificationState, *, matches: bool, now: datetime
) -> tuple[VerificationState, CheckResult]:
    """One check of a code. A settled verification answers the same whatever the code, so
    a late or repeated check learns nothing about it; only a wrong code in time uses an
    attempt, and the attempt that uses the last one kills the verification."""
    if state.settled:
        return state, _SETTLED[state.status]
    if now >= state.expires_at:
        return replace(state, status=VerificationStatus.EXPIRED), CheckResult.EXPIRED
    if matches:
        return replace(state, status=VerificationStatus.APPROVED), CheckResult.APPROVED
    attempts = state.attempts + 1
    if attempts >= state.max_attempts:
        failed = replace(state, attempts=attempts, status=VerificationStatus.FAILED)
        return failed, CheckResult.TOO_MANY_ATTEMPTS
    return replace(state, attempts=attempts), CheckResult.WRONG_CODE


def check_alphabet(alphabet: str) -> str:
    """An alphabet of at least two distinct characters, none of them blank or the mask's."""
    if len(set(alphabet)) != len(alphabet) or len(alphabet) < 2:
        raise ValueError("an OTP alphabet needs at least two characters, each once")
    if any(ch.isspace() or ch == "*" for ch in alphabet):
        raise ValueError("an OTP alphabet cannot hold spaces or '*'")
    return alphabet


def generate_code(length: int, alphabet: str, randbelow: RandBelow) -> str:
    """``length`` characters drawn uniformly from ``alphabet``; ``randbelow`` is the random
    source (``secrets.randbelow`` in production, a seeded one in tests)."""
    if length < 1:
        raise ValueError("a code needs at least one character")
    return "".join(alphabet[randbelow(len(alphabet))] for _ in range(length))


def hash_code(key: bytes, verification_id: str, code: str) -> str:
    """HMAC-SHA256 of the code, keyed with the app's secret and bound to the verification:
    a database dump alone cannot be brute-forced, and one hash says nothing about another."""
    message = f"{verification_id}:{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def code_matches(key: bytes, verification_id: str, code: str, stored: str | None) -> bool:
    """Constant-time comparison, so response times do not leak how much of a guess was
    right. Nothing stored (a settled verification) never matches."""
    if stored is None:
        return False
    return hmac.compare_digest(hash_code(key, verification_id, code), stored)


def limit_key(key: bytes, kind: str, value: str) -> str:
    """A keyed hash of a phone or IP for counting sends: rate limits need equality, not the
    number itself, so none is stored for them."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def client_network(ip: str) -> str:
    """The address rate limits count: the IPv4 address, or the IPv6 /64 it belongs to."""
    address = ipaddress.ip_address(ip.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


@dataclass(frozen=True, slots=True)
class RateLimit:
    name: str  # "phone" or "ip", shown in the refusal
    limit: int  # 0 turns the limit off
    window: timedelta


@dataclass(frozen=True, slots=True)
class RateVerdict:
    allowed: bool
    reason: str
    retry_at: datetime | None = None


def check_rate(limit: RateLimit, recent: Sequence[datetime], now: datetime) -> RateVerdict:
    """Codes count inside the window ending now; the oldest of the last ``limit`` frees the
    next slot when it leaves the window."""
    if limit.limit <= 0:
        return RateVerdict(True, f"no {limit.name} limit")
    inside = sorted(t for t in recent if t > now - limit.window)
    if len(inside) < limit.limit:
        return RateVerdict(True, f"within the {limit.name} limit")
    retry_at = inside[-limit.limit] + limit.window
    reason = f"too many codes for this {limit.name}: {limit.limit} per {_seconds(limit.window)}"
    return RateVerdict(False, reason, retry_at)


def _seconds(window: timedelta) -> str:
    return f"{int(window.total_seconds())}s"


@dataclass(frozen=True, slots=True)
class Wording:
    """The texts a code travels in; ``{code}`` and ``{minutes}`` are filled in."""

    text: str
    push_title: str
    email_subject: str


def render(template: str, *, code: str, minutes: int) -> str:
    # Plain replacement, not str.format: a template cannot reach attributes or crash on a
    # stray brace.
    return template.replace("{code}", code).replace("{minutes}", str(minutes))


def spoken(code: str) -> str:
    """A voice call reads the code one character at a time."""
    return " ".join(code)


def content(channel: Channel, wording: Wording, *, code: str, minutes: int) -> dict[str, Any]:
    """What one step of the cascade sends. Called once with the code and once with the mask:
    the masked content replaces the sent one once the verification is settled."""
    shown = spoken(code) if channel is Channel.VOICE and code != MASK else code
    text = render(wording.text, code=shown, minutes=minutes)
    if channel is Channel.PUSH:
        return {"title": wording.push_title, "text": text}
    if channel is Channel.EMAIL:
        return {"subject": wording.email_subject, "text": text}
    return {"text": text}


def masked_contents(
    channels: Sequence[Channel], wording: Wording, minutes: int
) -> list[Mapping[str, Any]]:
    return [content(ch, wording, code=MASK, minutes=minutes) for ch in channels]


def expiry_minutes(expiry: timedelta) -> int:
    """Minutes as people read them in the message: rounded up, at least one."""
    return max(1, -(-int(expiry.total_seconds()) // 60))
