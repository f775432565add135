"""Journey definitions: apply a new version, publish, pause, archive, read back.

A version is immutable once stored: a run keeps the version it entered, so publishing a new
one never changes runs already in flight.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.journeys.definition import EventTrigger, JourneyDefinition, Trigger
from kaskad.services import runs, triggers
from kaskad.services.definitions import check, definition_of, remember
from kaskad.services.errors import Invalid, NotFound


class JourneyStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class Applied:
    id: str
    version: int
    created: bool
    status: JourneyStatus


def apply_journey(
    uow: UnitOfWork, *, source: str, activate: bool, now: datetime, filename: str = "<journey>"
) -> Applied:
    """Store the document as the journey's next version, unless it is the latest already.

    With ``activate`` the version goes live: new runs enter it; runs in flight keep theirs.
    """
    definition = check(source, filename=filename)
    digest = hashlib.sha256(source.encode()).hexdigest()
    with uow:
        row = uow.journeys.get(definition.id, lock=True)
        if row is None:
            row = _new_journey(uow, definition, now)
        latest = uow.journeys.version(definition.id, row["latest"]) if row["latest"] else None
        created = latest is None or latest["digest"] != digest
        version = row["latest"] + 1 if created else row["latest"]
        if created:
            uow.journeys.add_version(
                {
                    "journey_id": definition.id,
                    "version": version,
                    "source": source,
                    "digest": digest,
                    "created_at": now,
                }
            )
        values: dict[str, Any] = {"latest": version, "name": definition.name, "updated_at": now}
        if activate:
            values |= _live(definition.trigger, version) | {"status": JourneyStatus.ACTIVE.value}
        uow.journeys.update(definition.id, values)
        if activate:
            triggers.sync_schedule(uow, journey={**row, **values}, now=now)
        uow.commit()
        runs.forget_live()  # not an after-commit callback: a simulation drops those
    status = JourneyStatus(str(values.get("status", row["status"])))
    remember(uow, version, definition)
    return Applied(definition.id, version, created, status)


def _new_journey(uow: UnitOfWork, definition: JourneyDefinition, now: datetime) -> dict[str, Any]:
    row = {
        "id": definition.id,
        "name": definition.name,
        "status": JourneyStatus.DRAFT.value,
        "version": None,
        "latest": 0,
        "trigger_kind": None,
        "trigger_event": None,
        "created_at": now,
        "updated_at": now,
    }
    uow.journeys.insert(row)
    return row


def _live(trigger: Trigger, version: int) -> dict[str, Any]:
    kind = type(trigger).__name__.removesuffix("Trigger").lower()
    event = trigger.type if isinstance(trigger, EventTrigger) else None
    return {"version": version, "trigger_kind": kind, "trigger_event": event}


def set_status(
    uow: UnitOfWork,
    *,
    journey_id: str,
    status: JourneyStatus,
    now: datetime,
    publish: bool = False,
) -> dict[str, Any]:
    """Publish (the latest version goes live), pause, resume or archive a journey.

    Pausing stops new entries; runs in flight go on. Resuming keeps the live version (a newer
    draft stays a draft). Archiving also ends the runs in flight; only publishing brings an
    archived journey back.
    """
    with uow:
        row = uow.journeys.get(journey_id, lock=True)
        if row is None:
            raise NotFound("journey_not_found", f"no journey {journey_id!r}")
        _check_transition(row, status, publish)
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        if publish and row["version"] != row["latest"]:
            definition = definition_of(uow, journey_id, row["latest"])
            values |= _live(definition.trigger, row["latest"])
        if status is JourneyStatus.ARCHIVED:
            runs.end_all(uow, journey_id=journey_id, why="journey archived", now=now)
        uow.journeys.update(journey_id, values)
        triggers.sync_schedule(uow, journey={**row, **values}, now=now)
        uow.commit()
        runs.forget_live()  # not an after-commit callback: a simulation drops those
        return {**row, **values}


def _check_transition(row: dict[str, Any], status: JourneyStatus, publish: bool) -> None:
    if publish:
        return
    if row["status"] == JourneyStatus.ARCHIVED.value and status is not JourneyStatus.ARCHIVED:
        raise Invalid(
            "journey_archived", f"journey {row['id']!r} is archived: publish it to bring it back"
        )
    if status is JourneyStatus.ACTIVE and row["version"] is None:
        raise Invalid(
            "journey_not_published", f"journey {row['id']!r} has no live version: publish it"
        )


def get_journey(uow: UnitOfWork, *, journey_id: str) -> dict[str, Any]:
    """The journey, its versions, the source of the latest and counts per version and step."""
    with uow:
        row = uow.journeys.get(journey_id)
        if row is None:
            raise NotFound("journey_not_found", f"no journey {journey_id!r}")
        latest = uow.journeys.version(journey_id, row["latest"])
        return {
            "journey": row,
            "versions": uow.journeys.versions(journey_id),
            "source": latest["source"] if latest else None,
            "runs": uow.runs.status_counts(journey_id),
            "steps": uow.runs.step_counts(journey_id),
            "waiting": uow.runs.waiting_counts(journey_id),
        }


def list_journeys(uow: UnitOfWork) -> list[dict[str, Any]]:
    with uow:
        return uow.journeys.all()
