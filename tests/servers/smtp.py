"""An aiosmtpd Controller on loopback that keeps every message it receives (plain, STARTTLS, or implicit TLS),
optionally requiring a login."""

from __future__ import annotations

import contextlib
import email
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers.dovecot import free_port

SMTP_USER = "sender@example.com"
SMTP_PASSWORD = "smtp-secret-1"


@dataclass
class Inbox:
    """Messages the server received, with a way to wait for them."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=policy.default)
        with self.condition:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.condition.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout_s
        with self.condition:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
                self.condition.wait(left)
            return list(self.messages)


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == SMTP_USER.encode() and \
        data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: Inbox


@contextlib.contextmanager
def run_smtp(*, security: str = "none", cert: Path | None = None, key: Path | None = None,
             login: bool = False) -> Iterator[SmtpServer]:
    """``security``: none, starttls or ssl (``cert``/``key`` needed for the last two)."""
    inbox = Inbox()
    context = None
    if security != "none":
        assert cert is not None and key is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    kwargs: dict[str, Any] = {}
    if login:
        kwargs.update(authenticator=_authenticate, auth_require_tls=security == "starttls")
    if security == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            ssl_context=context if security == "ssl" else None, server_hostname="localhost",
                            **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()
