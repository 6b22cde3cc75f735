"""Turn model outputs into a category: zero-shot prior, kNN votes, their blend, and the decision. Pure.

Distributions are numpy vectors over the configured categories, in settings order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from photosorter.core.similarity import SimilarityScale
from photosorter.records import Neighbour, Prediction


def class_map_matrix(labels: Sequence[str], class_map: Mapping[str, Sequence[str]], categories: Sequence[str],
                     fallback: str) -> np.ndarray:
    """Index array: for each classifier class, the category it counts toward (unmapped -> fallback)."""
    position = {name: i for i, name in enumerate(categories)}
    owner = {label: position[category] for category, members in class_map.items() if category in position
             for label in members}
    return np.asarray([owner.get(label, position[fallback]) for label in labels], dtype=np.int64)


def prior_from_class_probs(probs: np.ndarray, class_to_category: np.ndarray, n_categories: int,
                           weights: np.ndarray | None = None) -> np.ndarray:
    """Sum each category's share of the classifier's probability mass; ``weights`` (per category) then
    correct a category whose mass is inflated (``other`` collects every unmapped class), renormalised."""
    prior = np.bincount(class_to_category, weights=probs, minlength=n_categories).astype(np.float64)
    if weights is None:
        return prior
    weighted = prior * weights
    total = float(weighted.sum())
    return weighted / total if total > 0 else prior


def softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max())
    return np.asarray(shifted / shifted.sum(), dtype=np.float64)


def prior_from_prompts(image_embedding: np.ndarray, prompt_embeddings: np.ndarray, prompt_to_category: np.ndarray,
                       n_categories: int, logit_scale: float) -> np.ndarray:
    """CLIP prior: softmax over categories of the best cosine similarity among each category's prompts."""
    similarity = prompt_embeddings @ image_embedding
    best = np.full(n_categories, -np.inf)
    np.maximum.at(best, prompt_to_category, similarity)
    return softmax(logit_scale * best)


def knn_votes(neighbours: Sequence[Neighbour], categories: Sequence[str]) -> np.ndarray:
    """Distance-weighted votes: each neighbour adds its (positive) cosine similarity to its category."""
    position = {name: i for i, name in enumerate(categories)}
    votes = np.zeros(len(categories))
    for neighbour in neighbours:
        if neighbour.category in position:
            votes[position[neighbour.category]] += max(neighbour.similarity, 0.0) + 1e-6
    total = votes.sum()
    return votes / total if total > 0 else votes


# The prior counts as two fully trusted, fully close neighbours. Chosen on ../shared/eval by the mean of
# leave-one-source-out and the 5-labels user loop: 0.5 / 1 / 2 / 4 -> 0.923 / 0.924 / 0.939 / 0.942; 2 is the
# mildest within half a point of the best. At 0.5, eval's receipts (held out as a source) were pulled from
# text to screenshot by white-background neighbours: text 0.19 where zero-shot had 1.00 (now 0.74).
PRIOR_WEIGHT = 2.0
RELIABILITY_SAMPLE = 2000  # labels a reliability estimate looks at (leave-one-out over more costs seconds)


def knn_evidence(neighbours: Sequence[Neighbour], categories: Sequence[str], scale: SimilarityScale) -> np.ndarray:
    """Per category, how much its labelled neighbours say: each adds ``scale.weight(similarity)``, so a
    neighbour no closer than unrelated photos usually are adds nothing, however few other labels exist."""
    position = {name: i for i, name in enumerate(categories)}
    evidence = np.zeros(len(categories))
    for neighbour in neighbours:
        if neighbour.category in position:
            evidence[position[neighbour.category]] += float(scale.weight(neighbour.similarity))
    return evidence


def knn_evidence_matrix(train: np.ndarray, train_labels: Sequence[str], test: np.ndarray, k: int,
                        categories: Sequence[str], scale: SimilarityScale, *, leave_out_self: bool = False,
                        ) -> np.ndarray:
    """``knn_evidence`` of each test embedding among the training embeddings ``[n_test, n_categories]``;
    ``leave_out_self``: test and train are the same rows and a row is not its own neighbour."""
    evidence = np.zeros((len(test), len(categories)))
    if len(train) == 0:
        return evidence
    position = np.asarray([categories.index(label) if label in categories else -1 for label in train_labels])
    for start in range(0, len(test), 256):
        similarity = test[start:start + 256] @ train.T
        if leave_out_self:
            rows = np.arange(similarity.shape[0])
            similarity[rows, rows + start] = -np.inf
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        for row, picks in enumerate(nearest):
            for i in picks:
                if position[i] >= 0 and np.isfinite(similarity[row, i]):
                    evidence[start + row, position[i]] += float(scale.weight(similarity[row, i]))
    return evidence


def label_reliability(vectors: np.ndarray, labels: Sequence[str], categories: Sequence[str], scale: SimilarityScale,
                      k: int) -> np.ndarray:
    """How well each category's labels predict held-out labels: each label is left out and named by the
    evidence of its k nearest other labels; per category (named right + 1) / (named + 2), so a category
    whose labels keep claiming photos of other categories is trusted less (0.5 before any evidence)."""
    if len(labels) > RELIABILITY_SAMPLE:  # a fixed, even sample keeps the cost flat
        keep = np.linspace(0, len(labels) - 1, RELIABILITY_SAMPLE).astype(np.int64)
        vectors, labels = vectors[keep], [labels[i] for i in keep]
    evidence = knn_evidence_matrix(vectors, labels, vectors, k, categories, scale, leave_out_self=True)
    right = np.zeros(len(categories))
    named = np.zeros(len(categories))
    for row, label in zip(evidence, labels, strict=True):
        if row.sum() <= 0:
            continue
        top = int(np.argmax(row))
        named[top] += 1
        right[top] += categories[top] == label
    return (right + 1.0) / (named + 2.0)


def label_trust(label_counts: np.ndarray, reliability: np.ndarray, trust_labels: int) -> np.ndarray:
    """A category's trust: grows with its labels (n / (n + trust_labels)) and with how well they predict
    held-out labels; 0 for a category without labels."""
    return np.asarray(label_counts / (label_counts + float(trust_labels)) * reliability, dtype=np.float64)


def blend(prior: np.ndarray, evidence: np.ndarray, trust: np.ndarray, prior_weight: float = PRIOR_WEIGHT,
          ) -> np.ndarray:
    """Mix the prior with the kNN evidence; labels only ever help.

    The neighbours can only compare categories that have labels, so they only move probability among
    those: the prior's mass on the labelled categories is shared out again by ``(1 - a) * prior + a *
    evidence`` (with ``a = E / (prior_weight + E)``, ``E`` the trusted evidence), and every category
    without labels keeps exactly its prior. Labelling only beer therefore never pulls a photo of food
    into beer, and with every category labelled this is the usual prior/kNN blend.
    """
    weighted = evidence * trust
    total = float(weighted.sum())
    labelled = trust > 0
    mass = float(prior[labelled].sum())
    if total <= 0 or mass <= 0:
        return prior
    share = total / (prior_weight + total)
    mixed = np.asarray(prior, dtype=np.float64).copy()
    mixed[labelled] = (1.0 - share) * prior[labelled] + share * mass * weighted[labelled] / total
    return mixed


def decide(distribution: np.ndarray, categories: Sequence[str], *, unsure_margin: float, other_min_score: float,
           fallback: str) -> Prediction:
    """Best category, its score and the top-2 margin; weak photos become ``fallback``, close calls unsure."""
    order = np.argsort(-distribution, kind="stable")
    best = float(distribution[order[0]])
    second = float(distribution[order[1]]) if len(order) > 1 else 0.0
    category = categories[int(order[0])]
    if best < other_min_score:
        category = fallback
    probabilities = {name: round(float(p), 4) for name, p in zip(categories, distribution, strict=True)}
    return Prediction(category=category, score=best, margin=best - second, unsure=(best - second) < unsure_margin,
                      probabilities=probabilities)
