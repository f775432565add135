"""Turning one SMS into its ``submit_sm`` bodies: addresses, coding, concatenation, validity.

The text's encoding and parts come from ``kaskad.domain.sms``, so the count a template
author sees is the count the SMSC bills. Long messages travel in one of three ways, since
SMSCs differ in what they accept:

- ``udh``: each part carries a concatenation header (IEI 0x00, 8-bit reference) and
  ``esm_class`` 0x40; understood everywhere, the default.
- ``sar``: each part carries the ``sar_msg_ref_num`` / ``sar_total_segments`` /
  ``sar_segment_seqnum`` TLVs and the SMSC builds the header.
- ``payload``: one ``submit_sm`` with the whole text in ``message_payload``; the SMSC cuts it.
"""

from __future__ import annotations

import re
import struct
from datetime import timedelta
from typing import Final, Literal, NamedTuple

from kaskad.adapters.channels.sms.pdus import (
    TLV_MESSAGE_PAYLOAD,
    TLV_SAR_MSG_REF_NUM,
    TLV_SAR_SEGMENT_SEQNUM,
    TLV_SAR_TOTAL_SEGMENTS,
    c_string,
    tlv,
)
from kaskad.domain import sms

LongMessages = Literal["udh", "sar", "payload"]

TON_INTERNATIONAL: Final = 1
TON_NETWORK_SPECIFIC: Final = 3
TON_ALPHANUMERIC: Final = 5
NPI_UNKNOWN: Final = 0
NPI_ISDN: Final = 1
ESM_UDHI: Final = 0x40
SHORT_CODE_DIGITS: Final = 8  # numeric senders up to this long are short codes, not numbers
ALPHANUMERIC_MAX: Final = 11  # what the air interface carries (GSM 03.40 TP-OA)
MAX_VALIDITY: Final = timedelta(days=99, hours=23, minutes=59, seconds=59)

_DIGITS: Final = re.compile(r"[0-9]{1,20}")
_E164: Final = re.compile(r"\+?([0-9]{1,15})")
_UDH: Final = struct.Struct(">BBBBBB")


class InvalidMessage(ValueError):
    """A message no SMSC could take as it is: a resend would fail the same way."""


class Address(NamedTuple):
    ton: int
    npi: int
    value: str


def sender_address(sender: str) -> Address:
    """TON/NPI from the sender's look: ``+380…`` international, ``7111`` short code, ``Bank``
    alphanumeric; a long all-digit sender is an international number written without ``+``.
    """
    value = sender.strip()
    if value.startswith("+") and _DIGITS.fullmatch(value[1:]):
        return Address(TON_INTERNATIONAL, NPI_ISDN, value[1:])
    if _DIGITS.fullmatch(value):
        if len(value) <= SHORT_CODE_DIGITS:
            return Address(TON_NETWORK_SPECIFIC, NPI_UNKNOWN, value)
        return Address(TON_INTERNATIONAL, NPI_ISDN, value)
    if not value or len(value) > ALPHANUMERIC_MAX or not value.isascii():
        raise InvalidMessage(
            f"sender {value!r} is neither a number nor 1-{ALPHANUMERIC_MAX} ASCII characters"
        )
    return Address(TON_ALPHANUMERIC, NPI_UNKNOWN, value)


def destination_address(address: str) -> Address:
    """An E.164 number, sent without its ``+`` as international / ISDN."""
    match = _E164.fullmatch(address.strip())
    if match is None:
        raise InvalidMessage("destination is not an E.164 number")
    return Address(TON_INTERNATIONAL, NPI_ISDN, match.group(1))


def relative_validity(validity: timedelta | None) -> str:
    """SMPP's relative time format ``YYMMDDhhmmss000R`` (years and months left at zero)."""
    if validity is None:
        return ""
    if validity < timedelta(seconds=1) or validity > MAX_VALIDITY:
        raise ValueError(f"validity must be between 1 s and {MAX_VALIDITY}, not {validity}")
    hours, rest = divmod(validity.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"0000{validity.days:02d}{hours:02d}{minutes:02d}{seconds:02d}000R"


class SubmitTemplate:
    """The fixed parts of every ``submit_sm`` of one provider, encoded once."""

    def __init__(
        self,
        *,
        service_type: str,
        validity: timedelta | None,
        registered_delivery: bool,
        long_messages: LongMessages,
    ) -> None:
        self._service_type = c_string(service_type)
        self._validity = c_string(relative_validity(validity))
        self._registered = 1 if registered_delivery else 0
        self._long = long_messages

    def bodies(self, source: Address, destination: Address, text: str, ref: int) -> list[bytes]:
        """One body per ``submit_sm``: one for a short text, one per part for a long one."""
        shape = sms.shape(text)
        head = b"".join(
            (
                self._service_type,
                bytes((source.ton, source.npi)),
                c_string(source.value),
                bytes((destination.ton, destination.npi)),
                c_string(destination.value),
            )
        )
        coding = shape.data_coding
        if shape.segments == 1:
            return [self._body(head, 0, coding, sms.encode(text, shape.encoding))]
        if self._long == "payload":
            payload = tlv(TLV_MESSAGE_PAYLOAD, sms.encode(text, shape.encoding))
            return [self._body(head, 0, coding, b"", payload)]
        parts = sms.split(text, shape.encoding)
        total = len(parts)
        if self._long == "sar":
            return [
                self._body(head, 0, coding, part, _sar(ref, total, number))
                for number, part in enumerate(parts, start=1)
            ]
        return [
            self._body(head, ESM_UDHI, coding, udh(ref, total, number) + part)
            for number, part in enumerate(parts, start=1)
        ]

    def _body(
        self, head: bytes, esm_class: int, coding: int, message: bytes, tlvs: bytes = b""
    ) -> bytes:
        # esm_class, protocol_id, priority_flag, schedule_delivery_time (empty: now)
        fixed = bytes((esm_class, 0, 0, 0))
        # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
        coding_fields = bytes((self._registered, 0, coding, 0, len(message)))
        return b"".join((head, fixed, self._validity, coding_fields, message, tlvs))


def udh(ref: int, total: int, number: int) -> bytes:
    """The concatenation user data header: IEI 0x00 (8-bit reference), 3 octets of data."""
    return _UDH.pack(0x05, 0x00, 0x03, ref & 0xFF, total, number)


def _sar(ref: int, total: int, number: int) -> bytes:
    return b"".join(
        (
            tlv(TLV_SAR_MSG_REF_NUM, (ref & 0xFFFF).to_bytes(2, "big")),
            tlv(TLV_SAR_TOTAL_SEGMENTS, bytes((total,))),
            tlv(TLV_SAR_SEGMENT_SEQNUM, bytes((number,))),
        )
    )
