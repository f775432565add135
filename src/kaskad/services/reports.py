"""Status reports from providers: record them on their messages and move cascades on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kaskad.adapters.storage.unit_of_work import UnitOfWork
from kaskad.domain.providers import StatusReport
from kaskad.domain.vocabulary import MessageStatus, advances
from kaskad.services import cascading


@dataclass(frozen=True, slots=True)
class ReportSummary:
    applied: int = 0
    recorded_only: int = 0
    unmatched: int = 0


def apply_reports(
    uow: UnitOfWork, *, reports: Sequence[StatusReport], now: datetime
) -> ReportSummary:
    """Apply a batch of reports in one transaction.

    Every matched report lands in the message's history. Only reports that move a message
    forward change its status, and only the current step's message can move its cascade:
    a late report is recorded (with its cost) and never starts another send.
    """
    with uow:
        summary = record_reports(uow, reports=reports, now=now)
        uow.commit()
        return summary


def apply_report_groups(
    uow: UnitOfWork, *, groups: Sequence[Sequence[StatusReport]], now: datetime
) -> list[ReportSummary]:
    """Apply the reports of several webhook calls in one transaction (group commit), with a
    summary for each call. All notifications are locked at once, so two processes doing
    this never wait for each other in a cycle."""
    with uow:
        outcomes = _record(uow, [r for group in groups for r in group], now)
        uow.commit()
    summaries: list[ReportSummary] = []
    start = 0
    for group in groups:
        summaries.append(_summary(outcomes[start : start + len(group)]))
        start += len(group)
    return summaries


def record_reports(
    uow: UnitOfWork, *, reports: Sequence[StatusReport], now: datetime
) -> ReportSummary:
    """The body of ``apply_reports`` for callers that already hold a unit of work."""
    return _summary(_record(uow, reports, now))


def _summary(outcomes: Sequence[str]) -> ReportSummary:
    return ReportSummary(
        outcomes.count("applied"), outcomes.count("recorded"), outcomes.count("unmatched")
    )


def _record(uow: UnitOfWork, reports: Sequence[StatusReport], now: datetime) -> list[str]:
    """Each report's outcome, in order: applied (moved its message), recorded (kept in the
    history only) or unmatched."""
    message_ids = _match(uow, reports)
    located = uow.notifications.messages_by_ids(i for i in message_ids if i)
    # Lock the notifications first, then read their messages fresh under the lock.
    tracked = cascading.track(
        uow, uow.notifications.lock({m["notification_id"] for m in located.values()}).values()
    )
    messages = {m["id"]: m for item in tracked.values() for m in item.messages.values()}
    outcomes: list[str] = []
    for report, message_id in zip(reports, message_ids, strict=True):
        message = messages.get(message_id) if message_id else None
        if message is None:
            outcomes.append("unmatched")
            if message_id is None and report.provider_message_id:
                _park(uow, report, now)
            continue
        moves = advances(MessageStatus(message["status"]), report.status)
        extra: dict[str, object] = {}
        if report.cost:
            extra |= {"cost": report.cost, "currency": report.currency}
        if report.provider_message_id and not message["provider_message_id"]:
            # A receipt can beat the provider's answer to the send (or outlive a sender that
            # died before recording it): learn the provider's id from the receipt.
            extra["provider_message_id"] = report.provider_message_id
        cascading.set_status(
            uow,
            message,
            report.status,
            report.at,
            applied=moves,
            provider_status=report.provider_status,
            extra=extra,
        )
        if not moves:
            outcomes.append("recorded")
            continue
        outcomes.append("applied")
        item = tracked[message["notification_id"]]
        transition = item.cascade.on_status(item.state, message["step"], report.status, now)
        cascading.carry_out(uow, item, transition, now)
    return outcomes


def _park(uow: UnitOfWork, report: StatusReport, now: datetime) -> None:
    """Keep a report that names a provider id no message has yet: an SMSC's receipt can
    arrive before its answer to the send is stored. ``apply_early_reports`` takes it up
    once that answer lands."""
    uow.early_reports.park(
        {
            "provider": report.provider,
            "provider_message_id": report.provider_message_id,
            "report": {
                "status": report.status.value,
                "at": report.at.isoformat(),
                "provider_status": report.provider_status,
                "cost": report.cost,
                "currency": report.currency,
            },
            "received_at": now,
        }
    )


def apply_early_reports(
    uow: UnitOfWork, *, accepted: Sequence[tuple[str, str, str]], now: datetime
) -> None:
    """Apply the parked reports of messages whose provider ids were just stored.

    ``accepted`` holds (provider, provider message id, message id) of this unit of work.
    """
    by_ref = {(provider, ref): message_id for provider, ref, message_id in accepted}
    parked = uow.early_reports.take(by_ref)
    if not parked:
        return
    reports = [
        StatusReport(
            provider=row["provider"],
            status=MessageStatus(row["report"]["status"]),
            at=datetime.fromisoformat(row["report"]["at"]),
            message_id=by_ref[(row["provider"], row["provider_message_id"])],
            provider_message_id=row["provider_message_id"],
            provider_status=row["report"].get("provider_status"),
            cost=row["report"].get("cost"),
            currency=row["report"].get("currency"),
        )
        for row in parked
    ]
    uow.flush()  # the accepted messages' own rows first: the reports move them on
    record_reports(uow, reports=reports, now=now)


def _match(uow: UnitOfWork, reports: Sequence[StatusReport]) -> list[str | None]:
    by_provider: dict[str, set[str]] = {}
    for report in reports:
        if report.message_id is None and report.provider_message_id:
            by_provider.setdefault(report.provider, set()).add(report.provider_message_id)
    found = {
        (provider, ref): row["id"]
        for provider, refs in by_provider.items()
        for ref, row in uow.notifications.messages_by_provider_ref(provider, refs).items()
    }
    return [r.message_id or found.get((r.provider, r.provider_message_id or "")) for r in reports]
