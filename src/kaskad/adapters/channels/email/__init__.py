"""Email over SMTP (``smtp.py``, the message built in ``mime.py``), and the bounces (DSN)
that report what became of it (``bounces.py``)."""

from kaskad.adapters.channels.email.bounces import (
    DSN_ACTIONS,
    DsnWebhook,
    MaildirBounces,
    parse_dsn,
)
from kaskad.adapters.channels.email.mime import InvalidEmail, InvalidRecipient
from kaskad.adapters.channels.email.smtp import SMTP_REPLIES, SmtpConfig, SmtpProvider, classify

__all__ = [
    "DSN_ACTIONS",
    "SMTP_REPLIES",
    "DsnWebhook",
    "InvalidEmail",
    "InvalidRecipient",
    "MaildirBounces",
    "SmtpConfig",
    "SmtpProvider",
    "classify",
    "parse_dsn",
]
