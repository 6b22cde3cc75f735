"""``digest`` and ``replies``: the daily digest and email corrections, and how the mail workflow is assembled."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from photosorter.cli.commands import Options, described
from photosorter.config import STATE_FILE, Settings
from photosorter.errors import ConfigError, PhotosorterError

if TYPE_CHECKING:  # the mail stack and the models are imported when a command runs, so --help stays quick
    from photosorter.mailflow import MailFlow
    from photosorter.ports import Labeller

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 300.0
IDLE_S = 240.0  # re-issue IDLE well within the 29 minutes RFC 2177 allows, and notice a stop
IDLE_RETRY_S = 60.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], options: Options) -> None:
    digest = commands.add_parser("digest", parents=options.everything, **described("digest"))
    how = digest.add_mutually_exclusive_group(required=True)
    how.add_argument("--send-now", action="store_true", help="send a digest of everything since the last one")
    how.add_argument("--dry-run", action="store_true",
                     help="write the digest as an HTML page and an .eml file, send nothing (needs no mail settings)")
    digest.add_argument("--out", type=Path, metavar="DIR", help="folder for --dry-run (default: <data>/digests)")
    digest.set_defaults(handler=run_digest)
    replies = commands.add_parser("replies", parents=options.everything, **described("replies"))
    replies.add_argument("--once", action="store_true", help="read the reply folder once and exit")
    replies.set_defaults(handler=run_replies, check=check_replies)


def build_mail(settings: Settings, *, zone: ZoneInfo, labeller: Labeller | None = None,
               attention: Callable[[], list[str]] = list, tls_context: ssl.SSLContext | None = None) -> MailFlow:
    """The mail workflow for these settings: SMTP when ``smtp_host`` is set, IMAP when ``imap_host`` is."""
    from photosorter.adapters.images import decode_image
    from photosorter.adapters.imap import ImapInbox
    from photosorter.adapters.mailstate import SqliteMailLedger
    from photosorter.adapters.smtp import SmtpMailer
    from photosorter.mailflow import MailFlow

    mail = settings.mail
    return MailFlow(
        settings=mail, categories=settings.classify.categories, library=settings.library.path,
        ledger=SqliteMailLedger(settings.library.data / STATE_FILE),
        mailer=SmtpMailer(mail, tls_context=tls_context) if mail.smtp_host else None,
        inbox=ImapInbox(mail, ssl_context=tls_context) if mail.imap_host else None,
        zone=zone, decoder=decode_image, labeller=labeller, attention=attention)


def watch_replies(settings: Settings, wake: Callable[[], None], stop: threading.Event, *,
                  tls_context: ssl.SSLContext | None = None, idle_s: float = IDLE_S) -> threading.Thread:
    """Wait for new mail with IMAP IDLE on a connection of its own and call ``wake`` when some arrives, so
    a reply is applied within seconds; the daemon's five-minute poll stays as the fallback (and is all
    there is on a server without IDLE). Connection trouble is logged once and retried with backoff."""
    from photosorter.adapters.imap import ImapInbox

    def loop() -> None:
        inbox = ImapInbox(settings.mail, ssl_context=tls_context)
        failures, reported, connected = 0, "", False
        while not stop.is_set():
            try:
                if not connected:
                    inbox.open()
                    connected = True
                if inbox.wait_for_mail(idle_s):
                    log.info("IMAP: new mail; reading replies now")
                    wake()
                failures, reported = 0, ""
            except Exception as exc:  # whatever breaks, the five-minute poll goes on; retry IDLE later
                failures += 1
                why = exc.message if isinstance(exc, PhotosorterError) else f"unexpected {exc.__class__.__name__}"
                if why != reported:
                    log.warning("IMAP IDLE: %s; falling back to polling for now", why)
                    reported = why
                inbox.close()
                connected = False
                stop.wait(min(IDLE_RETRY_S * 2 ** (failures - 1), 3600.0))
        inbox.close()

    thread = threading.Thread(target=loop, name="imap-idle", daemon=True)
    thread.start()
    return thread


def _zone() -> ZoneInfo:
    from photosorter.cli.run import local_zone

    return local_zone()


def run_digest(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import open_state

    state = open_state(settings)  # creates the state database (and its photo tables) on a first run
    zone = _zone()
    now = dt.datetime.now(zone)
    attention = state.saved_attention(now)  # what the running daemon sees failing (iCloud login, drift)
    state.close()
    flow = build_mail(settings, zone=zone, attention=lambda: attention)
    try:
        if args.dry_run:
            eml, page = flow.write_digest(now, args.out or settings.library.data / "digests")
            print(f"digest written to {page} (open it in a browser) and {eml} (as it would be mailed)")
            return 0
        if not settings.mail.smtp_host:
            raise ConfigError(["smtp_host: set an SMTP server to send the digest"])
        flow.send_digest(now, kind="manual")
        print(f"digest sent to {settings.mail.recipient}")
        return 0
    finally:
        flow.close()


def check_replies(args: argparse.Namespace, settings: Settings) -> None:
    """Before any lock (which would make the library): replies need an IMAP server."""
    if not settings.mail.imap_host:
        raise ConfigError(["imap_host: set an IMAP server to read replies from"])


def run_replies(args: argparse.Namespace, settings: Settings) -> int:
    from photosorter.cli.build import build_sorter, open_state

    state = open_state(settings)
    sorter = build_sorter(settings, state)
    flow = build_mail(settings, zone=_zone(), labeller=sorter)
    try:
        while True:
            applied = flow.poll_replies()
            if args.once:
                print(f"applied {applied} replies")
                return 0
            flow.wait_for_replies(WATCH_INTERVAL_S)
    finally:
        flow.close()
        state.close()
