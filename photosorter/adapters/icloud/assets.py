"""What photosorter knows of an iCloud library, in the state database: the assets it has (table
``icloud_assets``, by asset id, never by file name or place), sync positions (``icloud_sync``), and the
assets it could not take (``icloud_problems``: a record it cannot read, or files that do not arrive),
which are skipped by the listing walk and, for downloads, retried on their own (``core.sync``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from photosorter.adapters.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS icloud_assets (
    asset_id TEXT PRIMARY KEY,
    checksum TEXT,
    filename TEXT NOT NULL,
    local_name TEXT,
    sha256 TEXT,
    size INTEGER,
    item_type TEXT,
    added REAL,
    fetched REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS icloud_sync (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS icloud_problems (
    asset_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    detail TEXT NOT NULL,
    tries INTEGER NOT NULL,
    first REAL NOT NULL,
    last REAL NOT NULL
);
"""
RECORD = "record"  # iCloud's record of the asset cannot be read
DOWNLOAD = "download"  # its files do not arrive


@dataclass(frozen=True)
class AssetProblem:
    asset_id: str
    kind: str
    name: str
    detail: str
    tries: int
    first: float
    last: float


class IcloudAssets:
    """Which iCloud assets photosorter already has, and which it could not take."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path, SCHEMA, "the iCloud state")

    def close(self) -> None:
        self._db.close()

    def known(self, asset_id: str) -> bool:
        """Delivered, or on the problem list (handled there, not by the listing walk)."""
        return self._db.execute("SELECT 1 FROM icloud_assets WHERE asset_id=? UNION ALL "
                                "SELECT 1 FROM icloud_problems WHERE asset_id=?", (asset_id, asset_id)
                                ).fetchone() is not None

    def count(self, library: str = "") -> int:
        """Assets known from one library: the personal one (ids without a ``/``) or ``<zone>/``."""
        if not library:
            row = self._db.execute("SELECT COUNT(*) FROM icloud_assets WHERE instr(asset_id, '/') = 0").fetchone()
        else:
            row = self._db.execute("SELECT COUNT(*) FROM icloud_assets WHERE substr(asset_id, 1, ?) = ?",
                                   (len(library), library)).fetchone()
        return int(row[0])

    def remember(self, asset_id: str, *, checksum: str | None, filename: str, local_name: str | None,
                 sha256: str | None, size: int | None, item_type: str, added: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO icloud_assets (asset_id, checksum, filename, local_name, sha256, "
                         "size, item_type, added, fetched) VALUES (?,?,?,?,?,?,?,?,?)",
                         (asset_id, checksum, filename, local_name, sha256, size, item_type, added, time.time()))
        self._db.execute("DELETE FROM icloud_problems WHERE asset_id=?", (asset_id,))

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM icloud_sync WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO icloud_sync (key, value) VALUES (?,?)", (key, value))

    def delete(self, key: str) -> None:
        self._db.execute("DELETE FROM icloud_sync WHERE key=?", (key,))

    # problems ---------------------------------------------------------------------------------------
    def add_problem(self, asset_id: str, kind: str, name: str, detail: str, now: float) -> AssetProblem:
        """Record one more failure of an asset; returns it with its count of tries."""
        self._db.execute("INSERT INTO icloud_problems (asset_id, kind, name, detail, tries, first, last) "
                         "VALUES (?,?,?,?,1,?,?) ON CONFLICT (asset_id) DO UPDATE SET kind=excluded.kind, "
                         "detail=excluded.detail, tries=tries+1, last=excluded.last",
                         (asset_id, kind, name, detail, now, now))
        problem = self.problem(asset_id)
        assert problem is not None
        return problem

    def problem(self, asset_id: str) -> AssetProblem | None:
        row = self._db.execute("SELECT asset_id, kind, name, detail, tries, first, last FROM icloud_problems "
                               "WHERE asset_id=?", (asset_id,)).fetchone()
        return AssetProblem(*row) if row else None

    def forget_problem(self, asset_id: str) -> None:
        self._db.execute("DELETE FROM icloud_problems WHERE asset_id=?", (asset_id,))

    def problems(self, library: str | None = None) -> list[AssetProblem]:
        """Every problem, or those of one library (see ``count``), oldest first."""
        rows = self._db.execute("SELECT asset_id, kind, name, detail, tries, first, last FROM icloud_problems "
                                "ORDER BY first, asset_id").fetchall()
        found = [AssetProblem(*row) for row in rows]
        if library is None:
            return found
        return [p for p in found if (p.asset_id.startswith(library) if library else "/" not in p.asset_id)]
