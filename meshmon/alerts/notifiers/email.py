"""Email through an SMTP relay with the standard library, in a worker thread.

smtplib blocks, so each send runs in `asyncio.to_thread` with one fresh connection: alerts
are rare, and a connection kept open between them would only time out on the server.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from meshmon.alerts import messages
from meshmon.alerts.model import Alert
from meshmon.alerts.notifiers.base import DeliveryError
from meshmon.config import NotifierConfig


class EmailNotifier:
    """Sends each alert (or a digest) as one plain-text email.

    `ssl_context` replaces the default one (system CAs, host name checked), e.g. to trust
    a private CA."""

    def __init__(self, config: NotifierConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.name = config.name
        self._config = config
        self._ssl_context = ssl_context

    async def send(self, alerts: Sequence[Alert], recipient: str | None = None) -> None:
        """Mail one alert, or several as one digest, to `recipient` or the configured `to`."""
        if not alerts:
            return
        to = [recipient] if recipient else list(self._config.to)
        try:
            message = self._message(alerts, to)
        except ValueError as e:
            # a header that the email package refuses, e.g. an address with a line break
            raise DeliveryError(f"email {self.name}: cannot build the message ({e})") from e
        try:
            await asyncio.to_thread(self._deliver, message, to)
        except (smtplib.SMTPException, OSError) as e:
            raise DeliveryError(f"email {self.name}: {_reason(e)}") from e

    async def close(self) -> None:
        """Nothing to release: every send opens and closes its own connection."""

    def _message(self, alerts: Sequence[Alert], to: list[str]) -> EmailMessage:
        config = self._config
        message = EmailMessage()
        if len(alerts) == 1:
            message["Subject"] = messages.title(alerts[0])
            message.set_content(messages.body(alerts[0]))
        else:
            message["Subject"] = messages.digest_title(alerts)
            message.set_content(messages.digest_body(alerts))
        message["From"] = config.sender
        message["To"] = ", ".join(to)
        message["Date"] = formatdate(usegmt=True)
        # the sender's domain, not make_msgid's default socket.getfqdn() (a DNS lookup)
        message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or "meshmon")
        return message

    def _deliver(self, message: EmailMessage, to: list[str]) -> None:
        config = self._config
        context = self._ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if config.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                config.smtp_host, config.smtp_port, timeout=config.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_s)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=context)
            if config.username:
                smtp.login(config.username, config.password)
            smtp.send_message(message, from_addr=config.sender, to_addrs=to)


def _reason(error: Exception) -> str:
    """A short reason that never echoes credentials (SMTP replies are the server's words)."""
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        return f"SMTP {error.smtp_code} {' '.join(text.split())}".strip()
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        # the addresses stay out: an owner's address is a contact, not for the log
        return f"{len(error.recipients)} recipient(s) refused"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
