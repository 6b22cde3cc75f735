"""A read-only inbox blocks nothing: photos stay there whole, and recovery never stops at a move it cannot finish."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from photosorter.adapters.files import LocalFiles
from photosorter.adapters.state import SqliteState
from photosorter.cli import main
from photosorter.placing import Placer
from photosorter.records import PhotoStatus
from tests.conftest import write_photo
from tests.filesystems import read_only_bind


def every_file(*folders: Path) -> list[str]:
    return sorted(p.name for folder in folders for p in folder.rglob("*") if p.is_file())


def test_sorting_a_read_only_inbox_leaves_each_photo_in_one_place_run_after_run(tmp_path: Path,
                                                                                tiny_model: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    for i in range(3):
        write_photo(inbox, f"IMG_{i}.jpg", (220, 20, 20), noise_seed=i)
    args = ["sort", str(inbox), "--library", str(library), "--data", str(tmp_path / "data"), "--model", str(tiny_model)]
    with read_only_bind(inbox):
        assert main(args) == 0
        assert main(args) == 0
    assert every_file(inbox, library) == ["IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg"]
    assert every_file(inbox) == ["IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg"]
    state = SqliteState(tmp_path / "data" / "state.sqlite3")
    assert state.pending_moves() == []


def test_recovery_sets_aside_a_move_it_cannot_finish_and_goes_on(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    stuck, fine = write_photo(inbox, "stuck.jpg", (1, 2, 3)), write_photo(inbox, "fine.jpg", (3, 2, 1))
    state = SqliteState(tmp_path / "state.sqlite3")
    moves = []
    for photo in (stuck, fine):  # each crashed between the link into the library and the unlink
        dst = library / "food" / photo.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        moves.append(state.begin_move(state.add_photo("0" * 64, 1, photo), photo, dst, f"food/{photo.name}",
                                      PhotoStatus.PLACED))
        os.link(photo, dst)
    fine.unlink()  # the second was finished on disk before the crash
    with read_only_bind(inbox), read_only_bind(library), caplog.at_level(logging.ERROR):
        assert Placer(state, LocalFiles(), library).recover() == 2
    assert state.pending_moves() == [] and [m.id for m in state.problem_moves()] == [moves[0].id]
    assert "set aside as a problem" in caplog.text
    assert state.move_done(moves[1].id)
