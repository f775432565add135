"""Every error is JSON ``{"error": {"code", "message", "details"}}`` with a fitting 4xx/5xx."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kaskad.domain.contacts import InvalidContact
from kaskad.domain.durations import DurationError
from kaskad.domain.notifications import InvalidNotification
from kaskad.domain.providers import WebhookError
from kaskad.services.errors import Invalid, NotFound

log = logging.getLogger(__name__)
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    details = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in errors]
    first = errors[0]
    code = "validation_error"
    if first.get("type") == "too_long":
        code = "invalid_cascade" if first["loc"][-1] == "cascade" else "batch_too_large"
    elif first.get("type") == "enum" and first["loc"][-1] == "channel":
        code = "unknown_channel"
    elif first.get("type") == "missing" and len(first["loc"]) == 1:
        code = "missing_body"
    message = f"{details[0]['field']}: {details[0]['message']}"
    return error_response(422, code, message, details)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)

    @app.exception_handler(ApiError)
    def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(NotFound)
    def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, exc.code, exc.message, exc.details)

    @app.exception_handler(Invalid)
    def _invalid(_: Request, exc: Invalid) -> JSONResponse:
        return error_response(422, exc.code, exc.message, exc.details)

    @app.exception_handler(InvalidContact)
    def _contact(_: Request, exc: InvalidContact) -> JSONResponse:
        return error_response(
            422,
            f"invalid_{exc.field.split('.')[0]}",
            str(exc),
            [{"field": exc.field, "message": str(exc)}],
        )

    @app.exception_handler(InvalidNotification)
    def _notification(_: Request, exc: InvalidNotification) -> JSONResponse:
        return error_response(
            422,
            "invalid_cascade",
            f"{exc.field}: {exc}",
            [{"field": exc.field, "message": str(exc)}],
        )

    @app.exception_handler(DurationError)
    def _duration(_: Request, exc: DurationError) -> JSONResponse:
        return error_response(422, "invalid_duration", str(exc))

    @app.exception_handler(WebhookError)
    def _webhook(_: Request, exc: WebhookError) -> JSONResponse:
        return error_response(400, "invalid_webhook", str(exc))

    @app.exception_handler(OverflowError)
    def _overflow(_: Request, exc: OverflowError) -> JSONResponse:
        return error_response(422, "validation_error", f"a value is out of range: {exc}")

    @app.exception_handler(Exception)
    def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "internal_error", "kaskad failed to handle the request")

    @app.exception_handler(StarletteHTTPException)
    def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(
            exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None)
        )
