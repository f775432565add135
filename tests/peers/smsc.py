"""A real SMSC for kaskad's SMPP tests and benchmark: its own process, its own sockets.

    python -m tests.peers.smsc --port 0 --control-port 0 [--system-id kaskad] [--password secret]

prints one JSON line once it listens, ``{"smpp_port": …, "control_port": …, "pid": …}``,
and serves SMPP 3.4 on 127.0.0.1 until SIGTERM. ``submit_sm`` is decoded and
``deliver_sm`` encoded with the ``smpp34`` package's codec, not kaskad's, so a
misreading of the specification on kaskad's side shows up here instead of being mirrored.
Concatenated messages (UDH, SAR TLVs or message_payload) are put back together and their
text decoded with this module's own GSM 03.38 table, for the same reason.

What it does as an SMSC: checks system_id/password on bind (ESME_RINVPASWD otherwise),
answers ``submit_sm`` with hexadecimal message ids of its own, sends a delivery receipt
for each part that asked for one (TLVs and appendix B text), answers ``enquire_link``,
``unbind`` and ``deliver_sm_resp``, and records everything.

Control: a line-based JSON protocol on the control port. Send one object per line, read
one object per line back: ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``.

- ``{"cmd": "configure", <option>: <value>, ...}`` sets behaviour; options and defaults:
  ``receipts`` (true), ``receipt_delay`` (0 s), ``receipt_form`` ("both" | "tlv" | "text"),
  ``text_id`` ("same" | "decimal": the text names the id in decimal, the TLV in hex, as
  some SMSCs do), ``early_receipts`` (false: when true the receipt is written *before*
  the submit_sm_resp), ``submit_delay`` (0 s before answering a submit_sm, so a client's
  window fills up), ``inactivity`` (0 = off: close a session nothing was read from for
  that many seconds), ``stat`` ("DELIVRD") and ``err`` ("000").
- ``{"cmd": "route", "destination": "380…", "command_status": 11, "stat": "UNDELIV",
  "err": "012", "delay": 0.2}``: per destination (digits, no "+"), each key optional:
  refuse its submits with that command_status, or give its receipts that stat/err/delay.
- ``{"cmd": "throttle", "count": N}``: answer the next N submit_sm with ESME_RTHROTTLED.
- ``{"cmd": "drop", "after": N}``: answer the next N submit_sm, then close the connection
  when the one after them arrives, without answering it (nor anything read with it).
- ``{"cmd": "mo", "source": "380…", "source_ton": 1, "destination": "7111",
  "text": "…", "data_coding": 8}``: send a mobile-originated deliver_sm to a bound session
  that can receive; answers with its ``sequence``.
- ``{"cmd": "send", "command_id": 21, "body": "<hex>"}``: send a request of any kind
  (enquire_link, unbind, something the ESME does not know) to every bound session;
  ``{"cmd": "raw", "hex": "…"}``: write bytes as they are, framing or not.
- ``{"cmd": "arrivals", "destinations": [...]}``: when each destination's first submit_sm
  was read off the socket (``time.time()``), for latency measurements.
- ``{"cmd": "state"}``: everything recorded (below); ``{"cmd": "summary"}``: the same
  without the per-PDU lists (``deliver_resp_statuses`` counts the deliver_sm_resp by
  command_status instead), small enough to poll; ``{"cmd": "reset"}``: forget the records
  (behaviour stays).

Records: ``binds`` (system_id, mode, accepted), ``submits`` (one per submit_sm PDU: session,
destination, TONs/NPIs, esm_class, data_coding, registered_delivery, validity, tlv tags,
status, message_id), ``messages`` (one per complete accepted message: destination, source,
text, parts, method, data_coding, message_ids, broken when a part does not decode on its
own, e.g. half a surrogate pair), ``max_inflight`` (most submit_sm read and not yet
answered on one session), ``enquire_links``, ``unbinds``, ``drops`` (sessions this SMSC
closed), ``receipts_sent``, ``responses`` ((command_id, command_status) of every other
response the ESME sent: enquire_link_resp, unbind_resp, generic_nack), ``deliver_resps``
(sequence → command_status of each deliver_sm_resp), ``unanswered_delivers``.

From Python: ``start_smsc(**behaviour)`` starts the process, waits for its ready line,
yields an ``SmscPeer`` (ports, ``call()`` and async ``ask()`` for control commands) and
stops exactly that pid at the end; ``running_smsc()`` is the same for async code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import smpp34

ROOT = Path(__file__).resolve().parents[2]
HEADER = struct.Struct(">IIII")

BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x01, 0x02, 0x09
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x04, 0x05, 0x06, 0x15
GENERIC_NACK, RESP = 0x80000000, 0x80000000
BIND_MODES = {
    BIND_RECEIVER: "receiver",
    BIND_TRANSMITTER: "transmitter",
    BIND_TRANSCEIVER: "transceiver",
}
ESME_RINVPASWD, ESME_RTHROTTLED, ESME_RINVBNDSTS, ESME_RINVCMDID = 0x0E, 0x58, 0x04, 0x03
TLV_RECEIPTED_MESSAGE_ID, TLV_MESSAGE_STATE, TLV_MESSAGE_PAYLOAD = 0x001E, 0x0427, 0x0424
TLV_SAR_REF, TLV_SAR_TOTAL, TLV_SAR_SEQ = 0x020C, 0x020E, 0x020F
STATES = {
    "ENROUTE": 1,
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}

# GSM 03.38, written out here again on purpose: the peer must not share kaskad's table.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_ESCAPE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
GSM_ENCODE = {ch: bytes([i]) for i, ch in enumerate(GSM_BASIC) if i != 0x1B} | {
    ch: bytes([0x1B, code]) for code, ch in GSM_ESCAPE.items()
}


def gsm_decode(septets: bytes) -> str:
    """Unpacked GSM-7; raises ValueError on a dangling escape (a split pair)."""
    out, escaped = [], False
    for septet in septets:
        if septet > 0x7F:
            raise ValueError(f"septet 0x{septet:02x} has its eighth bit set")
        if escaped:
            if septet not in GSM_ESCAPE:
                raise ValueError(f"escape followed by 0x{septet:02x}")
            out.append(GSM_ESCAPE[septet])
            escaped = False
        elif septet == 0x1B:
            escaped = True
        else:
            out.append(GSM_BASIC[septet])
    if escaped:
        raise ValueError("message part ends in the middle of an escape pair")
    return "".join(out)


def decode_part(payload: bytes, data_coding: int) -> str:
    if data_coding == 8:
        return payload.decode("utf-16-be")  # strict: half a surrogate pair fails
    if data_coding == 0:
        return gsm_decode(payload)
    return payload.decode("latin-1")


def c_string(value: str) -> bytes:
    return value.encode("latin-1") + b"\x00"


def read_c_string(body: bytes, at: int) -> tuple[str, int]:
    end = body.index(b"\x00", at)
    return body[at:end].decode("latin-1"), end + 1


@dataclass
class Behaviour:
    receipts: bool = True
    receipt_delay: float = 0.0
    receipt_form: str = "both"
    text_id: str = "same"
    early_receipts: bool = False
    submit_delay: float = 0.0
    inactivity: float = 0.0
    stat: str = "DELIVRD"
    err: str = "000"
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    throttle: int = 0
    drop_after: int | None = None


@dataclass
class Records:
    binds: list[dict[str, Any]] = field(default_factory=list)
    submits: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    max_inflight: int = 0
    enquire_links: int = 0
    unbinds: int = 0
    drops: int = 0
    receipts_sent: int = 0
    deliver_resps: dict[int, int] = field(default_factory=dict)
    unanswered_delivers: int = 0
    responses: list[tuple[int, int]] = field(default_factory=list)


class Smsc:
    """The SMSC's state: behaviour, records, sessions, ids and half-assembled messages."""

    def __init__(self, system_id: str, password: str) -> None:
        self.system_id = system_id
        self.password = password
        self.behaviour = Behaviour()
        self.records = Records()
        self.sessions: list[Session] = []
        self._next_id = 0x1A2B0000
        self._deliver_sequence = 0
        self._assembling: dict[tuple[Any, ...], dict[int, tuple[bytes, str]]] = {}

    def new_message_id(self) -> str:
        self._next_id += 1
        return format(self._next_id, "08X")

    def next_deliver_sequence(self) -> int:
        self._deliver_sequence += 1
        return self._deliver_sequence

    # -- messages ------------------------------------------------------------------------
    def assemble(self, session: Session, submit: Any, message_id: str) -> None:
        """Record a complete message once all its accepted parts are in."""
        tlvs = {t.tag: t.value for t in submit.tlvs}
        sm = submit.short_message
        key_base = (session.ident, submit.source_addr, submit.destination_addr)
        if submit.esm_class & 0x40:
            udhl = sm[0]
            udh, payload = sm[1 : 1 + udhl], sm[1 + udhl :]
            ref, total, number = parse_concat_ie(udh)
            self._part((*key_base, "udh", ref), total, number, payload, message_id, submit, "udh")
        elif TLV_SAR_REF in tlvs:
            ref = int.from_bytes(tlvs[TLV_SAR_REF], "big")
            total, number = tlvs[TLV_SAR_TOTAL][0], tlvs[TLV_SAR_SEQ][0]
            self._part((*key_base, "sar", ref), total, number, sm, message_id, submit, "sar")
        elif TLV_MESSAGE_PAYLOAD in tlvs and not sm:
            self._complete(submit, [(tlvs[TLV_MESSAGE_PAYLOAD], message_id)], "payload")
        else:
            self._complete(submit, [(sm, message_id)], "single")

    def _part(
        self,
        key: tuple[Any, ...],
        total: int,
        number: int,
        payload: bytes,
        message_id: str,
        submit: Any,
        method: str,
    ) -> None:
        parts = self._assembling.setdefault(key, {})
        parts[number] = (payload, message_id)
        if len(parts) == total:
            del self._assembling[key]
            self._complete(submit, [parts[n] for n in sorted(parts)], method)

    def _complete(self, submit: Any, parts: list[tuple[bytes, str]], method: str) -> None:
        texts, broken = [], False
        for payload, _ in parts:
            try:
                texts.append(decode_part(payload, submit.data_coding))
            except ValueError:
                broken = True
                texts.append(payload.decode("latin-1"))
        self.records.messages.append(
            {
                "destination": submit.destination_addr,
                "source": submit.source_addr,
                "source_ton": submit.source_addr_ton,
                "source_npi": submit.source_addr_npi,
                "text": "".join(texts),
                "parts": len(parts),
                "method": method,
                "data_coding": submit.data_coding,
                "message_ids": [message_id for _, message_id in parts],
                "broken": broken,
            }
        )

    # -- receipts and MO -----------------------------------------------------------------
    def receipt(self, submit: Any, message_id: str) -> bytes:
        """A deliver_sm receipt for one accepted part, in the configured form."""
        behaviour = self.behaviour
        route = behaviour.routes.get(submit.destination_addr, {})
        stat, err = route.get("stat", behaviour.stat), route.get("err", behaviour.err)
        now = datetime.now(UTC).strftime("%y%m%d%H%M")
        text_id = str(int(message_id, 16)) if behaviour.text_id == "decimal" else message_id
        tlvs: list[smpp34.Tlv] = []
        text = b""
        if behaviour.receipt_form in ("both", "tlv"):
            tlvs = [
                smpp34.Tlv(TLV_RECEIPTED_MESSAGE_ID, c_string(message_id)),
                smpp34.Tlv(TLV_MESSAGE_STATE, bytes([STATES[stat]])),
            ]
        if behaviour.receipt_form in ("both", "text"):
            delivered = "001" if stat == "DELIVRD" else "000"
            text = (
                f"id:{text_id} sub:001 dlvrd:{delivered} submit date:{now} done date:{now} "
                f"stat:{stat} err:{err} text:"
            ).encode("latin-1")
        return smpp34.DeliverSm(
            source_addr=submit.destination_addr,
            destination_addr=submit.source_addr,
            short_message=text,
            source_addr_ton=submit.dest_addr_ton,
            source_addr_npi=submit.dest_addr_npi,
            dest_addr_ton=submit.source_addr_ton,
            dest_addr_npi=submit.source_addr_npi,
            esm_class=0x04,
            tlvs=tlvs,
            sequence_number=self.next_deliver_sequence(),
        ).encode()

    def bound(self) -> list[Session]:
        return [s for s in self.sessions if s.mode and s.open]

    def receivers(self) -> list[Session]:
        return [s for s in self.sessions if s.mode in ("transceiver", "receiver") and s.open]

    def send_mo(self, args: dict[str, Any]) -> int:
        targets = self.receivers()
        if not targets:
            raise ValueError("no bound session can receive")
        coding = int(args.get("data_coding", 0))
        text = str(args["text"])
        payload = text.encode("utf-16-be") if coding == 8 else b"".join(GSM_ENCODE[c] for c in text)
        sequence = self.next_deliver_sequence()
        pdu = smpp34.DeliverSm(
            source_addr=str(args["source"]),
            destination_addr=str(args["destination"]),
            short_message=payload,
            source_addr_ton=int(args.get("source_ton", 1)),
            source_addr_npi=int(args.get("source_npi", 1)),
            dest_addr_ton=int(args.get("destination_ton", 0)),
            data_coding=coding,
            sequence_number=sequence,
        ).encode()
        targets[0].send_deliver(sequence, pdu)
        return sequence

    def state(self, *, full: bool) -> dict[str, Any]:
        data = asdict(self.records)
        data["deliver_resps"] = {str(k): v for k, v in self.records.deliver_resps.items()}
        data["bound"] = [s.mode for s in self.sessions if s.open and s.mode]
        data["submitted"] = len(self.records.submits)
        data["accepted"] = sum(1 for s in self.records.submits if s["status"] == 0)
        if not full:
            for bulky in ("submits", "messages", "deliver_resps"):
                data.pop(bulky)
            data["deliver_resp_statuses"] = dict(
                Counter(str(v) for v in self.records.deliver_resps.values())
            )
        return data


def parse_concat_ie(udh: bytes) -> tuple[int, int, int]:
    """(reference, total, number) from a user data header's concatenation element."""
    at = 0
    while at + 2 <= len(udh):
        iei, length = udh[at], udh[at + 1]
        data = udh[at + 2 : at + 2 + length]
        if iei == 0x00 and length == 3:
            return data[0], data[1], data[2]
        if iei == 0x08 and length == 4:
            return int.from_bytes(data[:2], "big"), data[2], data[3]
        at += 2 + length
    raise ValueError(f"no concatenation element in UDH {udh.hex()}")


class Session(asyncio.Protocol):
    """One ESME connection."""

    counter = 0

    def __init__(self, smsc: Smsc) -> None:
        Session.counter += 1
        self.ident = Session.counter
        self.smsc = smsc
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.mode: str | None = None
        self.open = False
        self.inflight = 0
        self.last_read = time.monotonic()
        self.read_at = time.time()
        self.pending_delivers: set[int] = set()
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.open = True
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.smsc.sessions.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.smsc.records.unanswered_delivers += len(self.pending_delivers)
        self.pending_delivers.clear()
        with contextlib.suppress(ValueError):
            self.smsc.sessions.remove(self)

    def write(self, data: bytes) -> None:
        if self.open and self.transport is not None:
            self.transport.write(data)

    def drop(self) -> None:
        """Close now: what was read but not answered stays unanswered.

        The connection is half-closed (FIN after what was already written) and whatever the
        ESME still sends is read and thrown away until it closes too. Closing with unread
        data would reset the connection, and a reset can destroy answers already sent.
        """
        self.smsc.records.drops += 1
        self.open = False
        self.buffer.clear()
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()
        elif self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool:
        return False  # the ESME closed its side: close ours

    def data_received(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        self.read_at = time.time()  # wall clock: compared with another process's
        if not self.open:
            return  # dropped: waiting for the ESME to close
        self.buffer += data
        while self.open and len(self.buffer) >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(self.buffer, 0)
            if len(self.buffer) < length:
                return
            pdu = bytes(self.buffer[:length])
            del self.buffer[:length]
            self.handle(command_id, status, sequence, pdu)

    def respond(self, command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> None:
        self.write(HEADER.pack(16 + len(body), command_id | RESP, status, sequence) + body)

    def handle(self, command_id: int, status: int, sequence: int, pdu: bytes) -> None:
        if command_id in BIND_MODES:
            self.bind(command_id, sequence, pdu[16:])
        elif command_id == SUBMIT_SM:
            self.submit(sequence, pdu)
        elif command_id == ENQUIRE_LINK:
            self.smsc.records.enquire_links += 1
            self.respond(ENQUIRE_LINK, sequence)
        elif command_id == UNBIND:
            self.smsc.records.unbinds += 1
            self.respond(UNBIND, sequence)
            self.open = False
            if self.transport is not None:
                self.transport.close()
        elif command_id == DELIVER_SM | RESP:
            self.pending_delivers.discard(sequence)
            self.smsc.records.deliver_resps[sequence] = status
        elif command_id & RESP:
            self.smsc.records.responses.append((command_id, status))
        else:
            self.write(HEADER.pack(16, GENERIC_NACK, ESME_RINVCMDID, sequence))

    def bind(self, command_id: int, sequence: int, body: bytes) -> None:
        system_id, at = read_c_string(body, 0)
        password, _ = read_c_string(body, at)
        accepted = (system_id, password) == (self.smsc.system_id, self.smsc.password)
        mode = BIND_MODES[command_id]
        self.smsc.records.binds.append({"system_id": system_id, "mode": mode, "accepted": accepted})
        if accepted:
            self.mode = mode
        self.respond(command_id, sequence, c_string("peer-smsc"), 0 if accepted else ESME_RINVPASWD)

    def submit(self, sequence: int, pdu: bytes) -> None:
        smsc, behaviour = self.smsc, self.smsc.behaviour
        if self.mode not in ("transmitter", "transceiver"):
            self.respond(SUBMIT_SM, sequence, c_string(""), ESME_RINVBNDSTS)
            return
        if behaviour.drop_after is not None:
            if behaviour.drop_after == 0:
                behaviour.drop_after = None
                self.drop()
                return
            behaviour.drop_after -= 1
        submit = smpp34.decode(pdu)
        self.inflight += 1
        smsc.records.max_inflight = max(smsc.records.max_inflight, self.inflight)
        if behaviour.submit_delay > 0:
            self.loop.call_later(behaviour.submit_delay, self.answer, sequence, submit)
        else:
            self.answer(sequence, submit)

    def answer(self, sequence: int, submit: Any) -> None:
        if not self.open:
            return
        self.inflight -= 1
        smsc, behaviour = self.smsc, self.smsc.behaviour
        route = behaviour.routes.get(submit.destination_addr, {})
        status, message_id = 0, ""
        if behaviour.throttle > 0:
            behaviour.throttle -= 1
            status = ESME_RTHROTTLED
        elif route.get("command_status"):
            status = int(route["command_status"])
        else:
            message_id = smsc.new_message_id()
        smsc.records.submits.append(
            {
                "session": self.ident,
                "destination": submit.destination_addr,
                "dest_ton": submit.dest_addr_ton,
                "dest_npi": submit.dest_addr_npi,
                "source": submit.source_addr,
                "source_ton": submit.source_addr_ton,
                "source_npi": submit.source_addr_npi,
                "esm_class": submit.esm_class,
                "data_coding": submit.data_coding,
                "registered_delivery": submit.registered_delivery,
                "validity": submit.validity_period,
                "sm_length": len(submit.short_message),
                "tlvs": sorted(t.tag for t in submit.tlvs),
                "status": status,
                "message_id": message_id,
                "at": self.read_at,
            }
        )
        if status:
            self.respond(SUBMIT_SM, sequence, c_string(""), status)
            return
        smsc.assemble(self, submit, message_id)
        wants_receipt = behaviour.receipts and submit.registered_delivery & 0x01
        if wants_receipt and behaviour.early_receipts:
            self.receipt_now(submit, message_id)
        self.respond(SUBMIT_SM, sequence, c_string(message_id))
        if wants_receipt and not behaviour.early_receipts:
            delay = float(route.get("delay", behaviour.receipt_delay))
            if delay > 0:
                self.loop.call_later(delay, self.receipt_now, submit, message_id)
            else:
                self.receipt_now(submit, message_id)

    def receipt_now(self, submit: Any, message_id: str) -> None:
        """To this session if it can receive, else to a receiver bound with the same account."""
        target: Session | None = self if self.mode == "transceiver" and self.open else None
        if target is None:
            receivers = self.smsc.receivers()
            target = receivers[0] if receivers else None
        if target is None:
            return
        pdu = self.smsc.receipt(submit, message_id)
        target.send_deliver(HEADER.unpack_from(pdu, 0)[3], pdu)
        self.smsc.records.receipts_sent += 1

    def send_deliver(self, sequence: int, pdu: bytes) -> None:
        self.pending_delivers.add(sequence)
        self.write(pdu)


async def watch_inactivity(smsc: Smsc) -> None:
    while True:
        await asyncio.sleep(0.05)
        limit = smsc.behaviour.inactivity
        if limit <= 0:
            continue
        now = time.monotonic()
        for session in list(smsc.sessions):
            if session.open and now - session.last_read > limit:
                session.drop()


def control(smsc: Smsc, request: dict[str, Any]) -> dict[str, Any]:
    """One control command; see the module docstring."""
    cmd = request.pop("cmd", None)
    behaviour = smsc.behaviour
    if cmd == "configure":
        for key, value in request.items():
            if not hasattr(behaviour, key) or key in ("routes", "throttle", "drop_after"):
                raise ValueError(f"unknown option {key!r}")
            setattr(behaviour, key, value)
        return {}
    if cmd == "route":
        destination = str(request.pop("destination"))
        behaviour.routes[destination] = request
        return {}
    if cmd == "throttle":
        behaviour.throttle = int(request["count"])
        return {}
    if cmd == "drop":
        behaviour.drop_after = int(request["after"])
        return {}
    if cmd == "mo":
        return {"sequence": smsc.send_mo(request)}
    if cmd == "state":
        return smsc.state(full=True)
    if cmd == "summary":
        return smsc.state(full=False)
    if cmd == "send":
        body = bytes.fromhex(str(request.get("body", "")))
        for session in smsc.bound():
            pdu = HEADER.pack(16 + len(body), int(request["command_id"]), 0, 0x7000) + body
            session.write(pdu)
        return {}
    if cmd == "raw":
        for session in smsc.bound():
            session.write(bytes.fromhex(str(request["hex"])))
        return {}
    if cmd == "arrivals":
        # When each of these destinations' first submit_sm was read off the socket.
        wanted = {str(d) for d in request.get("destinations", [])}
        first: dict[str, float] = {}
        for submit in smsc.records.submits:
            if submit["destination"] in wanted:
                first.setdefault(submit["destination"], submit["at"])
        submits = smsc.records.submits
        first_at = submits[0]["at"] if submits else None
        return {"arrivals": first, "submits": len(submits), "first_at": first_at}
    if cmd == "reset":
        smsc.records = Records()
        return {}
    raise ValueError(f"unknown command {cmd!r}")


async def serve_control(
    smsc: Smsc, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while line := await reader.readline():
            try:
                answer = {"ok": True, **control(smsc, json.loads(line))}
            except (ValueError, KeyError, TypeError) as exc:
                answer = {"ok": False, "error": str(exc)}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
    finally:
        writer.close()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--system-id", default="kaskad")
    parser.add_argument("--password", default="secret")
    args = parser.parse_args(argv)
    smsc = Smsc(args.system_id, args.password)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Session(smsc), "127.0.0.1", args.port)
    controller = await asyncio.start_server(
        lambda r, w: serve_control(smsc, r, w), "127.0.0.1", args.control_port
    )
    watcher = asyncio.create_task(watch_inactivity(smsc))
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    ports = {
        "smpp_port": server.sockets[0].getsockname()[1],
        "control_port": controller.sockets[0].getsockname()[1],
        "pid": os.getpid(),
    }
    print(json.dumps(ports), flush=True)
    await stopping.wait()
    watcher.cancel()
    server.close()
    controller.close()


# -- for tests and benchmarks: start the process, talk to it, stop it ---------------------
@dataclass
class SmscPeer:
    """A running peer process: its ports, and calls to its control port."""

    smpp_port: int
    control_port: int
    pid: int
    system_id: str
    password: str

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """A control command, blocking: for setup outside an event loop."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as sock:
            sock.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            with sock.makefile("rb") as answers:
                return self._checked(answers.readline())

    async def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        """A control command from inside an event loop."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control_port, limit=2**26)
        try:
            writer.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            return self._checked(await reader.readline())
        finally:
            writer.close()
            await writer.wait_closed()

    @staticmethod
    def _checked(line: bytes) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(line)
        if not answer.pop("ok", False):
            raise RuntimeError(f"SMSC peer refused: {answer.get('error')}")
        return answer


@contextlib.contextmanager
def start_smsc(
    *, system_id: str = "kaskad", password: str = "secret", port: int = 0, **behaviour: Any
) -> Iterator[SmscPeer]:
    """Start the peer process, wait for its ready line, and kill exactly that pid at the end."""
    argv = [
        sys.executable,
        "-m",
        "tests.peers.smsc",
        "--port",
        str(port),
        "--control-port",
        "0",
        "--system-id",
        system_id,
        "--password",
        password,
    ]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        ready = json.loads(_ready_line(process, timeout=20.0))
        peer = SmscPeer(ready["smpp_port"], ready["control_port"], process.pid, system_id, password)
        if behaviour:
            peer.call("configure", **behaviour)
        yield peer
    finally:
        _stop(process)


@contextlib.asynccontextmanager
async def running_smsc(**options: Any) -> AsyncIterator[SmscPeer]:
    """``start_smsc`` for async code: the process starts in a thread, not on the loop."""
    manager = start_smsc(**options)
    peer = await asyncio.to_thread(manager.__enter__)
    try:
        yield peer
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def _ready_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"SMSC peer (pid {process.pid}) did not start in {timeout}s")
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"SMSC peer exited with {process.wait()}")
    return line


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(5)
    if process.stdout is not None:
        process.stdout.close()


if __name__ == "__main__":
    asyncio.run(main())
