"""Moves: atomic, never overwriting, across file systems too, and settled after a crash."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest

from photosorter.adapters.files import free_path, move_file, partial_path, settle_move
from photosorter.progress import Progress


def test_move_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"new")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.jpg").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        move_file(tmp_path / "a.jpg", tmp_path / "lib" / "a.jpg", 1)
    assert (tmp_path / "lib" / "a.jpg").read_bytes() == b"old" and (tmp_path / "a.jpg").read_bytes() == b"new"
    assert free_path(tmp_path / "lib", "a.jpg") == tmp_path / "lib" / "a-2.jpg"


def test_move_across_file_systems_copies_then_removes_the_source(tmp_path: Path, other_filesystem: Path) -> None:
    library = other_filesystem
    source = tmp_path / "photo.jpg"
    source.write_bytes(b"x" * 100_000)
    os.utime(source, (1_600_000_000, 1_600_000_000))
    move_file(source, library / "food" / "photo.jpg", 7)
    moved = library / "food" / "photo.jpg"
    assert not source.exists() and moved.read_bytes() == b"x" * 100_000
    assert moved.stat().st_mtime == 1_600_000_000  # the photo keeps its time
    assert not partial_path(moved, 7).exists()


def test_settle_finishes_a_move_interrupted_after_the_link(tmp_path: Path) -> None:
    src, dst = tmp_path / "a.jpg", tmp_path / "lib" / "a.jpg"
    src.write_bytes(b"photo")
    dst.parent.mkdir()
    os.link(src, dst)  # the crash came between link and unlink
    assert settle_move(src, dst, 3) is True
    assert not src.exists() and dst.read_bytes() == b"photo"


def test_settle_rolls_back_a_half_copied_cross_device_move(tmp_path: Path, other_filesystem: Path) -> None:
    library = other_filesystem
    src, dst = tmp_path / "a.jpg", library / "a.jpg"
    src.write_bytes(b"photo")
    partial_path(dst, 4).write_bytes(b"pho")  # the crash came during the copy
    assert settle_move(src, dst, 4) is False
    assert src.read_bytes() == b"photo" and not dst.exists() and not partial_path(dst, 4).exists()


def test_settle_keeps_both_when_the_destination_holds_something_else(tmp_path: Path) -> None:
    src, dst = tmp_path / "a.jpg", tmp_path / "b.jpg"
    src.write_bytes(b"photo")
    dst.write_bytes(b"another photo")
    assert settle_move(src, dst, 5) is False
    assert src.read_bytes() == b"photo" and dst.read_bytes() == b"another photo"


def test_progress_off_a_terminal_is_periodic_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    progress = Progress(3, stream=stream, interval_s=0.0)
    with caplog.at_level(logging.INFO, logger="photosorter.progress"):
        for _ in range(3):
            progress.advance()
    progress.close()
    assert stream.getvalue() == ""
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["progress: 1/3 photos", "progress: 2/3 photos"]
    assert "/s, ETA 0:00:0" in caplog.records[0].getMessage()
