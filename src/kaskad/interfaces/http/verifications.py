"""Verifications: send a one-time code along a cascade, check it, read its status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kaskad.domain.durations import parse_duration
from kaskad.domain.verifications import RateLimit, Wording
from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.interfaces.http.errors import ApiError, error_response
from kaskad.interfaces.http.verification_models import (
    CheckIn,
    CheckOut,
    VerificationIn,
    VerificationOut,
)
from kaskad.services import verifications
from kaskad.settings import OtpSettings

router = APIRouter(prefix="/v1", tags=["verifications"], dependencies=[Authorized])
MAX_EXPIRY = timedelta(days=1)
_RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "`rate_limited`: too many codes for this phone or IP; see `Retry-After`"}
}


def otp_config(s: OtpSettings) -> verifications.OtpConfig:
    return verifications.OtpConfig(
        code_length=s.code_length,
        alphabet=s.alphabet,
        expiry=timedelta(seconds=s.expiry_seconds),
        max_attempts=s.max_attempts,
        step_timeout=timedelta(seconds=s.step_timeout_seconds),
        wording=Wording(s.text, s.push_title, s.email_subject),
        phone_limit=RateLimit("phone", s.phone_limit, timedelta(seconds=s.phone_window_seconds)),
        ip_limit=RateLimit("ip", s.ip_limit, timedelta(seconds=s.ip_window_seconds)),
    )


def _duration(field: str, raw: str | None, most: timedelta | None = None) -> timedelta | None:
    if raw is None:
        return None
    try:
        value = parse_duration(raw)
        if most is not None and value > most:
            raise ValueError(f"at most {int(most.total_seconds())}s")
    except ValueError as exc:
        raise ApiError(
            422, "invalid_duration", f"{field}: {exc}", [{"field": field, "message": str(exc)}]
        ) from exc
    return value


def _request(body: VerificationIn) -> verifications.VerificationRequest:
    cascade = [
        verifications.ChannelStep(
            step.channel, _duration(f"cascade[{i}].timeout", step.timeout, MAX_EXPIRY)
        )
        for i, step in enumerate(body.cascade)
    ]
    return verifications.VerificationRequest(
        contact=body.contact,
        phone=body.phone,
        cascade=cascade,
        ip=body.ip,
        code_length=body.code_length,
        expiry=_duration("expiry", body.expiry, MAX_EXPIRY),
        max_attempts=body.max_attempts,
        text=body.text,
    )


@router.post(
    "/verifications", status_code=201, response_model=VerificationOut, responses=_RATE_LIMITED
)
def post_verification(body: VerificationIn, app: AppDep) -> Any:
    """Send a one-time code along the cascade (e.g. `["push", "sms", "voice"]`), as a
    security notification that bulk sends never delay. Only a hash of the code is stored."""
    try:
        return verifications.start_verification(
            app.uow(),
            request=_request(body),
            config=otp_config(app.settings.otp),
            routing=app.routing,
            key=app.settings.secret.encode(),
            now=app.clock.now(),
            default_region=app.settings.default_phone_region,
            create_contacts=app.settings.create_unknown_contacts,
        )
    except verifications.RateLimited as exc:
        return _too_many(exc)


def _too_many(exc: verifications.RateLimited) -> JSONResponse:
    return error_response(
        429, exc.code, exc.message, exc.details, headers={"Retry-After": str(exc.retry_after)}
    )


@router.post("/verifications/{verification_id}:check", response_model=CheckOut)
def check_verification(verification_id: str, body: CheckIn, app: AppDep) -> Any:
    """Check a code: `approved`, `wrong_code` (with the attempts left), `expired`,
    `too_many_attempts` (the verification is dead) or `already_approved`."""
    checked = verifications.check_verification(
        app.uow(),
        verification_id=verification_id,
        code=body.code,
        key=app.settings.secret.encode(),
        now=app.clock.now(),
    )
    return {
        "id": checked.id,
        "result": checked.result,
        "status": checked.status,
        "attempts_left": checked.attempts_left,
    }


@router.get("/verifications/{verification_id}", response_model=VerificationOut)
def get_verification(verification_id: str, app: AppDep) -> Any:
    """Where a verification stands and the channel that carried its code (never the code)."""
    return verifications.get_verification(
        app.uow(), verification_id=verification_id, now=app.clock.now()
    )
