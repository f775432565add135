"""The words of kaskad: channels, categories, message statuses and their order."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class Channel(StrEnum):
    SMS = "sms"
    VIBER = "viber"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    PUSH = "push"
    VOICE = "voice"


# What relevance rules and caps name (`loan_offer`): as POST /v1/notifications, the
# policy's selectors and a journey's send take it; no "/", 100 characters at most.
TOPIC: Final = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
TOPIC_HINT: Final = "a topic is letters, digits and _.:-"


class Category(StrEnum):
    SECURITY = "security"
    TRANSACTIONAL = "transactional"
    SERVICE = "service"
    MARKETING = "marketing"


DEFAULT_PRIORITY: Final[dict[Category, int]] = {
    Category.SECURITY: 100,
    Category.TRANSACTIONAL: 80,
    Category.SERVICE: 60,
    Category.MARKETING: 20,
}
# From this priority up (transactional and security by default) a message takes the urgent
# lane: claimed on its own and first through a provider's window.
URGENT_PRIORITY: Final = DEFAULT_PRIORITY[Category.TRANSACTIONAL]


class MessageStatus(StrEnum):
    """A message's lifecycle; progress statuses are ordered, the rest are terminal failures."""

    PLANNED = "planned"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    SENT = "sent"
    DELIVERED = "delivered"
    SEEN = "seen"
    CLICKED = "clicked"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNDELIVERABLE = "undeliverable"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


PROGRESS_RANK: Final[dict[MessageStatus, int]] = {
    MessageStatus.PLANNED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SUBMITTED: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.SEEN: 5,
    MessageStatus.CLICKED: 6,
}

FAILURES: Final[frozenset[MessageStatus]] = frozenset(
    {
        MessageStatus.FAILED,
        MessageStatus.EXPIRED,
        MessageStatus.REJECTED,
        MessageStatus.UNDELIVERABLE,
        MessageStatus.SUPPRESSED,
        MessageStatus.CANCELLED,
    }
)


class Until(StrEnum):
    """The status a cascade step waits for before the cascade counts as done."""

    SENT = "sent"
    DELIVERED = "delivered"
    SEEN = "seen"
    CLICKED = "clicked"

    @property
    def status(self) -> MessageStatus:
        return MessageStatus(self.value)


def is_failure(status: MessageStatus) -> bool:
    return status in FAILURES


def reaches(status: MessageStatus, until: Until) -> bool:
    """A click implies a view implies a delivery: a higher progress status reaches a lower goal."""
    rank = PROGRESS_RANK.get(status)
    return rank is not None and rank >= PROGRESS_RANK[until.status]


def advances(current: MessageStatus, reported: MessageStatus) -> bool:
    """Whether a report moves a message forward; statuses never go backwards.

    A failure after a delivery (some providers send both) is kept in the history but does not
    undo what the customer already received.
    """
    if current is MessageStatus.CANCELLED:
        # kaskad cancelled it believing no provider had it; a provider's report proves it
        # was handed over after all (a sender died right after), and the provider is right.
        return reported is not MessageStatus.CANCELLED
    if current in FAILURES:
        return False
    if reported in FAILURES:
        return PROGRESS_RANK[current] < PROGRESS_RANK[MessageStatus.DELIVERED]
    return PROGRESS_RANK[reported] > PROGRESS_RANK[current]
