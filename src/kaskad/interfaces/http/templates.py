"""Templates: apply versions, read them back, preview every variant for a sample."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request, Response

from kaskad.interfaces.http.deps import AppDep, Authorized
from kaskad.interfaces.http.documents import Body, problems_by_path, read_body
from kaskad.interfaces.http.template_models import (
    PreviewIn,
    PreviewOut,
    TemplateAppliedOut,
    TemplateDetailOut,
    TemplateIn,
    TemplateListOut,
)
from kaskad.services import previews, templates
from kaskad.services.previews import Pricing

router = APIRouter(prefix="/v1", tags=["templates"], dependencies=[Authorized])

_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": TemplateIn.model_json_schema()},
            "application/yaml": {
                "schema": {"type": "string", "description": "The template document itself"}
            },
        },
    }
}


async def template_body(request: Request) -> Body:
    body, _ = await read_body(request, TemplateIn, "template")
    return body


BodyDep = Annotated[Body, Depends(template_body)]


@router.post(
    "/templates",
    status_code=201,
    response_model=TemplateAppliedOut,
    openapi_extra=_BODY,
    responses={200: {"model": TemplateAppliedOut, "description": "The live version already"}},
)
def post_template(body: BodyDep, app: AppDep, response: Response) -> Any:
    """Store a template as its next version (201), or find it unchanged (200). Messages
    sent from now on render with it; each message records the version it used. Problems
    come back as 422 `invalid_template` with every `{path, line, message}`."""
    with problems_by_path(body, "invalid_template", "template"):
        applied = templates.apply_template(app.uow(), source=body.source, now=app.clock.now())
    response.status_code = 201 if applied.created else 200
    return {"id": applied.id, "version": applied.version, "created": applied.created}


@router.post("/templates:validate", response_model=TemplateAppliedOut, openapi_extra=_BODY)
def validate_template(body: BodyDep) -> Any:
    """Check a template without storing it (`version` is 0)."""
    with problems_by_path(body, "invalid_template", "template"):
        template = templates.check(body.source)
    return {"id": template.id, "version": 0, "created": False}


@router.get("/templates", response_model=TemplateListOut)
def list_templates(app: AppDep) -> Any:
    return {"templates": templates.list_templates(app.uow())}


@router.get("/templates/{template_id}", response_model=TemplateDetailOut)
def get_template(
    template_id: str,
    app: AppDep,
    version: Annotated[int | None, Query(ge=1, description="Show this version's source")] = None,
) -> Any:
    """The template, its versions, and the source of the live version (or `?version=N`)."""
    found = templates.get_template(app.uow(), template_id=template_id, version=version)
    return found["template"] | {
        "versions": found["versions"],
        "source_version": found["version"],
        "source": found["source"],
    }


@router.post("/templates/{template_id}:preview", response_model=PreviewOut)
def preview_template(template_id: str, body: PreviewIn, app: AppDep) -> Any:
    """Render each variant for a sample contact and event. Per variant: the content as it
    would be sent (links shortened as they would be), missing variables, warnings, and for
    SMS the encoding (GSM-7 or UCS-2), characters, segments and cost estimate."""
    settings = app.settings
    return previews.preview(
        app.uow(),
        template_id=template_id,
        source=body.source,
        contact=body.contact,
        event=body.event,
        channel=body.channel,
        locale=body.locale,
        tracking=app.tracking,
        pricing=Pricing(settings.sms_segment_price, settings.sms_price_currency),
    )
