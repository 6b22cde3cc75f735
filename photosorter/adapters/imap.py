"""The reply folder over IMAP with imapclient (the only module that imports it).

Reading uses ``BODY.PEEK`` so nothing is marked seen; a message is flagged ``\\Seen`` and moved to the
processed folder only when ``mark_processed`` is called, after the changes it asked for are saved.
IDLE is used to wait for new mail when the server offers it.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
import time

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from photosorter.config import MailSettings
from photosorter.errors import SinkError
from photosorter.records import InboxMessage

log = logging.getLogger(__name__)

TIMEOUT_S = 60.0
PROCESSED_FOLDER = "Photosorter/Processed"
_ERRORS = (IMAPClientError, imaplib.IMAP4.error, OSError, ssl.SSLError)


class ImapInbox:
    def __init__(self, settings: MailSettings, *, processed_folder: str = PROCESSED_FOLDER,
                 ssl_context: ssl.SSLContext | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.settings = settings
        self.folder = settings.imap_folder
        self.processed_folder = processed_folder
        self.ssl_context = ssl_context
        self.timeout_s = timeout_s
        self._client: imapclient.IMAPClient | None = None
        self._processed: str | None = None

    # connection -------------------------------------------------------------------------------------
    def open(self) -> int:
        """Connect, log in and select the reply folder; returns its UIDVALIDITY."""
        s = self.settings
        if not s.imap_host:
            raise SinkError("no imap_host set", retryable=False)
        client: imapclient.IMAPClient | None = None
        try:
            context = self.ssl_context or ssl.create_default_context()
            client = imapclient.IMAPClient(s.imap_host, port=s.imap_port, ssl=s.imap_security == "ssl",
                                           ssl_context=context, timeout=self.timeout_s)
            if s.imap_security == "starttls":
                client.starttls(context)
            client.login(s.imap_username, s.imap_password.reveal())
            selected = client.select_folder(self.folder)
        except (LoginError, *_ERRORS) as exc:
            if client is not None:
                with contextlib.suppress(*_ERRORS):
                    client.shutdown()
            if isinstance(exc, LoginError):
                raise SinkError(f"IMAP login to {s.imap_host} refused: check imap_username and imap_password "
                                "(Gmail needs an app password; Outlook.com no longer allows password logins)",
                                retryable=False) from exc
            raise SinkError(f"cannot read mail from {s.imap_host}:{s.imap_port}: {exc.__class__.__name__}: {exc}"
                            ) from exc
        self._client = client
        return int(selected.get(b"UIDVALIDITY", 0))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*_ERRORS):
                client.logout()
            with contextlib.suppress(*_ERRORS):
                client.shutdown()

    def _connected(self) -> imapclient.IMAPClient:
        if self._client is None:
            raise SinkError("IMAP folder is not open", retryable=True)
        return self._client

    # reading ----------------------------------------------------------------------------------------
    def list_messages(self, after_uid: int = 0) -> list[InboxMessage]:
        """Headers and sizes of the messages with a UID above ``after_uid``, oldest first (never marks seen)."""
        client = self._connected()
        try:
            uids = [u for u in client.search(["UID", f"{after_uid + 1}:*"]) if u > after_uid]
            if not uids:
                return []
            uidvalidity = int(client.folder_status(self.folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
            fetched = client.fetch(uids, ["RFC822.SIZE", "BODY.PEEK[HEADER]"])
        except _ERRORS as exc:
            raise SinkError(f"cannot list mail in {self.folder}: {exc.__class__.__name__}: {exc}") from exc
        messages = []
        for uid in sorted(fetched):
            data = fetched[uid]
            headers = data.get(b"BODY[HEADER]", b"")
            messages.append(InboxMessage(self.folder, uidvalidity, int(uid), int(data.get(b"RFC822.SIZE", 0)),
                                         bytes(headers)))
        return messages

    def fetch_message(self, uid: int) -> bytes:
        client = self._connected()
        try:
            data = client.fetch([uid], ["BODY.PEEK[]"])
        except _ERRORS as exc:
            raise SinkError(f"cannot read message {uid}: {exc.__class__.__name__}: {exc}") from exc
        if uid not in data:
            raise SinkError(f"message {uid} disappeared from {self.folder}")
        return bytes(data[uid][b"BODY[]"])

    # after the changes are saved ----------------------------------------------------------------------
    def mark_processed(self, uid: int) -> None:
        client = self._connected()
        try:
            client.add_flags([uid], [imapclient.SEEN])
            folder = self._processed_folder(client)
            if client.has_capability("MOVE"):
                client.move([uid], folder)
            else:
                client.copy([uid], folder)
                client.delete_messages([uid])
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge([uid])
                else:
                    client.expunge()
        except _ERRORS as exc:
            raise SinkError(f"cannot move message {uid} to {self.processed_folder}: {exc}") from exc

    def _processed_folder(self, client: imapclient.IMAPClient) -> str:
        """The processed folder with the server's own hierarchy delimiter, created when missing."""
        if self._processed is None:
            delimiter = client.namespace().personal[0][1] if client.namespace().personal else "/"
            delimiter = delimiter.decode() if isinstance(delimiter, bytes) else (delimiter or "/")
            name = self.processed_folder.replace("/", delimiter)
            if not client.folder_exists(name):
                with contextlib.suppress(*_ERRORS):
                    client.create_folder(name)
                with contextlib.suppress(*_ERRORS):
                    client.subscribe_folder(name)
            self._processed = name
        return self._processed

    # waiting ----------------------------------------------------------------------------------------
    def wait_for_mail(self, timeout_s: float) -> bool:
        """Wait until new mail may have arrived (IDLE) or ``timeout_s`` passes (servers without IDLE)."""
        client = self._connected()
        if not client.has_capability("IDLE"):
            time.sleep(timeout_s)
            return False
        try:
            client.idle()
            try:
                responses = client.idle_check(timeout=timeout_s)
            finally:
                client.idle_done()
        except _ERRORS as exc:
            raise SinkError(f"IMAP IDLE failed: {exc.__class__.__name__}: {exc}") from exc
        return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)
