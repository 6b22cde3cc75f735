"""Read-only questions the web page asks of the state file: the review queue, a folder page by page,
a photo's latest label, every embedding for the map, recent labels for the health page.

Its own SQLite connection (WAL readers never block the sorter's writes), on the tables ``state.py`` owns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from photosorter.adapters.sqlite import connect
from photosorter.adapters.vectors import EMBEDDING_COLUMNS, EMBEDDING_SCHEMA, decode_rows
from photosorter.records import PhotoRecord, PhotoStatus

_COLUMNS = ("id, sha256, source_path, library_path, category, score, margin, status, reason, duplicate_of, "
            "near_group")
_SPECIAL = {"_unsure": PhotoStatus.UNSURE, "_failed": PhotoStatus.FAILED, "_duplicates": PhotoStatus.DUPLICATE}


def _record(row: tuple) -> PhotoRecord:  # type: ignore[type-arg]
    return PhotoRecord(id=row[0], sha256=row[1], source_path=row[2], library_path=row[3], category=row[4],
                       score=row[5], margin=row[6], status=PhotoStatus(row[7]), reason=row[8],
                       duplicate_of=row[9], near_group=row[10])


class SqliteCatalog:
    def __init__(self, path: Path) -> None:
        self._db = connect(path, EMBEDDING_SCHEMA, "the state database (web page)", added_columns=EMBEDDING_COLUMNS)

    def close(self) -> None:
        self._db.close()

    def folder_page(self, folder: str, offset: int, limit: int) -> tuple[list[PhotoRecord], int]:
        """One page of a library folder (a category, _unsure, _failed, _duplicates), newest first, and
        how many the folder holds."""
        status = _SPECIAL.get(folder, PhotoStatus.PLACED)
        where = "status=? AND library_path IS NOT NULL" + ("" if folder in _SPECIAL else " AND category=?")
        args: tuple[object, ...] = (status.value,) if folder in _SPECIAL else (status.value, folder)
        total = int(self._db.execute(f"SELECT COUNT(*) FROM photos WHERE {where}", args).fetchone()[0])
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM photos WHERE {where} ORDER BY created DESC, id DESC "
                                "LIMIT ? OFFSET ?", (*args, limit, offset))
        return [_record(row) for row in rows], total

    def latest_label(self, photo_id: int) -> tuple[int, str, str] | None:
        """(label id, category, source) of the photo's latest label."""
        row = self._db.execute("SELECT id, category, source FROM labels WHERE photo_id=? ORDER BY id DESC LIMIT 1",
                               (photo_id,)).fetchone()
        return (int(row[0]), str(row[1]), str(row[2])) if row else None

    def library_embeddings(self, model: str, chunk: int = 1000,
                           every: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]]:
        """(photo ids, embeddings [n, d], folder of each, whether each is labelled) of the library's photos in
        a category folder or _unsure, ``chunk`` rows at a time (memory stays flat), every ``every``-th photo."""
        rows = self._db.execute(
            "SELECT p.id, p.status, p.category, e.vector, p.id IN (SELECT photo_id FROM labels), e.scale FROM photos p "
            "JOIN embeddings e ON e.photo_id = p.id AND e.model = ? "
            "WHERE p.status IN ('placed', 'unsure') AND p.library_path IS NOT NULL AND p.id % ? = 0 ORDER BY p.id",
            (model, every))
        while batch := rows.fetchmany(chunk):
            yield (np.fromiter((r[0] for r in batch), np.int64, len(batch)),
                   decode_rows((r[3], r[5]) for r in batch),
                   ["_unsure" if r[1] == "unsure" else str(r[2]) for r in batch],
                   np.fromiter((bool(r[4]) for r in batch), bool, len(batch)))

    def count_embedded(self, model: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM photos p JOIN embeddings e ON e.photo_id = p.id AND e.model = ? "
                               "WHERE p.status IN ('placed', 'unsure') AND p.library_path IS NOT NULL",
                               (model,)).fetchone()
        return int(row[0])

    def review_queue(self, limit: int) -> tuple[list[PhotoRecord], int]:
        """The ``limit`` photos least sure of their category (_unsure first, then smallest margin, lowest score:
        the digest's pool order, ``core.digest.review_pool``, without its diversity step), and how many photos
        want a label."""
        where = ("status IN ('placed', 'unsure') AND library_path IS NOT NULL AND category IS NOT NULL "
                 "AND id NOT IN (SELECT photo_id FROM labels)")
        total = int(self._db.execute(f"SELECT COUNT(*) FROM photos WHERE {where}").fetchone()[0])
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM photos WHERE {where} ORDER BY status != 'unsure', "
                                "COALESCE(margin, 0), COALESCE(score, 0), id LIMIT ?", (limit,))
        return [_record(row) for row in rows], total

    def stamp(self) -> tuple[int, int]:
        """Changes whenever a photo or a label does (the map is made again then)."""
        photos = self._db.execute("SELECT COUNT(*), COALESCE(MAX(updated), 0) FROM photos").fetchone()
        labels = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM labels").fetchone()
        return int(photos[0]) * 1_000_003 + int(photos[1] * 1000), int(labels[0])

    def recent_labels(self, limit: int) -> list[tuple[str, str | None]]:
        """(category labelled, what the photo was filed as) of the latest ``limit`` labels of library photos,
        newest first."""
        rows = self._db.execute("SELECT category, guess FROM labels WHERE guess IS NOT NULL ORDER BY id DESC LIMIT ?",
                                (limit,))
        return [(str(a), b) for a, b in rows]
