"""Reading a definition (a journey, a template) from a request body.

It comes as a JSON envelope — ``{"source": "<YAML or JSON text>"}`` or
``{"definition": {...}}`` — or as the document itself with a YAML content type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kaskad.interfaces.http.errors import ApiError
from kaskad.services.errors import Invalid

YAML_TYPES: Final = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class DocumentIn(BaseModel):
    """A document as YAML/JSON text (`source`) or as a JSON object (`definition`)."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    definition: dict[str, Any] | None = Field(
        None, description="The document as an object; problems are reported by path only"
    )

    @model_validator(mode="after")
    def _one_form(self) -> DocumentIn:
        if (self.source is None) == (self.definition is None):
            raise ValueError(
                'send exactly one of "source" (YAML or JSON text) and "definition" (an object)'
            )
        return self


class Envelope(Protocol):
    source: str | None
    definition: dict[str, Any] | None


E = TypeVar("E", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Body:
    source: str
    # Sent as a JSON object: the text is ours, so its line numbers would mean nothing.
    from_object: bool


async def read_body(request: Request, model: type[E], what: str) -> tuple[Body, E | None]:
    """The document, and the envelope when one was sent (for its other fields)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if kind in YAML_TYPES:
        try:
            return Body(raw.decode("utf-8"), from_object=False), None
        except UnicodeDecodeError:
            raise ApiError(400, "bad_request", f"the {what} document is not UTF-8 text") from None
    if kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            'send JSON ({"source": "..."} or {"definition": {...}}) or the document itself '
            "with Content-Type: application/yaml",
        )
    try:
        envelope = model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    sent: Envelope = envelope  # type: ignore[assignment]
    if sent.definition is not None:
        text = json.dumps(sent.definition, indent=2, ensure_ascii=False)
        return Body(text, from_object=True), envelope
    return Body(sent.source or "", from_object=False), envelope


@contextmanager
def problems_by_path(body: Body, code: str, what: str) -> Iterator[None]:
    """Problems in a document sent as an object are reported by path, without lines."""
    try:
        yield
    except Invalid as exc:
        if exc.code != code or not body.from_object:
            raise
        details = [{**d, "line": None} for d in exc.details or []]
        first = details[0] if details else None
        message = f"{first['path'] or what}: {first['message']}" if first else exc.message
        raise Invalid(exc.code, message, details) from None
