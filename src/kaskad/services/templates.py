"""Templates: apply a new version, read back, preview; the parsed live version per process.

A version never changes once stored. Messages render with the live version when they are
sent, and record which version that was.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.templates import Template, TemplateError, load_template
from kaskad.services.errors import NotFound, invalid_document

CACHE_SIZE: Final = 1024


@dataclass(frozen=True, slots=True)
class Applied:
    id: str
    version: int
    created: bool


def check(source: str, *, filename: str = "<template>") -> Template:
    """Parse and check a template document; problems become one ``invalid_template`` error."""
    try:
        return load_template(source, filename=filename)
    except TemplateError as exc:
        raise invalid_document("invalid_template", exc) from None


def apply_template(
    uow: UnitOfWork, *, source: str, now: datetime, filename: str = "<template>"
) -> Applied:
    """Store the document as the template's next version, unless it is the live one already;
    messages sent from now on render with it."""
    template = check(source, filename=filename)
    digest = hashlib.sha256(source.encode()).hexdigest()
    with uow:
        row = uow.templates.get(template.id, lock=True)
        live = uow.templates.version(template.id, row["version"]) if row else None
        created = live is None or live["digest"] != digest
        version = (row["version"] if row else 0) + (1 if created else 0)
        values = {"name": template.name, "version": version, "updated_at": now}
        if row is None:
            uow.templates.insert({"id": template.id, "created_at": now, **values})
        if created:
            uow.templates.add_version(
                {
                    "template_id": template.id,
                    "version": version,
                    "source": source,
                    "digest": digest,
                    "created_at": now,
                }
            )
        if row is not None:
            uow.templates.update(template.id, values)
        uow.commit()
    remember(uow.database, template.id, version, template)
    return Applied(template.id, version, created)


def get_template(
    uow: UnitOfWork, *, template_id: str, version: int | None = None
) -> dict[str, Any]:
    with uow:
        row = uow.templates.get(template_id)
        if row is None:
            raise NotFound("template_not_found", f"no template {template_id!r}")
        wanted = version or row["version"]
        stored = uow.templates.version(template_id, wanted)
        if stored is None:
            raise NotFound("template_not_found", f"no version {wanted} of template {template_id!r}")
        return {
            "template": row,
            "version": wanted,
            "source": stored["source"],
            "versions": uow.templates.versions(template_id),
        }


def list_templates(uow: UnitOfWork) -> list[dict[str, Any]]:
    with uow:
        return uow.templates.all()


# -- parsed versions, per process ---------------------------------------------------------
_CACHE: OrderedDict[tuple[str, str, int], Template] = OrderedDict()
_LOCK = threading.Lock()


def remember(database: str, template_id: str, version: int, template: Template) -> None:
    key = (database, template_id, version)
    with _LOCK:
        _CACHE[key] = template
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)


def live_templates(uow: UnitOfWork, template_ids: set[str]) -> dict[str, tuple[int, Template]]:
    """The live version of each template named (missing ones are left out), parsed once
    per process: a batch of sends costs one small query, not one parse per message."""
    versions = uow.templates.live_versions(template_ids)
    found: dict[str, tuple[int, Template]] = {}
    for template_id, version in versions.items():
        found[template_id] = (version, _parsed(uow, template_id, version))
    return found


def _parsed(uow: UnitOfWork, template_id: str, version: int) -> Template:
    with _LOCK:
        cached = _CACHE.get((uow.database, template_id, version))
    if cached is not None:
        return cached
    row = uow.templates.version(template_id, version)
    if row is None:  # pragma: no cover - live_versions just named it
        raise NotFound("template_not_found", f"no version {version} of {template_id!r}")
    template = load_template(row["source"], filename=f"{template_id} v{version}")
    remember(uow.database, template_id, version, template)
    return template


def forget() -> None:
    """Drop every parsed template (tests that empty a database reuse its ids)."""
    with _LOCK:
        _CACHE.clear()
