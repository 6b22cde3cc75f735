"""The state's face tables: what the face model found in each photo and the person's reference faces."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from photosorter.adapters.sqlite import back_up, remove_backups
from photosorter.errors import StateError
from photosorter.records import Face, MeFace

# Faces are personal data: they stay in this file (mode 0600), are never published, and
# ``forget_faces`` (``photosorter me forget``) deletes all of them. A photo with a face_scans row
# was looked at by the face model ``model`` (``faces`` may be 0); its faces are numbered left to right.
FACE_SCHEMA = """
CREATE TABLE IF NOT EXISTS face_scans (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id),
    model TEXT NOT NULL,
    faces INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    photo_id INTEGER NOT NULL REFERENCES photos(id),
    number INTEGER NOT NULL,
    box TEXT NOT NULL,
    landmarks TEXT NOT NULL,
    score REAL NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (photo_id, number)
);
CREATE TABLE IF NOT EXISTS me_faces (
    id INTEGER PRIMARY KEY,
    photo_id INTEGER NOT NULL REFERENCES photos(id),
    number INTEGER NOT NULL,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    created REAL NOT NULL
);
"""


class FaceRows:
    """Faces (personal data; see FACE_SCHEMA), mixed into ``SqliteState``, which owns the connection."""

    _db: sqlite3.Connection
    path: Path

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def save_faces(self, photo_id: int, model: str, faces: list[Face], vectors: np.ndarray) -> None:
        """Replace what is stored about a photo's faces with this scan's result (possibly no faces).

        Without an fsync of its own (3 ms a photo): a scan lost to a power cut is simply made again,
        and the sorter's next journal write makes this one durable too."""
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._tx() as db:
                db.execute("DELETE FROM faces WHERE photo_id=?", (photo_id,))
                db.execute("INSERT OR REPLACE INTO face_scans (photo_id, model, faces, created) VALUES (?,?,?,?)",
                           (photo_id, model, len(faces), time.time()))
                db.executemany(
                    "INSERT INTO faces (photo_id, number, box, landmarks, score, vector) VALUES (?,?,?,?,?,?)",
                    [(photo_id, face.number, json.dumps(face.box), json.dumps(face.landmarks), face.score,
                      np.asarray(vector, dtype=np.float32).tobytes())
                     for face, vector in zip(faces, vectors, strict=True)])
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    def faces_of(self, photo_id: int, model: str) -> tuple[list[Face], np.ndarray] | None:
        """A photo's faces and their embeddings under face model ``model``; None when it was not scanned."""
        scan = self._db.execute("SELECT faces FROM face_scans WHERE photo_id=? AND model=?",
                                (photo_id, model)).fetchone()
        if scan is None:
            return None
        rows = self._db.execute("SELECT number, box, landmarks, score, vector FROM faces WHERE photo_id=? "
                                "ORDER BY number", (photo_id,)).fetchall()
        faces = [Face(int(n), tuple(json.loads(b)), tuple(json.loads(k)), float(s)) for n, b, k, s, _ in rows]
        vectors = [np.frombuffer(v, dtype=np.float32) for *_, v in rows]
        return faces, (np.stack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32))

    def add_me_face(self, photo_id: int, number: int, model: str, vector: np.ndarray) -> int:
        with self._tx() as db:
            db.execute("DELETE FROM me_faces WHERE photo_id=? AND number=? AND model=?", (photo_id, number, model))
            cursor = db.execute("INSERT INTO me_faces (photo_id, number, model, vector, created) VALUES (?,?,?,?,?)",
                                (photo_id, number, model, np.asarray(vector, dtype=np.float32).tobytes(),
                                 time.time()))
            return int(cursor.lastrowid or 0)

    def me_faces(self, model: str) -> list[MeFace]:
        """The person's reference faces under face model ``model``, oldest first."""
        rows = self._db.execute("SELECT m.id, m.photo_id, m.number, m.created, m.vector, p.library_path, "
                                "p.source_path FROM me_faces m JOIN photos p ON p.id = m.photo_id "
                                "WHERE m.model=? ORDER BY m.id", (model,))
        return [MeFace(int(i), int(p), int(n), float(c), np.frombuffer(v, dtype=np.float32).copy(), lib or src)
                for i, p, n, c, v, lib, src in rows]

    def remove_me_face(self, face_id: int) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM me_faces WHERE id=?", (face_id,)).rowcount > 0

    def forget_faces(self) -> tuple[int, int]:
        """Delete every reference face and every stored face (overwritten on disk, WAL truncated).

        Returns (reference faces, faces) deleted."""
        try:
            self._db.execute("PRAGMA secure_delete=ON")
            with self._tx() as db:
                references = db.execute("DELETE FROM me_faces").rowcount
                faces = db.execute("DELETE FROM faces").rowcount
                db.execute("DELETE FROM face_scans")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise StateError(f"cannot forget faces: {exc}") from exc
        remove_backups(self.path)  # they hold the faces too
        back_up(self._db, self.path, every_s=0.0)
        return references, faces
