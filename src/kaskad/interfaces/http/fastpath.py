"""A direct path for ``POST /v1/events``, the request banks send thousands of a second.

FastAPI's routing, dependency solving and response validation cost more CPU than the
event's own work. For the common case — a known API key already in the cache and a body
that validates — this path reads the body, validates it with the same pydantic model,
joins the group commit and writes the answer itself. Anything else (a missing or uncached
key, an invalid body, a refused event) goes on to the FastAPI route with the body replayed,
so errors, authentication and the OpenAPI description stay in one place.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from kaskad.bootstrap import App
from kaskad.interfaces.http.errors import error_response
from kaskad.interfaces.http.models import EventIn
from kaskad.services import apikeys
from kaskad.services.errors import ServiceError

log = logging.getLogger(__name__)
PATH = "/v1/events"
MAX_FAST_BODY = 64 * 1024
_JSON_HEADERS = [(b"content-type", b"application/json")]


class KaskadAPI(FastAPI):
    """FastAPI, with single events answered before the middleware stack."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST":
            rest = await _fast_event(self, scope, receive, send)
            if rest is None:
                return
            receive = rest
        await super().__call__(scope, receive, send)


async def _fast_event(api: FastAPI, scope: Scope, receive: Receive, send: Send) -> Receive | None:
    """None once answered; otherwise the ``receive`` the regular route must use."""
    headers = dict(scope["headers"])
    length = headers.get(b"content-length", b"")
    app: App = api.state.kaskad
    if not length.isdigit() or int(length) > MAX_FAST_BODY:
        return receive  # chunked or large: the route reads (and limits) it
    if not headers.get(b"content-type", b"").startswith(b"application/json"):
        return receive
    if not _cached_key(app, headers.get(b"authorization")):
        return receive
    body = await _read_body(receive)
    try:
        event = EventIn.model_validate_json(body)
    except ValidationError:
        return _replay(body, receive)
    try:
        accepted = await api.state.event_group.submit(event)
    except ServiceError:
        return _replay(body, receive)  # nothing was stored: the route words the error
    except Exception as exc:  # answered as the route's 500 would be
        log.error("unhandled %s", type(exc).__name__, exc_info=exc)
        response = error_response(500, "internal_error", "kaskad failed to handle the request")
        await response(scope, receive, send)
        return None
    answer = json.dumps({"id": accepted.id, "duplicate": accepted.duplicate}).encode()
    await _answer(send, 202, answer)
    return None


def _cached_key(app: App, authorization: bytes | None) -> bool:
    """True for a valid key already in the cache; the route handles the rest."""
    if not authorization or authorization[:7].lower() != b"bearer ":
        return False
    key = authorization[7:].decode("latin-1").strip()
    if not key:
        return False
    cached = app.api_keys.get(apikeys.hash_key(key))
    return cached is not None and cached[1] > time.monotonic()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the route the body already read, then the real stream."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers: list[Any] = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
