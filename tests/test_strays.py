"""Odd files and odd names: nothing hangs, nothing is misfiled, nothing stays behind without a word."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from PIL import Image

from photosorter.adapters.files import LocalFiles
from photosorter.adapters.state import SqliteState
from photosorter.cli import main
from photosorter.core.naming import safe_name
from photosorter.records import PhotoStatus
from tests.conftest import jpeg_bytes, write_photo


def sort(tmp_path: Path, model: Path) -> None:
    assert main(["sort", str(tmp_path / "inbox"), "--library", str(tmp_path / "library"), "--data",
                 str(tmp_path / "data"), "--model", str(model)]) == 0


def library_names(tmp_path: Path) -> list[str]:
    return sorted(p.relative_to(tmp_path / "library").as_posix() for p in (tmp_path / "library").rglob("*")
                  if p.is_file())


def finishes(work: object, timeout_s: float = 10.0) -> BaseException | None:
    """Run ``work`` on a thread; fail if it is still running after ``timeout_s`` (it would hang forever)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            work()  # type: ignore[operator]
            outcome.append(None)
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), "hung on a FIFO"
    return outcome[0]


def test_a_fifo_swapped_in_after_the_listing_is_refused_without_hanging(tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "inbox", "IMG_1.jpg", (1, 2, 3))
    files = LocalFiles()
    assert list(files.list_inbox(tmp_path / "inbox")) == [(photo, None)]
    photo.unlink()
    os.mkfifo(photo)
    assert isinstance(finishes(lambda: files.read(photo)), OSError)
    assert isinstance(finishes(lambda: files.move(photo, tmp_path / "library" / "IMG_1.jpg", 1)), OSError)


def test_a_heic_cut_short_goes_to_failed_even_when_its_thumbnail_survived(tmp_path: Path,
                                                                        tiny_model: Path) -> None:
    encoder = shutil.which("heif-enc")
    if encoder is None:
        pytest.fail("heif-enc not found: apt-get install -y libheif-examples")
    Image.new("RGB", (2000, 1500), (220, 20, 20)).save(tmp_path / "big.png")
    heic = tmp_path / "inbox" / "IMG_1.HEIC"
    heic.parent.mkdir()
    subprocess.run([encoder, "-t", "320", "-q", "50", str(tmp_path / "big.png"), "-o", str(heic)], check=True,
                   capture_output=True)
    data = bytearray(heic.read_bytes())
    mdat = data.index(b"mdat") - 4  # the file ends before the data box does, as when a copy was cut off
    data[mdat:mdat + 4] = (int.from_bytes(data[mdat:mdat + 4], "big") + 100_000).to_bytes(4, "big")
    heic.write_bytes(bytes(data))
    sort(tmp_path, tiny_model)
    assert library_names(tmp_path) == ["_failed/IMG_1.heic"]


@pytest.mark.parametrize("name", ["clip.mts", "clip.M2TS", "clip.mpg", "clip.wmv"])
def test_camcorder_dvd_and_windows_videos_go_to_videos(tmp_path: Path, tiny_model: Path, name: str) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / name).write_bytes(os.urandom(3000))
    sort(tmp_path, tiny_model)
    assert library_names(tmp_path) == [f"videos/{name.rsplit('.', 1)[0]}.{name.rsplit('.', 1)[1].lower()}"]


def test_a_hidden_photo_name_is_reported_not_silently_left(tmp_path: Path, tiny_model: Path,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    write_photo(tmp_path / "inbox", "..jpg", (1, 2, 3))
    write_photo(tmp_path / "inbox", "._IMG_1.jpg", (1, 2, 3))  # a macOS resource fork: not worth a word
    sort(tmp_path, tiny_model)
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == ["..jpg", "._IMG_1.jpg"]
    lines = [line for line in capfd.readouterr().err.splitlines() if "hidden name" in line]
    assert len(lines) == 1 and lines[0].endswith(
        f"WARNING photosorter.pipeline: skipped {tmp_path / 'inbox' / '..jpg'}: hidden name (it starts with a dot): "
        "rename it to have it sorted")


def test_a_name_with_control_characters_stays_in_the_inbox_with_one_line(
        tmp_path: Path, tiny_model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    names = ["new\nline.jpg", "esc\x1b[31m.jpg", "bell\x07.jpg", "tab\there.jpg"]
    for i, name in enumerate(names):
        write_photo(tmp_path / "inbox", name, (220, 20, 20), noise_seed=i)
    write_photo(tmp_path / "inbox", "plain.jpg", (220, 20, 20), noise_seed=9)
    sort(tmp_path, tiny_model)
    assert library_names(tmp_path) == ["food/plain.jpg"]
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == sorted(names)
    assert capfd.readouterr().err.count("its name holds control characters") == len(names)


def test_control_characters_never_reach_a_library_name() -> None:
    assert [safe_name(n) for n in ("new\nline.jpg", "esc\x1b[31m.jpg", "bell\x07.jpg")] == [
        "new_line.jpg", "esc_[31m.jpg", "bell_.jpg"]


def test_label_settles_a_move_a_killed_run_left_before_it_moves_anything(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    photo = write_photo(inbox, "IMG_1.jpg", (220, 20, 20))
    state = SqliteState(tmp_path / "data" / "state.sqlite3")
    dst = library / "food" / "IMG_1.jpg"
    dst.parent.mkdir(parents=True)
    state.begin_move(state.add_photo("0" * 64, 1, photo), photo, dst, "food/IMG_1.jpg", PhotoStatus.PLACED)
    os.link(photo, dst)  # killed between the link and the unlink
    state.close()
    example = tmp_path / "example.jpg"
    example.write_bytes(jpeg_bytes((20, 220, 20)))
    assert main(["label", str(example), "scenery", "--library", str(library), "--data", str(tmp_path / "data"),
                 "--model", str(tiny_model)]) == 0
    state = SqliteState(tmp_path / "data" / "state.sqlite3")
    assert state.pending_moves() == [] and not photo.exists() and dst.exists()
