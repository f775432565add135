"""Inbound messages on both databases: tied to their contact and to the message they answer,
read as keywords (consent), ratings, keypresses or text, and turned into events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from kaskad.adapters.storage import schema
from kaskad.bootstrap import App
from kaskad.domain.cascades import Step
from kaskad.domain.notifications import NotificationRequest
from kaskad.domain.providers import InboundMessage
from kaskad.domain.two_way import CSAT, TwoWayRules
from kaskad.domain.vocabulary import Category, Channel, Until
from kaskad.engine.clock import VirtualClock
from kaskad.services import contacts, inbound, notifications
from kaskad.services.contacts import ContactPatch
from tests.integration.journey_helpers import run_for

PHONE = "+380501234567"
OTHER = "+380679999999"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _defaults(app: App) -> Any:
    inbound.configure(app.uow(), rules=TwoWayRules(), routing=app.routing)
    yield
    inbound.configure(app.uow(), rules=TwoWayRules(), routing=app.routing)


def _contact(app: App, clock: VirtualClock, external_id: str = "c-1", **fields: Any) -> None:
    patch = ContactPatch(external_id=external_id, phone=fields.pop("phone", PHONE), **fields)
    contacts.upsert_contacts(app.uow(), patches=[patch], default_region=None, now=clock.now())


def _send(
    app: App,
    clock: VirtualClock,
    channel: Channel = Channel.SMS,
    category: Category = Category.SERVICE,
    **content: Any,
) -> str:
    """A one-step notification, sent through the sandbox; returns the notification id."""
    request = NotificationRequest(
        contact="c-1",
        category=category,
        priority=60,
        steps=[Step(channel, {"text": "How did we do?", **content}, Until.SENT)],
    )
    accepted = notifications.accept_notification(
        app.uow(), request=request, routing=app.routing, now=clock.now()
    )
    run_for(app, clock, MINUTE)
    return accepted.id


def _message(app: App, notification_id: str) -> dict[str, Any]:
    with app.uow() as uow:
        [message] = uow.notifications.messages_of([notification_id])
    return message


def _reply(
    app: App,
    clock: VirtualClock,
    text: str,
    *,
    channel: Channel = Channel.SMS,
    sender: str = PHONE,
    in_reply_to: str | None = None,
    ref: str | None = None,
) -> int:
    clock.advance(timedelta(seconds=1))  # each reply at its own time, so they keep order
    message = InboundMessage(
        "sandbox",
        channel,
        sender,
        "7111",
        text,
        clock.now(),
        provider_message_id=ref,
        in_reply_to=in_reply_to,
    )
    return inbound.record_inbound(app.uow(), messages=[message], now=clock.now())


def _stored(app: App) -> list[dict[str, Any]]:
    table = schema.inbound_messages
    with app.uow() as uow:
        rows = uow.connection.execute(select(table).order_by(table.c.received_at, table.c.id))
        return [dict(r) for r in rows.mappings()]


_ORDER = ("message.received", "survey.answered", "consent.changed", "keypress")


def _events(app: App) -> list[tuple[str, dict[str, Any]]]:
    """The contact's events in the order one reply makes them, replies oldest first."""
    table = schema.events
    with app.uow() as uow:
        rows = uow.connection.execute(select(table.c.type, table.c.payload, table.c.received_at))
        ordered = sorted(rows, key=lambda r: (r.received_at, _ORDER.index(r.type)))
    return [(r.type, dict(r.payload)) for r in ordered]


def _consents(app: App) -> dict[str, Any]:
    return dict(contacts.get_contact(app.uow(), external_id="c-1")["consents"])


# -- tying a reply to its contact and to the message it answers -----------------------------


def test_a_reply_names_the_message_it_answers(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    first = _send(app, clock)
    second = _send(app, clock)
    answered = _message(app, first)
    assert _reply(app, clock, "Thanks!", in_reply_to=answered["provider_message_id"]) == 1
    [row] = _stored(app)
    assert (row["message_id"], row["kind"]) == (answered["id"], "text")
    [(kind, payload)] = _events(app)
    assert kind == "message.received"
    assert payload["notification_id"] == first != second
    assert (payload["text"], payload["kind"], payload["message_id"]) == (
        "Thanks!",
        "text",
        answered["id"],
    )


def test_a_reply_naming_nothing_answers_the_latest_message_on_its_channel(
    app: App, clock: VirtualClock
) -> None:
    _contact(app, clock)
    sms = _send(app, clock)
    _send(app, clock, Channel.VIBER)  # later, but on another channel
    _reply(app, clock, "ok")
    [row] = _stored(app)
    assert row["message_id"] == _message(app, sms)["id"]


def test_a_reply_after_the_window_answers_nothing(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    _send(app, clock)
    clock.advance(timedelta(days=2, minutes=1))  # the default window is two days
    _reply(app, clock, "still there?")
    [row] = _stored(app)
    assert row["message_id"] is None
    assert row["contact_id"] is not None
    [(_, payload)] = _events(app)
    assert payload["message_id"] is None


def test_the_window_is_configurable(app: App, clock: VirtualClock) -> None:
    inbound.configure(app.uow(), rules=TwoWayRules(reply_window=timedelta(days=7)))
    _contact(app, clock)
    sms = _send(app, clock)
    clock.advance(timedelta(days=5))
    _reply(app, clock, "late answer")
    assert _stored(app)[0]["message_id"] == _message(app, sms)["id"]


def test_a_whatsapp_sender_without_a_plus_is_the_contact(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    _reply(app, clock, "hello", channel=Channel.WHATSAPP, sender=PHONE[1:])
    [row] = _stored(app)
    assert (row["sender"], row["contact_id"] is not None) == (PHONE, True)


def test_a_stranger_is_stored_without_events(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    _reply(app, clock, "STOP", sender=OTHER)
    [row] = _stored(app)
    assert (row["contact_id"], row["kind"]) == (None, "keyword")
    assert _events(app) == []
    assert _consents(app) == {}


def test_the_same_reply_twice_is_stored_once(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    assert _reply(app, clock, "5", ref="mo-1") == 1
    assert _reply(app, clock, "5", ref="mo-1") == 0
    assert len(_stored(app)) == 1
    assert len(_events(app)) == 1


# -- ratings ------------------------------------------------------------------------------------


def test_a_rating_answers_a_message_that_asked_for_one(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    asked = _send(app, clock, rating_scale=CSAT.content())
    _reply(app, clock, "⭐⭐⭐⭐")
    [row] = _stored(app)
    assert row["kind"] == "rating"
    kinds = [kind for kind, _ in _events(app)]
    assert kinds == ["message.received", "survey.answered"]
    answer = _events(app)[1][1]
    assert (answer["rating"], answer["text"], answer["notification_id"]) == (4, "⭐⭐⭐⭐", asked)
    assert answer["scale"] == {"min": 1, "max": 5}
    assert answer["message_id"] == _message(app, asked)["id"]


def test_a_number_to_a_message_that_asked_nothing_is_text(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    _send(app, clock)
    _reply(app, clock, "5")
    assert _stored(app)[0]["kind"] == "text"
    assert [kind for kind, _ in _events(app)] == ["message.received"]


def test_text_to_a_survey_is_text(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    _send(app, clock, rating_scale=CSAT.content())
    _reply(app, clock, "The app keeps crashing")
    assert [(k, p["kind"]) for k, p in _events(app)] == [("message.received", "text")]


# -- keywords and consent --------------------------------------------------------------------


def test_stop_opts_out_of_marketing_and_service_on_its_channel(
    app: App, clock: VirtualClock
) -> None:
    _contact(app, clock, consents={"*": {"marketing": True}})
    _reply(app, clock, " Stop ")
    assert _consents(app) == {
        "*": {"marketing": True},
        "sms": {"marketing": False, "service": False},
    }
    [(_, received), (kind, change)] = _events(app)
    assert (received["kind"], received["keyword"]) == ("keyword", "stop")
    assert kind == "consent.changed"
    assert change["channel"] == "sms"
    assert change["categories"] == ["marketing", "service"]
    assert (change["consent"], change["keyword"], change["source"]) == (False, "stop", "keyword")
    timeline = contacts.timeline(app.uow(), external_id="c-1", limit=10, before=None)
    assert "consent.changed" in [item["name"] for item in timeline]


def test_after_stop_only_security_and_transactional_sms_go(app: App, clock: VirtualClock) -> None:
    _contact(app, clock, consents={"*": {"marketing": True}})
    _reply(app, clock, "СТОП")
    sent: dict[str, list[str]] = {}
    for category in Category:
        view = notifications.get_notification(
            app.uow(), notification_id=_send(app, clock, category=category)
        )
        sent[category.value] = [m["channel"] for m, _ in view["messages"]]
        if not sent[category.value]:
            assert f"opted out of {category.value} on sms" in view["decisions"][0]["reason"]
    assert sent == {"security": ["sms"], "transactional": ["sms"], "service": [], "marketing": []}


def test_start_opts_back_in(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    _reply(app, clock, "STOP")
    _reply(app, clock, "start")
    assert _consents(app) == {"sms": {"marketing": True, "service": True}}
    changes = [p["consent"] for k, p in _events(app) if k == "consent.changed"]
    assert changes == [False, True]


def test_stop_all_opts_out_everywhere(app: App, clock: VirtualClock) -> None:
    _contact(app, clock, consents={"viber": {"marketing": True}})
    _reply(app, clock, "stop all", channel=Channel.WHATSAPP)
    consents = _consents(app)
    assert consents["*"] == {"marketing": False, "service": False}
    assert consents["viber"] == {"marketing": False, "service": False}


def test_stop_twice_changes_consent_once(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    _reply(app, clock, "STOP")
    _reply(app, clock, "STOP")
    assert [k for k, _ in _events(app)].count("consent.changed") == 1


def test_keywords_can_be_switched_off(app: App, clock: VirtualClock) -> None:
    inbound.configure(app.uow(), rules=TwoWayRules(keywords=None))
    _contact(app, clock)
    _reply(app, clock, "STOP")
    assert _consents(app) == {}
    assert [(k, p["kind"]) for k, p in _events(app)] == [("message.received", "text")]


def test_a_configured_confirmation_goes_back_on_the_same_channel(
    app: App, clock: VirtualClock
) -> None:
    rules = TwoWayRules.of(stop_reply="You will get no more offers here. Text START to return.")
    inbound.configure(app.uow(), rules=rules, routing=app.routing)
    _contact(app, clock)
    _reply(app, clock, "STOP", ref="mo-1")
    run_for(app, clock, MINUTE)
    with app.uow() as uow:
        rows = uow.connection.execute(select(schema.messages)).mappings().all()
        [notification] = uow.connection.execute(select(schema.notifications)).mappings().all()
    assert [(r["channel"], r["status"], r["address"]) for r in rows] == [
        ("sms", "delivered", PHONE)
    ]
    assert rows[0]["content"]["text"].startswith("You will get no more offers")
    assert notification["category"] == "transactional"
    _reply(app, clock, "START")  # no start_reply configured: nothing goes back
    run_for(app, clock, MINUTE)
    with app.uow() as uow:
        assert len(uow.connection.execute(select(schema.messages)).all()) == 1


# -- keypresses -------------------------------------------------------------------------------


def test_a_keypress_is_an_event_on_the_call(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    call = _send(app, clock, Channel.VOICE, keypress={"digits": 1})
    ref = _message(app, call)["provider_message_id"]
    _reply(app, clock, "1", channel=Channel.VOICE, in_reply_to=ref, ref=f"{ref}:dtmf")
    [row] = _stored(app)
    assert (row["kind"], row["message_id"]) == ("keypress", _message(app, call)["id"])
    [(kind, payload)] = _events(app)
    assert kind == "keypress"
    assert (payload["digits"], payload["notification_id"]) == ("1", call)


def test_a_sender_we_cannot_read_is_the_contact_of_the_message_it_names(
    app: App, clock: VirtualClock
) -> None:
    _contact(app, clock)
    sent = _message(app, _send(app, clock, Channel.WHATSAPP))
    _reply(
        app,
        clock,
        "hi",
        channel=Channel.WHATSAPP,
        sender="wa-user-17",
        in_reply_to=sent["provider_message_id"],
    )
    [row] = _stored(app)
    assert (row["contact_id"], row["message_id"]) == (sent["contact_id"], sent["id"])
    assert [kind for kind, _ in _events(app)] == ["message.received"]


def test_an_erased_contact_gets_nothing_more(app: App, clock: VirtualClock) -> None:
    _contact(app, clock)
    sent = _message(app, _send(app, clock))
    contacts.erase_contact(app.uow(), external_id="c-1", now=clock.now())
    _reply(app, clock, "STOP", in_reply_to=sent["provider_message_id"])
    [row] = _stored(app)
    assert row["contact_id"] is None
    assert _events(app) == []
