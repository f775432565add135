"""Parsed journey definitions: checked on the way in, kept per process on the way out.

A stored version never changes, so its parsed form is cached by (journey, version) and the
engine parses a definition once per process, not once per run.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.journeys.definition import JourneyDefinition, load_definition
from kaskad.domain.journeys.source import JourneyError
from kaskad.services.errors import NotFound, invalid_document

CACHE_SIZE: Final = 512


def check(source: str, *, filename: str = "<journey>") -> JourneyDefinition:
    """Parse and check a journey document; problems become one ``invalid_journey`` error."""
    try:
        return load_definition(source, filename=filename)
    except JourneyError as exc:
        raise invalid_document("invalid_journey", exc) from None


_CACHE: OrderedDict[tuple[str, str, int], JourneyDefinition] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def remember(uow: UnitOfWork, version: int, definition: JourneyDefinition) -> None:
    key = (uow.database, definition.id, version)
    with _CACHE_LOCK:
        _CACHE[key] = definition
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)


def definition_of(uow: UnitOfWork, journey_id: str, version: int) -> JourneyDefinition:
    """The parsed definition of a stored version (inside the caller's unit of work)."""
    with _CACHE_LOCK:
        cached = _CACHE.get((uow.database, journey_id, version))
    if cached is not None:
        return cached
    row = uow.journeys.version(journey_id, version)
    if row is None:
        raise NotFound("journey_not_found", f"no version {version} of journey {journey_id!r}")
    definition = load_definition(row["source"], filename=f"{journey_id} v{version}")
    remember(uow, version, definition)
    return definition


def forget() -> None:
    """Drop every cached definition (tests that empty a database reuse its ids)."""
    with _CACHE_LOCK:
        _CACHE.clear()
