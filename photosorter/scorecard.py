"""What an evaluation leaves behind: JSON, a PNG (confusion matrix + labels curve), a line in the
local runs log for ``--compare``, and optionally an MLflow run."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

RUNS_LOG = "evaluations.jsonl"
CELL = 34
MARGIN = 110


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def append_run(result: dict[str, Any], log_path: Path) -> None:
    """One line per run: the run record and the headline numbers (the full JSON stays where it was written)."""
    line = {**result["run"], "zero_shot": result["zero_shot"]["accuracy"], "knn": result["knn"]["accuracy"],
            "blend": result["blend"]["accuracy"], "labels_curve": result["labels_curve"],
            "variants": result.get("variants", {})}
    if "loso" in result:
        line.update({"zero_shot_signals": result["zero_shot_signals"]["accuracy"],
                     "loso": result["loso"]["blend"]["accuracy"], "user_loop": result["user_loop"]["accuracy"],
                     "unsure": result["zero_shot_signals"]["unsure"]})
    cross = result.get("cross_set")
    if cross:
        line["cross_set"] = cross["label_other_sort_this"]["blend"]["accuracy"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def read_runs(log_path: Path) -> list[dict[str, Any]]:
    if not log_path.is_file():
        return []
    runs = []
    for line in log_path.read_text(encoding="utf-8").splitlines():
        try:
            runs.append(json.loads(line))
        except ValueError:
            log.warning("runs log %s: skipping an unreadable line", log_path)
    return runs


def compare_table(runs: list[dict[str, Any]]) -> str:
    """One line per run: what it was (date, model, data, git revision) and its headline figures."""
    header = (f"{'date':<20}{'model':<18}{'dataset':<18}{'git':<14}{'zero-shot':>10}{'LOSO':>7}{'loop5':>7}"
              f"{'cross':>7}{'unsure':>7}  blend curve")
    lines = [header]
    for run in runs:
        curve = run.get("labels_curve", {})
        points = " ".join(f"{n}:{a:.2f}" for n, a in zip(curve.get("labels_per_category", []),
                                                          curve.get("blend", []), strict=False))
        loop = run.get("user_loop") or []
        figures = [run.get("zero_shot_signals", run.get("zero_shot")), run.get("loso"),
                   loop[2] if len(loop) > 2 else None, run.get("cross_set")]
        cells = "".join(f"{value:>{width}.3f}" if isinstance(value, float) else f"{'-':>{width}}"
                        for value, width in zip(figures, (10, 7, 7, 7), strict=True))
        lines.append(f"{run.get('date', '')[:19]:<20}{str(run.get('model', ''))[:17]:<18}"
                     f"{str(run.get('dataset_hash', ''))[:16]:<18}{str(run.get('git_revision', ''))[:12]:<14}"
                     f"{cells}{run.get('unsure', '-')!s:>7}  {points}")
    return "\n".join(lines)


ZERO_SHOT_COLOUR = (0, 150, 70)
CHAR_W = 6  # Pillow's default bitmap font: 6 px per character, 11 px per line


def _vertical_text(image: Image.Image, xy: tuple[int, int], text: str, font: Any) -> None:
    """``text`` written bottom-up with its last letter at ``xy`` (the top left of the rotated box)."""
    box = Image.new("L", (CHAR_W * len(text) + 2, 12), 0)
    ImageDraw.Draw(box).text((1, 0), text, fill=255, font=font)
    rotated = box.rotate(90, expand=True)
    image.paste((0, 0, 0), (xy[0], xy[1], xy[0] + rotated.width, xy[1] + rotated.height), rotated)


def draw_png(result: dict[str, Any], path: Path) -> None:
    """The blend's confusion matrix (left: true category in rows, predicted in columns, whole names) and
    accuracy against labels per category (right, with axis titles and the zero-shot line drawn on top)."""
    confusion = result["blend"]["confusion"]
    names, matrix = confusion["categories"], confusion["matrix"]
    grid = CELL * len(names)
    longest = max((len(n) for n in names), default=5)
    left = max(MARGIN, CHAR_W * longest + 40)  # row names, and the "true" title beside them
    top = CHAR_W * longest + 60  # column names, written upwards
    plot_w, plot_h = 360, 260
    width, height = left + grid + 90 + plot_w + 40, top + max(grid, plot_h) + 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    title = (f"{result['run']['model']} on {result['run']['dataset']} "
             f"({result['split']['photos']} photos, {result['split']['folds']}-fold)")
    draw.text((10, 10), title, fill="black", font=font)
    draw.text((left, 30), "blend: predicted category (columns)", fill="black", font=font)
    _vertical_text(image, (8, top), "true category (rows)", font)
    for i, name in enumerate(names):
        draw.text((24, top + i * CELL + CELL // 3), name, fill="black", font=font)
        _vertical_text(image, (left + i * CELL + CELL // 2 - 6, top - 8 - CHAR_W * len(name) - 2), name, font)
        total = max(1, sum(matrix[i]))
        for j, count in enumerate(matrix[i]):
            shade = int(255 * (1 - count / total))
            colour = (shade, shade, 255) if i == j else (255, shade, shade)
            box = (left + j * CELL, top + i * CELL, left + (j + 1) * CELL - 1, top + (i + 1) * CELL - 1)
            draw.rectangle(box, fill=colour, outline=(200, 200, 200))
            if count:
                draw.text((box[0] + 8, box[1] + 10), str(count), fill="white" if shade < 128 else "black", font=font)
    _draw_curve(image, font, result["labels_curve"], left + grid + 90, top, plot_w, plot_h)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "PNG")


def _draw_curve(image: Image.Image, font: Any, curve: dict[str, Any], left: int, top: int, width: int,
                height: int) -> None:
    draw = ImageDraw.Draw(image)
    points = curve["labels_per_category"]
    draw.text((left, top - 40), "accuracy vs labels per category", fill="black", font=font)
    draw.rectangle((left, top, left + width, top + height), outline="black")
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + height - tick * height
        draw.line((left - 4, y, left, y), fill="black")
        draw.text((left - 30, y - 6), f"{tick:.2f}", fill="black", font=font)
    _vertical_text(image, (left - 50, top + height // 2 - 30), "accuracy", font)
    step = width / max(1, len(points) - 1)
    for i, label in enumerate(points):
        draw.text((left + i * step - 6, top + height + 6), str(label), fill="black", font=font)
    draw.text((left + width // 2 - 60, top + height + 24), "labels per category", fill="black", font=font)
    series = (("knn", (230, 120, 0)), ("blend", (0, 90, 200)))
    for row, (key, colour) in enumerate(series):
        xy = [(left + i * step, top + height - value * height) for i, value in enumerate(curve[key])]
        draw.line(xy, fill=colour, width=2)
        for x, y in xy:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        draw.text((left + 10, top + 10 + 14 * row), key, fill=colour, font=font)
    # Drawn last, dashed, in its own colour: where blend equals zero-shot the dashes still show.
    zero = top + height - curve["zero_shot"] * height
    for x in range(left, left + width, 12):
        draw.line((x, zero, min(x + 7, left + width), zero), fill=ZERO_SHOT_COLOUR, width=2)
    draw.text((left + 10, top + 38), f"zero-shot, no labels ({curve['zero_shot']:.2f}, dashed)", fill=ZERO_SHOT_COLOUR,
              font=font)


def log_to_mlflow(result: dict[str, Any], artifacts: list[Path]) -> bool:
    """Log the run to MLflow when it is installed and ``MLFLOW_TRACKING_URI`` is set; never required."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return False
    try:
        import mlflow
    except ImportError:
        log.info("MLFLOW_TRACKING_URI is set but mlflow is not installed; skipping MLflow")
        return False
    run = result["run"]
    try:
        with mlflow.start_run(run_name=f"{run['model']} {run['date'][:19]}"):
            mlflow.log_params({"model": run["model"], "dataset_hash": run["dataset_hash"], **run["settings"]})
            mlflow.log_metrics({f"{key}_accuracy": result[key]["accuracy"] for key in ("zero_shot", "knn", "blend")})
            for path in artifacts:
                mlflow.log_artifact(str(path))
    except Exception as exc:  # a tracking server being down must not fail the evaluation
        log.warning("MLflow logging failed: %s", exc)
        return False
    return True
