"""Notification requests: what each channel's content needs and how long a cascade may be."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from kaskad.domain.cascades import Step
from kaskad.domain.notifications import (
    MAX_STEPS,
    REQUIRED_CONTENT,
    InvalidNotification,
    check_content,
    check_steps,
)
from kaskad.domain.vocabulary import Channel

C = Channel


def test_every_channel_has_content_rules() -> None:
    assert set(REQUIRED_CONTENT) == set(Channel)


@pytest.mark.parametrize(
    ("channel", "content"),
    [
        (C.SMS, {"text": "Your code is 1234"}),
        (C.SMS, {"text": "x", "extra": 1}),
        (C.VIBER, {"text": "hi"}),
        (C.VIBER, {"image_url": "https://example.com/a.png"}),
        (C.VIBER, {"text": "hi", "image_url": "https://example.com/a.png"}),
        (C.WHATSAPP, {"text": "hi"}),
        (C.WHATSAPP, {"template": "order_shipped"}),
        (C.EMAIL, {"subject": "Receipt", "text": "Thanks"}),
        (C.EMAIL, {"subject": "Receipt", "html": "<p>Thanks</p>"}),
        (C.EMAIL, {"subject": "Receipt", "text": "", "html": "<p>Thanks</p>"}),
        (C.PUSH, {"title": "Hello"}),
        (C.PUSH, {"text": "Hello"}),
        (C.PUSH, {"title": "  ", "text": "Hello"}),
        (C.VOICE, {"text": "Your code is 1 2 3 4"}),
    ],
)
def test_check_content_accepts(channel: Channel, content: Mapping[str, Any]) -> None:
    check_content(0, channel, content)  # does not raise


@pytest.mark.parametrize(
    ("channel", "content", "message"),
    [
        (C.SMS, {}, "sms content needs `text`"),
        (C.SMS, {"text": ""}, "sms content needs `text`"),
        (C.SMS, {"text": "  \n\t"}, "sms content needs `text`"),
        (C.SMS, {"text": 1234}, "sms content needs `text`"),
        (C.SMS, {"text": None}, "sms content needs `text`"),
        (C.SMS, {"body": "hi"}, "sms content needs `text`"),
        (C.VIBER, {}, "viber content needs `text` or `image_url`"),
        (C.VIBER, {"text": " ", "image_url": ""}, "viber content needs `text` or `image_url`"),
        (C.WHATSAPP, {}, "whatsapp content needs `text` or `template`"),
        (C.WHATSAPP, {"template": ""}, "whatsapp content needs `text` or `template`"),
        (C.EMAIL, {}, "email content needs `subject`"),
        (C.EMAIL, {"text": "Thanks"}, "email content needs `subject`"),
        (C.EMAIL, {"html": "<p>x</p>"}, "email content needs `subject`"),
        (C.EMAIL, {"subject": "Receipt"}, "email content needs `text` or `html`"),
        (
            C.EMAIL,
            {"subject": "Receipt", "text": " ", "html": ""},
            "email content needs `text` or `html`",
        ),
        (C.EMAIL, {"subject": " ", "text": "Thanks"}, "email content needs `subject`"),
        (C.PUSH, {}, "push content needs `title` or `text`"),
        (C.PUSH, {"title": "", "text": " "}, "push content needs `title` or `text`"),
        (C.PUSH, {"body": "Hello"}, "push content needs `title` or `text`"),
        (C.VOICE, {}, "voice content needs `text`"),
        (C.VOICE, {"audio_url": "https://example.com/a.mp3"}, "voice content needs `text`"),
    ],
)
def test_check_content_refuses(channel: Channel, content: Mapping[str, Any], message: str) -> None:
    with pytest.raises(InvalidNotification) as caught:
        check_content(3, channel, content)
    assert str(caught.value) == message
    assert caught.value.field == "cascade[3].content"


def step(channel: Channel, content: Mapping[str, Any] | None = None) -> Step:
    return Step(channel, {"text": "hi"} if content is None else content)


@pytest.mark.parametrize(
    "steps",
    [
        [step(C.SMS)],
        [step(C.VIBER), step(C.SMS)],
        [step(C.EMAIL, {"subject": "s", "html": "<b>h</b>"}), step(C.PUSH, {"title": "t"})],
        [step(C.SMS)] * MAX_STEPS,
    ],
    ids=["one", "two", "email-push", "max"],
)
def test_check_steps_accepts(steps: list[Step]) -> None:
    check_steps(steps)  # does not raise


def test_max_steps_is_ten() -> None:
    assert MAX_STEPS == 10


@pytest.mark.parametrize(
    ("steps", "field", "message"),
    [
        ([], "cascade", "a cascade needs at least one step"),
        ((), "cascade", "a cascade needs at least one step"),
        ([step(C.SMS)] * (MAX_STEPS + 1), "cascade", "a cascade has at most 10 steps"),
        ([step(C.SMS)] * 25, "cascade", "a cascade has at most 10 steps"),
        ([step(C.EMAIL)], "cascade[0].content", "email content needs `subject`"),
        (
            [step(C.VIBER), step(C.SMS), step(C.PUSH, {})],
            "cascade[2].content",
            "push content needs `title` or `text`",
        ),
        (
            # the first bad step is the one reported
            [step(C.SMS), step(C.EMAIL, {"subject": "s"}), step(C.VOICE, {})],
            "cascade[1].content",
            "email content needs `text` or `html`",
        ),
    ],
    ids=["empty-list", "empty-tuple", "eleven", "many", "first", "last", "first-bad"],
)
def test_check_steps_refuses(steps: list[Step], field: str, message: str) -> None:
    with pytest.raises(InvalidNotification) as caught:
        check_steps(steps)
    assert caught.value.field == field
    assert str(caught.value) == message


def test_too_many_steps_is_reported_before_content() -> None:
    steps = [step(C.EMAIL, {})] * (MAX_STEPS + 1)
    with pytest.raises(InvalidNotification, match="at most 10 steps"):
        check_steps(steps)
