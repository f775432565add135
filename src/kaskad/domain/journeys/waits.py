"""Reading a wait step: a duration, a time of day, a date, an event or the end of a send.

Waits are also what lets a run go round a loop, so reading one tells the caller whether it
always takes time (see ``loops``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from kaskad.domain.journeys.reader import Reader, describe, did_you_mean, quote, unknown_key
from kaskad.domain.journeys.source import Path
from kaskad.domain.journeys.steps import (
    Wait,
    WaitDuration,
    WaitForEvent,
    WaitForReply,
    WaitForSend,
    WaitUntilDate,
    WaitUntilTime,
)

WAIT_KINDS: Final = ("until", "attribute", "event", "send", "reply")
WAIT_KEYS: Final = (*WAIT_KINDS, "offset", "at", "where", "timeout")
# A wait for a date goes on at once when the date is past, and a wait for a send when its
# cascade has ended (one the contact cannot receive at all ends at once).
_ALWAYS_TAKE_TIME: Final = ("until", "event", "reply")


@dataclass(frozen=True, slots=True)
class SendsBefore:
    """What a ``wait: {send: ID}`` may name: the kinds and places of all steps."""

    index: int  # the wait's own place
    ids: Mapping[str, int]
    sends: frozenset[str]


def read_wait(
    reader: Reader, body: Any, path: Path, sends: SendsBefore
) -> tuple[Wait | None, bool]:
    """The wait, and whether it always takes time (True too when it could not be read)."""
    if isinstance(body, str | int | float) and not isinstance(body, bool):
        duration = reader.duration(body, path)
        return (WaitDuration(duration) if duration is not None else None), True
    if not isinstance(body, dict):
        reader.report(path, f"expected a duration or a mapping, got {describe(body)}")
        return None, True
    kinds = [key for key in body if key in WAIT_KINDS]
    if len(kinds) != 1:
        for key in body:
            if key not in WAIT_KEYS:
                reader.report((*path, key), unknown_key(key, WAIT_KEYS))
        found = f"; this one has {' and '.join(kinds)}" if kinds else ""
        reader.report(path, f"a wait has one of until, attribute, event, send or reply{found}")
        return None, True
    kind = kinds[0]
    takes_time = kind in _ALWAYS_TAKE_TIME
    if kind == "until":
        return _until(reader, body, path), takes_time
    if kind == "attribute":
        return _date(reader, body, path), takes_time
    if kind == "event":
        return _event(reader, body, path), takes_time
    if kind == "reply":
        return _reply(reader, body, path, sends), takes_time
    return _send(reader, body, path, sends), takes_time


def _until(reader: Reader, body: dict[str, Any], path: Path) -> WaitUntilTime | None:
    reader.mapping(body, path, required=("until",))
    at = reader.read(body, "until", path, reader.time_of_day)
    return WaitUntilTime(at) if at is not None else None


def _date(reader: Reader, body: dict[str, Any], path: Path) -> WaitUntilDate | None:
    reader.mapping(body, path, required=("attribute",), optional=("offset", "at"))
    attribute = reader.read(body, "attribute", path, reader.attribute)
    offset = reader.read(body, "offset", path, reader.offset)
    at = reader.read(body, "at", path, reader.time_of_day)
    if attribute is None or failed(body, offset=offset, at=at):
        return None
    return WaitUntilDate(attribute, offset or timedelta(0), at)


def _event(reader: Reader, body: dict[str, Any], path: Path) -> WaitForEvent | None:
    # The timeout is required: a run waiting for an event that never comes would hold the
    # contact's place in the journey (max_active_runs) for good.
    reader.mapping(body, path, required=("event", "timeout"), optional=("where",))
    event = reader.read(body, "event", path, reader.event_type)
    where = reader.read(body, "where", path, reader.condition)
    timeout = reader.read(body, "timeout", path, reader.duration)
    if event is None or timeout is None or failed(body, where=where):
        return None
    return WaitForEvent(event, where, timeout)


def _send(
    reader: Reader, body: dict[str, Any], path: Path, sends: SendsBefore
) -> WaitForSend | None:
    reader.mapping(body, path, required=("send",), optional=("timeout",))
    send_id = reader.read(body, "send", path, lambda v, p: _earlier_send(reader, v, p, sends))
    timeout = reader.read(body, "timeout", path, reader.duration)
    if send_id is None or failed(body, timeout=timeout):
        return None
    return WaitForSend(send_id, timeout)


def _reply(
    reader: Reader, body: dict[str, Any], path: Path, sends: SendsBefore
) -> WaitForReply | None:
    # The timeout is required, as for an event: most customers never answer.
    reader.mapping(body, path, required=("reply", "timeout"), optional=("where",))
    timeout = reader.read(body, "timeout", path, reader.duration)
    where = reader.read(body, "where", path, reader.condition)
    send_id = reader.read(body, "reply", path, lambda v, p: _replied_send(reader, v, p, sends))
    if "reply" not in body or timeout is None or failed(body, where=where, reply=send_id):
        return None
    return WaitForReply(send_id if isinstance(send_id, str) else None, timeout, where)


def _replied_send(reader: Reader, value: Any, path: Path, sends: SendsBefore) -> str | bool | None:
    """``true`` (the run's latest send when the wait begins) or an earlier send's id."""
    if value is True:
        if not any(sends.ids[name] < sends.index for name in sends.sends):
            reader.report(path, "a wait for a reply needs a send or survey step before it")
            return None
        return True
    if value is False:
        reader.report(path, "write reply: true (the latest send) or the id of a send step")
        return None
    return _earlier_send(reader, value, path, sends)


def _earlier_send(reader: Reader, value: Any, path: Path, sends: SendsBefore) -> str | None:
    if not isinstance(value, str) or value not in sends.ids:
        shown = quote(value) if isinstance(value, str) else describe(value)
        earlier = [name for name in sends.sends if sends.ids[name] < sends.index]
        reader.report(path, f"no send step has the id {shown}{did_you_mean(value, earlier)}")
        return None
    if value not in sends.sends:
        reader.report(path, f'"{value}" is not a send step')
        return None
    if sends.ids[value] >= sends.index:
        reader.report(path, f'the send step "{value}" must come before this wait')
        return None
    return value


def failed(body: Mapping[str, Any], **parsed: Any) -> bool:
    """Whether an optional key was written but could not be read."""
    return any(key in body and value is None for key, value in parsed.items())
