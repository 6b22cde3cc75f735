"""What a photo says beyond the whole-image model, and how it moves the category distribution. Pure.

Each signal is optional and measured by ``photosorter evaluate`` with and without it:
- **faces**: me / people from the face stage (``core/faces.py``);
- **file**: what the file says (``adapters/filemeta.py``): iOS's ``Screenshot`` comment, or no camera
  EXIF with a device screen's exact size, says screenshot; camera EXIF says it is not one.

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


@dataclass(frozen=True)
class FileHints:
    """What the file's header says (all False: it says nothing)."""

    screenshot_comment: bool = False
    camera: bool = False
    screen_size: bool = False
    png: bool = False

    def screenshot_weight(self) -> float:
        if self.screenshot_comment:
            return COMMENT_WEIGHT
        if self.camera or not self.screen_size:
            return 0.0
        return SCREEN_PNG_WEIGHT if self.png else SCREEN_WEIGHT


@dataclass(frozen=True)
class Signals:
    """Everything known about one photo besides its embedding (None: that signal is off or unknown)."""

    faces: FaceVerdict | None = None
    file: FileHints | None = None


NO_SIGNALS = Signals()


def apply_signals(distribution: np.ndarray, categories: Sequence[str], signals: Signals) -> np.ndarray:
    """The distribution moved by each signal that says something."""
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
    if hints.camera and not hints.screenshot_comment:
        adjusted[screen] *= CAMERA_FACTOR
        return np.asarray(adjusted / adjusted.sum(), dtype=np.float64)
    weight = hints.screenshot_weight()
    if weight <= 0:
        return distribution
    target = np.zeros_like(adjusted)
    share = adjusted[screen] + 1e-3  # a screen category the model gave nothing still gets a little
    target[screen] = share / share.sum()
    return np.asarray((1.0 - weight) * adjusted + weight * target, dtype=np.float64)
