"""Reading a send step: the same cascade, by the same rules, as POST /v1/notifications.

A journey is checked when it is saved, so a cascade that the API would refuse (an email
without a subject, eleven steps, "until: read") is refused then, not when the first contact
reaches the step days later.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final

from kaskad.domain.cascades import DEFAULT_TIMEOUT
from kaskad.domain.cascades import Step as CascadeStep
from kaskad.domain.journeys.reader import Reader, describe, quote
from kaskad.domain.journeys.source import Path
from kaskad.domain.journeys.steps import SendStep, SurveyStep
from kaskad.domain.notifications import InvalidNotification, check_content, check_steps
from kaskad.domain.two_way import CSAT, RATING_SCALE_KEY, SCALES, RatingScale
from kaskad.domain.vocabulary import (
    DEFAULT_PRIORITY,
    TOPIC,
    TOPIC_HINT,
    Category,
    Channel,
    Until,
)

MAX_PRIORITY: Final = 1000  # as POST /v1/notifications
CONTENT_KEY: Final = re.compile(r"^[A-Za-z0-9_.:/\-]{1,200}$")
_KEY_HINT: Final = "a content key is letters, digits and _.:/-"
TEMPLATE_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")
_TEMPLATE_HINT: Final = "a template id is lowercase letters, digits and _.-"
_FIELD: Final = re.compile(r"^cascade(?:\[(\d+)\])?(?:\.(\w+))?$")


def read_send(
    reader: Reader, step_id: str, body: Any, path: Path, follow: int | None
) -> SendStep | None:
    data = reader.mapping(
        body, path, required=("category", "cascade"), optional=("priority", "content_key", "topic")
    )
    if data is None:
        return None
    category = reader.read(
        data, "category", path, lambda v, p: reader.choice(v, p, Category, "category")
    )
    priority = reader.read(
        data, "priority", path, lambda v, p: reader.integer(v, p, minimum=0, maximum=MAX_PRIORITY)
    )
    cascade = reader.read(data, "cascade", path, lambda v, p: read_cascade(reader, v, p))
    content_key = reader.read(
        data,
        "content_key",
        path,
        lambda v, p: reader.text(v, p, pattern=CONTENT_KEY, hint=_KEY_HINT),
    )
    topic = reader.read(
        data, "topic", path, lambda v, p: reader.text(v, p, pattern=TOPIC, hint=TOPIC_HINT)
    )
    if category is None or cascade is None:
        return None
    if ("priority" in data and priority is None) or ("content_key" in data and not content_key):
        return None
    if "topic" in data and not topic:
        return None
    if priority is None:
        priority = DEFAULT_PRIORITY[category]
    return SendStep(step_id, category, priority, cascade, content_key, follow, topic)


SEND_KEYS: Final = ("category", "priority", "cascade", "content_key", "topic")
SURVEY_KEYS: Final = (*SEND_KEYS, "scale", "timeout")


def read_survey(
    reader: Reader, step_id: str, body: Any, path: Path, follow: int | None
) -> SurveyStep | None:
    """A send whose every channel carries the rating scale, and how long to wait for the
    answer. The category defaults to ``service``: a survey is no offer."""
    required = ("cascade", "timeout")
    optional = tuple(key for key in SURVEY_KEYS if key not in required)
    data = reader.mapping(body, path, required=required, optional=optional)
    if data is None:
        return None
    scale = reader.read(data, "scale", path, lambda v, p: _scale(reader, v, p))
    timeout = reader.read(data, "timeout", path, reader.duration)
    question = {key: value for key, value in data.items() if key in SEND_KEYS}
    question.setdefault("category", "service")
    send = read_send(reader, step_id, question, path, follow) if "cascade" in data else None
    if send is None or timeout is None or ("scale" in data and scale is None):
        return None
    scale = scale or CSAT
    asking = tuple(
        replace(step, content={**step.content, RATING_SCALE_KEY: scale.content()})
        for step in send.cascade
    )
    return SurveyStep(step_id, replace(send, cascade=asking), scale, timeout, follow)


def _scale(reader: Reader, value: Any, path: Path) -> RatingScale | None:
    if isinstance(value, str) and value in SCALES:
        return SCALES[value]
    shown = quote(value) if isinstance(value, str) else describe(value)
    reader.report(path, f"{shown} is not a scale: csat (1 to 5) or nps (0 to 10)")
    return None


def read_cascade(reader: Reader, value: Any, path: Path) -> tuple[CascadeStep, ...] | None:
    """The cascade's steps; content and length are checked by the notification rules."""
    if not isinstance(value, list):
        reader.report(path, f"expected a list of channel steps, got {describe(value)}")
        return None
    built = [_cascade_step(reader, item, (*path, index)) for index, item in enumerate(value)]
    steps = [step for step in built if step is not None]
    problems = len(reader.problems)
    for index, step in enumerate(built):
        if step is not None:
            try:
                check_content(index, step.channel, step.content, step.template)
            except InvalidNotification as exc:
                reader.report(_field_path(path, exc.field), str(exc))
    if len(steps) < len(built):
        return None
    try:
        check_steps(steps)  # the length rules; content was checked above, step by step
    except InvalidNotification as exc:
        if exc.field == "cascade":
            reader.report(path, str(exc))
    return tuple(steps) if len(reader.problems) == problems else None


def _cascade_step(reader: Reader, item: Any, path: Path) -> CascadeStep | None:
    data = reader.mapping(
        item,
        path,
        required=("channel",),
        optional=("content", "template", "until", "timeout", "provider"),
    )
    if data is None:
        return None
    if "content" not in data and "template" not in data:
        reader.report(path, "a channel step needs `content` or `template`")
        return None
    channel = reader.read(
        data, "channel", path, lambda v, p: reader.choice(v, p, Channel, "channel")
    )
    content = reader.read(data, "content", path, lambda v, p: _content(reader, v, p))
    template = reader.read(
        data,
        "template",
        path,
        lambda v, p: reader.text(v, p, pattern=TEMPLATE_ID, hint=_TEMPLATE_HINT),
    )
    until = reader.read(data, "until", path, lambda v, p: reader.choice(v, p, Until, "status"))
    timeout = reader.read(data, "timeout", path, reader.duration)
    provider = reader.read(data, "provider", path, reader.text)
    parsed = {"until": until, "timeout": timeout, "provider": provider, "template": template}
    if channel is None or ("content" in data and content is None):
        return None
    if any(key in data and value is None for key, value in parsed.items()):
        return None
    return CascadeStep(
        channel,
        content or {},
        until or Until.DELIVERED,
        timeout or DEFAULT_TIMEOUT,
        provider,
        template,
    )


def _content(reader: Reader, value: Any, path: Path) -> dict[str, Any] | None:
    """Any mapping: what each channel needs in it is the notification rules' business."""
    if not isinstance(value, dict):
        reader.report(path, f"expected a mapping such as {{text: ...}}, got {describe(value)}")
        return None
    return value


def _field_path(cascade_path: Path, field: str) -> Path:
    """``cascade[2].content`` (a notification field) as a path under this send step."""
    match = _FIELD.match(field)
    if match is None:
        return cascade_path
    index, name = match.groups()
    path = cascade_path
    if index is not None:
        path = (*path, int(index))
    if name is not None:
        path = (*path, name)
    return path
