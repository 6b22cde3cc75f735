"""Text in the photo: the shipped PP-OCRv4 detector finds text on real text photos and on a MyFitnessPal-like
screen, not on animals, and moves the distribution only where a text-like category is in play."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from photosorter.adapters.images import decode_image
from photosorter.core.signals import Signals, adjust_for_text, apply_signals, wants_text
from photosorter.errors import ModelError
from photosorter.ml.textdetect import OnnxTextDetector, detector_input
from tests.conftest import shared_path
from tests.test_sort_folder import files_under, run_cli

NAMES = ("screenshot", "animal", "book", "text", "food", "myfitnesspal", "beer", "other")


@pytest.fixture(scope="module")
def detector() -> OnnxTextDetector:
    return OnnxTextDetector(threads=1)


def _coverage(detector: OnnxTextDetector, folder: Path, count: int) -> list[float]:
    return [detector.coverage(decode_image(path.read_bytes(), 256)) for path in sorted(folder.glob("*.jpg"))[:count]]


def test_real_text_photos_show_more_text_than_animals(detector: OnnxTextDetector) -> None:
    text = _coverage(detector, shared_path("eval-wild", "photos", "text"), 8)
    animals = _coverage(detector, shared_path("eval-wild", "photos", "animal"), 8)
    assert np.median(text) > 0.002 > np.median(animals)  # the bins' first edge
    assert sum(c > 0.02 for c in text) >= 3 > sum(c > 0.02 for c in animals)


def test_a_myfitnesspal_like_screen_is_mostly_text(detector: OnnxTextDetector) -> None:
    screen = Image.new("RGB", (390, 844), "white")
    draw = ImageDraw.Draw(screen)
    font = ImageFont.load_default(size=22)
    draw.rectangle((0, 0, 390, 70), fill=(0, 102, 238))
    draw.text((20, 20), "MyFitnessPal  Diary", fill="white", font=font)
    for row, line in enumerate(("Calories Remaining", "Goal 2,000  Food 1,240", "Breakfast  420",
                                "Oatmeal, 1 cup  300", "Protein 32g  Carbs 180g", "Lunch  610", "Dinner  210")):
        draw.text((20, 110 + 90 * row), line, fill=(30, 30, 30), font=font)
    assert detector.coverage(screen) > 0.02


def test_the_detector_input_is_a_multiple_of_32_with_the_long_side_kept() -> None:
    tensor = detector_input(Image.new("RGB", (1000, 600), "white"))
    assert tensor.shape == (1, 3, 192, 320) and tensor.dtype == np.float32 and abs(tensor.max() - 1.0) < 1e-6


def test_a_changed_model_file_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "text_det.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(ModelError, match="sha256"):
        OnnxTextDetector(fake).coverage(Image.new("RGB", (64, 64)))


def test_text_moves_a_photo_from_other_toward_text() -> None:
    dist = np.asarray([0.05, 0.05, 0.05, 0.3, 0.05, 0.0, 0.05, 0.45])
    moved = adjust_for_text(dist, NAMES, 0.12)
    assert moved.argmax() == NAMES.index("text") and abs(moved.sum() - 1) < 1e-9


def test_text_is_ignored_where_no_text_like_category_is_in_play() -> None:
    dist = np.asarray([0.01, 0.9, 0.01, 0.01, 0.04, 0.0, 0.01, 0.02])
    assert not wants_text(dist, NAMES)
    assert np.array_equal(apply_signals(dist, NAMES, Signals(text_coverage=0.3)), dist)


def test_sorting_with_the_text_signal_on_reads_text_photos(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in sorted(shared_path("eval-wild", "photos", "text").glob("*.jpg"))[:4]:
        shutil.copy(path, inbox / path.name)
    done = run_cli("sort", inbox, "--library", tmp_path / "library", "--data", tmp_path / "data", "--model",
                   shared_path("models", "mobilenet-v2"), env={"PHOTOSORTER_TEXT_SIGNAL": "true"})
    assert done.returncode == 0, done.stderr
    assert len(files_under(tmp_path / "library")) == 4
