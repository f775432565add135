"""Email over SMTP, and the bounces (DSN) that report what became of it."""

from kaskad.adapters.channels.email.bounces import DsnWebhook, MaildirBounces, parse_dsn
from kaskad.adapters.channels.email.smtp import SMTP_REPLIES, SmtpConfig, SmtpProvider

__all__ = [
    "SMTP_REPLIES",
    "DsnWebhook",
    "MaildirBounces",
    "SmtpConfig",
    "SmtpProvider",
    "parse_dsn",
]
