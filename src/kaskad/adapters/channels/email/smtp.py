"""Email through an SMTP relay (aiosmtplib): STARTTLS or implicit TLS, authentication, a
small pool of connections reused across messages and batches, and a concurrency limit.

Every reply code maps through ``SMTP_REPLIES``, by exact code first, then by class: 2xx
means the relay took the message (``sent``; delivery is known only from a DSN later, see
bounces.py), 4xx is worth another try, 5xx is final, with ``rejected`` for the recipient
refusals 550/551/553/554. A connection that breaks, or a relay that cannot be reached or
answers too slowly, is a retry as well. A pooled connection may have been dropped by the
relay while idle: a message that finds its connection broken is tried once more on a fresh
one before it is handed back as a retry.

The Message-ID is the client reference at the sender's domain, the same on every resend,
and is what ``SendResult.provider_message_id`` carries (without the angle brackets).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import aiosmtplib

from kaskad.adapters.channels.email import mime
from kaskad.adapters.logs import mask
from kaskad.domain.providers import OutgoingMessage, ReportSink, SendOutcome, SendResult
from kaskad.domain.vocabulary import Channel, MessageStatus

log = logging.getLogger(__name__)
Security = Literal["starttls", "tls", "none"]

ACCEPTED: Final = SendOutcome.ACCEPTED
RETRY: Final = SendOutcome.RETRY
FAILED: Final = SendOutcome.FAILED
# How long to wait before resending after a 4xx reply, and after a connection trouble.
TEMPORARY_RETRY_S: Final = 60.0
CONNECTION_RETRY_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Reply:
    outcome: SendOutcome
    status: MessageStatus
    meaning: str
    retry_after: float | None = None


# SMTP reply → what kaskad does. Exact codes first; the keys 2, 4 and 5 are reply classes
# (RFC 5321 §4.2.1) for any code not listed.
SMTP_REPLIES: Final[Mapping[int, Reply]] = {
    2: Reply(ACCEPTED, MessageStatus.SENT, "accepted by the relay"),
    4: Reply(RETRY, MessageStatus.QUEUED, "temporary refusal", TEMPORARY_RETRY_S),
    5: Reply(FAILED, MessageStatus.FAILED, "permanent refusal"),
    421: Reply(RETRY, MessageStatus.QUEUED, "the relay is closing the connection", 5.0),
    535: Reply(FAILED, MessageStatus.FAILED, "authentication refused: check username/password"),
    550: Reply(FAILED, MessageStatus.REJECTED, "mailbox unavailable"),
    551: Reply(FAILED, MessageStatus.REJECTED, "user not local"),
    553: Reply(FAILED, MessageStatus.REJECTED, "mailbox name not allowed"),
    554: Reply(FAILED, MessageStatus.REJECTED, "transaction failed"),
}


def classify(code: int) -> Reply:
    """The entry of ``SMTP_REPLIES`` for a reply code; unknown classes are failures."""
    return SMTP_REPLIES.get(code) or SMTP_REPLIES.get(code // 100) or SMTP_REPLIES[5]


def reply_result(message_id: str, code: int, text: str, *, provider_id: str = "") -> SendResult:
    reply = classify(code)
    if reply.outcome is ACCEPTED:
        return SendResult.accepted(message_id, provider_id, status=reply.status)
    error = f"SMTP {code} ({reply.meaning}): {text}".strip()
    if reply.outcome is RETRY:
        return SendResult.retry(message_id, error, retry_after=reply.retry_after)
    return SendResult.failed(message_id, error, reply.status)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """One SMTP relay account. ``security``: ``starttls`` (upgrade on the submission port),
    ``tls`` (implicit TLS, port 465) or ``none``. ``concurrency`` bounds the connections open
    at once, and so the messages in flight. DKIM signs when selector, domain and key are all
    set. Attachments given by ``path`` are read from ``attachments_dir`` only."""

    host: str = "127.0.0.1"
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    from_address: str = "kaskad <noreply@localhost.localdomain>"
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
        problems = [
            text
            for broken, text in (
                (not self.host, "host is empty"),
                (not 0 < self.port < 65536, f"port {self.port} is not a TCP port"),
                (
                    self.security not in ("starttls", "tls", "none"),
                    f"security must be starttls, tls or none, not {self.security!r}",
                ),
                (self.timeout <= 0, "timeout must be positive"),
                (self.concurrency < 1, "concurrency must be at least 1"),
                (
                    bool(self.username) != bool(self.password),
                    "username and password go together",
                ),
                (
                    bool(self.username) and self.security == "none",
                    "authentication without TLS would send the password in clear",
                ),
                (
                    any(self._dkim) and not all(self._dkim),
                    "DKIM needs dkim_selector, dkim_domain and dkim_private_key together",
                ),
                (
                    self.ca_file is not None and not Path(self.ca_file).is_file(),
                    f"ca_file {self.ca_file!r} is not a file",
                ),
                (
                    self.attachments_dir is not None and not Path(self.attachments_dir).is_dir(),
                    f"attachments_dir {self.attachments_dir!r} is not a directory",
                ),
            )
            if broken
        ]
        if self.dkim_private_key:
            try:
                mime.check_dkim_key(self.dkim_private_key)
            except mime.InvalidEmail as exc:
                problems.append(str(exc))
        for what, value in (("from_address", self.from_address), ("reply_to", self.reply_to)):
            if value is None:
                continue
            try:
                mime.mailbox(value)
            except mime.InvalidEmail as exc:
                problems.append(f"{what}: {exc}")
        if problems:
            raise ValueError("invalid SMTP settings: " + "; ".join(problems))

    @property
    def _dkim(self) -> tuple[object, object, object]:
        return (self.dkim_selector, self.dkim_domain, self.dkim_private_key)


class _Broken(Exception):
    """The connection failed under a message; a fresh one may do better."""


class _Misconfigured(Exception):
    """The relay cannot work with these settings: no message will get through."""


class _Unreachable(Exception):
    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error)
        self.result = result


class SmtpProvider:
    """Email over one SMTP relay. ``start`` opens nothing (connections open on demand and
    stay pooled), ``stop`` closes the pool for good: a stopped provider stays stopped."""

    channels = frozenset({Channel.EMAIL})

    def __init__(self, name: str, config: SmtpConfig) -> None:
        self.name = name
        self.config = config
        self._slots = asyncio.Semaphore(config.concurrency)
        self._idle: list[aiosmtplib.SMTP] = []
        self._directory = Path(config.attachments_dir) if config.attachments_dir else None
        self._tls = self._tls_context() if config.security != "none" else None
        self._stopped = False
        self.connections_opened = 0

    def __repr__(self) -> str:
        return f"SmtpProvider({self.name!r}, {self.config.host}:{self.config.port})"

    async def start(self, sink: ReportSink) -> None:
        """Nothing comes back on SMTP connections: bounces arrive by mailbox or webhook."""

    async def stop(self) -> None:
        """Close every pooled connection; later calls do nothing."""
        if self._stopped:
            return
        self._stopped = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(connection) for connection in idle))

    async def send(self, batch: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        return await asyncio.gather(*(self._send_guarded(message) for message in batch))

    async def _send_guarded(self, message: OutgoingMessage) -> SendResult:
        """One result per message, whatever happens to the others."""
        try:
            return await self._send_one(message)
        except Exception as exc:  # one message's surprise must not sink the batch
            log.exception("SMTP %s: email %s: unexpected error", self.name, message.id)
            return SendResult.retry(message.id, f"unexpected error: {exc!r}", CONNECTION_RETRY_S)

    async def _send_one(self, message: OutgoingMessage) -> SendResult:
        try:
            sender, raw = self._render(message)
        except mime.InvalidEmail as exc:
            log.info("email %s to %s not built: %s", message.id, mask(message.address), exc)
            bad_address = isinstance(exc, mime.InvalidRecipient)
            status = MessageStatus.REJECTED if bad_address else MessageStatus.FAILED
            return SendResult.failed(message.id, str(exc), status)
        if self._stopped:
            return SendResult.retry(message.id, f"SMTP provider {self.name} is stopped")
        provider_id = mime.message_id(message.id, sender)
        async with self._slots:
            try:
                connection, pooled = await self._checkout()
                try:
                    result = await self._transact(connection, message, sender, raw, provider_id)
                except _Broken:
                    if not pooled:
                        raise
                    # Idle connections are dropped by relays; that is no fault of the message.
                    connection = await self._open()
                    result = await self._transact(connection, message, sender, raw, provider_id)
            except _Unreachable as exc:
                return dataclasses.replace(exc.result, message_id=message.id)
            except _Broken as exc:
                log.warning("SMTP %s: connection lost: %s", self.name, mask(str(exc)))
                return SendResult.retry(
                    message.id, f"SMTP connection lost: {exc}", CONNECTION_RETRY_S
                )
            await self._checkin(connection)
        if result.outcome is not ACCEPTED:
            log.info(
                "email %s to %s: %s", message.id, mask(message.address), mask(result.error or "")
            )
        return result

    def _render(self, message: OutgoingMessage) -> tuple[str, bytes]:
        config = self.config
        sender = mime.sender_of(message, config.from_address)
        email = mime.build(
            message,
            sender=config.from_address,
            reply_to=config.reply_to,
            attachments_dir=self._directory,
        )
        raw = mime.render(email)
        if config.dkim_private_key and config.dkim_selector and config.dkim_domain:
            raw = mime.sign(
                raw,
                selector=config.dkim_selector,
                domain=config.dkim_domain,
                key=config.dkim_private_key,
            )
        return sender, raw

    async def _transact(
        self,
        connection: aiosmtplib.SMTP,
        message: OutgoingMessage,
        sender: str,
        raw: bytes,
        provider_id: str,
    ) -> SendResult:
        try:
            await connection.sendmail(mime.mailbox(sender), [message.address], raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            if refused.code == 421:  # the relay is closing this connection
                await _drop(connection)
                raise _Broken(f"{refused.code} {refused.message}") from exc
            return reply_result(message.id, refused.code, refused.message)
        except aiosmtplib.SMTPTimeoutError as exc:
            await _drop(connection)
            # The relay may be slow rather than the connection stale: no second try now.
            raise _Unreachable(
                SendResult.retry(message.id, f"SMTP timeout: {exc}", CONNECTION_RETRY_S)
            ) from exc
        except aiosmtplib.SMTPServerDisconnected as exc:
            await _drop(connection)
            raise _Broken(str(exc) or "disconnected") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # the relay is closing this connection
                await _drop(connection)
                raise _Broken(f"{exc.code} {exc.message}") from exc
            return reply_result(message.id, exc.code, exc.message)
        except (OSError, aiosmtplib.SMTPException) as exc:
            await _drop(connection)
            raise _Broken(str(exc) or type(exc).__name__) from exc
        except ValueError as exc:  # an address aiosmtplib will not put in an envelope
            return SendResult.failed(message.id, str(exc), MessageStatus.REJECTED)
        return reply_result(message.id, 250, "", provider_id=provider_id)

    async def _checkout(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            connection = self._idle.pop()
            if connection.is_connected:
                return connection, True
        return await self._open(), False

    async def _checkin(self, connection: aiosmtplib.SMTP) -> None:
        if self._stopped or not connection.is_connected:
            await _quit(connection)
        else:
            self._idle.append(connection)

    async def _open(self) -> aiosmtplib.SMTP:
        """A new connection, through TLS and authenticated as configured."""
        config = self.config
        connection = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            timeout=config.timeout,
            use_tls=config.security == "tls",
            start_tls=False,  # done below, to tell a relay without STARTTLS apart
            tls_context=self._tls,
            local_hostname="kaskad.localdomain",
        )
        try:
            await self._handshake(connection)
        except _Misconfigured as exc:
            connection.close()
            log.error("SMTP %s: %s", self.name, exc)
            raise _Unreachable(SendResult.failed("", f"SMTP {config.host}: {exc}")) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            connection.close()
            log.error("SMTP %s: authentication refused (%s)", self.name, exc.code)
            text = f"SMTP authentication refused by {config.host}: {exc.code} {exc.message}"
            # A wrong password does not heal by itself; a 454 (temporary) from AUTH might.
            raise _Unreachable(_settle("", classify(exc.code), text)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            connection.close()
            log.warning("SMTP %s: refused at connect: %s", self.name, mask(str(exc)))
            text = f"SMTP connect to {config.host}:{config.port} refused: {exc.code} {exc.message}"
            raise _Unreachable(_settle("", classify(exc.code), text)) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            connection.close()
            log.warning("SMTP %s: cannot connect: %s", self.name, mask(str(exc)))
            text = f"cannot connect to the SMTP server {config.host}:{config.port}: {exc}"
            raise _Unreachable(SendResult.retry("", text, CONNECTION_RETRY_S)) from exc
        self.connections_opened += 1
        return connection

    async def _handshake(self, connection: aiosmtplib.SMTP) -> None:
        config = self.config
        await connection.connect()
        await connection.ehlo()
        if config.security == "starttls":
            if not connection.supports_extension("starttls"):
                raise _Misconfigured("the relay does not offer STARTTLS (check security)")
            await connection.starttls()
            await connection.ehlo()
        if config.username and config.password:
            if not connection.supports_extension("auth"):
                raise _Misconfigured("the relay does not offer AUTH (check security, username)")
            await connection.login(config.username, config.password)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file)
        if not self.config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _settle(message_id: str, reply: Reply, error: str) -> SendResult:
    if reply.outcome is RETRY:
        return SendResult.retry(message_id, error, reply.retry_after)
    return SendResult.failed(message_id, error, MessageStatus.FAILED)


async def _drop(connection: aiosmtplib.SMTP) -> None:
    connection.close()


async def _quit(connection: aiosmtplib.SMTP) -> None:
    try:
        await connection.quit()
    except Exception:  # noqa: BLE001 - a connection being let go may fail in any way
        connection.close()


__all__ = ["SMTP_REPLIES", "Reply", "SmtpConfig", "SmtpProvider", "classify"]
