"""Triggers that are not events: segments, schedules and dates.

- A **segment** trigger is checked when contacts are written: a contact enters when the
  condition holds now and did not hold before (or the contact is new).
- **Schedule** and **date** triggers fire at a wall-clock time on each contact's clock. A
  live journey keeps one row with the next firing per time zone; when one comes, the
  engine walks that zone's contacts a page per transaction (the position is stored, so a
  crash resumes the walk where it stopped and nobody enters twice for one firing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from kaskad.adapters.storage.journeys import contact_zones, contacts_in_zones
from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.journeys.definition import (
    DateTrigger,
    JourneyDefinition,
    ScheduleTrigger,
    SegmentTrigger,
)
from kaskad.domain.journeys.schedules import date_due, next_firings
from kaskad.domain.vocabulary import Channel
from kaskad.services import runs
from kaskad.services.definitions import definition_of

Row = dict[str, Any]


# -- segments ------------------------------------------------------------------------------


def on_contacts(
    uow: UnitOfWork,
    *,
    changes: Sequence[tuple[Mapping[str, Any] | None, Row]],
    routing: Mapping[Channel, str],
    now: datetime,
) -> None:
    """Inside the transaction that wrote the contacts: enter those who joined a segment, and
    plan scheduled journeys' firings in time zones no contact lived in before."""
    _add_zones(uow, {after.get("timezone") or "UTC" for _, after in changes}, now)
    journeys = uow.journeys.active_of_kind("segment")
    if not journeys:
        return
    trigger = {"type": "segment", "payload": {}, "occurred_at": now.isoformat(), "mass": True}
    entries = runs.Entries(uow, [after["id"] for _, after in changes], [j["id"] for j in journeys])
    for journey in journeys:
        definition = definition_of(uow, journey["id"], journey["version"])
        condition = definition.trigger
        if not isinstance(condition, SegmentTrigger):
            continue
        for before, after in changes:
            was = before is not None and condition.condition.evaluate(
                runs.contact_scope(before), now=now
            )
            if not was and condition.condition.evaluate(runs.contact_scope(after), now=now):
                runs.enter_run(uow, journey, definition, after, trigger, routing, now, entries)


# -- schedules and dates -------------------------------------------------------------------


def sync_schedule(uow: UnitOfWork, *, journey: Mapping[str, Any], now: datetime) -> None:
    """Plan (or drop) the firings of a journey whose status or live version changed."""
    timed = journey["status"] == "active" and journey["trigger_kind"] in ("schedule", "date")
    if not timed or journey["version"] is None:
        uow.schedules.remove(journey["id"])
        return
    definition = definition_of(uow, journey["id"], journey["version"])
    trigger = definition.trigger
    assert isinstance(trigger, ScheduleTrigger | DateTrigger)
    # UTC always: contacts created by events (no phone, no zone) live there.
    firings = next_firings(trigger, contact_zones(uow.connection) | {"UTC"}, now)
    uow.schedules.put(
        {
            "journey_id": journey["id"],
            "version": journey["version"],
            "zones": _zones_json(firings),
            "due_at": min(firings.values(), default=None),
            "firing": None,
            "updated_at": now,
        }
    )


def _add_zones(uow: UnitOfWork, zones: set[str], now: datetime) -> None:
    for row in uow.schedules.all():
        missing = zones - row["zones"].keys()
        if not missing:
            continue
        journey = uow.journeys.get(row["journey_id"])
        if journey is None or journey["version"] != row["version"]:
            continue
        trigger = definition_of(uow, journey["id"], row["version"]).trigger
        assert isinstance(trigger, ScheduleTrigger | DateTrigger)
        planned = {z: datetime.fromisoformat(t) for z, t in row["zones"].items()}
        planned |= next_firings(trigger, missing, now)
        due = min(planned.values())
        if row["due_at"] is not None and row["firing"] is not None:
            due = min(due, row["due_at"])  # a firing under way goes on first
        uow.schedules.set(row["journey_id"], {"zones": _zones_json(planned), "due_at": due})


def fire_due(uow: UnitOfWork, *, routing: Mapping[Channel, str], now: datetime, limit: int) -> int:
    """Walk one page of contacts of one due firing; the number of contacts looked at."""
    with uow:
        row = uow.schedules.claim_due(now)
        if row is None:
            return 0
        journey = uow.journeys.get(row["journey_id"])
        if journey is None or journey["version"] != row["version"]:
            uow.schedules.remove(row["journey_id"])
            uow.commit()
            return 1
        definition = definition_of(uow, journey["id"], journey["version"])
        trigger = definition.trigger
        assert isinstance(trigger, ScheduleTrigger | DateTrigger)
        zones = {z: datetime.fromisoformat(t) for z, t in row["zones"].items()}
        firing = row["firing"] or _start(zones, now)
        at = datetime.fromisoformat(firing["at"])
        page = contacts_in_zones(uow.connection, firing["zones"], firing["cursor"], limit)
        entries = runs.Entries(uow, [c["id"] for c in page], [journey["id"]])
        for contact in page:
            if _fires_for(definition, trigger, contact, at, now):
                entry = {
                    "type": _kind(trigger),
                    "payload": {},
                    "occurred_at": firing["at"],
                    "mass": True,
                }
                runs.enter_run(uow, journey, definition, contact, entry, routing, now, entries)
        if len(page) == limit:
            firing["cursor"] = page[-1]["id"]
            uow.schedules.set(row["journey_id"], {"firing": firing, "updated_at": now})
        else:
            _plan_next(uow, row, trigger, zones, firing, now)
        uow.commit()
        return max(len(page), 1)


def _start(zones: Mapping[str, datetime], now: datetime) -> dict[str, Any]:
    due = min(zones.values())
    return {
        "at": due.isoformat(),
        "zones": sorted(z for z, t in zones.items() if t <= now and t == due),
        "cursor": None,
    }


def _fires_for(
    definition: JourneyDefinition,
    trigger: ScheduleTrigger | DateTrigger,
    contact: Mapping[str, Any],
    at: datetime,
    now: datetime,
) -> bool:
    zone = contact.get("timezone") or "UTC"
    attributes = contact.get("attributes") or {}
    if isinstance(trigger, DateTrigger) and not date_due(trigger, attributes, zone, at):
        return False
    return trigger.where is None or trigger.where.evaluate(runs.contact_scope(contact), now=now)


def _plan_next(
    uow: UnitOfWork,
    row: Row,
    trigger: ScheduleTrigger | DateTrigger,
    zones: dict[str, datetime],
    firing: Mapping[str, Any],
    now: datetime,
) -> None:
    """The firing is done: its zones get their next firing; zones new since are added.

    Firings missed while no engine ran are not replayed one by one: the next is after now.
    """
    after = max(datetime.fromisoformat(firing["at"]), now)
    zones |= next_firings(trigger, firing["zones"], after)
    new = contact_zones(uow.connection) - zones.keys()
    zones |= next_firings(trigger, new, now)
    values = {
        "zones": _zones_json(zones),
        "due_at": min(zones.values(), default=None),
        "firing": None,
        "updated_at": now,
    }
    uow.schedules.set(row["journey_id"], values)


def _kind(trigger: ScheduleTrigger | DateTrigger) -> str:
    return "schedule" if isinstance(trigger, ScheduleTrigger) else "date"


def _zones_json(zones: Mapping[str, datetime]) -> dict[str, str]:
    return {zone: at.isoformat() for zone, at in sorted(zones.items())}
