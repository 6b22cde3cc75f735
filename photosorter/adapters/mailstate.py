"""The mail ledger in the state database (its own tables, its own connection to the same SQLite file):
digests sent with their number -> photo mapping, and replies applied, so that a reply is matched days
later and never applied twice (restart mid-way, duplicate delivery)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from photosorter.adapters.sqlite import connect, transaction
from photosorter.adapters.vectors import EMBEDDING_COLUMNS, EMBEDDING_SCHEMA, decode
from photosorter.errors import StateError
from photosorter.records import PhotoRecord, PhotoStatus, SentDigest

SCHEMA = """
CREATE TABLE IF NOT EXISTS mail_digests (
    id TEXT PRIMARY KEY,
    message_id TEXT UNIQUE,
    sent REAL NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mail_digests_day ON mail_digests(day, kind);
CREATE TABLE IF NOT EXISTS mail_digest_items (
    digest_id TEXT NOT NULL REFERENCES mail_digests(id),
    number INTEGER NOT NULL,
    photo_id INTEGER NOT NULL,
    category TEXT NOT NULL,
    PRIMARY KEY (digest_id, number)
);
CREATE TABLE IF NOT EXISTS mail_replies (
    key TEXT PRIMARY KEY,
    digest_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mail_reply_actions (
    key TEXT NOT NULL REFERENCES mail_replies(key),
    number INTEGER NOT NULL,
    photo_id INTEGER NOT NULL,
    category TEXT NOT NULL,
    summary TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (key, number)
);
CREATE TABLE IF NOT EXISTS mail_folders (
    folder TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    high_water INTEGER NOT NULL,
    PRIMARY KEY (folder, uidvalidity)
);
"""

_PHOTO_COLUMNS = ("p.id, p.sha256, p.source_path, p.library_path, p.category, p.score, p.margin, p.status, "
                  "p.reason, p.duplicate_of, p.near_group")


class SqliteMailLedger:
    def __init__(self, path: Path) -> None:
        self._db = connect(path, SCHEMA + EMBEDDING_SCHEMA, "the mail ledger", added_columns=EMBEDDING_COLUMNS)

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, "mail ledger")

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:  # type: ignore[type-arg]
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"mail ledger error: {exc}") from exc

    # digests ------------------------------------------------------------------------------------------
    def photos_for_digest(self, since: float) -> list[PhotoRecord]:
        """Photos sorted (or set aside) since ``since`` that nobody has labelled yet."""
        rows = self._rows(
            f"SELECT {_PHOTO_COLUMNS} FROM photos p WHERE p.updated >= ? AND p.library_path IS NOT NULL "
            "AND p.status IN ('placed', 'unsure', 'failed', 'duplicate') "
            "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.photo_id = p.id) ORDER BY p.id", (since,))
        return [PhotoRecord(id=r[0], sha256=r[1], source_path=r[2], library_path=r[3], category=r[4], score=r[5],
                            margin=r[6], status=PhotoStatus(r[7]), reason=r[8], duplicate_of=r[9], near_group=r[10])
                for r in rows]

    def embeddings_for(self, photo_ids: list[int]) -> dict[int, np.ndarray]:
        """Each photo's latest stored embedding (for asking about the photos that teach the most)."""
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(photo_ids), 500):
            chunk = photo_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for photo_id, vector, scale in self._rows(f"SELECT photo_id, vector, scale FROM embeddings WHERE photo_id "
                                                      f"IN ({marks}) ORDER BY rowid", tuple(chunk)):
                found[int(photo_id)] = decode(vector, scale)
        return found

    def last_digest_time(self) -> float | None:
        rows = self._rows("SELECT MAX(sent) FROM mail_digests WHERE kind != 'skipped'")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def has_digest_for_day(self, day: str) -> bool:
        return bool(self._rows("SELECT 1 FROM mail_digests WHERE day = ? AND kind IN ('scheduled', 'skipped')",
                               (day,)))

    def record_digest(self, digest: SentDigest) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO mail_digests (id, message_id, sent, day, kind) VALUES (?,?,?,?,?)",
                       (digest.digest_id, digest.message_id, digest.sent, digest.day, digest.kind))
            db.executemany("INSERT INTO mail_digest_items (digest_id, number, photo_id, category) VALUES (?,?,?,?)",
                           [(digest.digest_id, n, p, c) for n, p, c in digest.items])

    def digest_for_message_ids(self, message_ids: list[str]) -> str | None:
        for message_id in message_ids:
            rows = self._rows("SELECT id FROM mail_digests WHERE message_id = ?", (message_id,))
            if rows:
                return str(rows[0][0])
        return None

    def digest_exists(self, digest_id: str) -> bool:
        return bool(self._rows("SELECT 1 FROM mail_digests WHERE id = ? AND kind != 'skipped'", (digest_id,)))

    def digest_items(self, digest_id: str) -> dict[int, tuple[int, str]]:
        rows = self._rows("SELECT number, photo_id, category FROM mail_digest_items WHERE digest_id = ?",
                          (digest_id,))
        return {int(n): (int(p), str(c)) for n, p, c in rows}

    # replies ------------------------------------------------------------------------------------------
    def high_water(self, folder: str, uidvalidity: int) -> int:
        rows = self._rows("SELECT high_water FROM mail_folders WHERE folder = ? AND uidvalidity = ?",
                          (folder, uidvalidity))
        return int(rows[0][0]) if rows else 0

    def set_high_water(self, folder: str, uidvalidity: int, uid: int) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO mail_folders (folder, uidvalidity, high_water) VALUES (?,?,?) "
                       "ON CONFLICT (folder, uidvalidity) DO UPDATE SET high_water = MAX(high_water, excluded."
                       "high_water)", (folder, uidvalidity, uid))

    def reply_state(self, key: str) -> str | None:
        rows = self._rows("SELECT state FROM mail_replies WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def start_reply(self, key: str, digest_id: str) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO mail_replies (key, digest_id, state, created, updated) "
                       "VALUES (?,?,?,?,?)", (key, digest_id, "applying", now, now))

    def set_reply_state(self, key: str, state: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE mail_replies SET state = ?, updated = ? WHERE key = ?", (state, time.time(), key))

    def done_actions(self, key: str) -> dict[int, str]:
        rows = self._rows("SELECT number, summary FROM mail_reply_actions WHERE key = ? ORDER BY number", (key,))
        return {int(n): str(s) for n, s in rows}

    def record_action(self, key: str, number: int, photo_id: int, category: str, summary: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO mail_reply_actions (key, number, photo_id, category, summary, "
                       "created) VALUES (?,?,?,?,?,?)", (key, number, photo_id, category, summary, time.time()))
