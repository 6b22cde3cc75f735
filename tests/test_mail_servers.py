"""The SMTP and IMAP adapters against real servers on loopback: aiosmtpd (plain, STARTTLS + login, implicit
TLS) and dovecot (plain, IMAPS, STARTTLS): reading never marks seen, processing flags and moves, IDLE wakes."""

from __future__ import annotations

import ssl
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from imapclient import IMAPClient

from photosorter.adapters.imap import PROCESSED_FOLDER, ImapInbox
from photosorter.adapters.smtp import SmtpMailer
from photosorter.cli.mail import watch_replies
from photosorter.errors import SinkError
from tests.mailfakes import mail_settings
from tests.servers.dovecot import Dovecot, free_port, self_signed
from tests.servers.smtp import SMTP_PASSWORD, SMTP_USER, run_smtp

pytest_plugins = ["tests.mailfixtures"]


def message(subject: str = "hello") -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = subject, "photos@example.com", "me@example.com"
    mail.set_content("body")
    return mail


def trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


# SMTP -----------------------------------------------------------------------------------------------------
def test_smtp_plain_delivers_the_message() -> None:
    with run_smtp() as server:
        settings = mail_settings(smtp_host=server.host, smtp_port=server.port, smtp_security="none").mail
        SmtpMailer(settings).send(message("plain"))
        assert server.inbox.wait_for(1)[0]["Subject"] == "plain"


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_with_tls_and_login_delivers_the_message(tmp_path: Path, security: str) -> None:
    cert, key = self_signed(tmp_path)
    with run_smtp(security=security, cert=cert, key=key, login=True) as server:
        settings = mail_settings(smtp_host="localhost", smtp_port=server.port, smtp_security=security,
                                 smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD).mail
        SmtpMailer(settings, tls_context=trusting(cert)).send(message(security))
        assert server.inbox.wait_for(1)[0]["Subject"] == security
        assert server.inbox.envelopes[0][1] == ["me@example.com"]


def test_smtp_refused_login_is_not_retried_and_never_shows_the_password(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with run_smtp(security="starttls", cert=cert, key=key, login=True) as server:
        settings = mail_settings(smtp_host="localhost", smtp_port=server.port, smtp_username=SMTP_USER,
                                 smtp_password="wrong-password-42").mail
        with pytest.raises(SinkError) as caught:
            SmtpMailer(settings, tls_context=trusting(cert)).send(message())
    assert not caught.value.retryable and "wrong-password-42" not in caught.value.message
    assert "smtp_password" in caught.value.message


def test_smtp_server_down_is_a_retryable_sink_error() -> None:
    settings = mail_settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none").mail
    with pytest.raises(SinkError) as caught:
        SmtpMailer(settings, timeout_s=5).send(message())
    assert caught.value.retryable


# IMAP -----------------------------------------------------------------------------------------------------
def append(server: Dovecot, raw: bytes, folder: str = "INBOX") -> None:
    with IMAPClient("127.0.0.1", port=server.port, ssl=False) as client:
        client.login(server.user, server.password)
        client.append(folder, raw)


def flags_and_folders(server: Dovecot) -> dict[str, list[tuple[bytes, ...]]]:
    with IMAPClient("127.0.0.1", port=server.port, ssl=False) as client:
        client.login(server.user, server.password)
        found = {}
        for flags, _, name in client.list_folders():
            if b"\\Noselect" in flags:
                continue
            client.select_folder(name, readonly=True)
            found[name] = [tuple(f for f in data[b"FLAGS"] if f != b"\\Recent")
                           for data in client.fetch("1:*", ["FLAGS"]).values()]
        return found


def imap(server: Dovecot, security: str = "none") -> ImapInbox:
    port = server.tls_port if security == "ssl" else server.port
    settings = mail_settings(imap_host="localhost", imap_port=port, imap_security=security, imap_username=server.user,
                             imap_password=server.password).mail
    return ImapInbox(settings, ssl_context=trusting(server.ca_file))


RAW = b"From: me@example.com\r\nSubject: Re: digest\r\nMessage-ID: <r1@example.com>\r\n\r\n3 food\r\n"


@pytest.mark.parametrize("security", ["none", "ssl", "starttls"])
def test_reading_lists_headers_and_bodies_without_marking_seen(dovecot: Dovecot, security: str) -> None:
    append(dovecot, RAW)
    inbox = imap(dovecot, security)
    uidvalidity = inbox.open()
    try:
        [listed] = inbox.list_messages()
        assert listed.uidvalidity == uidvalidity and b"Subject: Re: digest" in listed.headers
        assert inbox.fetch_message(listed.uid).endswith(b"3 food\r\n")
        assert inbox.list_messages(after_uid=listed.uid) == []
    finally:
        inbox.close()
    assert flags_and_folders(dovecot)["INBOX"] == [()]


def test_a_processed_message_is_flagged_seen_and_moved_to_a_created_folder(dovecot: Dovecot) -> None:
    append(dovecot, RAW)
    inbox = imap(dovecot)
    inbox.open()
    try:
        inbox.mark_processed(inbox.list_messages()[0].uid)
    finally:
        inbox.close()
    folders = flags_and_folders(dovecot)
    assert folders["INBOX"] == [] and folders[PROCESSED_FOLDER] == [(b"\\Seen",)]


def test_idle_wakes_when_mail_arrives(dovecot: Dovecot) -> None:
    inbox = imap(dovecot)
    inbox.open()
    try:
        timer = threading.Timer(0.5, append, (dovecot, RAW))
        timer.start()
        assert inbox.wait_for_mail(20)  # True only for an EXISTS/RECENT response, never for the timeout
        timer.join()
    finally:
        inbox.close()


def test_the_daemon_s_idle_watcher_wakes_the_reply_reader_when_mail_arrives(dovecot: Dovecot) -> None:
    settings = mail_settings(imap_host="localhost", imap_port=dovecot.port, imap_security="none",
                             imap_username=dovecot.user, imap_password=dovecot.password)
    woken, stop = threading.Event(), threading.Event()
    thread = watch_replies(settings, woken.set, stop, idle_s=3)
    try:
        time.sleep(1.0)  # the watcher is idling
        started = time.monotonic()
        append(dovecot, RAW)
        assert woken.wait(10), "IDLE did not report the new mail"
        print(f"\nreply noticed {time.monotonic() - started:.2f} s after it arrived")
    finally:
        stop.set()
    thread.join(25)
    assert not thread.is_alive()


def test_the_idle_watcher_survives_a_server_that_is_away(caplog: pytest.LogCaptureFixture) -> None:
    settings = mail_settings(imap_host="127.0.0.1", imap_port=free_port(), imap_security="none",
                             imap_username="me", imap_password="secret-pw-1")
    stop = threading.Event()
    thread = watch_replies(settings, lambda: None, stop, idle_s=1)
    time.sleep(0.5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    warnings = [r.getMessage() for r in caplog.records if "IMAP IDLE" in r.getMessage()]
    assert len(warnings) == 1 and "secret-pw-1" not in caplog.text


def test_imap_refused_login_names_the_setting_not_the_password(dovecot: Dovecot) -> None:
    settings = mail_settings(imap_host="127.0.0.1", imap_port=dovecot.port, imap_security="none",
                             imap_username=dovecot.user, imap_password="wrong-password-42").mail
    with pytest.raises(SinkError) as caught:
        ImapInbox(settings).open()
    assert not caught.value.retryable and "imap_password" in caught.value.message
    assert "wrong-password-42" not in caught.value.message


def test_an_untrusted_certificate_is_refused(dovecot: Dovecot) -> None:
    settings = mail_settings(imap_host="localhost", imap_port=dovecot.tls_port, imap_security="ssl",
                             imap_username=dovecot.user, imap_password=dovecot.password).mail
    with pytest.raises(SinkError) as caught:
        ImapInbox(settings, timeout_s=5).open()
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message
