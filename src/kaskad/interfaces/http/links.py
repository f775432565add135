"""What customers reach from a message: short links, the email open pixel, one-click
unsubscribe. Public (no API key): the signed token is the authority, and a bad token
learns nothing."""

from __future__ import annotations

import base64
import logging
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from kaskad.domain.links import BadToken, LinkRef, verify_link
from kaskad.interfaces.http.deps import AppDep
from kaskad.interfaces.http.errors import ApiError
from kaskad.services import links
from kaskad.services.errors import NotFound

router = APIRouter(tags=["links"], include_in_schema=True)
log = logging.getLogger(__name__)

PIXEL: Final = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE: Final = {"Cache-Control": "no-store, max-age=0"}


def _ref(app: AppDep, token: str, kind: str) -> LinkRef:
    try:
        ref = verify_link(app.settings.link_key, token)
    except BadToken:
        raise ApiError(404, "link_not_found", "this link does not exist") from None
    if ref.kind != kind:
        raise ApiError(404, "link_not_found", "this link does not exist")
    return ref


@router.get("/r/{token}", response_class=RedirectResponse, status_code=302)
async def follow_link(token: str, app: AppDep) -> Response:
    """A tracked link: the click is recorded (the message becomes `clicked`) and the
    customer is sent on to the original address."""
    ref = _ref(app, token, "click")
    try:
        url = await run_in_threadpool(lambda: links.follow(app.uow(), ref=ref, now=app.clock.now()))
    except NotFound as exc:
        raise ApiError(404, exc.code, exc.message) from None
    return RedirectResponse(url or "/", status_code=302, headers=NO_STORE)


@router.get("/o/{token}")
async def open_pixel(token: str, app: AppDep) -> Response:
    """The email open pixel: the message becomes `seen`. Always a 1×1 GIF, so a mail client
    never shows a broken image."""
    try:
        ref = _ref(app, token.removesuffix(".gif"), "open")
        await run_in_threadpool(lambda: links.follow(app.uow(), ref=ref, now=app.clock.now()))
    except (ApiError, NotFound):
        log.info("open pixel with an unknown token")
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/u/{token}", response_class=HTMLResponse)
async def unsubscribe_page(token: str, app: AppDep) -> HTMLResponse:
    """A page with one button. A GET never unsubscribes: mail scanners follow links."""
    _ref(app, token, "unsubscribe")
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>Unsubscribe</title>"
        "<form method=post><p>Stop these messages?</p>"
        "<button type=submit name=List-Unsubscribe value=One-Click>Unsubscribe</button>"
        "</form>",
        headers=NO_STORE,
    )


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request, app: AppDep) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058: mailbox providers POST
    `List-Unsubscribe=One-Click`): the consent for the message's channel and category is
    withdrawn, and journeys see a `consent.withdrawn` event."""
    ref = _ref(app, token, "unsubscribe")
    try:
        done = await run_in_threadpool(
            lambda: links.unsubscribe(app.uow(), ref=ref, routing=app.routing, now=app.clock.now())
        )
    except NotFound as exc:
        raise ApiError(404, exc.code, exc.message) from None
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>Unsubscribed</title>"
        f"<p>You will no longer receive {done.category} messages by {done.channel}.</p>",
        headers=NO_STORE,
    )
