"""When scheduled and date triggers fire, per time zone.

A schedule (`cron`) and a date trigger ("3 days before `tariff_change_date` at 10:00") both
fire at a wall-clock time on each contact's own clock. Contacts in one zone share that
instant, so the engine keeps one next firing per zone and, when it comes, walks the
contacts of that zone: the work per firing is one pass over those contacts, never a timer
per contact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time
from typing import Any

from kaskad.domain.conditions.evaluation import resolve
from kaskad.domain.journeys.cron import CronSpec, parse_cron
from kaskad.domain.journeys.definition import DateTrigger, ScheduleTrigger
from kaskad.domain.journeys.timing import Zone, relative_to_date, to_zone

Timed = ScheduleTrigger | DateTrigger


def daily_cron(at: time | None) -> CronSpec:
    """A date trigger fires every day at its time; the date test picks the contacts."""
    at = at or time(0, 0)
    return parse_cron(f"{at.minute} {at.hour} * * *")


def next_firing(trigger: Timed, zone: Zone, after: datetime) -> datetime:
    """The first firing strictly after ``after`` on the clock of ``zone``."""
    cron = trigger.cron if isinstance(trigger, ScheduleTrigger) else daily_cron(trigger.at)
    return cron.next_after(after, zone)


def next_firings(trigger: Timed, zones: Iterable[str], after: datetime) -> dict[str, datetime]:
    return {zone: next_firing(trigger, zone, after) for zone in sorted(set(zones))}


def date_due(trigger: DateTrigger, attributes: Mapping[str, Any], zone: Zone, at: datetime) -> bool:
    """Whether a firing at ``at`` is the contact's day: the attribute's date plus the offset
    falls on the local date of ``at``."""
    value = resolve(attributes, tuple(trigger.attribute.split(".")))
    due = relative_to_date(value, trigger.offset, trigger.at, zone)
    if due is None:
        return False
    tz = to_zone(zone)
    return due.astimezone(tz).date() == at.astimezone(tz).date()
