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
