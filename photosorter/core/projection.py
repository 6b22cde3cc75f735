"""Embeddings in two dimensions for the map: PCA of the unit-length vectors. Pure numpy.

The two axes are fitted on a sample (``fit_axes``) by randomized subspace iteration, a few products with
the sample instead of a full SVD (a 2,000 x 1,280 SVD takes seconds on two busy cores; this takes tens of
milliseconds); every photo is then projected in chunks (``project``), so memory stays flat at 10,000+.
"""

from __future__ import annotations

import numpy as np

SAMPLE_ROWS = 2000
_EXTRA, _ITERATIONS = 6, 6


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    scaled: np.ndarray = vectors / norms
    return scaled


def fit_axes(sample: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(mean [d], axes [2, d]) of the sample's two main directions of variation."""
    centred = unit(sample)  # a copy of its own: centred in place, one sample-sized array less at the peak
    mean = centred.mean(axis=0)
    centred -= mean
    dim = centred.shape[1]
    if len(centred) < 3:
        return mean, np.eye(2, dim, dtype=np.float32)
    basis = np.random.default_rng(seed).normal(size=(dim, min(dim, 2 + _EXTRA))).astype(np.float32)
    for _ in range(_ITERATIONS):
        basis, _ = np.linalg.qr(centred.T @ (centred @ basis))
    _, _, vt = np.linalg.svd(centred @ basis, full_matrices=False)
    axes: np.ndarray = (basis @ vt.T[:, :2]).T.astype(np.float32)
    return mean, axes


def project(vectors: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    points: np.ndarray = (unit(vectors) - mean) @ axes.T
    return points


def scale_unit_square(points: np.ndarray) -> np.ndarray:
    """[n, 2] -> coordinates in [0, 1] on both axes."""
    if len(points) == 0:
        return np.zeros((0, 2), np.float32)
    low, high = points.min(axis=0), points.max(axis=0)
    scaled: np.ndarray = ((points - low) / np.where(high - low > 0, high - low, 1.0)).astype(np.float32)
    return scaled


def project_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """All at once (tests, small libraries): [n, d] -> [n, 2] in [0, 1]."""
    if len(vectors) == 0:
        return np.zeros((0, 2), np.float32)
    step = max(1, len(vectors) // SAMPLE_ROWS)
    mean, axes = fit_axes(vectors[::step], seed)
    return scale_unit_square(project(vectors, mean, axes))
