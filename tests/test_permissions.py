"""Everything photosorter keeps is private to it: the data folder 0700, every file in it 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from photosorter.adapters.state import SqliteState
from tests.conftest import write_photo


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask most systems start a process with: anything not made private on purpose is 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes_under(folder: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(folder.lstat().st_mode)}
    for path in folder.rglob("*"):
        found[path.relative_to(folder).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def cli(*args: str | Path) -> None:
    subprocess.run([sys.executable, "-m", "photosorter", *map(str, args)], check=True, capture_output=True,
                   timeout=120)


def test_every_file_in_the_data_folder_is_private_after_sorting_and_labelling(
        tmp_path: Path, tiny_model: Path, open_umask: None) -> None:
    data, library = tmp_path / "data", tmp_path / "library"
    (data / "digests").mkdir(parents=True)
    (data / "digests" / "digest-1.eml").write_bytes(b"From: an older version\n")  # left readable by it
    (data / "icloud").mkdir()
    (data / "icloud" / "me.session").write_text("{}")
    os.chmod(data, 0o755)
    for i in range(2):
        write_photo(tmp_path / "inbox", f"IMG_{i}.jpg", (220, 20, 20), noise_seed=i)
    common = ("--library", library, "--data", data, "--model", tiny_model)
    cli("sort", tmp_path / "inbox", *common)
    cli("label", library / "food" / "IMG_0.jpg", "beer", *common)
    modes = modes_under(data)
    wrong = {name: oct(mode) for name, mode in modes.items()
             if mode != (0o700 if (data / name).is_dir() else 0o600)}
    print(f"permissions checked: {len(modes)} files and folders in the data folder")
    assert wrong == {}
    assert any(name.endswith(".usearch") for name in modes) and "state.sqlite3" in modes
    assert stat.S_IMODE(library.stat().st_mode) == 0o700


def test_the_database_and_its_write_ahead_log_are_private_while_open(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "data" / "state.sqlite3"
    state = SqliteState(path)
    photo = state.add_photo("0" * 64, 1, tmp_path / "a.jpg")
    state.save_faces(photo, "face-model", [], np.zeros((0, 128), dtype=np.float32))
    try:
        parts = [path, path.with_name("state.sqlite3-wal"), path.with_name("state.sqlite3-shm")]
        assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in parts} == {p.name: "0o600" for p in parts}
    finally:
        state.close()
