"""Simulating a journey: one contact, a few events, weeks of virtual time in a second.

The simulation builds a throwaway kaskad of its own — a SQLite file in a temporary
directory, every channel on the sandbox, a virtual clock — applies the journey, feeds the
events at their times and lets the engine run to the horizon. What comes back is the
timeline: each run's steps, the messages sent with their final status, and the reasons
the cascades gave for skipping or falling back. The real database is never opened.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from kaskad.bootstrap import App, build
from kaskad.domain.contacts import InvalidContact
from kaskad.domain.durations import DurationError, parse_duration
from kaskad.domain.journeys.definition import JourneyDefinition
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from kaskad.interfaces.http.models import ContactIn
from kaskad.services import contacts, events, journeys, run_views, runs, sandbox
from kaskad.services.contacts import UNSET, ContactPatch
from kaskad.services.definitions import check
from kaskad.services.errors import Invalid
from kaskad.settings import SANDBOX_OUTCOMES, Settings

M = TypeVar("M", bound=BaseModel)
DEFAULT_CONTACT: Final = "sim-contact"
DEFAULT_HORIZON: Final = timedelta(days=30)
MAX_HORIZON: Final = timedelta(days=366)
MAX_EVENTS: Final = 1000
# Decisions that only restate what the messages show are left out of the timeline.
QUIET_DECISIONS: Final = frozenset({"send", "complete"})
_PHONE_CHANNELS: Final = (Channel.SMS, Channel.VIBER, Channel.WHATSAPP, Channel.VOICE)


# -- inputs ------------------------------------------------------------------------------


class ContactSpec(ContactIn):
    """The simulated contact, with the fields of PUT /v1/contacts/{external_id}."""

    external_id: str = Field(DEFAULT_CONTACT, min_length=1, max_length=200)


class EventSpec(BaseModel):
    """An event to feed in: ``at`` is ``+2d`` after the start or an ISO time (UTC when it
    has no offset); without it the event happens at the start."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")
    payload: dict[str, Any] = Field(default_factory=dict)
    at: str | None = Field(None, examples=["+2d", "2026-03-02T12:00:00Z"])
    id: str | None = Field(None, min_length=1, max_length=200, description="Idempotency key")


class OutcomeSpec(BaseModel):
    """What the sandbox does with messages on ``channel``; ``address`` defaults to the
    contact's phone (e-mail for email, first push token for push). ``keypress`` (voice
    only) answers the call and presses ``digits``."""

    model_config = ConfigDict(extra="forbid")
    channel: Channel
    outcome: Literal[(*SANDBOX_OUTCOMES, "keypress")]  # type: ignore[valid-type]
    address: str | None = Field(None, min_length=1, max_length=320)
    digits: str | None = Field(None, pattern=r"^[0-9*#]{1,10}$", examples=["1"])

    @model_validator(mode="after")
    def _keys_on_calls(self) -> Self:
        if (self.outcome == "keypress") != (self.digits is not None):
            raise ValueError("the keypress outcome takes digits, and only it")
        if self.outcome == "keypress" and self.channel is not Channel.VOICE:
            raise ValueError("keys are pressed on voice calls only")
        return self


class ReplySpec(BaseModel):
    """A message the contact sends at ``at`` (as for events) on ``channel``: it answers the
    latest message sent there, as a real reply would."""

    model_config = ConfigDict(extra="forbid")
    channel: Channel = Channel.SMS
    text: str = Field(min_length=1, max_length=4096, examples=["5", "STOP"])
    at: str | None = Field(None, examples=["+1h"])


# -- the result --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the timeline.

    ``kind`` is where it comes from: ``event`` (fed in; ``name`` is its type, or ``reply``
    for a message the contact sent, ``channel`` saying where), ``journey``
    (a run's history; ``name`` is enter/send/wait/resume/branch/.../completed/exited),
    ``message`` (``name`` is its final status) or ``decision`` (a cascade skipping a
    channel, falling back or failing).
    """

    at: datetime
    kind: Literal["event", "journey", "message", "decision"]
    name: str
    text: str
    run: str | None = None
    step: str | None = None  # for a message or a decision: the send step behind it
    channel: str | None = None
    statuses: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunResult:
    id: str
    journey: str
    version: int
    status: str
    entered_at: datetime
    ended_at: datetime | None
    ended_reason: str | None
    variant: str | None


@dataclass(frozen=True, slots=True)
class Simulation:
    journey: str
    contact: str
    timezone: str
    start: datetime
    end: datetime
    timeline: tuple[Item, ...]
    runs: tuple[RunResult, ...]

    def messages(self) -> list[Item]:
        return [item for item in self.timeline if item.kind == "message"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- parsing the inputs ------------------------------------------------------------------


def _invalid(field_name: str, message: str) -> Invalid:
    return Invalid(
        "invalid_simulation",
        f"{field_name}: {message}",
        [{"field": field_name, "message": message}],
    )


def _validated(model: type[M], value: Any, where: str) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise _invalid(where + path, first["msg"]) from None


def parse_horizon(value: str | float) -> timedelta:
    """``30d``, ``12h``…; at most a year. Raises ``Invalid`` (``invalid_simulation``)."""
    try:
        horizon = parse_duration(value)
    except DurationError as exc:
        raise _invalid("horizon", str(exc)) from None
    if horizon > MAX_HORIZON:
        raise _invalid("horizon", f"a simulation looks at most {MAX_HORIZON.days}d ahead")
    return horizon


def event_time(at: str | None, start: datetime, where: str = "at") -> datetime:
    """``None`` → the start; ``+2d`` → two days after it; an ISO time (UTC if naive)."""
    if at is None or not at.strip():
        return start
    text = at.strip()
    if text.startswith("+"):
        try:
            return start + parse_duration(text[1:])
        except DurationError as exc:
            raise _invalid(where, str(exc)) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(where, f"{at!r} is neither +DURATION (+2d) nor an ISO time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _checked_contact(spec: ContactSpec, default_region: str | None) -> ContactPatch:
    """The contact as PUT /v1/contacts would store it; refused with the same error codes."""
    try:
        return contacts.normalise(_contact_patch(spec), default_region)
    except InvalidContact as exc:
        field_name = f"contact.{exc.field}"
        raise Invalid(
            "invalid_" + exc.field.split(".")[0],
            f"{field_name}: {exc}",
            [{"field": field_name, "message": str(exc)}],
        ) from None


def _contact_patch(spec: ContactSpec) -> ContactPatch:
    given = spec.model_fields_set
    fields = ("phone", "email", "push_tokens", "locale", "timezone")
    return ContactPatch(
        external_id=spec.external_id,
        **{name: getattr(spec, name) if name in given else UNSET for name in fields},
        attributes=spec.attributes,
        consents=spec.consents,
    )


class _SimulationSettings(Settings):
    """Settings from the arguments alone: no environment variable or file can point a
    simulation at a real database or provider."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _settings(database: Path, default_region: str | None) -> Settings:
    return _SimulationSettings(
        mode="development",
        database_url=f"sqlite:///{database}",
        sandbox_enabled=True,
        channels=dict.fromkeys(Channel, "sandbox"),
        sandbox={"default_outcome": "delivered", "random_mix": {}},
        default_phone_region=default_region,
        log_json=False,
    )


# -- the simulation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    journey: str
    source: str
    contact: ContactPatch  # checked and normalised
    events: list[tuple[datetime, EventSpec]]
    outcomes: list[OutcomeSpec]
    replies: list[tuple[datetime, ReplySpec]]
    start: datetime
    end: datetime
    data: Mapping[str, Any]
    trigger: str  # event, segment, schedule, date or api


def simulate(
    source: str,
    *,
    contact: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    outcomes: Sequence[Mapping[str, Any]] = (),
    horizon: timedelta = DEFAULT_HORIZON,
    start: datetime | None = None,
    data: Mapping[str, Any] | None = None,
    default_region: str | None = None,
    filename: str = "<journey>",
    replies: Sequence[Mapping[str, Any]] = (),
) -> Simulation:
    """Run the journey for one contact on a throwaway database and a virtual clock.

    ``start`` defaults to now, rounded down to the minute; the run lasts ``horizon``. A
    journey with ``trigger: {api: true}`` is entered at the start with ``data``. Bad input
    (the journey, the contact, an event, an outcome, a reply, the horizon) raises
    ``Invalid``. ``replies`` are messages the contact sends (``{"channel", "text", "at"}``).
    Call it from synchronous code: it runs its own event loop.
    """
    definition = check(source, filename=filename)
    plan = _plan(
        definition, source, contact, events, outcomes, horizon, start, data, default_region
    )
    plan = replace(plan, replies=_replies(replies, plan))
    with tempfile.TemporaryDirectory(prefix="kaskad-simulation-") as directory:
        clock = VirtualClock(plan.start)
        settings = _settings(Path(directory) / "simulation.db", default_region)
        app = build(settings, clock=clock, observe=False)
        try:
            app.migrate()
            asyncio.run(_drive(app, clock, plan))
            view = run_views.contact_runs(app.uow(), external_id=plan.contact.external_id)
        finally:
            app.db.dispose()
    return _result(plan, view)


def _plan(
    definition: JourneyDefinition,
    source: str,
    contact: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    outcomes: Sequence[Mapping[str, Any]],
    horizon: timedelta,
    start: datetime | None,
    data: Mapping[str, Any] | None,
    default_region: str | None,
) -> _Plan:
    if horizon <= timedelta(0) or horizon > MAX_HORIZON:
        raise _invalid("horizon", f"must be more than 0 and at most {MAX_HORIZON.days}d")
    if start is None:
        start = datetime.now(UTC).replace(second=0, microsecond=0)
    elif start.tzinfo is None:
        raise _invalid("start", "give a time zone offset, as in 2026-03-02T12:00:00Z")
    start = start.astimezone(UTC)
    end = start + horizon
    if not isinstance(events, Sequence) or isinstance(events, str | bytes):
        raise _invalid("events", "expected a list of events")
    if not isinstance(outcomes, Sequence) or isinstance(outcomes, str | bytes):
        raise _invalid("outcomes", "expected a list of outcomes")
    if len(events) > MAX_EVENTS:
        raise _invalid("events", f"at most {MAX_EVENTS} events")
    person = _checked_contact(_validated(ContactSpec, contact, "contact"), default_region)
    timed = []
    for index, raw in enumerate(events):
        spec = _validated(EventSpec, raw, f"events[{index}]")
        at = event_time(spec.at, start, f"events[{index}].at")
        if not start <= at <= end:
            raise _invalid(
                f"events[{index}].at",
                f"{_json_default(at)} is outside the simulation "
                f"({_json_default(start)} to {_json_default(end)})",
            )
        timed.append((at, spec))
    timed.sort(key=lambda pair: pair[0])  # stable: events at one time keep their order
    wanted = [_validated(OutcomeSpec, raw, f"outcomes[{i}]") for i, raw in enumerate(outcomes)]
    trigger = type(definition.trigger).__name__.removesuffix("Trigger").lower()
    return _Plan(
        definition.id, source, person, timed, wanted, [], start, end, dict(data or {}), trigger
    )


def _replies(replies: Sequence[Mapping[str, Any]], plan: _Plan) -> list[tuple[datetime, ReplySpec]]:
    if not isinstance(replies, Sequence) or isinstance(replies, str | bytes):
        raise _invalid("replies", "expected a list of replies")
    if len(replies) > MAX_EVENTS:
        raise _invalid("replies", f"at most {MAX_EVENTS} replies")
    timed = []
    for index, raw in enumerate(replies):
        spec = _validated(ReplySpec, raw, f"replies[{index}]")
        at = event_time(spec.at, plan.start, f"replies[{index}].at")
        if not plan.start <= at <= plan.end:
            raise _invalid(f"replies[{index}].at", "outside the simulation")
        _address(plan.contact, spec.channel, f"replies[{index}].channel")
        timed.append((at, spec))
    return sorted(timed, key=lambda pair: pair[0])


async def _drive(app: App, clock: VirtualClock, plan: _Plan) -> None:
    for index, outcome in enumerate(plan.outcomes):
        address = outcome.address or _address(
            plan.contact, outcome.channel, f"outcomes[{index}].address"
        )
        if outcome.digits is not None:
            sandbox.set_keypress(
                app.uow(),
                address=address,
                digits=outcome.digits,
                default_region=app.settings.default_phone_region,
                now=clock.now(),
            )
            continue
        sandbox.set_outcome(
            app.uow(),
            channel=outcome.channel,
            address=address,
            outcome=outcome.outcome,
            default_region=app.settings.default_phone_region,
            now=clock.now(),
        )
    if plan.trigger in ("schedule", "date"):
        # Firings are planned for the time zones contacts live in when the journey goes live.
        _upsert_contact(app, clock, plan)
        _apply(app, clock, plan)
    else:
        # Written while the journey is live, so a segment trigger sees the contact join.
        _apply(app, clock, plan)
        _upsert_contact(app, clock, plan)
    if plan.trigger == "api":
        runs.enter(
            app.uow(),
            journey_id=plan.journey,
            external_id=plan.contact.external_id,
            data=plan.data,
            routing=app.routing,
            now=clock.now(),
        )
    feed: list[tuple[datetime, int, EventSpec | ReplySpec]] = [
        *((at, index, spec) for index, (at, spec) in enumerate(plan.events)),
        *((at, -1, spec) for at, spec in plan.replies),
    ]
    for at, index, item in sorted(feed, key=lambda entry: entry[0]):  # stable: events first
        await app.engine.run_until(clock, at)
        if isinstance(item, ReplySpec):
            _reply(app, clock, plan, item)
            continue
        spec = item
        events.record_events(
            app.uow(),
            events=[
                events.EventIn(
                    plan.contact.external_id,
                    spec.type,
                    spec.id or f"simulated-{index + 1}",
                    at,
                    spec.payload,
                )
            ],
            create_contacts=False,
            routing=app.routing,
            now=clock.now(),
        )
    await app.engine.run_until(clock, plan.end)


def _reply(app: App, clock: VirtualClock, plan: _Plan, spec: ReplySpec) -> None:
    """The contact's message, through the sandbox, as a provider would deliver it."""
    sandbox.reply(
        app.uow(),
        channel=spec.channel,
        text=spec.text,
        sender=None,
        contact=plan.contact.external_id,
        message_id=None,
        routing=app.routing,
        default_region=app.settings.default_phone_region,
        now=clock.now(),
    )


def _apply(app: App, clock: VirtualClock, plan: _Plan) -> None:
    journeys.apply_journey(app.uow(), source=plan.source, activate=True, now=clock.now())


def _upsert_contact(app: App, clock: VirtualClock, plan: _Plan) -> None:
    contacts.upsert_contacts(
        app.uow(),
        patches=[plan.contact],
        default_region=app.settings.default_phone_region,
        now=clock.now(),
        routing=app.routing,
    )


def _address(contact: ContactPatch, channel: Channel, field_name: str) -> str:
    """The contact's own address for ``channel``."""
    if channel is Channel.EMAIL:
        address, what = contact.email, "e-mail address"
    elif channel is Channel.PUSH:
        tokens = contact.push_tokens if isinstance(contact.push_tokens, list) else []
        address, what = (tokens[0] if tokens else None), "push token"
    else:
        address, what = contact.phone, "phone"
    if not isinstance(address, str) or not address:
        hint = ": give an address" if field_name.endswith("address") else ""
        raise _invalid(field_name, f"the contact has no {what} to use for {channel}{hint}")
    return str(address)


# -- the timeline ------------------------------------------------------------------------


def _result(plan: _Plan, view: Mapping[str, Any]) -> Simulation:
    # Sorted by time; at one instant events come first, then what the runs did in the order
    # they did it, with a send step's decisions and message right after the step.
    keyed: list[tuple[datetime, int, float, Item]] = []
    sends: dict[tuple[str, str], tuple[datetime, float]] = {}

    def add(item: Item, after: float | None = None) -> None:
        order = float(len(keyed)) if after is None else after
        keyed.append((item.at, 0 if item.kind == "event" else 1, order, item))

    def near_send(item: Item, offset: float) -> float | None:
        send = sends.get((item.run or "", item.step or ""))
        return send[1] + offset if send is not None and send[0] == item.at else None

    for at, spec in plan.events:
        payload = json.dumps(spec.payload, ensure_ascii=False, sort_keys=True)
        add(Item(at, "event", spec.type, payload if spec.payload else ""))
    for at, reply in plan.replies:
        add(Item(at, "event", "reply", reply.text, channel=reply.channel.value))
    for run in view["runs"]:
        for entry in run["history"]:
            if entry["kind"] == "send":
                sends[(run["id"], entry["step"])] = (entry["at"], float(len(keyed)))
            add(
                Item(entry["at"], "journey", entry["kind"], entry["text"], run["id"], entry["step"])
            )
    for decision in view["decisions"]:
        if decision["kind"] not in QUIET_DECISIONS:
            item = Item(
                decision["at"],
                "decision",
                decision["kind"],
                decision["reason"],
                decision["run"],
                decision["step"],
            )
            add(item, near_send(item, 0.25))
    for message in view["messages"]:
        item = Item(
            message["created_at"],
            "message",
            message["status"],
            content_text(message["content"]),
            message["run"],
            message["step"],
            message["channel"],
            dict(message["statuses"]),
        )
        add(item, near_send(item, 0.5))
    keyed.sort(key=lambda entry: entry[:3])
    contact = view["contact"]
    return Simulation(
        journey=plan.journey,
        contact=plan.contact.external_id,
        timezone=contact.get("timezone") or "UTC",
        start=plan.start,
        end=plan.end,
        timeline=tuple(item for *_, item in keyed),
        runs=tuple(
            RunResult(
                id=run["id"],
                journey=run["journey"],
                version=run["version"],
                status=run["status"],
                entered_at=run["entered_at"],
                ended_at=run["ended_at"],
                ended_reason=run["ended_reason"],
                variant=run["variant"],
            )
            for run in view["runs"]
        ),
    )


_TAG = re.compile(r"<[^>]+>")


def content_text(content: Mapping[str, Any]) -> str:
    """A message's content in one line: the subject and the text (or the HTML's text)."""
    text = content.get("text")
    if not text and content.get("html"):
        text = " ".join(_TAG.sub(" ", str(content["html"])).split())
    parts = [str(p) for p in (content.get("subject") or content.get("title"), text) if p]
    return " — ".join(parts) if parts else json.dumps(content, ensure_ascii=False)
