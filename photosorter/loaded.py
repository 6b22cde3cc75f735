"""A photo read and decoded off the main thread: what the sorter's loading hands to sorting and labelling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from photosorter.core.signals import FileHints
from photosorter.errors import ImageError
from photosorter.records import Face


@dataclass
class Loaded:
    """A photo read and decoded off the main thread."""

    path: Path
    sha256: str = ""
    size: int = 0
    pixels: np.ndarray | None = None
    gray: np.ndarray | None = None
    faces: tuple[list[Face], np.ndarray] | None = None  # the face stage's scan (faces, embeddings)
    hints: FileHints | None = None  # what the file's header says (screenshot or camera)
    image: Image.Image | None = None  # the decoded photo, kept only for the text detector
    embedding: np.ndarray | None = None  # computed on the worker too when sorting
    probs: np.ndarray | None = None
    companions: list[Path] | None = None  # files that go where the photo goes (live-photo movie, sidecars)
    error: ImageError | None = None
    unreadable: str | None = None
