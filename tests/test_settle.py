"""A file still being written is never moved: it waits until it has settled, and every copy is verified."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from photosorter.adapters.files import LocalFiles, StillChangingError, partial_path
from photosorter.cli import main
from tests.conftest import jpeg_bytes

CHUNK = 20_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def library_files(library: Path) -> dict[str, bytes]:
    return {p.relative_to(library).as_posix(): p.read_bytes() for p in library.rglob("*") if p.is_file()}


def slow_copy(target: Path, data: bytes, every_s: float) -> threading.Thread:
    """Write ``data`` to ``target`` ``CHUNK`` bytes at a time, like a slow network copy."""
    def write() -> None:
        with target.open("wb") as handle:
            for start in range(0, len(data), CHUNK):
                handle.write(data[start:start + CHUNK])
                handle.flush()
                time.sleep(every_s)
    thread = threading.Thread(target=write)
    thread.start()
    return thread


@pytest.fixture
def slow_inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PHOTOSORTER_SETTLE_SECONDS", "1")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    yield inbox


def test_a_photo_still_being_copied_is_not_moved_across_file_systems(
        tmp_path: Path, slow_inbox: Path, other_filesystem: Path, tiny_model: Path) -> None:
    photo = jpeg_bytes((220, 20, 20), size=(640, 480), noise_seed=1)
    movie = os.urandom(200_000)
    library = other_filesystem / "library"
    writers = [slow_copy(slow_inbox / "IMG_2001.jpg", photo, 0.25), slow_copy(slow_inbox / "IMG_2002.MOV", movie, 0.25)]
    args = ["sort", str(slow_inbox), "--library", str(library), "--data", str(tmp_path / "data"),
            "--model", str(tiny_model)]
    while any(w.is_alive() for w in writers):
        assert main(args) == 0
        for name, data in library_files(library).items():  # nothing half-written ever reaches the library
            assert sha(data) in (sha(photo), sha(movie)), f"{name} holds {len(data)} bytes"
    for writer in writers:
        writer.join()
    time.sleep(1.1)
    assert main(args) == 0
    assert sorted(map(sha, library_files(library).values())) == sorted([sha(photo), sha(movie)])
    assert list(slow_inbox.iterdir()) == []


def test_a_photo_changed_after_it_was_read_stays_where_it_is(tmp_path: Path,
                                                           other_filesystem: Path) -> None:
    src, dst = tmp_path / "a.jpg", other_filesystem / "food" / "a.jpg"
    src.write_bytes(b"x" * 50_000)
    files = LocalFiles()
    files.read(src)
    with src.open("ab") as handle:
        handle.write(b"more")
    with pytest.raises(StillChangingError):
        files.move(src, dst, 9)
    assert src.stat().st_size == 50_004 and not dst.exists() and not partial_path(dst, 9).exists()


def test_an_unread_file_waits_for_its_settle_time_then_moves(tmp_path: Path) -> None:
    src, dst = tmp_path / "clip.mov", tmp_path / "videos" / "clip.mov"
    src.write_bytes(b"movie")
    started = time.monotonic()
    LocalFiles(settle_s=0.3).move(src, dst, 1)
    assert time.monotonic() - started >= 0.25  # a wall-clock floor, not a speed assertion
    assert dst.read_bytes() == b"movie" and not src.exists()


def test_downloads_renamed_whole_into_the_data_folder_are_not_waited_for(tmp_path: Path) -> None:
    incoming = tmp_path / "data" / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "IMG_1.jpg").write_bytes(b"whole")
    files = LocalFiles(settle_s=30.0, atomic=(tmp_path / "data",))
    started = time.monotonic()
    assert files.read(incoming / "IMG_1.jpg") == b"whole"
    assert time.monotonic() - started < 10  # no 30 s settle wait (a loose bound, not a speed assertion)
