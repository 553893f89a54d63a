"""E-mail through SMTP (host, port, TLS, sender from the settings), with the standard library."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from notify.templates import Rendered


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 25
    tls: str = "none"  # none, starttls, ssl
    username: str | None = None
    password: str | None = None
    sender: str = "disputes@localhost"
    timeout: float = 10.0


def message(settings: SmtpSettings, to: str, rendered: Rendered, message_id: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = settings.sender
    mail["To"] = to
    mail["Subject"] = rendered.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(idstring=message_id[:40])
    mail.set_content(rendered.body)
    return mail


def send(settings: SmtpSettings, mails: list[EmailMessage]) -> None:
    """Send the messages over one connection; raises ``smtplib.SMTPException`` / ``OSError``."""
    if not mails:
        return
    smtp: smtplib.SMTP
    if settings.tls == "ssl":
        smtp = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with smtp:
        if settings.tls == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        for mail in mails:
            smtp.send_message(mail)
