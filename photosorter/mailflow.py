"""The daily digest and email corrections: build the digest from the state, send and record it, read
replies, apply them once, confirm. Orchestration only; SMTP, IMAP and SQLite come in through ports.

Entry points for the daemon (``ports.MailWork``): ``send_digest_if_due(now)`` and ``poll_replies()``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image

from photosorter.config import MailSettings
from photosorter.core.digest import (
    Digest,
    DigestPhoto,
    digest_subject,
    find_digest_id,
    number_photos,
    pick_for_review,
    render_confirmation,
    render_html,
    render_text,
    review_pool,
)
from photosorter.core.replies import parse_reply
from photosorter.core.reply_text import read_reply_text
from photosorter.core.schedule import parse_clock
from photosorter.errors import ConfigError, ImageError, PhotosorterError, SinkError
from photosorter.ports import Decoder, Labeller, Mailer, MailLedger, ReplyInbox
from photosorter.records import Category, Failure, InboxMessage, PhotoStatus, SentDigest

log = logging.getLogger(__name__)

THUMB_PX = 256
THUMB_QUALITY = 70
MAX_THUMBS_BYTES = 3_000_000  # all inline thumbnails of one digest together
MAX_REPLY_BYTES = 30_000_000  # a reply quoting the digest's thumbnails can be large; past this it is ignored
EMAIL_SOURCE = "email"


@dataclass(frozen=True)
class BuiltDigest:
    digest: Digest
    message: EmailMessage
    record: SentDigest


def _address(value: str) -> str:
    pairs = getaddresses([value or ""])
    return pairs[0][1].strip().lower() if pairs and pairs[0][1] else ""


class MailFlow:
    def __init__(self, *, settings: MailSettings, categories: tuple[Category, ...], library: Path,
                 ledger: MailLedger, mailer: Mailer | None, inbox: ReplyInbox | None, zone: ZoneInfo,
                 decoder: Decoder | None = None, labeller: Labeller | None = None,
                 attention: Callable[[], list[str]] = list, wall: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = lambda: "ps-" + secrets.token_hex(3)) -> None:
        self.settings = settings
        self.categories = categories
        self.library = library
        self.ledger = ledger
        self.mailer = mailer
        self.inbox = inbox
        self.zone = zone
        self.decoder = decoder
        self.labeller = labeller
        self.attention = attention
        self.wall = wall
        self.new_id = new_id

    # the digest -------------------------------------------------------------------------------------
    def send_digest_if_due(self, now: dt.datetime) -> bool:
        """Send today's digest when its local time has come and it has not gone out (or been skipped)."""
        if not self.settings.digest_enabled or self.mailer is None:
            return False
        local = (now if now.tzinfo else now.replace(tzinfo=self.zone)).astimezone(self.zone)
        due = dt.datetime.combine(local.date(), parse_clock(self.settings.digest_time), tzinfo=self.zone)
        if local < due or self.ledger.has_digest_for_day(local.date().isoformat()):
            return False
        return self.send_digest(local, kind="scheduled")

    def send_digest(self, now: dt.datetime, *, kind: str = "manual") -> bool:
        """Build and send a digest now; a scheduled one with nothing to tell is skipped (and recorded)."""
        if self.mailer is None:
            raise ConfigError(["smtp_host: set an SMTP server to send the digest"])
        if not self.settings.recipient:
            raise ConfigError(["mail_to: set the address the digest goes to"])
        built = self.build_digest(now, kind=kind)
        if built.digest.empty and kind == "scheduled" and not self.settings.digest_when_empty:
            self.ledger.record_digest(SentDigest(built.record.digest_id, None, built.record.sent, built.record.day,
                                                 "skipped"))
            log.info("no digest today: nothing was sorted")
            return False
        self.mailer.send(built.message)
        self.ledger.record_digest(built.record)
        log.info("digest %s sent: %d photos, %d to check", built.digest.digest_id, built.digest.total,
                 len(built.digest.entries))
        return True

    def write_digest(self, now: dt.datetime, folder: Path) -> tuple[Path, Path]:
        """``--dry-run``: the digest as an .eml file and as an .html page to open in a browser (thumbnails
        inline) in ``folder``; nothing is sent or recorded, and no mail setting is needed."""
        built = self.build_digest(now, kind="manual")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"digest-{built.digest.digest_id}.eml"
        path.write_bytes(built.message.as_bytes())
        page = path.with_suffix(".html")
        page.write_text(standalone_html(built.message), encoding="utf-8")
        return path, page

    def build_digest(self, now: dt.datetime, *, kind: str) -> BuiltDigest:
        window_end = self.wall()
        since = self.ledger.last_digest_time() or 0.0
        photos = self.ledger.photos_for_digest(since)
        counts: dict[str, int] = {}
        review: list[DigestPhoto] = []
        failures: list[Failure] = []
        paths: dict[int, Path] = {}
        for record in photos:
            folder = {PhotoStatus.UNSURE: "_unsure", PhotoStatus.FAILED: "_failed",
                      PhotoStatus.DUPLICATE: "_duplicates"}.get(record.status, record.category or "other")
            counts[folder] = counts.get(folder, 0) + 1
            name = (record.library_path or "").rsplit("/", 1)[-1]
            if record.status is PhotoStatus.FAILED:
                failures.append(Failure(name, record.reason or "unreadable"))
            elif record.status in (PhotoStatus.PLACED, PhotoStatus.UNSURE) and record.category:
                review.append(DigestPhoto(record.id, name, record.category, record.score or 0.0,
                                          record.margin or 0.0, record.status is PhotoStatus.UNSURE))
                paths[record.id] = self.library / (record.library_path or "")
        pool = review_pool(review)
        vectors = self.ledger.embeddings_for([p.photo_id for p in pool]) if pool else {}
        picked = pick_for_review(pool, vectors=vectors or None)
        domain = _address(self.settings.sender).partition("@")[2] or "photosorter.local"
        thumbs, cids = self._thumbnails([paths[p.photo_id] for p in picked], domain)
        local = now.astimezone(self.zone)
        digest = Digest(self.new_id(), local.date(), number_photos(picked, cids), self.categories, counts,
                        tuple(failures), tuple(self.attention()), more=len(review) - len(picked))
        message = EmailMessage()
        message["Subject"] = digest_subject(digest)
        message["From"] = self.settings.sender or self.settings.recipient or f"photosorter@{domain}"
        message["To"] = self.settings.recipient or "undisclosed-recipients:;"  # a dry run needs no mail_to
        message["Date"] = format_datetime(local)
        message["Message-ID"] = make_msgid("digest", domain=domain)
        message["Auto-Submitted"] = "auto-generated"
        message["X-Photosorter-Digest"] = digest.digest_id
        message.set_content(render_text(digest))
        message.add_alternative(render_html(digest), subtype="html")
        html_part = message.get_payload()[1]  # type: ignore[index]
        assert isinstance(html_part, EmailMessage)
        for entry, data in zip(digest.entries, thumbs, strict=True):
            if data is not None and entry.image_cid:
                html_part.add_related(data, maintype="image", subtype="jpeg", cid=f"<{entry.image_cid}>",
                                      filename=f"{entry.number}.jpg", disposition="inline")
        items = tuple((e.number, e.photo.photo_id, e.photo.category) for e in digest.entries)
        sent = SentDigest(digest.digest_id, str(message["Message-ID"]), window_end, local.date().isoformat(), kind,
                          items)
        return BuiltDigest(digest, message, sent)

    def _thumbnails(self, paths: list[Path], domain: str) -> tuple[list[bytes | None], list[str | None]]:
        """Small JPEGs for the photos in order, until their total would pass ``MAX_THUMBS_BYTES``."""
        thumbs: list[bytes | None] = []
        cids: list[str | None] = []
        total = 0
        for path in paths:
            data = self._thumbnail(path) if total < MAX_THUMBS_BYTES else None
            if data is not None and total + len(data) > MAX_THUMBS_BYTES:
                data = None
            total += len(data or b"")
            thumbs.append(data)
            cids.append(make_msgid("thumb", domain=domain)[1:-1] if data is not None else None)
        return thumbs, cids

    def _thumbnail(self, path: Path) -> bytes | None:
        if self.decoder is None:
            return None
        try:
            image = self.decoder(path.read_bytes(), THUMB_PX)
            image.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.BILINEAR)
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=THUMB_QUALITY, optimize=True)
        except (OSError, ImageError, ValueError) as exc:
            log.debug("no thumbnail for %s: %s", path.name, exc)
            return None
        return buffer.getvalue()

    # replies ----------------------------------------------------------------------------------------
    def wait_for_replies(self, timeout_s: float) -> bool:
        """Block until new mail may be in the reply folder (IMAP IDLE) or ``timeout_s`` passes."""
        if self.inbox is None:
            time.sleep(timeout_s)
            return False
        self.inbox.open()
        try:
            return self.inbox.wait_for_mail(timeout_s)
        finally:
            self.inbox.close()

    def close(self) -> None:
        self.ledger.close()

    def poll_replies(self) -> int:
        """Read the reply folder once and apply every new reply to a digest; returns how many were applied."""
        if self.inbox is None:
            return 0
        uidvalidity = self.inbox.open()
        applied = 0
        try:
            folder = self.settings.imap_folder
            advance = True
            for message in self.inbox.list_messages(self.ledger.high_water(folder, uidvalidity)):
                outcome = self._handle(message)
                applied += outcome == "applied"
                if outcome == "retry":
                    advance = False
                elif advance:
                    self.ledger.set_high_water(folder, uidvalidity, message.uid)
        finally:
            self.inbox.close()
        return applied

    def _handle(self, message: InboxMessage) -> str:
        """'ignored', 'applied', 'done' (already applied before) or 'retry'."""
        assert self.inbox is not None
        headers = BytesHeaderParser(policy=policy.default).parsebytes(message.headers)
        digest_id, why = self._match(headers)
        if digest_id is None:
            log.info("left message %d alone: %s", message.uid, why)
            return "ignored"
        if message.size > MAX_REPLY_BYTES:
            log.warning("left reply %d alone: %d bytes is too large to be a reply", message.uid, message.size)
            return "ignored"
        key = str(headers.get("Message-ID", "")).strip()
        try:
            raw = self.inbox.fetch_message(message.uid)
            key = key or content_key(raw)
            state = self.ledger.reply_state(key)
            if state != "done":
                self._apply(key, digest_id, raw, headers, state)
            self.inbox.mark_processed(message.uid)
        except PhotosorterError as exc:
            log.warning("reply %d to digest %s not finished, will retry: %s", message.uid, digest_id, exc.message)
            return "retry"
        return "applied" if state != "done" else "done"

    def _match(self, headers: EmailMessage) -> tuple[str | None, str]:
        """The digest a message replies to, or None and why it is left alone."""
        auto = str(headers.get("Auto-Submitted", "no")).strip().lower()
        if auto != "no" or headers.get("X-Autoreply") or headers.get("X-Autorespond") or \
                str(headers.get("Precedence", "")).lower() in ("bulk", "junk", "auto_reply", "list"):
            return None, "an automatic message"
        sender = _address(str(headers.get("From", "")))
        if not sender or sender not in {_address(a) for a in self.settings.allowed_senders}:
            return None, "not from an allowed sender"
        referenced = f"{headers.get('In-Reply-To', '')} {headers.get('References', '')}".split()
        digest_id = self.ledger.digest_for_message_ids([r for r in referenced if r.startswith("<")])
        if digest_id is None:
            token = find_digest_id(str(headers.get("Subject", "")))
            digest_id = token if token and self.ledger.digest_exists(token) else None
        if digest_id is None:
            return None, "not a reply to a digest"
        return digest_id, ""

    def _apply(self, key: str, digest_id: str, raw: bytes, headers: EmailMessage, state: str | None) -> None:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        items = self.ledger.digest_items(digest_id)
        plan = parse_reply(reply_text(message), items.keys(), self.categories)
        problems = list(plan.problems)
        if state is None:
            self.ledger.start_reply(key, digest_id)
        if state != "applied":
            done = self.ledger.done_actions(key)
            wanted = {**{n: items[n][1] for n in plan.confirmed}, **plan.labels}
            for number in sorted(wanted):
                if number in done:
                    continue
                summary = self._label(key, number, items[number], wanted[number])
                if summary.startswith("!"):
                    problems.append(summary[1:])
            self.ledger.set_reply_state(key, "applied")
        applied = list(self.ledger.done_actions(key).values())
        log.info("reply to digest %s applied: %d changes, %d lines not understood", digest_id, len(applied),
                 len(problems))
        if self.mailer is not None:
            self.mailer.send(self._confirmation(message, applied, problems, list(plan.ignored)))
        self.ledger.set_reply_state(key, "done")

    def _label(self, key: str, number: int, item: tuple[int, str], category: str) -> str:
        """Label one photo and record it; returns the line for the confirmation ('!' + why when it failed)."""
        if self.labeller is None:
            raise SinkError("replies need the sorter to apply labels", retryable=False)
        photo_id, shown = item
        try:
            path = self.labeller.label_photo(photo_id, category, source=EMAIL_SOURCE, detail=key)
        except ConfigError as exc:
            return f"!#{number}: {'; '.join(exc.problems)}"
        if path is None:
            return f"!#{number}: the photo could not be read any more, nothing changed"
        where = path.relative_to(self.library).as_posix() if path.is_relative_to(self.library) else path.name
        summary = (f"#{number} confirmed as {category}" if category == shown
                   else f"#{number} {shown} -> {category}") + f" ({where})"
        self.ledger.record_action(key, number, photo_id, category, summary)
        return summary

    def _confirmation(self, reply: EmailMessage, applied: list[str], problems: list[str],
                      ignored: list[str]) -> EmailMessage:
        message = EmailMessage()
        subject = str(reply.get("Subject", "Photosorter digest"))
        message["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        message["From"] = self.settings.sender or self.settings.recipient
        message["To"] = str(reply.get("Reply-To") or reply.get("From"))
        message["Date"] = format_datetime(dt.datetime.now(self.zone))
        domain = _address(self.settings.sender).partition("@")[2] or "photosorter.local"
        message["Message-ID"] = make_msgid("confirm", domain=domain)
        if reply.get("Message-ID"):
            message["In-Reply-To"] = str(reply["Message-ID"])
            message["References"] = f"{reply.get('References', '')} {reply['Message-ID']}".strip()
        message["Auto-Submitted"] = "auto-replied"
        message.set_content(render_confirmation(applied, problems, ignored))
        return message


SENDER_HEADERS = ("From", "To", "Cc", "Date", "Subject", "In-Reply-To", "References")


def content_key(raw: bytes) -> str:
    """The key of a reply without a Message-ID: what the sender wrote (their client's headers and the
    body), never the headers servers add on the way (Received, Delivered-To, Return-Path, X-…), which
    differ between two deliveries of the same mail."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head + b"\n\n")
    digest = hashlib.sha256()
    for name in SENDER_HEADERS:
        for value in headers.get_all(name) or []:
            digest.update(f"{name}: {' '.join(str(value).split())}\n".encode("utf-8", "replace"))
    digest.update(b"\n" + body.rstrip(b"\n"))
    return "sha256:" + digest.hexdigest()


def reply_text(message: EmailMessage) -> str:
    """What the person wrote in a reply: its top, without quotes, quote headers and signatures."""
    return read_reply_text(*_bodies(message))


def _bodies(message: EmailMessage) -> tuple[str | None, str | None]:
    """The text/plain and text/html bodies of a reply (decoded, any charset), ignoring attachments."""
    plain = html = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind not in ("text/plain", "text/html"):
            continue
        try:
            text = part.get_content()
        except (LookupError, UnicodeDecodeError, ValueError):
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if kind == "text/plain" and plain is None:
            plain = str(text)
        elif kind == "text/html" and html is None:
            html = str(text)
    return plain, html


def standalone_html(message: EmailMessage) -> str:
    """The digest's HTML part with its inline thumbnails (``cid:`` references) turned into data URLs."""
    html_part = message.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    html = str(html_part.get_content())
    for part in message.walk():
        cid = str(part.get("Content-ID", "")).strip("<>")
        if cid and part.get_content_maintype() == "image":
            data = base64.b64encode(part.get_payload(decode=True) or b"").decode("ascii")  # type: ignore[arg-type]
            html = html.replace(f"cid:{cid}", f"data:{part.get_content_type()};base64,{data}")
    return html
