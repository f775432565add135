"""Signatures on webhooks, both ways: checking a provider's callbacks and signing what
kaskad posts. Comparisons are constant-time; a missing signature is a bad one."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from kaskad.domain.providers import BadSignature


def hmac_hex(secret: str | bytes, payload: bytes, digest: str = "sha256") -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, payload, digest).hexdigest()


def hmac_base64(secret: str | bytes, payload: bytes, digest: str = "sha1") -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, payload, digest).digest()).decode()


def require(headers: Mapping[str, str], name: str, expected: str) -> None:
    """Raise ``BadSignature`` unless header ``name`` (lower case) equals ``expected``."""
    given = headers.get(name.lower())
    if not given:
        raise BadSignature(f"no {name} header")
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise BadSignature(f"{name} does not match the body")


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()
