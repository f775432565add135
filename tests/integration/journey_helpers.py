"""Shared steps for the end-to-end journey tests: apply an example, add a contact, post
events, choose sandbox outcomes, move the virtual clock and read back what was sent.

Every helper takes the ``app`` and the virtual ``clock`` of the test; nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from kaskad.adapters.storage.schema import contacts as contacts_table
from kaskad.adapters.storage.schema import messages, run_history, runs
from kaskad.bootstrap import App
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from kaskad.services import contacts, events, journeys, sandbox
from kaskad.services import runs as run_service
from kaskad.services.contacts import UNSET, ContactPatch
from kaskad.services.journeys import Applied, JourneyStatus

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
KYIV = ZoneInfo("Europe/Kyiv")
PHONE = "+380501234567"
EMAIL = "anna@bank.example"
PUSH_TOKEN = "push-token-anna"
_keys = itertools.count(1)


# -- journeys -----------------------------------------------------------------------------


def example(name: str) -> str:
    """The text of ``examples/journeys/NAME.yaml``."""
    return (EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8")


def edited(source: str, *changes: tuple[str, str]) -> str:
    """``source`` with each ``old`` text replaced by ``new``; each must occur exactly once,
    so a change to the example fails loudly here instead of testing something else."""
    for old, new in changes:
        count = source.count(old)
        assert count == 1, f"{old!r} occurs {count} times in the journey"
        source = source.replace(old, new)
    return source


_TRIGGER = re.compile(r"^trigger:.*?(?=^\S)", re.MULTILINE | re.DOTALL)


def api_triggered(source: str) -> str:
    """The journey with its trigger replaced by ``api: true``, everything else unchanged:
    the steps of a date, segment or schedule journey, entered by an explicit call."""
    changed, count = _TRIGGER.subn("trigger: {api: true}\n", source, count=1)
    assert count == 1, "the journey has no top-level trigger"
    return changed


def apply(app: App, clock: VirtualClock, source: str, *, activate: bool = True) -> Applied:
    return journeys.apply_journey(app.uow(), source=source, activate=activate, now=clock.now())


def set_status(app: App, clock: VirtualClock, journey_id: str, status: JourneyStatus) -> None:
    journeys.set_status(app.uow(), journey_id=journey_id, status=status, now=clock.now())


# -- contacts, events, API entries, sandbox outcomes --------------------------------------


def add_contact(
    app: App,
    clock: VirtualClock,
    external_id: str = "c-1",
    *,
    phone: str | None = PHONE,
    email: str | None = EMAIL,
    push_tokens: list[str] | None = None,
    timezone: str | None = None,
    marketing: bool = True,
    **attributes: Any,
) -> None:
    """Upsert a contact; marketing consent is given explicitly unless ``marketing=False``."""
    patch = ContactPatch(
        external_id=external_id,
        phone=phone,
        email=email,
        push_tokens=push_tokens if push_tokens is not None else UNSET,
        timezone=timezone if timezone is not None else UNSET,
        attributes=attributes,
        consents={"*": {"marketing": True}} if marketing else {},
    )
    _upsert(app, clock, patch)


def _upsert(app: App, clock: VirtualClock, patch: ContactPatch) -> None:
    """As the API and the import do, with the routing: a contact that joins a segment enters
    its journeys, and a new time zone gets the firings of scheduled journeys."""
    contacts.upsert_contacts(
        app.uow(), patches=[patch], default_region=None, now=clock.now(), routing=app.routing
    )


def set_attributes(app: App, clock: VirtualClock, external_id: str, **attributes: Any) -> None:
    patch = ContactPatch(external_id=external_id, attributes=attributes)
    _upsert(app, clock, patch)


def set_consents(
    app: App, clock: VirtualClock, external_id: str, consents: dict[str, dict[str, bool]]
) -> None:
    """Merge ``{channel or "*": {category or "*": bool}}`` into the contact's consents."""
    patch = ContactPatch(external_id=external_id, consents=consents)
    _upsert(app, clock, patch)


def attributes_of(app: App, external_id: str) -> dict[str, Any]:
    return dict(contacts.get_contact(app.uow(), external_id=external_id)["attributes"])


def post(app: App, clock: VirtualClock, type_: str, contact: str = "c-1", **payload: Any) -> None:
    """Record one event for the contact now, with a fresh idempotency key."""
    events.record_events(
        app.uow(),
        events=[events.EventIn(contact, type_, f"{type_}-{next(_keys)}", None, payload)],
        create_contacts=False,
        routing=app.routing,
        now=clock.now(),
    )


def enter(
    app: App, clock: VirtualClock, journey_id: str, contact: str = "c-1", **data: Any
) -> run_service.Entered:
    """The API trigger: put the contact into the journey now."""
    return run_service.enter(
        app.uow(),
        journey_id=journey_id,
        external_id=contact,
        data=data,
        routing=app.routing,
        now=clock.now(),
    )


def outcome(app: App, clock: VirtualClock, channel: Channel, address: str, result: str) -> None:
    """What the sandbox does with later sends on ``channel`` to ``address``."""
    sandbox.set_outcome(
        app.uow(),
        channel=channel,
        address=address,
        outcome=result,
        default_region=None,
        now=clock.now(),
    )


# -- time ---------------------------------------------------------------------------------


def local(
    year: int, month: int, day: int, hour: int, minute: int = 0, zone: ZoneInfo = KYIV
) -> datetime:
    """A wall-clock time in ``zone`` as the UTC instant the database stores."""
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


def run_for(app: App, clock: VirtualClock, span: timedelta) -> None:
    """Everything due in the next ``span``, jumping from one due time to the next."""
    asyncio.run(app.engine.run_until(clock, clock.now() + span))


def run_until(app: App, clock: VirtualClock, moment: datetime) -> None:
    assert moment >= clock.now(), f"{moment} is in the past of the virtual clock"
    asyncio.run(app.engine.run_until(clock, moment))


# -- reading back -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    channel: str
    status: str
    at: datetime
    content: dict[str, Any]
    superseded: bool


def contact_id(app: App, external_id: str) -> str:
    with app.uow() as uow:
        query = select(contacts_table.c.id).where(contacts_table.c.external_id == external_id)
        return str(uow.connection.execute(query).scalar_one())


def sent_to(app: App, external_id: str = "c-1") -> list[Sent]:
    """The contact's messages, oldest first (``at`` is when each was queued and sent)."""
    query = (
        select(messages)
        .where(messages.c.contact_id == contact_id(app, external_id))
        .order_by(messages.c.created_at, messages.c.step)
    )
    with app.uow() as uow:
        rows = uow.connection.execute(query).mappings().all()
    return [
        Sent(
            str(r["channel"]),
            str(r["status"]),
            r["created_at"],
            dict(r["content"]),
            bool(r["superseded"]),
        )
        for r in rows
    ]


def channels(app: App, external_id: str = "c-1") -> list[str]:
    return [m.channel for m in sent_to(app, external_id)]


def times(app: App, external_id: str = "c-1") -> list[tuple[str, datetime]]:
    return [(m.channel, m.at) for m in sent_to(app, external_id)]


def runs_of(app: App, external_id: str = "c-1") -> list[dict[str, Any]]:
    """The contact's runs, oldest first."""
    query = (
        select(runs)
        .where(runs.c.contact_id == contact_id(app, external_id))
        .order_by(runs.c.entered_at, runs.c.id)
    )
    with app.uow() as uow:
        return [dict(r) for r in uow.connection.execute(query).mappings()]


def the_run(app: App, external_id: str = "c-1") -> dict[str, Any]:
    [run] = runs_of(app, external_id)
    return run


def history(app: App, run_id: str) -> list[tuple[str | None, str, str]]:
    """The run's history as (step, kind, text), in order."""
    query = (
        select(run_history.c.step, run_history.c.kind, run_history.c.text)
        .where(run_history.c.run_id == run_id)
        .order_by(run_history.c.id)
    )
    with app.uow() as uow:
        return [(step, kind, text) for step, kind, text in uow.connection.execute(query)]
