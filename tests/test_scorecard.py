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


def test_both_pictures_have_axis_titles(tmp_path: Path) -> None:
    scorecard.draw_png(result([0.8, 0.8, 0.8], 0.8), tmp_path / "card.png")
    ink = np.asarray(Image.open(tmp_path / "card.png").convert("L")) < 128
    longest = max(map(len, NAMES))
    left, top = max(scorecard.MARGIN, scorecard.CHAR_W * longest + 40), scorecard.CHAR_W * longest + 60
    plot_left, plot_bottom = left + scorecard.CELL * len(NAMES) + 90, top + 260

    def length(text: str) -> float:
        return ImageDraw.Draw(Image.new("L", (1, 1))).textlength(text, font=ImageFont.load_default())

    def extent(band: np.ndarray) -> int:
        where = np.flatnonzero(band)
        return int(where[-1] - where[0] + 1) if where.size else 0

    titles = {"true category (rows)": extent(ink[top:, 8:20].any(axis=1)),  # written upwards, left of the rows
              "accuracy": extent(ink[top:plot_bottom, plot_left - 50: plot_left - 38].any(axis=1)),
              "labels per category": extent(ink[plot_bottom + 24: plot_bottom + 36, plot_left:].any(axis=0)),
              "blend: predicted category (columns)": extent(ink[30:42, left:plot_left].any(axis=0))}
    for text, drawn in titles.items():
        assert drawn >= 0.75 * length(text), text
