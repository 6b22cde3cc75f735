"""Embeddings in two dimensions for the map: PCA on the centred, unit-length vectors. Pure numpy."""

from __future__ import annotations

import numpy as np

MAX_FIT_ROWS = 5000  # the axes are fitted on a sample; every point is then projected


def project_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """[n, d] embeddings -> [n, 2] coordinates scaled into [0, 1] (the two main axes of variation)."""
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    mean = unit.mean(axis=0)
    sample = unit if n <= MAX_FIT_ROWS else unit[np.random.default_rng(seed).choice(n, MAX_FIT_ROWS, replace=False)]
    if n < 3:
        axes = np.eye(unit.shape[1], 2, dtype=unit.dtype).T
    else:
        _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
        axes = vt[:2]
    points = (unit - mean) @ axes.T
    low, high = points.min(axis=0), points.max(axis=0)
    scaled: np.ndarray = ((points - low) / np.where(high - low > 0, high - low, 1.0)).astype(np.float32)
    return scaled
