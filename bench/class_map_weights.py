"""How the class map's per-category weights were chosen: fitted on ../shared/eval only, never on eval-wild.

    .venv/bin/python bench/class_map_weights.py [--photos ../shared/eval/photos] [--model ../shared/models/mobilenet-v2]

The MobileNetV2 prior sums ImageNet class probabilities per category, so a category that gathers few
classes (beer: 14 bottles, glasses and can stand-ins) or many (other: every unlisted class) starts with
too little or too much mass. Every category's weight is fitted together by coordinate ascent over a grid,
keeping for each the mildest weight (closest to 1) within one point of the best zero-shot accuracy
(argmax of the weighted prior), until nothing changes. The shipped map's weights are what this prints.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photosorter.adapters.files import LocalFiles  # noqa: E402
from photosorter.adapters.images import decode_image  # noqa: E402
from photosorter.config import load_settings  # noqa: E402
from photosorter.core.categories import FALLBACK  # noqa: E402
from photosorter.core.classify import class_map_matrix  # noqa: E402
from photosorter.evaluation import embed_labelled_folder  # noqa: E402
from photosorter.ml.download import resolve_model  # noqa: E402
from photosorter.ml.embedder import OnnxEmbedder  # noqa: E402
from photosorter.ml.prior import read_class_map  # noqa: E402

GRID = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
TOLERANCE = 0.01  # one point of accuracy


def accuracy(mass: np.ndarray, weights: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean((mass * weights).argmax(axis=1) == truth))


def fit_weights(mass: np.ndarray, truth: np.ndarray, categories: Sequence[str], rounds: int = 10) -> np.ndarray:
    """Coordinate ascent: per category, the mildest grid weight within TOLERANCE of the best accuracy."""
    weights = np.ones(len(categories))
    present = set(truth.tolist())
    for _ in range(rounds):
        changed = False
        for i in range(len(categories)):
            if i not in present and not mass[:, i].any():
                continue  # no photo and no class of it: nothing to fit
            tried = []
            for weight in GRID:
                trial = weights.copy()
                trial[i] = weight
                tried.append((accuracy(mass, trial, truth), weight))
            best = max(score for score, _ in tried)
            pick = min((w for score, w in tried if score >= best - TOLERANCE), key=lambda w: abs(math.log(w)))
            if pick != weights[i]:
                weights[i], changed = pick, True
        if not changed:
            break
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "eval" / "photos")
    parser.add_argument("--model", type=Path, default=ROOT.parent / "shared" / "models" / "mobilenet-v2")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = load_settings(environ={}).classify.names
    spec = resolve_model(str(args.model), Path("/tmp/photosorter-bench-cache"), "")
    assert spec.labels_file and spec.class_map, "a classifier model folder is needed"
    data = embed_labelled_folder(args.photos, OnnxEmbedder(spec), decode_image, LocalFiles())
    assert data.class_probs is not None
    labels = (spec.folder / spec.labels_file).read_text(encoding="utf-8").splitlines()
    index = class_map_matrix(labels, read_class_map(spec.class_map, spec.folder), names, FALLBACK)
    mass = np.stack([np.bincount(index, weights=p, minlength=len(names)) for p in data.class_probs])
    truth = np.asarray([names.index(label) for label in data.labels])
    weights = fit_weights(mass, truth, names)
    print(f"{len(truth)} photos of {args.photos}: zero-shot (argmax) {accuracy(mass, np.ones(len(names)), truth):.3f} "
          f"unweighted, {accuracy(mass, weights, truth):.3f} with the fitted weights")
    print("weights:", {name: w for name, w in zip(names, weights.tolist(), strict=True) if w != 1.0})


if __name__ == "__main__":
    main()
