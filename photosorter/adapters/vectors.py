"""How image embeddings are kept in the one state file: int8 with a per-vector scale, read back as float32.

Not an adapter of its own (like ``sqlite.py``): the state, the web page's catalog and the mail ledger all
read the ``embeddings`` table, and decode its rows here, so every reader gets float32 arrays alike.

A row's ``scale`` says its format: NULL for a row an older version wrote (the float32 bytes themselves,
2 KB at 512-d, each filling a 4 KB page of its own: 443 MB per 100k photos), a number for int8 (``vector``
holds round(x / scale), scale = max|x| / 127: 512 bytes, seven rows to a page). Both decode, so a
database part-way through ``migrate`` (killed between two batches) is read as well as one at either end.
int8 against float32 on the shared eval photos' MobileNetV2 embeddings: cosine >= 0.99986, the kNN's
leave-one-out answers all the same; the nearest neighbour changed for 1 photo in 197, between two photos
of the same kind whose similarities differed by 0.0002 (bench/run.py prints the state file's size).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable

import numpy as np

from photosorter.adapters.sqlite import transaction
from photosorter.core.drift import Observation
from photosorter.errors import StateError

log = logging.getLogger(__name__)

EMBEDDING_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    photo_id INTEGER NOT NULL REFERENCES photos(id),
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    scale REAL,
    PRIMARY KEY (photo_id, model)
);
"""
EMBEDDING_COLUMNS = (("embeddings", "scale", "REAL"),)  # NULL: float32 bytes written before int8
MIGRATE_BATCH_ROWS = 2000  # one transaction each: the sorter and the web page are never held up long


def encode(vector: np.ndarray) -> tuple[bytes, float]:
    """(int8 bytes, scale) of a vector; ``decode`` gives it back within scale / 2 per component."""
    values = np.asarray(vector, dtype=np.float32).ravel()
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    scale = peak / 127.0 if np.isfinite(peak) and peak > 0.0 else 1.0
    return np.clip(np.rint(values / scale), -127, 127).astype(np.int8).tobytes(), scale


def decode(blob: bytes, scale: float | None) -> np.ndarray:
    """The float32 vector a row holds (a fresh, writable array), in either format."""
    if scale is None:
        return np.frombuffer(blob, dtype=np.float32).copy()
    return np.frombuffer(blob, dtype=np.int8).astype(np.float32) * np.float32(scale)


def decode_rows(rows: Iterable[tuple[bytes, float | None]]) -> np.ndarray:
    """``[n, d]`` float32 from (vector, scale) rows (int8 ones in one step: the web map reads 100k)."""
    rows = list(rows)
    scales = [scale for _, scale in rows]
    if not rows or None in scales:
        return np.stack([decode(blob, scale) for blob, scale in rows])
    values = np.frombuffer(b"".join(blob for blob, _ in rows), dtype=np.int8).reshape(len(rows), -1)
    return values.astype(np.float32) * np.asarray(scales, dtype=np.float32)[:, None]


def save_embedding(db: sqlite3.Connection, photo_id: int, model: str, vector: np.ndarray) -> None:
    """Store (or replace) a photo's embedding under ``model``, inside the caller's transaction."""
    blob, scale = encode(vector)
    db.execute("INSERT OR REPLACE INTO embeddings (photo_id, model, vector, scale) VALUES (?,?,?,?)",
               (photo_id, model, blob, scale))


def migrate(db: sqlite3.Connection, *, batch_rows: int = MIGRATE_BATCH_ROWS, max_rows: int | None = None) -> int:
    """Rewrite float32 rows as int8, ``batch_rows`` to a transaction (at most ``max_rows``; None: all).
    A kill between or inside batches leaves rows of both formats, all readable; the next call goes on.
    Returns the rows rewritten."""
    done = 0
    while max_rows is None or done < max_rows:
        take = batch_rows if max_rows is None else min(batch_rows, max_rows - done)
        with transaction(db, "state database (embedding migration)") as tx:
            rows = tx.execute("SELECT rowid, vector FROM embeddings WHERE scale IS NULL LIMIT ?", (take,)).fetchall()
            tx.executemany("UPDATE embeddings SET vector=?, scale=? WHERE rowid=?",
                           [(*encode(decode(blob, None)), rowid) for rowid, blob in rows])
        done += len(rows)
        if len(rows) < take:
            break
    return done


def upgrade(db: sqlite3.Connection, path: object) -> bool:
    """Migrate every float32 row (a writer does it at start), then give the freed pages back to the disk.
    False when it could not finish (a full disk): the rows are read as they are, the next start goes on."""
    started = time.perf_counter()
    try:
        rows = migrate(db)
    except StateError as exc:
        log.warning("cannot store the embeddings of %s as int8 yet (%s); they are read as they are, and the next "
                    "start tries again", path, exc)
        return False
    if not rows:
        return True
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
    except sqlite3.Error as exc:  # the daily upkeep vacuums again; the rows are migrated already
        log.warning("cannot compact %s after migrating its embeddings: %s", path, exc)
    log.info("state database %s: %d embeddings stored as int8 instead of float32 (%.1f s)", path, rows,
             time.perf_counter() - started)
    return True


class EmbeddingRows:
    """The state's questions about embeddings (mixed into ``SqliteState``, which owns the connection)."""

    _db: sqlite3.Connection

    def embedding(self, photo_id: int, model: str) -> np.ndarray | None:
        row = self._db.execute("SELECT vector, scale FROM embeddings WHERE photo_id=? AND model=?",
                               (photo_id, model)).fetchone()
        return decode(row[0], row[1]) if row else None

    def labelled_embeddings(self, model: str) -> list[tuple[int, str, np.ndarray]]:
        """Each labelled photo's latest label with its embedding under ``model``."""
        rows = self._db.execute(
            "SELECT l.photo_id, l.category, e.vector, e.scale FROM labels l JOIN embeddings e "
            "ON e.photo_id = l.photo_id AND e.model = ? "
            "WHERE l.id IN (SELECT MAX(id) FROM labels GROUP BY photo_id) ORDER BY l.photo_id", (model,))
        return [(int(p), c, decode(v, s)) for p, c, v, s in rows]

    def recent_embeddings(self, model: str, limit: int) -> np.ndarray:
        """Up to ``limit`` embeddings under ``model`` (the latest photos), ``[n, dim]``; a sample of the
        model's own photos for measuring how similar unrelated photos are."""
        rows = self._db.execute("SELECT vector, scale FROM embeddings WHERE model=? ORDER BY photo_id DESC LIMIT ?",
                                (model, limit)).fetchall()
        return decode_rows(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def analyses_since(self, since: float, model: str) -> list[Observation]:
        """Photos sorted (into a category or _unsure) since ``since``, with their embedding under ``model``."""
        rows = self._db.execute(
            "SELECT p.id, p.created, p.status, p.category, COALESCE(p.near_group, p.id), e.vector, e.scale "
            "FROM photos p JOIN embeddings e ON e.photo_id = p.id AND e.model = ? "
            "WHERE p.status IN ('placed', 'unsure') AND p.created >= ? ORDER BY p.id", (model, since))
        return [Observation(int(i), float(c), s == "unsure", cat, int(g), decode(v, scale))
                for i, c, s, cat, g, v, scale in rows]

