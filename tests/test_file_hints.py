"""What the file says: screenshots by iOS's comment or a device screen's exact size without camera EXIF,
camera photos by their EXIF; and how that moves the category distribution."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from photosorter.adapters.filemeta import read_file_hints
from photosorter.core.faces import FaceKind, FaceVerdict
from photosorter.core.signals import FileHints, Signals, adjust_for_file, apply_signals
from tests.conftest import shared_path
from tests.test_sort_folder import files_under, run_cli

NAMES = ("screenshot", "people", "text", "myfitnesspal", "other")


def _image(size: tuple[int, int], fmt: str, exif: dict[int, object] | None = None,
           user_comment: bytes | None = None) -> bytes:
    image = Image.new("RGB", size, (240, 240, 240))
    tags = Image.Exif()
    for key, value in (exif or {}).items():
        tags[key] = value
    if user_comment is not None:
        tags.get_ifd(0x8769)[0x9286] = user_comment
    buffer = io.BytesIO()
    image.save(buffer, fmt, exif=tags.tobytes()) if (exif or user_comment) else image.save(buffer, fmt)
    return buffer.getvalue()


def test_an_iphone_sized_png_without_camera_exif_is_a_screenshot() -> None:
    hints = read_file_hints(_image((1170, 2532), "PNG"))
    assert hints == FileHints(screen_size=True, png=True)
    assert hints.screenshot_weight() > 0


def test_ios_screenshot_comment_is_read_from_exif() -> None:
    hints = read_file_hints(_image((1179, 2556), "JPEG", user_comment=b"ASCII\x00\x00\x00Screenshot"))
    assert hints.screenshot_comment and hints.screenshot_weight() >= 0.8


def test_a_camera_photo_says_it_is_not_a_screenshot() -> None:
    hints = read_file_hints(_image((1080, 1920), "JPEG", exif={0x010F: "Apple", 0x0110: "iPhone 15"}))
    assert hints.camera and hints.screenshot_weight() == 0.0
    dist = np.asarray([0.5, 0.2, 0.1, 0.1, 0.1])
    assert adjust_for_file(dist, NAMES, hints)[0] < 0.2


def test_a_photo_of_another_size_says_nothing() -> None:
    hints = read_file_hints(_image((1280, 853), "JPEG"))
    dist = np.asarray([0.1, 0.5, 0.2, 0.1, 0.1])
    assert hints == FileHints() and np.array_equal(apply_signals(dist, NAMES, Signals(file=hints)), dist)


def test_a_screenshot_moves_toward_the_screen_categories_as_the_model_shares_them() -> None:
    dist = np.asarray([0.1, 0.1, 0.4, 0.3, 0.1])  # a MyFitnessPal screen the model read as text
    moved = adjust_for_file(dist, NAMES, FileHints(screen_size=True, png=True))
    assert abs(moved.sum() - 1) < 1e-9 and moved.argmax() == NAMES.index("myfitnesspal")
    assert moved[0] > dist[0] and moved[2] < dist[2]


def test_unreadable_bytes_say_nothing() -> None:
    assert read_file_hints(b"not an image") == FileHints()


def test_prominent_faces_outweigh_a_screenshot_comment() -> None:
    dist = np.asarray([0.05, 0.9, 0.02, 0.01, 0.02])  # a macOS screenshot of a portrait
    signals = Signals(faces=FaceVerdict(FaceKind.PEOPLE, -1.0, 0.1), file=FileHints(screenshot_comment=True))
    assert apply_signals(dist, NAMES, signals).argmax() == NAMES.index("people")


def test_a_phone_screenshot_png_is_sorted_as_a_screen(tmp_path: Path) -> None:
    """End to end with the real model: an iPhone-sized PNG (no camera EXIF) of a MyFitnessPal-like diary.
    The same picture at another size goes to animal (score 0.32): the file's size and format decide."""
    screen = Image.new("RGB", (1170, 2532), "white")
    draw = ImageDraw.Draw(screen)
    font = ImageFont.load_default(size=60)
    draw.rectangle((0, 0, 1170, 200), fill=(0, 102, 238))
    draw.text((60, 70), "MyFitnessPal  Diary", fill="white", font=font)
    for row, line in enumerate(("Calories Remaining", "Goal 2,000  Food 1,240", "Breakfast 420", "Lunch 610")):
        draw.text((60, 330 + 260 * row), line, fill=(30, 30, 30), font=font)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    screen.save(inbox / "IMG_0001.PNG")
    done = run_cli("sort", inbox, "--library", tmp_path / "library", "--data", tmp_path / "data",
                   "--model", shared_path("models", "mobilenet-v2"))
    assert done.returncode == 0, done.stderr
    assert [p.parent.name for p in files_under(tmp_path / "library")] in (["screenshot"], ["myfitnesspal"])


def _chunks(data: bytes) -> list[bytes]:
    chunks, offset = [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 4], "big")
        chunks.append(data[offset:offset + 12 + length])
        offset += 12 + length
    return chunks


def test_a_png_is_read_for_hints_without_decoding_its_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(self: PngImagePlugin.PngImageFile) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    assert read_file_hints(_image((1170, 2532), "PNG")) == FileHints(screen_size=True, png=True)


def test_exif_after_a_pngs_pixels_is_still_found() -> None:
    data = _image((1170, 2532), "PNG", exif={0x0110: "iPhone 15"})
    chunks = _chunks(data)
    exif = next(c for c in chunks if c[4:8] == b"eXIf")
    rest = [c for c in chunks if c is not exif]
    moved = data[:8] + b"".join(rest[:-1]) + exif + rest[-1]  # eXIf just before IEND, after the pixels
    assert moved.find(b"eXIf") > moved.find(b"IDAT")
    assert read_file_hints(moved).camera


def test_icloud_s_screenshot_mark_outweighs_pixels_that_look_like_something_else() -> None:
    names = ("screenshot", "food", "myfitnesspal", "other")
    food = np.asarray([1e-9, 0.999, 1e-9, 0.001])
    moved = adjust_for_file(food, names, FileHints(camera=True, source_screenshot=True))  # even with camera EXIF
    assert moved.argmax() == 0 and moved[0] > 0.8 and abs(moved.sum() - 1) < 1e-9


def test_a_marked_screenshot_the_model_reads_as_myfitnesspal_stays_myfitnesspal() -> None:
    names = ("screenshot", "food", "myfitnesspal", "other")
    diary = np.asarray([0.1, 0.5, 0.3, 0.1])
    assert adjust_for_file(diary, names, FileHints(source_screenshot=True)).argmax() == 2
