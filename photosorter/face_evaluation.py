"""Measure the face stage on a folder of photos: ``me/`` (the person), ``others/`` (other people) and
optionally ``none/`` (no one), over many choices of reference photos. Used by ``photosorter me evaluate``
and ``bench/bench_faces.py``."""

from __future__ import annotations

import itertools
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photosorter.core.faces import (
    CLEAR_FACE_SCORE,
    FaceKind,
    ReferenceResult,
    ScannedPhoto,
    evaluate_references,
)
from photosorter.errors import ImageError
from photosorter.ports import Decoder, FaceModel, PhotoFiles

TRUTH = {"me": FaceKind.ME, "others": FaceKind.PEOPLE, "people": FaceKind.PEOPLE, "none": FaceKind.NONE}
# The sorter decodes each photo once, at the image model's input size (JPEG draft mode keeps the short
# side at least this), and the face stage looks at that same decode: measure the same way.
DECODE_MIN_SIDE = 224


@dataclass(frozen=True)
class FaceScan:
    photos: list[ScannedPhoto]
    face_ms: list[float]  # face stage time per photo (detect + align + embed), milliseconds


def scan_face_folder(folder: Path, model: FaceModel, decoder: Decoder, files: PhotoFiles,
                     min_side: int = DECODE_MIN_SIDE) -> FaceScan:
    photos, timings = [], []
    for path in sorted(p for p in folder.glob("*/*") if p.is_file() and p.parent.name in TRUTH):
        try:
            image = decoder(files.read(path), min_side)
        except ImageError:
            continue
        started = time.perf_counter()
        faces, vectors = model.analyse(np.asarray(image))
        timings.append((time.perf_counter() - started) * 1000)
        photos.append(ScannedPhoto(f"{path.parent.name}/{path.name}", TRUTH[path.parent.name], tuple(faces), vectors))
    return FaceScan(photos, timings)


def reference_candidates(photos: list[ScannedPhoto]) -> list[int]:
    """Photos the person would label first: of them (``me/``) with exactly one clear face."""
    return [i for i, photo in enumerate(photos) if photo.truth is FaceKind.ME
            and sum(face.score >= CLEAR_FACE_SCORE for face in photo.faces) == 1]


def reference_choices(candidates: list[int], count: int, limit: int, seed: int = 0) -> list[tuple[int, ...]]:
    """Every choice of ``count`` references among the candidates, or ``limit`` of them drawn at random."""
    every = list(itertools.combinations(candidates, count))
    return every if len(every) <= limit else random.Random(seed).sample(every, limit)


@dataclass(frozen=True)
class Summary:
    choices: int
    total: int
    accuracy: dict[float, tuple[float, int, int]]  # threshold -> (mean, min, max) correct
    auc: tuple[float, float, float]  # mean, min, max


def summarise(results: list[ReferenceResult], thresholds: list[float]) -> Summary:
    aucs = [r.auc for r in results]
    accuracy = {t: (statistics.fmean(r.correct[t] for r in results), min(r.correct[t] for r in results),
                    max(r.correct[t] for r in results)) for t in thresholds}
    return Summary(len(results), results[0].total, accuracy, (statistics.fmean(aucs), min(aucs), max(aucs)))


def evaluate_faces(scan: FaceScan, *, references: int, choices: int, thresholds: list[float],
                   threshold: float) -> tuple[Summary, list[ReferenceResult]]:
    candidates = reference_candidates(scan.photos)
    picks = reference_choices(candidates, references, choices)
    results = [evaluate_references(scan.photos, pick, thresholds, threshold) for pick in picks]
    return summarise(results, thresholds), results
