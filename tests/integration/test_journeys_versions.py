"""Journey versions and statuses, end to end on the virtual clock, on both databases: a new
version never changes runs in flight, a draft waits for publishing, pausing stops new entries
but lets runs finish, archiving ends the runs in flight."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from kaskad.adapters.storage.schema import runs
from kaskad.bootstrap import App
from kaskad.domain.vocabulary import Channel
from kaskad.engine.clock import VirtualClock
from kaskad.services.errors import Invalid
from kaskad.services.journeys import JourneyStatus
from tests.integration.journey_helpers import (
    PHONE,
    PUSH_TOKEN,
    add_contact,
    api_triggered,
    apply,
    attributes_of,
    channels,
    edited,
    enter,
    example,
    history,
    local,
    outcome,
    post,
    run_for,
    runs_of,
    sent_to,
    set_status,
    the_run,
    times,
)

START = local(2026, 3, 2, 9)  # Monday 09:00 in Kyiv
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
OLD_VIDEO = "A one-minute video: how to pay by phone"
NEW_VIDEO = "New: paying by phone, in a one-minute video"
# Version 2: a new first step (every later step moves down one place), the video two days
# after the welcome instead of one, with a new text.
V2 = (
    ("steps:\n", "steps:\n  - update:\n      attributes: {onboarding_version: 2}\n"),
    ("  - wait: 1d\n", "  - wait: 2d\n"),
    (OLD_VIDEO, NEW_VIDEO),
)


@pytest.fixture
def onboarding(app: App, clock: VirtualClock) -> App:
    clock.set(START)
    applied = apply(app, clock, example("onboarding"))
    assert (applied.version, applied.status) == (1, JourneyStatus.ACTIVE)
    for number, phone in enumerate(["+380501112201", "+380501112202", "+380501112203"], 1):
        add_contact(app, clock, f"c-{number}", phone=phone, marketing=False)
    return app


def video(app: App, contact: str) -> tuple[object, str]:
    [message] = [m for m in sent_to(app, contact) if m.channel == "viber"]
    return message.at, str(message.content["text"])


def test_a_new_version_never_changes_runs_in_flight(onboarding: App, clock: VirtualClock) -> None:
    post(onboarding, clock, "account_opened", "c-1")
    run_for(onboarding, clock, HOUR)
    applied = apply(onboarding, clock, edited(example("onboarding"), *V2))
    assert (applied.version, applied.created) == (2, True)
    post(onboarding, clock, "account_opened", "c-2")
    run_for(onboarding, clock, 8 * DAY)

    old, new = the_run(onboarding, "c-1"), the_run(onboarding, "c-2")
    assert (old["version"], new["version"]) == (1, 2)
    assert (old["status"], new["status"]) == ("completed", "completed")
    # The run in flight finished on version 1's steps; the new entry took version 2's.
    assert video(onboarding, "c-1") == (START + DAY, OLD_VIDEO)
    assert video(onboarding, "c-2") == (START + HOUR + 2 * DAY, NEW_VIDEO)
    assert channels(onboarding, "c-1") == channels(onboarding, "c-2") == ["email", "viber", "sms"]
    assert "onboarding_version" not in attributes_of(onboarding, "c-1")
    assert attributes_of(onboarding, "c-2")["onboarding_version"] == 2
    with onboarding.uow() as uow:
        query = select(runs.c.version).where(runs.c.id == old["id"])
        versions = uow.connection.execute(query).scalars().all()
    assert versions == [1]


def test_applying_the_same_text_again_stores_no_version(
    onboarding: App, clock: VirtualClock
) -> None:
    again = apply(onboarding, clock, example("onboarding"))
    assert (again.version, again.created) == (1, False)


def test_a_draft_version_waits_until_it_is_published(onboarding: App, clock: VirtualClock) -> None:
    v2 = edited(example("onboarding"), *V2)
    draft = apply(onboarding, clock, v2, activate=False)
    assert (draft.version, draft.status) == (2, JourneyStatus.ACTIVE)  # version 1 stays live
    post(onboarding, clock, "account_opened", "c-1")
    published = apply(onboarding, clock, v2)  # the same text, now made live
    assert (published.version, published.created) == (2, False)
    post(onboarding, clock, "account_opened", "c-2")
    run_for(onboarding, clock, 8 * DAY)
    assert the_run(onboarding, "c-1")["version"] == 1
    assert the_run(onboarding, "c-2")["version"] == 2
    assert video(onboarding, "c-1")[1] == OLD_VIDEO
    assert video(onboarding, "c-2")[1] == NEW_VIDEO


def test_archiving_ends_the_runs_in_flight(onboarding: App, clock: VirtualClock) -> None:
    post(onboarding, clock, "account_opened", "c-1")
    run_for(onboarding, clock, 2 * HOUR)
    archived_at = clock.now()
    set_status(onboarding, clock, "onboarding", JourneyStatus.ARCHIVED)
    run = the_run(onboarding, "c-1")
    assert (run["status"], run["ended_reason"]) == ("exited", "journey archived")
    assert run["ended_at"] == archived_at
    assert history(onboarding, run["id"])[-1] == (None, "exited", "journey archived")

    post(onboarding, clock, "account_opened", "c-2")
    run_for(onboarding, clock, 8 * DAY)
    assert channels(onboarding, "c-1") == ["email"]  # no video, no tip
    assert runs_of(onboarding, "c-2") == []


def test_pausing_stops_new_entries_but_runs_in_flight_finish(
    onboarding: App, clock: VirtualClock
) -> None:
    post(onboarding, clock, "account_opened", "c-1")
    run_for(onboarding, clock, 2 * HOUR)
    set_status(onboarding, clock, "onboarding", JourneyStatus.PAUSED)
    post(onboarding, clock, "account_opened", "c-2")
    run_for(onboarding, clock, 8 * DAY)
    assert channels(onboarding, "c-1") == ["email", "viber", "sms"]
    assert the_run(onboarding, "c-1")["status"] == "completed"
    assert runs_of(onboarding, "c-2") == []

    set_status(onboarding, clock, "onboarding", JourneyStatus.ACTIVE)  # resumed
    post(onboarding, clock, "account_opened", "c-3")
    run_for(onboarding, clock, HOUR)
    assert channels(onboarding, "c-3") == ["email"]


def test_the_api_trigger_enters_only_an_active_journey(app: App, clock: VirtualClock) -> None:
    clock.set(START)
    apply(app, clock, api_triggered(example("onboarding")))
    for number in (1, 2, 3):
        add_contact(app, clock, f"c-{number}", phone=f"+38050111220{number}", marketing=False)
    set_status(app, clock, "onboarding", JourneyStatus.PAUSED)
    with pytest.raises(Invalid) as paused:
        enter(app, clock, "onboarding", "c-1")
    assert paused.value.code == "journey_not_active"
    set_status(app, clock, "onboarding", JourneyStatus.ACTIVE)
    assert enter(app, clock, "onboarding", "c-2").run_id
    set_status(app, clock, "onboarding", JourneyStatus.ARCHIVED)
    with pytest.raises(Invalid) as archived:
        enter(app, clock, "onboarding", "c-3")
    assert archived.value.code == "journey_not_active"
    run_for(app, clock, 8 * DAY)
    assert runs_of(app, "c-1") == runs_of(app, "c-3") == []
    assert the_run(app, "c-2")["ended_reason"] == "journey archived"


def test_a_paused_journey_still_honours_exit_events(onboarding: App, clock: VirtualClock) -> None:
    post(onboarding, clock, "account_opened", "c-1")
    run_for(onboarding, clock, 2 * HOUR)
    set_status(onboarding, clock, "onboarding", JourneyStatus.PAUSED)
    post(onboarding, clock, "account_closed", "c-1")
    run_for(onboarding, clock, 8 * DAY)
    assert channels(onboarding, "c-1") == ["email"]
    assert the_run(onboarding, "c-1")["ended_reason"] == "exit on account_closed event"


def test_archiving_stops_the_cascades_of_the_runs_it_ends(
    onboarding: App, clock: VirtualClock
) -> None:
    add_contact(onboarding, clock, "c-1", phone=PHONE, push_tokens=[PUSH_TOKEN], marketing=False)
    outcome(onboarding, clock, Channel.VIBER, PHONE, "undelivered")
    post(onboarding, clock, "account_opened", "c-1")
    run_for(onboarding, clock, DAY + HOUR)  # the video is out on Viber, push due in an hour
    assert channels(onboarding, "c-1") == ["email", "viber"]
    set_status(onboarding, clock, "onboarding", JourneyStatus.ARCHIVED)
    run_for(onboarding, clock, 8 * DAY)
    assert times(onboarding, "c-1") == [("email", START), ("viber", START + DAY)]
