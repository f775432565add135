"""Reading inbound messages: keywords, ratings, keypresses and consent changes, by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kaskad.domain.cascades import (
    Cascade,
    CascadeState,
    CascadeStatus,
    DecisionKind,
    Step,
    SupersedeStep,
)
from kaskad.domain.contacts import Reachability
from kaskad.domain.two_way import (
    CSAT,
    NPS,
    InboundKind,
    Keyword,
    Keywords,
    RatingScale,
    TwoWayRules,
    consent_change,
    keyword_key,
    read_digits,
    read_inbound,
    read_rating,
    sender_phone,
)
from kaskad.domain.vocabulary import Category, Channel
from kaskad.settings import TwoWaySettings

KEYWORDS = Keywords.of()


@pytest.mark.parametrize(
    ("text", "meaning"),
    [
        ("STOP", Keyword.STOP),
        ("stop", Keyword.STOP),
        ("  Stop.  ", Keyword.STOP),
        ("S T O P", Keyword.STOP),
        ("Stop!", Keyword.STOP),
        ("UNSUBSCRIBE", Keyword.STOP),
        ("СТОП", Keyword.STOP),
        ("стоп", Keyword.STOP),
        ("«Стоп»", Keyword.STOP),
        ("Відписатися", Keyword.STOP),
        ("STOP ALL", Keyword.STOP_ALL),
        ("stop   all", Keyword.STOP_ALL),
        ("StopAll", Keyword.STOP_ALL),
        ("стоп всё", Keyword.STOP_ALL),
        ("СТОП ВСЕ", Keyword.STOP_ALL),
        ("START", Keyword.START),
        ("start\n", Keyword.START),
        ("Старт", Keyword.START),
        ("ＳＴＯＰ", Keyword.STOP),  # full-width letters from some phone keyboards
        ("please stop", None),
        ("stopped", None),
        ("STOP IT", None),
        ("5", None),
        ("", None),
    ],
)
def test_keywords_ignore_case_whitespace_and_edges(text: str, meaning: Keyword | None) -> None:
    assert KEYWORDS.match(text) is meaning


def test_keywords_are_configurable() -> None:
    words = Keywords.of(stop=["halt", "хватит"], stop_all=[], start=["go on"])
    assert words.match("HALT") is Keyword.STOP
    assert words.match("Хватит") is Keyword.STOP
    assert words.match("Go On") is Keyword.START
    assert words.match("STOP") is None


@pytest.mark.parametrize(
    ("stop", "start", "problem"),
    [
        (["stop"], ["STOP"], "both a stop and a start keyword"),
        (["..."], [], "has no letters"),
    ],
)
def test_keywords_refuse_a_word_with_two_meanings_or_none(
    stop: list[str], start: list[str], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Keywords.of(stop=stop, stop_all=[], start=start)


def test_keyword_key_folds_yo_and_whitespace() -> None:
    assert keyword_key(" Стоп  Всё! ") == keyword_key("стопвсе") == "стопвсе"


@pytest.mark.parametrize(
    ("text", "scale", "rating"),
    [
        ("5", CSAT, 5),
        (" 4 ", CSAT, 4),
        ("1.", CSAT, 1),
        ("5 stars", CSAT, 5),
        ("3 star", CSAT, 3),
        ("5stars", CSAT, 5),
        ("4/5", CSAT, 4),
        ("4 out of 5", CSAT, 4),
        ("5 звёзд", CSAT, 5),
        ("4 зірки", CSAT, 4),
        ("⭐⭐⭐⭐", CSAT, 4),
        ("⭐️⭐️⭐️", CSAT, 3),  # with emoji variation selectors
        ("★★★★★", CSAT, 5),
        ("⭐ ⭐", CSAT, 2),
        ("5️⃣", CSAT, 5),
        ("5 ⭐", CSAT, 5),
        ("５", CSAT, 5),
        ("0", CSAT, None),
        ("6", CSAT, None),
        ("⭐⭐⭐⭐⭐⭐", CSAT, None),
        ("great", CSAT, None),
        ("5 days", CSAT, None),
        ("I give it 5", CSAT, None),
        ("-3", CSAT, None),
        ("4.5", CSAT, None),
        ("", CSAT, None),
        ("0", NPS, 0),
        ("10", NPS, 10),
        ("🔟", NPS, 10),
        ("9/10", NPS, 9),
        ("11", NPS, None),
    ],
)
def test_ratings(text: str, scale: RatingScale, rating: int | None) -> None:
    assert read_rating(text, scale) == rating


@pytest.mark.parametrize(
    ("content", "scale"),
    [
        ({"text": "Rate us", "rating_scale": {"min": 1, "max": 5}}, CSAT),
        ({"rating_scale": {"min": 0, "max": 10}}, NPS),
        ({"text": "hello"}, None),
        ({"rating_scale": {"min": 5, "max": 1}}, None),
        ({"rating_scale": {"min": "1", "max": 5}}, None),
        ({"rating_scale": [1, 5]}, None),
        (None, None),
    ],
)
def test_a_message_asks_for_a_rating_through_its_content(
    content: dict[str, object] | None, scale: RatingScale | None
) -> None:
    assert RatingScale.of_content(content) == scale


def test_a_scale_carries_itself_in_content() -> None:
    assert RatingScale.of_content({"rating_scale": NPS.content()}) == NPS
    with pytest.raises(ValueError, match=r"0\.\.10"):
        RatingScale(1, 11)


@pytest.mark.parametrize(
    ("text", "channel", "scale", "kind", "detail"),
    [
        ("STOP", Channel.SMS, None, InboundKind.KEYWORD, Keyword.STOP),
        ("STOP", Channel.SMS, CSAT, InboundKind.KEYWORD, Keyword.STOP),  # a keyword first
        ("5", Channel.SMS, CSAT, InboundKind.RATING, 5),
        ("5", Channel.WHATSAPP, None, InboundKind.TEXT, None),  # nobody asked for a rating
        ("7", Channel.VIBER, CSAT, InboundKind.TEXT, None),  # off the scale
        ("Thanks, all good", Channel.SMS, CSAT, InboundKind.TEXT, None),
        ("1", Channel.VOICE, None, InboundKind.KEYPRESS, "1"),
        ("12#", Channel.VOICE, CSAT, InboundKind.KEYPRESS, "12#"),
        ("hello", Channel.VOICE, None, InboundKind.TEXT, None),
        ("STOP", Channel.VOICE, None, InboundKind.TEXT, None),  # no keywords on a call
    ],
)
def test_reading_an_inbound_message(
    text: str,
    channel: Channel,
    scale: RatingScale | None,
    kind: InboundKind,
    detail: object,
) -> None:
    reading = read_inbound(text, channel=channel, keywords=KEYWORDS, scale=scale)
    assert reading.kind is kind
    assert {
        InboundKind.KEYWORD: reading.keyword,
        InboundKind.RATING: reading.rating,
        InboundKind.KEYPRESS: reading.digits,
        InboundKind.TEXT: None,
    }[kind] == detail
    assert reading.text == text.strip()


def test_keywords_switched_off_are_text() -> None:
    reading = read_inbound("STOP", channel=Channel.SMS, keywords=None)
    assert reading.kind is InboundKind.TEXT


@pytest.mark.parametrize(
    ("text", "digits"), [("1", "1"), (" 1 2 ", "12"), ("*9#", "*9#"), ("a", None)]
)
def test_digits(text: str, digits: str | None) -> None:
    assert read_digits(text) == digits


MARKETING_SERVICE = (Category.MARKETING, Category.SERVICE)


@pytest.mark.parametrize(
    ("before", "keyword", "after", "changed"),
    [
        (
            {},
            Keyword.STOP,
            {"sms": {"marketing": False, "service": False}},
            True,
        ),
        (
            {"*": {"marketing": True}},
            Keyword.STOP,
            {"*": {"marketing": True}, "sms": {"marketing": False, "service": False}},
            True,
        ),
        (
            {"sms": {"marketing": False, "service": False}},
            Keyword.STOP,
            {"sms": {"marketing": False, "service": False}},
            False,
        ),
        (
            {"sms": {"*": True}, "viber": {"marketing": True}},
            Keyword.STOP_ALL,
            {
                "*": {"marketing": False, "service": False},
                "sms": {"*": True, "marketing": False, "service": False},
                "viber": {"marketing": False, "service": False},
            },
            True,
        ),
        (
            {"sms": {"marketing": False, "service": False, "security": True}},
            Keyword.START,
            {"sms": {"marketing": True, "service": True, "security": True}},
            True,
        ),
    ],
)
def test_consent_changes(
    before: dict[str, dict[str, bool]],
    keyword: Keyword,
    after: dict[str, dict[str, bool]],
    changed: bool,
) -> None:
    change = consent_change(before, keyword, Channel.SMS, MARKETING_SERVICE)
    assert change.consents == after
    assert change.changed is changed
    assert change.granted is (keyword is Keyword.START)
    assert change.channel == ("*" if keyword is Keyword.STOP_ALL else "sms")


def test_stop_leaves_the_stored_consents_alone() -> None:
    before = {"sms": {"marketing": True}}
    consent_change(before, Keyword.STOP, Channel.SMS)
    assert before == {"sms": {"marketing": True}}


def test_rules_from_settings_values() -> None:
    rules = TwoWayRules.of(
        stop_keywords=["halt"],
        stop_categories=["marketing"],
        reply_window_seconds=3600,
        stop_reply="You will get no more offers. Text START to come back.",
        start_reply="",
    )
    assert rules.keywords is not None
    assert rules.keywords.match("halt") is Keyword.STOP
    assert rules.stop_categories == (Category.MARKETING,)
    assert rules.reply_window == timedelta(hours=1)
    assert rules.confirmation(Keyword.STOP_ALL) == rules.stop_reply
    assert rules.confirmation(Keyword.START) is None
    assert TwoWayRules.of(keywords=False).keywords is None


@pytest.mark.parametrize(
    ("sender", "phone"),
    [
        ("+380501234567", "+380501234567"),
        ("380501234567", "+380501234567"),
        ("whatsapp:+380501234567", "+380501234567"),
        ("7111", None),
        ("BANK", None),
    ],
)
def test_sender_phone(sender: str, phone: str | None) -> None:
    assert sender_phone(sender) == phone


def test_the_settings_defaults_are_the_rules_defaults() -> None:
    assert TwoWayRules.of(**TwoWaySettings().model_dump()) == TwoWayRules()


# -- an answer ends the cascade of the message it answers -----------------------------------

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
VIBER_THEN_SMS = Cascade(
    steps=(
        Step(Channel.VIBER, {"text": "Rate us"}, timeout=timedelta(hours=1)),
        Step(Channel.SMS, {"text": "Rate us"}),
    ),
    category=Category.SERVICE,
    contact=Reachability(phone="+380501234567"),
)


@pytest.mark.parametrize(
    ("state", "answered", "status", "effects"),
    [
        # Answered on Viber while its step waits: complete, nothing to cancel.
        (CascadeState(CascadeStatus.ACTIVE, 0, NOW), 0, CascadeStatus.COMPLETED, ()),
        # Answered on Viber after the SMS went: complete, the SMS cancelled if not yet out.
        (
            CascadeState(CascadeStatus.ACTIVE, 1, NOW),
            0,
            CascadeStatus.COMPLETED,
            (SupersedeStep(1, by_next=False),),
        ),
        (CascadeState(CascadeStatus.DEFERRED, 1, NOW), 0, CascadeStatus.COMPLETED, ()),
        # Already over, or an answer to no step of it: nothing changes.
        (CascadeState(CascadeStatus.COMPLETED, 0, None), 0, CascadeStatus.COMPLETED, ()),
        (CascadeState(CascadeStatus.FAILED, 1, None), 1, CascadeStatus.FAILED, ()),
        (CascadeState(CascadeStatus.ACTIVE, 0, NOW), 5, CascadeStatus.ACTIVE, ()),
    ],
)
def test_an_answer_completes_the_cascade(
    state: CascadeState,
    answered: int,
    status: CascadeStatus,
    effects: tuple[SupersedeStep, ...],
) -> None:
    transition = VIBER_THEN_SMS.on_answer(state, answered)
    assert transition.state.status is status
    assert transition.effects == effects
    if status is CascadeStatus.COMPLETED and not state.finished:
        [decision] = transition.decisions
        assert decision.kind is DecisionKind.COMPLETE
        assert (
            decision.reason
            == f"answered on {VIBER_THEN_SMS.steps[answered].channel}: cascade complete"
        )
        assert transition.state.due_at is None
    else:
        assert transition.decisions == ()
