"""Embeddings in two dimensions for the map: PCA of the unit-length vectors. Pure numpy.

The two axes are fitted on a sample (``fit_axes``) by randomized subspace iteration, a few products with
the sample instead of a full SVD (a 2,000 x 1,280 SVD takes seconds on two busy cores; this takes tens of
milliseconds), summed over the sample's chunks as they were read; every photo is then projected in chunks
(``project``), so memory stays flat at 10,000+.
"""

from __future__ import annotations

import numpy as np

SAMPLE_ROWS = 2000
_EXTRA, _ITERATIONS = 6, 6


def norms(vectors: np.ndarray) -> np.ndarray:
    """[n, 1] length of each row (no [n, d] temporary, unlike np.linalg.norm)."""
    lengths: np.ndarray = np.maximum(np.sqrt(np.einsum("ij,ij->i", vectors, vectors)), 1e-12)[:, None]
    return lengths


def fit_axes(chunks: list[np.ndarray], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(mean [d], axes [2, d]) of the two main directions of variation of a sample given as row chunks.
    The chunks are the caller's to give up: each is scaled and centred in place, and the products are
    summed chunk by chunk, so the sample is never copied or joined (its own size is the peak)."""
    centred = [chunk if chunk.dtype == np.float32 and chunk.flags.writeable else chunk.astype(np.float32)
               for chunk in chunks if len(chunk)]
    for chunk in centred:
        chunk /= norms(chunk)
    rows = sum(len(chunk) for chunk in centred)
    dim = centred[0].shape[1] if centred else 0
    mean = sum((chunk.sum(axis=0) for chunk in centred), np.zeros(dim, np.float32)) / max(rows, 1)
    for chunk in centred:
        chunk -= mean
    if rows < 3:
        return mean, np.eye(2, dim, dtype=np.float32)
    basis = np.random.default_rng(seed).normal(size=(dim, min(dim, 2 + _EXTRA))).astype(np.float32)
    for _ in range(_ITERATIONS):
        basis, _ = np.linalg.qr(sum(chunk.T @ (chunk @ basis) for chunk in centred))
    _, _, vt = np.linalg.svd(np.concatenate([chunk @ basis for chunk in centred]), full_matrices=False)
    axes: np.ndarray = (basis @ vt.T[:, :2]).T.astype(np.float32)
    return mean, axes


def project(vectors: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """(unit(v) - mean) @ axes.T, worked out as (v @ axes.T) / |v| - mean @ axes.T: no [n, d] copy."""
    vectors = np.asarray(vectors, dtype=np.float32)
    points: np.ndarray = (vectors @ axes.T) / norms(vectors) - mean @ axes.T
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
    mean, axes = fit_axes([np.array(vectors[::step], dtype=np.float32)], seed)  # a copy the fit may change
    return scale_unit_square(project(vectors, mean, axes))
