"""The evaluation picture: whole category names on both axes, axis titles, and a zero-shot line that
stays visible where the blend line runs over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from photosorter import scorecard

NAMES = ["screenshot", "me", "people", "animal", "indoors", "myfitnesspal", "other"]


def result(blend: list[float], zero_shot: float) -> dict[str, Any]:
    matrix = [[5 if i == j else 0 for j in range(len(NAMES))] for i in range(len(NAMES))]
    return {"blend": {"confusion": {"categories": NAMES, "matrix": matrix}},
            "run": {"model": "tiny", "dataset": "photos"}, "split": {"photos": 35, "folds": 5},
            "labels_curve": {"labels_per_category": [1, 2, 5], "knn": [0.5, 0.6, 0.7], "blend": blend,
                             "zero_shot": zero_shot}}


def test_column_labels_are_whole_names(tmp_path: Path) -> None:
    scorecard.draw_png(result([0.8, 0.8, 0.8], 0.8), tmp_path / "card.png")
    ink = np.asarray(Image.open(tmp_path / "card.png").convert("L")) < 128
    top = scorecard.CHAR_W * max(map(len, NAMES)) + 60
    left = max(scorecard.MARGIN, scorecard.CHAR_W * max(map(len, NAMES)) + 40)
    for j, name in enumerate(NAMES):  # the ink above each column is as tall as its whole name, written upwards
        column = ink[40:top, left + j * scorecard.CELL: left + (j + 1) * scorecard.CELL].any(axis=1)
        rows = np.flatnonzero(column)
        written = ImageDraw.Draw(Image.new("L", (1, 1))).textlength(name, font=ImageFont.load_default())
        assert rows.size and rows[-1] - rows[0] + 1 >= 0.75 * written, name  # cut to 5 letters: ~0.4


def test_the_zero_shot_line_shows_where_the_blend_line_covers_it(tmp_path: Path) -> None:
    scorecard.draw_png(result([0.8, 0.8, 0.8], 0.8), tmp_path / "card.png")
    pixels = np.asarray(Image.open(tmp_path / "card.png").convert("RGB"))
    assert (pixels == scorecard.ZERO_SHOT_COLOUR).all(axis=2).sum() > 200
