"""How the sorter is judged the way it will be used: leave-one-source-out, the user loop (K labels per
category, sort the rest), cross-set (label one set, sort another) and coverage against accuracy.

Every threshold (``unsure_margin``, ``other_min_score``) a protocol reports with is either the configured
one or chosen by cross-validation inside the training side of its split (never on the photos it
reports). Pure numpy over embedded sets: ``evaluation.py`` embeds, ``cli/evaluate.py`` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from photosorter.core.asking import order_to_ask
from photosorter.core.categories import FALLBACK
from photosorter.core.classify import blend, decide, knn_evidence_matrix, label_reliability, label_trust
from photosorter.core.metrics import accuracy, knn_vote_matrix, per_category
from photosorter.core.placement import UNSURE_FOLDER
from photosorter.core.similarity import SimilarityScale, similarity_scale

USER_LOOP_POINTS = (1, 3, 5, 10)
USER_LOOP_REPEATS = 5
INNER_FOLDS = 5
MARGINS = (0.0, 0.025, 0.05, 0.1, 0.15, 0.2)
FLOORS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35)
COVERAGE_MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3)
MIN_SOURCES_TO_SPLIT = 10
ASKING_BUDGETS = (10, 20, 40)
ASKING_SPLITS = 10  # the paired gain's standard error is then 0.002-0.004 on ../shared/eval and eval-wild
ASKING_RANDOM_DRAWS = 4


@dataclass(frozen=True)
class Thresholds:
    unsure_margin: float
    other_min_score: float


@dataclass(frozen=True)
class Sortable:
    """One evaluation set: unit embeddings, zero-shot priors, true labels, source groups, and the signals
    step applied after the blend (``adjust(row, distribution)``, as the sorter applies faces and text)."""

    embeddings: np.ndarray
    priors: np.ndarray
    labels: list[str]
    sources: list[str]
    adjust: Callable[[int, np.ndarray], np.ndarray] | None = None

    def rows(self, rows: np.ndarray) -> Sortable:
        picked = [int(i) for i in rows]
        adjust = self.adjust
        return replace(self, embeddings=self.embeddings[rows], priors=self.priors[rows],
                       labels=[self.labels[i] for i in picked], sources=[self.sources[i] for i in picked],
                       adjust=None if adjust is None else (lambda row, dist: adjust(picked[row], dist)))


def distributions(test: Sortable, train: Sortable | None, categories: Sequence[str], knn_k: int,
                  trust_labels: int, scale: SimilarityScale) -> np.ndarray:
    """What the sorter's distribution is for every test photo when ``train`` are the person's labels."""
    result = test.priors.copy()
    if train is not None and len(train.labels):
        evidence = knn_evidence_matrix(train.embeddings, train.labels, test.embeddings, knn_k, categories, scale)
        counts = np.asarray([train.labels.count(c) for c in categories], dtype=np.float64)
        reliability = label_reliability(train.embeddings, train.labels, categories, scale, knn_k)
        trust = label_trust(counts, reliability, trust_labels)
        result = np.stack([blend(p, e, trust) for p, e in zip(test.priors, evidence, strict=True)])
    if test.adjust is not None:
        result = np.stack([test.adjust(row, dist) for row, dist in enumerate(result)])
    return result


def decisions(dists: np.ndarray, categories: Sequence[str], thresholds: Thresholds) -> list[str]:
    """Folder per photo: its category, or ``_unsure``."""
    out = []
    for dist in dists:
        prediction = decide(dist, categories, unsure_margin=thresholds.unsure_margin,
                            other_min_score=thresholds.other_min_score, fallback=FALLBACK)
        out.append(UNSURE_FOLDER if prediction.unsure else prediction.category)
    return out


def scores(truth: Sequence[str], predicted: Sequence[str], categories: Sequence[str]) -> dict[str, Any]:
    """Accuracy (``_unsure`` counts as not right), per-category recall, and the unsure count."""
    present = [c for c in categories if c in set(truth)]
    rows = per_category(truth, predicted, present)
    return {"accuracy": accuracy(truth, predicted), "photos": len(truth),
            "unsure": sum(p == UNSURE_FOLDER for p in predicted),
            "recall": {c: round(rows[c]["recall"], 4) for c in present},
            "support": {c: int(rows[c]["support"]) for c in present}}


def choose_thresholds(dists: np.ndarray, truth: Sequence[str], categories: Sequence[str]) -> Thresholds:
    """The thresholds that sort these (training-side) photos best; ties go to the larger margin."""
    best: tuple[float, float, float] | None = None
    chosen = Thresholds(MARGINS[0], FLOORS[0])
    for floor in FLOORS:
        for margin in MARGINS:
            score = accuracy(truth, decisions(dists, categories, Thresholds(margin, floor)))
            key = (score, margin, -abs(floor - 0.25))
            if best is None or key > best:
                best = key
                chosen = Thresholds(margin, floor)
    return chosen


def source_folds(sources: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Fold of every photo with each source wholly in one fold (sources dealt largest first)."""
    names, counts = np.unique(np.asarray(sources), return_counts=True)
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-counts[order], kind="stable")]
    sizes = np.zeros(folds)
    fold_of: dict[str, int] = {}
    for i in order:
        target = int(np.argmin(sizes))
        fold_of[str(names[i])] = target
        sizes[target] += counts[i]
    return np.asarray([fold_of[s] for s in sources], dtype=np.int64)


def inner_thresholds(train: Sortable, categories: Sequence[str], knn_k: int, trust_labels: int,
                     scale: SimilarityScale, *, with_labels: bool) -> Thresholds:
    """Thresholds chosen inside ``train`` alone: its photos sorted by source-grouped inner folds (taught by
    the other inner folds when ``with_labels``), then the grid that sorts them best."""
    fold = source_folds(train.sources, min(INNER_FOLDS, len(set(train.sources))))
    dists = np.zeros_like(train.priors)
    for number in range(int(fold.max()) + 1):
        test_rows, teach_rows = np.flatnonzero(fold == number), np.flatnonzero(fold != number)
        teacher = train.rows(teach_rows) if with_labels and len(teach_rows) else None
        dists[test_rows] = distributions(train.rows(test_rows), teacher, categories, knn_k, trust_labels, scale)
    return choose_thresholds(dists, train.labels, categories)


def leave_one_source_out(data: Sortable, categories: Sequence[str], knn_k: int, trust_labels: int,
                         configured: Thresholds) -> dict[str, Any]:
    """Every source in turn is sorted, taught by the photos of all other sources (no source on both
    sides); scored with the configured thresholds and with thresholds chosen inside each training side."""
    scale = similarity_scale(data.embeddings)
    sources = sorted(set(data.sources))
    configured_pred: list[str] = [""] * len(data.labels)
    chosen_pred: list[str] = [""] * len(data.labels)
    knn_pred: list[str] = [""] * len(data.labels)
    chosen_log = []
    for source in sources:
        test_rows = np.flatnonzero(np.asarray(data.sources) == source)
        train_rows = np.flatnonzero(np.asarray(data.sources) != source)
        train = data.rows(train_rows)
        dists = distributions(data.rows(test_rows), train, categories, knn_k, trust_labels, scale)
        votes = knn_vote_matrix(train.embeddings, train.labels, data.embeddings[test_rows], knn_k, categories)
        for row, vote in zip(test_rows, votes, strict=True):
            knn_pred[row] = categories[int(np.argmax(vote))]  # the neighbours alone, however far
        thresholds = inner_thresholds(train, categories, knn_k, trust_labels, scale, with_labels=True)
        chosen_log.append((thresholds.unsure_margin, thresholds.other_min_score))
        for row, a, b in zip(test_rows, decisions(dists, categories, configured),
                             decisions(dists, categories, thresholds), strict=True):
            configured_pred[row], chosen_pred[row] = a, b
    margins, floors = zip(*chosen_log, strict=True)
    return {"sources": len(sources), "knn": scores(data.labels, knn_pred, categories),
            "blend": scores(data.labels, configured_pred, categories),
            "blend_inner_thresholds": scores(data.labels, chosen_pred, categories),
            "inner_thresholds": {"unsure_margin_median": float(np.median(margins)),
                                 "other_min_score_median": float(np.median(floors))}}


def user_loop(data: Sortable, categories: Sequence[str], knn_k: int, trust_labels: int, thresholds: Thresholds,
              points: Sequence[int] = USER_LOOP_POINTS, repeats: int = USER_LOOP_REPEATS, seed: int = 0,
              ) -> dict[str, Any]:
    """The person labels K photos per category (drawn at random, ``repeats`` times) and sorts the rest."""
    scale = similarity_scale(data.embeddings)
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    result: dict[str, Any] = {"labels_per_category": list(points), "accuracy": [], "unsure": [], "recall": []}
    for point in points:
        runs = []
        for _ in range(repeats):
            taught = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:point]
                                     for c in sorted(set(data.labels))])
            rest = np.setdiff1d(np.arange(len(labels)), taught)
            dists = distributions(data.rows(rest), data.rows(taught), categories, knn_k, trust_labels, scale)
            runs.append(scores([data.labels[i] for i in rest], decisions(dists, categories, thresholds), categories))
        result["accuracy"].append(round(float(np.mean([r["accuracy"] for r in runs])), 4))
        result["unsure"].append(round(float(np.mean([r["unsure"] for r in runs])), 1))
        result["recall"].append({c: round(float(np.mean([r["recall"].get(c, 0.0) for r in runs])), 4)
                                 for c in runs[0]["recall"]})
    return result


def cross_set(train: Sortable, test: Sortable, categories: Sequence[str], knn_k: int, trust_labels: int,
              configured: Thresholds) -> dict[str, Any]:
    """Label every photo of ``train``, sort ``test``: with the configured thresholds, and with thresholds
    chosen inside ``train`` (source-grouped inner folds)."""
    scale = similarity_scale(np.concatenate([train.embeddings, test.embeddings]))
    dists = distributions(test, train, categories, knn_k, trust_labels, scale)
    chosen = inner_thresholds(train, categories, knn_k, trust_labels, scale, with_labels=True)
    zero = distributions(test, None, categories, knn_k, trust_labels, scale)
    zero_chosen = inner_thresholds(train, categories, knn_k, trust_labels, scale, with_labels=False)
    return {"zero_shot": scores(test.labels, decisions(zero, categories, configured), categories),
            "blend": scores(test.labels, decisions(dists, categories, configured), categories),
            "blend_thresholds_from_train": scores(test.labels, decisions(dists, categories, chosen), categories),
            "zero_shot_thresholds_from_train": scores(test.labels, decisions(zero, categories, zero_chosen),
                                                      categories),
            "thresholds_from_train": {"blend": vars(chosen), "zero_shot": vars(zero_chosen)}}


def coverage(dists: np.ndarray, truth: Sequence[str], categories: Sequence[str], other_min_score: float,
             ) -> list[dict[str, float]]:
    """For each unsure margin: the share of photos placed and how many of those are right."""
    rows = []
    for margin in COVERAGE_MARGINS:
        predicted = decisions(dists, categories, Thresholds(margin, other_min_score))
        placed = [(t, p) for t, p in zip(truth, predicted, strict=True) if p != UNSURE_FOLDER]
        rows.append({"unsure_margin": margin, "placed": round(len(placed) / max(1, len(truth)), 4),
                     "unsure": len(truth) - len(placed),
                     "accuracy_of_placed": round(float(np.mean([t == p for t, p in placed])) if placed else 0.0, 4)})
    return rows


def asking_order(data: Sortable, categories: Sequence[str], knn_k: int, trust_labels: int, thresholds: Thresholds,
                 budgets: Sequence[int] = ASKING_BUDGETS, rounds_of: int = 10, splits: int = ASKING_SPLITS,
                 random_draws: int = ASKING_RANDOM_DRAWS, seed: int = 0) -> dict[str, Any]:
    """Labels chosen by ``order_to_ask`` (in digest-sized rounds, re-sorting after each) against labels
    chosen at random from the same pool, scored on the same held-out photos. Each split keeps half the
    sources aside (half the photos when there are too few sources to hold every category on both sides);
    the random side is the mean of ``random_draws`` orders, each nested like the asked one (the first 10
    labels are part of the first 20). Reported as mean and spread (sd) over splits, with the paired
    difference (asked - random) per split, and the room there is: the held-out accuracy with no labels
    and with the whole pool labelled."""
    scale = similarity_scale(data.embeddings)
    groups = data.sources
    if len(set(groups)) < MIN_SOURCES_TO_SPLIT:
        groups = [str(i) for i in range(len(data.labels))]
    rng = np.random.default_rng(seed)
    runs: dict[str, list[list[float]]] = {"asked": [], "random": [], "room": []}

    def score(test: Sortable, taught: np.ndarray) -> float:
        teacher = data.rows(taught) if len(taught) else None
        dists = distributions(test, teacher, categories, knn_k, trust_labels, scale)
        return float(scores(test.labels, decisions(dists, categories, thresholds), categories)["accuracy"])

    for split in range(splits):
        fold = source_folds(groups, 2, seed + split)
        pool, held = np.flatnonzero(fold == 0), np.flatnonzero(fold == 1)
        test = data.rows(held)
        asked: list[int] = []
        asked_scores: list[float] = []
        for budget in budgets:
            while len(asked) < min(budget, len(pool)):
                teacher = data.rows(pool[asked]) if asked else None
                rest = np.setdiff1d(np.arange(len(pool)), asked)
                dists = distributions(data.rows(pool[rest]), teacher, categories, knn_k, trust_labels, scale)
                ordered = np.sort(dists, axis=1)
                margins = ordered[:, -1] - ordered[:, -2]
                known = data.embeddings[pool[asked]] if asked else None
                predicted = [categories[int(i)] for i in np.argmax(dists, axis=1)]
                picks = order_to_ask(margins, data.embeddings[pool[rest]], min(rounds_of, budget - len(asked)), known,
                                     predicted)
                asked += [int(rest[i]) for i in picks]
            asked_scores.append(score(test, pool[asked]))
        orders = [rng.permutation(len(pool)) for _ in range(random_draws)]
        runs["asked"].append(asked_scores)
        runs["random"].append([float(np.mean([score(test, pool[order[:budget]]) for order in orders]))
                               for budget in budgets])
        runs["room"].append([score(test, pool[:0]), score(test, pool)])
    asked_runs, random_runs = np.asarray(runs["asked"]), np.asarray(runs["random"])

    def rounded(values: np.ndarray) -> list[float]:
        return [round(float(v), 4) for v in values]

    room = np.mean(runs["room"], axis=0)
    return {"labels": list(budgets), "splits": splits, "random_draws": random_draws,
            "asked": rounded(asked_runs.mean(axis=0)), "asked_sd": rounded(asked_runs.std(axis=0)),
            "random": rounded(random_runs.mean(axis=0)), "random_sd": rounded(random_runs.std(axis=0)),
            "gain": rounded((asked_runs - random_runs).mean(axis=0)),
            "gain_sd": rounded((asked_runs - random_runs).std(axis=0)),
            "no_labels": round(float(room[0]), 4), "whole_pool": round(float(room[1]), 4)}
