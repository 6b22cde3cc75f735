"""A damaged state database or kNN index is noticed at start and restored or rebuilt, with one clear line."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photosorter.adapters.sqlite import backup_folder
from photosorter.adapters.state import SqliteState
from photosorter.ml.index import UsearchIndex
from tests.conftest import write_photo


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "photosorter", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def sorted_library(tmp_path: Path, tiny_model: Path) -> tuple[list[str], Path]:
    """A library of 6 sorted photos, one labelled; the state database has a backup (taken at label's start)."""
    for i in range(6):
        write_photo(tmp_path / "inbox", f"IMG_{i}.jpg", (220, 20, 20), noise_seed=i)
    common = ["--library", str(tmp_path / "library"), "--data", str(tmp_path / "data"), "--model", str(tiny_model)]
    assert cli("sort", tmp_path / "inbox", *common).returncode == 0
    assert cli("label", tmp_path / "library" / "food" / "IMG_0.jpg", "beer", *common).returncode == 0
    return common, tmp_path / "data" / "state.sqlite3"


def photo_count(path: Path) -> int:
    state = SqliteState(path)
    try:
        return sum(state.library_counts().values())
    finally:
        state.close()


def test_an_emptied_state_database_is_restored_from_its_backup(sorted_library: tuple[list[str], Path]) -> None:
    common, path = sorted_library
    assert len(list(backup_folder(path).iterdir())) == 1
    path.write_bytes(b"")
    status = cli("status", *common)  # a reader holds no lock: it says so and touches nothing
    assert status.returncode != 0 and "is empty (0 bytes): the next sort, label or the daemon restores it" \
        in status.stderr
    assert path.stat().st_size == 0 and not list(path.parent.glob("state.sqlite3.damaged-*"))
    inbox = path.parent.parent / "inbox"  # sorted empty by the fixture
    restored = cli("sort", inbox, *common)
    assert restored.returncode == 0
    assert "was damaged (empty (0 bytes)): restored from the backup" in restored.stderr
    # As backed up when label started; the sort then found IMG_0 in beer/ (label's move) and took it as a label.
    status = cli("status", *common).stdout
    assert "food               5" in status and "beer               1" in status
    assert list(path.parent.glob("state.sqlite3.damaged-*"))  # kept, never deleted


def test_a_state_database_failing_its_integrity_check_is_restored(sorted_library: tuple[list[str], Path],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    _, path = sorted_library
    data = bytearray(path.read_bytes())
    assert len(data) >= 4 * 4096
    data[4096:3 * 4096] = b"\x5a" * (2 * 4096)  # pages 2 and 3 garbled
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        assert photo_count(path) == 6
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [f"the state database {path} was damaged"]


def test_status_never_sets_aside_a_database_it_only_reads(sorted_library: tuple[list[str], Path]) -> None:
    common, path = sorted_library
    data = bytearray(path.read_bytes())
    data[4096:3 * 4096] = b"\x5a" * (2 * 4096)  # damaged while, say, the daemon holds it
    path.write_bytes(bytes(data))
    cli("status", *common)
    assert path.read_bytes() == bytes(data) and not list(path.parent.glob("state.sqlite3.damaged-*"))


def test_a_damaged_database_without_a_backup_is_kept_aside_and_said_so(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + b"\x01" * 5000)
    with caplog.at_level(logging.ERROR):
        assert photo_count(path) == 0
    assert "no sound backup exists" in caplog.text
    assert len(list(tmp_path.glob("state.sqlite3.damaged-*"))) == 1


def test_a_knn_index_garbled_in_the_middle_is_rebuilt_not_trusted(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    index, path = UsearchIndex(16), tmp_path / "knn.usearch"
    categories = {key: "food" for key in range(1, 41)}
    for key in categories:
        index.upsert(key, rng.normal(size=16).astype(np.float32), "food")
    index.save(path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        assert UsearchIndex.load(path, 16, categories) is None
    assert "is damaged" in caplog.text


def test_a_knn_index_that_disagrees_with_the_labels_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    index, path = UsearchIndex(16), tmp_path / "knn.usearch"
    for key in range(1, 41):
        index.upsert(key, rng.normal(size=16).astype(np.float32), "food")
    index.save(path)  # sound bytes, sound checksum: only the count and the keys can tell
    labels = {key: "food" for key in range(1, 41)}
    assert UsearchIndex.load(path, 16, labels) is not None
    assert UsearchIndex.load(path, 16, {k: c for k, c in labels.items() if k != 7}) is None  # a label gone
    assert UsearchIndex.load(path, 16, {**labels, 41: "beer"}) is None  # a label the index never took in


def test_forgetting_faces_also_forgets_them_in_the_backups(tmp_path: Path) -> None:
    import sqlite3

    from photosorter.adapters.sqlite import back_up
    from photosorter.records import Face

    path = tmp_path / "state.sqlite3"
    state = SqliteState(path)
    photo = state.add_photo("0" * 64, 1, tmp_path / "a.jpg")
    face = Face(number=1, box=(0.1, 0.1, 0.5, 0.5), landmarks=(0.2, 0.2) * 5, score=0.9)
    state.save_faces(photo, "face-model", [face], np.ones((1, 128), dtype=np.float32))
    state.add_me_face(photo, 1, "face-model", np.ones(128, dtype=np.float32))
    assert back_up(state._db, path, every_s=0.0)
    state.forget_faces()
    state.close()
    backups = list(backup_folder(path).iterdir())
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as db:
        assert db.execute("SELECT (SELECT COUNT(*) FROM faces) + (SELECT COUNT(*) FROM me_faces)").fetchone() == (0,)
