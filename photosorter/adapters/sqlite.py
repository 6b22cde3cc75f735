"""SQLite plumbing shared by the adapters that keep tables in the one state database file.

Not an adapter of its own: state, mail ledger and iCloud asset tables each own their schema and
queries, and open their connection here so that every one is set up alike — WAL, full sync (a
journal entry must survive a power cut), and mode 0600 on the file and its -wal/-shm (it holds face data).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from photosorter.errors import StateError

log = logging.getLogger(__name__)

BACKUP_EVERY_S = 86400.0
BACKUPS_KEPT = 3


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


# damage and backups ---------------------------------------------------------------------------------------
def backup_folder(path: Path) -> Path:
    return path.parent / "backups"


def _backups(path: Path) -> list[Path]:
    """Backups of the database at ``path``, newest first (their names sort by time)."""
    folder = backup_folder(path)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.name.startswith(path.stem + "-") and p.suffix == path.suffix),
                  reverse=True)


def _damage(path: Path) -> str | None:
    """Why the database file at ``path`` cannot be trusted, or None when SQLite's quick check passes."""
    try:
        db = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
        try:
            rows = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
        finally:
            db.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None if rows == ["ok"] else "; ".join(map(str, rows))


def check_database(path: Path, what: str) -> None:
    """At start: a database file that fails SQLite's quick check, or that is empty (0 bytes) while
    backups of it exist, is set aside (renamed, never deleted) and the newest sound backup put in its
    place; without one, the run starts with an empty database. Either way one error line says so."""
    if not path.exists():
        return
    backups = _backups(path)
    reason = "empty (0 bytes)" if path.stat().st_size == 0 and backups else _damage(path)
    if reason is None:
        return
    kept = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, kept)
    for suffix in ("-wal", "-shm"):
        with suppress(FileNotFoundError):
            os.replace(path.with_name(path.name + suffix), kept.with_name(kept.name + suffix))
    for backup in backups:
        if _damage(backup) is None:
            temp = path.with_name(path.name + ".restoring")
            shutil.copyfile(backup, temp)
            os.chmod(temp, 0o600)
            os.replace(temp, path)
            log.error("%s %s was damaged (%s): restored from the backup %s; the damaged file is kept as %s",
                      what, path, reason, backup.name, kept.name)
            return
    log.error("%s %s was damaged (%s) and no sound backup exists: starting with an empty one (labels and "
              "history are lost); the damaged file is kept as %s", what, path, reason, kept.name)


def back_up(db: sqlite3.Connection, path: Path, *, every_s: float = BACKUP_EVERY_S, keep: int = BACKUPS_KEPT) -> bool:
    """Copy the database into ``backups/`` (``VACUUM INTO``: a consistent copy while others read and write)
    unless the newest backup is younger than ``every_s``; keeps the ``keep`` newest. True when one was made."""
    backups = _backups(path)
    if backups and time.time() - backups[0].stat().st_mtime < every_s:
        return False
    folder = backup_folder(path)
    folder.mkdir(mode=0o700, exist_ok=True)
    target = folder / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"
    temp = folder / f".{target.name}.tmp"
    with suppress(FileNotFoundError):
        temp.unlink()
    try:
        db.execute("VACUUM INTO ?", (str(temp),))
    except sqlite3.Error as exc:
        log.warning("cannot back up %s: %s", path, exc)
        with suppress(FileNotFoundError):
            temp.unlink()
        return False
    os.chmod(temp, 0o600)
    os.replace(temp, target)
    for old in _backups(path)[keep:]:
        old.unlink()
    return True


def remove_backups(path: Path) -> int:
    """Delete every backup of the database (after personal data was forgotten on purpose)."""
    backups = _backups(path)
    for backup in backups:
        backup.unlink()
    return len(backups)
