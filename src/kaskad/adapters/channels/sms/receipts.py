"""SMPP delivery receipts: reading them, mapping their status, naming the message they are about.

A receipt is a ``deliver_sm`` with the receipt bit in ``esm_class``. SMPP 3.4 puts its facts
in two places and SMSCs fill either or both: the ``receipted_message_id`` and
``message_state`` TLVs, and the de-facto text of appendix B,
``id:… sub:… dlvrd:… submit date:… done date:… stat:DELIVRD err:… text:…``. The TLVs win
when present: they are typed, while the text varies between vendors.

Message ids. The id in a receipt should equal the ``message_id`` of the ``submit_sm_resp``,
and with the TLV it usually does. The text form is less disciplined: some SMSCs answer the
submit with a hexadecimal id and write the same number in decimal in the text (a habit the
appendix's ten-digit ``id`` field encouraged), some pad with zeros, some change the case of
hex digits. So ids are compared through keys that ignore case and leading zeros, and when a
receipt's id is not known as is, its decimal→hex and hex→decimal readings are tried too.
An id kaskad does not know (a receipt that overtook its ``submit_sm_resp``, or one for a
message sent before a restart) is reported as the receipt gave it, TLV first, for kaskad's
storage to match later.

Multi-part messages. Every part has its own SMSC id and its own receipt, but kaskad tracks
one message: the send result names the *last* part's id, and every part's receipt is
reported against the message with the status of the whole so far: a failure of any part as
soon as it is known, ``delivered`` only once every part is delivered, ``sent`` before that.
Statuses never go backwards in kaskad, so reporting part one's delivery as the message's
would hide a later failure of part two. The map lives in memory: after a restart the last
part's receipt still reaches the message through the id the send result stored, while the
other parts' receipts name ids kaskad never stored and stay unmatched.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Final

from kaskad.adapters.channels.sms.pdus import (
    TLV_MESSAGE_PAYLOAD,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    DeliverSm,
)
from kaskad.domain.providers import StatusReport
from kaskad.domain.vocabulary import MessageStatus

# The receipt's ``stat`` and what it means to kaskad. The long spellings are the names of
# SMPP 3.4's message_state values, which some SMSCs write into the text instead.
SMPP_RECEIPT_STATUS: Final[Mapping[str, MessageStatus]] = {
    "DELIVRD": MessageStatus.DELIVERED,
    "DELIVERED": MessageStatus.DELIVERED,
    "ACCEPTD": MessageStatus.SENT,
    "ACCEPTED": MessageStatus.SENT,
    "ENROUTE": MessageStatus.SENT,
    "UNDELIV": MessageStatus.UNDELIVERABLE,
    "UNDELIVERABLE": MessageStatus.UNDELIVERABLE,
    "EXPIRED": MessageStatus.EXPIRED,
    "REJECTD": MessageStatus.REJECTED,
    "REJECTED": MessageStatus.REJECTED,
    "DELETED": MessageStatus.FAILED,
    "UNKNOWN": MessageStatus.FAILED,
}
# SMPP 3.4 section 5.2.28 message_state values, named as the text receipt names them.
MESSAGE_STATES: Final[Mapping[int, str]] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
RECEIPT: Final = 0x04  # esm_class message type: SMSC delivery receipt
INTERMEDIATE: Final = 0x20  # esm_class message type: intermediate delivery notification
_TYPE_MASK: Final = 0x3C

_FIELD: Final = re.compile(r"(?i)(?:^|(?<=\s))(id|sub|dlvrd|submit date|done date|stat|err|text):")
_DECIMAL: Final = re.compile(r"[0-9]{1,20}")
_HEX: Final = re.compile(r"[0-9A-Fa-f]{1,16}")


def is_receipt(esm_class: int) -> bool:
    """A receipt or an intermediate notification, as opposed to an MO or an SME ack."""
    kind = esm_class & _TYPE_MASK
    return kind in (RECEIPT, INTERMEDIATE)


def parse_text_receipt(text: str) -> dict[str, str]:
    """The ``key:value`` fields of an appendix B receipt, keys lower case; ``text`` is last."""
    fields: dict[str, str] = {}
    matches = list(_FIELD.finditer(text))
    for index, match in enumerate(matches):
        key = match.group(1).lower()
        if key == "text":
            fields["text"] = text[match.end() :]
            break
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        fields.setdefault(key, text[match.end() : end].strip())
    return fields


def receipt_time(value: str | None, zone: tzinfo) -> datetime | None:
    """``YYMMDDhhmm`` (appendix B) or ``YYMMDDhhmmss`` (common) in the SMSC's zone, as UTC."""
    if not value or not value.isdigit() or len(value) not in (10, 12):
        return None
    try:
        moment = datetime(
            2000 + int(value[0:2]),
            int(value[2:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12] or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return moment.astimezone(UTC)


def id_keys(value: str) -> tuple[str, ...]:
    """Keys to look an SMSC message id up by: itself, then its decimal/hex readings."""
    value = value.strip()
    keys = [_key(value)]
    if _DECIMAL.fullmatch(value):
        keys.append(_key(format(int(value), "x")))
    if _HEX.fullmatch(value):
        keys.append(_key(str(int(value, 16))))
    return tuple(dict.fromkeys(keys))


def _key(value: str) -> str:
    return value.lower().lstrip("0") or "0"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a receipt says, whichever form it came in."""

    ids: tuple[str, ...]  # the TLV's id first, then the text's, without duplicates
    stat: str
    status: MessageStatus
    error: str | None
    done_at: datetime | None

    @property
    def provider_status(self) -> str:
        return f"{self.stat} err:{self.error}" if self.error else self.stat


def read_receipt(deliver: DeliverSm, zone: tzinfo) -> Receipt:
    """The receipt in a ``deliver_sm`` whose ``esm_class`` says it is one."""
    raw = deliver.short_message or deliver.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
    fields = parse_text_receipt(raw.decode("latin-1"))
    tlv_id = deliver.tlvs.get(TLV_RECEIPTED_MESSAGE_ID, b"").rstrip(b"\x00").decode("latin-1")
    ids = tuple(dict.fromkeys(i for i in (tlv_id.strip(), fields.get("id", "")) if i))
    state = deliver.tlvs.get(TLV_MESSAGE_STATE)
    if state and state[0] in MESSAGE_STATES:
        stat = MESSAGE_STATES[state[0]]
    else:
        stat = fields.get("stat", "UNKNOWN").upper()
    return Receipt(
        ids=ids,
        stat=stat,
        status=SMPP_RECEIPT_STATUS.get(stat, MessageStatus.FAILED),
        error=_error(fields.get("err"), deliver.tlvs.get(TLV_NETWORK_ERROR_CODE)),
        done_at=receipt_time(fields.get("done date"), zone),
    )


def _error(text_err: str | None, network_error: bytes | None) -> str | None:
    """The receipt's error code, unless it is all zeros (which SMSCs write for "none")."""
    if text_err and text_err.strip("0"):
        return text_err
    if network_error and len(network_error) == 3 and network_error[1:] != b"\x00\x00":
        return f"{network_error[0]}:{int.from_bytes(network_error[1:], 'big')}"
    return None


class Tracked:
    """One message kaskad sent, part by part, whose receipts it can still name."""

    __slots__ = ("client_ref", "finals", "ids")

    def __init__(self, client_ref: str, parts: int) -> None:
        self.client_ref = client_ref
        self.ids: list[str | None] = [None] * parts
        self.finals: list[MessageStatus | None] = [None] * parts

    @property
    def reported_id(self) -> str | None:
        """The id the send result names: the last part's."""
        return self.ids[-1]

    def settle(self, index: int, status: MessageStatus) -> MessageStatus:
        """Record one part's status; the status of the whole message so far."""
        if status is not MessageStatus.SENT and self.finals[index] is None:
            self.finals[index] = status
        for final in self.finals:
            if final is not None and final is not MessageStatus.DELIVERED:
                return final  # the first failure decides: the text did not arrive whole
        if all(final is MessageStatus.DELIVERED for final in self.finals):
            return MessageStatus.DELIVERED
        return MessageStatus.SENT

    @property
    def complete(self) -> bool:
        return all(s is not None for s in self.finals)


class Correlator:
    """SMSC message id → the message it belongs to, kept in memory for as long as it fits.

    Capacity bounds memory when an SMSC never sends some receipts: the oldest ids go first,
    and their receipts are then reported by SMSC id alone, which kaskad's storage still
    matches against the id the send result carried.
    """

    def __init__(self, provider: str, capacity: int) -> None:
        self._provider = provider
        self._capacity = capacity
        self._known: OrderedDict[str, tuple[Tracked, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known)

    def accepted(self, tracked: Tracked, index: int, smsc_id: str) -> None:
        """The SMSC took part ``index`` under ``smsc_id``: its receipts now name the message."""
        tracked.ids[index] = smsc_id
        self._known[_key(smsc_id.strip())] = (tracked, index)
        while len(self._known) > self._capacity:
            self._known.popitem(last=False)

    def forget(self, tracked: Tracked) -> None:
        """Stop naming a message: done, or not sent after all (its resend is a new story)."""
        for smsc_id in tracked.ids:
            if smsc_id is not None:
                self._known.pop(_key(smsc_id.strip()), None)

    def find(self, ids: Sequence[str]) -> tuple[Tracked, int] | None:
        for smsc_id in ids:
            for key in id_keys(smsc_id):
                found = self._known.get(key)
                if found is not None:
                    return found
        return None

    def report(self, receipt: Receipt, now: datetime) -> StatusReport | None:
        """The status report for a receipt; ``None`` for one that names no message at all."""
        at = receipt.done_at or now
        found = self.find(receipt.ids)
        if found is None:
            if not receipt.ids:
                return None
            return StatusReport(
                provider=self._provider,
                status=receipt.status,
                at=at,
                provider_message_id=receipt.ids[0],
                provider_status=receipt.provider_status,
            )
        tracked, index = found
        status = tracked.settle(index, receipt.status)
        parts = len(tracked.ids)
        provider_status = receipt.provider_status
        if parts > 1:
            provider_status = f"{provider_status} part:{index + 1}/{parts}"
        if tracked.complete:
            self.forget(tracked)
        return StatusReport(
            provider=self._provider,
            status=status,
            at=at,
            message_id=tracked.client_ref,
            provider_message_id=tracked.reported_id or tracked.ids[index],
            provider_status=provider_status,
        )
