"""SQLite (WAL) state: photos, embeddings, labels, the move journal and run history."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from contextlib import AbstractContextManager, suppress
from pathlib import Path

import numpy as np

from photosorter.adapters.sqlite import back_up, check_database, connect, transaction
from photosorter.adapters.state.faces import FACE_SCHEMA, FaceRows
from photosorter.adapters.vectors import (
    EMBEDDING_COLUMNS,
    EMBEDDING_SCHEMA,
    EmbeddingRows,
    save_embedding,
    upgrade,
)
from photosorter.core.naming import printable
from photosorter.errors import StateError
from photosorter.records import Move, PhotoRecord, PhotoStatus, Prediction, RunReport

SCHEMA = """
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    source_path TEXT NOT NULL,
    library_path TEXT,
    category TEXT,
    score REAL,
    margin REAL,
    status TEXT NOT NULL,
    reason TEXT,
    duplicate_of INTEGER REFERENCES photos(id),
    dhash INTEGER,
    near_group INTEGER,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_sha ON photos(sha256);
CREATE INDEX IF NOT EXISTS photos_library ON photos(library_path);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id),
    category TEXT NOT NULL,
    source TEXT NOT NULL,
    detail TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_photo ON labels(photo_id);
CREATE TABLE IF NOT EXISTS moves (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER REFERENCES photos(id),
    src BLOB NOT NULL,
    dst BLOB NOT NULL,
    library_path TEXT,
    status_after TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    follows INTEGER,
    created REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS moves_pending ON moves(state) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    model TEXT,
    started REAL NOT NULL,
    finished REAL,
    placed INTEGER, unsure INTEGER, duplicates INTEGER, failed INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS source_marks (sha256 TEXT NOT NULL, mark TEXT NOT NULL, PRIMARY KEY (sha256, mark))
    WITHOUT ROWID;
"""

SCHEMA_VERSION = 1  # PRAGMA user_version: 1 = embeddings stored as int8 (adapters/vectors.py)
_PHOTO_COLUMNS = ("id, sha256, source_path, library_path, category, score, margin, status, reason, "
                  "duplicate_of, near_group")


def _signed(value: int) -> int:
    """SQLite integers are signed 64-bit; store an unsigned 64-bit hash in that range."""
    return value - (1 << 64) if value >= (1 << 63) else value


def _unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def display_path(path: Path | str) -> str:
    """A path as one line of text, whatever bytes its name holds (the same form the pipeline logs)."""
    return printable(os.fsencode(path))


class SqliteState(EmbeddingRows, FaceRows):
    def __init__(self, path: Path, *, writer: bool = True) -> None:
        """``writer`` (every command that changes the library, and the daemon) checks the file at start and
        makes the daily backup; a reader (``status``) does neither: it holds no lock, so it must never set
        aside or back up a database a running daemon is writing, and the check costs ~0.3 s at 100k photos."""
        if writer:
            check_database(path, "the state database")
        elif path.is_file() and path.stat().st_size == 0:  # opening it would write an empty schema over it
            raise StateError(f"the state database {path} is empty (0 bytes): the next sort, label or the daemon "
                             "restores it from its backup")
        self._db = connect(path, SCHEMA + EMBEDDING_SCHEMA + FACE_SCHEMA, "the state database", foreign_keys=True,
                           added_columns=(("moves", "follows", "INTEGER"), ("labels", "guess", "TEXT"),
                                          *EMBEDDING_COLUMNS))
        self.path = path
        self._counted: dict[object, tuple[tuple[int, int], object]] = {}  # see _unchanged
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if writer and version < SCHEMA_VERSION and upgrade(self._db, path):  # float32 rows an older version wrote
            with suppress(sqlite3.Error):  # a full disk: the next start looks again (no rows left: quick)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        if writer and self._db.execute("SELECT EXISTS (SELECT 1 FROM photos)").fetchone()[0]:
            back_up(self._db, path)  # once a day; three kept

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, "state database")

    # photos ---------------------------------------------------------------------------------------
    def add_photo(self, sha256: str, size: int, source_path: Path, status: PhotoStatus = PhotoStatus.NEW) -> int:
        now = time.time()
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO photos (sha256, size, source_path, status, created, updated) VALUES (?,?,?,?,?,?)",
                (sha256, size, display_path(source_path), status.value, now, now))
            return int(cursor.lastrowid or 0)

    def photos_with_sha(self, sha256: str) -> list[PhotoRecord]:
        rows = self._db.execute(f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE sha256=? ORDER BY id", (sha256,))
        return [self._photo(row) for row in rows]

    def photo(self, photo_id: int) -> PhotoRecord | None:
        row = self._db.execute(f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE id=?", (photo_id,)).fetchone()
        return self._photo(row) if row else None

    def photo_at(self, library_path: str) -> PhotoRecord | None:
        row = self._db.execute(f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE library_path=? ORDER BY id DESC",
                               (library_path,)).fetchone()
        return self._photo(row) if row else None

    @staticmethod
    def _photo(row: tuple) -> PhotoRecord:  # type: ignore[type-arg]
        return PhotoRecord(id=row[0], sha256=row[1], source_path=row[2], library_path=row[3], category=row[4],
                           score=row[5], margin=row[6], status=PhotoStatus(row[7]), reason=row[8],
                           duplicate_of=row[9], near_group=row[10])

    def record_outcome(self, photo_id: int, *, category: str | None = None, score: float | None = None,
                       margin: float | None = None, reason: str | None = None,
                       duplicate_of: int | None = None) -> None:
        """Remember what was decided for a photo (before it moves)."""
        with self._tx() as db:
            db.execute("UPDATE photos SET category=?, score=?, margin=?, reason=?, duplicate_of=?, updated=? "
                       "WHERE id=?", (category, score, margin, reason, duplicate_of, time.time(), photo_id))

    def save_analysis(self, photo_id: int, model: str, vector: np.ndarray, dhash: int, near_group: int,
                      prediction: Prediction | None = None) -> None:
        """Store a photo's embedding, perceptual hash and group, and what it was classified as."""
        with self._tx() as db:
            save_embedding(db, photo_id, model, vector)
            db.execute("UPDATE photos SET dhash=?, near_group=? WHERE id=?", (_signed(dhash), near_group, photo_id))
            if prediction is not None:
                db.execute("UPDATE photos SET category=?, score=?, margin=?, updated=? WHERE id=?",
                           (prediction.category, prediction.score, prediction.margin, time.time(), photo_id))

    def perceptual_hashes(self) -> tuple[list[int], list[int], np.ndarray]:
        """(photo ids, their near-duplicate groups, uint64 hashes) of every analysed photo."""
        rows = self._db.execute("SELECT id, near_group, dhash FROM photos WHERE dhash IS NOT NULL ORDER BY id")
        ids, groups, hashes = [], [], []
        for photo_id, group, value in rows:
            ids.append(photo_id)
            groups.append(group)
            hashes.append(_unsigned(value))
        return ids, groups, np.asarray(hashes, dtype=np.uint64)

    # labels ---------------------------------------------------------------------------------------
    def add_label(self, photo_id: int, category: str, source: str, detail: str = "", guess: str | None = None) -> None:
        """Record a label (and what the photo was filed as before: the corrections rate); the same label
        from the same place again (an email reply applied a second time after a crash) adds nothing."""
        with self._tx() as db:
            latest = db.execute("SELECT category, source, detail FROM labels WHERE photo_id=? ORDER BY id DESC "
                                "LIMIT 1", (photo_id,)).fetchone()
            if latest == (category, source, detail):
                return
            db.execute("INSERT INTO labels (photo_id, category, source, detail, created, guess) VALUES (?,?,?,?,?,?)",
                       (photo_id, category, source, detail, time.time(), guess))

    def remove_label(self, photo_id: int, source: str, detail: str) -> bool:
        """Take back the photo's latest label when it is the one from ``source``/``detail`` (an undo)."""
        with self._tx() as db:
            latest = db.execute("SELECT id, source, detail FROM labels WHERE photo_id=? ORDER BY id DESC LIMIT 1",
                                (photo_id,)).fetchone()
            if latest is None or (latest[1], latest[2]) != (source, detail):
                return False
            db.execute("DELETE FROM labels WHERE id=?", (latest[0],))
            return True

    def current_labels(self) -> dict[int, str]:
        """Photo id -> category of its latest label."""
        rows = self._db.execute(
            "SELECT photo_id, category FROM labels WHERE id IN (SELECT MAX(id) FROM labels GROUP BY photo_id)")
        return {int(photo_id): category for photo_id, category in rows}

    # the move journal -----------------------------------------------------------------------------
    def begin_move(self, photo_id: int | None, src: Path, dst: Path, library_path: str | None,
                   status_after: PhotoStatus, follows: int | None = None) -> Move:
        """Journal a move before it happens; the photo row changes only when it is finished.

        A companion file (``photo_id`` None) names the move of its photo in ``follows``."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO moves (photo_id, src, dst, library_path, status_after, created, follows) "
                "VALUES (?,?,?,?,?,?,?)",
                (photo_id, os.fsencode(src), os.fsencode(dst), library_path, status_after.value, time.time(),
                 follows))
            return Move(int(cursor.lastrowid or 0), photo_id, src, dst, follows)

    def finish_move(self, move: Move, done: bool) -> None:
        """Close a journal entry; when it moved, the photo now lives at its new place."""
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE moves SET state=?, finished=? WHERE id=?",
                       ("done" if done else "rolled_back", now, move.id))
            if done and move.photo_id is not None:
                db.execute(
                    "UPDATE photos SET library_path=(SELECT library_path FROM moves WHERE id=?), "
                    "status=(SELECT status_after FROM moves WHERE id=?), updated=? WHERE id=?",
                    (move.id, move.id, now, move.photo_id))

    def library_records(self) -> list[PhotoRecord]:
        """Every photo the library should hold (its path relative to the library is set)."""
        rows = self._db.execute(f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE library_path IS NOT NULL ORDER BY id")
        return [self._photo(row) for row in rows]

    def moved_by_hand(self, photo_id: int, library_path: str, status: PhotoStatus, category: str | None) -> None:
        """The person moved or renamed a photo inside the library: it lives at ``library_path`` now, filed
        under ``category``."""
        with self._tx() as db:
            db.execute("UPDATE photos SET library_path=?, status=?, category=?, updated=? WHERE id=?",
                       (library_path, status.value, category, time.time(), photo_id))

    def removed_by_hand(self, photo_id: int) -> None:
        """The person deleted a photo from the library: remembered as removed, its labels kept."""
        with self._tx() as db:
            db.execute("UPDATE photos SET library_path=NULL, status=?, updated=? WHERE id=?",
                       (PhotoStatus.REMOVED.value, time.time(), photo_id))

    def set_move_aside(self, move: Move) -> None:
        """A move that could be neither finished nor rolled back: kept as a problem, not retried at each start."""
        with self._tx() as db:
            db.execute("UPDATE moves SET state='problem', finished=? WHERE id=?", (time.time(), move.id))

    def problem_moves(self) -> list[Move]:
        rows = self._db.execute("SELECT id, photo_id, src, dst, follows FROM moves WHERE state='problem' ORDER BY id")
        return [Move(i, p, Path(os.fsdecode(s)), Path(os.fsdecode(d)), f) for i, p, s, d, f in rows]

    def pending_moves(self) -> list[Move]:
        rows = self._db.execute("SELECT id, photo_id, src, dst, follows FROM moves WHERE state='pending' ORDER BY id")
        return [Move(i, p, Path(os.fsdecode(s)), Path(os.fsdecode(d)), f) for i, p, s, d, f in rows]

    def move_done(self, move_id: int) -> bool:
        row = self._db.execute("SELECT state FROM moves WHERE id=?", (move_id,)).fetchone()
        return row is not None and row[0] == "done"

    # runs and status ------------------------------------------------------------------------------
    def start_run(self, model: str) -> int:
        with self._tx() as db:
            return int(db.execute("INSERT INTO runs (model, started) VALUES (?,?)",
                                  (model, time.time())).lastrowid or 0)

    def finish_run(self, run_id: int, report: RunReport) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET finished=?, placed=?, unsure=?, duplicates=?, failed=? WHERE id=?",
                       (time.time(), sum(report.placed.values()), report.unsure, report.duplicates,
                        len(report.failed), run_id))

    def last_run(self) -> dict[str, object] | None:
        row = self._db.execute("SELECT model, started, finished, placed, unsure, duplicates, failed FROM runs "
                               "ORDER BY id DESC LIMIT 1").fetchone()
        keys = ("model", "started", "finished", "placed", "unsure", "duplicates", "failed")
        return dict(zip(keys, row, strict=True)) if row else None

    def _unchanged(self, key: object) -> tuple[tuple[int, int], object | None]:
        """(the database's version, what was counted under ``key`` at that version, or None). The daemon
        asks for its status every loop; with 100k photos each count is a full scan (80 ms), so an idle
        hour cost 10 CPU-seconds. Commits by other connections move ``data_version``, this connection's
        own writes ``total_changes``: while neither moves, the last answer is still the answer."""
        version = (int(self._db.execute("PRAGMA data_version").fetchone()[0]), self._db.total_changes)
        saved = self._counted.get(key)
        return version, (saved[1] if saved is not None and saved[0] == version else None)

    def library_counts(self) -> dict[str, int]:
        """Photos in the library per folder: category names, ``_unsure``, ``_failed``, ``_duplicates``."""
        version, saved = self._unchanged("library_counts")
        if isinstance(saved, dict):
            return dict(saved)
        rows = self._db.execute(
            "SELECT CASE status WHEN 'placed' THEN category WHEN 'unsure' THEN '_unsure' "
            "WHEN 'failed' THEN '_failed' WHEN 'duplicate' THEN '_duplicates' END AS folder, COUNT(*) "
            "FROM photos WHERE library_path IS NOT NULL GROUP BY folder")
        counts = {folder: count for folder, count in rows if folder}
        self._counted["library_counts"] = (version, dict(counts))
        return counts

    def save_attention(self, lines: list[str], at: dt.datetime) -> None:
        """What the running daemon says needs the person, for a digest sent by another process."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('attention', ?)",
                       (json.dumps({"at": at.timestamp(), "lines": lines}),))

    def saved_attention(self, now: dt.datetime, max_age_s: float = 86400.0) -> list[str]:
        """The lines the daemon saved, unless they are older than ``max_age_s`` (no daemon running)."""
        row = self._db.execute("SELECT value FROM meta WHERE key='attention'").fetchone()
        try:
            saved = json.loads(row[0]) if row else {}
            fresh = now.timestamp() - float(saved.get("at", 0)) <= max_age_s
            return [str(line) for line in saved.get("lines", [])] if fresh else []
        except (ValueError, TypeError, AttributeError):
            return []

    def sorted_since(self, timestamp: float) -> int:
        """Photos placed in a category or in _unsure since ``timestamp`` (seconds since the epoch)."""
        version, saved = self._unchanged(("sorted_since", timestamp))
        if isinstance(saved, int):
            return saved
        row = self._db.execute("SELECT COUNT(*) FROM photos WHERE status IN ('placed', 'unsure') AND updated >= ?",
                               (timestamp,)).fetchone()
        self._counted = {k: v for k, v in self._counted.items() if not isinstance(k, tuple)}  # one day kept
        self._counted[("sorted_since", timestamp)] = (version, int(row[0]))
        return int(row[0])

    def compact(self) -> None:
        """Daily upkeep: fold the WAL into the database and give free pages back to the disk."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")
        except sqlite3.Error as exc:
            raise StateError(f"state upkeep failed: {exc}") from exc
        back_up(self._db, self.path)

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for category in self.current_labels().values():
            counts[category] = counts.get(category, 0) + 1
        return counts

    def placed_in(self, categories: tuple[str, ...]) -> list[PhotoRecord]:
        """Photos filed in the library under one of ``categories`` (not those in _unsure)."""
        marks = ",".join("?" * len(categories))
        rows = self._db.execute(f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE status='placed' AND library_path "
                                f"IS NOT NULL AND category IN ({marks}) ORDER BY id", categories)
        return [self._photo(row) for row in rows]

    def remember_mark(self, sha256: str, mark: str) -> None:
        """What a photo's source said of it (iCloud: ``screenshot``), kept past the file that carried it."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO source_marks (sha256, mark) VALUES (?,?)", (sha256, mark))

    def has_mark(self, sha256: str, mark: str) -> bool:
        return self._db.execute("SELECT 1 FROM source_marks WHERE sha256=? AND mark=?", (sha256, mark)).fetchone() \
            is not None
