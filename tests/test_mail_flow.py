"""Replies applied through the real workflow: a sorted library, a digest at aiosmtpd, replies in dovecot.
Only replies to a recorded digest from an allowed sender count; each is applied once; the message is
moved only after the changes are saved; the confirmation says what changed and what was not understood."""

from __future__ import annotations

import datetime as dt
import email
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from imapclient import IMAPClient

from photosorter.adapters.images import decode_image
from photosorter.adapters.imap import PROCESSED_FOLDER, ImapInbox
from photosorter.adapters.mailstate import SqliteMailLedger
from photosorter.adapters.smtp import SmtpMailer
from photosorter.adapters.state import SqliteState
from photosorter.cli.build import STATE_FILE, build_sorter, open_state
from photosorter.errors import SinkError
from photosorter.mailflow import MailFlow
from photosorter.pipeline import Sorter
from photosorter.records import InboxMessage
from tests.conftest import write_photo
from tests.mailclients import write_reply
from tests.mailfakes import ZONE, mail_settings
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer

pytest_plugins = ["tests.mailfixtures"]

NOW = dt.datetime(2026, 11, 25, 20, 0, tzinfo=ZONE)


@dataclass
class World:
    library: Path
    state: SqliteState
    sorter: Sorter
    flow: MailFlow
    inbox: ImapInbox
    smtp: SmtpServer
    dovecot: Dovecot
    digest_message: EmailMessage = field(default_factory=EmailMessage)

    def digest(self) -> EmailMessage:
        assert self.flow.send_digest(NOW)
        return self.smtp.inbox.wait_for(1)[0]

    def numbers(self) -> dict[str, int]:
        """Photo file name -> its number in the (only) digest."""
        digest_id = self.flow.ledger.digest_for_message_ids([str(self.digest_message["Message-ID"])])
        assert digest_id is not None
        items = self.flow.ledger.digest_items(digest_id)
        return {Path(self.state.photo(p).library_path or "").name: n  # type: ignore[union-attr]
                for n, (p, _) in items.items()}

    def append(self, raw: bytes) -> None:
        with IMAPClient("127.0.0.1", port=self.dovecot.port, ssl=False) as client:
            client.login(self.dovecot.user, self.dovecot.password)
            client.append("INBOX", raw)

    def folders(self) -> dict[str, int]:
        with IMAPClient("127.0.0.1", port=self.dovecot.port, ssl=False) as client:
            client.login(self.dovecot.user, self.dovecot.password)
            counts = {}
            for flags, _, name in client.list_folders():
                if b"\\Noselect" not in flags:
                    counts[name] = int(client.select_folder(name, readonly=True)[b"EXISTS"])
            return counts

    def unseen_in_inbox(self) -> int:
        with IMAPClient("127.0.0.1", port=self.dovecot.port, ssl=False) as client:
            client.login(self.dovecot.user, self.dovecot.password)
            client.select_folder("INBOX", readonly=True)
            return len(client.search(["UNSEEN"]))

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.library).as_posix() for p in self.library.rglob("*") if p.is_file())

    def labels(self) -> dict[int, str]:
        return self.state.current_labels()

    def label_count(self) -> int:
        return int(self.state._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])


@pytest.fixture
def world(tmp_path: Path, tiny_model: Path, dovecot: Dovecot, smtp_server: SmtpServer) -> Iterator[World]:
    inbox_dir, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    for name, color in (("red.jpg", (220, 20, 20)), ("green.jpg", (20, 220, 20)), ("blue.jpg", (20, 20, 220))):
        write_photo(inbox_dir, name, color)
    settings = mail_settings(library=str(library), data=str(data), model=str(tiny_model),
                             smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_security="none",
                             imap_host="127.0.0.1", imap_port=dovecot.port, imap_security="none",
                             imap_username=dovecot.user, imap_password=dovecot.password)
    state = open_state(settings)
    sorter = build_sorter(settings, state)
    sorter.sort_folder(inbox_dir)
    ledger = SqliteMailLedger(data / STATE_FILE)
    imap = ImapInbox(settings.mail)
    flow = MailFlow(settings=settings.mail, categories=settings.classify.categories, library=library, ledger=ledger,
                    mailer=SmtpMailer(settings.mail), inbox=imap, zone=ZONE, decoder=decode_image, labeller=sorter)
    world = World(library, state, sorter, flow, imap, smtp_server, dovecot)
    world.digest_message = world.digest()
    yield world
    ledger.close()
    state.close()


def confirmation(world: World, count: int = 2) -> str:
    message = world.smtp.inbox.wait_for(count)[count - 1]
    assert message["Auto-Submitted"] == "auto-replied"
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def test_the_sorted_library_is_what_the_digest_shows(world: World) -> None:
    assert world.files() == ["food/red.jpg", "scenery/green.jpg", "screenshot/blue.jpg"]
    assert set(world.numbers()) == {"red.jpg", "green.jpg", "blue.jpg"}


def test_a_reply_moves_photos_records_labels_and_is_confirmed(world: World) -> None:
    numbers = world.numbers()
    text = f"{numbers['red.jpg']} beer can\n{numbers['green.jpg']} ok\n{numbers['blue.jpg']} pizza"
    world.append(write_reply("gmail", text, world.digest_message))
    assert world.flow.poll_replies() == 1
    assert world.files() == ["beer/red.jpg", "scenery/green.jpg", "screenshot/blue.jpg"]
    assert sorted(world.labels().values()) == ["beer", "scenery"]
    body = confirmation(world)
    assert f"#{numbers['red.jpg']} food -> beer (beer/red.jpg)" in body
    assert f"#{numbers['green.jpg']} confirmed as scenery" in body
    assert "pizza" in body and "no category 'pizza'" in body
    assert world.folders() == {"INBOX": 0, PROCESSED_FOLDER: 1}


def test_the_same_reply_delivered_twice_changes_nothing_the_second_time(world: World) -> None:
    reply = write_reply("apple", f"{world.numbers()['red.jpg']} beer", world.digest_message)
    world.append(reply)
    world.flow.poll_replies()
    labels = world.state._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]
    world.append(reply)
    assert world.flow.poll_replies() == 0
    assert world.state._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == labels
    assert len(world.smtp.inbox.messages) == 2  # the digest and one confirmation
    assert world.folders() == {"INBOX": 0, PROCESSED_FOLDER: 2}


class CrashAfterSave:
    """An inbox whose first ``mark_processed`` fails, as if the process died after the labels were saved."""

    def __init__(self, inner: ImapInbox) -> None:
        self.inner = inner
        self.failures = 1

    def open(self) -> int:
        return self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def list_messages(self, after_uid: int = 0) -> list[InboxMessage]:
        return self.inner.list_messages(after_uid)

    def fetch_message(self, uid: int) -> bytes:
        return self.inner.fetch_message(uid)

    def mark_processed(self, uid: int) -> None:
        if self.failures:
            self.failures -= 1
            raise SinkError("connection lost")
        self.inner.mark_processed(uid)

    def wait_for_mail(self, timeout_s: float) -> bool:
        return self.inner.wait_for_mail(timeout_s)


def test_a_reply_interrupted_before_the_move_is_finished_once_on_the_next_poll(world: World) -> None:
    world.flow.inbox = CrashAfterSave(world.inbox)
    world.append(write_reply("outlook", f"{world.numbers()['red.jpg']} beer", world.digest_message))
    assert world.flow.poll_replies() == 0
    assert world.files()[0] == "beer/red.jpg" and world.folders()["INBOX"] == 1
    assert world.flow.poll_replies() == 0  # already applied: only the move is finished
    assert world.state._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 1
    assert len(world.smtp.inbox.messages) == 2 and world.folders() == {"INBOX": 0, PROCESSED_FOLDER: 1}


@pytest.mark.parametrize("case", ["stranger", "unknown digest", "auto-reply", "no digest reference"])
def test_mail_that_is_not_a_reply_from_the_person_is_left_unread(world: World, case: str) -> None:
    reply = email.message_from_bytes(write_reply("gmail", f"{world.numbers()['red.jpg']} beer",
                                                 world.digest_message), policy=policy.default)
    if case == "stranger":
        reply.replace_header("From", "Mallory <mallory@example.net>")
    elif case == "unknown digest":
        reply.replace_header("In-Reply-To", "<nope@example.com>")
        reply.replace_header("References", "<nope@example.com>")
        reply.replace_header("Subject", "Re: Photosorter [ps-000000]")
    elif case == "auto-reply":
        reply["Auto-Submitted"] = "auto-replied"
    else:
        del reply["In-Reply-To"], reply["References"]
        reply.replace_header("Subject", "Hello")
    world.append(reply.as_bytes())
    assert world.flow.poll_replies() == 0
    assert world.labels() == {} and world.files()[0] == "food/red.jpg"
    assert world.unseen_in_inbox() == 1 and world.folders()["INBOX"] == 1
    assert len(world.smtp.inbox.messages) == 1


def test_a_recipient_written_with_a_display_name_may_reply(world: World) -> None:
    world.flow.settings = replace(world.flow.settings, recipient="Me Myself <ME@example.com>")
    world.append(write_reply("gmail", f"{world.numbers()['red.jpg']} beer", world.digest_message))
    assert world.flow.poll_replies() == 1


def test_a_forward_with_the_digest_id_in_the_subject_is_applied(world: World) -> None:
    world.append(write_reply("forward", f"{world.numbers()['green.jpg']} people", world.digest_message))
    assert world.flow.poll_replies() == 1
    assert "people/green.jpg" in world.files()


def test_five_hundred_lines_of_garbage_change_nothing_and_are_reported(world: World) -> None:
    garbage = "\n".join(f"{i}) lorem {i * 3} ipsum ::: {i}-{i + 1000}" for i in range(500))
    world.append(write_reply("outlook", garbage, world.digest_message))
    assert world.flow.poll_replies() == 1
    assert world.labels() == {} and world.files()[0] == "food/red.jpg"
    body = confirmation(world)
    assert "Nothing was changed." in body and "more lines not understood" in body
    assert len(body.splitlines()) < 40


def test_a_reply_days_later_after_a_restart_still_matches(world: World, tmp_path: Path) -> None:
    world.flow.ledger.close()
    reopened = SqliteMailLedger(tmp_path / "data" / STATE_FILE)
    world.flow.ledger = reopened
    world.append(write_reply("outlook_html_only", f"{world.numbers()['blue.jpg']} text", world.digest_message))
    assert world.flow.poll_replies() == 1
    assert "text/blue.jpg" in world.files()
    reopened.close()


# replies that must not label what the person did not mean (each through dovecot) ---------------------------
def test_a_number_on_a_line_not_understood_is_not_confirmed_by_all_ok(world: World) -> None:
    red = world.numbers()["red.jpg"]
    world.append(write_reply("gmail", f"{red} food - café photo\nall ok", world.digest_message))
    assert world.flow.poll_replies() == 1
    assert "food/red.jpg" in world.files() and world.label_count() == 2  # green and blue only
    body = confirmation(world)
    assert f"#{red} confirmed" not in body and "café photo" in body


def test_a_long_run_of_digits_labels_nothing(world: World) -> None:
    red = world.numbers()["red.jpg"]
    world.append(write_reply("apple", f"12345678900{red} beer", world.digest_message))  # was split: ...00{red}
    world.flow.poll_replies()
    assert world.labels() == {} and "food/red.jpg" in world.files()


@pytest.mark.parametrize("how", ["html under an hr", "plain text"])
def test_a_digest_pasted_without_quote_markers_is_not_read_as_instructions(world: World, how: str) -> None:
    numbers = world.numbers()
    instruction = f"{numbers['green.jpg']} people"
    if how == "html under an hr":
        html = world.digest_message.get_body(("html",))
        assert html is not None
        reply = MIMEText(f"<html><body><div>{instruction}</div><hr>{html.get_content()}</body></html>",  # type: ignore[attr-defined]
                         "html", "utf-8")
    else:  # copied in, as when threading it into a reply to another digest
        plain = world.digest_message.get_body(("plain",))
        assert plain is not None
        reply = MIMEText(f"{instruction}\n\n{plain.get_content()}", "plain", "utf-8")  # type: ignore[attr-defined]
    reply["Subject"], reply["From"] = f"Re: {world.digest_message['Subject']}", "Me <me@example.com>"
    reply["In-Reply-To"] = str(world.digest_message["Message-ID"])
    reply["Message-ID"] = f"<pasted-{how.replace(' ', '-')}@example.com>"
    world.append(reply.as_bytes())
    assert world.flow.poll_replies() == 1
    assert list(world.labels().values()) == ["people"] and "people/green.jpg" in world.files()


def test_five_megabytes_of_random_text_label_nothing(world: World) -> None:
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + string.punctuation + "     "
    lines = ["".join(rng.choices(alphabet, k=rng.randint(1, 120))) for _ in range(85_000)]
    world.append(write_reply("outlook", "\n".join(lines)[:5_000_000], world.digest_message))
    world.flow.poll_replies()
    assert world.labels() == {}  # was 9 extra labels


def test_the_same_reply_without_a_message_id_delivered_twice_is_applied_once(world: World) -> None:
    reply = email.message_from_bytes(write_reply("gmail", f"{world.numbers()['red.jpg']} beer",
                                                 world.digest_message), policy=policy.default)
    del reply["Message-ID"]
    for relay in ("mx1.example.com", "mx2.example.com"):  # each delivery gets its own server headers
        world.append(f"Received: from {relay} by imap.example.com; Tue, 25 Nov 2026 20:01:00 +0000\r\n"
                     f"Delivered-To: me@example.com\r\n".encode() + reply.as_bytes())
    assert world.flow.poll_replies() == 1
    assert world.label_count() == 1
    assert len(world.smtp.inbox.messages) == 2  # the digest and one confirmation


def test_a_german_gmail_reply_is_read_without_its_quote_header(world: World) -> None:
    plain = world.digest_message.get_body(("plain",))
    assert plain is not None
    quoted = "\n".join("> " + line for line in str(plain.get_content()).splitlines())  # type: ignore[attr-defined]
    reply = MIMEText(f"{world.numbers()['blue.jpg']} text\n\nAm Di., 25. Nov. 2026 um 05:42 Uhr schrieb "
                     f"Photosorter <photos@example.com>:\n\n{quoted}\n", "plain", "utf-8")
    reply["Subject"], reply["From"] = f"Re: {world.digest_message['Subject']}", "Me <me@example.com>"
    reply["In-Reply-To"] = str(world.digest_message["Message-ID"])
    world.append(reply.as_bytes())
    assert world.flow.poll_replies() == 1
    body = confirmation(world)
    assert "Not understood" not in body and "Ignored" not in body and "text/blue.jpg" in world.files()
