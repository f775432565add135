"""Cascade timers: steps whose wait ran out fall back to the next channel."""

from __future__ import annotations

from datetime import datetime

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.services import cascading


def advance_due(uow: UnitOfWork, *, now: datetime, limit: int) -> int:
    """Claim up to ``limit`` cascades whose timer fell due and move each on; returns how many."""
    with uow:
        rows = uow.notifications.claim_due(now, limit)
        if not rows:
            return 0
        for item in cascading.track(uow, rows).values():
            cascading.carry_out(uow, item, item.cascade.on_timeout(item.state, now), now)
        uow.commit()
        return len(rows)
