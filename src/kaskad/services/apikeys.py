"""API keys: random, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.ids import new_id
from kaskad.services.errors import Invalid

PREFIX = "ksk_"


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(uow: UnitOfWork, *, name: str, now: datetime, replace: bool = False) -> str:
    """Create a key and return it; only its hash is stored. ``replace`` revokes older keys
    of the same name."""
    name = name.strip()
    if not name or len(name) > 200:
        raise Invalid("invalid_name", "an API key needs a name of 1 to 200 characters")
    key = PREFIX + secrets.token_urlsafe(32)
    with uow:
        if replace:
            uow.api_keys.revoke_named(name, now)
        uow.api_keys.add(
            {
                "id": new_id("key"),
                "name": name,
                "key_hash": hash_key(key),
                "prefix": key[:10],
                "created_at": now,
                "revoked_at": None,
            }
        )
        uow.commit()
    return key


def key_name(uow: UnitOfWork, *, key: str) -> str | None:
    """The name of an active key, or None."""
    with uow:
        row = uow.api_keys.active_by_hash(hash_key(key))
        return None if row is None else str(row["name"])


def revoke_api_keys(uow: UnitOfWork, *, name: str, now: datetime) -> int:
    with uow:
        count = uow.api_keys.revoke_named(name, now)
        uow.commit()
        return count
