"""A full disk: a clear error, nothing half-written, every photo whole in one place, and the run resumes once
there is room again (a real small tmpfs, remounted bigger)."""

from __future__ import annotations

import collections
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from photosorter.cli import main
from tests.conftest import jpeg_bytes
from tests.filesystems import small_tmpfs
from tests.servers.fake_icloud import FakeICloud

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


def test_a_data_folder_that_fills_up_mid_download_stops_cleanly_and_resumes(tmp_path: Path, tiny_model: Path,
                                                                           fake_icloud: FakeICloud) -> None:
    fake_icloud.load_recording(copies=2)  # 200 assets, ~160 KB of originals and movies
    originals = {hashlib.sha256(fake_icloud.contents[p.content_keys["resOriginal"]]).hexdigest()
                 for p in fake_icloud.photos}
    data = tmp_path / "data"
    env = {**os.environ, "PHOTOSORTER_LIBRARY": str(tmp_path / "library"), "PHOTOSORTER_DATA": str(data),
           "PHOTOSORTER_MODEL": str(tiny_model), "PHOTOSORTER_FACES": "false", "APPLE_ID": fake_icloud.apple_id,
           "APPLE_PASSWORD": fake_icloud.password, "PHOTOSORTER_ICLOUD_SERVER": fake_icloud.url,
           "REQUESTS_CA_BUNDLE": str(fake_icloud.cert), "CURL_CA_BUNDLE": str(fake_icloud.cert),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def sync() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "photosorter", "sync"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    with small_tmpfs(data, 700):
        full = sync()
        assert full.returncode == 1, full.stderr[-2000:]
        assert "Traceback" not in full.stderr and "disk is full" in full.stderr.splitlines()[-1], full.stderr[-4000:]
        assert not [p for p in data.rglob(".photosorter-*") if p.is_file()], "a partial download was left"
        subprocess.run(["mount", "-o", "remount,size=20m", str(data)], check=True)
        again = sync()
        assert again.returncode == 0, again.stderr[-2000:]
    placed = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "library").rglob("*") if p.is_file()}
    assert originals <= placed
    assert not (tmp_path / "library" / "_duplicates").exists()  # the download cut short is not filed twice
    print(f"disk full mid-download: {full.stderr.splitlines()[-1][20:]}")
