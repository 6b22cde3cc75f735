"""A source's small rendition stands in for the original when the sorter decodes a photo."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from photosorter.adapters.previews import PreviewFolder
from tests.conftest import jpeg_bytes
from tests.test_sort_folder import files_under, run_cli


def test_a_raw_the_sorter_cannot_decode_is_sorted_from_its_preview_which_then_goes(
        tmp_path: Path, tiny_model: Path) -> None:
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    inbox.mkdir()
    raw = b"II*\x00" + os.urandom(5000)  # a camera RAW: not something Pillow reads
    (inbox / "IMG_1.dng").write_bytes(raw)
    (inbox / "IMG_2.dng").write_bytes(raw[::-1])  # no preview: set aside as before
    previews = PreviewFolder(data / "previews")
    previews.folder.mkdir(parents=True)
    previews.path_for(hashlib.sha256(raw).hexdigest()).write_bytes(jpeg_bytes((220, 20, 20)))
    result = run_cli("sort", inbox, "--library", library, "--data", data, "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(library).as_posix() for p in files_under(library)] == ["_failed/IMG_2.dng",
                                                                                "food/IMG_1.dng"]
    assert (library / "food" / "IMG_1.dng").read_bytes() == raw  # the original is what is filed
    assert list(previews.folder.iterdir()) == []


def test_an_unreadable_preview_falls_back_to_the_photo(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    inbox.mkdir()
    photo = jpeg_bytes((220, 20, 20))
    (inbox / "IMG_1.jpg").write_bytes(photo)
    previews = PreviewFolder(data / "previews")
    previews.folder.mkdir(parents=True)
    previews.path_for(hashlib.sha256(photo).hexdigest()).write_bytes(b"\xff\xd8 cut off")
    result = run_cli("sort", inbox, "--library", library, "--data", data, "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(library).as_posix() for p in files_under(library)] == ["food/IMG_1.jpg"]
    assert "preview" in result.stderr and "unreadable" in result.stderr


def test_previews_whose_photo_never_arrived_are_pruned_by_age(tmp_path: Path) -> None:
    previews = PreviewFolder(tmp_path / "previews")
    previews.folder.mkdir()
    old, fresh = previews.path_for("a" * 64), previews.path_for("b" * 64)
    mark = previews.folder / f"{'a' * 64}.screenshot"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    mark.write_bytes(b"")  # what iCloud said of it goes with it
    week_ago = time.time() - 8 * 86400
    for path in (old, mark):
        os.utime(path, (week_ago, week_ago))
    assert previews.prune(7 * 86400) == 2
    assert [p.name for p in previews.folder.iterdir()] == [fresh.name]
    assert PreviewFolder(tmp_path / "absent").prune(1) == 0
