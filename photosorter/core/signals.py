"""What a photo says beyond the whole-image model, and how it moves the category distribution. Pure.

Each signal is optional and measured by ``photosorter evaluate`` with and without it:
- **faces**: me / people from the face stage (``core/faces.py``);
- **text**: how much of the photo is text (``ml/textdetect.py``), as a likelihood per category;
- **words**: what its largest text lines say (``ml/textread.py``), only where a word can decide: an app's
  name, or its screen's headings on a screen;
- **file**: what the file says (``adapters/filemeta.py``): iOS's ``Screenshot`` comment, or no camera
  EXIF with a device screen's exact size, says screenshot; camera EXIF says it is not one. What its
  source says goes with it: iCloud marks each screen capture in its record (``adapters/icloud``).

The sorter applies them after the prior/kNN blend: text coverage, what the file says, words, faces last (a macOS
screenshot of a portrait, with its ``Screenshot`` comment, is still a photo of people).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from photosorter.core.faces import FaceVerdict, adjust_distribution

SCREEN_CATEGORIES = ("screenshot", "myfitnesspal")  # what a phone's screen can show
COMMENT_WEIGHT = 0.8  # iOS wrote "Screenshot": nearly certain
SCREEN_PNG_WEIGHT = 0.6  # exact screen size, PNG, no camera EXIF
SCREEN_WEIGHT = 0.4  # exact screen size, no camera EXIF (a JPEG: could be a photo resized to a screen)
CAMERA_FACTOR = 0.2  # camera EXIF: a screenshot's share is cut to a fifth
# iCloud's asset subtype: Photos on the device that took it recorded a screen capture. Stronger than the
# comment (which a macOS screenshot of anything carries) and than camera EXIF; only faces come after it.
SOURCE_WEIGHT = 0.9
GENERIC_SCREEN = "screenshot"  # where a marked screen capture goes when the model names no screen category:
GENERIC_SHARE = 0.05  # its head start among the screen categories (a model's 0.3 for myfitnesspal still wins)


SCREENSHOT_MARK = "screenshot"  # the state's name for "its source marked it a screen capture"


@dataclass(frozen=True)
class FileHints:
    """What the file's header says, and its source (all False: they say nothing)."""

    screenshot_comment: bool = False
    camera: bool = False
    screen_size: bool = False
    png: bool = False
    source_screenshot: bool = False  # its source marks it a screen capture (iCloud's asset subtype)

    def screenshot_weight(self) -> float:
        if self.source_screenshot:
            return SOURCE_WEIGHT
        if self.screenshot_comment:
            return COMMENT_WEIGHT
        if self.camera or not self.screen_size:
            return 0.0
        return SCREEN_PNG_WEIGHT if self.png else SCREEN_WEIGHT


# Text coverage: P(coverage bin | category) on ../shared/eval at 320 px (Laplace-smoothed counts), the only
# place it was measured; bins: < 0.2%, < 2%, < 8%, more. Raised to TEXT_POWER (chosen there: 0.5 beats 0
# and 1) so a photo's text moves its distribution without overruling the image model.
TEXT_BINS = (0.002, 0.02, 0.08)
TEXT_POWER = 0.5
TEXT_LIKELIHOOD = {
    "animal": (0.750, 0.125, 0.083, 0.042), "beer": (0.174, 0.391, 0.391, 0.043),
    "book": (0.455, 0.318, 0.182, 0.045), "food": (0.750, 0.042, 0.167, 0.042),
    "indoors": (0.750, 0.143, 0.071, 0.036), "other": (0.583, 0.250, 0.083, 0.083),
    "people": (0.731, 0.154, 0.077, 0.038), "scenery": (0.850, 0.050, 0.050, 0.050),
    "screenshot": (0.231, 0.192, 0.462, 0.115), "text": (0.250, 0.100, 0.250, 0.400),
}
TEXT_STAND_INS = {"me": "people", "myfitnesspal": "screenshot"}  # no public photos of these
TEXT_CATEGORIES = ("text", "book", "screenshot", "myfitnesspal", "beer")
TEXT_GATE = 0.1  # the detector runs only when these hold at least this much of the distribution


@dataclass(frozen=True)
class Signals:
    """Everything known about one photo besides its embedding (None: that signal is off or unknown)."""

    faces: FaceVerdict | None = None
    file: FileHints | None = None
    text_coverage: float | None = None
    words: tuple[str, ...] | None = None  # the lines read, as the recogniser spelt them


# Words: what the largest text lines say. Only words that name a category's one app are used (no brand
# lists: a beer's or a book's words are too many to list and would fit whatever photos they came from).
# The app's name decides (mixed in at NAME_WEIGHT); two of its screen's headings decide which screen
# category a screen belongs to (the screen share moves to the app at HEADINGS_WEIGHT), so a nutrition
# label photographed in a shop, with the same words, stays text or food.
APP_NAMES = {"myfitnesspal": ("myfitnesspal",)}  # letters only, lower case: "My FitnessPal" matches
APP_HEADINGS = {"myfitnesspal": frozenset({
    "calories", "protein", "carbs", "carbohydrates", "fat", "remaining", "goal", "macros", "nutrients",
    "breakfast", "lunch", "dinner", "snacks", "exercise"})}
HEADINGS_NEEDED = 2  # distinct headings read
NAME_WEIGHT = 0.8
HEADINGS_WEIGHT = 0.8
READ_FROM = TEXT_BINS[0]  # the words are read from this text coverage on (less: nothing to read)
# and only where a screen is in play (screen categories hold TEXT_GATE): there a word can decide, and
# the recogniser (about 50 ms a photo) stays off the many text, book and beer photos it could not move


def wants_text(distribution: np.ndarray, categories: Sequence[str]) -> bool:
    """Whether reading the photo's text could matter: a text-like category is in play."""
    share = sum(float(distribution[categories.index(c)]) for c in TEXT_CATEGORIES if c in categories)
    return share >= TEXT_GATE


def read_from(distribution: np.ndarray, categories: Sequence[str]) -> float | None:
    """The text coverage from which the photo's words are read (None: no word could decide here: no app
    category, or no screen in play)."""
    if not any(c in APP_NAMES or c in APP_HEADINGS for c in categories):
        return None
    share = sum(float(distribution[categories.index(c)]) for c in SCREEN_CATEGORIES if c in categories)
    return READ_FROM if share >= TEXT_GATE else None


def _apps_named(lines: Sequence[str]) -> tuple[set[str], set[str]]:
    """The categories whose app is named, and those whose screen headings are read (enough of them)."""
    letters = ["".join(re.findall(r"[a-z]", line.lower())) for line in lines]
    tokens = {token for line in lines for token in re.findall(r"[a-z]+", line.lower())}
    named = {app for app, names in APP_NAMES.items() if any(n in line for n in names for line in letters)}
    headed = {app for app, headings in APP_HEADINGS.items() if len(tokens & headings) >= HEADINGS_NEEDED}
    return named, headed


def adjust_for_words(distribution: np.ndarray, categories: Sequence[str], lines: Sequence[str]) -> np.ndarray:
    """Toward the app a photo's words name; a screen's share to the app whose headings it shows."""
    named, headed = _apps_named(lines)
    adjusted = np.asarray(distribution, dtype=np.float64).copy()
    for app in sorted(named | headed):
        if app not in categories:
            continue
        target = categories.index(app)
        if app in named:
            adjusted *= 1.0 - NAME_WEIGHT
            adjusted[target] += NAME_WEIGHT
            continue
        for screen in (categories.index(c) for c in SCREEN_CATEGORIES if c in categories and c != app):
            moved = adjusted[screen] * HEADINGS_WEIGHT
            adjusted[screen] -= moved
            adjusted[target] += moved
    return np.asarray(adjusted / adjusted.sum(), dtype=np.float64)


def adjust_for_text(distribution: np.ndarray, categories: Sequence[str], coverage: float) -> np.ndarray:
    """Weigh each category by how likely its photos show this much text (unknown categories: the mean)."""
    column = int(np.searchsorted(TEXT_BINS, coverage, side="right"))
    known = {name: row[column] for name, row in TEXT_LIKELIHOOD.items()}
    mean = float(np.mean(list(known.values())))
    likelihood = np.asarray([known.get(TEXT_STAND_INS.get(c, c), mean) for c in categories]) ** TEXT_POWER
    weighted = np.asarray(distribution, dtype=np.float64) * likelihood
    return np.asarray(weighted / weighted.sum(), dtype=np.float64)


NO_SIGNALS = Signals()


def apply_signals(distribution: np.ndarray, categories: Sequence[str], signals: Signals) -> np.ndarray:
    """The distribution moved by each signal that says something (text only where the sorter reads it)."""
    text_in_play, words_in_play = wants_text(distribution, categories), read_from(distribution, categories)
    if signals.text_coverage is not None and text_in_play:
        distribution = adjust_for_text(distribution, categories, signals.text_coverage)
    if signals.file is not None:
        distribution = adjust_for_file(distribution, categories, signals.file)
    if signals.words and text_in_play and words_in_play is not None:  # after the file: it may make a screen
        distribution = adjust_for_words(distribution, categories, signals.words)
    if signals.faces is not None:  # last: prominent faces make even a screenshot of a photo about people
        distribution = adjust_distribution(distribution, categories, signals.faces)
    return distribution


def adjust_for_file(distribution: np.ndarray, categories: Sequence[str], hints: FileHints) -> np.ndarray:
    """Toward the screen categories (shared as the distribution already shares them) when the file looks
    like a screenshot; away from them when it came from a camera."""
    screen = [categories.index(c) for c in SCREEN_CATEGORIES if c in categories]
    if not screen:
        return distribution
    adjusted = np.asarray(distribution, dtype=np.float64).copy()
    if hints.camera and not (hints.screenshot_comment or hints.source_screenshot):
        adjusted[screen] *= CAMERA_FACTOR
        return np.asarray(adjusted / adjusted.sum(), dtype=np.float64)
    weight = hints.screenshot_weight()
    if weight <= 0:
        return distribution
    target = np.zeros_like(adjusted)
    share = adjusted[screen] + 1e-3  # a screen category the model gave nothing still gets a little
    if hints.source_screenshot and GENERIC_SCREEN in categories:
        share[[categories[i] for i in screen].index(GENERIC_SCREEN)] += GENERIC_SHARE
    target[screen] = share / share.sum()
    return np.asarray((1.0 - weight) * adjusted + weight * target, dtype=np.float64)
