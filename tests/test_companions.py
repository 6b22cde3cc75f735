"""A live photo's movie and a photo's sidecars go wherever the photo goes; videos alone go to videos/."""

from __future__ import annotations

from pathlib import Path

import pytest

from photosorter.adapters.files import LocalFiles
from photosorter.adapters.state import SqliteState
from photosorter.core.companions import group_folder, renamed
from photosorter.placing import Placer
from photosorter.records import PhotoStatus
from tests.conftest import write_photo
from tests.test_sort_folder import files_under, run_cli


def test_companions_share_the_photo_stem_or_carry_its_whole_name() -> None:
    plan = group_folder(["IMG_1.HEIC", "IMG_1.MOV", "img_1.aae", "IMG_1.HEIC.xmp", "IMG_2.jpg", "clip.mp4",
                         "lonely.xmp", "IMG_3.heic", "IMG_3.jpg", "IMG_3.mov", "movie.avi"])
    assert plan.photos == {"IMG_1.HEIC": ["IMG_1.MOV", "img_1.aae", "IMG_1.HEIC.xmp"], "IMG_2.jpg": [],
                           "IMG_3.heic": [], "IMG_3.jpg": []}
    assert sorted(plan.videos) == ["IMG_3.mov", "clip.mp4", "movie.avi"]  # IMG_3.mov: two stills could own it
    assert plan.orphans == ["lonely.xmp"]


def test_a_companion_is_renamed_with_its_photo() -> None:
    assert renamed("IMG_1.MOV", "IMG_1.HEIC", "IMG_1-2.HEIC") == "IMG_1-2.MOV"
    assert renamed("IMG_1.HEIC.xmp", "IMG_1.HEIC", "IMG_1-2.HEIC") == "IMG_1-2.HEIC.xmp"


def test_sort_keeps_the_live_photo_movie_beside_its_still_and_files_videos_apart(
        tmp_path: Path, tiny_model: Path) -> None:
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    write_photo(inbox, "IMG_1.jpg", (220, 20, 20))
    (inbox / "IMG_1.MOV").write_bytes(b"live photo movie 1")
    (inbox / "IMG_1.AAE").write_bytes(b"<plist/>")
    (inbox / "clip.mp4").write_bytes(b"a video")
    (inbox / "lonely.xmp").write_bytes(b"<x/>")
    (library / "food").mkdir(parents=True)
    (library / "food" / "IMG_1-2.MOV").write_bytes(b"an older movie, left alone")
    write_photo(library / "food", "IMG_1.jpg", (10, 10, 10))  # taken: the new still needs another name
    result = run_cli("sort", inbox, "--library", library, "--data", data, "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    placed = [p.relative_to(library).as_posix() for p in files_under(library)]
    assert placed == ["food/IMG_1-2.MOV", "food/IMG_1-3.aae", "food/IMG_1-3.jpg", "food/IMG_1-3.mov",
                      "food/IMG_1.jpg", "videos/clip.mp4"]  # IMG_1-2.mov would clash on a case-blind share
    assert (library / "food" / "IMG_1-3.mov").read_bytes() == b"live photo movie 1"
    assert [p.name for p in files_under(inbox)] == ["lonely.xmp"]
    assert "videos (in videos, not classified): 1" in result.stdout
    assert "lonely.xmp: a sidecar without its photo" in result.stdout

    relabel = run_cli("label", library / "food" / "IMG_1-3.jpg", "beer", "--library", library, "--data", data,
                      "--model", tiny_model)
    assert relabel.returncode == 0, relabel.stderr
    assert sorted(p.name for p in (library / "beer").iterdir()) == ["IMG_1-3.aae", "IMG_1-3.jpg", "IMG_1-3.mov"]


class PowerCut(LocalFiles):
    """Files that stop working (the process dies) when a move of a file named ``*<suffix>`` starts."""

    def __init__(self, suffix: str) -> None:
        super().__init__()
        self.suffix = suffix

    def move(self, src: Path, dst: Path, move_id: int) -> None:
        if src.name.endswith(self.suffix):
            raise SystemExit("power cut")
        super().move(src, dst, move_id)


def crash_while_placing(tmp_path: Path, suffix: str) -> tuple[Path, Path, SqliteState]:
    """A live photo in the inbox whose placing into food/ dies when a ``*<suffix>`` file starts moving."""
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    write_photo(inbox, "IMG_1.jpg", (220, 20, 20))
    (inbox / "IMG_1.MOV").write_bytes(b"movie")
    state = SqliteState(tmp_path / "state.sqlite3")
    photo = state.add_photo("0" * 64, 1, inbox / "IMG_1.jpg")
    with pytest.raises(SystemExit):
        Placer(state, PowerCut(suffix), library).place(photo, inbox / "IMG_1.jpg", "food", PhotoStatus.PLACED)
    return inbox, library, state


def test_a_crash_after_the_photo_moved_carries_its_movie_after_it_on_restart(tmp_path: Path) -> None:
    inbox, library, state = crash_while_placing(tmp_path, ".MOV")
    assert (library / "food" / "IMG_1.jpg").exists() and (inbox / "IMG_1.MOV").exists()
    assert Placer(state, LocalFiles(), library).recover() == 1
    assert sorted(p.name for p in (library / "food").iterdir()) == ["IMG_1.jpg", "IMG_1.mov"]
    assert list(inbox.iterdir()) == [] and state.pending_moves() == []


def test_a_crash_before_the_photo_moved_leaves_photo_and_movie_in_the_inbox(tmp_path: Path) -> None:
    inbox, library, state = crash_while_placing(tmp_path, "")
    assert Placer(state, LocalFiles(), library).recover() == 2
    assert sorted(p.name for p in inbox.iterdir()) == ["IMG_1.MOV", "IMG_1.jpg"]
    assert not (library / "food").exists() or list((library / "food").iterdir()) == []
