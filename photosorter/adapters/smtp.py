"""Sending mail with aiosmtplib (the only module that imports it): plain, STARTTLS or implicit TLS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from email.message import EmailMessage

import aiosmtplib

from photosorter.config import MailSettings
from photosorter.errors import SinkError

log = logging.getLogger(__name__)

TIMEOUT_S = 60.0


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
        client = aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port,
                                 use_tls=settings.smtp_security == "ssl", start_tls=False,
                                 tls_context=self.tls_context, timeout=self.timeout_s)
        await client.connect()
        protocol = client.protocol
        try:
            if settings.smtp_security == "starttls":
                await client.starttls(tls_context=self.tls_context)
            if settings.smtp_username:
                await client.login(settings.smtp_username, settings.smtp_password.reveal())
            await client.send_message(message)
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.quit()
        finally:
            # A TLS connection closes gracefully only over later turns of the event loop, which asyncio.run
            # does not wait for: abort it (the message is sent or has failed by now) and let that finish.
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.abort()
            client.close()
            for _ in range(3):
                await asyncio.sleep(0)
