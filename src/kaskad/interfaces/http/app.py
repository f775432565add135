"""The FastAPI application. ``kaskad serve`` also runs the engine inside its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

import kaskad
from kaskad.bootstrap import App, build
from kaskad.engine.wakeup import PostgresListener
from kaskad.interfaces.http import (
    contacts,
    errors,
    events,
    gateways,
    journeys,
    links,
    notifications,
    ops,
    policy,
    sandbox,
    templates,
    verifications,
    webhooks,
)
from kaskad.interfaces.http.errors import error_response
from kaskad.interfaces.http.fastpath import KaskadAPI
from kaskad.settings import Settings

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024 * 1024

DESCRIPTION = """
kaskad decides what to tell each customer, on which channel and when, and falls back to the
next channel when a message is not delivered, seen or clicked in time.

Authenticate with `Authorization: Bearer <API key>` (create one with
`kaskad apikey create --name NAME`). Errors are
`{"error": {"code": "...", "message": "...", "details": ...}}`.
"""


def create_app(app: App, *, run_engine: bool) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = listener = None
        if run_engine:
            task = asyncio.create_task(app.engine.run(stop))
            listener = _listener(app)
        yield
        stop.set()
        if listener is not None:
            listener.stop()
        if task is not None:
            await task

    api = KaskadAPI(
        title="kaskad",
        version=kaskad.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    api.state.kaskad = app
    api.state.event_group = events.group_commit(app)
    api.state.report_group = webhooks.group_commit(app)
    errors.install(api)
    routers = (
        contacts,
        events,
        notifications,
        verifications,
        journeys,
        templates,
        policy,
        gateways,
        webhooks,
        ops,
    )
    for module in (*routers, links):
        api.include_router(module.router)
    if app.settings.sandbox_enabled:
        api.include_router(sandbox.router)

    api.add_middleware(BodyLimit, limit=MAX_BODY)
    return api


def _listener(app: App) -> PostgresListener | None:
    if app.db.dialect.name != "postgresql":
        return None
    dsn = app.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    listener = PostgresListener(dsn, app.engine.wake)
    listener.start()
    return listener


def api_factory() -> FastAPI:
    """For ``kaskad api``: the HTTP API alone (any number of processes)."""
    return create_app(build(Settings()), run_engine=False)


def serve_factory() -> FastAPI:
    """For ``kaskad serve``: API, engine and sandbox in one process."""
    return create_app(build(Settings()), run_engine=True)


class BodyLimit:
    """Refuse bodies announced larger than ``limit`` before reading them.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream
    per request, which shows at thousands of requests a second.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self._limit:
                    response = error_response(
                        413, "payload_too_large", f"bodies are limited to {self._limit} bytes"
                    )
                    await response(scope, receive, send)
                    return
        await self._app(scope, receive, send)
