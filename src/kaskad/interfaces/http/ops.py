"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from kaskad.adapters import metrics
from kaskad.bootstrap import App
from kaskad.interfaces.http.deps import AppDep
from kaskad.interfaces.http.errors import error_response

router = APIRouter(tags=["operations"])


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    """The demo starts at the interactive API docs."""
    return RedirectResponse("/docs")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(app: AppDep) -> Response | dict[str, str]:
    """The database answers and its schema is at the newest migration."""
    try:
        with app.db.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = app.migrations_current()
    except SQLAlchemyError as exc:
        return error_response(503, "database_unavailable", type(exc).__name__)
    if not current:
        return error_response(503, "migrations_pending", "run `kaskad db upgrade`")
    return {"status": "ready"}


def _depths(app: App) -> None:
    with app.uow() as uow:
        metrics.QUEUE_DEPTH.labels("outbox").set(uow.notifications.outbox_depth())
        metrics.QUEUE_DEPTH.labels("timers").set(uow.notifications.waiting_count())


@router.get("/metrics")
async def prometheus(app: AppDep) -> Response:
    await run_in_threadpool(_depths, app)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
