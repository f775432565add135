"""Provider callbacks: delivery, seen and click reports mapped by each provider's table,
and what customers answer (replies, keypresses), all behind each provider's signature."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from kaskad.bootstrap import App
from kaskad.domain.providers import (
    BadSignature,
    Callback,
    CallbackReader,
    StatusReport,
    WebhookRequest,
)
from kaskad.interfaces.http.batching import GroupCommit
from kaskad.interfaces.http.deps import AppDep, check_key
from kaskad.interfaces.http.errors import ApiError
from kaskad.interfaces.http.models import ReportsOut
from kaskad.services import inbound, reports

router = APIRouter(prefix="/v1", tags=["webhooks"])
log = logging.getLogger(__name__)


@router.post("/webhooks/{provider}", response_model=ReportsOut)
async def post_webhook(provider: str, request: Request, app: AppDep) -> Any:
    """Receive a provider's status reports and inbound messages. Late reports (after the
    cascade moved on) are recorded on their message, cost included, and never start another
    send. A call whose signature does not match is refused with 401 and changes nothing."""
    reader = _reader(app, provider)
    body = await request.body()
    if provider == "sandbox":
        await _sandbox_caller(app, request, body)
    callback = _read(reader, await _request(request, body))
    group: GroupCommit[Sequence[StatusReport], reports.ReportSummary] = (
        request.app.state.report_group
    )
    summary = await group.submit(callback.reports) if callback.reports else reports.ReportSummary()
    if callback.inbound:
        await run_in_threadpool(_store_inbound, app, callback)
    if callback.answer is not None:
        media_type, content = callback.answer
        return Response(content, media_type=media_type)
    return {
        "applied": summary.applied,
        "recorded_only": summary.recorded_only,
        "unmatched": summary.unmatched,
        "inbound": len(callback.inbound),
    }


@router.get("/webhooks/{provider}", include_in_schema=True)
async def get_webhook(provider: str, request: Request, app: AppDep) -> Response:
    """A provider checking the webhook before it posts to it (Meta's ``hub.challenge``),
    or one that fetches its next instructions by GET."""
    reader = _reader(app, provider)
    callback = _read(reader, await _request(request, b""))
    if callback.reports or callback.inbound:
        await run_in_threadpool(_store, app, callback)
    if callback.answer is None:
        return Response(status_code=204)
    media_type, content = callback.answer
    return Response(content, media_type=media_type)


def _reader(app: App, provider: str) -> CallbackReader:
    reader = app.webhooks.get(provider)
    if reader is None:
        raise ApiError(404, "unknown_provider", f"no webhook for provider {provider!r}")
    return reader


async def _request(request: Request, body: bytes) -> WebhookRequest:
    return WebhookRequest(
        method=request.method,
        url=str(request.url),
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=body,
    )


def _read(reader: CallbackReader, request: WebhookRequest) -> Callback:
    try:
        return reader.read(request)
    except BadSignature as exc:
        # Logged without the body: it may hold phone numbers and message text.
        log.warning("%s webhook refused: %s", reader.name, exc)
        raise ApiError(401, "bad_signature", str(exc)) from exc


def group_commit(app: App) -> GroupCommit[Sequence[StatusReport], reports.ReportSummary]:
    """One per application: callbacks arriving together share a transaction, each with its
    own answer (a gateway posting thousands of reports a second gets them all stored)."""
    window = app.settings.event_group_window_ms / 1000

    def write(groups: Sequence[Sequence[StatusReport]]) -> list[reports.ReportSummary]:
        return reports.apply_report_groups(app.uow(), groups=groups, now=app.clock.now())

    return GroupCommit(write, window=window)


def _store(app: App, callback: Callback) -> None:
    if callback.reports:
        reports.apply_reports(app.uow(), reports=callback.reports, now=app.clock.now())
    _store_inbound(app, callback)


def _store_inbound(app: App, callback: Callback) -> None:
    if callback.inbound:
        now = app.clock.now()
        inbound.record_inbound(app.uow(), messages=callback.inbound, routing=app.routing, now=now)


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
