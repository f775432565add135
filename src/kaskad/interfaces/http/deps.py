"""Request dependencies: the application object and API-key authentication."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from kaskad.bootstrap import App
from kaskad.interfaces.http.errors import ApiError
from kaskad.services import apikeys


async def get_app(request: Request) -> App:
    app: App = request.app.state.kaskad
    return app


async def require_key(request: Request, app: Annotated[App, Depends(get_app)]) -> str:
    """Check ``Authorization: Bearer <key>``; valid keys are cached briefly by their hash.

    Async so the common case (a cached key) costs no trip to the thread pool.
    """
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "send `Authorization: Bearer <API key>`")
    digest = apikeys.hash_key(key.strip())
    cached = app.api_keys.get(digest)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    name = await run_in_threadpool(apikeys.key_name, app.uow(), key=key.strip())
    if name is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key")
    app.api_keys[digest] = (name, now + app.settings.api_key_cache_seconds)
    return name


AppDep = Annotated[App, Depends(get_app)]
Authorized = Depends(require_key)
