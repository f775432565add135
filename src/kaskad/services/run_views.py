"""Read-only views of journeys and their runs: one run with its history, counts per step,
a stored version's source, and everything the runs of one contact did (for simulations).

Run positions are stored as step indexes; the views name steps by id, read from the
version's definition. A stored version never changes, so that mapping is stable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.journeys.definition import JourneyDefinition
from kaskad.domain.journeys.steps import ExitStep, JourneyStep
from kaskad.services import journeys
from kaskad.services.definitions import definition_of
from kaskad.services.errors import NotFound

Row = dict[str, Any]

# History kinds a run records when it reaches a step (an exit step records "exited").
STEP_KINDS: Final = frozenset({"send", "survey", "wait", "branch", "split", "update"})
ENDINGS: Final = ("completed", "exited", "converted", "failed")


def step_kind(step: JourneyStep) -> str:
    """``send``, ``survey``, ``wait``, ``branch``, ``split``, ``update`` or ``exit``."""
    return type(step).__name__.removesuffix("Step").lower()


def _step_id(definition: JourneyDefinition, position: int | None) -> str | None:
    if position is None or not 0 <= position < len(definition.steps):
        return None
    return definition.steps[position].id


# -- one run -------------------------------------------------------------------------------


def get_run(uow: UnitOfWork, *, run_id: str) -> Row:
    """The run, the step it is at, what it waits for, and its history, oldest first."""
    with uow:
        row = uow.runs.get(run_id)
        if row is None:
            raise NotFound("run_not_found", f"no run {run_id!r}")
        contact = uow.contacts.by_ids([row["contact_id"]]).get(row["contact_id"])
        definition = definition_of(uow, row["journey_id"], row["version"])
        history = uow.runs.history(run_id)
    waiting = dict(row["waiting"]) if row["waiting"] else None
    if waiting is not None:
        waiting["step"] = _step_id(definition, waiting.get("step"))
    return {
        "id": row["id"],
        "journey": row["journey_id"],
        "version": row["version"],
        "contact": contact["external_id"] if contact else None,
        "status": row["status"],
        "step": _step_id(definition, row["position"]),
        "waiting": waiting,
        "due_at": row["due_at"],
        "variant": row["variant"],
        "entered_at": row["entered_at"],
        "ended_at": row["ended_at"],
        "ended_reason": row["ended_reason"],
        "outcomes": row["outcomes"] or {},
        "history": [
            {"step": h["step"], "kind": h["kind"], "text": h["text"], "at": h["at"]}
            for h in history
        ],
    }


# -- a journey and its counts ------------------------------------------------------------


def journey_overview(uow: UnitOfWork, *, journey_id: str) -> Row:
    """The journey, the source of its latest version, and per version and step how many
    runs entered, wait there now, and ended there.

    A step's ``completed``/``exited``/``converted`` count the endings the run history
    records at that step (a branch to ``exit``, an exit step, a conversion credited to the
    run's last message). Endings outside any step — the end of the list, an ``exit_on``
    event, archiving — count on the version only.
    """
    view = journeys.get_journey(uow, journey_id=journey_id)
    row = view["journey"]
    # A second, read-only look: definitions of stored versions, which never change.
    with uow:
        definitions = {
            v["version"]: definition_of(uow, journey_id, v["version"]) for v in view["versions"]
        }
    by_status: dict[int, dict[str, int]] = defaultdict(dict)
    for count in view["runs"]:
        by_status[count["version"]][count["status"]] = int(count["runs"])
    by_step: dict[tuple[int, str | None], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for count in view["steps"]:
        by_step[(count["version"], count["step"])][count["kind"]] += int(count["count"])
    waiting: dict[tuple[int, int | None], int] = defaultdict(int)
    for count in view["waiting"]:
        waiting[(count["version"], count["position"])] += int(count["runs"])
    versions = []
    for stored in view["versions"]:
        number = stored["version"]
        definition = definitions[number]
        statuses = by_status.get(number, {})
        entered = sum(kinds.get("enter", 0) for (v, _), kinds in by_step.items() if v == number)
        versions.append(
            {
                "version": number,
                "created_at": stored["created_at"],
                "live": number == row["version"],
                "entered": entered,
                "active": statuses.get("active", 0),
                **{ending: statuses.get(ending, 0) for ending in ENDINGS},
                "steps": [
                    _step_counts(number, position, step, by_step, waiting)
                    for position, step in enumerate(definition.steps)
                ],
            }
        )
    return {"journey": row, "source": view["source"], "versions": versions}


def _step_counts(
    version: int,
    position: int,
    step: JourneyStep,
    by_step: Mapping[tuple[int, str | None], Mapping[str, int]],
    waiting: Mapping[tuple[int, int | None], int],
) -> Row:
    kinds = by_step.get((version, step.id), {})
    arrived = ("exited",) if isinstance(step, ExitStep) else STEP_KINDS
    return {
        "step": step.id,
        "kind": step_kind(step),
        "entered": sum(kinds.get(kind, 0) for kind in arrived),
        "waiting": waiting.get((version, position), 0),
        "completed": kinds.get("completed", 0),
        "exited": kinds.get("exited", 0),
        "converted": kinds.get("converted", 0),
    }


def journey_source(uow: UnitOfWork, *, journey_id: str, version: int | None = None) -> Row:
    """The source of one stored version (the latest when ``version`` is None)."""
    with uow:
        row = uow.journeys.get(journey_id)
        if row is None:
            raise NotFound("journey_not_found", f"no journey {journey_id!r}")
        number = row["latest"] if version is None else version
        stored = uow.journeys.version(journey_id, number) if number else None
        if stored is None:
            raise NotFound("version_not_found", f"journey {journey_id!r} has no version {number}")
        return {"journey": journey_id, "version": number, "source": stored["source"]}


# -- everything the runs of one contact did ----------------------------------------------


def contact_runs(uow: UnitOfWork, *, external_id: str) -> Row:
    """The contact's runs (oldest first) with their histories, and the messages and
    decisions of the notifications those runs sent."""
    with uow:
        contact = uow.contacts.by_external_id(external_id)
        if contact is None:
            raise NotFound("contact_not_found", f"no contact with external id {external_id!r}")
        runs = list(reversed(uow.runs.of_contact(contact["id"])))
        histories = {run["id"]: uow.runs.history(run["id"]) for run in runs}
        sent = _notifications(runs)
        messages = uow.notifications.messages_of(sent)
        reached: dict[str, dict[str, Any]] = defaultdict(dict)
        for status in uow.notifications.statuses_of(m["id"] for m in messages):
            if status["applied"]:  # when the message first reached each status
                reached[status["message_id"]].setdefault(status["status"], status["at"])
        decisions = [d for n in sorted(sent) for d in uow.notifications.decisions_of(n)]
    return {
        "contact": dict(contact),
        "runs": [
            {
                "id": run["id"],
                "journey": run["journey_id"],
                "version": run["version"],
                "status": run["status"],
                "variant": run["variant"],
                "entered_at": run["entered_at"],
                "ended_at": run["ended_at"],
                "ended_reason": run["ended_reason"],
                "history": histories[run["id"]],
            }
            for run in runs
        ],
        "messages": [
            {
                "id": m["id"],
                "run": sent[m["notification_id"]][0],
                "step": sent[m["notification_id"]][1],
                "notification": m["notification_id"],
                "channel": m["channel"],
                "status": m["status"],
                "content": m["content"],
                "created_at": m["created_at"],
                "statuses": reached.get(m["id"], {}),
            }
            for m in sorted(messages, key=lambda m: (m["created_at"], m["step"]))
        ],
        "decisions": [
            {
                "run": sent[d["notification_id"]][0],
                "step": sent[d["notification_id"]][1],
                "notification": d["notification_id"],
                "kind": d["kind"],
                "reason": d["reason"],
                "at": d["at"],
            }
            for d in decisions
        ],
    }


def _notifications(runs: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Notification id → the run and the send step that created it."""
    return {
        outcome["notification"]: (run["id"], step_id)
        for run in runs
        for step_id, outcome in (run["outcomes"] or {}).items()
        if outcome.get("notification")
    }
