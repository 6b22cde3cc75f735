"""What a photo says beyond the whole-image model, and how it moves the category distribution. Pure.

Each signal is optional and measured by ``photosorter evaluate`` with and without it:
- **faces**: me / people from the face stage (``core/faces.py``);
- more are added here as they come (text in the photo, what the file says).

The sorter applies them after the prior/kNN blend, in the order above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from photosorter.core.faces import FaceVerdict, adjust_distribution


@dataclass(frozen=True)
class Signals:
    """Everything known about one photo besides its embedding (None: that signal is off or unknown)."""

    faces: FaceVerdict | None = None


NO_SIGNALS = Signals()


def apply_signals(distribution: np.ndarray, categories: Sequence[str], signals: Signals) -> np.ndarray:
    """The distribution moved by each signal that says something."""
    if signals.faces is not None:
        distribution = adjust_distribution(distribution, categories, signals.faces)
    return distribution
