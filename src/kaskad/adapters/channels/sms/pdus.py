"""The SMPP 3.4 PDUs kaskad speaks as an ESME, encoded and decoded with ``struct``.

Only what an ESME sending MT and receiving receipts and MO needs: binds, ``submit_sm``,
``deliver_sm``, ``enquire_link``, ``unbind`` and ``generic_nack``. Command ids and TLV tags
are plain ints rather than enums because they are compared once per PDU on the hot path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

HEADER: Final = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence
HEADER_SIZE: Final = HEADER.size
# A PDU longer than this is garbage on the wire, not a message: message_payload tops out at
# 64 KiB, so anything beyond a little more than that means we lost the framing.
MAX_PDU: Final = 70_000
INTERFACE_VERSION: Final = 0x34
MAX_SEQUENCE: Final = 0x7FFFFFFF

GENERIC_NACK: Final = 0x80000000
BIND_RECEIVER: Final = 0x00000001
BIND_TRANSMITTER: Final = 0x00000002
SUBMIT_SM: Final = 0x00000004
DELIVER_SM: Final = 0x00000005
UNBIND: Final = 0x00000006
BIND_TRANSCEIVER: Final = 0x00000009
ENQUIRE_LINK: Final = 0x00000015
RESPONSE: Final = 0x80000000  # the bit that turns a command id into its response's id

ESME_ROK: Final = 0x00
ESME_RINVCMDLEN: Final = 0x02
ESME_RINVCMDID: Final = 0x03
ESME_RX_T_APPN: Final = 0x64  # "temporary application error": the SMSC delivers again later

TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E
TLV_SAR_MSG_REF_NUM: Final = 0x020C
TLV_SAR_TOTAL_SEGMENTS: Final = 0x020E
TLV_SAR_SEGMENT_SEQNUM: Final = 0x020F
TLV_NETWORK_ERROR_CODE: Final = 0x0423
TLV_MESSAGE_PAYLOAD: Final = 0x0424
TLV_MESSAGE_STATE: Final = 0x0427

_TLV_HEAD: Final = struct.Struct(">HH")
_DELIVER_FIXED: Final = struct.Struct(">BBB")  # esm_class, protocol_id, priority_flag
_DELIVER_CODING: Final = struct.Struct(">BBBBB")  # registered .. sm_length


class PduError(ValueError):
    """Bytes that are not the PDU they claim to be: the session cannot trust its framing."""


def pdu(command_id: int, sequence: int, body: bytes = b"", status: int = ESME_ROK) -> bytes:
    return HEADER.pack(HEADER_SIZE + len(body), command_id, status, sequence) + body


def c_string(value: str) -> bytes:
    """A C-octet string: SMPP text fields are ASCII (latin-1 keeps any byte), NUL-ended."""
    return value.encode("latin-1") + b"\x00"


def tlv(tag: int, value: bytes) -> bytes:
    return _TLV_HEAD.pack(tag, len(value)) + value


def bind_body(
    system_id: str,
    password: str,
    system_type: str,
    *,
    addr_ton: int = 0,
    addr_npi: int = 0,
    address_range: str = "",
) -> bytes:
    return b"".join(
        (
            c_string(system_id),
            c_string(password),
            c_string(system_type),
            bytes((INTERFACE_VERSION, addr_ton, addr_npi)),
            c_string(address_range),
        )
    )


def read_c_string(body: bytes, offset: int) -> tuple[str, int]:
    """The string at ``offset`` and where the next field starts."""
    end = body.find(b"\x00", offset)
    if end < 0:
        raise PduError("C-octet string without its NUL")
    return body[offset:end].decode("latin-1"), end + 1


def message_id_of(body: bytes) -> str:
    """The ``message_id`` a ``submit_sm_resp`` carries (empty when the SMSC sent none)."""
    end = body.find(b"\x00")
    return (body if end < 0 else body[:end]).decode("latin-1")


def read_tlvs(body: bytes, offset: int) -> dict[int, bytes]:
    """Optional parameters from ``offset`` to the end; a truncated one is a framing error."""
    found: dict[int, bytes] = {}
    size = len(body)
    while offset + 4 <= size:
        tag, length = _TLV_HEAD.unpack_from(body, offset)
        offset += 4
        if offset + length > size:
            raise PduError(f"TLV 0x{tag:04x} runs past the PDU")
        found[tag] = body[offset : offset + length]
        offset += length
    return found


@dataclass(frozen=True, slots=True)
class DeliverSm:
    """The fields of a ``deliver_sm`` kaskad reads: addresses, coding, text and TLVs."""

    source_ton: int
    source: str
    destination_ton: int
    destination: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes]


def parse_deliver_sm(body: bytes) -> DeliverSm:
    try:
        _, at = read_c_string(body, 0)  # service_type
        source_ton = body[at]
        source, at = read_c_string(body, at + 2)
        destination_ton = body[at]
        destination, at = read_c_string(body, at + 2)
        esm_class, _, _ = _DELIVER_FIXED.unpack_from(body, at)
        _, at = read_c_string(body, at + 3)  # schedule_delivery_time
        _, at = read_c_string(body, at)  # validity_period
        _, _, data_coding, _, sm_length = _DELIVER_CODING.unpack_from(body, at)
        at += 5
        short_message = body[at : at + sm_length]
        if len(short_message) != sm_length:
            raise PduError("short_message runs past the PDU")
        tlvs = read_tlvs(body, at + sm_length)
    except (IndexError, struct.error) as exc:
        raise PduError(f"deliver_sm too short: {exc}") from exc
    return DeliverSm(
        source_ton=source_ton,
        source=source,
        destination_ton=destination_ton,
        destination=destination,
        esm_class=esm_class,
        data_coding=data_coding,
        short_message=short_message,
        tlvs=tlvs,
    )


class Frame(NamedTuple):
    """One PDU off the wire; a tuple because thousands are made a second."""

    command_id: int
    status: int
    sequence: int
    body: bytes


def take_frames(buffer: bytearray) -> list[Frame]:
    """Cut every complete PDU off the front of ``buffer``; a partial one stays for later."""
    frames: list[Frame] = []
    at, size = 0, len(buffer)
    while size - at >= HEADER_SIZE:
        length, command_id, status, sequence = HEADER.unpack_from(buffer, at)
        if length < HEADER_SIZE or length > MAX_PDU:
            raise PduError(f"impossible command_length {length}")
        if size - at < length:
            break
        body = bytes(buffer[at + HEADER_SIZE : at + length])
        frames.append(Frame(command_id, status, sequence, body))
        at += length
    if at:
        del buffer[:at]
    return frames
