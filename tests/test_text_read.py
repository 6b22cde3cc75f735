"""Words in the photo: the shipped PP-OCRv4 recogniser reads the largest lines the detector finds (our own
box finding and CTC decoding), a MyFitnessPal-like screen is read and sorted as myfitnesspal, real text
photos give words, and words move the distribution only where they can decide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from photosorter.adapters.images import decode_image
from photosorter.core.signals import READ_FROM, Signals, adjust_for_words, apply_signals, read_from
from photosorter.errors import ModelError
from photosorter.ml.textread import Box, OnnxTextReader, ctc_greedy, line_input, text_boxes
from tests.conftest import shared_path
from tests.test_sort_folder import files_under, run_cli

NAMES = ("screenshot", "animal", "book", "text", "food", "myfitnesspal", "beer", "other")
FONTS = Path("/usr/share/fonts/truetype/dejavu")


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    path = FONTS / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if not path.exists():
        pytest.fail(f"{path} not found: apt-get install -y fonts-dejavu-core")
    return ImageFont.truetype(str(path), size)


def diary_screen() -> Image.Image:
    """A phone screen (1170x2532) laid out like MyFitnessPal's diary: the app's name in a blue bar, then
    the headings and numbers of a day's food."""
    screen = Image.new("RGB", (1170, 2532), "white")
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, 1170, 260), fill=(0, 102, 238))
    draw.text((60, 120), "MyFitnessPal", fill="white", font=font(64, bold=True))
    for row, line in enumerate(("Calories Remaining", "Goal 2,000  Food 1,240", "Breakfast  420",
                                "Oatmeal, 1 cup  300", "Protein 32g  Carbs 180g", "Lunch  610", "Dinner  210")):
        draw.text((60, 360 + 260 * row), line, fill=(30, 30, 30), font=font(48))
    return screen


@pytest.fixture(scope="module")
def reader() -> OnnxTextReader:
    return OnnxTextReader(threads=1)


def test_a_myfitnesspal_like_screen_is_read_as_myfitnesspal(reader: OnnxTextReader) -> None:
    coverage, lines = reader.look(diary_screen(), READ_FROM)
    assert coverage > READ_FROM and lines is not None
    assert any("myfitnesspal" in line.lower().replace(" ", "") for line in lines), lines
    screenshot_like = np.asarray([0.6, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.15])
    moved = apply_signals(screenshot_like, NAMES, Signals(text_coverage=coverage, words=lines))
    assert NAMES[int(moved.argmax())] == "myfitnesspal"


def test_real_text_photos_give_words(reader: OnnxTextReader) -> None:
    photos = sorted(shared_path("eval-wild", "photos", "text").glob("*.jpg"))[:6]
    read = [reader.look(decode_image(path.read_bytes(), 224), READ_FROM)[1] or () for path in photos]
    worded = [lines for lines in read if any(len(word) >= 3 for line in lines for word in line.split())]
    assert len(worded) >= 3, read


def test_nothing_is_read_below_the_coverage_or_when_not_asked(reader: OnnxTextReader) -> None:
    assert reader.look(Image.new("RGB", (320, 240), "white"), READ_FROM) == (0.0, None)
    assert reader.look(diary_screen(), None)[1] is None


def test_words_are_read_only_where_a_screen_is_in_play_and_an_app_category_exists() -> None:
    screen = np.asarray([0.3, 0.3, 0.0, 0.2, 0.0, 0.0, 0.0, 0.2])
    assert read_from(screen, NAMES) == READ_FROM
    assert read_from(screen[[0, 1, 3, 7]], ("screenshot", "animal", "text", "other")) is None  # no app category
    assert read_from(np.asarray([0.05, 0.3, 0.1, 0.3, 0.0, 0.0, 0.2, 0.05]), NAMES) is None  # no screen in play


def test_each_line_of_the_map_is_a_box_largest_first_grown_back_to_the_line() -> None:
    probabilities = np.zeros((100, 200), dtype=np.float32)
    probabilities[10:16, 20:60] = 0.9  # a short line
    probabilities[50:58, 20:180] = 0.9  # a long one
    probabilities[80, 5] = 0.9  # a speck: too small to be a line
    long, short = text_boxes(probabilities)
    assert long.left < 20 / 200 < 180 / 200 < long.right and long.top < 50 / 100 < 58 / 100 < long.bottom
    assert short.top < 10 / 100 and short.bottom < long.top


def test_a_u_shaped_line_is_one_box() -> None:
    probabilities = np.zeros((40, 60), dtype=np.float32)
    probabilities[5:30, 10:14] = probabilities[5:30, 40:44] = probabilities[26:30, 10:44] = 0.9
    (box,) = text_boxes(probabilities)
    assert box.left < 10 / 60 and box.right > 44 / 60


def test_a_line_is_cut_out_at_the_recogniser_height_and_a_tall_one_turned() -> None:
    image = Image.new("RGB", (400, 400), "white")
    wide = line_input(image, Box(0.0, 0.0, 0.5, 0.1))
    tall = line_input(image, Box(0.0, 0.0, 0.1, 0.5))
    assert wide.shape == (1, 3, 48, 240) and tall.shape == (1, 3, 48, 240) and wide.dtype == np.float32


def test_ctc_greedy_merges_repeats_and_drops_blanks() -> None:
    characters = ("a", "b")  # class 0 is the blank, class 3 the space
    path = [1, 1, 0, 1, 2, 2, 3, 0, 2]
    scores = np.eye(4)[path] * 0.9
    assert ctc_greedy(scores, characters) == ("aab b", pytest.approx(0.9))
    assert ctc_greedy(np.eye(4)[[0, 0]], characters) == ("", 0.0)


def test_a_changed_recogniser_file_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "text_rec.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(ModelError, match="sha256"):
        OnnxTextReader(fake).read(Image.new("RGB", (64, 64)), [Box(0.0, 0.0, 1.0, 0.5)])


def test_headings_move_only_a_screens_share_so_a_nutrition_label_stays_text() -> None:
    label = np.asarray([0.05, 0.0, 0.0, 0.7, 0.2, 0.0, 0.0, 0.05])
    moved = adjust_for_words(label, NAMES, ("Nutrition Facts", "Calories 230", "Total Fat 8g", "Protein 3g"))
    assert NAMES[int(moved.argmax())] == "text" and moved[NAMES.index("myfitnesspal")] == pytest.approx(0.04)


def test_words_naming_no_category_here_change_nothing() -> None:
    dist = np.asarray([0.6, 0.0, 0.0, 0.25, 0.0, 0.15])
    names = ("screenshot", "animal", "book", "text", "food", "other")
    assert np.allclose(adjust_for_words(dist, names, ("MyFitnessPal", "Calories Protein")), dist)


def test_words_that_name_no_app_change_nothing() -> None:
    dist = np.asarray([0.6, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.15])
    assert np.allclose(adjust_for_words(dist, NAMES, ("Calories and more", "Hello world")), dist)


def test_sorting_with_the_text_signal_on_files_a_diary_screenshot_under_myfitnesspal(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    diary_screen().save(inbox / "IMG_0001.PNG")
    done = run_cli("sort", inbox, "--library", tmp_path / "library", "--data", tmp_path / "data", "--model",
                   shared_path("models", "mobilenet-v2"), env={"PHOTOSORTER_TEXT_SIGNAL": "true"})
    assert done.returncode == 0, done.stderr
    assert [p.parent.name for p in files_under(tmp_path / "library")] == ["myfitnesspal"]
