"""Sending mail with aiosmtplib (the only module that imports it): plain, STARTTLS or implicit TLS."""

from __future__ import annotations

import asyncio
import logging
import ssl
from email.message import EmailMessage

import aiosmtplib

from photosorter.config import MailSettings
from photosorter.errors import SinkError

log = logging.getLogger(__name__)

TIMEOUT_S = 60.0
CLOSE_WAIT_STEPS = 100


class SmtpMailer:
    def __init__(self, settings: MailSettings, *, tls_context: ssl.SSLContext | None = None,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.settings = settings
        self.tls_context = tls_context
        self.timeout_s = timeout_s

    def send(self, message: EmailMessage) -> None:
        """Send ``message`` to its To/Cc recipients; ``SinkError`` (retryable unless the login was refused)."""
        settings = self.settings
        if not settings.smtp_host:
            raise SinkError("no smtp_host set", retryable=False)
        try:
            asyncio.run(self._deliver(message))
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SinkError(f"SMTP login to {settings.smtp_host} refused ({exc.code}): check smtp_username and "
                            "smtp_password (Gmail needs an app password)", retryable=False) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise SinkError(f"SMTP server {settings.smtp_host} refused the recipient", retryable=False) from exc
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise SinkError(f"cannot send mail through {settings.smtp_host}:{settings.smtp_port}: "
                            f"{exc.__class__.__name__}: {exc}") from exc
        log.info("sent mail %r to %s", message["Subject"], message["To"])

    async def _deliver(self, message: EmailMessage) -> None:
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username or None,
            password=settings.smtp_password.reveal() if settings.smtp_username else None,
            use_tls=settings.smtp_security == "ssl", start_tls=settings.smtp_security == "starttls",
            tls_context=self.tls_context, timeout=self.timeout_s)
        protocol = None
        try:
            async with client:
                protocol = client.protocol
                await client.send_message(message)
        finally:
            # Closing a TLS connection finishes on later turns of the event loop (the protocol drops its
            # transport when the connection is lost); wait for that, at most a second, so that asyncio.run
            # does not close the loop under a half-closed socket.
            for _ in range(CLOSE_WAIT_STEPS):
                if protocol is None or protocol.transport is None:
                    break
                await asyncio.sleep(0.01)
