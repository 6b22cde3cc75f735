"""Sorting a folder end to end with a tiny real ONNX model, through the real CLI."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import jpeg_bytes, write_photo


def run_cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "photosorter", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sort_moves_each_photo_into_its_category_folder(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    for i in range(3):
        write_photo(inbox, f"red{i}.jpg", (220, 20, 20), noise_seed=i)
    write_photo(inbox / "nested", "green.jpg", (20, 220, 20))
    result = run_cli("sort", inbox, "--library", library, "--data", tmp_path / "data", "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(library).as_posix() for p in files_under(library)) == [
        "food/red0.jpg", "food/red1.jpg", "food/red2.jpg", "scenery/green.jpg"]
    assert files_under(inbox) == []
    assert "food               3" in result.stdout


def test_sort_sets_unreadable_files_aside_and_keeps_every_byte(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    good = jpeg_bytes((220, 20, 20))
    inbox.mkdir()
    bomb = io.BytesIO()
    Image.new("L", (12000, 12000)).save(bomb, "PNG")
    hostile = {
        "zero.jpg": b"", "truncated.jpg": good[: len(good) // 3], "random.jpg": os.urandom(4000),
        "notes.txt": b"just text\n" * 20, "bomb.png": bomb.getvalue(),
    }
    for name, data in hostile.items():
        (inbox / name).write_bytes(data)
    heic = io.BytesIO()
    Image.new("RGB", (300, 200), (20, 220, 20)).save(heic, "HEIF")
    (inbox / "photo.heic").write_bytes(heic.getvalue())
    before = {sha(p) for p in files_under(inbox)}
    result = run_cli("sort", inbox, "--library", library, "--data", tmp_path / "data", "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert {sha(p) for p in files_under(library)} == before
    failed = {p.name for p in (library / "_failed").iterdir()}
    assert failed == {"zero.jpg", "truncated.jpg", "random.jpg", "notes.txt", "bomb.png"}
    assert (library / "scenery" / "photo.heic").is_file()
    assert "failed (in _failed or left in place): 5" in result.stdout
    assert "empty file" in result.stderr and "not an image" in result.stderr


def test_exact_duplicate_is_kept_once_and_the_copy_set_aside(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    data = jpeg_bytes((220, 20, 20), noise_seed=1)
    inbox.mkdir()
    (inbox / "a.jpg").write_bytes(data)
    (inbox / "b copy.jpg").write_bytes(data)
    result = run_cli("sort", inbox, "--library", library, "--data", tmp_path / "data", "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(library).as_posix() for p in files_under(library)] == [
        "_duplicates/b copy.jpg", "food/a.jpg"]


def test_symlinks_in_the_inbox_are_not_followed(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    outside = write_photo(tmp_path / "outside", "secret.jpg", (220, 20, 20))
    inbox.mkdir()
    (inbox / "link.jpg").symlink_to(outside)
    result = run_cli("sort", inbox, "--library", library, "--data", tmp_path / "data", "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert outside.is_file() and (inbox / "link.jpg").is_symlink()
    assert files_under(library) == []
    assert "symlink (not followed)" in result.stdout


def test_hostile_file_names_get_clean_library_names(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    inbox.mkdir()
    names = [b"bad-\xff.jpg", b"new\xe2\x80\xa8line.jpg", b"x" * 240 + b".jpg"]  # U+2028: a line break, not a control
    for seed, name in enumerate(names):
        with open(os.path.join(os.fsencode(inbox), name), "wb") as handle:
            handle.write(jpeg_bytes((220, 20, 20), noise_seed=seed))
    result = run_cli("sort", inbox, "--library", library, "--data", tmp_path / "data", "--model", tiny_model,
                     "--log-level", "debug")
    assert result.returncode == 0, result.stderr
    placed = sorted(p.name for p in (library / "food").iterdir())
    assert len(placed) == 3
    assert "bad-_.jpg" in placed and "new\u2028line.jpg" in placed  # kept as given, except what cannot be stored
    for name in placed:
        assert len(name.encode()) <= 200
    assert "inbox/new\\u2028line.jpg -> food" in result.stderr  # one log line per event, escaped


def test_near_duplicates_share_a_group(tmp_path: Path, tiny_model: Path) -> None:
    import sqlite3

    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    inbox.mkdir()
    base = Image.effect_mandelbrot((320, 240), (-2.0, -1.2, 1.0, 1.2), 60).convert("RGB")
    for quality, size, name in ((95, (320, 240), "shot.jpg"), (60, (200, 150), "shot-small.jpg")):
        buffer = io.BytesIO()
        base.resize(size).save(buffer, "JPEG", quality=quality)
        (inbox / name).write_bytes(buffer.getvalue())
    other = io.BytesIO()
    Image.effect_noise((320, 240), 80).convert("RGB").save(other, "JPEG")
    (inbox / "other.jpg").write_bytes(other.getvalue())
    assert run_cli("sort", inbox, "--library", library, "--data", data, "--model", tiny_model).returncode == 0
    with sqlite3.connect(data / "state.sqlite3") as db:
        groups = dict(db.execute("SELECT source_path, near_group FROM photos"))
    by_name = {Path(k).name: v for k, v in groups.items()}
    assert by_name["shot.jpg"] == by_name["shot-small.jpg"] != by_name["other.jpg"]


def test_close_calls_wait_in_unsure_for_the_digest_to_ask_about(tmp_path: Path, tiny_clip: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    for i, colour in enumerate([(220, 20, 20), (20, 220, 20), (20, 20, 220)]):
        write_photo(inbox, f"{i}.jpg", colour)
    result = run_cli("sort", inbox, "--library", library, "--data", tmp_path / "data", "--model", tiny_clip,
                     env={"PHOTOSORTER_UNSURE_MARGIN": "0.99"})  # a random tiny CLIP is never that sure
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(library).as_posix() for p in files_under(library)] == [
        "_unsure/0.jpg", "_unsure/1.jpg", "_unsure/2.jpg"]
    assert "unsure (in _unsure): 3" in result.stdout
