"""Email through an SMTP relay (aiosmtplib): STARTTLS or implicit TLS, authentication, a
small pool of connections reused across messages, and a concurrency limit.

Every SMTP reply maps through ``SMTP_REPLIES``: 2xx means the relay took the message
(``sent``: delivery is reported later, by a DSN, if ever), 4xx is worth another try, 5xx
is final. A connection that breaks under a message is replaced and the message tried once
more on a fresh one before it is handed back as a retry.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import aiosmtplib

from kaskad.adapters.channels.email.mime import InvalidEmail, build, message_id, sign
from kaskad.adapters.logs import mask
from kaskad.domain.providers import OutgoingMessage, ReportSink, SendOutcome, SendResult
from kaskad.domain.vocabulary import Channel, MessageStatus

log = logging.getLogger(__name__)
Security = Literal["starttls", "tls", "none"]
RETRY_AFTER_S: Final = 30.0

# Reply codes that mean something more specific than their class.
SMTP_REPLIES: Final[Mapping[int, tuple[SendOutcome, MessageStatus]]] = {
    550: (SendOutcome.FAILED, MessageStatus.REJECTED),  # mailbox unavailable
    551: (SendOutcome.FAILED, MessageStatus.REJECTED),  # user not local
    553: (SendOutcome.FAILED, MessageStatus.REJECTED),  # mailbox name not allowed
    554: (SendOutcome.FAILED, MessageStatus.REJECTED),  # transaction failed / policy
    535: (SendOutcome.FAILED, MessageStatus.FAILED),  # our credentials are wrong
    552: (SendOutcome.FAILED, MessageStatus.FAILED),  # too large
}


def classify(code: int) -> tuple[SendOutcome, MessageStatus]:
    if code in SMTP_REPLIES:
        return SMTP_REPLIES[code]
    if 200 <= code < 300:
        return SendOutcome.ACCEPTED, MessageStatus.SENT
    if 400 <= code < 500:
        return SendOutcome.RETRY, MessageStatus.QUEUED
    return SendOutcome.FAILED, MessageStatus.FAILED


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    from_address: str = "kaskad <noreply@localhost>"
    reply_to: str | None = None
    timeout: float = 30.0
    concurrency: int = 4
    verify_tls: bool = True
    ca_file: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: bytes | None = field(default=None, repr=False)
    attachments_dir: str | None = None

    def __post_init__(self) -> None:
        if self.security not in ("starttls", "tls", "none"):
            raise ValueError(f"security must be starttls, tls or none, not {self.security!r}")
        if self.concurrency < 1 or self.timeout <= 0:
            raise ValueError("concurrency must be at least 1 and timeout positive")
        dkim = (self.dkim_selector, self.dkim_domain, self.dkim_private_key)
        if any(dkim) and not all(dkim):
            raise ValueError("DKIM needs a selector, a domain and a private key together")


class SmtpProvider:
    channels = frozenset({Channel.EMAIL})

    def __init__(self, name: str, config: SmtpConfig) -> None:
        self.name = name
        self.config = config
        self._slots = asyncio.Semaphore(config.concurrency)
        self._idle: list[aiosmtplib.SMTP] = []
        self._directory = Path(config.attachments_dir) if config.attachments_dir else None
        self.connections_opened = 0

    def __repr__(self) -> str:
        return f"SmtpProvider({self.name!r}, {self.config.host}:{self.config.port})"

    async def start(self, sink: ReportSink) -> None:
        """Nothing arrives on SMTP connections; bounces come by mailbox or webhook."""

    async def stop(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await _quit(connection)

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        return await asyncio.gather(*(self._send_one(m) for m in batch))

    async def _send_one(self, message: OutgoingMessage) -> SendResult:
        try:
            raw = self._raw(message)
        except InvalidEmail as exc:
            return SendResult.failed(message.id, str(exc), MessageStatus.REJECTED)
        async with self._slots:
            for attempt in (1, 2):
                connection = await self._connection()
                if isinstance(connection, str):
                    # Down, or refusing our credentials: nothing is wrong with the message,
                    # so it waits (with backoff) for the relay or the settings to be fixed.
                    return SendResult.retry(message.id, connection, RETRY_AFTER_S)
                try:
                    result = await self._deliver(connection, message, raw)
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError):
                    await _quit(connection)
                    if attempt == 2:
                        return SendResult.retry(
                            message.id, "SMTP connection lost while sending", RETRY_AFTER_S
                        )
                    continue
                self._idle.append(connection)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _raw(self, message: OutgoingMessage) -> bytes:
        config = self.config
        email = build(
            message,
            sender=config.from_address,
            reply_to=config.reply_to,
            attachments_dir=self._directory,
        )
        raw = email.as_bytes(policy=email.policy.clone(linesep="\r\n"))
        if config.dkim_private_key and config.dkim_selector and config.dkim_domain:
            raw = sign(
                raw,
                selector=config.dkim_selector,
                domain=config.dkim_domain,
                key=config.dkim_private_key,
            )
        return raw

    async def _deliver(
        self, connection: aiosmtplib.SMTP, message: OutgoingMessage, raw: bytes
    ) -> SendResult:
        sender = str(message.content.get("from") or self.config.from_address)
        envelope_from = _address(sender)
        try:
            await connection.sendmail(envelope_from, [message.address], raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            return _refused(message, refused.code, refused.message)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # the server is closing this connection
                raise aiosmtplib.SMTPServerDisconnected(exc.message) from exc
            return _refused(message, exc.code, exc.message)
        return SendResult.accepted(
            message.id, message_id(message, sender), status=MessageStatus.SENT
        )

    async def _connection(self) -> aiosmtplib.SMTP | str:
        while self._idle:
            connection = self._idle.pop()
            if connection.is_connected:
                return connection
        config = self.config
        connection = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            timeout=config.timeout,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            tls_context=self._tls() if config.security != "none" else None,
        )
        try:
            await connection.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            log.error("SMTP %s: authentication refused (%s)", self.name, exc.code)
            return f"SMTP authentication refused: {exc.code} {exc.message}"
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("SMTP %s: cannot connect: %s", self.name, mask(str(exc)))
            return f"cannot connect to the SMTP server: {exc}"
        self.connections_opened += 1
        return connection

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file)
        if not self.config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _refused(message: OutgoingMessage, code: int, text: str) -> SendResult:
    outcome, status = classify(code)
    error = f"SMTP {code}: {text}"
    log.info("email %s to %s: %s", message.id, mask(message.address), mask(error))
    if outcome is SendOutcome.RETRY:
        return SendResult.retry(message.id, error, RETRY_AFTER_S)
    return SendResult.failed(message.id, error, status)


def _address(value: str) -> str:
    from email.utils import parseaddr

    return parseaddr(value)[1] or value


async def _quit(connection: Any) -> None:
    try:
        await connection.quit()
    except Exception:  # noqa: BLE001 - a connection being dropped may fail in any way
        connection.close()
