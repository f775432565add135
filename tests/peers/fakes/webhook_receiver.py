"""A customer's service receiving kaskad's generic webhook provider: it checks the signature
and timestamp as docs/providers.md tells a receiver to, refuses a repeated Idempotency-Key,
answers by address (``busy-…`` 429 with Retry-After, ``down-…`` 503, ``bad-…`` 400), and
records what it took (``GET /_fake/state``).

The secret comes from ``FAKE_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SECRET = os.environ.get("FAKE_WEBHOOK_SECRET", "")
received: list[dict[str, Any]] = []
refused: list[str] = []
keys: dict[str, str] = {}


async def health(_: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def state(_: Request) -> JSONResponse:
    return JSONResponse({"received": received, "refused": refused})


def _verified(request: Request, body: bytes) -> str | None:
    stamp = request.headers.get("x-kaskad-timestamp", "")
    given = request.headers.get("x-kaskad-signature", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
        return "stale or missing timestamp"
    digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given, "sha256=" + digest):
        return "bad signature"
    return None


async def receive(request: Request) -> JSONResponse:
    body = await request.body()
    problem = _verified(request, body)
    if problem:
        refused.append(problem)
        return JSONResponse({"error": problem}, status_code=401)
    message = json.loads(body)
    address = message["address"]
    if address.startswith("busy-"):
        return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "0"})
    if address.startswith("down-"):
        return JSONResponse({"error": "unavailable"}, status_code=503)
    if address.startswith("bad-"):
        return JSONResponse({"error": "unknown device"}, status_code=400)
    key = request.headers.get("idempotency-key", "")
    if key in keys:  # the same message again: the first answer, nothing new delivered
        return JSONResponse({"id": keys[key]})
    keys[key] = f"rcv-{len(keys) + 1}"
    received.append(message)
    return JSONResponse({"id": keys[key]})


app = Starlette(
    routes=[
        Route("/_fake/health", health),
        Route("/_fake/state", state),
        Route("/inbox", receive, methods=["POST"]),
    ]
)
