"""API models of journeys, runs and simulations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kaskad.interfaces.http.documents import DocumentIn
from kaskad.interfaces.simulation import ContactSpec, EventSpec, OutcomeSpec, ReplySpec

EXAMPLE_SOURCE = """id: welcome
name: Welcome
trigger: {event: signed_up}
steps:
  - send:
      category: service
      cascade:
        - channel: email
          content: {subject: Welcome, text: Glad to have you}
"""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JourneyIn(DocumentIn):
    """A journey as YAML/JSON text (`source`) or as a JSON object (`definition`)."""

    source: str | None = Field(None, examples=[EXAMPLE_SOURCE])
    activate: bool | None = Field(
        None, description="Make this version live (default true; `?activate=` also works)"
    )


class AppliedOut(BaseModel):
    id: str
    version: int
    created: bool = Field(description="False when the document equals the latest version")
    status: str


class ValidOut(BaseModel):
    valid: Literal[True] = True
    id: str
    name: str
    steps: int
    trigger: Literal["event", "segment", "schedule", "date", "api"]


class JourneySummary(BaseModel):
    id: str
    name: str
    status: str = Field(description="draft, active, paused or archived")
    version: int | None = Field(description="The live version: the one new runs enter")
    latest: int
    updated_at: datetime


class JourneyListOut(BaseModel):
    journeys: list[JourneySummary]


class JourneyOut(JourneySummary):
    trigger: str | None = Field(description="The live version's trigger kind")
    created_at: datetime


class StepCounts(BaseModel):
    step: str
    kind: str = Field(description="send, wait, branch, split, update or exit")
    entered: int = Field(description="Times a run reached the step")
    waiting: int = Field(description="Active runs at the step now")
    completed: int
    exited: int = Field(description="Runs that ended at the step (a branch to exit, an exit)")
    converted: int


class VersionOut(BaseModel):
    version: int
    created_at: datetime
    live: bool
    entered: int
    active: int
    completed: int
    exited: int
    converted: int
    failed: int
    steps: list[StepCounts]


class JourneyDetailOut(JourneyOut):
    versions: list[VersionOut]
    source_version: int | None = Field(description="The version `source` belongs to")
    source: str | None


class RunIn(Strict):
    contact: str = Field(min_length=1, max_length=200, examples=["client-42"])
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="Readable in conditions as payload.* and event.payload.*",
        examples=[{"amount": 25000}],
    )


class EnteredOut(BaseModel):
    id: str | None
    entered: bool
    reason: str


class WaitingOut(BaseModel):
    step: str | None
    kind: str
    until: datetime | None = None
    event: str | None = None
    send: str | None = None


class HistoryOut(BaseModel):
    step: str | None
    kind: str
    text: str
    at: datetime


class RunOut(BaseModel):
    id: str
    journey: str
    version: int
    contact: str | None
    status: str
    step: str | None = Field(description="The step the run is at (null once it has ended)")
    waiting: WaitingOut | None
    due_at: datetime | None
    variant: str | None
    entered_at: datetime
    ended_at: datetime | None
    ended_reason: str | None
    outcomes: dict[str, Any]
    history: list[HistoryOut]


class SimulateIn(Strict):
    source: str | None = Field(
        None, description="The journey to simulate; default: the stored latest version"
    )
    contact: ContactSpec = Field(default_factory=ContactSpec)
    events: list[EventSpec] = Field(default_factory=list, max_length=1000)
    outcomes: list[OutcomeSpec] = Field(default_factory=list)
    replies: list[ReplySpec] = Field(
        default_factory=list, max_length=1000, description="Messages the contact sends"
    )
    horizon: str = Field("30d", examples=["5d"], description="How long to run (at most 366d)")
    start: AwareDatetime | None = Field(None, description="Default: now, to the minute")
    data: dict[str, Any] = Field(default_factory=dict, description="For an api trigger")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "contact": {
                        "phone": "+380501234567",
                        "attributes": {"age": 30},
                        "consents": {"*": {"marketing": True}},
                    },
                    "events": [{"type": "salary_received", "payload": {"amount": 25000}}],
                    "outcomes": [{"channel": "viber", "outcome": "seen"}],
                    "horizon": "5d",
                }
            ]
        },
    )


class ItemOut(BaseModel):
    at: datetime
    kind: Literal["event", "journey", "message", "decision"]
    name: str
    text: str
    run: str | None
    step: str | None
    channel: str | None
    statuses: dict[str, datetime]


class RunResultOut(BaseModel):
    id: str
    journey: str
    version: int
    status: str
    entered_at: datetime
    ended_at: datetime | None
    ended_reason: str | None
    variant: str | None


class SimulationOut(BaseModel):
    journey: str
    contact: str
    timezone: str
    start: datetime
    end: datetime
    timeline: list[ItemOut]
    runs: list[RunResultOut]
