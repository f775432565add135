"""SMPP pieces without a socket: receipts, status tables, addresses, concatenation, framing.

PDUs are built and read back with the ``smpp34`` codec, so kaskad's codec is checked against
an implementation that is not its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import smpp34

from kaskad.adapters.channels.sms import pdus
from kaskad.adapters.channels.sms.inbound import decode_text, read_inbound
from kaskad.adapters.channels.sms.receipts import (
    MESSAGE_STATES,
    SMPP_RECEIPT_STATUS,
    Correlator,
    Receipt,
    Tracked,
    id_keys,
    is_receipt,
    parse_text_receipt,
    read_receipt,
    receipt_time,
)
from kaskad.adapters.channels.sms.smpp import SMPP_ERRORS, SmppConfig
from kaskad.adapters.channels.sms.submit import (
    Address,
    InvalidMessage,
    SubmitTemplate,
    destination_address,
    relative_validity,
    sender_address,
    udh,
)
from kaskad.domain.providers import SendOutcome
from kaskad.domain.vocabulary import Channel, MessageStatus

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
APPENDIX_B = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2503011158 done date:2503011159 "
    "stat:DELIVRD err:000 Text:Your code is 1234"
)


def deliver(
    text: bytes = b"",
    *,
    esm_class: int = 0x04,
    tlvs: list[smpp34.Tlv] | None = None,
    data_coding: int = 0,
    source: str = "380501234567",
    source_ton: int = 1,
) -> pdus.DeliverSm:
    """A deliver_sm as an SMSC would put it on the wire, read by kaskad's codec."""
    wire = smpp34.DeliverSm(
        source_addr=source,
        destination_addr="7111",
        short_message=text,
        source_addr_ton=source_ton,
        source_addr_npi=1,
        dest_addr_ton=3,
        esm_class=esm_class,
        data_coding=data_coding,
        tlvs=tlvs or [],
        sequence_number=9,
    ).encode()
    frames = pdus.take_frames(bytearray(wire))
    assert [(f.command_id, f.sequence) for f in frames] == [(pdus.DELIVER_SM, 9)]
    return pdus.parse_deliver_sm(frames[0].body)


# -- text receipts -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            APPENDIX_B,
            {
                "id": "0123456789",
                "sub": "001",
                "dlvrd": "001",
                "submit date": "2503011158",
                "done date": "2503011159",
                "stat": "DELIVRD",
                "err": "000",
                "text": "Your code is 1234",
            },
        ),
        ("id:7F3A stat:UNDELIV err:012", {"id": "7F3A", "stat": "UNDELIV", "err": "012"}),
        (
            "ID:abc SUB:1 DLVRD:0 SUBMIT DATE:250301115812 DONE DATE:250301115901 STAT:EXPIRED",
            {
                "id": "abc",
                "sub": "1",
                "dlvrd": "0",
                "submit date": "250301115812",
                "done date": "250301115901",
                "stat": "EXPIRED",
            },
        ),
        (
            "id:42 stat:DELIVRD text:id:99 stat:UNDELIV",
            {"id": "42", "stat": "DELIVRD", "text": "id:99 stat:UNDELIV"},
        ),
        ("", {}),
    ],
)
def test_text_receipt_fields(text: str, expected: dict[str, str]) -> None:
    assert parse_text_receipt(text) == expected


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2503011159", UTC, datetime(2025, 3, 1, 11, 59, tzinfo=UTC)),
        ("250301115942", UTC, datetime(2025, 3, 1, 11, 59, 42, tzinfo=UTC)),
        ("2507011200", ZoneInfo("Europe/Kyiv"), datetime(2025, 7, 1, 9, 0, tzinfo=UTC)),
        ("2502301200", UTC, None),
        ("25030111", UTC, None),
        ("not a date", UTC, None),
        (None, UTC, None),
    ],
)
def test_receipt_dates_become_utc(value: str | None, zone: ZoneInfo, expected: datetime) -> None:
    assert receipt_time(value, zone) == expected


# -- status tables -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("DELIVRD", MessageStatus.DELIVERED),
        ("ACCEPTD", MessageStatus.SENT),
        ("ENROUTE", MessageStatus.SENT),
        ("UNDELIV", MessageStatus.UNDELIVERABLE),
        ("EXPIRED", MessageStatus.EXPIRED),
        ("REJECTD", MessageStatus.REJECTED),
        ("DELETED", MessageStatus.FAILED),
        ("UNKNOWN", MessageStatus.FAILED),
    ],
)
def test_receipt_status_table(stat: str, status: MessageStatus) -> None:
    assert SMPP_RECEIPT_STATUS[stat] is status


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (1, MessageStatus.SENT),
        (2, MessageStatus.DELIVERED),
        (3, MessageStatus.EXPIRED),
        (4, MessageStatus.FAILED),
        (5, MessageStatus.UNDELIVERABLE),
        (6, MessageStatus.SENT),
        (7, MessageStatus.FAILED),
        (8, MessageStatus.REJECTED),
    ],
)
def test_message_state_tlv_goes_through_the_same_table(state: int, status: MessageStatus) -> None:
    assert SMPP_RECEIPT_STATUS[MESSAGE_STATES[state]] is status
    receipt = read_receipt(deliver(tlvs=[smpp34.Tlv(pdus.TLV_MESSAGE_STATE, bytes([state]))]), UTC)
    assert receipt.status is status


@pytest.mark.parametrize(
    ("status", "outcome", "final"),
    [
        (0x58, SendOutcome.RETRY, MessageStatus.FAILED),
        (0x14, SendOutcome.RETRY, MessageStatus.FAILED),
        (0x08, SendOutcome.RETRY, MessageStatus.FAILED),
        (0x0B, SendOutcome.FAILED, MessageStatus.REJECTED),
        (0x0A, SendOutcome.FAILED, MessageStatus.REJECTED),
        (0x45, SendOutcome.FAILED, MessageStatus.FAILED),
        (0x66, SendOutcome.FAILED, MessageStatus.REJECTED),
    ],
)
def test_command_status_table(status: int, outcome: SendOutcome, final: MessageStatus) -> None:
    assert SMPP_ERRORS[status][:2] == (outcome, final)
    assert SMPP_ERRORS[status][2].startswith("ESME_R")


# -- reading receipts ----------------------------------------------------------------------
def test_tlvs_win_over_the_text() -> None:
    receipt = read_receipt(
        deliver(
            b"id:999 stat:DELIVRD err:000 done date:2503011159",
            tlvs=[
                smpp34.Tlv(pdus.TLV_RECEIPTED_MESSAGE_ID, b"3E7\x00"),
                smpp34.Tlv(pdus.TLV_MESSAGE_STATE, bytes([5])),
            ],
        ),
        UTC,
    )
    assert receipt.ids == ("3E7", "999")
    assert (receipt.stat, receipt.status) == ("UNDELIV", MessageStatus.UNDELIVERABLE)
    assert receipt.done_at == datetime(2025, 3, 1, 11, 59, tzinfo=UTC)


def test_text_only_receipt() -> None:
    receipt = read_receipt(deliver(APPENDIX_B.encode()), UTC)
    assert receipt == Receipt(
        ids=("0123456789",),
        stat="DELIVRD",
        status=MessageStatus.DELIVERED,
        error=None,
        done_at=datetime(2025, 3, 1, 11, 59, tzinfo=UTC),
    )
    assert receipt.provider_status == "DELIVRD"


def test_receipt_in_message_payload_with_an_error_code() -> None:
    text = b"id:AB12 sub:001 dlvrd:000 stat:UNDELIV err:012 text:"
    receipt = read_receipt(deliver(tlvs=[smpp34.Tlv(pdus.TLV_MESSAGE_PAYLOAD, text)]), UTC)
    assert (receipt.ids, receipt.status) == (("AB12",), MessageStatus.UNDELIVERABLE)
    assert receipt.provider_status == "UNDELIV err:012"


def test_network_error_code_when_the_text_has_none() -> None:
    receipt = read_receipt(
        deliver(
            tlvs=[
                smpp34.Tlv(pdus.TLV_RECEIPTED_MESSAGE_ID, b"77\x00"),
                smpp34.Tlv(pdus.TLV_MESSAGE_STATE, bytes([5])),
                smpp34.Tlv(pdus.TLV_NETWORK_ERROR_CODE, bytes([3, 0, 27])),
            ]
        ),
        UTC,
    )
    assert receipt.provider_status == "UNDELIV err:3:27"


@pytest.mark.parametrize(
    ("esm_class", "receipt"),
    [(0x00, False), (0x04, True), (0x20, True), (0x08, False), (0x10, False), (0x44, True)],
)
def test_receipt_bit(esm_class: int, receipt: bool) -> None:
    assert is_receipt(esm_class) is receipt


# -- ids -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ("1A2B", ("1a2b", "6699")),
        ("0001A2B", ("1a2b", "6699")),
        ("6699", ("6699", "1a2b", "26265")),
        ("msg-77", ("msg-77",)),
        ("0", ("0",)),
    ],
)
def test_id_keys(value: str, keys: tuple[str, ...]) -> None:
    assert id_keys(value) == keys


def text_receipt(smsc_id: str, stat: str = "DELIVRD") -> Receipt:
    return read_receipt(deliver(f"id:{smsc_id} stat:{stat} err:000".encode()), UTC)


@pytest.mark.parametrize(
    ("accepted_as", "receipt_says"),
    [
        ("1A2B0001", "1A2B0001"),  # the same
        ("1A2B0001", "1a2b0001"),  # other case
        ("1A2B0001", "001A2B0001"),  # zero padded
        ("1A2B0001", str(0x1A2B0001)),  # decimal in the text, hex in the response
        ("439025665", "1A2B0001"),  # and the other way round
    ],
)
def test_receipts_find_their_message_whatever_the_id_spelling(
    accepted_as: str, receipt_says: str
) -> None:
    correlator = Correlator("smpp", capacity=10)
    tracked = Tracked("msg-1", 1)
    correlator.accepted(tracked, 0, accepted_as)
    report = correlator.report(text_receipt(receipt_says), NOW)
    assert report is not None
    assert (report.message_id, report.provider_message_id) == ("msg-1", accepted_as)
    assert report.status is MessageStatus.DELIVERED
    assert len(correlator) == 0  # final: forgotten


def test_unknown_receipt_is_reported_by_its_smsc_id() -> None:
    correlator = Correlator("smpp", capacity=10)
    report = correlator.report(text_receipt("FFEE"), NOW)
    assert report is not None
    assert (report.message_id, report.provider_message_id, report.at) == (None, "FFEE", NOW)


def test_receipt_without_any_id_names_nothing() -> None:
    correlator = Correlator("smpp", capacity=10)
    assert correlator.report(read_receipt(deliver(b"stat:DELIVRD"), UTC), NOW) is None


def test_intermediate_status_keeps_the_message_known() -> None:
    correlator = Correlator("smpp", capacity=10)
    correlator.accepted(Tracked("msg-1", 1), 0, "A1")
    first = correlator.report(text_receipt("A1", "ENROUTE"), NOW)
    last = correlator.report(text_receipt("A1", "DELIVRD"), NOW)
    assert first is not None
    assert last is not None
    assert (first.status, first.message_id) == (MessageStatus.SENT, "msg-1")
    assert (last.status, last.message_id) == (MessageStatus.DELIVERED, "msg-1")


def test_oldest_ids_go_first_when_memory_is_full() -> None:
    correlator = Correlator("smpp", capacity=2)
    for number in range(3):
        correlator.accepted(Tracked(f"msg-{number}", 1), 0, f"ID{number}")
    assert correlator.find(["ID0"]) is None
    assert correlator.find(["ID2"]) is not None
    assert len(correlator) == 2


@pytest.mark.parametrize(
    ("stats", "statuses"),
    [
        (("DELIVRD", "DELIVRD", "DELIVRD"), ("sent", "sent", "delivered")),
        (("DELIVRD", "UNDELIV", "DELIVRD"), ("sent", "undeliverable", "undeliverable")),
        (("EXPIRED", "DELIVRD", "DELIVRD"), ("expired", "expired", "expired")),
        (("ENROUTE", "DELIVRD", "DELIVRD"), ("sent", "sent", "sent")),
    ],
)
def test_parts_report_the_whole_message(
    stats: tuple[str, str, str], statuses: tuple[str, str, str]
) -> None:
    correlator = Correlator("smpp", capacity=10)
    tracked = Tracked("msg-1", 3)
    for index, smsc_id in enumerate(("P1", "P2", "P3")):
        correlator.accepted(tracked, index, smsc_id)
    reports = [
        correlator.report(text_receipt(smsc_id, stat), NOW)
        for smsc_id, stat in zip(("P1", "P2", "P3"), stats, strict=True)
    ]
    assert all(r is not None and r.message_id == "msg-1" for r in reports)
    assert all(r is not None and r.provider_message_id == "P3" for r in reports)
    assert tuple(r.status.value for r in reports if r is not None) == statuses
    assert reports[1] is not None
    assert reports[1].provider_status == f"{stats[1]} part:2/3"


def test_forgotten_message_is_no_longer_named() -> None:
    correlator = Correlator("smpp", capacity=10)
    tracked = Tracked("msg-1", 2)
    correlator.accepted(tracked, 0, "P1")
    correlator.forget(tracked)
    report = correlator.report(text_receipt("P1"), NOW)
    assert report is not None
    assert report.message_id is None


# -- addresses, validity, concatenation -----------------------------------------------------
@pytest.mark.parametrize(
    ("sender", "address"),
    [
        ("MyBank", Address(5, 0, "MyBank")),
        ("Bank 24", Address(5, 0, "Bank 24")),
        ("7111", Address(3, 0, "7111")),
        ("12345678", Address(3, 0, "12345678")),
        ("380441234567", Address(1, 1, "380441234567")),
        ("+380441234567", Address(1, 1, "380441234567")),
    ],
)
def test_sender_ton_npi_chosen_from_its_look(sender: str, address: Address) -> None:
    assert sender_address(sender) == address


@pytest.mark.parametrize("sender", ["", "A very long sender", "Банк"])
def test_impossible_senders_are_refused(sender: str) -> None:
    with pytest.raises(InvalidMessage):
        sender_address(sender)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("+380501234567", Address(1, 1, "380501234567")),
        ("380501234567", Address(1, 1, "380501234567")),
    ],
)
def test_destination_is_international(address: str, expected: Address) -> None:
    assert destination_address(address) == expected


@pytest.mark.parametrize("address", ["", "+", "anna@bank.ua", "+38 050 123", "+1234567890123456"])
def test_destination_that_is_no_number(address: str) -> None:
    with pytest.raises(InvalidMessage):
        destination_address(address)


@pytest.mark.parametrize(
    ("validity", "text"),
    [
        (None, ""),
        (timedelta(hours=1), "000000010000000R"),
        (timedelta(days=2, hours=3, minutes=4, seconds=5), "000002030405000R"),
        (timedelta(days=99, hours=23, minutes=59, seconds=59), "000099235959000R"),
    ],
)
def test_relative_validity(validity: timedelta | None, text: str) -> None:
    assert relative_validity(validity) == text


@pytest.mark.parametrize(
    "validity",
    [timedelta(0), timedelta(milliseconds=500), timedelta(days=100), timedelta(seconds=-1)],
)
def test_validity_smpp_cannot_express(validity: timedelta) -> None:
    with pytest.raises(ValueError, match="validity"):
        relative_validity(validity)


def test_udh_is_the_8_bit_reference_element() -> None:
    assert udh(0x1F3, 3, 2) == bytes([0x05, 0x00, 0x03, 0xF3, 0x03, 0x02])


def template(long_messages: str) -> SubmitTemplate:
    return SubmitTemplate(
        service_type="",
        validity=timedelta(hours=6),
        registered_delivery=True,
        long_messages=long_messages,  # type: ignore[arg-type]
    )


def decoded(body: bytes) -> smpp34.SubmitSm:
    pdu = smpp34.decode(pdus.pdu(pdus.SUBMIT_SM, 1, body))
    assert isinstance(pdu, smpp34.SubmitSm)
    return pdu


SOURCE, DESTINATION = Address(5, 0, "MyBank"), Address(1, 1, "380501234567")


def test_short_message_body() -> None:
    (body,) = template("udh").bodies(SOURCE, DESTINATION, "Код 1234", ref=7)
    pdu = decoded(body)
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == ("MyBank", 5, 0)
    assert (pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi) == ("380501234567", 1, 1)
    assert (pdu.esm_class, pdu.data_coding, pdu.registered_delivery) == (0, 8, 1)
    assert pdu.validity_period == "000000060000000R"
    assert pdu.short_message.decode("utf-16-be") == "Код 1234"
    assert pdu.tlvs == []


def test_udh_parts() -> None:
    bodies = template("udh").bodies(SOURCE, DESTINATION, "a" * 200, ref=0x107)
    parts = [decoded(body) for body in bodies]
    assert [p.esm_class for p in parts] == [0x40, 0x40]
    assert [p.short_message[:6] for p in parts] == [udh(7, 2, 1), udh(7, 2, 2)]
    assert b"".join(p.short_message[6:] for p in parts) == b"a" * 200


def test_sar_parts() -> None:
    bodies = template("sar").bodies(SOURCE, DESTINATION, "€" * 100, ref=0x1234)
    parts = [decoded(body) for body in bodies]
    assert [p.esm_class for p in parts] == [0, 0]
    tlvs = [{t.tag: t.value for t in p.tlvs} for p in parts]
    assert [t[pdus.TLV_SAR_MSG_REF_NUM] for t in tlvs] == [b"\x12\x34"] * 2
    assert [t[pdus.TLV_SAR_TOTAL_SEGMENTS] for t in tlvs] == [b"\x02"] * 2
    assert [t[pdus.TLV_SAR_SEGMENT_SEQNUM] for t in tlvs] == [b"\x01", b"\x02"]
    assert b"".join(p.short_message for p in parts) == b"\x1b\x65" * 100


def test_payload_message() -> None:
    (body,) = template("payload").bodies(SOURCE, DESTINATION, "ж" * 100, ref=1)
    pdu = decoded(body)
    assert (pdu.esm_class, pdu.data_coding, pdu.short_message) == (0, 8, b"")
    assert {t.tag: t.value for t in pdu.tlvs}[pdus.TLV_MESSAGE_PAYLOAD] == ("ж" * 100).encode(
        "utf-16-be"
    )


# -- framing and MO -------------------------------------------------------------------------
def test_frames_wait_for_their_last_byte() -> None:
    wire = pdus.pdu(pdus.ENQUIRE_LINK, 5) + pdus.pdu(pdus.SUBMIT_SM | pdus.RESPONSE, 6, b"ID\x00")
    buffer = bytearray(wire[:-1])
    assert [f.sequence for f in pdus.take_frames(buffer)] == [5]
    buffer += wire[-1:]
    (frame,) = pdus.take_frames(buffer)
    assert (frame.sequence, pdus.message_id_of(frame.body)) == (6, "ID")
    assert buffer == bytearray()


def test_impossible_length_breaks_the_framing() -> None:
    with pytest.raises(pdus.PduError):
        pdus.take_frames(bytearray(b"\x00\x00\x00\x04" + bytes(12)))


@pytest.mark.parametrize(
    ("payload", "coding", "text"),
    [
        (b"Hello \x1b\x65", 0, "Hello €"),
        ("Привіт".encode("utf-16-be"), 8, "Привіт"),
        (b"plain", 1, "plain"),
        (b"caf\xe9", 3, "café"),
        (b"Hi \x09", 0xF0, "Hi Ç"),
    ],
)
def test_mo_text_by_data_coding(payload: bytes, coding: int, text: str) -> None:
    assert decode_text(payload, coding) == text


def test_mo_becomes_an_inbound_message() -> None:
    message = read_inbound(
        deliver(udh(3, 2, 1) + "Так".encode("utf-16-be"), esm_class=0x40, data_coding=8),
        "smpp",
        NOW,
    )
    assert (message.sender, message.recipient, message.text) == ("+380501234567", "7111", "Так")
    assert (message.channel, message.provider, message.at) == (Channel.SMS, "smpp", NOW)


def test_national_sender_keeps_its_form() -> None:
    national = deliver(b"STOP", esm_class=0, source="0501234567", source_ton=2)
    message = read_inbound(national, "smpp", NOW)
    assert message.sender == "0501234567"


@pytest.mark.parametrize(
    "overrides",
    [
        {"window": 0},
        {"binds": 0},
        {"password": "too-long-password"},
        {"bind_mode": "receiver"},
        {"long_messages": "split"},
        {"validity": timedelta(days=120)},
        {"reconnect_min": 5.0, "reconnect_max": 1.0},
        {"source_addr": "Far too long a sender"},
    ],
)
def test_config_refuses_what_cannot_work(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"SMPP|validity|sender"):
        SmppConfig(**overrides)  # type: ignore[arg-type]


def test_config_never_shows_the_password() -> None:
    assert "s3cret" not in repr(SmppConfig(system_id="kaskad", password="s3cret"))
