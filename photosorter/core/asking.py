"""Which photos to ask the person about first: the ones whose label would teach the most. Pure.

A photo is worth asking about when the sorter is unsure of it (small margin between its two best
categories) and when it is unlike the photos already asked about or labelled (a second photo of the same
scene teaches little). Greedy: each pick maximises ``uncertainty x novelty``, where uncertainty is
``1 - margin`` and novelty is ``1 - `` the best cosine similarity to the labelled and picked photos
(clipped at 0). Measured by ``photosorter evaluate`` against picking at random (README, "Asking").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def order_to_ask(margins: Sequence[float], vectors: np.ndarray, count: int, known: np.ndarray | None = None,
                 predicted: Sequence[str] | None = None) -> list[int]:
    """Indices of up to ``count`` photos in the order to ask about them (``vectors``: unit embeddings).

    With ``predicted`` (each photo's current category) the picks also spread over categories: a photo's
    score is divided by one plus the picks already made in its category, since a label only helps where
    the categories around it have labels too."""
    uncertainty = 1.0 - np.clip(np.asarray(margins, dtype=np.float64), 0.0, 1.0)
    spread: dict[str, int] = {}
    nearest = np.zeros(len(uncertainty))
    if known is not None and len(known) and len(vectors):
        nearest = np.max(vectors @ known.T, axis=1)
    picked: list[int] = []
    available = np.ones(len(uncertainty), dtype=bool)
    for _ in range(min(count, len(uncertainty))):
        score = uncertainty * (1.0 - np.clip(nearest, 0.0, 1.0)) + 1e-9 * uncertainty
        if predicted is not None:
            score = score / (1.0 + np.asarray([spread.get(c, 0) for c in predicted]))
        best = int(np.argmax(np.where(available, score, -np.inf)))
        picked.append(best)
        if predicted is not None:
            spread[predicted[best]] = spread.get(predicted[best], 0) + 1
        available[best] = False
        nearest = np.maximum(nearest, vectors @ vectors[best])
    return picked
