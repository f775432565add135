"""Provider callbacks: delivery, seen and click reports, mapped by each provider's table."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from kaskad.bootstrap import App
from kaskad.interfaces.http.deps import AppDep, check_key
from kaskad.interfaces.http.errors import ApiError
from kaskad.interfaces.http.models import ReportsOut
from kaskad.services import reports

router = APIRouter(prefix="/v1", tags=["webhooks"])
log = logging.getLogger(__name__)


@router.post("/webhooks/{provider}", response_model=ReportsOut)
async def post_webhook(provider: str, request: Request, app: AppDep) -> Any:
    """Receive a provider's status reports. Late reports (after the cascade moved on) are
    recorded on their message, cost included, and never start another send."""
    parser = app.webhooks.get(provider)
    if parser is None:
        raise ApiError(404, "unknown_provider", f"no webhook for provider {provider!r}")
    body = await request.body()
    if provider == "sandbox":
        await _sandbox_caller(app, request, body)
    parsed = parser.parse(body, dict(request.headers))
    summary = await run_in_threadpool(
        lambda: reports.apply_reports(app.uow(), reports=parsed, now=app.clock.now())
    )
    return {
        "applied": summary.applied,
        "recorded_only": summary.recorded_only,
        "unmatched": summary.unmatched,
    }


async def _sandbox_caller(app: App, request: Request, body: bytes) -> None:
    """The sandbox's callbacks carry ``X-Kaskad-Signature: sha256=<HMAC of the body with
    KASKAD_SECRET_KEY>``, as a real gateway signs its callbacks; an API key also does."""
    signature = request.headers.get("x-kaskad-signature")
    if signature is not None:
        if not hmac.compare_digest(signature, sign(app.settings.secret, body)):
            log.warning("sandbox webhook with a bad signature rejected")
            raise ApiError(401, "bad_signature", "X-Kaskad-Signature does not match the body")
        return
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    await check_key(app, key if scheme.lower() == "bearer" else None)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
