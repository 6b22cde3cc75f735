"""Embeddings are stored as int8 with a per-vector scale and read back as float32 by every reader; a state
file an older version wrote (float32 rows) is migrated at a writer's start, and a kill mid-way loses nothing."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photosorter.adapters.catalog import SqliteCatalog
from photosorter.adapters.mailstate import SqliteMailLedger
from photosorter.adapters.state import SqliteState
from photosorter.adapters.vectors import decode, encode
from photosorter.records import PhotoStatus
from tests.filesystems import small_tmpfs

MODEL = "3f9a1c0e5b7d2468"
PHOTOS = 120
DIM = 512
OLD_TABLE = """CREATE TABLE embeddings (photo_id INTEGER NOT NULL REFERENCES photos(id), model TEXT NOT NULL,
               vector BLOB NOT NULL, PRIMARY KEY (photo_id, model))"""


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


def fill_photos(state: SqliteState, count: int) -> list[int]:
    ids = []
    for i in range(count):
        photo = state.add_photo(f"{i:064x}", 1, Path(f"IMG_{i}.jpg"))
        state.moved_by_hand(photo, f"food/IMG_{i}.jpg", PhotoStatus.PLACED, "food")
        state.add_label(photo, "food", "cli")
        ids.append(photo)
    return ids


@pytest.fixture(scope="module")
def older_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A state file as a version before int8 left it: float32 rows, no scale column."""
    path = tmp_path_factory.mktemp("older") / "state.sqlite3"
    state = SqliteState(path)
    ids = fill_photos(state, PHOTOS)
    state.close()
    vectors = unit_vectors(PHOTOS)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE embeddings")
    db.execute(OLD_TABLE)
    db.execute("PRAGMA user_version=0")
    db.executemany("INSERT INTO embeddings VALUES (?,?,?)",
                   [(p, MODEL, v.tobytes()) for p, v in zip(ids, vectors, strict=True)])
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path, vectors


@pytest.fixture
def older(older_file: tuple[Path, np.ndarray], tmp_path: Path) -> tuple[Path, np.ndarray]:
    path = tmp_path / "state.sqlite3"
    shutil.copyfile(older_file[0], path)
    return path, older_file[1]


def formats(path: Path) -> tuple[int, int]:
    """(float32 rows, int8 rows)."""
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT SUM(scale IS NULL), SUM(scale IS NOT NULL AND length(vector) = ?) "
                         "FROM embeddings", (DIM,)).fetchone()
    finally:
        db.close()
    return int(row[0] or 0), int(row[1] or 0)


def stored(path: Path) -> np.ndarray:
    reader = SqliteState(path, writer=False)
    try:
        return np.stack([vector for _, _, vector in reader.labelled_embeddings(MODEL)])
    finally:
        reader.close()


def test_every_reader_gets_float32_within_int8_error_of_what_was_saved(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    state = SqliteState(path)
    ids = fill_photos(state, 20)
    vectors = unit_vectors(20)
    for photo, vector in zip(ids, vectors, strict=True):
        state.save_analysis(photo, MODEL, vector, dhash=photo, near_group=photo)
    catalog, ledger = SqliteCatalog(path), SqliteMailLedger(path)
    read = {
        "embedding": np.stack([state.embedding(p, MODEL) for p in ids]),  # type: ignore[misc]
        "labelled": np.stack([v for _, _, v in state.labelled_embeddings(MODEL)]),
        "recent": state.recent_embeddings(MODEL, 100)[::-1],
        "drift": np.stack([o.vector for o in state.analyses_since(0.0, MODEL)]),
        "web map": np.concatenate([chunk[1] for chunk in catalog.library_embeddings(MODEL, chunk=7)]),
        "digest": np.stack([ledger.embeddings_for(ids)[p] for p in ids]),
    }
    for name, got in read.items():
        assert got.dtype == np.float32 and got.shape == vectors.shape, name
        assert cosines(got, vectors).min() > 0.9999, name
    assert formats(path) == (0, 20)
    for closing in (state, catalog, ledger):
        closing.close()


def test_int8_keeps_every_random_vectors_direction() -> None:
    vectors = unit_vectors(2000, seed=1)
    back = np.stack([decode(*encode(v)) for v in vectors])
    assert cosines(back, vectors).min() > 0.9999
    assert np.abs(back - vectors).max() <= np.abs(vectors).max() / 254 + 1e-7  # half a step


def test_a_zero_vector_stays_zero() -> None:
    assert not decode(*encode(np.zeros(8, dtype=np.float32))).any()


def test_an_older_state_file_is_migrated_to_int8_by_the_first_writer(older: tuple[Path, np.ndarray]) -> None:
    path, vectors = older
    before = path.stat().st_size
    assert cosines(stored(path), vectors).min() == pytest.approx(1.0)  # a reader reads it as it is
    assert formats(path) == (PHOTOS, 0)
    SqliteState(path).close()
    assert formats(path) == (0, PHOTOS)
    assert cosines(stored(path), vectors).min() > 0.9999
    assert path.stat().st_size < before / 2


KILLED_MIGRATION = """
import os, signal, sys
from pathlib import Path
from photosorter.adapters.sqlite import connect
from photosorter.adapters.vectors import EMBEDDING_COLUMNS, EMBEDDING_SCHEMA, migrate
db = connect(Path(sys.argv[1]), EMBEDDING_SCHEMA, "test", added_columns=EMBEDDING_COLUMNS)
migrate(db, batch_rows=10, max_rows=30)  # three batches committed
db.execute("BEGIN IMMEDIATE")  # the fourth under way when the process is killed
db.execute("UPDATE embeddings SET vector = zeroblob(512), scale = 1.0 WHERE scale IS NULL")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_migration_killed_midway_leaves_every_embedding_readable(older: tuple[Path, np.ndarray]) -> None:
    path, vectors = older
    killed = subprocess.run([sys.executable, "-c", KILLED_MIGRATION, str(path)], capture_output=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert formats(path) == (PHOTOS - 30, 30)  # both formats side by side
    assert cosines(stored(path), vectors).min() > 0.9999
    catalog = SqliteCatalog(path)
    web_map = np.concatenate([chunk[1] for chunk in catalog.library_embeddings(MODEL, chunk=25)])
    catalog.close()
    assert cosines(web_map, vectors).min() > 0.9999
    SqliteState(path).close()  # the next writer finishes the migration
    assert formats(path) == (0, PHOTOS)
    assert cosines(stored(path), vectors).min() > 0.9999


def test_a_migration_without_disk_room_leaves_the_state_usable_and_goes_on_later(
        older: tuple[Path, np.ndarray], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source, vectors = older
    with small_tmpfs(tmp_path / "small", source.stat().st_size // 1024 + 160) as folder:
        path = folder / "state.sqlite3"
        shutil.copyfile(source, path)
        SqliteState(path).close()  # opens: the rewrite did not fit (the whole file goes through the WAL)
        assert "cannot store the embeddings" in caplog.text and "full" in caplog.text
        assert formats(path) == (PHOTOS, 0)
        assert cosines(stored(path), vectors).min() == pytest.approx(1.0)
        subprocess.run(["mount", "-o", "remount,size=8m", str(folder)], check=True)
        SqliteState(path).close()
        assert formats(path) == (0, PHOTOS)
