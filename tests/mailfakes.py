"""In-memory fakes of the mail ports, and a digest built by the real MailFlow from them."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from photosorter.config import MailSettings, Settings, load_settings
from photosorter.mailflow import MailFlow
from photosorter.records import PhotoRecord, PhotoStatus, SentDigest

ZONE = ZoneInfo("Europe/Berlin")
CATEGORY_CYCLE = ("food", "scenery", "screenshot", "beer", "people", "me", "text")


def mail_settings(**overrides: object) -> Settings:
    base: dict[str, object] = {"mail_from": "Photosorter <photos@example.com>", "mail_to": "me@example.com",
                               "smtp_host": "127.0.0.1", "library": "/nonexistent/library", "settle_seconds": 0}
    base.update(overrides)
    return load_settings(base, environ={}, dotenv_path=Path("/nonexistent/.env"))


class FakeLedger:
    def __init__(self, photos: list[PhotoRecord] | None = None) -> None:
        self.photos = photos or []
        self.digests: list[SentDigest] = []
        self.replies: dict[str, str] = {}
        self.actions: dict[str, dict[int, str]] = {}
        self.marks: dict[tuple[str, int], int] = {}

    def close(self) -> None:
        pass

    def photos_for_digest(self, since: float) -> list[PhotoRecord]:
        return list(self.photos)

    def embeddings_for(self, photo_ids: list[int]) -> dict[int, np.ndarray]:
        return {}

    def last_digest_time(self) -> float | None:
        sent = [d.sent for d in self.digests if d.kind != "skipped"]
        return max(sent) if sent else None

    def has_digest_for_day(self, day: str) -> bool:
        return any(d.day == day and d.kind in ("scheduled", "skipped") for d in self.digests)

    def record_digest(self, digest: SentDigest) -> None:
        self.digests.append(digest)

    def digest_for_message_ids(self, message_ids: list[str]) -> str | None:
        return next((d.digest_id for d in self.digests if d.message_id in message_ids), None)

    def digest_exists(self, digest_id: str) -> bool:
        return any(d.digest_id == digest_id for d in self.digests)

    def digest_items(self, digest_id: str) -> dict[int, tuple[int, str]]:
        digest = next(d for d in self.digests if d.digest_id == digest_id)
        return {n: (p, c) for n, p, c in digest.items}

    def high_water(self, folder: str, uidvalidity: int) -> int:
        return self.marks.get((folder, uidvalidity), 0)

    def set_high_water(self, folder: str, uidvalidity: int, uid: int) -> None:
        self.marks[(folder, uidvalidity)] = max(uid, self.high_water(folder, uidvalidity))

    def reply_state(self, key: str) -> str | None:
        return self.replies.get(key)

    def start_reply(self, key: str, digest_id: str) -> None:
        self.replies.setdefault(key, "applying")

    def set_reply_state(self, key: str, state: str) -> None:
        self.replies[key] = state

    def done_actions(self, key: str) -> dict[int, str]:
        return dict(self.actions.get(key, {}))

    def record_action(self, key: str, number: int, photo_id: int, category: str, summary: str) -> None:
        self.actions.setdefault(key, {})[number] = summary


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


def sorted_photos(count: int) -> list[PhotoRecord]:
    """``count`` photos as a sort run leaves them: some unsure, the rest placed, with varied margins."""
    photos = []
    for i in range(count):
        category = CATEGORY_CYCLE[i % len(CATEGORY_CYCLE)]
        unsure = i % 4 == 0
        folder = "_unsure" if unsure else category
        photos.append(PhotoRecord(id=100 + i, sha256=f"{i:064x}", source_path=f"/inbox/IMG_{i:04d}.jpg",
                                  library_path=f"{folder}/IMG_{i:04d}.jpg", category=category,
                                  score=0.4 + (i % 7) / 12, margin=(i % 9) / 20,
                                  status=PhotoStatus.UNSURE if unsure else PhotoStatus.PLACED))
    return photos


def digest_flow(count: int, settings: Settings | None = None) -> tuple[MailFlow, FakeLedger, FakeMailer]:
    settings = settings or mail_settings()
    ledger, mailer = FakeLedger(sorted_photos(count)), FakeMailer()
    ids = iter(f"ps-{i:06x}" for i in range(1, 1_000_000))
    flow = MailFlow(settings=settings.mail, categories=settings.classify.categories, library=settings.library.path,
                    ledger=ledger, mailer=mailer, inbox=None, zone=ZONE, new_id=lambda: next(ids))
    return flow, ledger, mailer


def sent_digest(count: int) -> tuple[EmailMessage, dict[int, tuple[int, str]], MailSettings]:
    flow, ledger, mailer = digest_flow(count)
    flow.send_digest(dt.datetime(2026, 11, 25, 20, 0, tzinfo=ZONE))
    digest = ledger.digests[-1]
    return mailer.sent[-1], {n: (p, c) for n, p, c in digest.items}, flow.settings
