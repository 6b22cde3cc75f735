"""Turn model outputs into a category: zero-shot prior, kNN votes, their blend, and the decision. Pure.

Distributions are numpy vectors over the configured categories, in settings order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from photosorter.records import Neighbour, Prediction


def class_map_matrix(labels: Sequence[str], class_map: Mapping[str, Sequence[str]], categories: Sequence[str],
                     fallback: str) -> np.ndarray:
    """Index array: for each classifier class, the category it counts toward (unmapped -> fallback)."""
    position = {name: i for i, name in enumerate(categories)}
    owner = {label: position[category] for category, members in class_map.items() if category in position
             for label in members}
    return np.asarray([owner.get(label, position[fallback]) for label in labels], dtype=np.int64)


def prior_from_class_probs(probs: np.ndarray, class_to_category: np.ndarray, n_categories: int) -> np.ndarray:
    """Sum each category's share of the classifier's probability mass."""
    return np.bincount(class_to_category, weights=probs, minlength=n_categories).astype(np.float64)


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


def blend(prior: np.ndarray, votes: np.ndarray, label_counts: np.ndarray, trust_labels: int) -> np.ndarray:
    """Mix the prior with the kNN vote, trusting kNN more as the categories it votes for gather labels.

    A category with n labels is trusted n / (n + trust_labels); the kNN weight is that trust averaged
    over the vote, so one stray label barely moves a confident prior, and a well-taught category wins.
    """
    if votes.sum() <= 0:
        return prior
    trust = label_counts / (label_counts + float(trust_labels))
    weight = float(np.dot(votes, trust))
    return (1.0 - weight) * prior + weight * votes


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
