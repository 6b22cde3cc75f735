"""SQLite plumbing shared by the adapters that keep tables in the one state database file.

Not an adapter of its own: state, mail ledger and iCloud asset tables each own their schema and
queries, and open their connection here so that every one is set up alike — WAL, full sync (a
journal entry must survive a power cut), and mode 0600 on the file and its -wal/-shm (it holds face data).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from photosorter.errors import StateError


def connect(path: Path, schema: str, what: str, *, foreign_keys: bool = False,
            added_columns: tuple[tuple[str, str, str], ...] = ()) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` and make sure ``schema`` exists.

    ``added_columns`` (table, column, type) were added to the schema after a release: a database made
    before gets them here."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Made 0600 before SQLite opens it: SQLite gives the -wal and -shm files the mode of the database file,
    # and the WAL holds the latest rows (face embeddings too). Files an older version left open are healed.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with suppress(FileNotFoundError):
            os.chmod(part, 0o600)
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        db.executescript(schema)
        for table, column, kind in added_columns:
            if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    except sqlite3.Error as exc:
        raise StateError(f"cannot open {what} in {path}: {exc}") from exc
    return db


@contextmanager
def transaction(db: sqlite3.Connection, what: str) -> Iterator[sqlite3.Connection]:
    """One write transaction (taken at once, so writers queue instead of failing midway)."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StateError(f"{what} error: {exc}") from exc
