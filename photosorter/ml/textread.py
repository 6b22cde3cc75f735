"""The words of a photo's largest text lines: PP-OCRv4's text recogniser (ONNX, shipped in
photosorter/data/models/ppocr-rec, from the rapidocr-onnxruntime 1.4.4 wheel) on the boxes the detector
(``ml/textdetect.py``) finds, with our own small box finding, cropping and CTC decoding (numpy + Pillow).

Boxes are the connected components of the detector's text map (PaddleOCR's detector marks each line's
shrunk core, so a component is a line), grown back by PaddleOCR's unclip ratio as an axis-aligned
rectangle. Only the ``MAX_LINES`` largest are read: a word that decides (an app's name, a screen's
headings) is among the biggest text, and each line costs a recogniser run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from photosorter.core.groups import DisjointSets
from photosorter.ml.lifetime import ModelLifetime
from photosorter.ml.textdetect import (
    TEXT_PROBABILITY,
    OnnxTextDetector,
    PinnedModel,
    paddle_tensor,
    shipped_model,
    text_coverage,
)

MODEL_SHA256 = "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
LINE_HEIGHT = 48  # the recogniser's input height
MAX_RATIO = 25  # a wider line is squeezed to 25:1 (1200 px): the recogniser's cost grows with the width
MAX_LINES = 4  # the largest boxes read
UNCLIP_RATIO = 1.6  # PaddleOCR's: a box grows by area * ratio / perimeter on each side
MIN_BOX_SIDE = 3  # detector pixels; PaddleOCR's min_size
MIN_CONFIDENCE = 0.6  # a line whose characters average less is left unread


@dataclass(frozen=True)
class Box:
    """A text line in the photo, as fractions of its width and height."""

    left: float
    top: float
    right: float
    bottom: float


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's runs of True: row, start, end (exclusive), in row-major order."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)
    return rows, starts, ends


def _components(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The component of each run: runs in adjacent rows that overlap (4-connectivity) share one."""
    groups = DisjointSets(len(rows))
    first = np.searchsorted(rows, np.arange(int(rows.max()) + 3))  # where each row's runs begin
    for row in range(int(rows.max())):
        i, j, above_end, below_end = first[row], first[row + 1], first[row + 1], first[row + 2]
        while i < above_end and j < below_end:
            if starts[i] < ends[j] and starts[j] < ends[i]:
                groups.join(j, i)
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1
    return np.asarray(groups.roots(), dtype=np.int64)


def text_boxes(probabilities: np.ndarray, most: int = MAX_LINES) -> list[Box]:
    """The ``most`` largest text lines of a detector map, largest first, grown back to the whole line."""
    probabilities = np.asarray(probabilities)
    height, width = probabilities.shape
    rows, starts, ends = _runs(probabilities > TEXT_PROBABILITY)
    if rows.size == 0:
        return []
    labels = _components(rows, starts, ends)
    _, component = np.unique(labels, return_inverse=True)
    count = int(component.max()) + 1
    top = np.full(count, height)
    bottom = np.zeros(count, dtype=np.int64)
    left = np.full(count, width)
    right = np.zeros(count, dtype=np.int64)
    np.minimum.at(top, component, rows)
    np.maximum.at(bottom, component, rows + 1)
    np.minimum.at(left, component, starts)
    np.maximum.at(right, component, ends)
    box_w, box_h = right - left, bottom - top
    keep = np.flatnonzero(np.minimum(box_w, box_h) >= MIN_BOX_SIDE)
    keep = keep[np.argsort(-(box_w[keep] * box_h[keep]), kind="stable")][:most]
    boxes = []
    for k in keep:
        grow = box_w[k] * box_h[k] * UNCLIP_RATIO / (2 * (box_w[k] + box_h[k]))
        boxes.append(Box(max(0.0, (left[k] - grow) / width), max(0.0, (top[k] - grow) / height),
                         min(1.0, (right[k] + grow) / width), min(1.0, (bottom[k] + grow) / height)))
    return boxes


def line_input(image: Image.Image, box: Box) -> np.ndarray:
    """``[1, 3, 48, W]`` float32, BGR in [-1, 1]: the box cut out, upright (a tall box is a vertical line,
    turned as PaddleOCR turns it), scaled to the recogniser's height."""
    width, height = image.size
    crop = image.crop((round(box.left * width), round(box.top * height),  # cut first: convert copies only the line
                       max(round(box.right * width), round(box.left * width) + 1),
                       max(round(box.bottom * height), round(box.top * height) + 1))).convert("RGB")
    if crop.height >= 1.5 * crop.width:
        crop = crop.transpose(Image.Transpose.ROTATE_90)
    line_w = min(max(LINE_HEIGHT // 4, math.ceil(LINE_HEIGHT * crop.width / crop.height)), LINE_HEIGHT * MAX_RATIO)
    return paddle_tensor(crop.resize((line_w, LINE_HEIGHT), Image.Resampling.BILINEAR))


def ctc_greedy(scores: np.ndarray, characters: tuple[str, ...]) -> tuple[str, float]:
    """The best path through ``[T, classes]`` recogniser scores (class 0 is CTC's blank, class i the
    character ``characters[i - 1]``, the last a space): repeats merged, blanks dropped; with the mean
    score of the characters kept."""
    best = scores.argmax(axis=1)
    kept = np.ones(len(best), dtype=bool)
    kept[1:] = best[1:] != best[:-1]
    kept &= best != 0
    if not kept.any():
        return "", 0.0
    text = "".join(characters[i - 1] if i - 1 < len(characters) else " " for i in best[kept])
    return text, float(scores.max(axis=1)[kept].mean())


class OnnxTextReader:
    """Text coverage (the detector) and, when asked, the words of the largest lines (the recogniser)."""

    def __init__(self, model: Path | None = None, threads: int = 2, detector: OnnxTextDetector | None = None,
                 lifetime: ModelLifetime | None = None) -> None:
        self.detector = detector or OnnxTextDetector(threads=threads, lifetime=lifetime)
        self.model = PinnedModel(model or shipped_model("ppocr-rec/text_rec.onnx"), MODEL_SHA256,
                                 "text recogniser", threads, lifetime)
        self._characters: tuple[str, ...] | None = None

    def characters(self) -> tuple[str, ...]:
        """The recogniser's alphabet, stored in the model file's metadata (one character a line)."""
        if self._characters is None:
            meta = self.model.session().get_modelmeta().custom_metadata_map
            self._characters = tuple(meta.get("character", "").splitlines())
        return self._characters

    def read(self, image: Image.Image, boxes: list[Box]) -> tuple[str, ...]:
        """The text of each box the recogniser is sure enough of."""
        lines = []
        for box in boxes:
            text, confidence = ctc_greedy(self.model.run(line_input(image, box))[0], self.characters())
            if text.strip() and confidence >= MIN_CONFIDENCE:
                lines.append(text.strip())
        return tuple(lines)

    def look(self, image: Image.Image, read_from: float | None) -> tuple[float, tuple[str, ...] | None]:
        """The photo's text coverage, and the words of its largest lines when the coverage reaches
        ``read_from`` (None: never read)."""
        probabilities = self.detector.probabilities(image)
        coverage = text_coverage(probabilities)
        if read_from is None or coverage < read_from:
            return coverage, None
        return coverage, self.read(image, text_boxes(probabilities))
