"""Request dependencies: the application object and API-key authentication."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from kaskad.bootstrap import App
from kaskad.interfaces.http.errors import ApiError
from kaskad.services import apikeys

# Declared so the OpenAPI page offers "Authorize"; errors are ours, not FastAPI's.
bearer = HTTPBearer(auto_error=False, description="An API key from `kaskad apikey create`")


async def get_app(request: Request) -> App:
    app: App = request.app.state.kaskad
    return app


async def check_key(app: App, key: str | None) -> str:
    """The key's name; valid keys are cached briefly by their hash.

    Async so the common case (a cached key) costs no trip to the thread pool.
    """
    if not key or not key.strip():
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


async def require_key(
    app: Annotated[App, Depends(get_app)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    return await check_key(app, credentials.credentials if credentials else None)


AppDep = Annotated[App, Depends(get_app)]
Authorized = Depends(require_key)
