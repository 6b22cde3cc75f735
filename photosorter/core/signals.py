"""What a photo says beyond the whole-image model, and how it moves the category distribution. Pure.

Each signal is optional and measured by ``photosorter evaluate`` with and without it:
- **faces**: me / people from the face stage (``core/faces.py``);
- **text**: how much of the photo is text (``ml/textdetect.py``), as a likelihood per category;
- **file**: what the file says (``adapters/filemeta.py``): iOS's ``Screenshot`` comment, or no camera
  EXIF with a device screen's exact size, says screenshot; camera EXIF says it is not one. What its
  source says goes with it: iCloud marks each screen capture in its record (``adapters/icloud``).

The sorter applies them after the prior/kNN blend: what the file says first, faces last (a macOS
screenshot of a portrait, with its ``Screenshot`` comment, is still a photo of people).
"""

from __future__ import annotations

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


def wants_text(distribution: np.ndarray, categories: Sequence[str]) -> bool:
    """Whether reading the photo's text could matter: a text-like category is in play."""
    share = sum(float(distribution[categories.index(c)]) for c in TEXT_CATEGORIES if c in categories)
    return share >= TEXT_GATE


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
    """The distribution moved by each signal that says something."""
    if signals.text_coverage is not None and wants_text(distribution, categories):
        distribution = adjust_for_text(distribution, categories, signals.text_coverage)
    if signals.file is not None:
        distribution = adjust_for_file(distribution, categories, signals.file)
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
