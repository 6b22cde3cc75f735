"""A full disk: a clear error, nothing half-written, every photo whole in one place, and the run resumes once
there is room again (a real small tmpfs, remounted bigger)."""

from __future__ import annotations

import collections
import hashlib
import subprocess
from pathlib import Path

from photosorter.cli import main
from tests.conftest import jpeg_bytes
from tests.filesystems import small_tmpfs

PHOTOS = 12


def contents(*folders: Path) -> collections.Counter[str]:
    return collections.Counter(hashlib.sha256(p.read_bytes()).hexdigest() for folder in folders
                               for p in folder.rglob("*") if p.is_file())


def test_a_library_that_fills_up_mid_move_keeps_every_photo_whole_and_resumes(
        tmp_path: Path, tiny_model: Path, capfd: object) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    inbox.mkdir()
    for i in range(PHOTOS):  # ~190 KB each: about 2.3 MB in all for a 1 MB library
        (inbox / f"IMG_{i:02d}.jpg").write_bytes(jpeg_bytes((220, 20, 20), size=(800, 600), noise_seed=i))
    expected = contents(inbox)
    args = ["sort", str(inbox), "--library", str(library), "--data", str(tmp_path / "data"), "--model",
            str(tiny_model)]
    with small_tmpfs(library, 1024):
        assert main(args) == 0
        err = capfd.readouterr().err  # type: ignore[attr-defined]
        assert "to food: No space left on device; it stays where it was for the next run" in err
        assert contents(inbox, library) == expected  # each photo whole, in the inbox or the library
        assert not [p for p in library.rglob(".*") if p.is_file()], "a partial file was left"
        left = len(list(inbox.iterdir()))
        assert 0 < left < PHOTOS
        subprocess.run(["mount", "-o", "remount,size=8m", str(library)], check=True)
        assert main(args) == 0
        assert contents(library) == expected and list(inbox.iterdir()) == []
    print(f"disk full: {left} of {PHOTOS} photos waited in the inbox, all placed once there was room")
