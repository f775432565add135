"""Mobile-originated SMS: a ``deliver_sm`` without the receipt bit, read into an InboundMessage.

Each part of a concatenated MO arrives as its own ``deliver_sm`` and is stored as its own
inbound message with the concatenation header taken off: reassembling would mean holding
the first part's ``deliver_sm_resp`` until the last part arrives, and an SMSC that keeps one
``deliver_sm`` in flight would never send it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from kaskad.adapters.channels.sms.pdus import TLV_MESSAGE_PAYLOAD, DeliverSm
from kaskad.domain import sms
from kaskad.domain.providers import InboundMessage
from kaskad.domain.vocabulary import Channel

TON_INTERNATIONAL: Final = 1
ESM_UDHI: Final = 0x40

# data_coding → Python codec for the codings that are not GSM-7; everything else that is
# not a GSM-7 variant (8-bit binary, vendor codings) is read as Latin-1 so no byte is lost.
_CODECS: Final = {1: "ascii", 3: "latin-1", 8: "utf-16-be"}


def read_inbound(deliver: DeliverSm, provider: str, now: datetime) -> InboundMessage:
    """An MO as kaskad stores it: international numbers in E.164 form, text decoded."""
    return InboundMessage(
        provider=provider,
        channel=Channel.SMS,
        sender=_number(deliver.source, deliver.source_ton),
        recipient=_number(deliver.destination, deliver.destination_ton),
        text=mo_text(deliver),
        at=now,
    )


def mo_text(deliver: DeliverSm) -> str:
    payload = deliver.short_message or deliver.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
    if deliver.esm_class & ESM_UDHI and payload:
        payload = payload[1 + payload[0] :]
    return decode_text(payload, deliver.data_coding)


def decode_text(payload: bytes, data_coding: int) -> str:
    """Text by SMPP 3.4 ``data_coding``: 0 is GSM-7 (the SMSC default alphabet kaskad
    assumes), 0xF0-0xFF are GSM message classes whose bit 2 chooses 8-bit over GSM-7.
    """
    if data_coding == 0 or (data_coding & 0xF0 == 0xF0 and not data_coding & 0x04):
        return sms.decode(payload, sms.GSM7)
    codec = _CODECS.get(data_coding, "latin-1")
    return payload.decode(codec, errors="replace")


def _number(value: str, ton: int) -> str:
    return f"+{value}" if ton == TON_INTERNATIONAL and value[:1] != "+" else value
