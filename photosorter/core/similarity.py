"""Perceptual hashing (dHash) for near-duplicate groups, and how close two embeddings must be to count. Pure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEAR_DUPLICATE_BITS = 6  # of 64: re-encodes and resizes land at 0-4, different photos at 20+


def dhash(gray: np.ndarray) -> int:
    """64-bit difference hash of an 8x9 grayscale array: is each pixel brighter than its right neighbour."""
    bits = (gray[:, 1:] > gray[:, :-1]).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def nearest_hash(target: int, hashes: np.ndarray) -> tuple[int, int]:
    """Index of the hash (uint64 array) closest to ``target`` and its distance; (-1, 65) when empty."""
    if hashes.size == 0:
        return -1, 65
    distances = np.bitwise_count(hashes ^ np.uint64(target))
    index = int(np.argmin(distances))
    return index, int(distances[index])


# How close is close: calibrated per model from its own photos -------------------------------------
FAR_PERCENTILE = 90.0  # a pair of photos less similar than 90% of all pairs is no evidence
NEAR_PERCENTILE = 99.5  # ... and one as similar as the closest 0.5% of pairs is full evidence
SCALE_SAMPLE = 600  # photos a scale is measured on (pairs: ~180k; a few ms)
IDENTICAL = 0.98  # cosine above which two photos are the same picture for this purpose


@dataclass(frozen=True)
class SimilarityScale:
    """Cosine similarities of one embedding model mapped to evidence: ``far`` and below count 0, ``near``
    and above count 1, linear between. Models differ (MobileNet's unrelated photos sit near 0.25, CLIP's
    near 0.5), so the scale is measured on the model's own photos, never fixed."""

    far: float
    near: float

    def weight(self, similarity: np.ndarray | float) -> np.ndarray:
        span = max(self.near - self.far, 1e-6)
        return np.asarray(np.clip((np.asarray(similarity, dtype=np.float64) - self.far) / span, 0.0, 1.0))


def similarity_scale(embeddings: np.ndarray) -> SimilarityScale:
    """The scale from the pairwise cosine similarities of a model's photos (unit vectors, labelled or not).

    Near-identical pairs (bursts, re-saves) say nothing about unrelated photos and are left out; with
    fewer than three other pairs nothing is known, so only near-identical photos count.
    """
    vectors = np.asarray(embeddings[:SCALE_SAMPLE], dtype=np.float32)
    pairs = (vectors @ vectors.T)[np.triu_indices(len(vectors), 1)] if len(vectors) > 1 else np.zeros(0)
    pairs = pairs[pairs < IDENTICAL]
    if len(pairs) < 3:
        return SimilarityScale(0.9, IDENTICAL)
    far, near = np.percentile(pairs, [FAR_PERCENTILE, NEAR_PERCENTILE])
    return SimilarityScale(float(far), float(max(near, far + 0.05)))
