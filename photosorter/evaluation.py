"""Measure the classifier on a folder of labelled photos (``<category>/*``): embed once, then score the
zero-shot prior alone, kNN alone and the blend the product uses, with k-fold cross-validation that
keeps every near-duplicate group on one side of each split, and a labels-per-category curve."""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photosorter.core.categories import FALLBACK
from photosorter.core.classify import blend, decide, knn_evidence_matrix, label_reliability, label_trust
from photosorter.core.groups import DisjointSets
from photosorter.core.metrics import accuracy, confusion_matrix, group_folds, knn_vote_matrix, per_category
from photosorter.core.placement import UNSURE_FOLDER
from photosorter.core.signals import NO_SIGNALS, Signals, apply_signals
from photosorter.core.similarity import NEAR_DUPLICATE_BITS, SimilarityScale, dhash, hamming, similarity_scale
from photosorter.errors import ImageError
from photosorter.evalprotocols import (
    Sortable,
    Thresholds,
    asking_order,
    coverage,
    cross_set,
    decisions,
    distributions,
    leave_one_source_out,
    scores,
    user_loop,
)
from photosorter.ml.preprocess import fit_to_input, gray_thumbnail, shrink
from photosorter.ports import Decoder, Embedder, PhotoFiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledSet:
    """One row per distinct photo (exact duplicates collapsed), with its near-duplicate group."""

    paths: list[Path]
    labels: list[str]
    embeddings: np.ndarray
    class_probs: np.ndarray | None
    groups: list[int]
    sources: list[str] = field(default_factory=list)  # where each photo came from (manifest.csv), else its group
    signals: list[Signals] = field(default_factory=list)


Scan = Callable[[bytes, Image.Image], Signals]  # the sorter's signal stages on one decoded photo


def embed_labelled_folder(folder: Path, embedder: Embedder, decoder: Decoder, files: PhotoFiles,
                          crop: str = "center", scan: Scan | None = None) -> LabelledSet:
    """Embed every photo of ``folder/<category>/*`` once (and run ``scan`` on it); sources come from a
    ``manifest.csv`` (column ``source_repo``) in the folder or its parent, else near-duplicate groups."""
    spec = embedder.spec.preprocess
    seen: set[str] = set()
    paths, labels, pixels, hashes, signals = [], [], [], [], []
    for path in sorted(p for p in folder.glob("*/*") if p.is_file()):
        data = files.read(path)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            log.info("evaluation: %s is an exact duplicate; counted once", path.name)
            continue
        try:
            image = decoder(data, spec.size)
        except ImageError as exc:
            log.warning("evaluation: skipping %s: %s", path, exc.message)
            continue
        seen.add(digest)
        paths.append(path)
        labels.append(path.parent.name)
        small = shrink(image, spec.size)  # as the sorter sees it
        pixels.append(fit_to_input(small, spec, crop))
        hashes.append(dhash(gray_thumbnail(small)))
        signals.append(scan(data, image) if scan is not None else NO_SIGNALS)
    embeddings, probs = embedder.embed_images(pixels)
    groups = near_duplicate_groups(hashes)
    known = read_sources(folder)
    sources = [known.get(path.resolve(), f"group-{group}") for path, group in zip(paths, groups, strict=True)]
    return LabelledSet(paths, labels, embeddings, probs, groups, sources, signals)


def read_sources(folder: Path) -> dict[Path, str]:
    """Photo path -> ``source_repo`` from the first ``manifest.csv`` in ``folder`` or its parent."""
    for manifest in (folder / "manifest.csv", folder.parent / "manifest.csv"):
        if manifest.is_file():
            with manifest.open(encoding="utf-8", newline="") as handle:
                return {(manifest.parent / row["path"]).resolve(): row["source_repo"]
                        for row in csv.DictReader(handle) if row.get("path") and row.get("source_repo")}
    return {}


def near_duplicate_groups(hashes: list[int]) -> list[int]:
    """Union photos whose perceptual hashes are within ``NEAR_DUPLICATE_BITS``; group id = first member."""
    groups = DisjointSets(len(hashes))
    for i in range(len(hashes)):
        for j in range(i):
            if hamming(hashes[i], hashes[j]) <= NEAR_DUPLICATE_BITS:
                groups.join(i, j)
    return groups.roots()


CURVE_POINTS: tuple[int | None, ...] = (1, 2, 5, 10, None)  # None: every training label
CURVE_REPEATS = 3  # random draws of the labels per point (the folds stay fixed)


@dataclass(frozen=True)
class Rules:
    """The classify settings the product uses, so the blend is scored exactly as sorting decides."""

    categories: tuple[str, ...]
    knn_k: int
    knn_trust_labels: int
    unsure_margin: float
    other_min_score: float


def dataset_hash(data: LabelledSet, root: Path) -> str:
    """Changes when any photo, its name or its category changes: which data a run saw."""
    digest = hashlib.sha256()
    for path in sorted(data.paths):
        digest.update(f"{path.relative_to(root).as_posix()}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _decide(distribution: np.ndarray, rules: Rules) -> str:
    prediction = decide(distribution, rules.categories, unsure_margin=rules.unsure_margin,
                        other_min_score=rules.other_min_score, fallback=FALLBACK)
    return UNSURE_FOLDER if prediction.unsure else prediction.category


def _with_signals(data: LabelledSet, row: int, distribution: np.ndarray, rules: Rules) -> np.ndarray:
    return apply_signals(distribution, rules.categories, data.signals[row]) if data.signals else distribution


def _scores(truth: Sequence[str], predicted: Sequence[str], categories: Sequence[str]) -> dict[str, Any]:
    """Accuracy counts ``_unsure`` as not right; the confusion matrix has an ``_unsure`` column."""
    present = [c for c in (*categories, UNSURE_FOLDER) if c in set(truth) | set(predicted)]
    return {"accuracy": accuracy(truth, predicted), "unsure": sum(p == UNSURE_FOLDER for p in predicted),
            "per_category": per_category(truth, predicted, [c for c in present if c != UNSURE_FOLDER]),
            "confusion": {"categories": present, "matrix": confusion_matrix(truth, predicted, present)}}


def _predict_fold(data: LabelledSet, priors: np.ndarray, train: np.ndarray, test: np.ndarray,
                  rules: Rules, scale: SimilarityScale) -> tuple[list[str], list[str]]:
    """kNN-alone and blend predictions for the ``test`` rows, taught by the ``train`` rows."""
    labels = [data.labels[i] for i in train]
    votes = knn_vote_matrix(data.embeddings[train], labels, data.embeddings[test], rules.knn_k, rules.categories)
    evidence = knn_evidence_matrix(data.embeddings[train], labels, data.embeddings[test], rules.knn_k,
                                   rules.categories, scale)
    counts = np.asarray([labels.count(c) for c in rules.categories], dtype=np.float64)
    reliability = label_reliability(data.embeddings[train], labels, rules.categories, scale, rules.knn_k)
    trust = label_trust(counts, reliability, rules.knn_trust_labels)
    knn, blended = [], []
    for row, index in enumerate(test):
        knn.append(rules.categories[int(np.argmax(votes[row]))])
        blended.append(_decide(_with_signals(data, index, blend(priors[index], evidence[row], trust), rules), rules))
    return knn, blended


def _subsample(labels: Sequence[str], rows: np.ndarray, per_category: int | None, rng: np.random.Generator,
               ) -> np.ndarray:
    if per_category is None:
        return rows
    chosen: list[int] = []
    for category in sorted({labels[i] for i in rows}):
        members = [int(i) for i in rows if labels[i] == category]
        chosen += rng.permutation(np.asarray(members))[:per_category].tolist()
    return np.asarray(sorted(chosen), dtype=np.int64)


def cross_validate(data: LabelledSet, priors: np.ndarray, rules: Rules, folds: int = 5, seed: int = 0,
                   ) -> dict[str, Any]:
    """Scores of the zero-shot prior, kNN and the blend (k-fold, near-duplicate groups kept whole; 0
    folds: leave one group out), and the labels-per-category curve."""
    if folds == 0:  # leave one near-duplicate group out
        folds = len(set(data.groups))
    fold = group_folds(data.labels, data.groups, folds, seed)
    truth = data.labels
    scale = similarity_scale(data.embeddings)  # no labels used: the product measures it on every photo it sees
    zero_shot = [_decide(_with_signals(data, i, prior, rules), rules) for i, prior in enumerate(priors)]
    knn: list[str] = [""] * len(truth)
    blended: list[str] = [""] * len(truth)
    for number in range(folds):
        test, train = np.flatnonzero(fold == number), np.flatnonzero(fold != number)
        fold_knn, fold_blend = _predict_fold(data, priors, train, test, rules, scale)
        for row, index in enumerate(test):
            knn[index], blended[index] = fold_knn[row], fold_blend[row]
    curve: dict[str, Any] = {"labels_per_category": [], "knn": [], "blend": []}
    rng = np.random.default_rng(seed)
    for point in CURVE_POINTS:
        knn_scores, blend_scores = [], []
        for _ in range(1 if point is None else CURVE_REPEATS):
            hits_knn = hits_blend = 0
            for number in range(folds):
                test = np.flatnonzero(fold == number)
                train = _subsample(truth, np.flatnonzero(fold != number), point, rng)
                fold_knn, fold_blend = _predict_fold(data, priors, train, test, rules, scale)
                hits_knn += sum(p == truth[i] for p, i in zip(fold_knn, test, strict=True))
                hits_blend += sum(p == truth[i] for p, i in zip(fold_blend, test, strict=True))
            knn_scores.append(hits_knn / len(truth))
            blend_scores.append(hits_blend / len(truth))
        curve["labels_per_category"].append("all" if point is None else point)
        curve["knn"].append(float(np.mean(knn_scores)))
        curve["blend"].append(float(np.mean(blend_scores)))
    curve["zero_shot"] = accuracy(truth, zero_shot)
    shared = sum(1 for g in set(data.groups) if data.groups.count(g) > 1)
    return {"zero_shot": _scores(truth, zero_shot, rules.categories), "knn": _scores(truth, knn, rules.categories),
            "blend": _scores(truth, blended, rules.categories), "labels_curve": curve,
            "split": {"folds": folds, "seed": seed, "photos": len(truth), "near_duplicate_groups": shared,
                      "fold_sizes": [int((fold == n).sum()) for n in range(folds)]}}


# the protocols of evalprotocols.py on an embedded set ------------------------------------------------
def sortable(data: LabelledSet, priors: np.ndarray, categories: Sequence[str], without: str = "") -> Sortable:
    """The set as the protocols see it; ``without`` names one signal to leave out."""
    signals = [replace(s, **{without: None}) if without else s for s in data.signals] or \
        [NO_SIGNALS] * len(data.labels)
    return Sortable(data.embeddings, priors, list(data.labels), list(data.sources),
                    lambda row, dist: apply_signals(dist, categories, signals[row]))


def judge(data: LabelledSet, priors: np.ndarray, rules: Rules, seed: int = 0) -> dict[str, Any]:
    """Zero-shot (with every signal, and without each), leave-one-source-out, the user loop and coverage."""
    names = rules.categories
    configured = Thresholds(rules.unsure_margin, rules.other_min_score)
    whole = sortable(data, priors, names)
    scale = similarity_scale(data.embeddings)
    zero = distributions(whole, None, names, rules.knn_k, rules.knn_trust_labels, scale)
    ablation = {}
    for name in (f.name for f in fields(Signals)):
        if any(getattr(s, name) is not None for s in data.signals):
            without = distributions(sortable(data, priors, names, name), None, names, rules.knn_k,
                                    rules.knn_trust_labels, scale)
            ablation[name] = scores(data.labels, decisions(without, names, configured), names)["accuracy"]
    return {"zero_shot_signals": {**scores(data.labels, decisions(zero, names, configured), names),
                                  "without": ablation},
            "loso": leave_one_source_out(whole, names, rules.knn_k, rules.knn_trust_labels, configured),
            "user_loop": user_loop(whole, names, rules.knn_k, rules.knn_trust_labels, configured, seed=seed),
            "asking": asking_order(whole, names, rules.knn_k, rules.knn_trust_labels, configured, seed=seed),
            "coverage": coverage(zero, data.labels, names, rules.other_min_score)}


def judge_cross(train: LabelledSet, train_priors: np.ndarray, test: LabelledSet, test_priors: np.ndarray,
                rules: Rules) -> dict[str, Any]:
    """Label every photo of ``train`` and sort ``test``."""
    names = rules.categories
    return cross_set(sortable(train, train_priors, names), sortable(test, test_priors, names), names,
                     rules.knn_k, rules.knn_trust_labels, Thresholds(rules.unsure_margin, rules.other_min_score))
