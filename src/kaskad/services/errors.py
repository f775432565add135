"""Errors a use case reports to its caller; interfaces map them to HTTP codes or exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kaskad.domain.journeys.source import JourneyError


class ServiceError(Exception):
    code = "error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(ServiceError):
    code = "not_found"

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details)
        self.code = code


class Invalid(ServiceError):
    """Input that is well-formed but not acceptable; ``details`` says where."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details)
        self.code = code


def invalid_document(code: str, exc: JourneyError) -> Invalid:
    """Every problem of a document (journey, template, policy) as one error: the first in
    the message, all of them with path and line in the details."""
    problems = [{"path": p.path, "line": p.line, "message": p.message} for p in exc.problems]
    first = str(exc.problems[0]) if exc.problems else str(exc)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return Invalid(code, first + more, problems)
