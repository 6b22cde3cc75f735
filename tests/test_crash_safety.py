"""SIGKILL a real ``photosorter sort`` at many points; after a restart every photo exists exactly once."""

from __future__ import annotations

import collections
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import jpeg_bytes

PHOTOS = 40


def make_inbox(inbox: Path) -> collections.Counter[str]:
    inbox.mkdir(parents=True)
    colours = [(220, 20, 20), (20, 220, 20), (20, 20, 220), (128, 128, 128)]
    for i in range(PHOTOS):
        (inbox / f"IMG_{i:04d}.jpg").write_bytes(jpeg_bytes(colours[i % 4], size=(320, 240), noise_seed=i))
    (inbox / "IMG_dup.jpg").write_bytes((inbox / "IMG_0001.jpg").read_bytes())
    (inbox / "broken.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(300))
    return contents(inbox)


def contents(*folders: Path) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                found[hashlib.sha256(path.read_bytes()).hexdigest()] += 1
    return found


def sort_command(tmp: Path, model: Path) -> list[str]:
    return [sys.executable, "-m", "photosorter", "sort", str(tmp / "inbox"), "--library", str(tmp / "library"),
            "--data", str(tmp / "data"), "--model", str(model)]


def placed_count(library: Path) -> int:
    try:
        return sum(1 for p in library.rglob("*") if p.is_file())
    except OSError:  # a folder vanished or appeared mid-walk
        return 0


def test_killed_sort_resumes_with_every_photo_in_exactly_one_place(tmp_path: Path, tiny_model: Path) -> None:
    # Kill at spread-out points of progress (before the first move, then after every few photos placed),
    # with a few milliseconds of jitter so kills land inside moves and database writes too.
    kills = 14
    interrupted = 0
    for trial in range(kills):
        tmp = tmp_path / f"trial{trial}"
        expected = make_inbox(tmp / "inbox")
        target = trial * (PHOTOS + 2) // kills
        process = subprocess.Popen(sort_command(tmp, tiny_model), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        while process.poll() is None and placed_count(tmp / "library") < target:
            time.sleep(0.002)
        time.sleep(0.001 * (trial % 5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            interrupted += 1
        process.wait()
        finished = subprocess.run(sort_command(tmp, tiny_model), capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        assert contents(tmp / "inbox", tmp / "library") == expected, f"trial {trial}"
        assert not list((tmp / "inbox").rglob("*.jpg")), f"trial {trial}: photos left in the inbox"
        leftovers = [p for p in (tmp / "library").rglob("*") if p.name.startswith(".photosorter-partial")]
        assert leftovers == [], f"trial {trial}"
    assert interrupted >= kills - 2, f"only {interrupted} of {kills} runs were interrupted"


def test_a_photo_interrupted_mid_run_is_resumed_not_filed_as_its_own_duplicate(tmp_path: Path,
                                                                                tiny_model: Path) -> None:
    from photosorter.adapters.state import SqliteState

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    photo = inbox / "odd\u2028name.jpg"
    photo.write_bytes(jpeg_bytes((220, 20, 20)))
    state = SqliteState(tmp_path / "data" / "state.sqlite3")
    state.add_photo(hashlib.sha256(photo.read_bytes()).hexdigest(), photo.stat().st_size, photo)  # then: crash
    state.close()
    subprocess.run(sort_command(tmp_path, tiny_model), check=True, capture_output=True, timeout=120)
    assert [p.relative_to(tmp_path / "library").as_posix() for p in (tmp_path / "library").rglob("*.jpg")] == [
        "food/odd\u2028name.jpg"]
