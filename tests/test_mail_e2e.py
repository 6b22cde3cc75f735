"""End to end through the command line: sort photos -> `digest --send-now` to aiosmtpd -> a reply appended
to dovecot (IMAPS) -> `replies --once` -> photos in their new folders, labels and kNN index updated, and a
confirmation at the SMTP server. `digest --dry-run` writes the .eml and sends nothing."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

from imapclient import IMAPClient

from photosorter.adapters.mailstate import SqliteMailLedger
from photosorter.cli.build import STATE_FILE
from photosorter.core.digest import find_digest_id
from tests.conftest import write_photo
from tests.mailclients import write_reply
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from tests.test_sort_folder import files_under, run_cli

pytest_plugins = ["tests.mailfixtures"]


def environment(tmp: Path, model: Path, smtp: SmtpServer, dovecot: Dovecot) -> dict[str, str]:
    return {"PHOTOSORTER_LIBRARY": str(tmp / "library"), "PHOTOSORTER_DATA": str(tmp / "data"),
            "PHOTOSORTER_MODEL": str(model), "PHOTOSORTER_SMTP_HOST": smtp.host,
            "PHOTOSORTER_SMTP_PORT": str(smtp.port), "PHOTOSORTER_SMTP_SECURITY": "none",
            "PHOTOSORTER_MAIL_FROM": "Photosorter <photos@example.com>", "PHOTOSORTER_MAIL_TO": "me@example.com",
            "PHOTOSORTER_IMAP_HOST": "localhost", "PHOTOSORTER_IMAP_PORT": str(dovecot.tls_port),
            "PHOTOSORTER_IMAP_SECURITY": "ssl", "PHOTOSORTER_IMAP_USERNAME": dovecot.user,
            "PHOTOSORTER_IMAP_PASSWORD": dovecot.password, "SSL_CERT_FILE": str(dovecot.ca_file), "TZ": "UTC"}


def numbers_by_name(digest: EmailMessage) -> dict[str, int]:
    body = digest.get_body(("plain",))
    assert body is not None
    found = {}
    for line in str(body.get_content()).splitlines():  # type: ignore[attr-defined]
        parts = line.split()
        if parts and parts[0].startswith("#") and parts[0][1:].isdigit():
            found[parts[3]] = int(parts[0][1:])
    return found


def test_sort_digest_reply_and_the_photos_move(tmp_path: Path, tiny_model: Path, smtp_server: SmtpServer,
                                               dovecot: Dovecot) -> None:
    env = environment(tmp_path, tiny_model, smtp_server, dovecot)
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    write_photo(inbox, "red.jpg", (220, 20, 20))
    write_photo(inbox, "green.jpg", (20, 220, 20))
    write_photo(inbox, "blue.jpg", (20, 20, 220))
    assert run_cli("sort", inbox, env=env).returncode == 0

    dry = run_cli("digest", "--dry-run", "--out", tmp_path / "eml", env=env)
    assert dry.returncode == 0, dry.stderr
    [eml] = (tmp_path / "eml").glob("*.eml")
    assert find_digest_id(email.message_from_bytes(eml.read_bytes())["Subject"]) and not smtp_server.inbox.messages

    sent = run_cli("digest", "--send-now", env=env)
    assert sent.returncode == 0, sent.stderr
    digest = smtp_server.inbox.wait_for(1)[0]
    assert "3 photos sorted" in digest["Subject"]
    numbers = numbers_by_name(digest)
    index_file = next((tmp_path / "data").glob("knn-*.usearch"), None)
    assert index_file is None  # nothing labelled yet

    reply = write_reply("apple_html", f"{numbers['red.jpg']} beer\n{numbers['blue.jpg']}: text\n"
                                      f"{numbers['green.jpg']} ok", digest)
    with IMAPClient("127.0.0.1", port=dovecot.port, ssl=False) as client:
        client.login(dovecot.user, dovecot.password)
        client.append("INBOX", reply)
    polled = run_cli("replies", "--once", env=env)
    assert polled.returncode == 0, polled.stderr
    assert "applied 1 replies" in polled.stdout

    assert [p.relative_to(library).as_posix() for p in files_under(library)] == \
        ["beer/red.jpg", "scenery/green.jpg", "text/blue.jpg"]
    status = run_cli("status", env=env).stdout
    labels = dict(line.split() for line in status.split("labels:")[1].splitlines()[1:13])
    assert (labels["beer"], labels["text"], labels["scenery"], labels["food"]) == ("1", "1", "1", "0")
    assert next((tmp_path / "data").glob("knn-*.usearch")).stat().st_size > 0
    confirmation = smtp_server.inbox.wait_for(2)[1]
    assert confirmation["In-Reply-To"] == email.message_from_bytes(reply, policy=policy.default)["Message-ID"]
    text = str(confirmation.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert f"#{numbers['red.jpg']} food -> beer (beer/red.jpg)" in text
    assert f"#{numbers['green.jpg']} confirmed as scenery" in text
    assert "imap-secret-1" not in polled.stderr + sent.stderr

    again = run_cli("replies", "--once", env=env)
    assert "applied 0 replies" in again.stdout and len(smtp_server.inbox.messages) == 2
    ledger = SqliteMailLedger(tmp_path / "data" / STATE_FILE)
    try:
        assert ledger.last_digest_time() is not None
    finally:
        ledger.close()
