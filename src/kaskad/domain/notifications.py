"""A notification request: what to tell whom, in which category, along which cascade."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from kaskad.domain.cascades import Step
from kaskad.domain.vocabulary import Category, Channel

MAX_STEPS: Final = 10
# What each channel needs in its content before templates come into play.
REQUIRED_CONTENT: Final[dict[Channel, tuple[tuple[str, ...], ...]]] = {
    Channel.SMS: (("text",),),
    Channel.VIBER: (("text", "image_url"),),
    Channel.WHATSAPP: (("text", "template"),),
    Channel.EMAIL: (("subject",), ("text", "html")),
    Channel.PUSH: (("title", "text"),),
    Channel.VOICE: (("text",),),
}


class InvalidNotification(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True, slots=True)
class NotificationRequest:
    contact: str
    category: Category
    priority: int
    steps: Sequence[Step]
    idempotency_key: str | None = None
    # What templates see as ``event``: the facts of this notification (amount, merchant…).
    data: Mapping[str, Any] | None = None
    # For the policy: the content (sent once per window on any channel), the topic relevance
    # rules and caps name, until when it may wait for a free slot, one contact or many.
    content_key: str | None = None
    topic: str | None = None
    valid_until: datetime | None = None
    personal: bool = True


def check_content(
    index: int, channel: Channel, content: Mapping[str, Any], template: str | None = None
) -> None:
    """Each group lists alternatives; at least one field of every group must be non-empty.

    A templated step takes its content from the template (checked when it is stored).
    """
    if template is not None:
        return
    for group in REQUIRED_CONTENT[channel]:
        if not any(isinstance(content.get(k), str) and content[k].strip() for k in group):
            names = " or ".join(f"`{k}`" for k in group)
            raise InvalidNotification(
                f"cascade[{index}].content", f"{channel} content needs {names}"
            )


def check_steps(steps: Sequence[Step]) -> None:
    if not steps:
        raise InvalidNotification("cascade", "a cascade needs at least one step")
    if len(steps) > MAX_STEPS:
        raise InvalidNotification("cascade", f"a cascade has at most {MAX_STEPS} steps")
    for index, step in enumerate(steps):
        check_content(index, step.channel, step.content, step.template)
