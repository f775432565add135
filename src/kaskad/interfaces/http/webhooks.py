"""Provider callbacks: delivery, seen and click reports, mapped by each provider's table."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from kaskad.interfaces.http.deps import AppDep, check_key
from kaskad.interfaces.http.errors import ApiError
from kaskad.interfaces.http.models import ReportsOut
from kaskad.services import reports

router = APIRouter(prefix="/v1", tags=["webhooks"])


@router.post("/webhooks/{provider}", response_model=ReportsOut)
async def post_webhook(provider: str, request: Request, app: AppDep) -> Any:
    """Receive a provider's status reports. Late reports (after the cascade moved on) are
    recorded on their message, cost included, and never start another send."""
    parser = app.webhooks.get(provider)
    if parser is None:
        raise ApiError(404, "unknown_provider", f"no webhook for provider {provider!r}")
    if provider == "sandbox":
        # The sandbox has no signature of its own: it takes an API key.
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        await check_key(app, key if scheme.lower() == "bearer" else None)
    body = await request.body()
    parsed = parser.parse(body, dict(request.headers))
    summary = await run_in_threadpool(
        lambda: reports.apply_reports(app.uow(), reports=parsed, now=app.clock.now())
    )
    return {
        "applied": summary.applied,
        "recorded_only": summary.recorded_only,
        "unmatched": summary.unmatched,
    }
