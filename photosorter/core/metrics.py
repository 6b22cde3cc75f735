"""Accuracy measures over labelled embeddings, with near-duplicate groups kept on one side. Pure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from photosorter.core.classify import knn_votes
from photosorter.records import Neighbour


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])) if truth else 0.0


def per_category(truth: Sequence[str], predicted: Sequence[str],
                 categories: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per category."""
    result: dict[str, dict[str, float]] = {}
    for name in categories:
        tp = sum(t == name and p == name for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != name and p == name for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == name and p != name for t, p in zip(truth, predicted, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[name] = {"precision": precision, "recall": recall, "f1": f1, "support": float(tp + fn)}
    return result


def knn_leave_one_out(embeddings: np.ndarray, labels: Sequence[str], groups: Sequence[int], k: int,
                      categories: Sequence[str]) -> list[str]:
    """Predict each photo from its k nearest others, never from its own near-duplicate group."""
    similarity = embeddings @ embeddings.T
    group_array = np.asarray(groups)
    predictions = []
    for row in range(len(labels)):
        scores = similarity[row].copy()
        scores[group_array == group_array[row]] = -np.inf
        nearest = np.argsort(-scores, kind="stable")[:k]
        votes = knn_votes([Neighbour(labels[i], float(scores[i])) for i in nearest if np.isfinite(scores[i])],
                          categories)
        predictions.append(categories[int(np.argmax(votes))])
    return predictions


def confusion_matrix(truth: Sequence[str], predicted: Sequence[str], categories: Sequence[str]) -> list[list[int]]:
    """``matrix[i][j]``: photos of ``categories[i]`` predicted as ``categories[j]``."""
    position = {name: i for i, name in enumerate(categories)}
    matrix = [[0] * len(categories) for _ in categories]
    for t, p in zip(truth, predicted, strict=True):
        matrix[position[t]][position[p]] += 1
    return matrix


def group_folds(labels: Sequence[str], groups: Sequence[int], folds: int, seed: int) -> np.ndarray:
    """Fold number of every photo for k-fold cross-validation: a near-duplicate group always lands in
    one fold (so no photo is tested against its own twin), and each category's groups are dealt
    round-robin in a shuffled order so every fold holds a similar mix."""
    rng = np.random.default_rng(seed)
    first_label: dict[int, str] = {}
    for label, group in zip(labels, groups, strict=True):
        first_label.setdefault(group, label)
    fold_of_group: dict[int, int] = {}
    dealt = 0
    for category in sorted(set(first_label.values())):
        members = [g for g, label in first_label.items() if label == category]
        for group in rng.permutation(np.asarray(sorted(members), dtype=np.int64)).tolist():
            fold_of_group[int(group)] = dealt % folds
            dealt += 1
    return np.asarray([fold_of_group[g] for g in groups], dtype=np.int64)


def knn_vote_matrix(train: np.ndarray, train_labels: Sequence[str], test: np.ndarray, k: int,
                    categories: Sequence[str]) -> np.ndarray:
    """kNN votes ``[n_test, n_categories]`` of each test embedding among the training embeddings."""
    votes = np.zeros((len(test), len(categories)))
    if len(train) == 0:
        return votes
    similarity = test @ train.T
    for row in range(len(test)):
        nearest = np.argsort(-similarity[row], kind="stable")[:k]
        votes[row] = knn_votes([Neighbour(train_labels[i], float(similarity[row, i])) for i in nearest], categories)
    return votes
