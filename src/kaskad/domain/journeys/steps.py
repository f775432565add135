"""Journey steps: what each kind of step holds once a journey has been read and checked.

Every step knows its ``id`` and its ``next``: the index of the step the run goes on to,
None at the end of the list (the run completes), or ``EXIT_INDEX`` for ``goto: exit``. Targets
are resolved to indexes when the journey is read, so the engine never looks an id up while
advancing a run, and a ``goto`` to nowhere is refused before any run starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any, Final

from kaskad.domain.cascades import Step as CascadeStep
from kaskad.domain.conditions import Condition
from kaskad.domain.two_way import RatingScale
from kaskad.domain.vocabulary import Category

STEP_KINDS: Final = ("send", "survey", "wait", "branch", "split", "update", "exit")
EXIT: Final = "exit"
"""The target that ends the run: ``goto: exit`` or ``else: exit``."""
EXIT_INDEX: Final = -2
"""What ``exit`` resolves to. ``None`` is the end of the list (the run completes); this ends
the run as exited, wherever it is written."""


@dataclass(frozen=True, slots=True)
class SendStep:
    """Create a notification with this cascade; the run goes on at once.

    ``content_key`` names the content, so that the same message can be recognised across
    runs and channels; the cascade is checked by the same rules as POST /v1/notifications.
    """

    id: str
    category: Category
    priority: int
    cascade: tuple[CascadeStep, ...]
    content_key: str | None
    next: int | None
    # What relevance rules and caps name ("loan_offer"); see docs/policies.md.
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class WaitDuration:
    duration: timedelta


@dataclass(frozen=True, slots=True)
class WaitUntilTime:
    """Until the next ``at`` on the contact's clock."""

    at: time


@dataclass(frozen=True, slots=True)
class WaitUntilDate:
    """Until ``offset`` from the date in a contact attribute, at ``at`` (midnight if None).

    Goes on at once when that moment has passed.
    """

    attribute: str
    offset: timedelta
    at: time | None


@dataclass(frozen=True, slots=True)
class WaitForEvent:
    """Until an event of ``type`` (matching ``where``) is recorded, or ``timeout`` passes."""

    type: str
    where: Condition | None
    timeout: timedelta


@dataclass(frozen=True, slots=True)
class WaitForSend:
    """Until the cascade of the send step ``send_id`` has ended, or ``timeout`` passes."""

    send_id: str
    timeout: timedelta | None


@dataclass(frozen=True, slots=True)
class WaitForReply:
    """Until the customer answers the notification of the send step ``send_id`` (the run's
    latest send when None) with text or a rating, or ``timeout`` passes. A keyword (STOP) is
    not an answer; ``where`` may ask more of the reply (``payload.text``)."""

    send_id: str | None
    timeout: timedelta
    where: Condition | None = None


Wait = WaitDuration | WaitUntilTime | WaitUntilDate | WaitForEvent | WaitForSend | WaitForReply


@dataclass(frozen=True, slots=True)
class SurveyStep:
    """Ask for a rating (CSAT, NPS) along a cascade, then wait for the answer.

    ``send`` is the question: every channel step's content carries ``scale``, so a reply to
    it is read as a score. The run waits until a score comes (``survey.answered``) or
    ``timeout`` passes, then goes on to ``next`` with the answer in ``reply.*``.
    """

    id: str
    send: SendStep
    scale: RatingScale
    timeout: timedelta
    next: int | None


@dataclass(frozen=True, slots=True)
class WaitStep:
    id: str
    wait: Wait
    next: int | None


@dataclass(frozen=True, slots=True)
class BranchCase:
    when: Condition
    goto: int | None


@dataclass(frozen=True, slots=True)
class BranchStep:
    """The first case whose condition holds decides; ``otherwise`` when none does."""

    id: str
    cases: tuple[BranchCase, ...]
    otherwise: int | None
    next: int | None


@dataclass(frozen=True, slots=True)
class SplitVariant:
    name: str
    weight: int
    goto: int | None


@dataclass(frozen=True, slots=True)
class SplitStep:
    """A sticky weighted choice per contact; a variant of weight 0 is paused, not removed."""

    id: str
    variants: tuple[SplitVariant, ...]
    next: int | None


@dataclass(frozen=True, slots=True)
class UpdateStep:
    id: str
    attributes: Mapping[str, Any]
    next: int | None


@dataclass(frozen=True, slots=True)
class ExitStep:
    id: str
    reason: str
    next: None = None


JourneyStep = SendStep | SurveyStep | WaitStep | BranchStep | SplitStep | UpdateStep | ExitStep
