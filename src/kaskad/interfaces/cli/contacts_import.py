"""``kaskad contacts import FILE.csv``: validate every row, then import in one transaction.

Columns: ``external_id`` (required), ``phone``, ``email``, ``locale``, ``timezone``,
``push_tokens`` (separated by ``;``), ``attr.NAME`` (text) or ``attr.NAME:int|float|bool``,
and ``consent.CHANNEL.CATEGORY`` (``true``/``false``; ``*`` for any). Empty cells are left
unset.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from kaskad.bootstrap import App
from kaskad.domain.contacts import InvalidContact
from kaskad.services import contacts
from kaskad.services.contacts import UNSET, ContactPatch

BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
PLAIN = ("phone", "email", "locale", "timezone")


class RowError(ValueError):
    pass


def _typed(kind: str, value: str) -> Any:
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        if value.lower() not in BOOLS:
            raise ValueError(f"{value!r} is not true/false")
        return BOOLS[value.lower()]
    raise ValueError(f"unknown column type {kind!r}")


def patch_from_row(row: dict[str, str]) -> ContactPatch:
    external_id = (row.get("external_id") or "").strip()
    if not external_id:
        raise RowError("external_id is empty")
    fields: dict[str, Any] = dict.fromkeys((*PLAIN, "push_tokens"), UNSET)
    attributes: dict[str, Any] = {}
    consents: dict[str, dict[str, bool]] = {}
    for column, raw in row.items():
        value = (raw or "").strip()
        if not value or column is None:
            continue
        if column in PLAIN:
            fields[column] = value
        elif column == "push_tokens":
            fields["push_tokens"] = [t.strip() for t in value.split(";") if t.strip()]
        elif column.startswith("attr."):
            name, _, kind = column[5:].partition(":")
            try:
                attributes[name] = _typed(kind, value) if kind else value
            except ValueError as exc:
                raise RowError(f"{column}: {exc}") from exc
        elif column.startswith("consent."):
            _, channel, category = ([*column.split("."), "", ""])[:3]
            if value.lower() not in BOOLS:
                raise RowError(f"{column}: {value!r} is not true/false")
            consents.setdefault(channel, {})[category] = BOOLS[value.lower()]
        elif column != "external_id":
            raise RowError(f"unknown column {column!r}")
    return ContactPatch(external_id=external_id, attributes=attributes, consents=consents, **fields)


def validate(
    path: Path, default_region: str | None
) -> tuple[list[ContactPatch], list[tuple[int, str, str]]]:
    """Valid patches and rejected rows as (line number, external id, reason)."""
    valid: list[ContactPatch] = []
    rejected: list[tuple[int, str, str]] = []
    seen: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "external_id" not in reader.fieldnames:
            raise RowError("the CSV needs a header row with an `external_id` column")
        for line, row in enumerate(reader, start=2):
            ext = (row.get("external_id") or "").strip()
            try:
                if None in row:
                    raise RowError("more cells than header columns")
                patch = contacts.normalise(patch_from_row(row), default_region)
            except (RowError, InvalidContact) as exc:
                field = f"{exc.field}: " if isinstance(exc, InvalidContact) else ""
                rejected.append((line, ext, f"{field}{exc}"))
                continue
            if ext in seen:
                rejected.append((line, ext, f"duplicate of line {seen[ext]}"))
                continue
            seen[ext] = line
            valid.append(patch)
    return valid, rejected


def run(app: App, path: Path, *, skip_invalid: bool, console: Console) -> int:
    """Exit codes: 0 all imported; 1 rejected rows (nothing imported unless --skip-invalid);
    2 unreadable file."""
    try:
        valid, rejected = validate(path, app.settings.default_phone_region)
    except (RowError, UnicodeDecodeError, csv.Error) as exc:
        console.print(f"[red]cannot import {path}:[/red] {exc}")
        return 2
    if rejected:
        table = Table("line", "external_id", "reason", title=f"{len(rejected)} rejected row(s)")
        for line, ext, reason in rejected[:200]:
            table.add_row(str(line), ext, reason)
        console.print(table)
        if len(rejected) > 200:
            console.print(f"… and {len(rejected) - 200} more")
        if not skip_invalid:
            console.print(
                "[red]nothing imported[/red] (use --skip-invalid to import the valid rows)"
            )
            return 1
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("importing contacts", total=len(valid))
        results = contacts.upsert_contacts(
            app.uow(),
            patches=valid,
            default_region=app.settings.default_phone_region,
            now=app.clock.now(),
            progress=lambda n: progress.advance(task, n),
            routing=app.routing,
        )
    created = sum(1 for _, was_created in results if was_created)
    console.print(
        f"imported {len(results)} contact(s): {created} new, {len(results) - created} updated"
    )
    return 1 if rejected else 0
